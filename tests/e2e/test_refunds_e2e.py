"""Money given back, end to end through the platform's webhooks and flows against the
sandbox: a Znode return approved is refunded once and recorded as Znode's admin does
(reference znode-api.md §5.1), a refund made in the Stripe Dashboard reaches Znode and
the ERP, a dispute is noted, flagged and posted; our own refund events never echo."""

import pytest
import requests

from integrations.choices import JobStatus
from integrations.models import Job
from payments.choices import OrderState, RefundOrigin, RefundStatus, ReturnState
from payments.models import Dispute, Order, Refund, Return
from tests.e2e.conftest import STRIPE_KEY, stripe_client, wait_for
from tests.support.payments import credit_memos, order_history
from tests.support.shop import payment_rows

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("quiet_sandbox")]


def paid_stock_order(platform, *, total: str = "40.00", card: str = "pm_card_visa") -> dict:
    """A stock card order (§9.1) adopted, shipped, captured and booked: Znode holds the
    payment record of its charge. Its payment status shows Captured, unless the card
    is disputed at capture: a dispute that opens before the booking keeps the order
    flagged (Pending), so the status may never show Captured."""
    placed = platform.shop.place_order(total=total, card=card, payment_setting_id=7)
    number = placed["OrderNumber"]
    wait_for(
        lambda: Order.objects.filter(order_number=number, state=OrderState.AUTHORIZED).exists(),
        message="adopted",
    )
    platform.shop.ship(number)
    wait_for(
        lambda: payment_rows(platform.shop.order(number), placed["TransactionId"]),
        message="captured and booked",
    )
    if card != "pm_card_createDispute":
        # The booking writes the payment record before the status (the evidence first,
        # payments.services.order_book_in_znode): the status follows within the job.
        wait_for(
            lambda: platform.shop.order(number)["PaymentStatus"] == "Captured",
            message="shown Captured",
        )
    return placed


def settled_jobs() -> bool:
    return not Job.objects.exclude(
        status__in=(JobStatus.SUCCEEDED, JobStatus.QUARANTINED, JobStatus.DISCARDED)
    ).exists()


def test_an_approved_return_is_refunded_once_and_shown_everywhere(platform, sandbox):
    placed = paid_stock_order(platform)
    number, charge = placed["OrderNumber"], placed["TransactionId"]
    made = platform.shop.create_return(number)

    platform.shop.return_state(made["ReturnNumber"], "Approved")

    row = wait_for(
        lambda: Return.objects.filter(
            return_number=made["ReturnNumber"], state=ReturnState.REFUNDED
        ).first(),
        message="the return refunded",
    )
    refund = row.refunds.get()
    wait_for(settled_jobs, message="every job done")
    assert refund.status == RefundStatus.SUCCEEDED and refund.amount_minor == 4000
    assert [r.id for r in stripe_client(sandbox).v1.refunds.list(params={"charge": charge})] == [
        refund.stripe_refund_id
    ]
    assert [h["TransactionId"] for h in order_history(sandbox, number)] == [refund.stripe_refund_id]
    assert platform.shop.order(number)["PaymentStatus"] == "Refunded"
    assert len(credit_memos(sandbox, f"refund:{refund.stripe_refund_id}")) == 1
    assert Refund.objects.count() == 1  # its own refund.created / charge.refunded: no echo


def test_a_dashboard_refund_reaches_znode_and_the_erp(platform, sandbox):
    placed = paid_stock_order(platform)
    number, charge = placed["OrderNumber"], placed["TransactionId"]

    made = stripe_client(sandbox).v1.refunds.create(params={"charge": charge, "amount": 1500})

    refund = wait_for(
        lambda: Refund.objects.filter(
            stripe_refund_id=made.id, znode_booked_at__isnull=False, erp_booked_at__isnull=False
        ).first(),
        message="the Dashboard refund reflected",
    )
    wait_for(settled_jobs, message="every job done")
    assert refund.origin == RefundOrigin.OUTSIDE
    assert [(h["TransactionId"], h["OrderAmount"]) for h in order_history(sandbox, number)] == [
        (made.id, "-15.00")
    ]
    assert len(credit_memos(sandbox, f"refund:{made.id}")) == 1


def test_a_dispute_is_recorded_and_its_win_reinstated(platform, sandbox):
    placed = paid_stock_order(platform, card="pm_card_createDispute")
    number = placed["OrderNumber"]
    dispute = wait_for(
        lambda: Dispute.objects.filter(order__order_number=number, funds_withdrawn=True).first(),
        message="the dispute recorded",
    )
    wait_for(lambda: platform.shop.order(number)["PaymentStatus"] == "Pending", message="flagged")

    requests.post(
        f"{sandbox.system_url('stripe')}/_test/disputes/{dispute.stripe_dispute_id}/resolve",
        data={"status": "won"},
        headers={"Authorization": f"Bearer {STRIPE_KEY}"},
        timeout=10,
    ).raise_for_status()

    wait_for(
        lambda: Dispute.objects.filter(
            pk=dispute.pk, outcome="won", funds_withdrawn=False
        ).exists(),
        message="the dispute won",
    )
    wait_for(settled_jobs, message="every job done")
    assert platform.shop.order(number)["PaymentStatus"] == "Captured"
