"""The sandbox's webhooks reach the platform's real endpoints over HTTP: signed
Stripe events and Znode 10 webhook-consumer events are verified and stored once,
also when the sandbox delivers duplicates and out of order."""

import time

import pytest

from integrations.models import InboundEvent
from integrations.services.connections import connection_create
from tests.support.shop import Shop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("quiet_sandbox")]

WHSEC = "whsec_e2e_delivery_secret"
ZNODE_AUTH = "Bearer e2e-znode-webhook-token"


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def stripe_client(sandbox):
    import stripe

    return stripe.StripeClient(
        "sk_test_e2e_delivery_key",
        base_addresses={"api": sandbox.system_url("stripe")},
        max_network_retries=0,
    )


def test_signed_stripe_webhooks_are_verified_and_stored(live_server, sandbox):
    connection = connection_create(name="stripe-e2e", kind="stripe", webhook_secrets=[WHSEC])
    sandbox.control(
        "POST",
        "webhooks/stripe",
        {"url": live_server.url + connection.webhook_path, "secret": WHSEC},
    )
    client = stripe_client(sandbox)
    customer = client.v1.customers.create(params={"email": "e2e@example.com"})
    client.v1.payment_intents.create(
        params={
            "amount": 2500,
            "currency": "usd",
            "customer": customer.id,
            "payment_method": "pm_card_visa",
            "confirm": True,
            "metadata": {"znode_order_number": "SBX-E2E-1"},
        }
    )
    wait_for(lambda: InboundEvent.objects.filter(event_type="payment_intent.succeeded").exists())
    succeeded = InboundEvent.objects.get(event_type="payment_intent.succeeded")
    assert succeeded.reference == "SBX-E2E-1"
    assert succeeded.headers["Stripe-Signature"].startswith("t=")
    assert InboundEvent.objects.filter(event_type="customer.created").count() == 1


def test_forged_secret_is_refused_by_the_platform(live_server, sandbox):
    connection = connection_create(name="stripe-e2e-2", kind="stripe", webhook_secrets=[WHSEC])
    sandbox.control(
        "POST",
        "webhooks/stripe",
        {"url": live_server.url + connection.webhook_path, "secret": "whsec_wrong"},
    )
    stripe_client(sandbox).v1.customers.create(params={"email": "x@example.com"})
    log = []
    wait_for(lambda: log.extend(sandbox.control("GET", "webhooks/stripe/log")["deliveries"]) or log)
    assert log[0]["status"] == 400
    assert InboundEvent.objects.count() == 0


def test_znode_webhooks_duplicated_and_reordered_are_stored_once(live_server, sandbox):
    connection = connection_create(name="store-e2e", kind="znode", webhook_secrets=[ZNODE_AUTH])
    sandbox.control(
        "POST",
        "webhooks/znode",
        {"url": live_server.url + connection.webhook_path, "secret": ZNODE_AUTH},
    )
    sandbox.set_faults("znode", webhook_duplicate_rate=1.0, webhook_reorder_window=3)
    shop = Shop(sandbox.system_url("znode"))
    numbers = [shop.place_order(total=f"{30 + i}.00")["OrderNumber"] for i in range(3)]
    wait_for(lambda: InboundEvent.objects.filter(event_type="order.created").count() == 3)
    sandbox.control("POST", "webhooks/znode/flush")
    time.sleep(0.5)  # let every duplicate arrive
    created = InboundEvent.objects.filter(event_type="order.created")
    assert sorted(e.reference for e in created) == sorted(numbers)
    assert sorted(e.deliveries for e in created) == [2, 2, 2]  # each sent twice, kept once
