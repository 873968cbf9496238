"""The WSGI entry point serves webhooks through the fast lane and the rest normally."""

import json

import pytest

from config.wsgi import WebhookHandler, application
from integrations.models import InboundEvent
from tests.conftest import sign_stripe, stripe_event
from tests.support.wsgi import wsgi_call


def call(method, path, body=b"", headers=None, app=None):
    return wsgi_call(app or application, method, path, body, headers)


@pytest.mark.django_db(transaction=True)
def test_webhook_through_the_fast_lane(stripe_connection):
    body = json.dumps(stripe_event())
    status, headers, content = call(
        "POST",
        stripe_connection.webhook_path,
        body.encode(),
        {"HTTP_STRIPE_SIGNATURE": sign_stripe(body)},
    )
    assert status == 200, content
    assert json.loads(content)["received"] is True
    assert headers["Content-Length"] == str(len(content))  # keep-alive clients need it
    assert "X-Frame-Options" not in headers  # no browser middleware on this lane
    assert InboundEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_fast_lane_still_rejects_forgeries(stripe_connection):
    body = json.dumps(stripe_event())
    status, _, _ = call(
        "POST",
        stripe_connection.webhook_path,
        body.encode(),
        {"HTTP_STRIPE_SIGNATURE": sign_stripe(body, secret="whsec_forged")},
    )
    assert status == 400
    assert InboundEvent.objects.count() == 0


@pytest.mark.django_db
def test_everything_else_keeps_the_full_stack():
    status, headers, _ = call("GET", "/admin/login/")
    assert status == 200
    assert headers["X-Frame-Options"] == "DENY"


def signed(connection):
    body = json.dumps(stripe_event())
    return body.encode(), {"HTTP_STRIPE_SIGNATURE": sign_stripe(body)}


@pytest.mark.django_db(transaction=True)
def test_fast_lane_refuses_hosts_not_allowed(stripe_connection, caplog):
    """ALLOWED_HOSTS holds on the fast lane as on the full stack: 400, nothing stored."""
    body, headers = signed(stripe_connection)
    status, _, content = call(
        "POST", stripe_connection.webhook_path, body, {**headers, "HTTP_HOST": "evil.example"}
    )
    assert status == 400
    assert json.loads(content) == {"error": "bad request"}
    assert "Invalid HTTP_HOST header: 'evil.example'" in caplog.text
    assert InboundEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_fast_lane_redirects_plain_http_when_ssl_redirect_is_on(stripe_connection, settings):
    """What SecurityMiddleware does on the full stack, the fast lane does too (its
    middleware reads the settings when the handler is built, as at start-up)."""
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    lane = WebhookHandler()
    body, headers = signed(stripe_connection)
    status, response_headers, _ = call("POST", stripe_connection.webhook_path, body, headers, lane)
    assert status == 301
    assert response_headers["Location"] == f"https://localhost{stripe_connection.webhook_path}"
    assert InboundEvent.objects.count() == 0
    status, response_headers, _ = call(
        "POST", stripe_connection.webhook_path, body, {**headers, "wsgi.url_scheme": "https"}, lane
    )
    assert status == 200
    assert response_headers["Strict-Transport-Security"].startswith("max-age=3600")
    assert response_headers["X-Content-Type-Options"] == "nosniff"
    assert InboundEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_fast_lane_trusts_the_proxy_header_only_when_configured(stripe_connection, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    body, headers = signed(stripe_connection)
    status, _, _ = call(
        "POST",
        stripe_connection.webhook_path,
        body,
        {**headers, "HTTP_X_FORWARDED_PROTO": "https"},
        WebhookHandler(),
    )
    assert status == 200


@pytest.mark.django_db
def test_fast_lane_never_renders_a_debug_page(settings):
    """With DEBUG on, an unknown webhook URL is still a JSON 404 (no URL list)."""
    settings.DEBUG = True
    status, headers, content = call("POST", "/webhooks/nothing/here/", b"{}", app=WebhookHandler())
    assert status == 404
    assert headers["Content-Type"] == "application/json"
    assert json.loads(content) == {"error": "unknown endpoint"}
