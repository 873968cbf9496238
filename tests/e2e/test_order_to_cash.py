"""Order-to-cash end to end, through real HTTP against the sandbox.

The sandbox store is configured as a stock 9.x store (reference znode-api.md): card
orders on the Stripe gateway (settings 7 and 8) are authorized by Znode's payment app,
which leaves a Stripe charge id in ``TransactionId`` and its own GUID in
``PaymentTransactionToken`` (§9.1); APPROVED is a quote state (§4.1); the store clock
is not UTC (§2.2)."""

import json
import re
import uuid

import pytest
import requests
from django.core import mail

from integrations.choices import EventStatus, JobStatus
from integrations.models import ApiCall, InboundEvent, Job
from payments.choices import OrderState
from payments.models import Order, Payment
from tests.e2e.conftest import saved_card_customer, stripe_client, wait_for
from tests.support.shop import LINK_PAYMENT_SETTING_ID, SAVED_PAYMENT_SETTING_ID, payment_rows

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("quiet_sandbox")]


def _duplicate_delivered(sandbox, number: str) -> None:
    """Flush the sandbox's held Stripe webhooks; wait for the second delivery of the
    order's payment_intent.succeeded."""
    sandbox.control("POST", "webhooks/stripe/flush")
    wait_for(
        lambda: InboundEvent.objects.filter(
            event_type="payment_intent.succeeded", reference=number, deliveries=2
        ).exists(),
        message="the duplicate delivery",
    )


def flow_done(number: str, flow: str, timeout: float = 20.0) -> Job:
    return wait_for(
        lambda: Job.objects.filter(
            reference=number, flow__key=flow, status=JobStatus.SUCCEEDED
        ).first(),
        timeout=timeout,
        message=f"{flow} done for {number}",
    )


def erp_entries(sandbox, reference=None):
    """The ERP's journal entries (of ``reference``), every page."""
    entries, url = [], f"{sandbox.system_url('erp')}/api/journal-entries"
    params = {"external_reference": reference, "page_size": 500} if reference else {}
    params.setdefault("page_size", 500)
    while url:
        page = requests.get(
            url, params=params, headers={"Authorization": "Bearer sandbox-erp-token"}, timeout=10
        ).json()
        entries += page["results"]
        url, params = page.get("next"), None
    return entries


def test_stock_card_order_is_adopted_then_captured_on_shipment(platform, sandbox):
    """§9.1: Znode's payment app authorized a charge at checkout. The platform never
    creates a second payment: it adopts that charge, captures it when the order
    ships, and books it once in Znode (payment record, transaction id, Captured) and
    in the ERP, keeping the tracking number."""
    placed = platform.shop.place_order(total="42.50", card="pm_card_visa", payment_setting_id=7)
    number = placed["OrderNumber"]
    charge_id = placed["TransactionId"]
    assert charge_id.startswith("ch_")
    uuid.UUID(placed["PaymentTransactionToken"])  # the payment app's GUID
    order = wait_for(
        lambda: Order.objects.filter(order_number=number, state=OrderState.AUTHORIZED).first(),
        message="adopted as authorized",
    )
    payment = order.payments.get()
    assert (payment.charge_id, payment.adopted, payment.payment_intent_id) == (
        charge_id,
        True,
        None,
    )
    assert not ApiCall.objects.filter(operation="payment_intent.create").exists()
    platform.shop.ship(number, tracking_number="1ZSTOCK")
    wait_for(
        lambda: Order.objects.filter(order_number=number, state=OrderState.PAID).exists(),
        message="captured",
    )
    flow_done(number, "order-updated-sync-payment")
    charge = stripe_client(sandbox).v1.charges.retrieve(charge_id)
    assert (charge.captured, charge.amount_captured) == (True, 4250)
    znode = platform.shop.order(number)
    assert znode["OrderState"] == "SHIPPED"
    assert znode["TrackingNumber"] == "1ZSTOCK"
    assert znode["PaymentStatus"] == "Captured"
    assert znode["TransactionId"] == charge_id
    assert len(payment_rows(znode, charge_id)) == 1
    entries = erp_entries(sandbox, f"sale:{charge_id}")
    assert len(entries) == 1
    assert [line["debit"] for line in entries[0]["lines"]] == ["42.50", "0"]


def test_a_lowered_total_is_captured_lowered(platform, sandbox):
    placed = platform.shop.place_order(total="100.00", card="pm_card_visa", payment_setting_id=8)
    number = placed["OrderNumber"]
    wait_for(
        lambda: Order.objects.filter(order_number=number, state=OrderState.AUTHORIZED).exists(),
        message="adopted",
    )
    platform.shop._post(f"/orders/{number}/update_total", {"total": "80.00"})
    platform.shop.ship(number, tracking_number="1ZLOWER")
    wait_for(
        lambda: Order.objects.filter(order_number=number, state=OrderState.PAID).exists(),
        message="captured",
    )
    charge = stripe_client(sandbox).v1.charges.retrieve(placed["TransactionId"])
    assert charge.amount_captured == 8000
    flow_done(number, "order-updated-sync-payment")
    entry = erp_entries(sandbox, f"sale:{placed['TransactionId']}")[0]
    assert entry["lines"][0]["debit"] == "80.00"
    assert payment_rows(platform.shop.order(number), placed["TransactionId"])[0]["Amount"] in (
        80,
        "80",
    )


def test_a_raised_total_above_the_authorization_is_not_captured(platform, sandbox):
    """Rule: a total above what was authorized is never captured silently (not the
    authorization, not the new total): the job is quarantined with the reason and
    the charge stays uncaptured for a person."""
    placed = platform.shop.place_order(total="100.00", card="pm_card_visa", payment_setting_id=8)
    number = placed["OrderNumber"]
    wait_for(
        lambda: Order.objects.filter(order_number=number, state=OrderState.AUTHORIZED).exists(),
        message="adopted",
    )
    platform.shop._post(f"/orders/{number}/update_total", {"total": "120.00"})
    platform.shop.ship(number, tracking_number="1ZRAISED")
    job = wait_for(
        lambda: Job.objects.filter(
            reference=number, flow__key="order-updated-sync-payment", status=JobStatus.QUARANTINED
        ).first(),
        message="capture refused",
    )
    assert "the total 12000 is above the 10000 authorized" in job.last_error
    charge = stripe_client(sandbox).v1.charges.retrieve(placed["TransactionId"])
    assert charge.captured is False
    assert Order.objects.get(order_number=number).state == OrderState.AUTHORIZED


def test_saved_card_order_is_paid_off_session(platform, sandbox, admin_client):
    customer = saved_card_customer(sandbox, user_id=12, email="bob@example.com")
    placed = platform.shop.place_order(
        user_id=12, total="42.50", payment_setting_id=SAVED_PAYMENT_SETTING_ID
    )
    number = placed["OrderNumber"]
    order = wait_for(
        lambda: Order.objects.filter(order_number=number, state=OrderState.PAID).first(),
        message="order paid",
    )
    flow_done(number, "payment-succeeded")
    # The off-session charge answers the collecting job at once, and its webhook may
    # finish its own flow first: the timeline below is read once both are done.
    flow_done(number, "order-created-collect-payment")
    wait_for(
        lambda: InboundEvent.objects.filter(
            event_type="order.created", reference=number, status=EventStatus.PROCESSED
        ).exists(),
        message="order.created processed",
    )
    payment = order.payments.get()
    assert payment.status == "succeeded" and payment.amount_minor == 4250
    intent = stripe_client(sandbox).v1.payment_intents.retrieve(payment.payment_intent_id)
    assert intent.customer == customer  # found, not duplicated
    znode = platform.shop.order(number)
    assert znode["OrderState"] == "SUBMITTED"  # the shipped table leaves the state alone
    assert znode["PaymentStatus"] == "Captured"
    assert znode["TransactionId"] == payment.charge_id
    assert len(payment_rows(znode, payment.charge_id)) == 1
    entries = erp_entries(sandbox, f"sale:{payment.charge_id}")
    assert len(entries) == 1
    assert [line["debit"] for line in entries[0]["lines"]] == ["42.50", "0"]

    # An operator opens the order and follows it across the three systems, in order.
    page = admin_client.get(f"/admin/payments/order/{order.pk}/change/").content.decode()
    milestones = [
        "order.created (processed)",
        "order-created-collect-payment: succeeded",
        "POST payment_intent.create",
        "POST erp.journal_entry.post",
    ]
    positions = [page.find(m) for m in milestones]
    assert all(p > 0 for p in positions), dict(zip(milestones, positions, strict=True))
    assert positions == sorted(positions)
    assert "payment_intent.succeeded (processed)" in page
    # Stripe's answer to the off-session charge was the money: whichever of the two
    # jobs claimed it first wrote it into Znode, once (the other found it booked).
    records = ApiCall.objects.filter(reference=number, operation="znode.order.record_payment")
    assert records.count() == 1


@pytest.mark.parametrize("notify", [True, False], ids=["notify", "notify_customer=false"])
def test_declined_saved_card_sets_the_payment_status_and_tells_the_customer(
    platform, sandbox, notify
):
    """``notify_customer=false``: Znode still shows the decline, nobody is emailed."""
    platform.settings = {**platform.settings, "notify_customer": notify}
    platform.save(update_fields=["settings"])
    saved_card_customer(
        sandbox, user_id=13, email="carla@example.com", card="pm_card_chargeCustomerFail"
    )
    placed = platform.shop.place_order(
        user_id=13, total="15.00", payment_setting_id=SAVED_PAYMENT_SETTING_ID
    )
    number = placed["OrderNumber"]
    flow_done(number, "payment-failed")
    order = Order.objects.get(order_number=number)
    assert order.state == OrderState.PAYMENT_FAILED
    znode = platform.shop.order(number)
    assert znode["PaymentStatus"] == "Declined"
    notes = [n["Notes"] for n in znode["OrderNotes"] or []]
    assert any("Payment failed" in n for n in notes)
    assert len(mail.outbox) == (1 if notify else 0)
    assert not any(number in entry["memo"] for entry in erp_entries(sandbox))  # no sale


def test_a_card_order_without_a_saved_method_is_quarantined_with_a_note(platform, sandbox):
    placed = platform.shop.place_order(
        user_id=14, total="9.00", payment_setting_id=SAVED_PAYMENT_SETTING_ID
    )
    number = placed["OrderNumber"]
    job = wait_for(
        lambda: Job.objects.filter(
            reference=number,
            flow__key="order-created-collect-payment",
            status=JobStatus.QUARANTINED,
        ).first(),
        message="quarantined",
    )
    assert "has no saved default payment method" in job.last_error
    notes = [n["Notes"] for n in platform.shop.order(number)["OrderNotes"] or []]
    assert any("cannot collect this payment" in n for n in notes)
    assert not ApiCall.objects.filter(operation="payment_intent.create").exists()


def test_purchase_orders_are_not_charged(platform):
    placed = platform.shop.place_order(total="10.00", payment_setting_id=2)
    number = placed["OrderNumber"]
    job = flow_done(number, "order-created-collect-payment")
    assert job.step_outputs["payment"]["outcome"] == "skipped"
    assert not Order.objects.get(order_number=number).payments.exists()


def test_changes_before_payment_update_or_cancel_the_payment_intent(platform, sandbox):
    """A storefront that pays with Stripe.js gets the client secret in an order note."""
    platform.settings = {**platform.settings, "customer_payment_page": "storefront"}
    platform.save(update_fields=["settings"])
    placed = platform.shop.place_order(total="20.00", payment_setting_id=LINK_PAYMENT_SETTING_ID)
    number = placed["OrderNumber"]
    order = wait_for(
        lambda: Order.objects.filter(order_number=number, state=OrderState.PAYMENT_PENDING).first(),
        message="payment intent waiting for the customer",
    )
    intent_id = order.payments.get().payment_intent_id
    wait_for(  # the client secret is handed to the storefront in an order note
        lambda: any(
            f"client_secret={intent_id}_secret_" in n["Notes"]
            for n in platform.shop.order(number)["OrderNotes"] or []
        ),
        message="client secret note",
    )
    client = stripe_client(sandbox)
    platform.shop._post(f"/orders/{number}/update_total", {"total": "25.00"})
    wait_for(
        lambda: client.v1.payment_intents.retrieve(intent_id).amount == 2500,
        message="amount updated in Stripe",
    )
    wait_for(  # stored here once Stripe took it
        lambda: Order.objects.get(order_number=number).amount_minor == 2500,
        message="the new total stored",
    )
    platform.shop.cancel(number)
    wait_for(
        lambda: Order.objects.filter(order_number=number, state=OrderState.CANCELED).exists(),
        message="canceled",
    )
    assert client.v1.payment_intents.retrieve(intent_id).status == "canceled"


# --- the customer pays on Stripe's hosted page (Checkout) -------------------------------------
def _page(number: str, *, after: int = 0):
    """The order's newest hosted payment page row, once the link went out."""
    return wait_for(
        lambda: (
            Payment.objects.filter(order__order_number=number, id__gt=after)
            .exclude(checkout_session_id="")
            .order_by("-id")
            .first()
        ),
        message=f"a payment page for {number}",
    )


def _notes(platform, number: str) -> list[str]:
    return [n["Notes"] for n in platform.shop.order(number)["OrderNotes"] or []]


def _pay_page(sandbox, session_id: str, card: str) -> requests.Response:
    """What Stripe does when the customer submits the hosted page with ``card``."""
    return requests.post(
        f"{sandbox.system_url('stripe')}/_test/checkout/sessions/{session_id}/pay",
        json={"payment_method": card},
        timeout=10,
    )


def _link_emails(number: str) -> list:
    return [m for m in mail.outbox if m.subject == f"Pay for your order {number}"]


def test_customer_pays_on_the_hosted_page(platform, sandbox):
    """Issue 7 #12 "customer completes": a Checkout Session for the total, its link
    emailed and noted on the order; paying it books the order exactly once, with every
    Stripe and Znode webhook delivered twice and reordered."""

    for system in ("stripe", "znode"):
        sandbox.set_faults(system, webhook_duplicate_rate=1.0, webhook_reorder_window=2)
    placed = platform.shop.place_order(total="42.50", payment_setting_id=LINK_PAYMENT_SETTING_ID)
    number = placed["OrderNumber"]
    page = _page(number)
    client = stripe_client(sandbox)
    session = client.v1.checkout.sessions.retrieve(page.checkout_session_id)
    assert (session.status, session.amount_total, session.currency) == ("open", 4250, "usd")
    assert session.metadata["znode_order_number"] == number
    assert session.client_reference_id == number
    assert session.success_url == "https://shop.example.com/checkout/thanks"
    wait_for(lambda: any(session.url in n for n in _notes(platform, number)), message="link note")
    wait_for(lambda: _link_emails(number), message="link email")
    (email,) = _link_emails(number)
    assert session.url in email.body and "42.50 USD" in email.body
    assert Order.objects.get(order_number=number).state == OrderState.PAYMENT_PENDING

    assert _pay_page(sandbox, session.id, "pm_card_visa").status_code == 200
    flow_done(number, "payment-succeeded")
    _duplicate_delivered(sandbox, number)
    assert Job.objects.filter(reference=number, flow__key="payment-succeeded").count() == 1
    assert (
        Job.objects.filter(reference=number, flow__key="order-created-collect-payment").count() == 1
    )
    order = Order.objects.get(order_number=number)
    assert order.state == OrderState.PAID
    payment = order.payments.get()  # the page's row took its PaymentIntent: no second row
    intent = client.v1.checkout.sessions.retrieve(session.id).payment_intent
    assert (payment.payment_intent_id, payment.checkout_session_id) == (intent, session.id)
    assert payment.charge_id.startswith(("ch_", "py_"))
    znode_order = platform.shop.order(number)
    assert znode_order["PaymentStatus"] == "Captured"
    assert len(payment_rows(znode_order, payment.charge_id)) == 1
    assert len(erp_entries(sandbox, f"sale:{payment.charge_id}")) == 1
    assert len(_link_emails(number)) == 1  # re-runs and echoes sent nothing twice


def test_a_decline_on_the_hosted_page_can_be_paid_again(platform, sandbox):
    placed = platform.shop.place_order(total="15.00", payment_setting_id=LINK_PAYMENT_SETTING_ID)
    number = placed["OrderNumber"]
    page = _page(number)
    assert _pay_page(sandbox, page.checkout_session_id, "pm_card_chargeDeclined").status_code == 402
    flow_done(number, "payment-failed")
    assert Order.objects.get(order_number=number).state == OrderState.PAYMENT_FAILED
    failed = wait_for(
        lambda: [m for m in mail.outbox if "did not go through" in m.subject],
        message="decline email",
    )
    url = stripe_client(sandbox).v1.checkout.sessions.retrieve(page.checkout_session_id).url
    assert url and url in failed[0].body  # pay again on the same, still open, page
    assert _pay_page(sandbox, page.checkout_session_id, "pm_card_visa").status_code == 200
    flow_done(number, "payment-succeeded")
    assert Order.objects.get(order_number=number).state == OrderState.PAID
    assert platform.shop.order(number)["PaymentStatus"] == "Captured"


def test_a_new_total_replaces_the_page_and_a_cancel_closes_it(platform, sandbox):
    placed = platform.shop.place_order(total="20.00", payment_setting_id=LINK_PAYMENT_SETTING_ID)
    number = placed["OrderNumber"]
    first = _page(number)
    wait_for(lambda: _link_emails(number), message="first link")
    client = stripe_client(sandbox)
    platform.shop._post(f"/orders/{number}/update_total", {"total": "25.00"})
    second = _page(number, after=first.id)
    assert client.v1.checkout.sessions.retrieve(first.checkout_session_id).status == "expired"
    session = client.v1.checkout.sessions.retrieve(second.checkout_session_id)
    assert (session.status, session.amount_total) == ("open", 2500)
    wait_for(lambda: len(_link_emails(number)) == 2, message="a link for the new total")
    assert session.url in _link_emails(number)[1].body
    assert Order.objects.get(order_number=number).amount_minor == 2500
    # The old page cannot be paid any more.
    assert _pay_page(sandbox, first.checkout_session_id, "pm_card_visa").status_code == 400

    platform.shop.cancel(number)
    wait_for(
        lambda: Order.objects.filter(order_number=number, state=OrderState.CANCELED).exists(),
        message="canceled",
    )
    assert client.v1.checkout.sessions.retrieve(second.checkout_session_id).status == "expired"
    assert set(
        Payment.objects.filter(order__order_number=number).values_list("status", flat=True)
    ) == {"canceled"}
    flow_done(number, "payment-page-expired")
    assert not any("expired unpaid" in n for n in _notes(platform, number))  # we closed them


def test_an_unpaid_page_that_expires_is_noted_for_an_operator(platform, sandbox):
    platform.settings = {**platform.settings, "notify_customer": False}
    platform.save(update_fields=["settings"])
    placed = platform.shop.place_order(total="9.00", payment_setting_id=LINK_PAYMENT_SETTING_ID)
    number = placed["OrderNumber"]
    page = _page(number)
    wait_for(lambda: _notes(platform, number), message="link note")
    assert _link_emails(number) == []  # notify_customer=false: the note only
    requests.post(
        f"{sandbox.system_url('stripe')}/_test/advance_time", json={"seconds": 86400}, timeout=10
    )
    flow_done(number, "payment-page-expired")
    page.refresh_from_db()
    assert page.status == "canceled"
    assert any(f"{page.checkout_session_id} expired unpaid" in n for n in _notes(platform, number))
    assert Order.objects.get(order_number=number).state == OrderState.PAYMENT_PENDING


def _page_order(platform, total: str):
    placed = platform.shop.place_order(total=total, payment_setting_id=LINK_PAYMENT_SETTING_ID)
    number = placed["OrderNumber"]
    page = _page(number)
    wait_for(lambda: Payment.objects.get(pk=page.pk).link_sent_at, message="link sent")
    return number, page


def _sync_job(number: str, status: str) -> Job:
    return wait_for(
        lambda: Job.objects.filter(
            reference=number, flow__key="order-updated-sync-payment", status=status
        ).first(),
        message=f"order-updated job {status} for {number}",
    )


def test_a_declined_page_is_closed_by_a_cancel(platform, sandbox):
    """Checkout owns its PaymentIntent while the page is open: a cancel after a decline
    expires the page (it must not be payable for a canceled order)."""
    number, page = _page_order(platform, "15.00")
    assert _pay_page(sandbox, page.checkout_session_id, "pm_card_chargeDeclined").status_code == 402
    flow_done(number, "payment-failed")
    platform.shop.cancel(number)
    wait_for(
        lambda: Order.objects.filter(order_number=number, state=OrderState.CANCELED).exists(),
        message="canceled",
    )
    client = stripe_client(sandbox)
    assert client.v1.checkout.sessions.retrieve(page.checkout_session_id).status == "expired"
    assert _pay_page(sandbox, page.checkout_session_id, "pm_card_visa").status_code == 400
    assert not Job.objects.filter(reference=number, status=JobStatus.QUARANTINED).exists()


def test_a_declined_page_gets_a_new_page_for_a_new_total(platform, sandbox):
    """After a decline the page's PaymentIntent exists, but the page shows its own
    total: a new total is a new page, never a re-amounted PaymentIntent behind it. A
    late decline of the closed page changes nothing."""
    number, first = _page_order(platform, "20.00")
    declined = _pay_page(sandbox, first.checkout_session_id, "pm_card_chargeDeclined")
    assert declined.status_code == 402
    failed = flow_done(number, "payment-failed")
    platform.shop._post(f"/orders/{number}/update_total", {"total": "25.00"})
    second = _page(number, after=first.id)
    client = stripe_client(sandbox)
    assert client.v1.checkout.sessions.retrieve(first.checkout_session_id).status == "expired"
    assert client.v1.checkout.sessions.retrieve(second.checkout_session_id).amount_total == 2500
    wait_for(lambda: len(_link_emails(number)) == 2, message="a link for the new total")
    emails = len(mail.outbox)

    from integrations.services.inbox import event_replay

    event_replay(event=failed.event)  # the old page's decline, delivered again
    wait_for(
        lambda: (
            Job.objects.filter(
                reference=number, flow__key="payment-failed", status=JobStatus.SUCCEEDED
            ).count()
            == 2
        ),
        message="the replayed decline handled",
    )
    replayed = Job.objects.filter(reference=number, flow__key="payment-failed").latest("id")
    assert replayed.step_outputs["failure"] == {"ignored": "the payment page was closed"}
    assert len(mail.outbox) == emails
    assert _pay_page(sandbox, second.checkout_session_id, "pm_card_visa").status_code == 200
    flow_done(number, "payment-succeeded")
    order = Order.objects.get(order_number=number)
    assert (order.state, order.amount_minor) == (OrderState.PAID, 2500)


def _canceled_payments(platform, policy: str) -> None:
    platform.settings = {**platform.settings, "canceled_order_payments": policy}
    platform.save(update_fields=["settings"])


def _refunded_in_full(platform, sandbox, number: str, amount: str) -> Payment:
    """The order's payment was given back in full, once, and Znode was told."""
    payment = Payment.objects.get(order__order_number=number, status="succeeded")
    charge = stripe_client(sandbox).v1.charges.retrieve(payment.charge_id)
    assert charge.amount_refunded == charge.amount == payment.amount_refunded_minor
    assert payment.refund_id.startswith("re_")
    notes = [n for n in _notes(platform, number) if "was refunded in full" in n]
    assert len(notes) == 1 and f"payment of {amount} USD" in notes[0]
    return payment


@pytest.mark.parametrize("policy", ["refund", "hold"])
def test_a_cancel_after_the_page_was_paid_refunds_or_holds(platform, sandbox, policy):
    """The customer paid and it was booked; then the store cancels. Rule
    (``canceled_order_payments``): refund, the default, gives the money back in full,
    notes it, sets Znode's payment status to Refunded and books the ERP credit memo;
    hold keeps it with a note and a quarantined job for a person."""
    _canceled_payments(platform, policy)
    number, page = _page_order(platform, "30.00")
    assert _pay_page(sandbox, page.checkout_session_id, "pm_card_visa").status_code == 200
    flow_done(number, "payment-succeeded")
    platform.shop.cancel(number)
    if policy == "hold":
        job = _sync_job(number, JobStatus.QUARANTINED)
        assert "the order was canceled in Znode, but the customer already paid 30.00 USD" in (
            job.last_error
        )
        assert any("refund or adjust it in Stripe" in n for n in _notes(platform, number))
        assert Order.objects.get(order_number=number).state == OrderState.PAID
        return
    _sync_job(number, JobStatus.SUCCEEDED)
    payment = _refunded_in_full(platform, sandbox, number, "30.00")
    assert platform.shop.order(number)["PaymentStatus"] == "Refunded"
    memo = requests.get(
        f"{sandbox.system_url('erp')}/api/credit-memos",
        params={"external_reference": f"refund:{payment.refund_id}"},
        headers={"Authorization": "Bearer sandbox-erp-token"},
        timeout=10,
    ).json()["results"]
    assert len(memo) == 1 and memo[0]["amount"] == "30.00"


def test_a_page_paid_while_the_total_changes_is_not_booked_for_the_old_total(platform, sandbox):
    """Stripe's webhooks are held while the customer pays the old page and the store
    raises the total: the change is refused with a note, and the late payment is not
    marked paid for a total the order no longer has."""
    number, page = _page_order(platform, "20.00")
    sandbox.set_faults("stripe", webhooks_enabled=False)
    assert _pay_page(sandbox, page.checkout_session_id, "pm_card_visa").status_code == 200
    platform.shop._post(f"/orders/{number}/update_total", {"total": "25.00"})
    job = _sync_job(number, JobStatus.QUARANTINED)
    assert "the order total changed, but the customer already paid 20.00 USD" in job.last_error
    assert Order.objects.get(order_number=number).amount_minor == 2500
    paid = _late_success_held(platform, sandbox, number, page)
    assert "the order total is now 25.00 USD, but the customer already paid 20.00 USD" in (
        paid.last_error
    )
    assert Order.objects.get(order_number=number).state != OrderState.PAID
    assert platform.shop.order(number)["PaymentStatus"] != "Captured"


def _late_success_held(platform, sandbox, number: str, page) -> Job:
    """Stripe's webhooks back on: the page's held payment_intent.succeeded arrives and
    its job is quarantined."""
    sandbox.set_faults("stripe", webhooks_enabled=True)
    intent = stripe_client(sandbox).v1.checkout.sessions.retrieve(page.checkout_session_id)
    _deliver_stripe_event(platform, sandbox, "payment_intent.succeeded", intent.payment_intent)
    return wait_for(
        lambda: Job.objects.filter(
            reference=number, flow__key="payment-succeeded", status=JobStatus.QUARANTINED
        ).first(),
        message="the late payment held",
    )


def _no_booking(platform, sandbox, number: str) -> None:
    assert platform.shop.order(number)["PaymentStatus"] != "Captured"
    assert not any(number in entry["memo"] for entry in erp_entries(sandbox))


@pytest.mark.parametrize("policy", ["refund", "hold"])
def test_a_payment_that_lands_after_the_cancel_is_refunded_or_held(platform, sandbox, policy):
    """Stripe's webhooks are held: the customer pays, the store cancels, then the
    payment's event arrives. Our order follows Znode to canceled first, so the late
    success is never booked in Znode or the ERP: refunded once (the cancel and the
    late event share the order's refund), or held for an operator."""
    _canceled_payments(platform, policy)
    number, page = _page_order(platform, "31.00")
    sandbox.set_faults("stripe", webhooks_enabled=False)
    assert _pay_page(sandbox, page.checkout_session_id, "pm_card_visa").status_code == 200
    platform.shop.cancel(number)
    if policy == "refund":
        _sync_job(number, JobStatus.SUCCEEDED)
        assert Order.objects.get(order_number=number).state == OrderState.CANCELED
        sandbox.set_faults("stripe", webhooks_enabled=True)
        intent = stripe_client(sandbox).v1.checkout.sessions.retrieve(page.checkout_session_id)
        _deliver_stripe_event(platform, sandbox, "payment_intent.succeeded", intent.payment_intent)
        flow_done(number, "payment-succeeded")
        _refunded_in_full(platform, sandbox, number, "31.00")
        _no_booking(platform, sandbox, number)
        return
    refused = _sync_job(number, JobStatus.QUARANTINED)
    assert "the order was canceled in Znode, but the customer already paid 31.00 USD" in (
        refused.last_error
    )
    assert Order.objects.get(order_number=number).state == OrderState.CANCELED
    held = _late_success_held(platform, sandbox, number, page)
    assert "the order was canceled in Znode" in held.last_error
    _no_booking(platform, sandbox, number)
    notes = [n for n in _notes(platform, number) if "already paid 31.00 USD" in n]
    assert len(notes) == 1  # one note for both refusals


@pytest.mark.parametrize("policy", ["refund", "hold"])
def test_a_cancel_while_the_payment_settles_refunds_or_holds_it(platform, sandbox, policy):
    """A payment still processing cannot be canceled in Stripe: the order is canceled
    here with a note, and when the money lands it is never booked: refunded in full,
    or held for a person."""
    _canceled_payments(platform, policy)
    number, page = _page_order(platform, "17.00")
    card = "pm_card_sandboxProcessingSucceeds"
    assert _pay_page(sandbox, page.checkout_session_id, card).status_code == 200
    platform.shop.cancel(number)
    _sync_job(number, JobStatus.SUCCEEDED)
    assert Order.objects.get(order_number=number).state == OrderState.CANCELED
    assert any("is still settling" in n for n in _notes(platform, number))
    requests.post(f"{sandbox.system_url('stripe')}/_test/settle", timeout=10)
    if policy == "refund":
        flow_done(number, "payment-succeeded")
        _refunded_in_full(platform, sandbox, number, "17.00")
        _no_booking(platform, sandbox, number)
        return
    held = wait_for(
        lambda: Job.objects.filter(
            reference=number, flow__key="payment-succeeded", status=JobStatus.QUARANTINED
        ).first(),
        message="the settled payment held",
    )
    assert "the order was canceled in Znode" in held.last_error
    _no_booking(platform, sandbox, number)


def test_a_total_changed_after_payment_is_noted_not_failed(platform, sandbox):
    number, page = _page_order(platform, "20.00")
    assert _pay_page(sandbox, page.checkout_session_id, "pm_card_visa").status_code == 200
    flow_done(number, "payment-succeeded")
    platform.shop._post(f"/orders/{number}/update_total", {"total": "25.00"})
    job = _sync_job(number, JobStatus.SUCCEEDED)
    assert job.step_outputs["sync"]["action"] == "noted"
    assert any(
        "the total changed to 25.00 USD after the customer paid 20.00 USD" in n
        for n in _notes(platform, number)
    )
    assert Order.objects.get(order_number=number).amount_minor == 2000  # what was paid


def test_a_total_changed_while_the_first_page_is_made_gets_one_page(platform, sandbox):
    """The store changes the total before the first page exists: whichever job decides
    first, exactly one live page goes out, for the new total."""
    saved_card_customer(sandbox, user_id=11, email="alice@example.com")
    sandbox.set_faults("stripe", latency_ms=300)  # the first page takes its time
    placed = platform.shop.place_order(
        user_id=11, total="20.00", payment_setting_id=LINK_PAYMENT_SETTING_ID
    )
    number = placed["OrderNumber"]
    platform.shop._post(f"/orders/{number}/update_total", {"total": "23.00"})
    wait_for(lambda: _pages_open(sandbox, number) and _link_emails(number), message="a link")
    sandbox.set_faults("stripe", latency_ms=0)
    for flow in ("order-created-collect-payment", "order-updated-sync-payment"):
        flow_done(number, flow)
    (live,) = _pages_open(sandbox, number)
    assert stripe_client(sandbox).v1.checkout.sessions.retrieve(live).amount_total == 2300
    emails = _link_emails(number)
    assert len(emails) == 1 and "23.00 USD" in emails[0].body


def _deliver_stripe_event(platform, sandbox, event_type: str, object_id: str) -> None:
    """Re-send Stripe's stored event for ``object_id`` to the platform, signed."""
    from sandbox.stripe.events import signature_header
    from tests.e2e.conftest import WHSEC

    event = next(
        e
        for e in stripe_client(sandbox).v1.events.list(params={"type": event_type}).data
        if e.data.object.id == object_id
    )
    body = json.dumps(event.to_dict()).encode()
    response = requests.post(
        platform.url + platform.stripe.webhook_path,
        data=body,
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": signature_header(body, WHSEC),
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text


def test_an_expired_page_and_a_new_total_send_a_page_for_the_new_total(platform, sandbox):
    number, first = _page_order(platform, "9.00")
    requests.post(
        f"{sandbox.system_url('stripe')}/_test/advance_time", json={"seconds": 86400}, timeout=10
    )
    flow_done(number, "payment-page-expired")
    platform.shop._post(f"/orders/{number}/update_total", {"total": "12.00"})
    second = _page(number, after=first.id)
    wait_for(lambda: Payment.objects.get(pk=second.pk).link_sent_at, message="new link sent")
    session = stripe_client(sandbox).v1.checkout.sessions.retrieve(second.checkout_session_id)
    assert (session.status, session.amount_total) == ("open", 1200)
    assert session.url in _link_emails(number)[-1].body
    assert Order.objects.get(order_number=number).amount_minor == 1200


def test_a_new_page_that_fails_to_go_out_is_sent_on_the_retry(platform, sandbox, monkeypatch):
    """The page for a new total is made, but its email fails (SMTP down): the retry
    sends that page, it does not decide that nothing changed."""
    from django.core.mail.backends.locmem import EmailBackend

    number, first = _page_order(platform, "20.00")
    real_send = EmailBackend.send_messages
    monkeypatch.setattr(
        EmailBackend,
        "send_messages",
        lambda self, messages: (_ for _ in ()).throw(OSError("SMTP down")),
    )
    platform.shop._post(f"/orders/{number}/update_total", {"total": "26.00"})
    _sync_job(number, JobStatus.RETRYING)
    second = _page(number, after=first.id)
    assert second.link_sent_at is None
    monkeypatch.setattr(EmailBackend, "send_messages", real_send)
    _run_due_jobs()
    _sync_job(number, JobStatus.SUCCEEDED)
    session = stripe_client(sandbox).v1.checkout.sessions.retrieve(second.checkout_session_id)
    emails = _link_emails(number)
    assert len(emails) == 2 and session.url in emails[1].body and "26.00 USD" in emails[1].body
    assert _pages_open(sandbox, number) == [second.checkout_session_id]


def _pages_open(sandbox, number: str) -> list[str]:
    sessions = stripe_client(sandbox).v1.checkout.sessions.list(params={"status": "open"}).data
    return [s.id for s in sessions if s.client_reference_id == number]


def test_a_lost_page_answer_and_a_new_total_do_not_stick(platform, sandbox):
    """Stripe makes the page but the answer is lost, and the total changes before the
    retry: the retry's key digests its parameters, so it gets a page for the new total
    instead of an idempotency error forever. The lost page was never sent to anyone."""
    # A returning customer: found by a read, so the page is the first write.
    saved_card_customer(sandbox, user_id=11, email="alice@example.com")
    sandbox.set_faults("stripe", error_after_write_rate=1.0)
    placed = platform.shop.place_order(
        user_id=11, total="20.00", payment_setting_id=LINK_PAYMENT_SETTING_ID
    )
    number = placed["OrderNumber"]
    lost = wait_for(
        lambda: Job.objects.filter(
            reference=number, flow__key="order-created-collect-payment", status=JobStatus.RETRYING
        ).first(),
        message="the page's answer lost",
    )
    assert "customer" in lost.step_outputs and "payment" not in lost.step_outputs
    sandbox.set_faults("stripe", error_after_write_rate=0.0)
    platform.shop._post(f"/orders/{number}/update_total", {"total": "22.00"})
    wait_for(
        lambda: Order.objects.filter(order_number=number, amount_minor=2200).exists(),
        message="the new total stored",
    )
    _run_due_jobs()
    flow_done(number, "order-created-collect-payment")
    page = Payment.objects.get(order__order_number=number)
    session = stripe_client(sandbox).v1.checkout.sessions.retrieve(page.checkout_session_id)
    assert session.amount_total == 2200
    (email,) = _link_emails(number)
    assert session.url in email.body
    # The lost page (20.00) exists only in Stripe, unsent, and expires on its own.
    assert len(_pages_open(sandbox, number)) == 2


def _run_due_jobs():
    """Time travel for the retry schedule, then the sweeper (the inline queue runs
    what it enqueues)."""
    from django.utils import timezone

    from integrations.services.sweeper import sweep

    Job.objects.filter(status=JobStatus.RETRYING).update(next_attempt_at=timezone.now())
    return sweep()


def test_stripe_outage_during_payment_intent_creation(platform, sandbox):
    customer = saved_card_customer(sandbox, user_id=11, email="alice@example.com")
    sandbox.set_faults("stripe", error_after_write_rate=1.0)
    placed = platform.shop.place_order(total="33.00", payment_setting_id=SAVED_PAYMENT_SETTING_ID)
    number = placed["OrderNumber"]
    job = wait_for(
        lambda: Job.objects.filter(
            reference=number, flow__key="order-created-collect-payment", status=JobStatus.RETRYING
        ).first(),
        message="creation waiting to retry",
    )
    assert "502" in job.last_error or "Stripe" in job.last_error
    sandbox.set_faults("stripe", error_after_write_rate=0.0)
    _run_due_jobs()
    wait_for(
        lambda: Order.objects.filter(order_number=number, state=OrderState.PAID).exists(),
        message="paid after the outage",
    )
    intents = stripe_client(sandbox).v1.payment_intents.list(params={"customer": customer}).data
    mine = [pi for pi in intents if pi.metadata.to_dict().get("znode_order_number") == number]
    assert len(mine) == 1  # the retries replayed one idempotent request


def test_znode_outage_during_the_status_update(platform, sandbox):
    saved_card_customer(sandbox, user_id=11, email="alice@example.com")
    sandbox.set_faults("znode", error_rate=1.0)
    # The order is placed through the test route (no faults there) and its webhook
    # is delivered; every API call the flows make fails until the store is back.
    placed = platform.shop.place_order(total="12.00", payment_setting_id=SAVED_PAYMENT_SETTING_ID)
    number = placed["OrderNumber"]
    wait_for(
        lambda: Job.objects.filter(reference=number, status=JobStatus.RETRYING).exists(),
        message="a job waiting for Znode",
    )
    sandbox.set_faults("znode", error_rate=0.0)
    for _ in range(5):
        _run_due_jobs()
        if Job.objects.filter(
            reference=number, flow__key="payment-succeeded", status=JobStatus.SUCCEEDED
        ).exists():
            break
    flow_done(number, "payment-succeeded")
    znode = platform.shop.order(number)
    assert znode["PaymentStatus"] == "Captured"
    charge = Order.objects.get(order_number=number).payments.get().charge_id
    assert len(payment_rows(znode, charge)) == 1


def test_stock_store_under_after_commit_faults_on_every_znode_write(platform, sandbox):
    """Znode writes commit and then lose their answer (40% of them). An operator
    maps "paid" to an order state as well, so every kind of write happens (payment
    record, transaction id, payment status, a state write that clears the tracking
    number in Znode), and still: one payment record, one journal, the tracking
    number kept (§3.1, §12)."""
    from integrations.models import LookupTable

    LookupTable.objects.filter(key="znode-order-states").update(
        entries={"paid": "IN REVIEW", "authorized": "", "payment_failed": ""}
    )
    platform.settings = {
        **platform.settings,
        "znode_states_before_payment": ["SUBMITTED", "SHIPPED"],
    }
    platform.save()
    placed = platform.shop.place_order(total="55.00", card="pm_card_visa", payment_setting_id=7)
    number = placed["OrderNumber"]
    wait_for(
        lambda: Order.objects.filter(order_number=number, state=OrderState.AUTHORIZED).exists(),
        message="adopted",
    )
    from integrations.services.jobs import job_requeue

    sandbox.set_faults("znode", error_after_write_rate=0.4)
    platform.shop.ship(number, tracking_number="1ZFAULTS")

    def settled():
        # Every job of the order done (echoes of our writes make more of them), and
        # the sale booked.
        busy = (JobStatus.PENDING, JobStatus.RUNNING, JobStatus.RETRYING, JobStatus.QUARANTINED)
        return (
            not Job.objects.filter(reference=number, status__in=busy).exists()
            and Order.objects.filter(order_number=number, state=OrderState.PAID).exists()
            and bool(erp_entries(sandbox, f"sale:{placed['TransactionId']}"))
        )

    wait_for(
        lambda: (
            Job.objects.filter(reference=number, flow__key="order-updated-sync-payment")
            .exclude(status__in=[JobStatus.PENDING, JobStatus.RUNNING])
            .exists()
        ),
        message="the shipment's first attempt",
    )

    def operate(rounds: int) -> None:
        """An operator retries what was quarantined; due retries run."""
        for _ in range(rounds):
            if settled():
                return
            for job in Job.objects.filter(reference=number, status=JobStatus.QUARANTINED):
                job_requeue(job=job, note="the test's operator retries")
            _run_due_jobs()

    operate(80)
    sandbox.set_faults("znode", error_after_write_rate=0.0)
    operate(5)
    flow_done(number, "order-updated-sync-payment")
    znode = platform.shop.order(number)
    charge_id = placed["TransactionId"]
    assert len(payment_rows(znode, charge_id)) == 1
    assert len(erp_entries(sandbox, f"sale:{charge_id}")) == 1
    assert znode["TrackingNumber"] == "1ZFAULTS"
    assert znode["PaymentStatus"] == "Captured"
    assert znode["TransactionId"] == charge_id


def test_duplicate_and_reordered_stripe_webhooks_change_nothing_twice(platform, sandbox):

    saved_card_customer(sandbox, user_id=11, email="alice@example.com")
    sandbox.set_faults("stripe", webhook_duplicate_rate=1.0, webhook_reorder_window=2)
    placed = platform.shop.place_order(total="18.00", payment_setting_id=SAVED_PAYMENT_SETTING_ID)
    number = placed["OrderNumber"]
    flow_done(number, "payment-succeeded")
    _duplicate_delivered(sandbox, number)
    assert Job.objects.filter(reference=number, flow__key="payment-succeeded").count() == 1
    charge = Order.objects.get(order_number=number).payments.get().charge_id
    assert len(erp_entries(sandbox, f"sale:{charge}")) == 1
    assert len(payment_rows(platform.shop.order(number), charge)) == 1


def test_happy_path_against_localstripe(live_server, sandbox, localstripe, transactional_db):
    """The same flows, with localstripe (an independent Stripe emulator) as Stripe:
    the customer completes the PaymentIntent (as Stripe.js would)."""
    import stripe

    from integrations.models import Integration
    from integrations.services.connections import connection_create
    from integrations.services.flows import flows_install_defaults, lookups_install_defaults
    from tests.e2e.conftest import E2E_SETTINGS, ZNODE_AUTH
    from tests.sandbox.localstripe_support import API_KEY
    from tests.support.shop import Shop, store_connection

    localstripe.reset()
    znode = store_connection(sandbox, name="store-ls", webhook_secrets=[ZNODE_AUTH])
    stripe_conn = connection_create(
        name="localstripe",
        kind="stripe",
        base_url=localstripe.url,
        credentials={"api_key": API_KEY},
        webhook_secrets=["whsec_localstripe_e2e"],
        rate_limit_per_second=500,
    )
    erp = connection_create(
        name="erp-ls",
        kind="erp",
        base_url=sandbox.system_url("erp"),
        credentials={"token": "sandbox-erp-token"},
        rate_limit_per_second=500,
    )
    Integration.objects.create(
        name="with-localstripe",
        znode=znode,
        stripe=stripe_conn,
        erp=erp,
        # localstripe refuses PaymentIntent descriptions and has no Checkout Sessions
        # (reference/localstripe.md §2.4): the storefront completes the PaymentIntent.
        settings={
            **E2E_SETTINGS,
            "stripe_description": False,
            "customer_payment_page": "storefront",
        },
    )
    lookups_install_defaults()
    flows_install_defaults()
    sandbox.control(
        "POST",
        "webhooks/znode",
        {"url": live_server.url + znode.webhook_path, "secret": ZNODE_AUTH},
    )
    localstripe.add_webhook(
        "platform", live_server.url + stripe_conn.webhook_path, "whsec_localstripe_e2e"
    )
    shop = Shop(sandbox.system_url("znode"))
    placed = shop.place_order(total="21.00", payment_setting_id=LINK_PAYMENT_SETTING_ID)
    number = placed["OrderNumber"]
    note = wait_for(
        lambda: next(
            (
                n["Notes"]
                for n in shop.order(number)["OrderNotes"] or []
                if "client_secret=" in n["Notes"]
            ),
            None,
        ),
        timeout=30,
        message="the PaymentIntent handed to the storefront",
    )
    intent_id = re.search(r"payment (pi_\w+)", note).group(1)
    client = stripe.StripeClient(API_KEY, base_addresses={"api": localstripe.url})
    client.v1.payment_intents.update(intent_id, params={"payment_method": "pm_card_visa"})
    client.v1.payment_intents.confirm(intent_id)  # localstripe: no params on confirm
    wait_for(
        lambda: Job.objects.filter(
            reference=number, flow__key="payment-succeeded", status=JobStatus.SUCCEEDED
        ).exists(),
        timeout=30,
        message="payment flow done with localstripe",
    )
    order = Order.objects.get(order_number=number)
    assert order.state == OrderState.PAID
    charge = order.payments.get().charge_id
    assert charge.startswith("ch_")
    znode_order = shop.order(number)
    assert znode_order["PaymentStatus"] == "Captured"
    assert len(payment_rows(znode_order, charge)) == 1
    assert len(erp_entries(sandbox, f"sale:{charge}")) == 1


def _quarantined(number: str) -> Job:
    return wait_for(
        lambda: Job.objects.filter(
            reference=number,
            flow__key="order-created-collect-payment",
            status=JobStatus.QUARANTINED,
        ).first(),
        message=f"{number} quarantined",
    )


def test_a_released_authorization_is_not_adopted(platform, sandbox):
    """A released (refunded) authorization keeps status "succeeded" in Stripe; it
    must not be adopted as money that can be captured."""
    client = stripe_client(sandbox)
    charge = client.v1.charges.create(
        params={"amount": 3000, "currency": "usd", "source": "tok_visa", "capture": False}
    )
    client.v1.refunds.create(params={"charge": charge.id})
    placed = platform.shop.place_order(
        total="30.00", payment_setting_id=7, transaction_id=charge.id
    )
    job = _quarantined(placed["OrderNumber"])
    assert "is refunded or released" in job.last_error
    assert not Order.objects.get(order_number=placed["OrderNumber"]).payments.exists()


def test_one_charge_never_pays_two_orders(platform, sandbox):
    first = platform.shop.place_order(total="25.00", card="pm_card_visa", payment_setting_id=7)
    wait_for(
        lambda: Order.objects.filter(
            order_number=first["OrderNumber"], state=OrderState.AUTHORIZED
        ).exists(),
        message="first adopted",
    )
    copy = platform.shop.place_order(
        total="25.00", payment_setting_id=7, transaction_id=first["TransactionId"]
    )
    job = _quarantined(copy["OrderNumber"])
    assert "already pays another order" in job.last_error
    assert not Order.objects.get(order_number=copy["OrderNumber"]).payments.exists()
