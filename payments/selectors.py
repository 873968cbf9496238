"""Reads of orders and payments (no writes, no calls to other systems)."""

from __future__ import annotations

from django.db.models import QuerySet

from integrations.models import Integration
from payments.exceptions import OrderNotYetKnown
from payments.models import Order, Payment


def order_find(*, integration: Integration, order_number: str) -> Order | None:
    return Order.objects.filter(integration=integration, order_number=order_number).first()


def order_get(*, integration: Integration, order_number: str) -> Order:
    """The order, or ``OrderNotYetKnown`` (retried) when its Znode event has not been
    handled yet."""
    order = order_find(integration=integration, order_number=order_number)
    if order is None:
        raise OrderNotYetKnown(f"order {order_number} is not known here yet")
    return order


def payment_latest(order: Order) -> Payment | None:
    return order.payments.order_by("-id").first()


def payment_adopted(order: Order) -> Payment | None:
    """The charge adopted from Znode's payment app, if any."""
    return order.payments.filter(adopted=True).order_by("id").first()


def payment_ours(order: Order) -> Payment | None:
    """The first payment the platform made for the order (not adopted)."""
    return order.payments.filter(adopted=False).order_by("id").first()


def payment_by_intent(payment_intent: str) -> Payment | None:
    return Payment.objects.filter(payment_intent_id=payment_intent).first()


def payment_by_charge(order: Order, charge_id: str) -> Payment | None:
    return order.payments.filter(charge_id=charge_id).order_by("id").first()


def charge_pays_another_order(order: Order, charge_id: str) -> bool:
    return Payment.objects.filter(charge_id=charge_id).exclude(order=order).exists()


def hosted_pages(order: Order) -> QuerySet[Payment]:
    """The order's Stripe-hosted payment pages (Checkout Sessions), oldest first."""
    return order.payments.filter(adopted=False).exclude(checkout_session_id="").order_by("id")


def hosted_page_newest(order: Order) -> Payment | None:
    return hosted_pages(order).order_by("-id").first()
