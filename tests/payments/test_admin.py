"""The payments admin shows money as money in the row's currency."""

import pytest
from django.urls import reverse

from payments.models import Dispute, Order, Payment, Refund, Return

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(integration):
    order = Order.objects.create(
        integration=integration,
        order_number="ORD-171",
        znode_order_id=171,
        total="171.350000",
        amount_minor=171_35,
        currency="usd",
    )
    payment = Payment.objects.create(
        order=order,
        payment_intent_id="pi_171",
        amount_minor=171_35,
        amount_received_minor=171_35,
        amount_refunded_minor=20_00,
        currency="usd",
        status="succeeded",
    )
    Refund.objects.create(
        order=order,
        payment=payment,
        origin="stripe",
        status="succeeded",
        amount_minor=20_00,
        currency="usd",
        idempotency_key="k-171",
    )
    Dispute.objects.create(
        order=order,
        stripe_dispute_id="dp_171",
        charge_id="ch_171",
        amount_minor=151_35,
        fee_minor=15_00,
        currency="usd",
        status="needs_response",
        reason="fraudulent",
    )
    Return.objects.create(
        integration=integration,
        order=order,
        return_number="RMA-171",
        znode_return_id=171,
        amount="20.000000",
        amount_minor=20_00,
        currency="usd",
    )
    return order


@pytest.mark.parametrize(
    ("model", "shown"),
    [
        ("order", ["171.35 USD"]),
        ("payment", ["171.35 USD"]),
        ("refund", ["20.00 USD"]),
        ("dispute", ["151.35 USD"]),
        ("return", ["20.00 USD"]),
    ],
)
def test_lists_and_pages_show_money_in_the_rows_currency(admin_client, order, model, shown):
    listing = admin_client.get(reverse(f"admin:payments_{model}_changelist"))
    assert listing.status_code == 200
    text = listing.content.decode()
    for value in shown:
        assert value in text
    assert "171.350000" not in text and "17135" not in text
    row = {
        "order": Order,
        "payment": Payment,
        "refund": Refund,
        "dispute": Dispute,
        "return": Return,
    }[model].objects.get()
    page = admin_client.get(reverse(f"admin:payments_{model}_change", args=[row.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert all(value in body for value in shown)
    assert "171.350000" not in body and ">17135<" not in body
