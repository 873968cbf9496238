"""The WSGI entry point serves webhooks through the fast lane and the rest normally."""

import io
import json

import pytest

from config.wsgi import application
from integrations.models import InboundEvent
from tests.conftest import sign_stripe, stripe_event


def call(method, path, body=b"", headers=None):
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "localhost",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
        **(headers or {}),
    }
    status = {}

    def start_response(line, response_headers, exc_info=None):
        status["line"], status["headers"] = line, dict(response_headers)

    content = b"".join(application(environ, start_response))
    return int(status["line"].split()[0]), status["headers"], content


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
