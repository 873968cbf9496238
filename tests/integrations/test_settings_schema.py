import re
from pathlib import Path

import pytest
from django.conf import settings as dj_settings
from django.core.management import call_command

from integrations import settings_schema
from integrations.settings_schema import (
    Schema,
    Setting,
    SettingsError,
    connection_schema,
    connection_setting,
    integration_schema,
    integration_setting,
    parse_cli,
    register_integration_settings,
    validate,
)

ROOT = Path(dj_settings.BASE_DIR)

SCHEMA = Schema(
    (
        Setting("poll", "bool", True, "Poll."),
        Setting("every", "int", 1, "Minutes.", min=1),
        Setting("retries", "int", 2, "Retries.", min=0, max=10),
        Setting("timeout", "number", None, "Seconds.", min=0),
        Setting("scope", "str", None, "Scope."),
        Setting("token_url", "url", None, "Token URL."),
        Setting("tz", "timezone", None, "Clock."),
        Setting("auth", "choice", "basic", "Auth.", choices=("basic", "oauth")),
        Setting("states", "list[str]", ["FAILED"], "States."),
        Setting("ids", "list[int]", [], "Ids."),
        Setting("accounts", "dict[str,str]", {"sales": "4000"}, "Accounts."),
        Setting("modes", "dict[int,str]", {}, "Modes.", choices=("adopt", "customer")),
    )
)


# --- parsing the CLI's NAME=VALUE ---------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("poll=false", ("poll", False)),
        ("poll=False", ("poll", False)),
        ("poll=no", ("poll", False)),
        ("poll=0", ("poll", False)),
        ("poll=true", ("poll", True)),
        ("poll=YES", ("poll", True)),
        ("poll=1", ("poll", True)),
        ("every=5", ("every", 5)),
        ("every= 7 ", ("every", 7)),
        ("retries=0", ("retries", 0)),
        ("timeout=0.5", ("timeout", 0.5)),
        ("timeout=5", ("timeout", 5)),
        ("scope=orders read", ("scope", "orders read")),
        ("scope=a=b", ("scope", "a=b")),
        ("scope=", ("scope", "")),
        (
            "token_url=https://id.example/oauth/token",
            ("token_url", "https://id.example/oauth/token"),
        ),
        ("tz=America/Chicago", ("tz", "America/Chicago")),
        ("auth=oauth", ("auth", "oauth")),
        ("states=CANCELED, RETURNED", ("states", ["CANCELED", "RETURNED"])),
        ('states=["A, B", "C"]', ("states", ["A, B", "C"])),
        ("states=", ("states", [])),
        ("ids=7,8", ("ids", [7, 8])),
        ("ids=[7, 8]", ("ids", [7, 8])),
        (
            'accounts={"sales": "4100", "clearing": 1150}',
            ("accounts", {"sales": "4100", "clearing": "1150"}),
        ),
        ('modes={"7":"adopt", " 08 ":"customer"}', ("modes", {"7": "adopt", "8": "customer"})),
    ],
)
def test_parse_cli_coerces_to_typed_values(text, expected):
    assert parse_cli(SCHEMA, text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("poll=maybe", "setting 'poll': expected true or false (also yes/no, 1/0), got 'maybe'"),
        ("every=0", "setting 'every': expected integer ≥ 1, got '0'"),
        ("every=1.5", "setting 'every': expected integer ≥ 1, got '1.5'"),
        ("retries=11", "setting 'retries': expected integer from 0 to 10, got '11'"),
        ("timeout=fast", "setting 'timeout': expected number ≥ 0, got 'fast'"),
        ("timeout=NaN", "setting 'timeout': expected number ≥ 0, got 'NaN'"),
        (
            "token_url=ftp://x.example",
            "setting 'token_url': expected URL (http:// or https://), got 'ftp://x.example'",
        ),
        (
            "tz=Mars/Olympus",
            "setting 'tz': expected IANA time zone such as Europe/Berlin or America/New_York, "
            "got 'Mars/Olympus'",
        ),
        ("auth=kerberos", "setting 'auth': expected one of basic, oauth, got 'kerberos'"),
        ("ids=7,x", "setting 'ids': item 2: expected integer, got 'x'"),
        ('ids=[7, "8", true]', "setting 'ids': item 3: expected integer, got true"),
        ("ids=[7,", "setting 'ids': invalid JSON (Expecting value at character 4)"),
        ('modes={"7": adopt}', "setting 'modes': invalid JSON (Expecting value at character 7)"),
        (
            "accounts=sales:4000",
            "setting 'accounts': expected JSON object of text (a JSON object, e.g. {\"key\": "
            "\"value\"}), got 'sales:4000'",
        ),
        ('accounts={"sales": [1]}', "setting 'accounts': value of 'sales': expected text, got [1]"),
        (
            'modes={"7": "charge"}',
            "setting 'modes': value of '7': expected one of adopt, customer, got 'charge'",
        ),
        ('modes={"card": "adopt"}', "setting 'modes': key: expected an integer id, got 'card'"),
        (
            "nope=1",
            "unknown setting 'nope'; known settings: accounts, auth, every, ids, modes, poll, "
            "retries, scope, states, timeout, token_url, tz",
        ),
        ("poll", "expected NAME=VALUE, got 'poll'"),
        ("=1", "expected NAME=VALUE, got '=1'"),
    ],
)
def test_parse_cli_errors_name_the_setting_and_what_was_expected(text, message):
    with pytest.raises(SettingsError) as caught:
        parse_cli(SCHEMA, text)
    assert caught.value.message == message
    assert caught.value.retryable is False


# --- validating stored JSON -----------------------------------------------------------------
def test_validate_coerces_json_and_text_values():
    raw = {"poll": "false", "every": 3.0, "timeout": "2.50", "ids": ["7", 8], "tz": None}
    assert validate(SCHEMA, raw) == {"poll": False, "every": 3, "timeout": 2.5, "ids": [7, 8]}
    assert raw == {"poll": "false", "every": 3.0, "timeout": "2.50", "ids": ["7", 8], "tz": None}
    assert validate(SCHEMA, None) == {}
    assert validate(SCHEMA, {}) == {}


def test_validate_reports_unknown_keys_with_the_known_ones():
    with pytest.raises(SettingsError) as caught:
        validate(SCHEMA, {"poll": True, "pol": True, "evry": 2})
    assert caught.value.message == (
        "unknown settings 'evry', 'pol'; known settings: accounts, auth, every, ids, modes, "
        "poll, retries, scope, states, timeout, token_url, tz"
    )


def test_validate_reports_every_type_error_at_once():
    with pytest.raises(SettingsError) as caught:
        validate(SCHEMA, {"poll": "perhaps", "scope": 5, "every": True, "auth": "oauth"})
    assert caught.value.message == (
        "setting 'poll': expected true or false (also yes/no, 1/0), got 'perhaps'; "
        "setting 'scope': expected text, got 5; setting 'every': expected integer ≥ 1, got true"
    )


def test_validate_refuses_a_non_object():
    with pytest.raises(SettingsError, match=r"^settings must be a JSON object, got \[1, 2\]$"):
        validate(SCHEMA, [1, 2])


def test_update_merges_unsets_and_checks_the_whole():
    stored = {"poll": False, "legacy_key": "x", "every": 5}
    assert SCHEMA.update(stored, {"every": 2}, ["legacy_key", "scope"]) == {
        "poll": False,
        "every": 2,
    }
    assert stored == {"poll": False, "legacy_key": "x", "every": 5}
    with pytest.raises(SettingsError, match=r"^setting 'every' is both set and unset$"):
        SCHEMA.update(stored, {"every": 2}, ["every"])
    with pytest.raises(SettingsError, match=r"^unknown setting 'nothing'; known settings: "):
        SCHEMA.update(stored, {}, ["nothing"])
    with pytest.raises(SettingsError, match=r"^unknown setting 'legacy_key'"):
        SCHEMA.update(stored, {"every": 2})  # a stale key must be unset before anything else


# --- reading typed values -------------------------------------------------------------------
def test_value_reads_typed_values_and_defaults():
    stored = {"poll": "no", "ids": "7, 8", "timeout": 1.5}
    assert SCHEMA.value(stored, "poll") is False
    assert SCHEMA.value(stored, "ids") == [7, 8]
    assert SCHEMA.value(stored, "timeout") == 1.5
    assert SCHEMA.value(stored, "every") == 1
    assert SCHEMA.value(None, "auth") == "basic"
    assert SCHEMA.value({}, "scope") is None
    assert SCHEMA.value({"scope": None}, "scope") is None


def test_value_defaults_are_copies():
    states = SCHEMA.value({}, "states")
    states.append("MINE")
    assert SCHEMA.value({}, "states") == ["FAILED"]


def test_value_refuses_unknown_names_and_bad_stored_values():
    with pytest.raises(SettingsError, match=r"^unknown setting 'pole'; known settings: accounts"):
        SCHEMA.value({}, "pole")
    with pytest.raises(SettingsError, match=r"^setting 'every': expected integer ≥ 1, got 'x'$"):
        SCHEMA.value({"every": "x"}, "every")


@pytest.mark.django_db
def test_connection_and_integration_accessors(znode_connection, integration, settings):
    settings.TIME_ZONE = "America/Denver"
    assert connection_setting(znode_connection, "timezone") == "America/Denver"
    assert connection_setting(znode_connection, "poll") is True
    znode_connection.settings = {"poll": "false", "poll_every_minutes": "abc"}
    assert connection_setting(znode_connection, "poll") is False
    with pytest.raises(SettingsError) as caught:
        connection_setting(znode_connection, "poll_every_minutes")
    assert caught.value.message == (
        "connection znode-test: setting 'poll_every_minutes': expected integer ≥ 1, got 'abc'"
    )
    assert integration_setting(integration, "collection_modes") == {}
    assert integration_setting(integration, "notify_customer") is True
    integration.settings = {"collection_modes": {"7": "adopt"}}
    assert integration_setting(integration, "collection_modes") == {"7": "adopt"}


# --- declaring settings -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": "float"}, "setting x: unknown type 'float'; use one of"),
        ({"type": "choice"}, "setting x: a choice needs choices"),
        ({"type": "int", "choices": ("a",)}, "setting x: type int takes no choices"),
        ({"help": " "}, "setting x: every setting needs help text"),
        ({"type": "int", "default": "1"}, "setting x: write the default as 1"),
        ({"type": "int", "default": 0, "min": 1}, "default of setting 'x': expected integer ≥ 1"),
        ({"type": "list[str]", "default": ("A",)}, r"setting x: write the default as \['A'\]"),
        ({"default": lambda: "x"}, "setting x: a computed default needs default_doc"),
    ],
)
def test_bad_declarations_fail_at_import(kwargs, message):
    fields = {"name": "x", "type": "str", "default": None, "help": "Help.", **kwargs}
    with pytest.raises(ValueError, match=f"^{message}"):
        Setting(**fields)


def test_a_schema_refuses_duplicate_names():
    with pytest.raises(ValueError, match=r"^settings declared twice: a$"):
        Schema((Setting("a", "str", None, "A."), Setting("a", "int", None, "A.")))


def test_integration_settings_registry(monkeypatch):
    monkeypatch.setattr(settings_schema, "_integration_settings", {})
    flag = Setting("flag", "bool", False, "Flag.")
    register_integration_settings(flag)
    register_integration_settings(flag)  # importing twice is harmless
    assert integration_schema().names == ("flag",)
    with pytest.raises(ValueError, match=r"^integration setting 'flag' is registered twice$"):
        register_integration_settings(Setting("flag", "bool", True, "Other flag."))
    assert integration_schema().value({}, "flag") is False


def test_unknown_connection_kind():
    with pytest.raises(SettingsError, match=r"^no connector is registered for 'sap'$"):
        connection_schema("sap")


# --- the declared schemas match the code ----------------------------------------------------
def test_znode_defaults_are_the_pollers():
    from integrations.connectors.znode import sync

    znode = connection_schema("znode")
    assert znode.value({}, "poll_overlap_seconds") == sync.DEFAULT_OVERLAP.seconds == 600
    assert znode.value({}, "final_states") == list(sync.FINAL_STATES)
    assert znode.value({}, "poll") is True
    assert znode.value({}, "poll_every_minutes") == 1
    assert znode.value({}, "auth") == "basic"
    assert znode.value({}, "token_auth") is False


def test_stripe_and_erp_defaults_are_the_clients():
    from integrations.connectors.stripe.constants import API_VERSION

    stripe = connection_schema("stripe")
    assert stripe.value({}, "api_version") == API_VERSION
    assert stripe.value({}, "max_network_retries") == 2
    assert connection_schema("erp").value({}, "health_path") == "/"
    assert connection_schema("erp").value({}, "client_class") is None


def test_payments_defaults_are_the_actions():
    from payments import settings as payments_settings

    schema = integration_schema()
    assert schema.value({}, "znode_states_before_payment") == list(
        payments_settings.BEFORE_PAYMENT_STATES
    )
    assert "gl_accounts" not in schema.names  # the GL map is reconciliation's rows
    assert schema.value({}, "collectable_states") == payments_settings.COLLECTABLE_STATES
    assert schema.value({}, "paid_payment_statuses") == payments_settings.PAID_PAYMENT_STATUSES
    assert schema.value({}, "canceled_order_payments") == "refund"
    assert schema.value({}, "stripe_description") is True
    assert schema.value({}, "saved_method_fallback") == "none"
    assert schema.value({}, "collection_modes") == {}
    assert schema.value({}, "manual_capture_payment_settings") == []
    assert schema.value({}, "znode_payment_setting_id") is None
    assert schema.value({}, "notify_customer") is True


# How code reads settings today (dict access) and with the typed accessors.
READS = (
    re.compile(r"""settings(?:\(ctx\)| or \{\}\))?\.get\(\s*["']([a-z_]+)["']"""),
    re.compile(r"""(?:\b_?setting|\.value)\([^,()]+(?:\([^()]*\))?,\s*["']([a-z_]+)["']"""),
)


def _read_keys(paths: list[Path]) -> set[str]:
    return {key for p in paths for pattern in READS for key in pattern.findall(p.read_text())}


@pytest.mark.parametrize("kind", ["znode", "stripe", "erp"])
def test_every_connection_setting_the_code_reads_is_declared(kind):
    paths = sorted((ROOT / "integrations" / "connectors" / kind).glob("*.py"))
    read = _read_keys(paths)
    assert read, "the pattern still finds the reads"
    assert read - set(connection_schema(kind).names) == set()


def test_every_integration_setting_the_payments_code_reads_is_declared():
    read = _read_keys(sorted((ROOT / "payments").glob("*.py")))
    assert read, "the patterns still find the reads"
    assert read - set(integration_schema().names) == set()


# --- documentation --------------------------------------------------------------------------
def test_readme_carries_the_settings_doc_verbatim(capsys):
    call_command("settings_doc")
    printed = capsys.readouterr().out
    readme = (ROOT / "README.md").read_text()
    start, end = "<!-- settings:start -->\n", "<!-- settings:end -->"
    assert readme.count(start) == 1 and readme.count(end) == 1
    carried = readme.split(start)[1].split(end)[0]
    assert carried == "\n" + printed + "\n", "run: manage.py settings_doc, paste into README.md"


def test_settings_doc_has_one_row_per_setting(capsys):
    call_command("settings_doc")
    printed = capsys.readouterr().out
    rows = [line for line in printed.splitlines() if line.startswith("| `")]
    declared = [
        *(f"`{n}`" for kind in ("znode", "stripe", "erp") for n in connection_schema(kind).names),
        *(f"`{n}`" for n in integration_schema().names),
    ]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == declared
    assert all(row.replace("\\|", "").count("|") == 5 for row in rows), rows
    assert "| `poll` | true/false | `true` | Poll the store for new and changed orders" in printed
