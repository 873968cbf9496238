"""Out-of-order guards of the payment actions (no external call is made)."""

from decimal import Decimal

import pytest

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
