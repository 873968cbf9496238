import pytest
from django.core.management import CommandError, call_command

from integrations.models import Connection

pytestmark = pytest.mark.django_db


def test_connection_create_prints_webhook_path_and_stores_secrets(capsys):
    call_command(
        "connection",
        "create",
        "--kind",
        "stripe",
        "--name",
        "stripe-live",
        "--webhook-secret",
        "whsec_one",
        "--webhook-secret",
        "whsec_two",
        "--credential",
        "api_key=sk_live_abcdef123456",
    )
    out = capsys.readouterr().out.strip()
    connection = Connection.objects.get(name="stripe-live")
    assert out == f"/webhooks/stripe/{connection.url_token}/"
    assert connection.secret_list() == ["whsec_one", "whsec_two"]
    assert connection.credential("api_key") == "sk_live_abcdef123456"


def test_connection_list_never_shows_secrets(capsys):
    call_command(
        "connection",
        "create",
        "--kind",
        "znode",
        "--name",
        "store",
        "--base-url",
        "https://api.store.example",
        "--credential",
        "domain_name=store.example",
        "--credential",
        "domain_key=KEY-SECRET-1",
        "--webhook-secret",
        "Bearer SHARED-SECRET",
    )
    capsys.readouterr()
    call_command("connection", "list")
    out = capsys.readouterr().out
    assert "store\tznode\tdev\tenabled\thttps://api.store.example" in out
    assert "domain_key=•••" in out and "webhook secrets: 1" in out
    assert "KEY-SECRET-1" not in out and "SHARED-SECRET" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "stripe", "--name", "dup"], "already exists"),
        (["--kind", "stripe", "--name", "bad", "--credential", "novalue"], "KEY=VALUE"),
        (["--kind", "stripe", "--name", "bad2", "--base-url", "not a url"], "valid URL"),
    ],
)
def test_connection_create_errors_change_nothing(args, message):
    call_command("connection", "create", "--kind", "stripe", "--name", "dup")
    with pytest.raises(CommandError, match=message):
        call_command("connection", "create", *args)
    assert list(Connection.objects.values_list("name", flat=True)) == ["dup"]


def test_connection_test_reports_failure(capsys, upstream):
    from tests.support.upstream import Reply

    call_command(
        "connection",
        "create",
        "--kind",
        "erp",
        "--name",
        "erp",
        "--base-url",
        upstream.url,
        "--credential",
        "token=erp-secret-token",
    )
    upstream.queue(Reply(status=401, body={"error": "bad token"}))
    with pytest.raises(CommandError, match="connection test failed"):
        call_command("connection", "test", "erp")
    out = capsys.readouterr().out
    assert "Unauthorized" in out and "erp-secret-token" not in out
    upstream.queue(Reply(status=200))
    call_command("connection", "test", "erp")
    assert "ERP answered HTTP 200" in capsys.readouterr().out


def test_ensure_admin_prints_a_working_login(capsys, settings, tmp_path):
    from django.contrib.auth import authenticate

    settings.VAR_DIR = tmp_path
    call_command("ensure_admin")
    first = capsys.readouterr().out.strip()
    username, password = first.removeprefix("admin login: ").split(" / ")
    assert authenticate(username=username, password=password) is not None
    call_command("ensure_admin")  # idempotent: same login again
    assert capsys.readouterr().out.strip() == first
