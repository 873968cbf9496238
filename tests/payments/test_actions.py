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
