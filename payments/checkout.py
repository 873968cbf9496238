"""The Stripe-hosted payment page (a Checkout Session) of an order the customer pays:
exactly one live page for the order's current total, its link sent once."""

from __future__ import annotations

import hashlib
import json
import time

from django.db import transaction
from django.utils import timezone

from customers.selectors import stripe_customer_linked
from integrations.connectors.stripe import mapping as stripe_facts
from integrations.connectors.stripe.mapping import CheckoutPage
from integrations.kernel import exceptions as exc
from integrations.runtime import ActionContext
from payments import money
from payments.choices import OrderState, PaymentStatus
from payments.models import Order, Payment
from payments.selectors import hosted_page_newest, hosted_pages
from payments.services import (
    PENDING,
    SKIPPED,
    order_metadata,
    order_move,
    paid_refused,
    payment_advance,
    setting,
    znode_note,
)


def _checkout_params(ctx: ActionContext, order: Order, customer: str) -> dict:
    success_url = setting(ctx, "checkout_success_url")
    if not success_url:
        raise exc.BusinessRuleError(
            f"order {order.order_number}: the integration has no checkout_success_url, so "
            "Stripe's hosted payment page cannot be created (set it, then re-drive the job)"
        )
    return stripe_facts.checkout_session_params(
        amount_minor=order.amount_minor,
        currency=money.stripe_currency(order.currency),
        title=f"Order {order.order_number}",
        reference=order.order_number,
        metadata=order_metadata(ctx, order),
        manual_capture=order.capture_on_shipment,
        success_url=success_url,
        cancel_url=setting(ctx, "checkout_cancel_url") or "",
        description=f"Order {order.order_number}" if setting(ctx, "stripe_description") else "",
        customer=customer,
        customer_email=order.email,
    )


def _retrieve(ctx: ActionContext, page: Payment) -> CheckoutPage:
    return stripe_facts.page_from_wire(
        ctx.client("stripe").checkout_session_retrieve(page.checkout_session_id)
    )


def hosted_page_ensure(ctx: ActionContext, order: Order, *, customer: str = "") -> dict:
    """Exactly one live hosted page for the order's current total, its link sent.

    Live pages for another total are closed first (a page the customer already paid
    is never replaced: that is refused, for an operator). A re-run creates and sends
    nothing twice: the link is sent once per page, and a page's key counts the pages
    before it and digests its parameters, so a lost answer replays the same page and a
    changed order gets a new one (an unsent page nobody has the link of just expires).
    Two jobs deciding at once converge in ``_deliver``."""
    order.refresh_from_db()
    keep = None
    for page in hosted_pages(order).exclude(status=PaymentStatus.CANCELED):
        if keep is None and page.amount_minor == order.amount_minor:
            keep = page
            continue
        hosted_page_close(ctx, page)
        if page.status != PaymentStatus.CANCELED:
            raise paid_refused(ctx, order, page, "the order total changed")
    if keep is not None:
        if keep.link_sent_at:
            return _result(keep, status="open")
        session = _retrieve(ctx, keep)
        if not session.is_expired:
            return _deliver(ctx, order, keep, session)
        Payment.objects.filter(pk=keep.pk).update(status=PaymentStatus.CANCELED)
    customer = customer or stripe_customer_linked(
        integration=ctx.integration, znode_user_id=order.znode_user_id
    )
    return _open(ctx, order, customer)


def _open(ctx: ActionContext, order: Order, customer: str) -> dict:
    try:
        money.check_chargeable(order.amount_minor, order.currency)
    except money.MoneyError as error:
        raise exc.DataError(f"order {order.order_number}: {error}") from error
    params = _checkout_params(ctx, order, customer)
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    key = ctx.idempotency_key(
        "checkout", ctx.integration.name, order.order_number, hosted_pages(order).count(), digest
    )
    session = stripe_facts.page_from_wire(
        ctx.client("stripe").checkout_session_create(params=params, idempotency_key=key)
    )
    page, created = Payment.objects.get_or_create(
        checkout_session_id=session.id,
        defaults={
            "order": order,
            "amount_minor": session.amount_total or order.amount_minor,
            "currency": order.currency,
        },
    )
    # A page's note is written only once its row exists: a new row has none yet.
    return _deliver(ctx, order, page, session, new_page=created)


def _deliver(
    ctx: ActionContext,
    order: Order,
    page: Payment,
    session: CheckoutPage,
    *,
    new_page: bool = False,
) -> dict:
    """The page's link as an order note and, unless turned off, by email (each once).

    Decided under the order's row lock, on the order as it is now: a page made for a
    total the order no longer has, for a canceled order, or after an older live page
    for the same total (two jobs at once) is closed instead of sent."""
    from payments.notifications import payment_link_email

    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        older = (
            hosted_pages(locked)
            .filter(id__lt=page.id, amount_minor=locked.amount_minor)
            .exclude(status=PaymentStatus.CANCELED)
            .exists()
        )
        stale = (
            locked.state == OrderState.CANCELED or page.amount_minor != locked.amount_minor or older
        )
    if stale:
        hosted_page_close(ctx, page)
        return {**_result(page, status="replaced"), "outcome": SKIPPED}
    order_move(order, OrderState.PAYMENT_PENDING)
    if session.is_open and session.url and not page.link_sent_at:
        amount = session.amount_total or page.amount_minor
        shown = money.format_minor(amount, order.currency)
        znode_note(
            ctx,
            order,
            note=f"Stripe payment page for {shown} sent to the customer: {session.url}",
            dedupe_key=f"checkout:{session.id}",
            first=new_page,
        )
        if setting(ctx, "notify_customer"):
            payment_link_email(
                order=order,
                url=session.url,
                amount_minor=amount,
                expires_at=session.expires_at or None,
                dedupe_key=session.id,
            )
        Payment.objects.filter(pk=page.pk).update(link_sent_at=timezone.now())
        page.refresh_from_db()
    return _result(page, status=session.status)


def _result(page: Payment, *, status: str) -> dict:
    return {
        "outcome": PENDING,
        "checkout_session": page.checkout_session_id,
        "status": status,
        "link_sent": page.link_sent_at is not None,
    }


def hosted_page_close(ctx: ActionContext, page: Payment) -> CheckoutPage:
    """Expire the page so it can no longer be paid; the session as Stripe has it after.

    A page the customer already paid cannot be expired: then its PaymentIntent is taken
    onto the row, with its status, for the caller to decide."""
    gateway = ctx.client("stripe")
    try:
        raw = gateway.checkout_session_expire(
            page.checkout_session_id,
            idempotency_key=ctx.idempotency_key("expire", page.checkout_session_id),
        )
    except exc.BadRequest:
        raw = gateway.checkout_session_retrieve(page.checkout_session_id)
    session = stripe_facts.page_from_wire(raw)
    if session.is_expired:
        Payment.objects.filter(pk=page.pk).update(status=PaymentStatus.CANCELED)
    if session.payment_intent and not page.payment_intent_id:
        _claim_intent(page, session.payment_intent)
    if session.is_complete and page.payment_intent_id:
        intent = stripe_facts.payment_from_wire(
            gateway.payment_intent_retrieve(page.payment_intent_id)
        )
        payment_advance(page, intent.status)
    page.refresh_from_db()
    return session


def _claim_intent(page: Payment, payment_intent: str) -> None:
    """The hosted page's PaymentIntent, made by Stripe when the customer paid."""
    if not Payment.objects.filter(payment_intent_id=payment_intent).exists():
        Payment.objects.filter(pk=page.pk, payment_intent_id__isnull=True).update(
            payment_intent_id=payment_intent
        )
    page.refresh_from_db()


def hosted_page_of_intent(
    ctx: ActionContext, order: Order, payment_intent: str
) -> tuple[Payment | None, CheckoutPage | None]:
    """The hosted-page payment row whose session Stripe says made ``payment_intent``,
    and that session (re-read); ``(None, None)`` when no page of the order made it."""
    for page in hosted_pages(order).filter(payment_intent_id__isnull=True).order_by("-id"):
        session = _retrieve(ctx, page)
        if session.payment_intent == payment_intent:
            _claim_intent(page, payment_intent)
            return page, session
    return None, None


def hosted_page_for_retry(
    ctx: ActionContext, order: Order, page: Payment, session: CheckoutPage | None = None
) -> CheckoutPage | None:
    """The session of the page a declined customer may try again on (``session``: as
    just read); None when the page is closed or no longer the order's newest."""
    if page.status == PaymentStatus.CANCELED or hosted_page_newest(order) != page:
        return None
    return session or _retrieve(ctx, page)


def hosted_page_expired(
    ctx: ActionContext, order: Order, *, checkout_session: str, occurred_at: int
) -> dict:
    """Re-read the session (the event is a hint). The order keeps waiting for its money;
    replaying its order.created event, or any change of the order, sends a new page.
    Only a page that ran out of time (``expires_at`` reached by the event's time) is
    noted: one we closed (new total, cancellation) expired before its time."""
    page = order.payments.filter(checkout_session_id=checkout_session).first()
    if page is None:
        return {"skipped": "not a payment page of this order"}
    session = _retrieve(ctx, page)
    if not session.is_expired:
        return {"skipped": f"the page is {session.status}"}
    Payment.objects.filter(pk=page.pk).exclude(status=PaymentStatus.SUCCEEDED).update(
        status=PaymentStatus.CANCELED
    )
    ran_out = session.expires_at <= (occurred_at or int(time.time()))
    waiting = order.state in (OrderState.PAYMENT_PENDING, OrderState.PAYMENT_FAILED)
    if not ran_out or hosted_page_newest(order) != page or not waiting:
        # Closed by us (a new total, a cancellation) or paid another way.
        return {"page": "closed", "noted": False}
    znode_note(
        ctx,
        order,
        note=f"The Stripe payment page {checkout_session} expired unpaid. To send the "
        "customer a new one, replay the order's order.created event (admin: Events) or "
        "change the order.",
        dedupe_key=f"expired:{checkout_session}",
    )
    return {"page": "expired", "noted": True}
