"""The legacy Charges API of the sandbox Stripe (what Znode's stock Stripe provider uses,
znode-api.md §9.1): create with ``capture=false``, capture, release, declines, events and
idempotency, through the official SDK."""

from __future__ import annotations

import time

import pytest
import stripe

from tests.sandbox.test_stripe import event_types, make_client, raw

# Tests of Stripe itself start from an empty account (no seeded Znode charges).
pytestmark = pytest.mark.usefixtures("empty_stripe")


@pytest.fixture
def client(sandbox):
    return make_client(sandbox)


def authorize(client, amount=3000, source="tok_visa", **extra):
    return client.v1.charges.create(
        {"amount": amount, "currency": "usd", "source": source, "capture": False, **extra}
    )


def test_create_an_authorization(client):
    charge = authorize(
        client,
        description="Order SBX-000042",
        metadata={"OrderNumber": "SBX-000042"},
    )
    assert charge.id.startswith("ch_") and charge.object == "charge"
    assert (charge.status, charge.paid, charge.captured) == ("succeeded", True, False)
    assert (charge.amount, charge.amount_captured, charge.amount_refunded) == (3000, 0, 0)
    assert charge.payment_intent is None  # no PaymentIntent behind a legacy charge
    assert charge.balance_transaction is None  # nothing is booked before the capture
    assert charge.description == "Order SBX-000042"
    assert charge.metadata.to_dict() == {"OrderNumber": "SBX-000042"}
    card = charge.payment_method_details.card
    assert (card.brand, card.last4, card.amount_authorized) == ("visa", "4242", 3000)
    assert card.capture_before == charge.created + 7 * 86400
    # A token becomes a card object (card_...), which is also the charge's payment method.
    assert charge.source.object == "card" and charge.source.id == charge.payment_method
    assert charge.source.id.startswith("card_") and charge.source.brand == "Visa"
    assert client.v1.payment_methods.retrieve(charge.payment_method).card.last4 == "4242"
    assert event_types(client) == ["charge.succeeded"]
    event = client.v1.events.list({"type": "charge.succeeded"}).data[0]
    assert (event.data.object.id, event.data.object.captured) == (charge.id, False)


@pytest.mark.parametrize(
    "params",
    [
        {"source": "pm_card_visa"},
        {"payment_method": "pm_card_mastercard"},
        {"source": "tok_amex"},
    ],
)
def test_payment_method_test_ids_and_tokens(client, params):
    charge = client.v1.charges.create({"amount": 1500, "currency": "eur", **params})
    assert (charge.status, charge.captured, charge.amount_captured) == ("succeeded", True, 1500)
    assert charge.payment_intent is None and charge.balance_transaction.startswith("txn_")
    assert event_types(client) == ["charge.succeeded"]


def test_capture_all_part_or_too_much(client):
    charge = authorize(client)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.charges.capture(charge.id, {"amount": 3001})
    assert caught.value.http_status == 400 and caught.value.code == "amount_too_large"
    assert client.v1.charges.retrieve(charge.id).captured is False  # unchanged
    captured = client.v1.charges.capture(charge.id, {"amount": 1000})
    assert (captured.captured, captured.amount, captured.amount_captured) == (True, 3000, 1000)
    assert captured.amount_refunded == 2000  # the rest of the authorization is released
    assert captured.balance_transaction.startswith("txn_")
    txn = client.v1.balance_transactions.retrieve(captured.balance_transaction)
    assert (txn.type, txn.amount, txn.source) == ("charge", 1000, charge.id)
    assert event_types(client) == ["charge.succeeded", "charge.captured"]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.charges.capture(charge.id)
    assert caught.value.code == "charge_already_captured"
    whole = client.v1.charges.capture(authorize(client, amount=1200).id)
    assert (whole.amount_captured, whole.amount_refunded) == (1200, 0)


def test_release_an_authorization_with_a_full_refund(client):
    """The stock provider's "void": a full refund of the uncaptured charge."""
    charge = authorize(client)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create({"charge": charge.id, "amount": 1000})  # no partial release
    refund = client.v1.refunds.create({"charge": charge.id})
    assert (refund.status, refund.amount, refund.balance_transaction) == ("succeeded", 3000, None)
    released = client.v1.charges.retrieve(charge.id)
    assert (released.captured, released.refunded, released.amount_refunded) == (False, True, 3000)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.charges.capture(charge.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create({"charge": charge.id})
    assert event_types(client)[-2:] == ["charge.refunded", "refund.created"]


@pytest.mark.parametrize(
    ("source", "code", "decline_code"),
    [
        ("pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"),
        ("tok_chargeDeclined", "card_declined", "generic_decline"),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card"),
    ],
)
def test_declines_raise_the_card_error(client, source, code, decline_code):
    with pytest.raises(stripe.CardError) as caught:
        authorize(client, source=source)
    error = caught.value
    assert (error.http_status, error.code) == (402, code)
    assert error.error.decline_code == decline_code and error.error.type == "card_error"
    failed = client.v1.charges.retrieve(error.error.charge)
    assert (failed.status, failed.paid, failed.captured) == ("failed", False, False)
    assert failed.failure_code == code and failed.outcome.reason == decline_code
    assert failed.payment_intent is None
    assert event_types(client) == ["charge.failed"]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.charges.capture(failed.id)


def test_idempotent_create(sandbox, client):
    params = {"amount": "2500", "currency": "usd", "source": "tok_visa", "capture": "false"}
    form = "&".join(f"{k}={v}" for k, v in params.items())
    headers = {"Authorization": "Bearer sk_test_idem", "Idempotency-Key": "order-77"}
    status, _, first = raw(sandbox, "POST", "/v1/charges", form, headers)
    assert status == 200
    status, again_headers, again = raw(sandbox, "POST", "/v1/charges", form, headers)
    assert status == 200 and again["id"] == first["id"]
    assert {k.lower(): v for k, v in again_headers.items()}["idempotent-replayed"] == "true"
    status, _, conflict = raw(sandbox, "POST", "/v1/charges", form + "&amount=9", headers)
    assert status == 400 and conflict["error"]["type"] == "idempotency_error"
    assert len(client.v1.charges.list().data) == 1
    # A decline is remembered too: the retry answers the same 402, no second charge.
    declined = "amount=2500&currency=usd&source=tok_chargeDeclined&capture=false"
    retry = {**headers, "Idempotency-Key": "order-78"}
    first_decline = raw(sandbox, "POST", "/v1/charges", declined, retry)
    second_decline = raw(sandbox, "POST", "/v1/charges", declined, retry)
    assert first_decline[0] == second_decline[0] == 402
    assert first_decline[2]["error"]["charge"] == second_decline[2]["error"]["charge"]
    assert len(client.v1.charges.list().data) == 2


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"currency": "usd", "source": "tok_visa"}, "amount"),
        ({"amount": 49, "currency": "usd", "source": "tok_visa"}, "amount"),
        ({"amount": 1000, "currency": "usd"}, "source"),
        ({"amount": 1000, "currency": "usd", "source": "tok_nonsense"}, "source"),
        ({"amount": 1000, "currency": "usd", "source": "tok_visa", "application": "x"}, None),
        (
            {"amount": 1000, "currency": "usd", "source": "tok_visa", "payment_method": "pm_x"},
            "source",
        ),
    ],
)
def test_create_validation_charges_nothing(client, params, param):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.charges.create(params)
    assert caught.value.http_status == 400
    if param:
        assert caught.value.param == param
    assert client.v1.charges.list().data == [] and event_types(client) == []


def test_a_customer_without_a_source_cannot_be_charged(client):
    customer = client.v1.customers.create({"email": "ada@example.com"})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.charges.create({"amount": 1000, "currency": "usd", "customer": customer.id})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.charges.create(
            {"amount": 1000, "currency": "usd", "customer": customer.id, "source": "tok_visa"}
        )
    assert "does not have a linked source" in caught.value.user_message
    pm = client.v1.payment_methods.create({"type": "card", "card": {"token": "tok_visa"}})
    client.v1.payment_methods.attach(pm.id, {"customer": customer.id})
    charge = client.v1.charges.create(
        {"amount": 1000, "currency": "usd", "customer": customer.id, "source": pm.id}
    )
    assert (charge.customer, charge.payment_method, charge.source) == (customer.id, pm.id, None)


def test_created_is_unix_time(client):
    charge = authorize(client)
    assert abs(charge.created - time.time()) < 60  # Stripe's clock is UTC epoch seconds
