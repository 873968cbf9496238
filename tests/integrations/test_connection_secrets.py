"""Secrets go only where they went when they were entered, and history never revives them."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection as db
from django.urls import reverse

from integrations.crypto import fingerprint
from integrations.kernel.exceptions import DataError
from integrations.models import Connection
from integrations.services.connections import connection_update
from tests.conftest import STRIPE_OLD_SECRET, STRIPE_SECRET
from tests.integrations.admin_forms import connection_form_data

pytestmark = pytest.mark.django_db

OLD_KEY = "sk_test_51TESTKEYabcdefghijkl"  # the stripe_connection fixture's
NEW_KEY = "sk_test_NEWKEY0000"
ELSEWHERE = "https://collector.example"


def _change(connection) -> str:
    return reverse("admin:integrations_connection_change", args=[connection.pk])


def _state(connection) -> tuple:
    row = Connection.objects.get(pk=connection.pk)
    return row.base_url, row.settings, row.credentials.reveal(), row.history.count()


# --- where a credential is sent ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("fixture", "changes", "keys"),
    [
        ("stripe_connection", {"base_url": ELSEWHERE}, "api_key"),
        ("stripe_connection", {"kind": "erp", "base_url": ELSEWHERE}, "api_key"),
        ("znode_connection", {"base_url": ELSEWHERE}, "domain_key, domain_name"),
        (
            "znode_connection",
            {"settings": f'{{"auth": "oauth", "token_url": "{ELSEWHERE}/token"}}'},
            "domain_key, domain_name",
        ),
        ("erp_connection", {"settings": '{"health_path": "@collector.example/"}'}, "token"),
    ],
)
def test_admin_refuses_a_new_destination_without_the_credentials(
    admin_client, request, fixture, changes, keys
):
    """Rule: changing the kind, the base URL or a setting that decides where the
    credentials go (Znode token_url; ERP health_path, client_class) needs every stored
    credential re-entered in the same submission; otherwise nothing is saved, so a
    following "test connection" still sends them where they went before."""
    connection = request.getfixturevalue(fixture)
    before = _state(connection)
    response = admin_client.post(_change(connection), connection_form_data(connection, **changes))
    assert response.status_code == 200
    [message] = response.context["adminform"].form.errors["new_credentials"]
    assert message.startswith("changing where the credentials are sent (")
    assert message.endswith(f") needs them re-entered in the same change: {keys}")
    assert _state(connection) == before


def test_admin_names_what_changed_and_accepts_the_credentials_re_entered(
    admin_client, stripe_connection
):
    response = admin_client.post(
        _change(stripe_connection), connection_form_data(stripe_connection, base_url=ELSEWHERE)
    )
    assert response.context["adminform"].form.errors["new_credentials"] == [
        "changing where the credentials are sent (base URL) needs them re-entered in the "
        "same change: api_key"
    ]
    response = admin_client.post(
        _change(stripe_connection),
        connection_form_data(
            stripe_connection, base_url=ELSEWHERE, new_credentials=f"api_key={NEW_KEY}"
        ),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert _state(stripe_connection)[:3] == (ELSEWHERE, {}, {"api_key": NEW_KEY})


def test_admin_edits_that_keep_the_destination_need_no_credentials(admin_client, znode_connection):
    response = admin_client.post(
        _change(znode_connection),
        connection_form_data(znode_connection, settings='{"poll": false}', environment="prod"),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert _state(znode_connection)[1] == {"poll": False}


def test_service_refuses_a_new_destination_without_the_credentials(znode_connection):
    before = _state(znode_connection)
    for changes in (
        {"base_url": ELSEWHERE},
        {"settings": {"token_url": f"{ELSEWHERE}/token"}},
        {"base_url": ELSEWHERE, "credentials": {"domain_key": "new-key"}},  # one of two
    ):
        with pytest.raises(DataError, match="re-entered in the same change: domain_"):
            connection_update(connection=znode_connection, **changes)
        assert _state(znode_connection) == before
    row = connection_update(
        connection=znode_connection,
        settings={"token_url": f"{ELSEWHERE}/token"},
        credentials={"domain_name": "store.example.com", "domain_key": "", "client_id": "c"},
    )
    assert row.settings == {"token_url": f"{ELSEWHERE}/token"}
    assert row.credentials.reveal() == {"domain_name": "store.example.com", "client_id": "c"}
    with pytest.raises(DataError, match="token_url"):  # back to the default is a change too
        connection_update(connection=row, unset=["token_url"])


def test_cli_refuses_a_new_base_url_without_the_credentials(stripe_connection):
    before = _state(stripe_connection)
    with pytest.raises(CommandError, match="re-entered in the same change: api_key"):
        call_command("connection", "update", "stripe-test", "--base-url", ELSEWHERE)
    assert _state(stripe_connection) == before
    call_command(
        "connection",
        "update",
        "stripe-test",
        "--base-url",
        ELSEWHERE,
        "--credentials-stdin",
        stdin=StringIO(f"api_key={NEW_KEY}\n"),
        stdout=StringIO(),
    )
    assert _state(stripe_connection)[:3] == (ELSEWHERE, {}, {"api_key": NEW_KEY})


# --- history never holds or restores secrets ---------------------------------------------------
def _rotate_in_admin(admin_client, connection):
    """Replace the API key and retire the old webhook secret, like an operator would."""
    response = admin_client.post(
        _change(connection),
        connection_form_data(
            connection,
            new_credentials=f"api_key={NEW_KEY}",
            add_webhook_secret="whsec_brand_new",
            retire_webhook_secrets=[fingerprint(STRIPE_OLD_SECRET)],
            change_reason="retire the leaked secret",
        ),
    )
    assert response.status_code == 302, response.content.decode()[:2000]


def test_admin_revert_to_an_old_version_keeps_the_current_secrets(admin_client, stripe_connection):
    """Rule: secrets are not history-tracked (excluded fields), and a revert takes them
    from the live row: a retired webhook secret or a replaced key never comes back."""
    _rotate_in_admin(admin_client, stripe_connection)
    created = stripe_connection.history.earliest()
    revert = reverse(
        "admin:integrations_connection_simple_history",
        args=[stripe_connection.pk, created.history_id],
    )
    page = admin_client.get(revert)
    assert page.status_code == 200
    assert STRIPE_OLD_SECRET not in page.content.decode()
    response = admin_client.post(
        revert, connection_form_data(stripe_connection, environment="prod", change_reason="revert")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    row = Connection.objects.get(pk=stripe_connection.pk)
    assert row.environment == "prod"
    assert row.secret_list() == [STRIPE_SECRET, "whsec_brand_new"]
    assert row.credential("api_key") == NEW_KEY


def test_orm_revert_keeps_the_current_secrets_and_history_has_no_secret_columns(
    admin_client, stripe_connection
):
    _rotate_in_admin(admin_client, stripe_connection)
    stripe_connection.history.earliest().instance.save()
    row = Connection.objects.get(pk=stripe_connection.pk)
    assert row.secret_list() == [STRIPE_SECRET, "whsec_brand_new"]
    assert row.credential("api_key") == NEW_KEY
    with db.cursor() as cursor:
        columns = {
            c.name
            for c in db.introspection.get_table_description(
                cursor, "integrations_historicalconnection"
            )
        }
    assert columns.isdisjoint({"credentials", "webhook_secrets"})
