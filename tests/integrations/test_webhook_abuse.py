"""Issue 9, done-when: no request to a webhook endpoint produces a 5xx, and no secret
(webhook secrets, API keys, the Znode key) shows in any answer or any log line.

Malformed, non-ASCII and oversized signatures and bodies are posted to every webhook
endpoint (Stripe and Znode), through the test client (the full middleware stack) and
through the WSGI fast lane that serves them in production, with DEBUG on so that any
500 would be Django's debug page with the view's locals.
"""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from config.wsgi import WebhookHandler
from integrations.connectors.znode.webhooks import sign as sign_znode
from tests.conftest import (
    STRIPE_OLD_SECRET,
    STRIPE_SECRET,
    ZNODE_TOKEN,
    sign_stripe,
    stripe_event,
    znode_event,
)
from tests.support.wsgi import wsgi_call

ZNODE_SIGNING_SECRET = "znode-gateway-hmac-secret"
STRIPE_API_KEY = "sk_test_51TESTKEYabcdefghijkl"  # the stripe_connection fixture's
ZNODE_DOMAIN_KEY = "9f1c-secret-key"  # the znode_connection fixture's
SECRETS = (
    STRIPE_SECRET,
    STRIPE_OLD_SECRET,
    STRIPE_API_KEY,
    ZNODE_TOKEN,
    ZNODE_TOKEN.removeprefix("Bearer "),
    ZNODE_SIGNING_SECRET,
    ZNODE_DOMAIN_KEY,
)
LIMIT = 4096  # WEBHOOK_MAX_BODY_BYTES for these tests


def _event(kind: str) -> bytes:
    payload = stripe_event() if kind == "stripe" else znode_event()
    return json.dumps(payload).encode()


def _signed(kind: str, body: bytes) -> dict[str, str]:
    """A valid credential for ``body`` (the body may still be unreadable)."""
    if kind == "stripe":
        return {"HTTP_STRIPE_SIGNATURE": sign_stripe(body.decode("latin-1"))}
    return {"HTTP_AUTHORIZATION": ZNODE_TOKEN}


def _signature(kind: str, value: str) -> dict[str, str]:
    return {"HTTP_STRIPE_SIGNATURE" if kind == "stripe" else "HTTP_X_ZNODE_SIGNATURE": value}


now = int(time.time())
BAD_SIGNATURES = {
    "non-ascii": "t=1,v1=\xe9",
    "non-ascii, fresh": f"t={now},v1=caf\xe9",
    "nul": f"t={now},v1=\x00",
    "garbage": "garbage",
    "commas": "," * 2000,
    "huge timestamp": "t=" + "9" * 400 + ",v1=" + "0" * 64,
    "negative timestamp": "t=-5,v1=" + "0" * 64,
    "oversized": f"t={now}," + ",".join(["v1=" + "a" * 64] * 1500),
    "secret as signature": STRIPE_SECRET,
}
BAD_BODIES = {
    "not utf-8": b"\xff\xfe{\x00\x81",
    "malformed json": b'{"id": "evt_1", "type": ',
    "json array": b"[1, 2, 3]",
    "nul bytes": b'{"id": "evt_\x00", "type": "x\x00"}',
    "deeply nested": b"[" * 3000 + b"]" * 3000,
    "oversized": b'{"pad": "' + b"x" * LIMIT + b'"}',
    "non-ascii event": None,  # a valid event with non-ASCII text, built per kind
}


def _cases():
    for kind in ("stripe", "znode"):
        for name in BAD_SIGNATURES:
            yield pytest.param(kind, "signature", name, id=f"{kind}-signature-{name}")
        for name in BAD_BODIES:
            yield pytest.param(kind, "body", name, id=f"{kind}-body-{name}")
        for name in ("authorization non-ascii", "authorization oversized", "tampered"):
            yield pytest.param(kind, "other", name, id=f"{kind}-{name}")


def _request(kind: str, what: str, name: str) -> tuple[bytes, dict[str, str]]:
    if what == "signature":
        return _event(kind), _signature(kind, BAD_SIGNATURES[name])
    if what == "body":
        body = BAD_BODIES[name]
        if body is None:
            payload = stripe_event() if kind == "stripe" else znode_event()
            payload["note"] = "Zoë Ünïcødé 😀 \u2028 \\"
            body = json.dumps(payload, ensure_ascii=False).encode()
        return body, _signed(kind, body)
    body = _event(kind)
    if name == "authorization non-ascii":
        return body, {"HTTP_AUTHORIZATION": "Bearer \xe9\xff"}
    if name == "authorization oversized":
        return body, {"HTTP_AUTHORIZATION": "Bearer " + "A" * 100_000}
    if kind == "stripe":  # tampered: signed for one body, sent with another
        return body + b" ", {"HTTP_STRIPE_SIGNATURE": sign_stripe(body.decode())}
    return body + b" ", {"HTTP_X_ZNODE_SIGNATURE": sign_znode(body, ZNODE_SIGNING_SECRET)}


def _through_client(path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    client = Client(raise_request_exception=False)
    response = client.generic("POST", path, body, content_type="application/json", **headers)
    return response.status_code, response.content


def _through_fast_lane(path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    status, _, content = wsgi_call(WebhookHandler(), "POST", path, body, headers)
    return status, content


@pytest.fixture
def endpoints(stripe_connection, znode_connection, settings):
    settings.DEBUG = True  # a 500 would render the debug page, locals and all
    settings.INTEGRATIONS = {**settings.INTEGRATIONS, "WEBHOOK_MAX_BODY_BYTES": LIMIT}
    znode_connection.webhook_secrets = [ZNODE_TOKEN, ZNODE_SIGNING_SECRET]
    znode_connection.save()
    return {"stripe": stripe_connection.webhook_path, "znode": znode_connection.webhook_path}


@pytest.mark.django_db
@pytest.mark.parametrize("lane", [_through_client, _through_fast_lane], ids=["client", "fast-lane"])
@pytest.mark.parametrize(("kind", "what", "name"), list(_cases()))
def test_abusive_requests_get_no_5xx_and_no_secret(endpoints, caplog, lane, kind, what, name):
    body, headers = _request(kind, what, name)
    status, content = lane(endpoints[kind], body, headers)
    assert status < 500, content[:2000]
    if what == "signature" or name in ("tampered", "authorization non-ascii"):
        assert status == 400
    if name == "oversized" and what == "body":
        assert status == 413
    text = content.decode("utf-8", errors="replace")
    for secret in SECRETS:
        assert secret not in text
        assert secret not in caplog.text
