"""Order-to-cash end to end, through real HTTP against the sandbox."""

import pytest
import requests
from django.core import mail

from integrations.choices import JobStatus
from integrations.models import Job
from payments.choices import OrderState
from payments.models import Order
from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def erp_entries(sandbox, reference):
    response = requests.get(
        f"{sandbox.system_url('erp')}/api/journal-entries",
        params={"external_reference": reference},
        headers={"Authorization": "Bearer sandbox-erp-token"},
        timeout=10,
    )
    return response.json()["results"]


def test_paid_order_reaches_znode_stripe_and_the_erp(platform, sandbox):
    placed = platform.shop.place_order(total="42.50", payment_token="pm_card_visa")
    number = placed["OrderNumber"]
    order = wait_for(
        lambda: Order.objects.filter(order_number=number, state=OrderState.PAID).first(),
        message="order paid",
    )
    wait_for(
        lambda: Job.objects.filter(
            reference=number, flow__key="payment-succeeded", status=JobStatus.SUCCEEDED
        ).exists(),
        message="payment flow done",
    )
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


def test_declined_card_marks_the_order_failed_and_tells_the_customer(platform, sandbox):
    placed = platform.shop.place_order(
        total="15.00", payment_token="pm_card_chargeDeclinedInsufficientFunds"
    )
    number = placed["OrderNumber"]
    wait_for(
        lambda: Job.objects.filter(
            reference=number, flow__key="payment-failed", status=JobStatus.SUCCEEDED
        ).exists(),
        message="failure flow done",
    )
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
