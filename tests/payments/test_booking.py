"""Booking a payment: whichever job first has Stripe's word that the money is in books
it, every later job for the same payment does only what is still missing, and no
retry writes anything twice. Against the sandbox over real HTTP."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from integrations.choices import JobStatus
from integrations.connectors.stripe.client import StripeGateway
from integrations.kernel import exceptions as exc
from integrations.models import InboundEvent, Job
from integrations.registry import get_action
from payments.choices import OrderState
from payments.models import Order, Payment
from payments.services import order_move
from tests.support.payments import (
    calls,
    collect,
    erp_entries,
    mark_paid,
    new_ctx,
    place,
    post_sale,
    run,
)
from tests.support.shop import payment_rows

pytestmark = pytest.mark.django_db


def test_the_job_with_stripes_answer_books_and_the_event_after_it_costs_nothing(wired):
    """Stripe's answer to the off-session charge is the money (not an event, a hint):
    the order-created job settles and books it. The first booking decides on the
    order as the fetch step read it (nothing of ours can be in Znode yet), so it
    reads nothing again; the ``payment_intent.succeeded`` event then makes no call."""
    fetched = place(wired, user_id=12)
    paid = collect(wired, fetched)
    assert paid["outcome"] == "paid" and paid["charge"].startswith("ch_")
    assert paid["amount_received"] == 3000
    reads = calls("znode.order.get")
    booked = mark_paid(wired, fetched, paid)
    assert booked["payment_recorded"] is True
    assert calls("znode.order.get") == reads  # decided on the fetch step's read
    post_sale(wired, fetched, paid)

    before = calls()
    payment = Payment.objects.get(charge_id=paid["charge"])
    result = run(
        wired,
        "payments.record_success",
        order_number=fetched["order_number"],
        payment_intent=payment.payment_intent_id,
    )
    assert result["booked"] is True and result["outcome"] == "paid"
    assert mark_paid(wired, fetched, result)["skipped"] == "booked in Znode already"
    assert post_sale(wired, fetched, result) == {"skipped": "posted to the ERP already"}
    assert calls() == before
    znode = wired.shop.order(fetched["order_number"])
    assert len(payment_rows(znode, paid["charge"])) == 1
    assert len(erp_entries(wired, f"sale:{paid['charge']}")) == 1


def test_a_rerun_after_the_money_moved_hands_the_booking_on(wired):
    """The collect step's output was lost after the payment was stored and the order
    moved to paid (a crash, a lost lease): the re-run creates nothing, and hands the
    booking steps the payment, instead of deciding there is nothing to do."""
    fetched = place(wired, user_id=12)
    paid = collect(wired, fetched)
    creates = calls("payment_intent.create")
    again = collect(wired, fetched)
    assert again["outcome"] == "paid"
    assert (again["charge"], again["amount_received"]) == (paid["charge"], 3000)
    assert calls("payment_intent.create") == creates
    mark_paid(wired, fetched, again)
    post_sale(wired, fetched, again)
    payment = Payment.objects.get(charge_id=paid["charge"])
    assert payment.znode_booked_at and payment.erp_booked_at
    assert len(payment_rows(wired.shop.order(fetched["order_number"]), paid["charge"])) == 1


def test_a_quarantined_erp_step_is_finished_by_the_replayed_event(wired):
    """The booker wrote Znode, then its ERP step failed for an operator. The replayed
    ``payment_intent.succeeded`` does only what is missing: Stripe is re-read (not
    every booking is done), Znode is left alone, the journal entry is posted once."""
    fetched = place(wired, user_id=12)
    paid = collect(wired, fetched)
    mark_paid(wired, fetched, paid)
    erp = wired.erp
    erp.enabled = False
    erp.save()
    with pytest.raises(exc.ConnectorConfigurationError):
        post_sale(wired, fetched, paid)
    erp.enabled = True
    erp.save()
    wired.refresh_from_db()

    payment = Payment.objects.get(charge_id=paid["charge"])
    retrieves = calls("payment_intent.retrieve")
    replay = run(
        wired,
        "payments.record_success",
        order_number=fetched["order_number"],
        payment_intent=payment.payment_intent_id,
    )
    assert calls("payment_intent.retrieve") == retrieves + 1
    assert replay["outcome"] == "paid" and "booked" not in replay
    writes = calls("znode.order.record_payment")
    assert mark_paid(wired, fetched, replay)["skipped"] == "booked in Znode already"
    assert calls("znode.order.record_payment") == writes
    post_sale(wired, fetched, replay)
    assert len(erp_entries(wired, f"sale:{paid['charge']}")) == 1
    assert len(payment_rows(wired.shop.order(fetched["order_number"]), paid["charge"])) == 1


def test_an_off_session_success_for_a_moved_total_is_refused_on_every_rerun(wired, monkeypatch):
    """Rule: the money Stripe took is kept on the payment, but the order is not settled
    for a total it no longer has (a change of the order raced the charge). A re-run
    decides by the same rule from the payment as stored: refused again, with no second
    charge, until the totals agree; then it settles and books."""
    fetched = place(wired, user_id=12)
    order = Order.objects.get(order_number=fetched["order_number"])
    create = StripeGateway.payment_intent_create

    def racing_change(self, **kwargs):
        answer = create(self, **kwargs)
        Order.objects.filter(pk=order.pk).update(amount_minor=2500, total=Decimal("25.00"))
        return answer

    monkeypatch.setattr(StripeGateway, "payment_intent_create", racing_change)
    with pytest.raises(exc.BusinessRuleError, match=r"the order total is now 25\.00 USD"):
        collect(wired, fetched)
    payment = order.payments.get()
    assert (payment.status, payment.amount_received_minor) == ("succeeded", 3000)
    order.refresh_from_db()
    assert order.state == OrderState.PAYMENT_PENDING

    with pytest.raises(exc.BusinessRuleError, match=r"the order total is now 25\.00 USD"):
        collect(wired, fetched)
    assert calls("payment_intent.create") == 1
    assert Order.objects.get(pk=order.pk).state == OrderState.PAYMENT_PENDING

    Order.objects.filter(pk=order.pk).update(amount_minor=3000, total=Decimal("30.00"))
    settled = collect(wired, fetched)
    assert settled["outcome"] == "paid" and Order.objects.get(pk=order.pk).state == "paid"


@pytest.mark.parametrize(
    "holder_ends",
    [
        {"status": JobStatus.RETRYING},
        {"lease_expires_at": timezone.now() - timedelta(seconds=1)},
    ],
    ids=["holder failed", "holder lost its lease"],
)
def test_one_job_at_a_time_writes_a_payment_into_znode(wired, holder_ends, monkeypatch):
    """A running job's claim is waited for (retried), however slow it is; once that
    job has ended or lost its worker the claim is taken over, and the history is then
    read fresh, since the job before may have written the record before it stopped."""
    import payments.services

    monkeypatch.setattr(payments.services, "BOOKING_WAIT_SECONDS", 0.3)
    fetched = place(wired, user_id=12)
    paid = collect(wired, fetched)
    payment = Payment.objects.get(charge_id=paid["charge"])
    holder = new_ctx(wired).job
    Job.objects.filter(pk=holder.pk).update(
        status=JobStatus.RUNNING, lease_expires_at=timezone.now() + timedelta(minutes=10)
    )
    Payment.objects.filter(pk=payment.pk).update(
        znode_booking_started_at=timezone.now() - timedelta(hours=1), znode_booking_job=holder.pk
    )
    with pytest.raises(exc.ConflictRetry, match=f"being written into Znode by job {holder.pk}"):
        mark_paid(wired, fetched, paid)
    Job.objects.filter(pk=holder.pk).update(**holder_ends)
    reads = calls("znode.order.get")
    assert mark_paid(wired, fetched, paid)["payment_recorded"] is True
    assert calls("znode.order.get") == reads + 1  # read fresh: not the first try
    assert len(payment_rows(wired.shop.order(fetched["order_number"]), paid["charge"])) == 1


def test_a_record_for_a_charge_without_a_payment_row_decides_on_a_fresh_read(wired):
    """No payment row, so no claim can tell a first try: the history as the fetch step
    read it is not trusted, and a retry after a lost answer writes nothing twice."""
    fetched = place(wired, user_id=12)
    order = Order.objects.get(order_number=fetched["order_number"])
    order_move(order, OrderState.PAID)
    paid = {"charge": "ch_edited_by_an_operator", "amount_received": 3000, "outcome": "paid"}
    reads = calls("znode.order.get")
    assert mark_paid(wired, fetched, paid)["payment_recorded"] is True
    assert calls("znode.order.get") == reads + 1
    assert mark_paid(wired, fetched, paid)["payment_recorded"] is False
    assert len(payment_rows(wired.shop.order(fetched["order_number"]), paid["charge"])) == 1


def test_the_sale_carries_the_date_the_money_came_in_whichever_job_posts_it(wired):
    """Rule: the journal entry is dated by the payment (``paid_at``, stamped once), not
    by the event of the job that posts it, so a second poster (its answer lost to the
    first, or an event a day later) sends the very same entry and the ERP answers it
    as the one it holds instead of refusing a different one."""
    fetched = place(wired, user_id=12)
    paid = collect(wired, fetched)
    payment = Payment.objects.get(charge_id=paid["charge"])
    assert payment.paid_at is not None
    post_sale(wired, fetched, paid)
    Payment.objects.filter(pk=payment.pk).update(erp_booked_at=None)  # the answer was lost
    tomorrow = InboundEvent.objects.create(
        connection=wired.stripe,
        external_id="evt_tomorrow",
        event_type="payment_intent.succeeded",
        body="{}",
        occurred_at=timezone.now() + timedelta(days=1),
    )
    ctx = new_ctx(wired)
    Job.objects.filter(pk=ctx.job.pk).update(event=tomorrow)
    ctx.job.refresh_from_db()
    inputs = {
        "order_number": fetched["order_number"],
        "charge": paid["charge"],
        "amount_received": 3000,
        "outcome": "paid",
    }
    get_action("payments.erp_post_sale").call(ctx, inputs)
    entries = erp_entries(wired, f"sale:{paid['charge']}")
    assert len(entries) == 1
    assert entries[0]["date"] == payment.paid_at.date().isoformat()


def test_a_refused_payment_is_never_handed_on_by_a_rerun(wired):
    """The order is paid, but its only succeeded payment is for another total (refused
    when it came): a re-run of the collect step hands nothing to the booking steps."""
    fetched = place(wired, user_id=12)
    order = Order.objects.get(order_number=fetched["order_number"])
    Payment.objects.create(
        order=order,
        payment_intent_id="pi_for_another_total",
        charge_id="ch_for_another_total",
        amount_minor=2500,
        amount_received_minor=2500,
        currency="USD",
        status="succeeded",
    )
    order_move(order, OrderState.PAID)
    assert collect(wired, fetched) == {"outcome": "skipped", "reason": "paid"}


def test_an_operator_has_a_payment_booked_again_with_permission_and_audit(wired, client):
    """A booking lost on the other side is booked again by an operator who may: the
    marks are cleared (an admin log entry says who), the replayed event re-checks
    Znode (fresh) and the ERP and writes only what is missing."""
    from django.contrib.admin.models import LogEntry
    from django.contrib.auth.models import Permission, User

    fetched = place(wired, user_id=12)
    paid = collect(wired, fetched)
    mark_paid(wired, fetched, paid)
    post_sale(wired, fetched, paid)
    payment = Payment.objects.get(charge_id=paid["charge"])
    url = "/admin/payments/payment/"
    form = {"action": "rebook", "_selected_action": [payment.pk]}

    staff = User.objects.create_user("viewer", password="pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_payment"))
    client.force_login(staff)
    assert "rebook" not in client.get(url).content.decode()
    client.post(url, form)
    payment.refresh_from_db()
    assert payment.znode_booked_at and payment.erp_booked_at  # refused: nothing changed

    staff.user_permissions.add(Permission.objects.get(codename="rebook_payment"))
    staff = User.objects.get(pk=staff.pk)
    client.force_login(staff)
    assert client.post(url, form).status_code == 302
    payment.refresh_from_db()
    assert payment.znode_booked_at is None and payment.erp_booked_at is None
    assert LogEntry.objects.filter(object_id=str(payment.pk), user=staff).exists()

    replay = run(
        wired,
        "payments.record_success",
        order_number=fetched["order_number"],
        payment_intent=payment.payment_intent_id,
    )
    assert mark_paid(wired, fetched, replay)["payment_recorded"] is False  # found, fresh
    post_sale(wired, fetched, replay)
    assert len(payment_rows(wired.shop.order(fetched["order_number"]), paid["charge"])) == 1
    assert len(erp_entries(wired, f"sale:{paid['charge']}")) == 1
    payment.refresh_from_db()
    assert payment.znode_booked_at and payment.erp_booked_at
