import hashlib
import hmac
import json
import time

import pytest
from django.test import Client

from integrations.choices import EventStatus
from integrations.connectors.znode.constants import SIGNATURE_META
from integrations.connectors.znode.webhooks import TOLERANCE_SECONDS, parse, sign, verify
from integrations.kernel.exceptions import WebhookPayloadError, WebhookVerificationError
from integrations.models import InboundEvent, Job
from tests.conftest import ZNODE_TOKEN, make_flow, post_znode, znode_event
from tests.integrations.webhook_contract import WebhookSecurityContract, snapshot

SIGNING_SECRET = "znode-gateway-hmac-secret"


class TestZnodeWebhookSecurity(WebhookSecurityContract):
    @pytest.fixture
    def connection(self, znode_connection):
        znode_connection.webhook_secrets = [ZNODE_TOKEN, SIGNING_SECRET]
        znode_connection.save()
        return znode_connection

    @pytest.fixture
    def valid_payload(self):
        return znode_event()

    def deliver(self, client, connection, payload, **how):
        return post_znode(client, connection, payload, **how)

    def deliver_unsigned(self, client, connection, payload):
        return post_znode(client, connection, payload, authorization=None)

    def deliver_with_wrong_secret(self, client, connection, payload):
        return post_znode(client, connection, payload, authorization="Bearer guessed")

    def deliver_with_retired_secret(self, client, connection, payload):
        body = json.dumps(payload)
        return post_znode(
            client,
            connection,
            body,
            authorization=None,
            signature=sign(body.encode(), SIGNING_SECRET),
        )

    def test_hmac_over_tampered_body_is_rejected(self, client, connection, valid_payload):
        body = json.dumps(valid_payload)
        signature = sign(body.encode(), SIGNING_SECRET)
        before = snapshot()
        response = post_znode(
            client, connection, self.tamper(valid_payload), authorization=None, signature=signature
        )
        assert response.status_code == 400
        assert snapshot() == before

    def test_timestamped_signature_is_the_hmac_of_t_dot_body(
        self, client, connection, valid_payload
    ):
        body = json.dumps(valid_payload).encode()
        now = int(time.time())
        digest = hmac.new(SIGNING_SECRET.encode(), b"%d." % now + body, hashlib.sha256).hexdigest()
        response = post_znode(
            client, connection, body.decode(), authorization=None, signature=f"t={now},v1={digest}"
        )
        assert response.status_code == 200, response.content
        assert InboundEvent.objects.count() == 1

    def test_untimestamped_signature_is_refused(self, client, connection, valid_payload):
        """Rule chosen (issue 9, 13d): the legacy ``X-Znode-Signature: sha256=<hex>``
        form is refused, whatever the connection's settings: it carries no time, so
        one captured request could be replayed forever. Gateways sign
        ``t=<unix>,v1=<hex of HMAC(secret, "<t>.<body>")>``; stock Znode's plain
        Authorization value stays accepted."""
        body = json.dumps(valid_payload).encode()
        legacy = "sha256=" + hmac.new(SIGNING_SECRET.encode(), body, hashlib.sha256).hexdigest()
        before = snapshot()
        response = post_znode(
            client, connection, body.decode(), authorization=None, signature=legacy
        )
        assert response.status_code == 400
        assert snapshot() == before

    # 5 s beyond the tolerance: a slow machine between signing and checking never
    # brings a dated-ahead signature back inside it.
    @pytest.mark.parametrize("age", [TOLERANCE_SECONDS + 5, -(TOLERANCE_SECONDS + 5)])
    def test_signature_outside_the_tolerance_is_refused(
        self, client, connection, valid_payload, age
    ):
        """A replay later than 300 s (or a signature dated that far ahead) is refused."""
        body = json.dumps(valid_payload)
        signature = sign(body.encode(), SIGNING_SECRET, timestamp=int(time.time()) - age)
        before = snapshot()
        response = post_znode(client, connection, body, authorization=None, signature=signature)
        assert response.status_code == 400
        assert snapshot() == before

    @pytest.mark.parametrize(
        "signature",
        [
            "t=1,v1=\xe9",
            "t=\xe9\xe9,v1=" + "0" * 64,
            "v1=" + "0" * 64,
            "t=1700000000",
            "t=1700000000,v1=XYZ",
            "t=1,t=2,v1=" + "0" * 64,
            "t=99999999999999999999999,v1=" + "0" * 64,
            "," * 5000,
            "\x00",
        ],
    )
    def test_malformed_signatures_are_400(self, connection, valid_payload, signature):
        before = snapshot()
        response = post_znode(
            Client(raise_request_exception=False),
            connection,
            valid_payload,
            authorization=None,
            signature=signature,
        )
        assert response.status_code == 400
        assert snapshot() == before

    def test_authorization_header_is_not_stored(self, client, connection, valid_payload):
        self.deliver(client, connection, valid_payload)
        event = InboundEvent.objects.get()
        assert event.headers["Authorization"] == "[redacted]"
        assert ZNODE_TOKEN not in json.dumps(event.headers)


def test_parse_decodes_the_double_encoded_payload():
    payload = znode_event(payload={"OmsOrderId": 7, "OrderNumber": "ORD-7", "Total": 10.5})
    parsed = parse(json.dumps(payload).encode())
    assert parsed.event_type == "order.created"
    assert parsed.external_id == payload["EventId"]
    assert parsed.object_id == "7"
    assert parsed.reference == "ORD-7"
    assert parsed.payload["object"] == {"OmsOrderId": 7, "OrderNumber": "ORD-7", "Total": 10.5}
    assert parsed.payload["envelope"]["EventModule"] == "Order"
    assert parsed.occurred_at.isoformat() == "2026-11-30T10:00:00+00:00"


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (lambda p: p.pop("EventId"), "no EventId"),
        (lambda p: p.pop("EventModule"), "no EventModule"),
        (lambda p: p.update(EventPayload="{not json"), "EventPayload is not valid JSON"),
        (lambda p: p.update(EventPayload="[1, 2]"), "does not hold a JSON object"),
        (lambda p: p.update(EventPayload=5), "neither a JSON string"),
    ],
)
def test_parse_rejects_malformed_events(mutation, message):
    payload = znode_event()
    mutation(payload)
    with pytest.raises(WebhookPayloadError, match=message):
        parse(json.dumps(payload).encode())


@pytest.mark.django_db
def test_znode_order_created_runs_its_flow(client, integration, django_capture_on_commit_callbacks):
    make_flow(
        "order-created",
        source="znode",
        event="order.*",
        steps=[("echo", "tests.echo", {"value": "event.data.object.OrderNumber"})],
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = post_znode(client, integration.znode, znode_event())
    assert response.status_code == 200
    assert InboundEvent.objects.get().status == EventStatus.PROCESSED
    assert Job.objects.get().step_outputs["echo"]["value"] == "ORD-1001"


@pytest.mark.django_db
def test_znode_unknown_module_is_ignored(client, integration):
    response = post_znode(client, integration.znode, znode_event(module="Portal"))
    assert response.status_code == 200
    assert InboundEvent.objects.get().status == EventStatus.IGNORED


@pytest.mark.django_db
def test_erp_has_no_webhook_endpoint(client, erp_connection):
    response = client.post(erp_connection.webhook_path, data="{}", content_type="application/json")
    assert response.status_code == 404
    assert InboundEvent.objects.count() == 0


def test_an_address_event_is_about_the_address_not_its_user():
    """One user has several addresses (reference §6): keying address events by the
    user id would merge changes to different rows."""
    payload = znode_event(
        module="Address",
        name="Updated",
        payload={"AddressId": 205, "UserId": 14, "Address1": "Torstrasse 10"},
    )
    parsed = parse(json.dumps(payload).encode())
    assert (parsed.event_type, parsed.object_id) == ("address.updated", "205")
    user = parse(
        json.dumps(znode_event(module="User", name="Updated", payload={"UserId": 14})).encode()
    )
    assert user.object_id == "14"


def test_a_signed_request_replays_only_within_the_tolerance():
    body = b'{"EventId": "1"}'
    signature = sign(body, SIGNING_SECRET, timestamp=1_800_000_000)
    meta = {SIGNATURE_META: signature}
    verify(body=body, meta=meta, secrets=[SIGNING_SECRET], now=1_800_000_000 + TOLERANCE_SECONDS)
    with pytest.raises(WebhookVerificationError, match="outside 300 s"):
        verify(
            body=body, meta=meta, secrets=[SIGNING_SECRET], now=1_800_000_001 + TOLERANCE_SECONDS
        )
    with pytest.raises(WebhookVerificationError, match="rejected"):
        verify(body=body + b" ", meta=meta, secrets=[SIGNING_SECRET], now=1_800_000_000)


def test_a_body_not_in_utf8_is_a_payload_error_not_a_crash():
    """``json.loads`` would read UTF-16 bytes, which the inbox cannot store as text:
    only UTF-8 is a body."""
    import json as _json

    import pytest as _pytest

    from integrations.connectors.base import load_json_object
    from integrations.kernel.exceptions import WebhookPayloadError

    body = _json.dumps({"EventId": 1}).encode("utf-16")
    with _pytest.raises(WebhookPayloadError):
        load_json_object(body)
    assert load_json_object(_json.dumps({"a": "é"}).encode()) == {"a": "é"}
