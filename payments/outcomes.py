"""What Stripe says about an order's payment: paid, authorized, failed. Its events are
hints: the PaymentIntent is re-read before the order moves."""

from __future__ import annotations

from integrations.connectors.stripe import mapping as stripe_facts
from integrations.connectors.stripe.constants import EXPAND_LATEST_CHARGE
from integrations.connectors.stripe.mapping import StripePayment
from integrations.runtime import ActionContext
from payments.checkout import hosted_page_for_retry, hosted_page_of_intent
from payments.choices import OrderState, PaymentStatus
from payments.models import Order, Payment
from payments.selectors import payment_by_intent
from payments.services import (
    AUTHORIZED,
    PAID,
    PAYMENT_STATUS_TABLE,
    SKIPPED,
    authorization_released_shown,
    intent_release,
    order_canceled_with_money,
    order_move,
    order_settle,
    payment_advance,
    payment_booked,
    setting,
    status_for,
    znode_note,
    znode_state_set,
)

# PaymentIntent statuses after which a decline of an earlier attempt no longer counts.
MONEY_COMING = (PaymentStatus.SUCCEEDED, PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_CAPTURE)


def _pays_another_order(ctx: ActionContext, order: Order, intent: StripePayment) -> bool:
    """The PaymentIntent names another order, or another integration (two stores
    sharing one Stripe account): nothing of this order moves on its word."""
    return intent.order_number != order.order_number or bool(
        intent.integration and intent.integration != ctx.integration.name
    )


def _outcome(intent: StripePayment) -> str:
    return {
        PaymentStatus.SUCCEEDED: PAID,
        PaymentStatus.REQUIRES_CAPTURE: AUTHORIZED,
    }.get(intent.status, SKIPPED)


def payment_success_record(ctx: ActionContext, order: Order, *, payment_intent: str) -> dict:
    """The event only says which PaymentIntent to look at: its status, charge and
    amount come from Stripe now, so a stale, reordered or forged event cannot mark an
    order paid. A payment this platform already took and booked everywhere (an
    off-session answer) needs nothing more, and no call."""
    known = payment_by_intent(payment_intent)
    if (
        known is not None
        and known.order_id == order.pk
        and known.status == PaymentStatus.SUCCEEDED
        and order.state == OrderState.PAID
        and payment_booked(ctx, known)
    ):
        return {
            "outcome": PAID,
            "order_state": order.state,
            "moved": False,
            "charge": known.charge_id,
            "amount_received": known.amount_received_minor,
            "booked": True,
        }
    intent = stripe_facts.payment_from_wire(
        ctx.client("stripe").payment_intent_retrieve(
            payment_intent, expand=list(EXPAND_LATEST_CHARGE)
        )
    )
    if _pays_another_order(ctx, order, intent):
        return {"outcome": SKIPPED, "reason": "the PaymentIntent belongs to another order"}
    outcome = _outcome(intent)
    if outcome == SKIPPED:
        return {"outcome": SKIPPED, "reason": f"the PaymentIntent is {intent.status}"}
    if known is None:
        hosted_page_of_intent(ctx, order, payment_intent)  # paid on the hosted page
    payment, _ = Payment.objects.get_or_create(
        payment_intent_id=payment_intent,
        defaults={"order": order, "amount_minor": intent.amount, "currency": order.currency},
    )
    if order.state == OrderState.CANCELED:
        return _paid_after_cancel(ctx, order, payment, intent)
    target = PaymentStatus.SUCCEEDED if outcome == PAID else PaymentStatus.REQUIRES_CAPTURE
    payment_advance(payment, target, charge_id=intent.charge_id, received=intent.received)
    result = order_settle(
        ctx, order, payment, currency=intent.currency, authorized=outcome == AUTHORIZED
    )
    if outcome == AUTHORIZED:
        return {**result, "amount_received": intent.amount_capturable}
    return result


def _paid_after_cancel(
    ctx: ActionContext, order: Order, payment: Payment, intent: StripePayment
) -> dict:
    """Money for an order canceled in the store: an authorization is released; a
    payment is never booked against it (note in Znode, quarantined for an operator)."""
    if intent.status == PaymentStatus.REQUIRES_CAPTURE:
        intent_release(ctx, order, intent.id)
        Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.CANCELED)
        authorization_released_shown(ctx, order, payment)
        return {"outcome": SKIPPED, "reason": "order canceled: authorization released"}
    Payment.objects.filter(pk=payment.pk).update(
        status=PaymentStatus.SUCCEEDED,
        charge_id=intent.charge_id,
        amount_received_minor=intent.amount_received,
    )
    payment.refresh_from_db()
    return order_canceled_with_money(ctx, order, payment)


def payment_failure_record(
    ctx: ActionContext,
    order: Order,
    *,
    payment_intent: str,
    decline_code: str = "",
    failure_code: str = "",
    message: str = "",
) -> dict:
    """A decline: Znode's payment status and a note, and the customer told (once)."""
    from payments.notifications import payment_failed_email

    payment = payment_by_intent(payment_intent)
    session = None
    if payment is None:
        payment, session = hosted_page_of_intent(ctx, order, payment_intent)
    if payment and payment.checkout_session_id:
        live = hosted_page_for_retry(ctx, order, payment, session)
        if live is None:
            # A decline on a page since closed (a new total, a cancellation): the
            # customer was sent the page that counts; this one tells nothing.
            return {"ignored": "the payment page was closed"}
        session = live
    waiting = (OrderState.NEW, OrderState.PAYMENT_PENDING, OrderState.PAYMENT_FAILED)
    if order.state not in waiting:
        return {"ignored": f"order is {order.state}"}
    if stripe_facts.is_payment_intent_id(payment_intent):
        # The event is a hint: a decline the customer has since paid past (another
        # card, on the same PaymentIntent) tells Znode and the customer nothing.
        now = stripe_facts.payment_from_wire(
            ctx.client("stripe").payment_intent_retrieve(payment_intent)
        )
        if _pays_another_order(ctx, order, now):
            return {"ignored": "the PaymentIntent belongs to another order"}
        if now.status in MONEY_COMING:
            return {"ignored": f"the payment is {now.status} now"}
    if payment and payment.status != PaymentStatus.SUCCEEDED:
        Payment.objects.filter(pk=payment.pk).update(
            decline_code=decline_code or failure_code, failure_message=message[:500]
        )
    code = decline_code or failure_code
    moved = order_move(order, OrderState.PAYMENT_FAILED, failure_reason=code)
    if not moved and order.state != OrderState.PAYMENT_FAILED:
        # Decided under the row lock: a late or concurrent failure never overwrites
        # an authorization, a payment or a cancellation (in Znode or by email).
        return {"ignored": f"order is {order.state}"}
    shown = stripe_facts.customer_facing_decline(code)
    znode_note(
        ctx,
        order,
        note=f"Payment failed ({code or 'declined'}): {message}",
        dedupe_key=f"failed:{payment_intent}",
    )
    ctx.client("znode").update_payment_status(
        order_id=order.znode_order_id,
        status_name=status_for(ctx, PAYMENT_STATUS_TABLE, "payment_failed"),
    )
    state = znode_state_set(ctx, order, "payment_failed")
    # On the hosted page the customer may simply try another card: the email says where.
    retry_url = session.url if session is not None and session.is_open else ""
    emailed = setting(ctx, "notify_customer") and payment_failed_email(
        order=order, reason=shown, dedupe_key=payment_intent, retry_url=retry_url
    )
    return {"state": state, "shown_to_customer": shown, "emailed": emailed}
