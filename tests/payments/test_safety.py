"""Issue 9: no charge, capture or booking the order does not call for. Each test
fails on the code before the fix; the rules chosen are in the docstrings."""

from __future__ import annotations

import contextlib

import pytest

from integrations.connectors.stripe.client import StripeGateway
from integrations.kernel import exceptions as exc
from integrations.models import Integration
from payments.choices import OrderState
from payments.models import Order, Payment
from tests.support.payments import calls, collect, new_ctx, place, run
from tests.support.shop import store_connection

pytestmark = pytest.mark.django_db


def _notes(wired, number: str) -> list[str]:
    return [n["Notes"] for n in wired.shop.order(number)["OrderNotes"] or []]


def _intent(wired, number: str, amount: int, *, integration: str = "booking") -> dict:
    """A PaymentIntent paid with a test card, made outside the platform's flows."""
    return StripeGateway(wired.stripe).payment_intent_create(
        params={
            "amount": amount,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "metadata": {"znode_order_number": number, "integration": integration},
        },
        idempotency_key=f"test:{number}:{amount}:{integration}",
    )


@pytest.mark.parametrize(
    ("in_znode", "reason"),
    [
        ("canceled", "the order is CANCELED in Znode, not a state to charge"),
        ("captured", "Znode shows its payment as Captured already"),
    ],
)
def test_an_order_znode_shows_canceled_or_paid_is_never_charged(wired, in_znode, reason):
    """Rule: only an order in a ``collectable_states`` state whose payment status is
    not one of ``paid_payment_statuses`` is charged (the poller's first sight of an old
    order, a late job); another is recorded and skipped with the reason."""

    def meanwhile(placed):
        if in_znode == "canceled":
            wired.shop.cancel(placed["OrderNumber"])
        else:
            wired.znode.client().update_payment_status(
                order_id=placed["OmsOrderId"], status_name="Captured"
            )

    fetched = place(wired, user_id=12, before_fetch=meanwhile)
    result = collect(wired, fetched)
    assert result == {"outcome": "skipped", "reason": reason}
    assert calls("payment_intent.create") == 0
    order = Order.objects.get(order_number=fetched["order_number"])
    assert order.failure_reason == result["reason"] and not order.payments.exists()


def test_a_zero_total_order_is_complete_without_a_charge(wired):
    """Rule: a total of zero (a gift card, a full discount) is paid without charging
    anyone: the order is complete here, Znode gets a note, nothing is quarantined."""
    fetched = place(wired, user_id=12, total="0.00")
    assert collect(wired, fetched) == {
        "outcome": "no_charge",
        "reason": "the order's total is zero",
    }
    assert calls("payment_intent.create") == 0
    assert Order.objects.get(order_number=fetched["order_number"]).state == OrderState.PAID
    assert any("nothing to collect" in n for n in _notes(wired, fetched["order_number"]))


@pytest.mark.parametrize(("paid", "flag"), [(2500, "underpaid"), (3500, "overpaid")])
def test_a_payment_of_another_amount_is_not_paid(wired, paid, flag):
    """Rule: a success for another amount than the order's total is not "paid": the
    order is flagged underpaid or overpaid, Znode gets a note and the job waits for a
    person; Stripe's amount is kept on the payment."""
    fetched = place(wired, user_id=12)
    intent = _intent(wired, fetched["order_number"], paid)
    with pytest.raises(exc.BusinessRuleError, match=f"{flag}: the order total is now 30.00 USD"):
        run(
            wired,
            "payments.record_success",
            order_number=fetched["order_number"],
            payment_intent=intent["id"],
        )
    order = Order.objects.get(order_number=fetched["order_number"])
    assert (order.state, order.failure_reason) == (OrderState.NEW, flag)
    assert Payment.objects.get(payment_intent_id=intent["id"]).amount_received_minor == paid
    assert any(flag in n for n in _notes(wired, fetched["order_number"]))


def test_a_late_decline_after_the_customer_paid_tells_nobody(wired, mailoutbox):
    """Events are hints: a ``payment_failed`` handled after the PaymentIntent went
    through (the customer paid with another card) changes nothing and emails nobody."""
    fetched = place(wired, user_id=12)
    intent = _intent(wired, fetched["order_number"], 3000)
    result = run(
        wired,
        "payments.record_failure",
        order_number=fetched["order_number"],
        payment_intent=intent["id"],
        decline_code="card_declined",
    )
    assert result == {"ignored": "the payment is succeeded now"}
    assert Order.objects.get(order_number=fetched["order_number"]).state == OrderState.NEW
    assert mailoutbox == []
    assert not any("Payment failed" in n for n in _notes(wired, fetched["order_number"]))


def _store_b_order(wired, sandbox, fetched: dict, **fields):
    """A second store sharing the Stripe account, with an order of the same number."""
    other = Integration.objects.create(
        name="store-b",
        znode=store_connection(sandbox, name="store-b"),
        stripe=wired.stripe,
        settings=wired.settings,
    )
    theirs = Order.objects.create(
        integration=other,
        znode_order_id=fetched["order_id"],
        order_number=fetched["order_number"],
        currency="USD",
        total="30.00",
        amount_minor=3000,
        **fields,
    )
    return other, theirs


def test_another_stores_payment_never_pays_this_stores_order(wired, sandbox):
    """Two integrations share one Stripe account and both stores have an order with the
    same number: a payment whose metadata names store A never marks store B's order
    paid (the PaymentIntent names its integration; flows act only on their own)."""
    fetched = place(wired, user_id=12)
    other, theirs = _store_b_order(wired, sandbox, fetched)
    intent = _intent(wired, fetched["order_number"], 3000, integration="booking")
    from integrations.registry import get_action

    result = get_action("payments.record_success").call(
        new_ctx(other), {"order_number": theirs.order_number, "payment_intent": intent["id"]}
    )
    assert result == {"outcome": "skipped", "reason": "the PaymentIntent belongs to another order"}
    theirs.refresh_from_db()
    assert theirs.state == OrderState.NEW and not theirs.payments.exists()


def test_a_lost_create_answer_is_found_in_stripe_not_created_again(wired, monkeypatch):
    """Rule: a pending payment row is written before the PaymentIntent is created; a
    later try that finds the row still pending asks Stripe for the order's
    PaymentIntent (listed by our metadata) before creating anything, because Stripe
    forgets the idempotency key after 24 hours (operator retries, long waits)."""
    fetched = place(wired, user_id=12)
    order = Order.objects.get(order_number=fetched["order_number"])
    create = StripeGateway.payment_intent_create
    seen_rows = []

    def answer_lost(self, **kwargs):
        seen_rows.append(order.payments.count())
        create(self, **kwargs)
        raise exc.ConnectorTimeout("the answer was lost")

    monkeypatch.setattr(StripeGateway, "payment_intent_create", answer_lost)
    with pytest.raises(exc.ConnectorTimeout):
        collect(wired, fetched)
    assert seen_rows == [1]  # the pending row was there before the call
    pending = order.payments.get()
    assert pending.payment_intent_id is None
    monkeypatch.setattr(StripeGateway, "payment_intent_create", create)

    paid = collect(wired, fetched)
    assert paid["outcome"] == "paid"
    assert calls("payment_intent.create") == 1  # found, not created again
    pending.refresh_from_db()
    assert pending.payment_intent_id.startswith("pi_") and pending.status == "succeeded"
    listed = StripeGateway(wired.stripe).payment_intents_since(created_gte=0)
    ours = [pi for pi in listed if pi["metadata"].get("znode_order_number") == order.order_number]
    assert len(ours) == 1


def test_three_decimal_rounding_is_booked_as_its_own_line(integration):
    """Stripe charges KWD in steps of ten fils: an order of 5.125 KWD is charged 5.130.
    Rule: the sale stays the order's 5.125, the 0.005 Stripe took beyond it is an
    explicit rounding line (account ``rounding``), and the entry balances."""
    from decimal import Decimal

    from integrations.connectors.erp.mapping import check_balanced, journal_entry_to_wire
    from payments import money
    from reconciliation.ledger import erp_document, sale_entry

    order = Order.objects.create(
        integration=integration,
        znode_order_id=7,
        order_number="KW-1",
        currency="KWD",
        total=Decimal("5.125000"),
        amount_minor=money.to_minor_units("5.125", "KWD"),
    )
    assert order.amount_minor == 5130
    entry = erp_document(
        sale_entry(new_ctx(integration), order, charge="ch_kw", amount_received=5130)
    )
    lines = [(line.account, line.debit, line.credit) for line in entry.lines]
    assert lines == [
        ("1150", Decimal("5.130"), Decimal(0)),
        ("4000", Decimal(0), Decimal("5.125")),
        ("7990", Decimal(0), Decimal("0.005")),
    ]
    check_balanced(journal_entry_to_wire(entry)["lines"])
    usd = Order.objects.create(
        integration=integration,
        znode_order_id=8,
        order_number="US-1",
        currency="USD",
        total=Decimal("19.990000"),
        amount_minor=1999,
    )
    plain = sale_entry(new_ctx(integration), usd, charge="ch_us", amount_received=1999)
    assert [(p.key, p.account, p.signed_minor) for p in plain.lines()] == [
        ("clearing", "1150", 1999),
        ("charge", "4000", -1999),
    ]


def _lose_create_answers(monkeypatch, *, reach_stripe: bool):
    """The next PaymentIntent creates lose their answer (after reaching Stripe, or
    before); the function that restores the real create is returned."""
    create = StripeGateway.payment_intent_create

    def lost(self, **kwargs):
        if reach_stripe:
            with contextlib.suppress(exc.PaymentDeclined):
                create(self, **kwargs)
        raise exc.ConnectorTimeout("the answer was lost")

    monkeypatch.setattr(StripeGateway, "payment_intent_create", lost)
    return lambda: monkeypatch.setattr(StripeGateway, "payment_intent_create", create)


def test_a_refunded_payment_is_never_booked_afterwards(wired):
    """Rule: once money is refunded because the order was canceled, no booking step
    (a retry, a late event, an operator's book-again) writes it into Znode as paid or
    posts its sale."""
    from tests.support.payments import mark_paid, post_sale

    fetched = place(wired, user_id=12)
    paid = collect(wired, fetched)
    wired.shop.cancel(fetched["order_number"])
    canceled = run(
        wired,
        "payments.sync_order_change",
        order_number=fetched["order_number"],
        state="CANCELED",
        amount_minor=3000,
    )
    assert canceled["reason"] == "order canceled: payment refunded"
    assert mark_paid(wired, fetched, paid)["skipped"].startswith("refunded (re_")
    assert post_sale(wired, fetched, paid)["skipped"].startswith("refunded (re_")
    assert calls("znode.order.record_payment") == 0 and calls("erp.journal_entry.post") == 0


def test_a_pending_create_is_not_charged_once_znode_shows_the_order_canceled(wired, monkeypatch):
    """A create that never reached Stripe leaves only the pending row; the order is
    then canceled in Znode and read again: the retry charges nothing (the collectable
    check holds while no money is in motion)."""
    fetched = place(wired, user_id=12)
    restore = _lose_create_answers(monkeypatch, reach_stripe=False)
    with pytest.raises(exc.ConnectorTimeout):
        collect(wired, fetched)
    restore()
    wired.shop.cancel(fetched["order_number"])
    run(wired, "payments.fetch_order", order_id=fetched["order_id"])
    result = collect(wired, fetched)
    assert result["outcome"] == "skipped" and "CANCELED in Znode" in result["reason"]
    assert calls("payment_intent.create") == 0


def test_a_lost_decline_is_found_and_recorded_as_the_decline_it_was(wired, monkeypatch):
    """The decline's answer was lost; the retry finds the declined PaymentIntent in
    Stripe and records the decline (not a payment still waiting)."""
    fetched = place(wired, user_id=13, card="pm_card_chargeCustomerFail")
    restore = _lose_create_answers(monkeypatch, reach_stripe=True)
    with pytest.raises(exc.ConnectorTimeout):
        collect(wired, fetched)
    restore()
    result = collect(wired, fetched)
    assert result["outcome"] == "declined" and result["payment_intent"].startswith("pi_")
    order = Order.objects.get(order_number=fetched["order_number"])
    assert order.state == OrderState.PAYMENT_FAILED
    assert calls("payment_intent.create") == 1


def test_a_lookup_that_cannot_reach_the_end_creates_nothing(wired, monkeypatch):
    """Rule: when the listing since the pending row is cut off before it shows the
    order's PaymentIntent, nothing is created again (that could charge twice): the job
    waits for a person with the reason."""
    import payments.collection

    fetched = place(wired, user_id=12)
    restore = _lose_create_answers(monkeypatch, reach_stripe=False)
    with pytest.raises(exc.ConnectorTimeout):
        collect(wired, fetched)
    restore()
    monkeypatch.setattr(payments.collection, "FIND_LIMIT", 0)
    with pytest.raises(exc.BusinessRuleError, match="look it up in Stripe"):
        collect(wired, fetched)
    assert calls("payment_intent.create") == 0


def test_another_stores_decline_never_reaches_this_stores_customer(wired, sandbox, mailoutbox):
    """Two stores share one Stripe account: a decline whose PaymentIntent names store A
    changes nothing for store B's order of the same number, and emails nobody."""
    fetched = place(wired, user_id=12)
    other, theirs = _store_b_order(wired, sandbox, fetched, state=OrderState.PAYMENT_PENDING)
    intent = _intent(wired, fetched["order_number"], 3000, integration="booking")
    from integrations.registry import get_action

    result = get_action("payments.record_failure").call(
        new_ctx(other),
        {"order_number": theirs.order_number, "payment_intent": intent["id"]},
    )
    assert result == {"ignored": "the PaymentIntent belongs to another order"}
    theirs.refresh_from_db()
    assert theirs.state == OrderState.PAYMENT_PENDING and mailoutbox == []
