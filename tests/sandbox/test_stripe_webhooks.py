"""Events and signed webhook delivery (verified with the SDK), retries and delivery knobs."""

from __future__ import annotations

import json
import time

import pytest
import stripe

from tests.sandbox.localstripe_support import WebhookReceiver
from tests.sandbox.test_stripe import header, make_client
from tests.sandbox.test_stripe_payments import hook, pay

# Tests of Stripe itself start from an empty account (no seeded Znode charges).
pytestmark = pytest.mark.usefixtures("empty_stripe")

SECRET = "whsec_sandbox_test_secret"


@pytest.fixture
def client(sandbox):
    return make_client(sandbox)


@pytest.fixture
def receiver():
    made: list[WebhookReceiver] = []

    def make(*statuses: int, default_status: int = 200) -> WebhookReceiver:
        made.append(WebhookReceiver(statuses, default_status))
        return made[-1]

    yield make
    for item in made:
        item.close()


def register(sandbox, url: str, secret: str = SECRET, events: list[str] | None = None) -> None:
    sandbox.control(
        "POST", "webhooks/stripe", {"url": url, "secret": secret, "events": events or []}
    )


def eventually(check, timeout: float = 5.0):
    """Poll ``check()`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)
    return result


def verify(delivery: dict, secret: str = SECRET) -> dict:
    signature = {k.lower(): v for k, v in delivery["headers"].items()}["stripe-signature"]
    stripe.WebhookSignature.verify_header(delivery["body"].decode(), signature, secret, 300)
    return json.loads(delivery["body"])


def test_events_are_kept_and_filtered(client):
    customer = client.v1.customers.create(
        {"email": "ada@example.com"}, {"idempotency_key": "k-ada"}
    )
    pi = pay(client, customer=customer.id)
    client.v1.refunds.create({"payment_intent": pi.id, "amount": 100})
    types = [e.type for e in client.v1.events.list({"limit": 100}).auto_paging_iter()][::-1]
    assert types == [
        "customer.created",
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "charge.refunded",
        "refund.created",
    ]
    created = client.v1.events.list({"type": "customer.created"}).data[0]
    assert created.id.startswith("evt_") and created.object == "event"
    assert (created.api_version, created.livemode, created.pending_webhooks) == (
        "2026-10-28.endive",
        False,
        0,
    )
    assert created.data.object.id == customer.id
    assert created.request.id == customer.last_response.request_id
    assert created.request.idempotency_key == "k-ada"
    assert client.v1.events.retrieve(created.id).to_dict() == created.to_dict()
    assert [e.type for e in client.v1.events.list({"type": "charge.*"}).data] == [
        "charge.refunded",
        "charge.succeeded",
    ]
    both = client.v1.events.list({"types": ["refund.created", "customer.created"]}).data
    assert [e.type for e in both] == ["refund.created", "customer.created"]
    assert client.v1.events.list({"created": {"gt": created.created + 5}}).data == []
    assert len(client.v1.events.list({"created": {"gte": created.created}, "limit": 100}).data) == 6
    # The snapshot is the object as it was when the event happened.
    succeeded = client.v1.events.list({"type": "payment_intent.succeeded"}).data[0]
    assert succeeded.data.object.status == "succeeded"
    assert client.v1.events.list({"type": "payment_intent.created"}).data[0].data.object.status == (
        "requires_confirmation"
    )
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.events.retrieve("evt_missing")


def test_webhooks_are_signed_in_order(sandbox, client, receiver):
    hooked = receiver()
    register(sandbox, hooked.url)
    customer = client.v1.customers.create({"email": "ada@example.com"})
    pi = pay(client, customer=customer.id)
    deliveries = hooked.wait_for(lambda d: len(d) >= 4)
    events = [verify(d) for d in deliveries]
    assert [e["type"] for e in events] == [
        "customer.created",
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
    ]
    assert events[-1]["data"]["object"]["id"] == pi.id
    assert events[0]["pending_webhooks"] == 1
    assert {k.lower(): v for k, v in deliveries[0]["headers"].items()}["content-type"].startswith(
        "application/json"
    )
    with pytest.raises(stripe.SignatureVerificationError):
        verify(deliveries[0], "whsec_wrong")
    event = client.construct_event(
        deliveries[-1]["body"].decode(), deliveries[-1]["headers"]["Stripe-Signature"], SECRET
    )
    assert (event.type, event.data.object.amount) == ("payment_intent.succeeded", 2000)
    # Delivered events no longer count as pending.
    stored = eventually(
        lambda: (e := client.v1.events.retrieve(events[-1]["id"])).pending_webhooks == 0 and e
    )
    assert {k: v for k, v in stored.to_dict().items() if k != "pending_webhooks"} == {
        k: v for k, v in events[-1].items() if k != "pending_webhooks"
    }
    assert len(client.v1.events.list({"delivery_success": True}).data) == 4


def test_endpoints_get_the_events_they_ask_for(sandbox, client, receiver):
    everything, some = receiver(), receiver()
    register(sandbox, everything.url)
    register(sandbox, some.url, "whsec_other", ["payment_intent.succeeded", "refund.created"])
    pi = pay(client)
    client.v1.refunds.create({"payment_intent": pi.id})
    everything.wait_for(lambda d: len(d) >= 5)
    got = some.wait_for(lambda d: len(d) >= 2)
    assert [verify(d, "whsec_other")["type"] for d in got] == [
        "payment_intent.succeeded",
        "refund.created",
    ]
    time.sleep(0.2)
    assert len(some.deliveries) == 2


def test_failed_deliveries_are_retried(sandbox, client, receiver):
    hook(sandbox, "config", {"webhook_retry_delays": [0.05, 0.1, 0.2]})
    flaky = receiver(500, 503)
    register(sandbox, flaky.url)
    customer = client.v1.customers.create({"email": "ada@example.com"})
    deliveries = flaky.wait_for(lambda d: any(x["status"] == 200 for x in d))
    assert [d["status"] for d in deliveries] == [500, 503, 200]
    assert {verify(d)["id"] for d in deliveries} == {client.v1.events.list().data[0].id}
    assert verify(deliveries[-1])["data"]["object"]["id"] == customer.id
    log = sandbox.control("GET", "webhooks/stripe/log")["deliveries"]
    assert [(entry["attempt"], entry["status"]) for entry in log] == [(1, 500), (2, 503), (3, 200)]
    eventually(lambda: client.v1.events.list().data[0].pending_webhooks == 0)


def test_delivery_gives_up_after_the_retries(sandbox, client, receiver):
    hook(sandbox, "config", {"webhook_retry_delays": [0.05, 0.05]})
    down = receiver(default_status=500)
    register(sandbox, down.url)
    client.v1.customers.create({"email": "ada@example.com"})
    down.wait_for(lambda d: len(d) >= 3)
    time.sleep(0.3)
    assert len(down.deliveries) == 3
    undelivered = client.v1.events.list({"delivery_success": False}).data
    assert [(e.type, e.pending_webhooks) for e in undelivered] == [("customer.created", 1)]
    assert client.v1.events.list({"delivery_success": True}).data == []


def test_duplicate_knob_delivers_twice(sandbox, client, receiver):
    hooked = receiver()
    register(sandbox, hooked.url)
    sandbox.set_faults("stripe", webhook_duplicate_rate=1.0)
    client.v1.customers.create({"email": "ada@example.com"})
    deliveries = hooked.wait_for(lambda d: len(d) >= 2)
    first, second = (verify(d) for d in deliveries)
    assert first == second
    assert len(client.v1.events.list().data) == 1


def test_reorder_knob_holds_and_shuffles(sandbox, client, receiver):
    hooked = receiver()
    register(sandbox, hooked.url)
    sandbox.set_faults("stripe", webhook_reorder_window=10)
    for n in range(3):
        client.v1.customers.create({"email": f"c{n}@example.com"})
    time.sleep(0.2)
    assert hooked.deliveries == []
    sandbox.control("POST", "webhooks/stripe/flush")
    deliveries = hooked.wait_for(lambda d: len(d) >= 3)
    assert sorted(verify(d)["id"] for d in deliveries) == sorted(
        e.id for e in client.v1.events.list().data
    )


def test_disabled_webhooks_are_not_sent(sandbox, client, receiver):
    hooked = receiver()
    register(sandbox, hooked.url)
    sandbox.set_faults("stripe", webhooks_enabled=False)
    client.v1.customers.create({"email": "ada@example.com"})
    time.sleep(0.2)
    assert hooked.deliveries == []
    assert client.v1.events.list().data[0].pending_webhooks == 0


def test_webhook_endpoints_api(client, receiver):
    hooked = receiver()
    endpoint = client.v1.webhook_endpoints.create(
        {"url": hooked.url, "enabled_events": ["customer.created"]}
    )
    assert endpoint.id.startswith("we_") and endpoint.secret.startswith("whsec_")
    assert "secret" not in client.v1.webhook_endpoints.retrieve(endpoint.id).to_dict()
    first = client.v1.customers.create({"email": "ada@example.com"})
    client.v1.customers.update(first.id, {"name": "Ada"})
    delivered = hooked.wait_for(lambda d: len(d) >= 1)
    assert verify(delivered[0], endpoint.secret)["data"]["object"]["id"] == first.id
    assert [w.id for w in client.v1.webhook_endpoints.list().data] == [endpoint.id]
    assert client.v1.webhook_endpoints.delete(endpoint.id).deleted is True
    client.v1.customers.create({"email": "bob@example.com"})
    time.sleep(0.2)
    assert len(hooked.deliveries) == 1
    assert header(first.last_response, "request-id").startswith("req_")
