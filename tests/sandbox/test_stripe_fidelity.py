"""The same scenarios against the sandbox and against localstripe, an independent Stripe
emulator run as a separate process, comparing only what both support: statuses, amounts,
object types, error classes and HTTP statuses.

Where localstripe departs from real Stripe (per /work/shared/reference/stripe.md and
localstripe.md), the sandbox follows Stripe and the scenario avoids the difference; each is
noted where it matters:

* localstripe ignores Idempotency-Key, charges no fees and has no minimum amount (real Stripe
  refuses 49 cents with ``amount_too_small``): not compared.
* localstripe answers 404 for a deleted customer; Stripe answers 200 with ``deleted: true``.
* localstripe leaves a canceled authorization's charge unrefunded; Stripe refunds the amount
  that was capturable. Only the PaymentIntent's status is compared.
* localstripe books a partial capture as a full charge plus a refund; Stripe books the captured
  amount. Only ``amount_refunded`` (the released remainder, in both) is compared.
* After a decline localstripe keeps ``payment_method`` and cannot be confirmed again; Stripe
  clears it and accepts another card. Only the decline itself is compared.
* localstripe's card errors have ``type: invalid_request_error`` and no ``decline_code``;
  Stripe's have ``card_error`` and a decline code. Compared: the class, 402 and ``code``.
* localstripe returns ``latest_charge`` embedded; Stripe returns an id unless expanded, so the
  scenarios always expand it.
* Legacy charges: localstripe takes only ``pm_``/``src_``/``card_`` ids as ``source`` (no
  ``tok_visa``), emits no ``charge.*`` events and books a partial capture's remainder as a
  refund; the scenarios use ``pm_card_visa`` and compare statuses and ``amount_refunded``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import stripe

from tests.sandbox.localstripe_support import API_KEY, WebhookReceiver
from tests.sandbox.test_stripe import make_client

# Tests of Stripe itself start from an empty account (no seeded Znode charges).
pytestmark = pytest.mark.usefixtures("empty_stripe")

SECRET = "whsec_fidelity_secret"


@dataclass
class Backend:
    name: str
    client: stripe.StripeClient
    add_webhook: Callable[[str, str], None]


@pytest.fixture(params=["sandbox", "localstripe"])
def backend(request) -> Backend:
    if request.param == "sandbox":
        sandbox = request.getfixturevalue("sandbox")
        return Backend(
            "sandbox",
            make_client(sandbox),
            lambda url, secret: sandbox.control(
                "POST", "webhooks/stripe", {"url": url, "secret": secret}
            ),
        )
    server = request.getfixturevalue("localstripe")
    server.reset()
    client = stripe.StripeClient(
        API_KEY,
        base_addresses={"api": server.url},
        max_network_retries=0,
        http_client=stripe.UrllibClient(),
    )
    return Backend(
        "localstripe", client, lambda url, secret: server.add_webhook("fidelity", url, secret)
    )


def charge_of(client, pi_id: str):
    return client.v1.payment_intents.retrieve(pi_id, {"expand": ["latest_charge"]}).latest_charge


def test_customer_create_update_retrieve_list(backend):
    c = backend.client
    customer = c.v1.customers.create(
        {
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "phone": "+15555550100",
            "address": {
                "line1": "1 Main St",
                "city": "Springfield",
                "postal_code": "62701",
                "country": "US",
            },
            "metadata": {"znode_user_id": "42", "tier": "gold"},
        }
    )
    assert customer.object == "customer" and customer.id.startswith("cus_")
    assert (customer.name, customer.email, customer.phone) == (
        "Ada Lovelace",
        "ada@example.com",
        "+15555550100",
    )
    assert (customer.address.line1, customer.address.city) == ("1 Main St", "Springfield")
    updated = c.v1.customers.update(customer.id, {"metadata": {"erp_id": "C-9"}})
    assert updated.metadata.to_dict() == {"znode_user_id": "42", "tier": "gold", "erp_id": "C-9"}
    fetched = c.v1.customers.retrieve(customer.id)
    assert fetched.metadata.to_dict() == updated.metadata.to_dict()
    c.v1.customers.create({"email": "bob@example.com"})
    assert [x.id for x in c.v1.customers.list({"email": "ada@example.com"}).data] == [customer.id]
    assert c.v1.customers.delete(customer.id).deleted is True


def test_create_then_confirm(backend):
    c = backend.client
    customer = c.v1.customers.create({"email": "ada@example.com"})
    pi = c.v1.payment_intents.create(
        {
            "amount": 2000,
            "currency": "usd",
            "customer": customer.id,
            "payment_method": "pm_card_visa",
            "metadata": {"order": "1001"},
        }
    )
    assert (pi.object, pi.status, pi.amount, pi.currency) == (
        "payment_intent",
        "requires_confirmation",
        2000,
        "usd",
    )
    assert pi.capture_method == "automatic_async"
    pi = c.v1.payment_intents.update(pi.id, {"metadata": {"channel": "web"}})
    assert pi.metadata.to_dict() == {"order": "1001", "channel": "web"}
    pi = c.v1.payment_intents.confirm(pi.id)  # localstripe lacks confirm(payment_method=...)
    assert pi.status == "succeeded"
    charge = charge_of(c, pi.id)
    assert (charge.object, charge.status, charge.amount, charge.captured, charge.paid) == (
        "charge",
        "succeeded",
        2000,
        True,
        True,
    )
    assert (charge.amount_refunded, charge.refunded, charge.payment_intent) == (0, False, pi.id)
    assert [x.id for x in c.v1.charges.list({"customer": customer.id}).data] == [charge.id]


def test_create_with_confirm(backend):
    pi = backend.client.v1.payment_intents.create(
        {"amount": 1500, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True}
    )
    assert (pi.status, pi.amount, pi.currency) == ("succeeded", 1500, "eur")


@pytest.mark.parametrize(("capture", "refunded"), [(None, 0), (1000, 2000)])
def test_manual_capture(backend, capture, refunded):
    c = backend.client
    pi = c.v1.payment_intents.create(
        {
            "amount": 3000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "capture_method": "manual",
            "confirm": True,
        }
    )
    assert (pi.status, pi.capture_method) == ("requires_capture", "manual")
    assert charge_of(c, pi.id).captured is False
    with pytest.raises(stripe.InvalidRequestError) as caught:
        c.v1.payment_intents.capture(pi.id, {"amount_to_capture": 5000})
    assert caught.value.http_status == 400
    params = {"amount_to_capture": capture} if capture else {}
    pi = c.v1.payment_intents.capture(pi.id, params)
    assert pi.status == "succeeded"
    charge = charge_of(c, pi.id)
    assert (charge.status, charge.captured, charge.amount, charge.amount_refunded) == (
        "succeeded",
        True,
        3000,
        refunded,
    )
    with pytest.raises(stripe.InvalidRequestError) as caught:
        c.v1.payment_intents.capture(pi.id)
    assert caught.value.http_status == 400


def test_cancel(backend):
    c = backend.client
    pi = c.v1.payment_intents.create({"amount": 1000, "currency": "usd"})
    assert pi.status == "requires_payment_method"
    assert c.v1.payment_intents.cancel(pi.id).status == "canceled"
    assert c.v1.payment_intents.retrieve(pi.id).status == "canceled"
    held = c.v1.payment_intents.create(
        {
            "amount": 3000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "capture_method": "manual",
            "confirm": True,
        }
    )
    assert c.v1.payment_intents.cancel(held.id).status == "canceled"
    done = c.v1.payment_intents.create(
        {"amount": 1000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    )
    with pytest.raises(stripe.InvalidRequestError) as caught:
        c.v1.payment_intents.cancel(done.id)
    assert caught.value.http_status == 400
    assert c.v1.payment_intents.retrieve(done.id).status == "succeeded"


def test_full_refund_by_payment_intent(backend):
    c = backend.client
    pi = c.v1.payment_intents.create(
        {"amount": 2000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    )
    refund = c.v1.refunds.create({"payment_intent": pi.id})
    assert (refund.object, refund.status, refund.amount, refund.currency) == (
        "refund",
        "succeeded",
        2000,
        "usd",
    )
    charge = charge_of(c, pi.id)
    assert (refund.charge, charge.amount_refunded, charge.refunded) == (charge.id, 2000, True)
    assert c.v1.refunds.retrieve(refund.id).amount == 2000
    txns = {t.source: t for t in c.v1.balance_transactions.list({"limit": 100}).data}
    assert (txns[charge.id].type, txns[charge.id].amount) == ("charge", 2000)
    assert (txns[refund.id].type, txns[refund.id].amount) == ("refund", -2000)


def test_partial_refunds_by_payment_intent(backend):
    c = backend.client
    pi = c.v1.payment_intents.create(
        {"amount": 2000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    )
    first = c.v1.refunds.create({"payment_intent": pi.id, "amount": 500})
    second = c.v1.refunds.create({"payment_intent": pi.id, "amount": 700})
    assert (first.status, second.status) == ("succeeded", "succeeded")
    listed = c.v1.refunds.list({"payment_intent": pi.id}).data
    assert sorted(r.amount for r in listed) == [500, 700]
    assert {r.id for r in listed} == {first.id, second.id}
    charge = charge_of(c, pi.id)
    assert (charge.amount_refunded, charge.refunded) == (1200, False)


def test_decline(backend):
    c = backend.client
    pi = c.v1.payment_intents.create(
        {"amount": 2000, "currency": "usd", "payment_method": "pm_card_chargeCustomerFail"}
    )
    with pytest.raises(stripe.CardError) as caught:
        c.v1.payment_intents.confirm(pi.id)
    assert (caught.value.http_status, caught.value.code) == (402, "card_declined")
    assert caught.value.user_message == "Your card was declined."
    pi = c.v1.payment_intents.retrieve(pi.id)
    assert pi.status == "requires_payment_method"
    assert (pi.last_payment_error.code, pi.last_payment_error.message) == (
        "card_declined",
        "Your card was declined.",
    )
    charge = charge_of(c, pi.id)
    assert (charge.status, charge.failure_code) == ("failed", "card_declined")


def test_errors(backend):
    c = backend.client
    with pytest.raises(stripe.InvalidRequestError) as caught:
        c.v1.customers.retrieve("cus_doesnotexist")
    assert caught.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError) as caught:
        c.v1.payment_intents.create({"amount": 0, "currency": "usd"})
    assert caught.value.http_status == 400
    with pytest.raises(stripe.InvalidRequestError) as caught:
        c.v1.payment_intents.retrieve("pi_doesnotexist")
    assert caught.value.http_status == 404
    pi = c.v1.payment_intents.create(
        {"amount": 1000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    )
    with pytest.raises(stripe.InvalidRequestError) as caught:
        c.v1.payment_intents.confirm(pi.id)
    assert caught.value.http_status == 400
    assert c.v1.payment_intents.list().data[0].id == pi.id


def test_events(backend):
    c = backend.client
    customer = c.v1.customers.create({"email": "ada@example.com"})
    pi = c.v1.payment_intents.create(
        {"amount": 1000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    )
    created = c.v1.events.list({"type": "customer.created"}).data
    assert [e.data.object.id for e in created] == [customer.id]
    succeeded = c.v1.events.list({"type": "payment_intent.succeeded"}).data
    assert [(e.object, e.data.object.id, e.data.object.status) for e in succeeded] == [
        ("event", pi.id, "succeeded")
    ]
    assert c.v1.events.retrieve(succeeded[0].id).type == "payment_intent.succeeded"


def test_signed_webhook(backend):
    receiver = WebhookReceiver()
    try:
        backend.add_webhook(receiver.url, SECRET)
        pi = backend.client.v1.payment_intents.create(
            {"amount": 1000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
        )

        # localstripe sends about a second after the event, so an event of an earlier test
        # may arrive too: wait for this PaymentIntent's.
        def ours(delivery: dict) -> bool:
            event = json.loads(delivery["body"])
            return event["type"] == "payment_intent.succeeded" and (
                event["data"]["object"]["id"] == pi.id
            )

        delivery = next(d for d in receiver.wait_for(lambda ds: any(map(ours, ds))) if ours(d))
        headers = {k.lower(): v for k, v in delivery["headers"].items()}
        event = backend.client.construct_event(
            delivery["body"].decode(), headers["stripe-signature"], SECRET
        )
        assert (event.type, event.data.object.id, event.data.object.status) == (
            "payment_intent.succeeded",
            pi.id,
            "succeeded",
        )
        with pytest.raises(stripe.SignatureVerificationError):
            backend.client.construct_event(
                delivery["body"].decode(), headers["stripe-signature"], "whsec_wrong"
            )
    finally:
        receiver.close()


# --- the legacy Charges API (Znode's stock Stripe provider, znode-api.md §9.1) -------------
def test_legacy_charge_authorize_then_capture_part(backend):
    """A ``capture=false`` charge with a PaymentMethod test id as ``source`` (localstripe
    takes only pm_/src_/card_ sources, not tokens), then a partial capture: both release
    the rest (localstripe books it as a refund, the sandbox as released; only
    ``amount_refunded`` is compared)."""
    c = backend.client
    charge = c.v1.charges.create(
        {
            "amount": 3000,
            "currency": "usd",
            "source": "pm_card_visa",
            "capture": False,
            "description": "Order SBX-000042",
            "metadata": {"OrderNumber": "SBX-000042"},
        }
    )
    assert (charge.object, charge.status, charge.captured, charge.amount) == (
        "charge",
        "succeeded",
        False,
        3000,
    )
    assert charge.payment_intent is None
    assert charge.metadata.to_dict() == {"OrderNumber": "SBX-000042"}
    with pytest.raises(stripe.InvalidRequestError) as caught:
        c.v1.charges.capture(charge.id, {"amount": 5000})
    assert caught.value.http_status == 400
    assert c.v1.charges.retrieve(charge.id).captured is False
    captured = c.v1.charges.capture(charge.id, {"amount": 1000})
    assert (captured.status, captured.captured, captured.amount) == ("succeeded", True, 3000)
    assert c.v1.charges.retrieve(charge.id).amount_refunded == 2000
    with pytest.raises(stripe.InvalidRequestError) as caught:
        c.v1.charges.capture(charge.id)
    assert caught.value.http_status == 400


def test_legacy_charge_captured_at_once(backend):
    c = backend.client
    charge = c.v1.charges.create({"amount": 1500, "currency": "eur", "source": "pm_card_visa"})
    assert (charge.status, charge.captured, charge.paid, charge.currency) == (
        "succeeded",
        True,
        True,
        "eur",
    )
    assert [x.id for x in c.v1.charges.list().data] == [charge.id]


def test_legacy_charge_decline(backend):
    """localstripe declines ``pm_card_chargeCustomerFail`` at charge time (its other decline
    ids decline only on attach); compared: the class, 402 and ``code``."""
    c = backend.client
    with pytest.raises(stripe.CardError) as caught:
        c.v1.charges.create(
            {
                "amount": 2000,
                "currency": "usd",
                "source": "pm_card_chargeCustomerFail",
                "capture": False,
            }
        )
    assert (caught.value.http_status, caught.value.code) == (402, "card_declined")
    assert caught.value.user_message == "Your card was declined."
