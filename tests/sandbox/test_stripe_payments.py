"""PaymentIntents, charges, declines, capture, cancel, refunds and disputes through the SDK."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
import stripe

from tests.sandbox.test_stripe import event_types, make_client

# Tests of Stripe itself start from an empty account (no seeded Znode charges).
pytestmark = pytest.mark.usefixtures("empty_stripe")


@pytest.fixture
def client(sandbox):
    return make_client(sandbox)


def hook(sandbox, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{sandbox.system_url('stripe')}/_test/{path}",
        data=json.dumps(body or {}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def pay(client, amount=2000, token="pm_card_visa", **extra):
    return client.v1.payment_intents.create(
        {"amount": amount, "currency": "usd", "payment_method": token, "confirm": True, **extra}
    )


# --- PaymentIntents ---------------------------------------------------------------------------
def test_create_and_confirm_in_one_call(client):
    customer = client.v1.customers.create({"email": "ada@example.com"})
    pi = client.v1.payment_intents.create(
        {
            "amount": 2599,
            "currency": "USD",
            "customer": customer.id,
            "payment_method": "pm_card_mastercard",
            "confirm": True,
            "off_session": True,
            "description": "Znode order 1001",
            "receipt_email": "ada@example.com",
            "statement_descriptor_suffix": "ORDER 1001",
            "metadata": {"znode_order": "1001"},
            "payment_method_types": ["card"],
        }
    )
    assert pi.id.startswith("pi_") and pi.object == "payment_intent"
    assert pi.client_secret.startswith(f"{pi.id}_secret_")
    assert (pi.status, pi.amount, pi.currency, pi.amount_received, pi.amount_capturable) == (
        "succeeded",
        2599,
        "usd",
        2599,
        0,
    )
    assert (pi.capture_method, pi.confirmation_method) == ("automatic_async", "automatic")
    assert pi.payment_method_types == ["card"]
    assert pi.next_action is None and pi.last_payment_error is None
    assert pi.canceled_at is None and pi.cancellation_reason is None
    assert pi.payment_method.startswith("pm_") and pi.payment_method != "pm_card_mastercard"
    assert pi.metadata.to_dict() == {"znode_order": "1001"}
    assert pi.latest_charge.startswith("ch_")

    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.amount, charge.amount_captured, charge.amount_refunded) == (2599, 2599, 0)
    assert (charge.status, charge.paid, charge.captured, charge.refunded, charge.disputed) == (
        "succeeded",
        True,
        True,
        False,
        False,
    )
    assert (charge.payment_intent, charge.customer, charge.payment_method) == (
        pi.id,
        customer.id,
        pi.payment_method,
    )
    assert charge.outcome.type == "authorized"
    assert charge.outcome.network_status == "approved_by_network"
    assert charge.outcome.seller_message == "Payment complete."
    assert (
        charge.payment_method_details.type,
        charge.payment_method_details.card.brand,
        charge.payment_method_details.card.last4,
    ) == ("card", "mastercard", "4444")
    assert charge.failure_code is None and charge.failure_message is None
    assert charge.balance_transaction.startswith("txn_")
    assert charge.receipt_url.startswith("https://pay.stripe.com/receipts/")
    assert charge.receipt_email == "ada@example.com"
    assert charge.description == "Znode order 1001"
    assert charge.metadata.to_dict() == {"znode_order": "1001"}
    assert charge.calculated_statement_descriptor == "SANDBOX* ORDER 1001"
    assert event_types(client) == [
        "customer.created",
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
    ]


def test_two_step_confirmation(client):
    pi = client.v1.payment_intents.create({"amount": 1000, "currency": "eur"})
    assert (pi.status, pi.payment_method, pi.latest_charge) == (
        "requires_payment_method",
        None,
        None,
    )
    pi = client.v1.payment_intents.update(pi.id, {"amount": 1500, "payment_method": "pm_card_visa"})
    assert (pi.status, pi.amount) == ("requires_confirmation", 1500)
    pi = client.v1.payment_intents.confirm(pi.id)
    assert (pi.status, pi.amount_received) == ("succeeded", 1500)
    # Real Stripe (unlike localstripe) confirms with a payment_method given at confirmation.
    other = client.v1.payment_intents.create({"amount": 1000, "currency": "eur"})
    other = client.v1.payment_intents.confirm(other.id, {"payment_method": "pm_card_amex"})
    assert other.status == "succeeded"
    assert (
        client.v1.charges.retrieve(other.latest_charge).payment_method_details.card.brand == "amex"
    )


def test_state_rules(client):
    pi = pay(client)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.confirm(pi.id)
    assert (caught.value.http_status, caught.value.code) == (400, "payment_intent_unexpected_state")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.update(pi.id, {"amount": 5000})
    assert caught.value.code == "payment_intent_unexpected_state"
    updated = client.v1.payment_intents.update(pi.id, {"metadata": {"erp": "SO-1"}})
    assert (updated.amount, updated.metadata.to_dict()) == (2000, {"erp": "SO-1"})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.cancel(pi.id)
    assert caught.value.code == "payment_intent_unexpected_state"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.capture(pi.id)
    assert caught.value.code == "payment_intent_unexpected_state"
    bare = client.v1.payment_intents.create({"amount": 1000, "currency": "usd"})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.confirm(bare.id)
    assert caught.value.param == "payment_method"
    assert client.v1.payment_intents.retrieve(bare.id).status == "requires_payment_method"
    assert len(client.v1.charges.list().data) == 1


@pytest.mark.parametrize(
    ("amount", "currency", "param", "code"),
    [
        (49, "usd", "amount", "amount_too_small"),
        (29, "gbp", "amount", "amount_too_small"),
        (49, "jpy", "amount", "amount_too_small"),
        (0, "usd", "amount", "parameter_invalid_integer"),
        ("ten", "usd", "amount", "parameter_invalid_integer"),
        (100_000_000, "usd", "amount", "amount_too_large"),
        (1005, "kwd", "amount", "invalid_charge_amount"),
        (1000, "xyz", "currency", None),
    ],
)
def test_amount_rules_create_nothing(client, amount, currency, param, code):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.create({"amount": amount, "currency": currency})
    assert (caught.value.http_status, caught.value.param, caught.value.code) == (400, param, code)
    assert client.v1.payment_intents.list().data == []
    assert client.v1.events.list().data == []


def test_minimums_and_zero_decimal_currencies(client):
    assert client.v1.payment_intents.create({"amount": 50, "currency": "usd"}).amount == 50
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.create({"amount": 49, "currency": "usd"})
    assert caught.value.user_message == "Amount must be at least $0.50 usd"
    yen = pay(client, amount=500, currency="jpy", expand=["latest_charge.balance_transaction"])
    txn = yen.latest_charge.balance_transaction
    # ¥500 is 500 whole yen: 2.9% = 14.5 → 15 (half-up), no fixed fee for zero-decimal currencies.
    assert (txn.amount, txn.fee, txn.net, txn.currency) == (500, 15, 485, "jpy")
    assert client.v1.payment_intents.create({"amount": 1010, "currency": "kwd"}).amount == 1010


# fmt: off
DECLINES = [
    # source, code, decline_code, param, advice_code, outcome type
    ("pm_card_chargeDeclined", "card_declined", "generic_decline", None, "try_again_later",
     "issuer_declined"),
    ("pm_card_visa_chargeDeclined", "card_declined", "generic_decline", None, "try_again_later",
     "issuer_declined"),
    ("pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds", None,
     "try_again_later", "issuer_declined"),
    ("pm_card_chargeDeclinedLostCard", "card_declined", "lost_card", None, "do_not_try_again",
     "issuer_declined"),
    ("pm_card_chargeDeclinedStolenCard", "card_declined", "stolen_card", None, "do_not_try_again",
     "issuer_declined"),
    ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card", "exp_month",
     "confirm_card_data", "issuer_declined"),
    ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", "incorrect_cvc", "cvc",
     "confirm_card_data", "issuer_declined"),
    ("pm_card_chargeDeclinedProcessingError", "processing_error", "processing_error", None,
     "try_again_later", "issuer_declined"),
    ("pm_card_chargeDeclinedFraudulent", "card_declined", "fraudulent", None, None, "blocked"),
    ("pm_card_chargeCustomerFail", "card_declined", "generic_decline", None, "try_again_later",
     "issuer_declined"),
    ("4000000000000002", "card_declined", "generic_decline", None, "try_again_later",
     "issuer_declined"),
    ("4000000000009995", "card_declined", "insufficient_funds", None, "try_again_later",
     "issuer_declined"),
    ("4000000000009987", "card_declined", "lost_card", None, "do_not_try_again", "issuer_declined"),
    ("4000000000009979", "card_declined", "stolen_card", None, "do_not_try_again",
     "issuer_declined"),
    ("4000000000000069", "expired_card", "expired_card", "exp_month", "confirm_card_data",
     "issuer_declined"),
    ("4000000000000127", "incorrect_cvc", "incorrect_cvc", "cvc", "confirm_card_data",
     "issuer_declined"),
    ("4000000000000119", "processing_error", "processing_error", None, "try_again_later",
     "issuer_declined"),
    ("4100000000000019", "card_declined", "fraudulent", None, None, "blocked"),
    ("4000000000000341", "card_declined", "generic_decline", None, "try_again_later",
     "issuer_declined"),
]
# fmt: on


@pytest.mark.parametrize(("source", "code", "decline_code", "param", "advice", "outcome"), DECLINES)
def test_declines(client, source, code, decline_code, param, advice, outcome):
    if source.isdigit():
        source = client.v1.payment_methods.create(
            {"type": "card", "card": {"number": source, "exp_month": 12, "exp_year": 2040}}
        ).id
    pi = client.v1.payment_intents.create({"amount": 4200, "currency": "usd"})
    with pytest.raises(stripe.CardError) as caught:
        client.v1.payment_intents.confirm(pi.id, {"payment_method": source})
    error = caught.value
    assert (error.http_status, error.code, error.param) == (402, code, param)
    assert error.error.type == "card_error"
    assert error.error.decline_code == decline_code
    assert error.json_body["error"].get("advice_code") == advice
    assert error.error.payment_intent.id == pi.id
    assert error.error.payment_intent.status == "requires_payment_method"

    pi = client.v1.payment_intents.retrieve(pi.id, {"expand": ["latest_charge"]})
    assert (pi.status, pi.payment_method, pi.amount_received) == (
        "requires_payment_method",
        None,
        0,
    )
    lpe = pi.last_payment_error
    assert (lpe.type, lpe.code, lpe.decline_code, lpe.message) == (
        "card_error",
        code,
        decline_code,
        error.user_message,
    )
    assert lpe.charge == pi.latest_charge.id
    charge = pi.latest_charge
    assert (charge.status, charge.paid, charge.captured, charge.balance_transaction) == (
        "failed",
        False,
        False,
        None,
    )
    assert (charge.failure_code, charge.failure_message) == (code, error.user_message)
    assert charge.outcome.type == outcome
    assert client.v1.balance_transactions.list().data == []
    assert event_types(client)[-2:] == ["charge.failed", "payment_intent.payment_failed"]

    # The customer tries another card on the same PaymentIntent.
    retried = client.v1.payment_intents.confirm(pi.id, {"payment_method": "pm_card_visa"})
    assert (retried.status, retried.last_payment_error, retried.amount_received) == (
        "succeeded",
        None,
        4200,
    )
    assert len(client.v1.charges.list({"payment_intent": pi.id}).data) == 2


def test_manual_capture_with_partial_capture(client):
    pi = pay(client, amount=3000, capture_method="manual")
    assert (pi.status, pi.amount_capturable, pi.amount_received) == ("requires_capture", 3000, 0)
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.status, charge.captured, charge.amount_captured, charge.balance_transaction) == (
        "succeeded",
        False,
        0,
        None,
    )
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.capture(pi.id, {"amount_to_capture": 3001})
    assert (caught.value.param, caught.value.code) == ("amount_to_capture", "amount_too_large")
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create({"payment_intent": pi.id})
    assert client.v1.payment_intents.retrieve(pi.id).amount_capturable == 3000

    pi = client.v1.payment_intents.capture(pi.id, {"amount_to_capture": 2500})
    assert (pi.status, pi.amount_received, pi.amount_capturable) == ("succeeded", 2500, 0)
    charge = client.v1.charges.retrieve(pi.latest_charge, {"expand": ["balance_transaction"]})
    assert (charge.captured, charge.amount_captured, charge.amount_refunded, charge.refunded) == (
        True,
        2500,
        500,
        False,
    )
    # 2.9% of 2500 = 72.5, + 30 = 102.5 → 103 (half-up).
    txn = charge.balance_transaction
    assert (txn.amount, txn.fee, txn.net, txn.type) == (2500, 103, 2397, "charge")
    assert event_types(client) == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.amount_capturable_updated",
        "charge.captured",
        "payment_intent.succeeded",
    ]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.capture(pi.id)
    assert caught.value.code == "payment_intent_unexpected_state"
    refund = client.v1.refunds.create({"payment_intent": pi.id})
    assert refund.amount == 2500  # what was captured, not the authorization


def test_legacy_charge_capture(client):
    pi = pay(client, amount=3000, capture_method="manual")
    charge = client.v1.charges.capture(pi.latest_charge, {"amount": 1000})
    assert (charge.captured, charge.amount_captured, charge.amount_refunded) == (True, 1000, 2000)
    assert client.v1.payment_intents.retrieve(pi.id).amount_received == 1000
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.charges.capture(pi.latest_charge)
    assert caught.value.code == "charge_already_captured"


def test_cancel(client):
    pi = client.v1.payment_intents.create({"amount": 1000, "currency": "usd"})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.cancel(pi.id, {"cancellation_reason": "bored"})
    assert caught.value.param == "cancellation_reason"
    assert client.v1.payment_intents.retrieve(pi.id).status == "requires_payment_method"
    canceled = client.v1.payment_intents.cancel(
        pi.id, {"cancellation_reason": "requested_by_customer"}
    )
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "requested_by_customer")
    assert isinstance(canceled.canceled_at, int)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.cancel(pi.id)
    assert caught.value.code == "payment_intent_unexpected_state"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.confirm(pi.id, {"payment_method": "pm_card_visa"})

    held = pay(client, amount=3000, capture_method="manual")
    released = client.v1.payment_intents.cancel(held.id)
    assert (released.status, released.amount_capturable, released.cancellation_reason) == (
        "canceled",
        0,
        None,
    )
    charge = client.v1.charges.retrieve(held.latest_charge)
    # Stripe: "the remaining amount_capturable is automatically refunded".
    assert (charge.refunded, charge.amount_refunded, charge.captured) == (True, 3000, False)
    assert client.v1.balance_transactions.list().data == []
    assert event_types(client)[-2:] == ["charge.refunded", "payment_intent.canceled"]


def test_payment_method_ownership(client):
    ada = client.v1.customers.create({"email": "ada@example.com"})
    bob = client.v1.customers.create({"email": "bob@example.com"})
    pm = client.v1.payment_methods.attach("pm_card_visa", {"customer": ada.id})
    for params in ({"customer": bob.id}, {}):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.payment_intents.create(
                {
                    "amount": 1000,
                    "currency": "usd",
                    "payment_method": pm.id,
                    "confirm": True,
                    **params,
                }
            )
        assert caught.value.param == "payment_method"
    assert client.v1.payment_intents.list().data == []
    ok = pay(client, token=pm.id, customer=ada.id, off_session=True)
    assert ok.status == "succeeded"
    # An unattached PaymentMethod is spent once used...
    loose = client.v1.payment_methods.create({"type": "card", "card": {"token": "tok_visa"}})
    pay(client, token=loose.id)
    with pytest.raises(stripe.InvalidRequestError):
        pay(client, token=loose.id)
    # ...unless the payment saves it for the customer.
    saved = client.v1.payment_methods.create({"type": "card", "card": {"token": "tok_visa"}})
    pay(client, token=saved.id, customer=bob.id, setup_future_usage="off_session")
    assert client.v1.payment_methods.retrieve(saved.id).customer == bob.id
    assert pay(client, token=saved.id, customer=bob.id).status == "succeeded"


def test_list_filters(client):
    ada = client.v1.customers.create({"email": "ada@example.com"})
    bob = client.v1.customers.create({"email": "bob@example.com"})
    a1 = pay(client, customer=ada.id)
    a2 = pay(client, amount=3000, customer=ada.id)
    b1 = pay(client, customer=bob.id)
    assert [pi.id for pi in client.v1.payment_intents.list({"customer": ada.id}).data] == [
        a2.id,
        a1.id,
    ]
    assert [c.id for c in client.v1.charges.list({"customer": bob.id}).data] == [b1.latest_charge]
    assert [c.id for c in client.v1.charges.list({"payment_intent": a1.id}).data] == [
        a1.latest_charge
    ]
    assert len(client.v1.charges.list().data) == 3


def test_charge_update(client):
    pi = pay(client)
    charge = client.v1.charges.update(
        pi.latest_charge, {"metadata": {"erp": "INV-1"}, "description": "Order 1"}
    )
    assert (charge.metadata.to_dict(), charge.description) == ({"erp": "INV-1"}, "Order 1")
    event = client.v1.events.list({"type": "charge.updated"}).data[0]
    assert event.data.previous_attributes.to_dict() == {"metadata": {}, "description": None}


# --- refunds ------------------------------------------------------------------------------------
def test_full_refund_by_payment_intent(client):
    pi = pay(client)
    refund = client.v1.refunds.create(
        {
            "payment_intent": pi.id,
            "reason": "requested_by_customer",
            "metadata": {"znode_rma": "R1"},
        }
    )
    assert refund.id.startswith("re_") and refund.object == "refund"
    assert (refund.amount, refund.status, refund.reason, refund.currency) == (
        2000,
        "succeeded",
        "requested_by_customer",
        "usd",
    )
    assert (refund.charge, refund.payment_intent) == (pi.latest_charge, pi.id)
    assert refund.metadata.to_dict() == {"znode_rma": "R1"}
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (2000, True)
    txn = client.v1.balance_transactions.retrieve(refund.balance_transaction)
    assert (txn.type, txn.reporting_category, txn.amount, txn.fee, txn.net, txn.source) == (
        "refund",
        "refund",
        -2000,
        0,
        -2000,
        refund.id,
    )
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create({"payment_intent": pi.id})
    assert (caught.value.http_status, caught.value.code) == (400, "charge_already_refunded")
    assert len(client.v1.refunds.list().data) == 1
    assert event_types(client)[-2:] == ["charge.refunded", "refund.created"]
    assert client.v1.refunds.retrieve(refund.id).to_dict() == refund.to_dict()


def test_partial_refunds_are_bounded(client):
    pi = pay(client)
    first = client.v1.refunds.create({"charge": pi.latest_charge, "amount": 500})
    second = client.v1.refunds.create({"payment_intent": pi.id, "amount": 700})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create({"payment_intent": pi.id, "amount": 900})
    assert (caught.value.param, caught.value.code) == ("amount", None)
    assert caught.value.user_message == (
        "Refund amount ($9.00) is greater than unrefunded amount on charge ($8.00)"
    )
    for bad in ({"amount": 0}, {"reason": "changed_mind"}, {"amount": 100, "charge": "ch_nope"}):
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.refunds.create({"payment_intent": pi.id, **bad})
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (1200, False)
    by_pi = client.v1.refunds.list({"payment_intent": pi.id})
    assert [r.id for r in by_pi.data] == [second.id, first.id]
    assert [r.id for r in client.v1.refunds.list({"charge": pi.latest_charge}).data] == [
        second.id,
        first.id,
    ]
    rest = client.v1.refunds.create({"payment_intent": pi.id})
    assert rest.amount == 800
    assert client.v1.charges.retrieve(pi.latest_charge).refunded is True
    other = pay(client)
    assert client.v1.refunds.list({"payment_intent": other.id}).data == []


def test_refund_needs_a_captured_charge(client):
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create({})
    bare = client.v1.payment_intents.create({"amount": 1000, "currency": "usd"})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create({"payment_intent": bare.id})
    assert "does not have a successful charge" in caught.value.user_message
    assert client.v1.refunds.list().data == []


def test_pending_refund_settles_later(sandbox, client):
    # The refund settles async_settle_seconds (60) after it is made. With the wall clock
    # running, a second ticking between the refund and the first advance would settle it
    # at "59": frozen, only advance_time moves the clock.
    clock = hook(sandbox, "clock", {"frozen": True})
    pi = pay(client, token="pm_card_pendingRefund")
    refund = client.v1.refunds.create({"payment_intent": pi.id, "amount": 1000})
    assert refund.created == clock["now"]
    assert (refund.status, refund.pending_reason) == ("pending", "processing")
    hook(sandbox, "advance_time", {"seconds": 59})
    assert client.v1.refunds.retrieve(refund.id).status == "pending"
    hook(sandbox, "advance_time", {"seconds": 1})
    refund = client.v1.refunds.retrieve(refund.id)
    assert (refund.status, refund.pending_reason) == ("succeeded", None)
    assert event_types(client)[-2:] == ["refund.updated", "charge.refund.updated"]
    updated = client.v1.events.list({"type": "refund.updated"}).data[0]
    assert updated.data.previous_attributes.status == "pending"


class WallClock:
    """Stands in for the ``time`` module of the sandbox's clock code (same process)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


def test_the_clock_can_be_frozen(sandbox, monkeypatch):
    wall = WallClock(1_900_000_000.0)
    monkeypatch.setattr("sandbox.stripe.store.time", wall)
    monkeypatch.setattr("sandbox.stripe.testing.time", wall)
    assert hook(sandbox, "clock", {"frozen": True}) == {
        "now": 1_900_000_000,
        "offset": 0,
        "frozen": True,
    }
    wall.now += 30  # the wall clock runs on; the sandbox's does not
    assert hook(sandbox, "advance_time", {"seconds": 5})["now"] == 1_900_000_005
    assert hook(sandbox, "clock", {"frozen": True})["now"] == 1_900_000_005  # already frozen
    thawed = hook(sandbox, "clock", {"frozen": "false"})
    assert (thawed["now"], thawed["frozen"]) == (1_900_000_005, False)  # on from there
    wall.now += 2
    assert hook(sandbox, "advance_time", {"seconds": 0})["now"] == 1_900_000_007
    for body, param in (({"frozen": "maybe"}, "frozen"), ({"speed": 2}, "speed")):
        with pytest.raises(urllib.error.HTTPError) as caught:
            hook(sandbox, "clock", body)
        assert json.loads(caught.value.read())["error"]["param"] == param
    hook(sandbox, "clock", {"frozen": True})
    sandbox.control("POST", "reset/stripe")
    assert hook(sandbox, "advance_time", {"seconds": 0})["frozen"] is False  # a reset thaws it


def test_refund_that_fails_later(sandbox, client):
    pi = pay(client, token="pm_card_refundFail")
    refund = client.v1.refunds.create({"payment_intent": pi.id})
    assert refund.status == "succeeded"
    assert client.v1.charges.retrieve(pi.latest_charge).refunded is True
    assert hook(sandbox, "settle") == {"ran": 1}
    refund = client.v1.refunds.retrieve(refund.id)
    assert (refund.status, refund.failure_reason) == ("failed", "expired_or_canceled_card")
    txn = client.v1.balance_transactions.retrieve(refund.failure_balance_transaction)
    assert (txn.type, txn.amount, txn.reporting_category) == (
        "refund_failure",
        2000,
        "refund_failure",
    )
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (0, False)
    assert event_types(client)[-3:] == ["refund.updated", "refund.failed", "charge.refund.updated"]
    again = client.v1.refunds.create({"payment_intent": pi.id, "amount": 100})
    assert again.amount == 100


# --- disputes -----------------------------------------------------------------------------------
def test_dispute_card(client):
    pi = pay(client, token="pm_card_createDispute")
    assert pi.status == "succeeded"
    disputes = client.v1.disputes.list({"payment_intent": pi.id}).data
    assert len(disputes) == 1
    dispute = disputes[0]
    assert dispute.id.startswith("dp_") and dispute.object == "dispute"
    assert (dispute.status, dispute.reason, dispute.amount, dispute.currency) == (
        "needs_response",
        "fraudulent",
        2000,
        "usd",
    )
    assert (dispute.charge, dispute.payment_intent) == (pi.latest_charge, pi.id)
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert charge.disputed is True
    txns = client.v1.balance_transactions.list({"source": dispute.id}).data
    assert len(txns) == 1
    txn = txns[0]
    assert (txn.type, txn.reporting_category, txn.amount, txn.fee, txn.net, txn.status) == (
        "adjustment",
        "dispute",
        -2000,
        1500,
        -3500,
        "available",
    )
    assert [d.to_dict() for d in txn.fee_details] == [
        {
            "amount": 1500,
            "application": None,
            "currency": "usd",
            "description": "Dispute fee",
            "type": "stripe_fee",
        }
    ]
    assert dispute.balance_transactions[0].id == txn.id
    assert event_types(client)[-2:] == ["charge.dispute.created", "charge.dispute.funds_withdrawn"]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create({"payment_intent": pi.id})
    assert caught.value.code == "charge_disputed"

    closed = client.v1.disputes.close(dispute.id)
    assert closed.status == "lost"
    assert client.v1.disputes.retrieve(dispute.id).status == "lost"
    assert event_types(client)[-1] == "charge.dispute.closed"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.disputes.close(dispute.id)
    assert len(client.v1.balance_transactions.list({"source": dispute.id}).data) == 1


def test_dispute_evidence_and_a_won_dispute(sandbox, client):
    pi = pay(
        client,
        amount=5000,
        token="pm_card_createDisputeProductNotReceived",
        capture_method="manual",
    )
    assert client.v1.disputes.list().data == []  # only a captured charge is disputed
    client.v1.payment_intents.capture(pi.id)
    dispute = client.v1.disputes.list().data[0]
    assert (dispute.reason, dispute.amount) == ("product_not_received", 5000)
    dispute = client.v1.disputes.update(
        dispute.id, {"evidence": {"shipping_tracking_number": "1Z999"}, "metadata": {"case": "7"}}
    )
    assert (dispute.status, dispute.evidence.shipping_tracking_number) == ("under_review", "1Z999")
    assert dispute.evidence_details.submission_count == 1
    won = hook(sandbox, f"disputes/{dispute.id}/resolve", {"status": "won"})
    assert won["status"] == "won"
    rows = client.v1.balance_transactions.list({"source": dispute.id}).data
    assert [(t.reporting_category, t.amount, t.fee) for t in rows] == [
        ("dispute_reversal", 5000, 0),
        ("dispute", -5000, 1500),
    ]
    assert event_types(client)[-3:] == [
        "charge.dispute.updated",
        "charge.dispute.funds_reinstated",
        "charge.dispute.closed",
    ]


# --- processing (sandbox-only cards) ------------------------------------------------------------
@pytest.mark.parametrize(
    ("token", "final", "events"),
    [
        (
            "pm_card_sandboxProcessingSucceeds",
            "succeeded",
            ["charge.succeeded", "payment_intent.succeeded"],
        ),
        (
            "pm_card_sandboxProcessingFails",
            "requires_payment_method",
            ["charge.failed", "payment_intent.payment_failed"],
        ),
    ],
)
def test_processing_payments_settle_later(sandbox, client, token, final, events):
    pi = pay(client, token=token)
    assert pi.status == "processing"
    assert client.v1.charges.retrieve(pi.latest_charge).status == "pending"
    assert event_types(client) == [
        "payment_intent.created",
        "charge.pending",
        "payment_intent.processing",
    ]
    hook(sandbox, "advance_time", {"seconds": 60})
    assert client.v1.payment_intents.retrieve(pi.id).status == final
    assert event_types(client)[3:] == events
