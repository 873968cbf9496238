"""Reads of orders and payments (no writes, no calls to other systems)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet, Sum

from integrations.models import Integration
from payments.choices import REFUND_FINAL, PaymentStatus
from payments.exceptions import OrderNotYetKnown
from payments.models import Dispute, Order, Payment, Refund, Return


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


# --- money given back ----------------------------------------------------------------------
@dataclass(frozen=True)
class OrderMoney:
    """What an order's payments hold, in the order's minor units."""

    currency: str
    captured: int
    refunded: int
    """Refunds that succeeded."""
    refunding: int
    """Refunds requested or pending: counted as gone until Stripe says they failed."""
    disputed: int
    """Withdrawn by open or lost chargebacks (not reinstated)."""

    @property
    def refundable(self) -> int:
        return max(0, self.captured - self.refunded - self.refunding - self.disputed)


def _sum(queryset: QuerySet, field: str) -> int:
    return int(queryset.aggregate(total=Sum(field))["total"] or 0)


def order_money(order: Order) -> OrderMoney:
    """Captured, refunded, disputed and still refundable, from our rows (refunds made
    anywhere are recorded here once their event or a re-read saw them). The one place
    the over-refund rule reads."""
    refunds = Refund.objects.filter(order=order).exclude(status__in=REFUND_FINAL)
    return OrderMoney(
        currency=order.currency,
        captured=_sum(
            order.payments.filter(status=PaymentStatus.SUCCEEDED), "amount_received_minor"
        ),
        refunded=_sum(refunds.filter(status="succeeded"), "amount_minor"),
        refunding=_sum(refunds.exclude(status="succeeded"), "amount_minor"),
        disputed=_sum(Dispute.objects.filter(order=order, funds_withdrawn=True), "amount_minor"),
    )


def payment_refunds_held(payment: Payment) -> int:
    """What the payment's refunds took (or are taking) back: all but the failed and
    canceled ones."""
    return _sum(payment.refunds.exclude(status__in=REFUND_FINAL), "amount_minor")


def refund_by_stripe_id(refund_id: str) -> Refund | None:
    return Refund.objects.filter(stripe_refund_id=refund_id).first()


def refund_for_key(key: str) -> Refund | None:
    return Refund.objects.filter(idempotency_key=key).first()


def return_find(*, integration: Integration, return_number: str) -> Return | None:
    return Return.objects.filter(integration=integration, return_number=return_number).first()


def return_for_refund(order: Order, *, return_number: str = "") -> Return | None:
    """The return a refund made elsewhere pays back: the one named in its metadata, or
    the order's only return still waiting for its money (a rejected one is not)."""
    if return_number:
        return order.returns.filter(return_number=return_number).first()
    waiting = list(
        order.returns.filter(Q(state="open") | Q(state="refund_failed")).exclude(
            znode_state__iexact="REJECTED"
        )[:2]
    )
    return waiting[0] if len(waiting) == 1 else None


def payment_for_refund(
    *, integration: Integration, payment_intent: str, charge: str
) -> Payment | None:
    """The integration's payment a Stripe refund (or dispute) belongs to: by
    PaymentIntent, else by charge."""
    ours = Payment.objects.filter(order__integration=integration)
    if payment_intent:
        found = ours.filter(payment_intent_id=payment_intent).first()
        if found is not None:
            return found
    if charge:
        return ours.filter(charge_id=charge).order_by("id").first()
    return None


def dispute_by_stripe_id(dispute_id: str) -> Dispute | None:
    return Dispute.objects.filter(stripe_dispute_id=dispute_id).first()
