"""Collecting an order's money by its mode (integration setting ``collection_modes``,
reference znode-api.md §9.1), never guessed:

* ``adopt``: Znode's payment app already authorized a Stripe charge (the order's
  ``TransactionId``); we never create a second payment, capture that charge when the
  order ships, and reflect its status;
* ``saved_method``: a PaymentIntent confirmed off-session with the Stripe customer's
  saved default payment method;
* ``customer``: the customer pays: by default on a Stripe-hosted page (a Checkout
  Session, emailed and noted on the order; its PaymentIntent carries the order's
  metadata), or with Stripe.js in the storefront (``customer_payment_page``).
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from django.db import transaction

from integrations.connectors.stripe import mapping as stripe_facts
from integrations.connectors.stripe.mapping import StripeCharge, StripePayment
from integrations.kernel import exceptions as exc
from integrations.kernel.exceptions import PaymentDeclined
from integrations.runtime import ActionContext
from payments import money
from payments.checkout import hosted_page_ensure
from payments.choices import CollectionMode, OrderState, PaymentStatus
from payments.models import Order, Payment
from payments.selectors import charge_pays_another_order, payment_adopted, payment_ours
from payments.services import (
    AUTHORIZED,
    DECLINED,
    NO_CHARGE,
    PAID,
    PENDING,
    SKIPPED,
    cannot_collect,
    intent_release,
    mispaid_flag,
    order_metadata,
    order_move,
    order_settle,
    payment_advance,
    setting,
    znode_note,
)


def charge_outcome(charge: StripeCharge) -> str:
    """PAID, AUTHORIZED, or why the charge cannot be adopted. A released
    authorization or a refunded capture keeps ``status: succeeded``, so any refund
    (a partial capture's released remainder included) is left to a person."""
    if charge.refunded or charge.amount_refunded > 0:
        return "refunded or released"
    if charge.succeeded and charge.captured:
        return PAID
    if charge.succeeded:
        return AUTHORIZED
    return charge.status or "unknown"


def _collect_adopt(ctx: ActionContext, order: Order, *, transaction_id: str, **_: Any) -> dict:
    """Adopt the charge Znode's payment app made (the order's ``TransactionId``)."""
    existing = payment_adopted(order)
    charge_id = existing.charge_id if existing else transaction_id
    if not stripe_facts.is_charge_id(charge_id):
        raise cannot_collect(
            ctx,
            order,
            f"its TransactionId {charge_id!r} is not a Stripe charge; Znode's payment app "
            "must authorize the card before the platform can capture it",
        )
    if charge_pays_another_order(order, charge_id):
        raise cannot_collect(
            ctx, order, f"the charge {charge_id} already pays another order; never booked twice"
        )
    try:
        charge = stripe_facts.charge_from_wire(ctx.client("stripe").charge_retrieve(charge_id))
    except exc.NotFound as error:
        raise cannot_collect(ctx, order, f"Stripe has no charge {charge_id}") from error
    outcome = charge_outcome(charge)
    if outcome not in (PAID, AUTHORIZED):
        raise cannot_collect(ctx, order, f"Stripe charge {charge_id} is {outcome}")
    currency = charge.currency.upper()
    if outcome == PAID and charge.amount_captured != order.amount_minor:
        raise cannot_collect(
            ctx,
            order,
            f"{mispaid_flag(order, charge.amount_captured)}: charge {charge_id} captured "
            f"{charge.amount_captured} {currency} but the order is {order.amount_minor} "
            f"{order.currency} (minor units)",
        )
    if currency != money.stripe_currency(order.currency).upper() or (
        charge.amount < order.amount_minor
    ):
        raise cannot_collect(
            ctx,
            order,
            f"charge {charge_id} is {charge.amount} {currency} but the order is "
            f"{order.amount_minor} {order.currency} (minor units)",
        )
    status = PaymentStatus.SUCCEEDED if outcome == PAID else PaymentStatus.REQUIRES_CAPTURE
    received = charge.amount_captured if outcome == PAID else 0
    with transaction.atomic():
        payment, _ = Payment.objects.select_for_update().get_or_create(
            order=order,
            charge_id=charge_id,
            defaults={
                "payment_intent_id": charge.payment_intent or None,
                "adopted": True,
                "amount_minor": charge.amount,
                "currency": order.currency,
            },
        )
        payment_advance(payment, status, received=received)
    order_move(order, OrderState.PAID if outcome == PAID else OrderState.AUTHORIZED)
    return {
        "outcome": outcome,
        "charge": charge_id,
        "amount_received": received,
        "payment_intent": payment.payment_intent_id or "",
    }


def _saved_method(ctx: ActionContext, customer: str) -> str:
    """The Stripe customer's default payment method, re-read (empty when none)."""
    if not customer:
        return ""
    found = stripe_facts.customer_from_wire(ctx.client("stripe").customer_retrieve(customer))
    return found.default_payment_method


def _declined(order: Order, pending: Payment, declined: PaymentDeclined) -> dict:
    """A business outcome, not a failure of the job: Stripe keeps the PaymentIntent;
    the payment_failed event tells Znode and the customer."""
    Payment.objects.filter(pk=pending.pk).update(
        payment_intent_id=declined.payment_intent or f"declined:{order.order_number}",
        decline_code=declined.decline_code or declined.error_code,
        failure_message=str(declined)[:500],
        charge_id=declined.charge or "",
    )
    order_move(order, OrderState.PAYMENT_FAILED, failure_reason=declined.decline_code)
    return {
        "outcome": DECLINED,
        "payment_intent": declined.payment_intent,
        "status": "declined",
        "decline_code": declined.decline_code,
    }


# How far before its pending row a PaymentIntent of the order is looked for, and how
# many of the account's PaymentIntents since then at most.
FIND_SLACK_SECONDS = 300
FIND_LIMIT = 1000


def _find_intent(
    ctx: ActionContext, order: Order, pending: Payment, customer: str
) -> StripePayment | None:
    """The PaymentIntent an earlier try made for the order, if Stripe has one: listed
    (not searched: search lags behind writes) from just before the pending row was
    written, matched by our metadata."""
    since = int(pending.created_at.timestamp()) - FIND_SLACK_SECONDS
    listed = ctx.client("stripe").payment_intents_since(created_gte=since, customer=customer)
    seen = 0
    for raw in islice(listed, FIND_LIMIT):
        seen += 1
        intent = stripe_facts.payment_from_wire(raw)
        if intent.order_number == order.order_number and (
            intent.integration == ctx.integration.name
        ):
            return intent
    if seen >= FIND_LIMIT:
        # Rule: when Stripe cannot be searched to the end, nothing is created again
        # (that could charge twice): a person looks the order up in Stripe.
        raise exc.BusinessRuleError(
            f"order {order.order_number}: an earlier try may have created its PaymentIntent "
            f"and the {FIND_LIMIT} newest since then do not show it; look it up in Stripe "
            "(metadata znode_order_number) before retrying"
        )
    return None


def _pending_row(order: Order) -> tuple[Payment, bool]:
    """The order's own payment row, written before any PaymentIntent is created (under
    the order's lock, so two jobs share one): (row, whether it is new)."""
    with transaction.atomic():
        Order.objects.select_for_update().get(pk=order.pk)
        existing = payment_ours(order)
        if existing is not None:
            return existing, False
        row = Payment.objects.create(
            order=order, amount_minor=order.amount_minor, currency=order.currency
        )
    return row, True


def _settled_off_session(
    ctx: ActionContext, order: Order, payment: Payment, *, currency: str
) -> dict | None:
    """A payment Stripe answered (or our row already shows) as succeeded is booked by
    this job; the ``payment_intent.succeeded`` event that follows finds it booked.
    Settled by the same rule as the event (``order_settle``): never for a total, a
    currency or a state the order no longer has. None: not succeeded yet (the event
    books it)."""
    if payment.status != PaymentStatus.SUCCEEDED or not payment.charge_id:
        return None
    return order_settle(ctx, order, payment, currency=currency)


def _create_intent(ctx: ActionContext, order: Order, *, customer: str, method: str) -> dict:
    """Create (once) the order's PaymentIntent; confirmed off-session with ``method``.

    A pending row is written before the call. A row still pending on a later try means
    a create whose answer was never stored: Stripe is asked for the order's
    PaymentIntent before anything is created again, since its idempotency key is
    forgotten after 24 hours (operator retries, long waits, replays)."""
    existing = payment_ours(order)
    if existing is not None and existing.payment_intent_id:
        # The row was written from Stripe's answers, in the currency we asked for.
        asked = money.stripe_currency(existing.currency)
        settled = _settled_off_session(ctx, order, existing, currency=asked)
        if settled is not None:
            return settled
        return {
            "outcome": PENDING,
            "payment_intent": existing.payment_intent_id,
            "status": existing.status,
        }
    try:
        money.check_chargeable(order.amount_minor, order.currency)
    except money.MoneyError as error:
        raise exc.DataError(f"order {order.order_number}: {error}") from error
    pending, new = _pending_row(order)
    intent = None if new else _find_intent(ctx, order, pending, customer)
    if (
        intent is not None
        and intent.status == PaymentStatus.REQUIRES_PAYMENT_METHOD
        and (intent.decline_code or intent.failure_code)
    ):
        # The earlier try was declined (its answer lost): recorded as the decline it was.
        return _declined(
            order,
            pending,
            PaymentDeclined(
                intent.failure_message or "declined",
                decline_code=intent.decline_code,
                error_code=intent.failure_code,
                payment_intent=intent.id,
                charge=intent.charge_id,
            ),
        )
    if intent is None:
        params = stripe_facts.payment_intent_params(
            amount_minor=order.amount_minor,
            currency=money.stripe_currency(order.currency),
            customer=customer,
            metadata=order_metadata(ctx, order),
            manual_capture=order.capture_on_shipment,
            description=f"Order {order.order_number}" if setting(ctx, "stripe_description") else "",
            payment_method=method,
        )
        key = ctx.idempotency_key("pi", ctx.integration.name, order.order_number)
        try:
            intent = stripe_facts.payment_from_wire(
                ctx.client("stripe").payment_intent_create(params=params, idempotency_key=key)
            )
        except PaymentDeclined as declined:
            return _declined(order, pending, declined)
    Payment.objects.filter(pk=pending.pk).update(
        payment_intent_id=intent.id, status=intent.status, amount_minor=intent.amount
    )
    payment = Payment.objects.get(pk=pending.pk)
    order_move(order, OrderState.PAYMENT_PENDING)
    order.refresh_from_db()
    if order.state == OrderState.CANCELED and intent.status != PaymentStatus.SUCCEEDED:
        # The store canceled the order while we were creating its payment: release
        # it now (the cancel flow may have run before this PaymentIntent existed).
        intent_release(ctx, order, intent.id)
        Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.CANCELED)
        return {"outcome": SKIPPED, "payment_intent": intent.id, "status": "canceled"}
    if intent.status == PaymentStatus.SUCCEEDED and intent.received > 0:
        # Stripe's own answer, not an event: the money is in.
        payment_advance(
            payment, PaymentStatus.SUCCEEDED, charge_id=intent.charge_id, received=intent.received
        )
        settled = _settled_off_session(ctx, order, payment, currency=intent.currency)
        if settled is not None:
            return settled
    return {"outcome": PENDING, "payment_intent": intent.id, "status": intent.status}


def _collect_saved(ctx: ActionContext, order: Order, *, customer: str, **_: Any) -> dict:
    method = _saved_method(ctx, customer)
    if not method:
        if setting(ctx, "saved_method_fallback") == CollectionMode.CUSTOMER_COMPLETES:
            return _collect_customer(ctx, order, customer=customer)
        raise cannot_collect(
            ctx,
            order,
            f"the Stripe customer {customer or '(none)'} has no saved default payment method",
        )
    return _create_intent(ctx, order, customer=customer, method=method)


def _collect_customer(ctx: ActionContext, order: Order, *, customer: str, **_: Any) -> dict:
    if setting(ctx, "customer_payment_page") == "checkout":
        return hosted_page_ensure(ctx, order, customer=customer)
    result = _create_intent(ctx, order, customer=customer, method="")
    payment = payment_ours(order)
    if result.get("outcome") != PENDING or payment is None:
        return result
    # Re-read for the client secret rather than pass it along: step outputs are
    # stored on the job, and the secret must not be.
    intent: StripePayment = stripe_facts.payment_from_wire(
        ctx.client("stripe").payment_intent_retrieve(payment.payment_intent_id)
    )
    # The storefront completes the payment with Stripe.js; the client secret is meant
    # for the customer's browser (our logs and ApiCall rows redact it).
    znode_note(
        ctx,
        order,
        note=f"Stripe payment {intent.id} awaits the customer. "
        f"client_secret={intent.client_secret}",
        dedupe_key=f"pi:{intent.id}",
    )
    return {**result, "client_secret_handed_to_storefront": True}


def _not_ours(ctx: ActionContext, order: Order, **_: Any) -> dict:
    return {
        "outcome": SKIPPED,
        "reason": f"payment setting {order.znode_payment_setting_id} is not collected here",
    }


COLLECTORS = {
    CollectionMode.ADOPT: _collect_adopt,
    CollectionMode.SAVED_METHOD: _collect_saved,
    CollectionMode.CUSTOMER_COMPLETES: _collect_customer,
    CollectionMode.NOT_OURS: _not_ours,
}


def _paid_here(order: Order) -> dict:
    """A re-run for an order already paid (a lost step output, a crash after the
    money moved): the booking steps get the payment that paid it again; each does
    only what is still missing (the payment's booking marks). A payment for another
    total (refused when it came) is never handed on."""
    paid = order.payments.filter(status=PaymentStatus.SUCCEEDED, refund_id="").exclude(charge_id="")
    if order.collection_mode == CollectionMode.ADOPT:
        # The charge Znode's payment app made for this order, as adopted.
        payment = paid.filter(adopted=True).order_by("id").first()
    else:
        payment = (
            paid.filter(amount_received_minor=order.amount_minor, currency=order.currency)
            .order_by("id")
            .first()
        )
    if payment is None:
        return {"outcome": SKIPPED, "reason": order.state}
    return {
        "outcome": PAID,
        "order_state": order.state,
        "charge": payment.charge_id,
        "amount_received": payment.amount_received_minor,
    }


# Modes in which the platform itself charges the customer's card.
WE_CHARGE = (CollectionMode.SAVED_METHOD, CollectionMode.CUSTOMER_COMPLETES)


def _not_collectable(ctx: ActionContext, order: Order) -> str:
    """Why the platform must not charge this order as Znode shows it (empty: it may).

    Rule: only an order in one of the ``collectable_states`` whose payment status is
    not one of the ``paid_payment_statuses`` is charged; an order Znode shows canceled,
    shipped or already paid (the poller's first sight of an old order, a late job) is
    never charged. An order without a state is not charged either (the stricter
    reading: Znode always names the state of an order read with its expands)."""
    states = {name.upper() for name in setting(ctx, "collectable_states")}
    if order.znode_state not in states:
        return f"the order is {order.znode_state or 'in no state'} in Znode, not a state to charge"
    paid = {name.casefold() for name in setting(ctx, "paid_payment_statuses")}
    if order.znode_payment_status.casefold() in paid:
        return f"Znode shows its payment as {order.znode_payment_status} already"
    return ""


def _no_charge(ctx: ActionContext, order: Order) -> dict:
    """A total of zero (a gift card, a 100 % discount) is complete without a charge."""
    order_move(order, OrderState.PAID, failure_reason="")
    znode_note(
        ctx,
        order,
        note=f"Order {order.order_number}: nothing to collect (total "
        f"{money.format_minor(0, order.currency)}); no card was charged.",
        dedupe_key=f"no-charge:{order.order_number}",
    )
    return {"outcome": NO_CHARGE, "reason": "the order's total is zero"}


def payment_collect(
    ctx: ActionContext, order: Order, *, customer: str, transaction_id: str
) -> dict:
    """Collect the order's money by its mode."""
    if order.state == OrderState.PAID:
        return _paid_here(order)
    if order.state == OrderState.CANCELED:
        return {"outcome": SKIPPED, "reason": order.state}
    if order.collection_mode == CollectionMode.NOT_OURS:
        return _not_ours(ctx, order)
    # Decided while no money is in motion: no PaymentIntent or charge known yet (a
    # pending row of a create whose answer was lost is not money in motion).
    moving = order.payments.exclude(payment_intent_id=None, charge_id="").exists()
    if order.collection_mode in WE_CHARGE and not moving:
        reason = _not_collectable(ctx, order)
        if reason:
            Order.objects.filter(pk=order.pk).update(failure_reason=reason[:500])
            return {"outcome": SKIPPED, "reason": reason}
    if order.amount_minor == 0 and not moving:
        return _no_charge(ctx, order)
    collector = COLLECTORS[order.collection_mode]
    return collector(ctx, order, customer=customer, transaction_id=transaction_id)
