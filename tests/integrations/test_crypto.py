import json

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection as db
from django.db import transaction

from integrations.fields import Sealed
from integrations.models import Connection
from integrations.services.connections import connection_create, encryption_keys_rotate

pytestmark = pytest.mark.django_db

API_KEY = "sk_test_51VerySecretValue"
WEBHOOK_SECRET = "whsec_VerySecretWebhookValue"


def raw_row(table, pk):
    with db.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE id = %s", [pk])
        return " ".join(str(v) for v in cursor.fetchone())


@pytest.fixture
def secret_connection():
    return connection_create(
        name="stripe-enc",
        kind="stripe",
        credentials={"api_key": API_KEY},
        webhook_secrets=[WEBHOOK_SECRET],
    )


def test_database_holds_no_secret_in_clear(secret_connection):
    row = raw_row("integrations_connection", secret_connection.pk)
    assert API_KEY not in row and WEBHOOK_SECRET not in row
    with db.cursor() as cursor:
        cursor.execute("SELECT * FROM integrations_historicalconnection")
        history = " ".join(str(v) for r in cursor.fetchall() for v in r)
    assert history and API_KEY not in history and WEBHOOK_SECRET not in history


def test_values_round_trip_but_never_print(secret_connection):
    loaded = Connection.objects.get(pk=secret_connection.pk)
    assert isinstance(loaded.credentials, Sealed)
    assert loaded.credential("api_key") == API_KEY
    assert loaded.secret_list() == [WEBHOOK_SECRET]
    for text in (str(loaded.credentials), repr(loaded.webhook_secrets), str(vars(loaded))):
        assert API_KEY not in text and WEBHOOK_SECRET not in text
    assert str(loaded.credentials) == "<sealed api_key=•••>"


def test_dumpdata_shows_no_secret(secret_connection, capsys):
    call_command("dumpdata", "integrations.connection", "integrations.historicalconnection")
    out = capsys.readouterr().out
    assert "stripe-enc" in out
    assert API_KEY not in out and WEBHOOK_SECRET not in out


def test_key_rotation_without_downtime(secret_connection, settings):
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    before = raw_row("integrations_connection", secret_connection.pk)

    # Step 1: new key first, old key still listed: old rows still read.
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    assert Connection.objects.get(pk=secret_connection.pk).credential("api_key") == API_KEY
    # Step 2: re-encrypt everything (the history holds no secrets).
    assert encryption_keys_rotate() == 1
    assert raw_row("integrations_connection", secret_connection.pk) != before
    # Step 3: the old key can go.
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    loaded = Connection.objects.get(pk=secret_connection.pk)
    assert loaded.credential("api_key") == API_KEY
    assert loaded.history.first().instance.credential("api_key") == API_KEY


def test_removing_a_key_too_early_fails_loudly(secret_connection, settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(ImproperlyConfigured, match="cannot be decrypted"):
        Connection.objects.get(pk=secret_connection.pk)


def test_malformed_key_is_a_configuration_error(settings):
    settings.FIELD_ENCRYPTION_KEYS = ["not-a-key"]
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEYS"), transaction.atomic():
        connection_create(name="x", kind="stripe", credentials={"api_key": "sk_test_1"})
    assert Connection.objects.count() == 0


def test_system_check_flags_bad_keys(settings):
    from integrations.checks import check_encryption_keys

    settings.FIELD_ENCRYPTION_KEYS = ["nope"]
    assert [e.id for e in check_encryption_keys(None)] == ["integrations.E001"]
    settings.FIELD_ENCRYPTION_KEYS = []
    settings.DEBUG = False
    assert [e.id for e in check_encryption_keys(None)] == ["integrations.E002"]


def test_history_diff_shows_no_secret(secret_connection):
    secret_connection.credentials = {"api_key": "sk_test_rotated000"}
    secret_connection.base_url = "https://stripe.example"
    secret_connection.save()
    new, old = secret_connection.history.all()[:2]
    delta = new.diff_against(old)
    rendered = json.dumps([(c.field, str(c.old), str(c.new)) for c in delta.changes])
    assert [c.field for c in delta.changes] == ["base_url"]  # secrets are not tracked
    assert "sk_test_rotated000" not in rendered and API_KEY not in rendered
