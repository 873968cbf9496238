from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from integrations.models import Connection, Integration

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
    _store(
        "--credential",
        "domain_name=store.example",
        "--credential",
        "domain_key=KEY-SECRET-1",
        "--webhook-secret",
        "Bearer SHARED-SECRET",
    )
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
    from django.test import RequestFactory

    settings.VAR_DIR = tmp_path
    call_command("ensure_admin")
    first = capsys.readouterr().out.strip()
    username, password = first.removeprefix("admin login: ").split(" / ")
    login = RequestFactory().post("/admin/login/")  # what the admin's form passes
    assert authenticate(login, username=username, password=password) is not None
    call_command("ensure_admin")  # idempotent: same login again
    assert capsys.readouterr().out.strip() == first


# --- typed settings and the rate limit ------------------------------------------------------
def _poll_schedules() -> list[str]:
    from django_q.models import Schedule

    return list(
        Schedule.objects.filter(name__startswith="integrations.poll:").values_list(
            "name", flat=True
        )
    )


def _store(*extra: str) -> Connection:
    call_command(
        "connection",
        "create",
        "--kind",
        "znode",
        "--name",
        "store",
        "--base-url",
        "https://api.store.example",
        *extra,
        stdout=StringIO(),
    )
    return Connection.objects.get(name="store")


def test_connection_create_types_settings_and_sets_the_rate_limit():
    connection = _store(
        "--setting",
        "poll=false",
        "--setting",
        "poll_every_minutes=5",
        "--setting",
        "final_states=CANCELED, RETURNED",
        "--setting",
        "timezone=America/Chicago",
        "--rate-limit",
        "2.5",
    )
    assert connection.settings == {
        "poll": False,
        "poll_every_minutes": 5,
        "final_states": ["CANCELED", "RETURNED"],
        "timezone": "America/Chicago",
    }
    assert connection.rate_limit_per_second == Decimal("2.50")
    assert _poll_schedules() == []  # poll=false really turns the poller off


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--setting", "poll=maybe"], "setting 'poll': expected true or false"),
        (
            ["--setting", "pol=false"],
            "unknown setting 'pol'; known settings: acting_user_id, auth, final_states, poll, ",
        ),
        (["--setting", "poll"], "expected NAME=VALUE, got 'poll'"),
        (
            ["--setting", "poll_every_minutes=0"],
            "setting 'poll_every_minutes': expected integer ≥ 1",
        ),
        (["--rate-limit", "0"], "the rate limit must be requests per second above 0, got '0'"),
        (["--rate-limit", "fast"], "the rate limit must be requests per second above 0"),
        (["--rate-limit", "1234567.5"], "rate_limit_per_second: Ensure that there are no more"),
    ],
)
def test_connection_create_with_bad_settings_writes_nothing(args, message):
    with pytest.raises(CommandError) as caught:
        _store(*args)
    assert str(caught.value).startswith(message)
    assert Connection.objects.count() == 0
    assert Connection.history.count() == 0


def test_connection_update_changes_settings_rate_limit_and_flag_with_a_reason(capsys):
    connection = _store("--setting", "poll=false", "--setting", "store_domain=shop.example")
    assert _poll_schedules() == []
    call_command(
        "connection",
        "update",
        "store",
        "--setting",
        "poll=yes",
        "--setting",
        "poll_every_minutes=3",
        "--unset",
        "store_domain",
        "--rate-limit",
        "12",
        "--base-url",
        "https://api2.store.example",
    )
    connection.refresh_from_db()
    assert connection.settings == {"poll": True, "poll_every_minutes": 3}
    assert connection.rate_limit_per_second == Decimal("12.00")
    assert connection.base_url == "https://api2.store.example"
    assert _poll_schedules() == [f"integrations.poll:{connection.pk}"]
    reason = (
        "manage.py connection update: base URL, set poll, set poll_every_minutes, "
        "unset store_domain, rate limit 12/s"
    )
    assert connection.history.first().history_change_reason == reason[:99] + "…"  # 100 max
    out = capsys.readouterr().out
    assert out.startswith("store\tznode\tdev\tenabled\thttps://api2.store.example\t")
    assert out.endswith(
        '\trate limit: 12.00/s\tsettings: {"poll": true, "poll_every_minutes": 3}\n'
    )

    call_command("connection", "update", "store", "--disable", "--reason", "store closed")
    connection.refresh_from_db()
    assert connection.enabled is False
    assert _poll_schedules() == []
    assert connection.history.first().history_change_reason == "store closed"
    call_command("connection", "update", "store", "--enable", stdout=StringIO())
    connection.refresh_from_db()
    assert connection.enabled is True
    assert (
        connection.history.first().history_change_reason == "manage.py connection update: enabled"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["store", "--setting", "poll=later"], "setting 'poll': expected true or false"),
        (["store", "--setting", "poll=true", "--unset", "poll"], "setting 'poll' is both set"),
        (["store", "--unset", "nope"], "unknown setting 'nope'; known settings: "),
        (["store", "--rate-limit", "-1"], "the rate limit must be requests per second above 0"),
        (["store", "--base-url", "not a url"], "base_url: Enter a valid URL."),
        (["store"], "nothing to change"),
        (["elsewhere", "--disable"], "no connection named 'elsewhere'"),
    ],
)
def test_connection_update_errors_change_nothing(args, message):
    connection = _store("--setting", "poll=false")
    before = (connection.settings, connection.rate_limit_per_second, connection.history.count())
    with pytest.raises(CommandError) as caught:
        call_command("connection", "update", *args)
    assert str(caught.value).startswith(message)
    connection.refresh_from_db()
    assert (connection.settings, connection.rate_limit_per_second, connection.history.count()) == (
        before
    )
    assert (connection.base_url, connection.enabled) == ("https://api.store.example", True)


def test_connection_update_cleans_up_a_stale_setting():
    connection = _store()
    Connection.objects.filter(pk=connection.pk).update(settings={"poll": "false", "old": 1})
    with pytest.raises(CommandError, match="unknown setting 'old'"):
        call_command("connection", "update", "store", "--setting", "poll=no")
    call_command("connection", "update", "store", "--unset", "old", stdout=StringIO())
    connection.refresh_from_db()
    assert connection.settings == {"poll": False}  # the text stored earlier is typed now


def test_connection_list_shows_rate_limit_and_settings(capsys):
    _store("--setting", "poll=0", "--rate-limit", "3")
    capsys.readouterr()
    call_command("connection", "list")
    assert capsys.readouterr().out.endswith('\trate limit: 3.00/s\tsettings: {"poll": false}\n')


# --- manage.py integration -------------------------------------------------------------------
@pytest.fixture
def connections(db):
    from integrations.services.connections import connection_create

    return {
        "store": connection_create(name="store", kind="znode"),
        "store-2": connection_create(name="store-2", kind="znode"),
        "stripe-live": connection_create(
            name="stripe-live", kind="stripe", credentials={"api_key": "sk_live_SECRET123"}
        ),
        "erp": connection_create(name="erp", kind="erp", credentials={"token": "erp-SECRET"}),
    }


def _integration(*extra: str) -> str:
    out = StringIO()
    call_command(
        "integration",
        "create",
        "--name",
        "main",
        "--znode",
        "store",
        "--stripe",
        "stripe-live",
        *extra,
        stdout=out,
    )
    return out.getvalue()


def test_integration_create_with_typed_settings(connections):
    out = _integration(
        "--erp",
        "erp",
        "--setting",
        'collection_modes={"7":"adopt", "10": "customer"}',
        "--setting",
        "manual_capture_payment_settings=8,9",
        "--setting",
        "notify_customer=false",
    )
    integration = Integration.objects.get(name="main")
    assert (integration.znode, integration.stripe, integration.erp) == (
        connections["store"],
        connections["stripe-live"],
        connections["erp"],
    )
    assert integration.enabled is True
    assert integration.settings == {
        "collection_modes": {"7": "adopt", "10": "customer"},
        "manual_capture_payment_settings": [8, 9],
        "notify_customer": False,
    }
    assert integration.history.get().history_change_reason == (
        "created with manage.py integration create"
    )
    assert out == (
        "main\tznode: store\tstripe: stripe-live\terp: erp\tenabled\tsettings: "
        '{"collection_modes": {"10": "customer", "7": "adopt"}, '
        '"manual_capture_payment_settings": [8, 9], "notify_customer": false}\n'
    )


def test_integration_create_disabled_without_erp(connections):
    _integration("--disabled", "--reason", "wired before go-live")
    integration = Integration.objects.get(name="main")
    assert (integration.erp, integration.enabled, integration.settings) == (None, False, {})
    assert integration.history.get().history_change_reason == "wired before go-live"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--setting", "notify_customer=sometimes"], "setting 'notify_customer': expected true"),
        (
            ["--setting", 'collection_modes={"7":"charge"}'],
            "setting 'collection_modes': value of '7': expected one of adopt, customer, "
            "saved_method, got 'charge'",
        ),
        (["--setting", "collection_mode=charge"], "unknown setting 'collection_mode'; known"),
        (["--erp", "nowhere"], "no connection named 'nowhere'"),
        (["--erp", "store-2"], "connection 'store-2' is a znode connection, not erp"),
    ],
)
def test_integration_create_errors_write_nothing(connections, args, message):
    with pytest.raises(CommandError) as caught:
        _integration(*args)
    assert str(caught.value).startswith(message)
    assert Integration.objects.count() == 0
    assert Integration.history.count() == 0


def test_integration_create_refuses_wrong_kinds_and_duplicates(connections):
    with pytest.raises(
        CommandError, match=r"^connection 'stripe-live' is a stripe connection, not znode$"
    ):
        call_command(
            "integration",
            "create",
            "--name",
            "x",
            "--znode",
            "stripe-live",
            "--stripe",
            "stripe-live",
        )
    _integration()
    with pytest.raises(CommandError, match=r"^an integration named 'main' already exists$"):
        _integration()
    assert Integration.objects.count() == 1


def test_integration_update_changes_what_is_given_with_a_reason(connections):
    _integration(
        "--erp", "erp", "--setting", "notify_customer=no", "--setting", "stripe_description=no"
    )
    out = StringIO()
    call_command(
        "integration",
        "update",
        "main",
        "--znode",
        "store-2",
        "--no-erp",
        "--setting",
        'collection_modes={"7": "adopt"}',
        "--unset",
        "notify_customer",
        "--disable",
        stdout=out,
    )
    integration = Integration.objects.get(name="main")
    assert (integration.znode, integration.erp, integration.enabled) == (
        connections["store-2"],
        None,
        False,
    )
    assert integration.settings == {"stripe_description": False, "collection_modes": {"7": "adopt"}}
    reason = (
        "manage.py integration update: znode=store-2, no erp, set collection_modes, "
        "unset notify_customer, disabled"
    )
    assert integration.history.first().history_change_reason == reason[:99] + "…"  # 100 max
    assert out.getvalue() == (
        "main\tznode: store-2\tstripe: stripe-live\terp: -\tdisabled\tsettings: "
        '{"collection_modes": {"7": "adopt"}, "stripe_description": false}\n'
    )
    call_command(
        "integration", "update", "main", "--enable", "--erp", "erp", "--reason", "back", stdout=out
    )
    integration.refresh_from_db()
    assert (integration.erp, integration.enabled) == (connections["erp"], True)
    assert integration.history.first().history_change_reason == "back"
    assert integration.history.count() == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["main", "--setting", "manual_capture_payment_settings=a"], "setting 'manual_capture_"),
        (["main", "--unset", "collection_mode"], "unknown setting 'collection_mode'; known"),
        (["main", "--stripe", "store"], "connection 'store' is a znode connection, not stripe"),
        (["main", "--znode", "ghost"], "no connection named 'ghost'"),
        (["main"], "nothing to change"),
        (["other", "--disable"], "no integration named 'other'"),
    ],
)
def test_integration_update_errors_change_nothing(connections, args, message):
    _integration("--erp", "erp", "--setting", "notify_customer=no")
    with pytest.raises(CommandError) as caught:
        call_command("integration", "update", *args)
    assert str(caught.value).startswith(message)
    integration = Integration.objects.get(name="main")
    assert (integration.znode.name, integration.stripe.name, integration.erp.name) == (
        "store",
        "stripe-live",
        "erp",
    )
    assert (integration.settings, integration.enabled) == ({"notify_customer": False}, True)
    assert integration.history.count() == 1


def test_integration_list_never_shows_secrets(connections, capsys):
    call_command("integration", "list")
    assert capsys.readouterr().out == "no integrations\n"
    _integration("--setting", "manual_capture_payment_settings=8")
    call_command(
        "integration",
        "create",
        "--name",
        "b2b",
        "--znode",
        "store-2",
        "--stripe",
        "stripe-live",
        "--erp",
        "erp",
        "--disabled",
        stdout=StringIO(),
    )
    capsys.readouterr()
    call_command("integration", "list")
    out = capsys.readouterr().out
    assert out == (
        "b2b\tznode: store-2\tstripe: stripe-live\terp: erp\tdisabled\tsettings: {}\n"
        "main\tznode: store\tstripe: stripe-live\terp: -\tenabled\tsettings: "
        '{"manual_capture_payment_settings": [8]}\n'
    )
    assert "SECRET" not in out


# --- credentials kept off the command line --------------------------------------------------
@pytest.mark.parametrize(
    "content",
    [
        '{"domain_name": "store.example", "domain_key": "KEY-FROM-FILE"}',
        "# the store's API key\ndomain_name=store.example\n\ndomain_key = KEY-FROM-FILE\n",
    ],
    ids=["json", "lines"],
)
def test_connection_create_reads_credentials_from_a_file(tmp_path, content):
    path = tmp_path / "store.credentials"
    path.write_text(content)
    connection = _store("--credential-file", str(path))
    assert connection.credentials.reveal() == {
        "domain_name": "store.example",
        "domain_key": "KEY-FROM-FILE",
    }


def test_connection_create_reads_credentials_from_stdin():
    call_command(
        "connection",
        "create",
        "--kind",
        "stripe",
        "--name",
        "stripe-live",
        "--credentials-stdin",
        stdin=StringIO('{"api_key": "sk_live_FROM_STDIN"}'),
        stdout=StringIO(),
    )
    assert Connection.objects.get(name="stripe-live").credential("api_key") == "sk_live_FROM_STDIN"


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ("domain_key\n", [], "credentials line 1: expected KEY=VALUE"),
        ('{"domain_key": 42}', [], "credentials: expected a JSON object of text values"),
        ('{"domain_key": ', [], "credentials: not a JSON object"),
        ("a=1\na=2\n", [], "credentials line 2: a is given twice"),
        ("domain_key=x\n", ["--credential", "domain_key=y"], "credential domain_key given twice"),
    ],
)
def test_bad_credential_files_write_nothing(tmp_path, content, extra, message):
    path = tmp_path / "bad"
    path.write_text(content)
    with pytest.raises(CommandError, match=message):
        _store("--credential-file", str(path), *extra)
    with pytest.raises(CommandError, match="--credential-file: No such file or directory"):
        _store("--credential-file", str(tmp_path / "missing"))
    assert Connection.objects.count() == 0


def test_credential_option_says_it_is_for_tests_only():
    from integrations.management.commands.connection import Command

    parser = Command().create_parser("manage.py", "connection")
    create = parser._subparsers._group_actions[0].choices["create"]
    assert "For tests only" in create.format_help()
