"""What a change of the order in Znode does to its payment: a cancellation releases
it, a shipment captures it, a new total re-amounts it (or its hosted page)."""

from __future__ import annotations

from integrations.connectors.stripe import mapping as stripe_facts
from integrations.connectors.znode.constants import CANCELED_ORDER_STATES, SHIPPED_ORDER_STATE
from integrations.kernel import exceptions as exc
from integrations.runtime import ActionContext
from payments import money
from payments.checkout import hosted_page_close, hosted_page_ensure
from payments.choices import CollectionMode, OrderState, PaymentStatus
from payments.models import Order, Payment
from payments.selectors import payment_latest
from payments.services import (
    PAID,
    PENDING,
    authorization_released_shown,
    intent_release,
    order_canceled_with_money,
    order_move,
    order_store_total,
    payment_advance,
    setting,
    znode_note,
)


def _capture(ctx: ActionContext, order: Order, payment: Payment, amount_minor: int) -> dict:
    """Capture the order's current total when it ships: never more than authorized,
    and exactly the total Znode shows now (a lowered total is captured lowered)."""
    if amount_minor > payment.amount_minor:
        raise exc.BusinessRuleError(
            f"order {order.order_number}: the total {amount_minor} is above the "
            f"{payment.amount_minor} authorized (minor units); not captured"
        )
    gateway = ctx.client("stripe")
    key = ctx.idempotency_key("capture", ctx.integration.name, order.order_number)
    if payment.adopted:
        try:
            raw = gateway.charge_capture(
                payment.charge_id,
                params=stripe_facts.charge_capture_params(amount_minor),
                idempotency_key=key,
            )
        except exc.BadRequest:
            # Captured already (e.g. by Znode's own admin)? Then the money is in.
            raw = gateway.charge_retrieve(payment.charge_id)
        charge = stripe_facts.charge_from_wire(raw)
        if not charge.captured or charge.refunded:
            raise exc.BusinessRuleError(f"Stripe did not capture {payment.charge_id}")
        received = charge.amount_captured or amount_minor
        payment_advance(payment, PaymentStatus.SUCCEEDED, received=received)
        order_store_total(order, received)
        order_move(order, OrderState.PAID)
        return {
            "action": "captured",
            "outcome": PAID,
            "charge": payment.charge_id,
            "amount_received": received,
        }
    # The amount first: payment_intent.succeeded may be handled before this returns,
    # and it checks what was received against the order.
    order_store_total(order, amount_minor)
    captured = stripe_facts.payment_from_wire(
        gateway.payment_intent_capture(
            payment.payment_intent_id,
            params=stripe_facts.capture_params(amount_minor),
            idempotency_key=key,
        )
    )
    # payment_intent.succeeded follows and books it (re-read there).
    return {"action": "captured", "outcome": PENDING, "status": captured.status}


def _cancel(ctx: ActionContext, order: Order, payment: Payment | None) -> dict:
    """Release whatever the order's payment still holds. Money already taken (or still
    settling) is never kept quietly for a canceled order, nor refunded by guess: our
    order follows Znode to canceled, so a late success is held too (record_success),
    and the merchant gets a note; taken money waits for an operator."""
    gateway = ctx.client("stripe")
    key = ctx.idempotency_key("cancel", ctx.integration.name, order.order_number)
    if payment and payment.checkout_session_id and payment.status != PaymentStatus.CANCELED:
        # Close the hosted page first (Checkout owns its PaymentIntent while it is
        # open); a page already paid hands over its PaymentIntent and status.
        hosted_page_close(ctx, payment)
    if payment and payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.PROCESSING):
        return _canceled_with_money(ctx, order, payment)
    if (
        payment
        and not payment.adopted
        and not stripe_facts.is_payment_intent_id(payment.payment_intent_id)
    ):
        # A decline recorded without a PaymentIntent, or a closed page: nothing to release.
        Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.CANCELED)
    elif payment and payment.status != PaymentStatus.CANCELED:
        if payment.adopted:
            # Releasing an uncaptured charge is a refund of it (Znode's own "void").
            gateway.refund_create(
                params=stripe_facts.release_charge_params(payment.charge_id), idempotency_key=key
            )
        else:
            try:
                intent_release(ctx, order, payment.payment_intent_id)
            except exc.BadRequest:
                # Our status was behind: Stripe says why it cannot be canceled.
                intent = stripe_facts.payment_from_wire(
                    gateway.payment_intent_retrieve(payment.payment_intent_id)
                )
                if intent.status not in (PaymentStatus.SUCCEEDED, PaymentStatus.PROCESSING):
                    raise
                Payment.objects.filter(pk=payment.pk).update(
                    status=intent.status,
                    charge_id=intent.charge_id or payment.charge_id,
                    amount_received_minor=intent.amount_received,
                )
                payment.refresh_from_db()
                return _canceled_with_money(ctx, order, payment)
        Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.CANCELED)
    if payment and payment.charge_id and (payment.adopted or order.capture_on_shipment):
        # An authorization was released (now, or by an earlier try of this job).
        authorization_released_shown(ctx, order, payment)
    order_move(order, OrderState.CANCELED)
    return {"action": "canceled" if payment else "none", "order_state": order.state}


def _canceled_with_money(ctx: ActionContext, order: Order, payment: Payment) -> dict:
    order_move(order, OrderState.CANCELED)  # a paid (booked) order stays paid: final
    if payment.status == PaymentStatus.PROCESSING:
        znode_note(
            ctx,
            order,
            note=f"Order {order.order_number} was canceled while its Stripe payment "
            f"{payment.payment_intent_id} is still settling: if it succeeds it is held for "
            "an operator, never booked.",
            dedupe_key=f"settling:{payment.pk}",
        )
        return {"action": "canceled", "settling": payment.payment_intent_id}
    if payment.charge_id and _fully_refunded(ctx, payment):
        return {"action": "canceled", "refunded": payment.charge_id}
    return {"action": "canceled", **order_canceled_with_money(ctx, order, payment)}


def _fully_refunded(ctx: ActionContext, payment: Payment) -> bool:
    """Stripe shows the charge refunded already (e.g. by Znode's own payment app)."""
    charge = stripe_facts.charge_from_wire(ctx.client("stripe").charge_retrieve(payment.charge_id))
    return charge.refunded


def _pays_on_page(ctx: ActionContext, order: Order) -> bool:
    return (
        order.collection_mode == CollectionMode.CUSTOMER_COMPLETES
        and setting(ctx, "customer_payment_page") == "checkout"
    )


def _total_changed_after_payment(ctx: ActionContext, order: Order, amount_minor: int) -> dict:
    """Znode's total moved after the money was taken and booked: the booking stands,
    the merchant is told (once per total) to collect or refund the difference."""
    shown = money.format_minor(amount_minor, order.currency)
    paid = money.format_money(order.total, order.currency)
    znode_note(
        ctx,
        order,
        note=f"Order {order.order_number}: the total changed to {shown} after the customer "
        f"paid {paid}; collect or refund the difference in Stripe.",
        dedupe_key=f"total-after-paid:{amount_minor}",
    )
    return {"action": "noted", "paid_minor": order.amount_minor, "znode_minor": amount_minor}


def _sync_hosted_page(ctx: ActionContext, order: Order, amount_minor: int) -> dict:
    """The order's total is Znode's, stored first (a payment for another total is then
    refused when it is booked); the page follows it. Safe to re-run: whether a new page
    is needed is decided by the pages, not by what was stored."""
    changed = amount_minor != order.amount_minor
    if changed:
        order_store_total(order, amount_minor)
        order.refresh_from_db()
    result = hosted_page_ensure(ctx, order)
    return {**result, "action": "amount_updated" if changed else "none"}


def _reamount(ctx: ActionContext, order: Order, payment: Payment | None, amount_minor: int) -> dict:
    updatable = (PaymentStatus.REQUIRES_PAYMENT_METHOD, PaymentStatus.REQUIRES_CONFIRMATION)
    if payment and payment.status not in updatable:
        # Processing or awaiting action: Stripe cannot take a new amount now.
        raise exc.BusinessRuleError(
            f"{order.order_number}: total changed while the payment is {payment.status}"
        )
    if payment and stripe_facts.is_payment_intent_id(payment.payment_intent_id):
        # One key per Znode change: the same amount can come back later (20 → 25 →
        # 20 → 25) and must then be applied again, not replayed from the cache.
        change = ctx.event.external_id if ctx.event else f"job{ctx.job.pk}"
        updated = stripe_facts.payment_from_wire(
            ctx.client("stripe").payment_intent_update(
                payment.payment_intent_id,
                params=stripe_facts.amount_params(amount_minor),
                idempotency_key=ctx.idempotency_key(
                    "amount", ctx.integration.name, order.order_number, change, amount_minor
                ),
            )
        )
        if updated.amount != amount_minor:
            raise exc.BusinessRuleError(
                f"Stripe kept {updated.amount} for {order.order_number}, not {amount_minor}"
            )
        Payment.objects.filter(pk=payment.pk).update(amount_minor=amount_minor)
    order_store_total(order, amount_minor)
    return {"action": "amount_updated", "amount_minor": amount_minor}


def order_change_sync(ctx: ActionContext, order: Order, *, state: str, amount_minor: int) -> dict:
    """Cancel, capture, or re-amount after the order changed in Znode."""
    payment = payment_latest(order)
    state = state.upper()
    if state in CANCELED_ORDER_STATES:
        return _cancel(ctx, order, payment)
    shipped = state == SHIPPED_ORDER_STATE
    if payment and shipped and payment.status == PaymentStatus.REQUIRES_CAPTURE:
        return _capture(ctx, order, payment, amount_minor)
    if payment and shipped and payment.adopted and order.state == OrderState.PAID:
        # Captured here already: a re-run after the capture's answer was stored but not
        # the step's (a lost lease, a crash) hands the booking steps the capture again;
        # each does only what is still missing (the payment's booking marks).
        return {
            "action": "captured",
            "outcome": PAID,
            "charge": payment.charge_id,
            "amount_received": payment.amount_received_minor,
        }
    waiting = order.state in (OrderState.NEW, OrderState.PAYMENT_PENDING, OrderState.PAYMENT_FAILED)
    if waiting and (payment.checkout_session_id if payment else _pays_on_page(ctx, order)):
        return _sync_hosted_page(ctx, order, amount_minor)
    if order.state == OrderState.PAID and amount_minor != order.amount_minor:
        return _total_changed_after_payment(ctx, order, amount_minor)
    if amount_minor != order.amount_minor and waiting:
        return _reamount(ctx, order, payment, amount_minor)
    return {"action": "none"}
