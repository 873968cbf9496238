"""The documented backup path and the dumpdata warning."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from integrations.services.connections import connection_create

pytestmark = pytest.mark.django_db

README = Path(__file__).resolve().parents[2] / "README.md"


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_readme_deployment_says_how_to_back_up_connections():
    """Rule: dumpdata/loaddata is not a backup of connections (secrets are masks); the
    supported path is a database dump plus the encryption keys and SECRET_KEY."""
    deployment = _section("Deployment")
    for words in ("pg_dump", "FIELD_ENCRYPTION_KEYS", "SECRET_KEY", "dumpdata", "loaddata"):
        assert words in deployment, words


def test_readme_lists_every_operator_permission():
    from django.apps import apps

    deployment = _section("Deployment")
    custom = [
        f"{model._meta.app_label}.{codename}"
        for model in apps.get_models()
        if model._meta.app_label in ("integrations", "payments", "customers", "reconciliation")
        for codename, _ in model._meta.permissions
    ]
    assert custom
    for permission in custom:
        assert f"`{permission}`" in deployment, permission


def test_dumpdata_of_connections_warns_that_it_is_no_backup():
    connection_create(name="stripe-x", kind="stripe", credentials={"api_key": "sk_test_x"})
    out, err = StringIO(), StringIO()
    call_command("dumpdata", "integrations.connection", stdout=out, stderr=err)
    assert "stripe-x" in out.getvalue() and "sk_test_x" not in out.getvalue()
    assert err.getvalue().startswith("integrations.Connection: secrets are written as masks")
    assert "pg_dump" in err.getvalue()
    err = StringIO()
    call_command(
        "dumpdata",
        "integrations",
        "--exclude",
        "integrations.connection",
        stdout=StringIO(),
        stderr=err,
    )
    assert err.getvalue().startswith("integrations.AlertChannel: secrets are written as masks")
    quiet = ["--exclude", "integrations.connection", "--exclude", "integrations.alertchannel"]
    for args in (["integrations.flow"], ["integrations", *quiet]):
        err = StringIO()
        call_command("dumpdata", *args, stdout=StringIO(), stderr=err)
        assert err.getvalue() == "", args
