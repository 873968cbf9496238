"""Item 1 of issue 9: nothing a webhook secret or a connection URL's password can leak
through, not a debug page, not an error report."""

import pytest
from django.test import Client
from django.views.debug import ExceptionReporter, get_default_exception_reporter_filter

from integrations.connectors.znode import webhooks as znode_webhooks
from tests.conftest import STRIPE_OLD_SECRET, STRIPE_SECRET, ZNODE_TOKEN, post_stripe, stripe_event
from tests.support.environment import setting_in_subprocess

# Built, not written out: an error report quotes source lines, this file's among them.
PG_PASSWORD, REDIS_PASSWORD = "-".join(("pg", "hunter2")), "-".join(("redis", "hunter2"))


def test_debug_is_off_unless_the_environment_turns_it_on(tmp_path):
    """Rule: DEBUG defaults to false; `make demo` / `make run` export DEBUG=true."""
    assert setting_in_subprocess(tmp_path, "settings.DEBUG") == "False"
    assert setting_in_subprocess(tmp_path, "settings.DEBUG", DEBUG="true") == "True"


@pytest.mark.django_db
def test_a_webhook_bug_never_renders_the_debug_page(stripe_connection, settings, monkeypatch):
    """Even with DEBUG on, an unexpected error in intake answers a bare JSON 500: the
    debug page would list the view's locals, the connection's webhook secrets."""
    settings.DEBUG = True

    def broken(**kwargs):
        raise RuntimeError("database fell over")

    monkeypatch.setattr("integrations.views.inbox_event_receive", broken)
    response = post_stripe(Client(raise_request_exception=False), stripe_connection, stripe_event())
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": "internal error"}
    for secret in (STRIPE_SECRET, STRIPE_OLD_SECRET):
        assert secret not in response.content.decode()


@pytest.mark.django_db
def test_znode_verify_hides_its_locals_from_error_reports():
    """@sensitive_variables on the Znode check too (its secret is a plain value)."""
    secret = "plain-znode-authorization-value"
    try:
        znode_webhooks.verify(
            body=b"{}", meta={"HTTP_AUTHORIZATION": "guess"}, secrets=[secret, ZNODE_TOKEN]
        )
    except Exception as exc:
        frames = ExceptionReporter(None, type(exc), exc, exc.__traceback__).get_traceback_frames()
    inner = [
        f
        for f in frames
        if f["function"] != "test_znode_verify_hides_its_locals_from_error_reports"
    ]
    assert "verify" in [f["function"] for f in inner]
    assert secret not in repr([f["vars"] for f in inner])


def test_error_reports_mask_connection_url_passwords(settings):
    """The reporter filter hides the password of every URL in settings (REDIS_URL,
    the broker URL inside Q_CLUSTER, a DATABASE_URL kept as a setting) and in locals."""
    settings.REDIS_URL = f"redis://:{REDIS_PASSWORD}@cache.internal:6379/0"
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "redis": settings.REDIS_URL}
    settings.DATABASE_URL = f"postgres://app:{PG_PASSWORD}@db.internal:5432/app"
    reporter_filter = get_default_exception_reporter_filter()
    safe = reporter_filter.get_safe_settings()
    assert safe["REDIS_URL"] == "redis://:[redacted]@cache.internal:6379/0"
    assert safe["Q_CLUSTER"]["redis"] == "redis://:[redacted]@cache.internal:6379/0"
    assert PG_PASSWORD not in repr(safe)

    def connect(url):
        raise ConnectionError("cannot connect")

    try:
        connect(settings.DATABASE_URL)
    except ConnectionError as exc:
        text = ExceptionReporter(None, type(exc), exc, exc.__traceback__).get_traceback_text()
    assert "db.internal" in text
    assert PG_PASSWORD not in text and REDIS_PASSWORD not in text
