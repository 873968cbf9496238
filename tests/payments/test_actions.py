"""Payment actions: out-of-order guards, and booking against the sandbox store."""

from decimal import Decimal

import pytest
from django.utils import timezone

from integrations.models import Job
from integrations.registry import get_action
from integrations.runtime import ActionContext
from payments.choices import OrderState
from payments.models import Order
from tests.conftest import make_flow

pytestmark = pytest.mark.django_db


@pytest.fixture
def ctx(integration):
    flow = make_flow("guards", steps=[("a", "tests.echo", {})])
    job = Job.objects.create(flow=flow, integration=integration, max_attempts=1)
    return ActionContext(job=job, step=flow.steps.get(), attempt=None, document={})


def order(integration, state):
    return Order.objects.create(
        integration=integration,
        znode_order_id=1,
        order_number="ORD-9",
        currency="USD",
        total=Decimal("10.00"),
        amount_minor=1000,
        state=state,
    )


@pytest.mark.parametrize("state", [OrderState.AUTHORIZED, OrderState.PAID, OrderState.CANCELED])
def test_a_late_failure_never_overwrites_a_better_state(ctx, integration, state, mailoutbox):
    order(integration, state)
    result = get_action("payments.record_failure").call(
        ctx, {"order_number": "ORD-9", "payment_intent": "pi_old", "decline_code": "generic"}
    )
    assert result == {"ignored": f"order is {state}"}
    assert Order.objects.get().state == state
    assert mailoutbox == []


@pytest.mark.parametrize("state", [OrderState.PAID, OrderState.CANCELED])
def test_a_late_authorization_is_not_written_over_a_capture(ctx, integration, state):
    order(integration, state)
    result = get_action("payments.znode_mark_paid").call(
        ctx,
        {"order_number": "ORD-9", "charge": "ch_1", "amount_received": 0, "outcome": "authorized"},
    )
    assert result == {"skipped": f"order is {state}"}


def test_booking_is_exactly_once_without_references_and_keeps_their_payment(
    sandbox, stripe_connection
):
    """Znode builds whose history rows lack TransactionReference: the count before
    our first try is kept on the payment, so a retry finds ours and the customer's
    earlier payment of the same amount still stands (reference §12)."""
    from integrations.connectors.znode.client import ZnodeClient, forget_cached
    from integrations.models import Integration
    from integrations.services.flows import lookups_install_defaults
    from payments.models import Payment
    from tests.support.shop import Shop, store_connection

    forget_cached()
    lookups_install_defaults()
    shop = Shop(sandbox.system_url("znode"))
    shop.configure(payment_history_has_reference=False)  # the sandbox fixture resets it
    store = store_connection(sandbox)
    wired = Integration.objects.create(name="refless", znode=store, stripe=stripe_connection)
    placed = shop.place_order(total="19.99", payment_setting_id=2)
    znode = ZnodeClient(store)
    znode.record_payment(  # theirs, same amount and status
        order_id=placed["OmsOrderId"],
        transaction_reference="theirs",
        amount=Decimal("19.99"),
        status="Captured",
        payment_setting_id=2,
        transaction_date=timezone.now(),
    )
    order = Order.objects.create(
        integration=wired,
        znode_order_id=placed["OmsOrderId"],
        order_number=placed["OrderNumber"],
        currency="USD",
        total=Decimal("19.99"),
        amount_minor=1999,
        state=OrderState.PAID,
        znode_payment_setting_id=2,
    )
    Payment.objects.create(
        order=order, charge_id="ch_ours", amount_minor=1999, currency="USD", status="succeeded"
    )
    flow = make_flow("refless", steps=[("a", "tests.echo", {})])
    job = Job.objects.create(flow=flow, integration=wired, max_attempts=1)
    ctx = ActionContext(job=job, step=flow.steps.get(), attempt=None, document={})
    inputs = {
        "order_number": placed["OrderNumber"],
        "charge": "ch_ours",
        "amount_received": 1999,
        "outcome": "paid",
    }
    first = get_action("payments.znode_mark_paid").call(ctx, inputs)
    again = get_action("payments.znode_mark_paid").call(ctx, inputs)
    assert (first["payment_recorded"], again["payment_recorded"]) == (True, False)
    assert Payment.objects.get(charge_id="ch_ours").znode_history_baseline == 1
    rows = znode.payment_history(placed["OmsOrderId"])
    assert [r["TransactionStatus"] for r in rows] == ["Captured", "Captured"]
    forget_cached()


@pytest.fixture
def canceled_order(sandbox):
    """An order the store canceled, wired to the sandbox's Znode and Stripe."""
    from integrations.connectors.znode.client import forget_cached
    from integrations.services.connections import connection_create
    from integrations.services.flows import lookups_install_defaults
    from tests.support.shop import Shop, store_connection

    forget_cached()
    lookups_install_defaults()
    stripe_conn = connection_create(
        name="stripe-sbx",
        kind="stripe",
        base_url=sandbox.system_url("stripe"),
        credentials={"api_key": "sk_test_actions_canceled"},
        rate_limit_per_second=500,
    )
    from integrations.models import Integration

    wired = Integration.objects.create(
        name="canceled", znode=store_connection(sandbox), stripe=stripe_conn
    )
    shop = Shop(sandbox.system_url("znode"))
    placed = shop.place_order(total="12.00", payment_setting_id=11)
    shop.cancel(placed["OrderNumber"])
    order = Order.objects.create(
        integration=wired,
        znode_order_id=placed["OmsOrderId"],
        order_number=placed["OrderNumber"],
        currency="USD",
        total=Decimal("12.00"),
        amount_minor=1200,
        state=OrderState.CANCELED,
    )
    flow = make_flow("late-money", steps=[("a", "tests.echo", {})])
    job = Job.objects.create(flow=flow, integration=wired, max_attempts=1)
    ctx = ActionContext(job=job, step=flow.steps.get(), attempt=None, document={})
    yield ctx, order, shop
    forget_cached()


def _intent(ctx, order, *, capture_method: str) -> dict:
    from integrations.connectors.stripe.client import StripeGateway

    return StripeGateway(ctx.integration.stripe).payment_intent_create(
        params={
            "amount": 1200,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "capture_method": capture_method,
            "metadata": {"znode_order_number": order.order_number, "integration": "canceled"},
        },
        idempotency_key=f"test-{capture_method}",
    )


def test_an_authorization_for_a_canceled_order_is_released(canceled_order):
    """Rule: money that arrives after the store canceled the order is never booked; an
    authorization of it is released at once."""
    from integrations.connectors.stripe.client import StripeGateway
    from payments.models import Payment

    ctx, order, shop = canceled_order
    intent = _intent(ctx, order, capture_method="manual")
    result = get_action("payments.record_success").call(
        ctx, {"order_number": order.order_number, "payment_intent": intent["id"]}
    )
    assert result == {"outcome": "skipped", "reason": "order canceled: authorization released"}
    released = StripeGateway(ctx.integration.stripe).payment_intent_retrieve(intent["id"])
    assert released["status"] == "canceled"
    assert Payment.objects.get(payment_intent_id=intent["id"]).status == "canceled"
    assert Order.objects.get(pk=order.pk).state == OrderState.CANCELED
    znode = shop.order(order.order_number)
    assert znode["PaymentStatus"] == "Voided"
    notes = [n["Notes"] for n in znode["OrderNotes"] or [] if "was released" in n["Notes"]]
    assert len(notes) == 1 and intent["id"] in notes[0]


def test_a_payment_for_a_canceled_order_is_refunded_in_full_once(canceled_order):
    """Rule (``canceled_order_payments=refund``, the default): a captured payment for
    a canceled order is given back in full at once, under one key per order (a re-run
    or a second event replays that refund), noted in Znode, and never booked."""
    from integrations.connectors.stripe.client import StripeGateway
    from payments.models import Payment

    ctx, order, shop = canceled_order
    intent = _intent(ctx, order, capture_method="automatic")
    inputs = {"order_number": order.order_number, "payment_intent": intent["id"]}
    first = get_action("payments.record_success").call(ctx, inputs)
    again = get_action("payments.record_success").call(ctx, inputs)
    assert first["outcome"] == "skipped" and first["reason"] == "order canceled: payment refunded"
    assert again["refund"] == first["refund"]
    payment = Payment.objects.get(payment_intent_id=intent["id"])
    assert (payment.refund_id, payment.amount_refunded_minor) == (first["refund"], 1200)
    charge = StripeGateway(ctx.integration.stripe).charge_retrieve(intent["latest_charge"])
    assert charge["amount_refunded"] == 1200
    notes = [n["Notes"] for n in shop.order(order.order_number)["OrderNotes"] or []]
    assert len([n for n in notes if "refunded in full" in n]) == 1
    assert Order.objects.get(pk=order.pk).state == OrderState.CANCELED


def test_a_payment_for_a_canceled_order_waits_for_an_operator(canceled_order):
    """Rule (``canceled_order_payments=hold``): a captured payment for a canceled order
    is not refunded nor booked: the step fails for an operator, with a note in Znode."""
    from integrations.kernel import exceptions as exc
    from payments.models import Payment

    ctx, order, shop = canceled_order
    ctx.integration.settings = {"canceled_order_payments": "hold"}
    ctx.integration.save(update_fields=["settings"])
    intent = _intent(ctx, order, capture_method="automatic")
    with pytest.raises(exc.BusinessRuleError, match="the order was canceled in Znode, but the"):
        get_action("payments.record_success").call(
            ctx, {"order_number": order.order_number, "payment_intent": intent["id"]}
        )
    payment = Payment.objects.get(payment_intent_id=intent["id"])
    assert (payment.status, payment.charge_id) == ("succeeded", intent["latest_charge"])
    assert Order.objects.get(pk=order.pk).state == OrderState.CANCELED
    notes = [n["Notes"] for n in shop.order(order.order_number)["OrderNotes"] or []]
    assert any("already paid 12.00 USD in Stripe" in n for n in notes)


def test_a_rerun_after_an_adopted_capture_still_books_it(ctx, integration):
    """The capture committed (payment succeeded, order paid) but the step's output was
    lost with the worker: the re-run hands the booking steps the capture again, without
    calling Stripe, instead of deciding that nothing changed."""
    from payments.models import Payment

    paid = order(integration, OrderState.PAID)
    Payment.objects.create(
        order=paid,
        charge_id="ch_adopted",
        adopted=True,
        amount_minor=1000,
        amount_received_minor=1000,
        currency="USD",
        status="succeeded",
    )
    result = get_action("payments.sync_order_change").call(
        ctx, {"order_number": "ORD-9", "state": "SHIPPED", "amount_minor": 1000}
    )
    assert result == {
        "action": "captured",
        "outcome": "paid",
        "charge": "ch_adopted",
        "amount_received": 1000,
    }
