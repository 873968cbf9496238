"""Order-to-cash end to end, through real HTTP against the sandbox."""

import pytest
import requests
from django.core import mail

from integrations.choices import JobStatus
from integrations.models import Job
from payments.choices import OrderState
from payments.models import Order
from tests.e2e.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("quiet_sandbox")]


def flow_done(number: str, flow: str, timeout: float = 20.0) -> None:
    wait_for(
        lambda: Job.objects.filter(
            reference=number, flow__key=flow, status=JobStatus.SUCCEEDED
        ).exists(),
        timeout=timeout,
        message=f"{flow} done for {number}",
    )


def erp_entries(sandbox, reference):
    response = requests.get(
        f"{sandbox.system_url('erp')}/api/journal-entries",
        params={"external_reference": reference},
        headers={"Authorization": "Bearer sandbox-erp-token"},
        timeout=10,
    )
    return response.json()["results"]


def test_paid_order_reaches_znode_stripe_and_the_erp(platform, sandbox, admin_client):
    placed = platform.shop.place_order(total="42.50", payment_token="pm_card_visa")
    number = placed["OrderNumber"]
    order = wait_for(
        lambda: Order.objects.filter(order_number=number, state=OrderState.PAID).first(),
        message="order paid",
    )
    flow_done(number, "payment-succeeded")
    payment = order.payments.get()
    assert payment.status == "succeeded" and payment.amount_minor == 4250
    znode = platform.shop.order(number)
    assert znode["OrderState"] == "APPROVED"
    assert znode["PaymentStatus"] == "Captured"
    history = [
        p for p in znode["PaymentHistoryList"] if p.get("TransactionReference") == payment.charge_id
    ]
    assert len(history) == 1
    entries = erp_entries(sandbox, f"sale:{payment.charge_id}")
    assert len(entries) == 1
    assert [line["debit"] for line in entries[0]["lines"]] == ["42.50", "0"]

    # An operator opens the order and follows it across the three systems, in order.
    page = admin_client.get(f"/admin/payments/order/{order.pk}/change/").content.decode()
    milestones = [
        "order.created (processed)",
        "order-created-collect-payment: succeeded",
        "POST payment_intent.create",
        "payment_intent.succeeded (processed)",
        "payment-succeeded: succeeded",
        "POST erp.journal_entry.post",
    ]
    positions = [page.find(m) for m in milestones]
    assert all(p > 0 for p in positions), dict(zip(milestones, positions, strict=True))
    assert positions == sorted(positions)


def test_declined_card_marks_the_order_failed_and_tells_the_customer(platform, sandbox):
    placed = platform.shop.place_order(
        total="15.00", payment_token="pm_card_chargeDeclinedInsufficientFunds"
    )
    number = placed["OrderNumber"]
    flow_done(number, "payment-failed")
    order = Order.objects.get(order_number=number)
    assert order.state == OrderState.PAYMENT_FAILED
    assert order.failure_reason == "insufficient_funds"
    znode = platform.shop.order(number)
    assert znode["OrderState"] == "FAILED"
    assert znode["PaymentStatus"] == "Declined"
    notes = [n["Notes"] for n in znode["OrderNotes"] or []]
    assert any("insufficient_funds" in n for n in notes)
    assert len(mail.outbox) == 1
    assert "insufficient funds" in mail.outbox[0].body
    all_entries = requests.get(
        f"{sandbox.system_url('erp')}/api/journal-entries",
        headers={"Authorization": "Bearer sandbox-erp-token"},
        timeout=10,
    ).json()["results"]
    assert not any(number in entry["memo"] for entry in all_entries)  # no sale booked


def test_manual_capture_authorizes_then_captures_when_shipped(platform, sandbox):
    placed = platform.shop.place_order(
        total="60.00", payment_token="pm_card_visa", payment_setting_id=8
    )
    number = placed["OrderNumber"]
    order = wait_for(
        lambda: Order.objects.filter(order_number=number, state=OrderState.AUTHORIZED).first(),
        message="authorized",
    )
    wait_for(
        lambda: platform.shop.order(number)["PaymentStatus"] == "Authorized",
        message="Znode shows Authorized",
    )
    assert order.payments.get().status == "requires_capture"
    platform.shop.ship(number, tracking_number="1ZSHIPPED")
    wait_for(
        lambda: Order.objects.filter(order_number=number, state=OrderState.PAID).exists(),
        message="captured and paid",
    )
    flow_done(number, "payment-succeeded")
    znode = platform.shop.order(number)
    assert znode["OrderState"] == "SHIPPED"  # a payment never moves a shipped order back
    assert znode["TrackingNumber"] == "1ZSHIPPED"
    assert znode["PaymentStatus"] == "Captured"
    charge = Order.objects.get(order_number=number).payments.get().charge_id
    assert len(erp_entries(sandbox, f"sale:{charge}")) == 1


def test_purchase_orders_are_not_charged(platform):
    placed = platform.shop.place_order(total="10.00", payment_setting_id=2)
    number = placed["OrderNumber"]
    job = wait_for(
        lambda: Job.objects.filter(
            reference=number, flow__key="order-created-collect-payment", status=JobStatus.SUCCEEDED
        ).first(),
        message="order flow done",
    )
    assert job.step_outputs["payment"]["status"] == "skipped"
    assert not Order.objects.get(order_number=number).payments.exists()


def test_changes_before_payment_update_or_cancel_the_payment_intent(platform, sandbox):
    import stripe

    platform.settings = {**platform.settings, "collection_mode": "customer"}
    platform.save()
    placed = platform.shop.place_order(total="20.00", payment_token="")
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
    client = stripe.StripeClient(
        "sk_test_e2e_platform_key", base_addresses={"api": sandbox.system_url("stripe")}
    )
    platform.shop._post(f"/orders/{number}/update_total", {"total": "25.00"})
    wait_for(
        lambda: client.v1.payment_intents.retrieve(intent_id).amount == 2500,
        message="amount updated in Stripe",
    )
    assert Order.objects.get(order_number=number).amount_minor == 2500
    platform.shop.cancel(number)
    wait_for(
        lambda: Order.objects.filter(order_number=number, state=OrderState.CANCELED).exists(),
        message="canceled",
    )
    assert client.v1.payment_intents.retrieve(intent_id).status == "canceled"


def _run_due_jobs():
    """Time travel for the retry schedule, then the sweeper (the inline queue runs
    what it enqueues)."""
    from django.utils import timezone

    from integrations.services.sweeper import sweep

    Job.objects.filter(status=JobStatus.RETRYING).update(next_attempt_at=timezone.now())
    return sweep()


def test_stripe_outage_during_payment_intent_creation(platform, sandbox):
    import stripe

    sandbox.set_faults("stripe", error_after_write_rate=1.0)
    placed = platform.shop.place_order(total="33.00", payment_token="pm_card_visa")
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
    customer = Order.objects.get(order_number=number)
    from customers.models import CustomerLink

    link = CustomerLink.objects.get(znode_user_id=customer.znode_user_id)
    client = stripe.StripeClient(
        "sk_test_e2e_platform_key", base_addresses={"api": sandbox.system_url("stripe")}
    )
    intents = client.v1.payment_intents.list(params={"customer": link.stripe_customer_id}).data
    ours = [pi for pi in intents if pi.metadata.to_dict().get("znode_order_number") == number]
    assert len(ours) == 1  # the retries replayed one idempotent request


def test_znode_outage_during_the_status_update(platform, sandbox):
    sandbox.set_faults("znode", error_rate=1.0)
    # The order is placed through the test route (no faults there) and its webhook
    # is delivered; every API call the flows make fails until the store is back.
    placed = platform.shop.place_order(total="12.00", payment_token="pm_card_visa")
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
    assert (znode["OrderState"], znode["PaymentStatus"]) == ("APPROVED", "Captured")
    charge = Order.objects.get(order_number=number).payments.get().charge_id
    refs = [p for p in znode["PaymentHistoryList"] if p.get("TransactionReference") == charge]
    assert len(refs) == 1


def test_duplicate_and_reordered_stripe_webhooks_change_nothing_twice(platform, sandbox):
    from integrations.models import InboundEvent

    sandbox.set_faults("stripe", webhook_duplicate_rate=1.0, webhook_reorder_window=2)
    placed = platform.shop.place_order(total="18.00", payment_token="pm_card_visa")
    number = placed["OrderNumber"]
    flow_done(number, "payment-succeeded")
    sandbox.control("POST", "webhooks/stripe/flush")
    wait_for(
        lambda: InboundEvent.objects.filter(
            event_type="payment_intent.succeeded", reference=number, deliveries=2
        ).exists(),
        message="the duplicate delivery",
    )
    assert Job.objects.filter(reference=number, flow__key="payment-succeeded").count() == 1
    charge = Order.objects.get(order_number=number).payments.get().charge_id
    assert len(erp_entries(sandbox, f"sale:{charge}")) == 1
    znode = platform.shop.order(number)
    assert (
        len([p for p in znode["PaymentHistoryList"] if p.get("TransactionReference") == charge])
        == 1
    )


def test_happy_path_against_localstripe(live_server, sandbox, localstripe, transactional_db):
    """The same flows, with localstripe (an independent Stripe emulator) as Stripe."""
    from integrations.models import Integration
    from integrations.services.connections import connection_create
    from integrations.services.flows import flows_install_defaults, lookups_install_defaults
    from tests.e2e.conftest import ZNODE_AUTH
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
        # localstripe refuses PaymentIntent descriptions (reference/localstripe.md §2.4)
        settings={"collection_mode": "charge", "stripe_description": False},
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
    placed = Shop(sandbox.system_url("znode")).place_order(
        total="21.00", payment_token="pm_card_visa"
    )
    number = placed["OrderNumber"]
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
    znode_order = Shop(sandbox.system_url("znode")).order(number)
    assert (znode_order["OrderState"], znode_order["PaymentStatus"]) == ("APPROVED", "Captured")
    assert len(erp_entries(sandbox, f"sale:{charge}")) == 1
