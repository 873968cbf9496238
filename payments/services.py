"""Order-to-cash services: the order's state machine, the order from a Znode order,
the payment rows, and the bookings (Znode's payment record and statuses, the ERP's
sales journal entry). The collection modes, the hosted page and the reactions to
Stripe and Znode build on these (``collection.py``, ``checkout.py``, ``outcomes.py``,
``changes.py``); ``actions.py`` adapts them to flows.

Services read facts (``integrations/connectors/*/mapping.py``), never wire paths, and
reach other systems only through ``ctx.client(kind)``.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from integrations.connectors.stripe import mapping as stripe_facts
from integrations.connectors.stripe.constants import METADATA_REFUND_KEY
from integrations.connectors.stripe.mapping import StripeRefund
from integrations.connectors.znode.constants import EXPAND_ORDER_STATE, EXPAND_PAYMENT_STATE
from integrations.connectors.znode.mapping import (
    PaymentRecord,
    PaymentView,
    ZnodeOrder,
    order_from_wire,
)
from integrations.kernel import exceptions as exc
from integrations.kernel import stats
from integrations.mapping import apply_transform
from integrations.runtime import ActionContext
from integrations.services.jobs import CLAIM_WAIT_SECONDS, job_running, row_claim
from integrations.settings_schema import integration_setting
from payments import money
from payments.choices import (
    CollectionMode,
    OrderState,
    PaymentStatus,
    RefundOrigin,
    RefundStatus,
)
from payments.exceptions import CannotCollect
from payments.models import Order, Payment, Refund
from payments.selectors import payment_by_charge, payment_refunds_held
from payments.settings import BEFORE_PAYMENT_STATES
from reconciliation import ledger
from reconciliation.choices import EntryKind
from reconciliation.references import credit_memo_reference

ORDER_STATUS_TABLE = "znode-order-states"
PAYMENT_STATUS_TABLE = "znode-payment-states"
DISPUTE_STATE_TABLE = "znode-dispute-states"

# Outcomes a collecting step hands to the booking steps after it (only paid and
# authorized are booked).
PAID, AUTHORIZED, PENDING, DECLINED, SKIPPED, NO_CHARGE = (
    "paid",
    "authorized",
    "pending",
    "declined",
    "skipped",
    "no_charge",
)
CANCELED_IN_ZNODE = "the order was canceled in Znode"


def setting(ctx: ActionContext, name: str) -> Any:
    """A typed integration setting (payments/settings.py declares them and their
    defaults)."""
    return integration_setting(ctx.integration, name)


def status_for(ctx: ActionContext, table: str, outcome: str) -> str:
    """Translate our outcome through an operator-editable status table."""
    return apply_transform(f"lookup:{table}", outcome, ctx.document)


def znode_note(
    ctx: ActionContext, order: Order, *, note: str, dedupe_key: str, first: bool = False
) -> bool:
    """A note on the Znode order, once per key (``first``: the caller knows no note
    with this key can exist yet, which spares the lookup)."""
    return ctx.client("znode").add_order_note(
        order_id=order.znode_order_id, note=note, dedupe_key=dedupe_key, first=first
    )


# --- the order ----------------------------------------------------------------------------
def collection_of(ctx: ActionContext, setting_id: int | None) -> tuple[str, bool]:
    """(collection mode, capture on shipment) for a Znode payment setting."""
    mode = setting(ctx, "collection_modes").get(str(setting_id), CollectionMode.NOT_OURS)
    manual = setting_id in setting(ctx, "manual_capture_payment_settings")
    return mode, mode == CollectionMode.ADOPT or manual


def order_upsert(ctx: ActionContext, znode_order: ZnodeOrder) -> Order:
    """Our mirror of the Znode order: created once (its total, currency and how it is
    collected, from its payment setting), its customer and last-seen state refreshed."""
    if not znode_order.number or not znode_order.id:
        raise exc.DataError("the Znode order has no OmsOrderId or OrderNumber")
    if znode_order.total is None:
        raise exc.DataError(f"Znode order {znode_order.number} has no Total")
    try:
        minor = money.to_minor_units(znode_order.total, znode_order.currency)
    except money.MoneyError as error:
        raise exc.DataError(f"order {znode_order.number}: {error}") from error
    mode, capture_later = collection_of(ctx, znode_order.payment_setting_id)
    with transaction.atomic():
        order, _ = Order.objects.select_for_update().get_or_create(
            integration=ctx.integration,
            order_number=znode_order.number,
            defaults={
                "znode_order_id": znode_order.id,
                "currency": znode_order.currency,
                "total": znode_order.total,
                "amount_minor": minor,
                "collection_mode": mode,
                "capture_on_shipment": capture_later,
                "znode_payment_setting_id": znode_order.payment_setting_id,
            },
        )
        order.znode_user_id = znode_order.user_id
        order.email = znode_order.email or order.email
        order.znode_state = znode_order.state
        order.znode_payment_status = znode_order.payment_status
        # Persisted before any write of ours: a state write may clear it in Znode.
        order.tracking_number = znode_order.tracking_number or order.tracking_number
        order.save(
            update_fields=[
                "znode_user_id",
                "email",
                "znode_state",
                "znode_payment_status",
                "tracking_number",
                "updated_at",
            ]
        )
    return order


def order_store_total(order: Order, amount_minor: int) -> None:
    """The order's total as Znode (or the capture) now has it, in minor units."""
    Order.objects.filter(pk=order.pk).update(
        amount_minor=amount_minor, total=money.from_minor_units(amount_minor, order.currency)
    )


def order_move(order: Order, state: str, **fields: Any) -> bool:
    """Monotonic state change under a row lock; returns whether it moved."""
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if not locked.can_move_to(state):
            return False
        locked.state = state
        for name, value in fields.items():
            setattr(locked, name, value)
        locked.save()
    order.refresh_from_db()
    return True


extra_metadata: ContextVar[dict[str, Any] | None] = ContextVar("extra_metadata", default=None)
"""Metadata a flow's mapping adds to the payment objects the running action makes
(``payments.collect_payment``'s ``metadata`` input)."""


def order_metadata(ctx: ActionContext, order: Order) -> dict[str, str]:
    """What the order's payment objects carry: a mapping's extra keys (``metadata``
    input), then ours, which win (events find their order by them)."""
    ours = stripe_facts.order_metadata(
        order_number=order.order_number,
        znode_order_id=order.znode_order_id,
        znode_user_id=order.znode_user_id,
        integration=ctx.integration.name,
    )
    extra = extra_metadata.get()
    if not extra:
        return ours
    # Stripe takes 50 keys at most: the mapping's extra keys give way to ours.
    room = stripe_facts.METADATA_MAX_KEYS - len(ours)
    kept = dict(list(stripe_facts.stripe_metadata(extra).items())[: max(room, 0)])
    return {**kept, **ours}


def payment_advance(
    payment: Payment, status: str, *, charge_id: str = "", received: int | None = None
) -> Payment:
    """The payment's status moves forward only (a late or duplicate answer never moves
    it back); the charge id is kept once known; what was received only grows. The
    first move to succeeded stamps ``paid_at``, the date its bookings carry."""
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if status in PaymentStatus.values and locked.can_move_to(status):
            locked.status = status
        if locked.status == PaymentStatus.SUCCEEDED and locked.paid_at is None:
            locked.paid_at = timezone.now()
        locked.charge_id = charge_id or locked.charge_id
        if received is not None:
            locked.amount_received_minor = max(locked.amount_received_minor, received)
        locked.save()
    payment.refresh_from_db()
    return payment


def intent_release(ctx: ActionContext, order: Order, payment_intent: str) -> dict:
    """Cancel the order's PaymentIntent (one key per order: a retry replays it)."""
    return ctx.client("stripe").payment_intent_cancel(
        payment_intent,
        params=stripe_facts.CANCEL_PARAMS,
        idempotency_key=ctx.idempotency_key("cancel", ctx.integration.name, order.order_number),
    )


def cannot_collect(ctx: ActionContext, order: Order, reason: str) -> CannotCollect:
    """Tell Znode (a note) and return the error that quarantines the job."""
    znode_note(
        ctx,
        order,
        note=f"The platform cannot collect this payment: {reason}",
        dedupe_key=f"cannot-collect:{order.order_number}",
    )
    return CannotCollect(f"order {order.order_number}: {reason}")


def paid_refused(
    ctx: ActionContext, order: Order, page: Payment, why: str
) -> exc.BusinessRuleError:
    """The customer paid (or is paying) for an order that changed under the payment (a
    new total, a cancellation): nothing is decided for the merchant (refunds follow
    their own rules); Znode gets a note and the job waits for an operator."""
    paid = page.amount_received_minor or page.amount_minor
    amount = money.format_minor(paid, order.currency)
    where = (
        f"on the Stripe payment page {page.checkout_session_id}"
        if page.checkout_session_id
        else "in Stripe"
    )
    reference = page.payment_intent_id or page.charge_id or "payment in progress"
    reason = (
        f"{why}, but the customer already paid {amount} {where} ({reference}); "
        "refund or adjust it in Stripe"
    )
    znode_note(
        ctx,
        order,
        note=f"Order {order.order_number}: {reason}.",
        dedupe_key=f"paid:{page.pk}:{why}",
    )
    return exc.BusinessRuleError(f"order {order.order_number}: {reason}")


def status_or_none(ctx: ActionContext, table: str, outcome: str) -> str:
    """The status table's entry, or empty where an operator's table has none for it."""
    try:
        return status_for(ctx, table, outcome)
    except exc.MappingError:
        return ""


def dispute_flag(ctx: ActionContext, payment: Payment | None) -> str:
    """The payment status an open chargeback on ``payment`` shows in Znode (the
    dispute table's ``open``), or empty: a booking of the payment writes it instead of
    its paid status, so a capture booked after the dispute opened does not hide it."""
    if payment is None or not payment.disputes.filter(outcome="").exists():
        return ""
    return status_or_none(ctx, DISPUTE_STATE_TABLE, "open")


def authorization_released_shown(ctx: ActionContext, order: Order, payment: Payment) -> None:
    """Znode is told an authorization was released: a note, and the payment status
    the table names for it (stock: Voided)."""
    shown = money.format_minor(payment.amount_minor, order.currency)
    reference = payment.payment_intent_id or payment.charge_id
    znode_note(
        ctx,
        order,
        note=f"Order {order.order_number} was canceled in Znode: the authorization of {shown} "
        f"(Stripe {reference}) was released; nothing was charged.",
        dedupe_key=f"released:{reference}",
    )
    if status := status_or_none(ctx, PAYMENT_STATUS_TABLE, "voided"):
        ctx.client("znode").update_payment_status(order_id=order.znode_order_id, status_name=status)


# A refund row older than this whose answer never came may have reached Stripe already
# (its key is kept 24 hours only, reference stripe.md A4): it is looked for by its key.
REFUND_RECHECK_AFTER = timedelta(minutes=10)


def refund_sent_before(ctx: ActionContext, refund: Refund) -> StripeRefund | None:
    """The Stripe refund an earlier try of ``refund`` made, found by the key in its
    metadata; None for a fresh row (its key still answers for it)."""
    payment = refund.payment
    if refund.created_at >= timezone.now() - REFUND_RECHECK_AFTER or not payment.charge_id:
        return None
    for raw in ctx.client("stripe").refunds_for_charge(payment.charge_id):
        found = stripe_facts.refund_from_wire(raw)
        if found.refund_key and found.refund_key == refund.idempotency_key:
            return found
    return None


def payment_refunded_total(payment: Payment) -> None:
    """The payment's refunded amount: its refunds that did not fail."""
    Payment.objects.filter(pk=payment.pk).update(
        amount_refunded_minor=payment_refunds_held(payment)
    )


def _refund_in_full(ctx: ActionContext, order: Order, payment: Payment) -> Refund:
    """Everything the payment holds, given back: one refund per order (its key; the
    row is written before the call), so a re-run replays it rather than refunding
    twice (and one made already is read back, or found by its key past 24 hours)."""
    key = ctx.idempotency_key("refund", "canceled", ctx.integration.name, order.order_number)
    row, _ = Refund.objects.get_or_create(
        idempotency_key=key,
        defaults={
            "order": order,
            "payment": payment,
            "origin": RefundOrigin.CANCELLATION,
            "amount_minor": payment.amount_received_minor - payment.amount_refunded_minor,
            "currency": order.currency,
        },
    )
    gateway = ctx.client("stripe")
    refund_id = payment.refund_id or row.stripe_refund_id
    if refund_id:
        refund = stripe_facts.refund_from_wire(gateway.refund_retrieve(refund_id))
    elif (refund := refund_sent_before(ctx, row)) is None:
        intent = payment.payment_intent_id or ""
        params = stripe_facts.refund_params(
            payment_intent=intent if stripe_facts.is_payment_intent_id(intent) else "",
            charge=payment.charge_id,
            metadata={
                **order_metadata(ctx, order),
                **stripe_facts.stripe_metadata({METADATA_REFUND_KEY: key}),
            },
        )
        refund = stripe_facts.refund_from_wire(
            gateway.refund_create(params=params, idempotency_key=key)
        )
    Refund.objects.filter(pk=row.pk).update(
        stripe_refund_id=refund.id,
        amount_minor=refund.amount,
        status=refund.status if row.can_move_to(refund.status) else row.status,
    )
    Payment.objects.filter(pk=payment.pk).update(refund_id=refund.id)
    payment_refunded_total(payment)
    payment.refresh_from_db()
    row.refresh_from_db()
    return row


def credit_memo_post(ctx: ActionContext, refund: Refund, *, why: str = "") -> str:
    """The credit memo of money that went back, keyed by the refund, dated when the
    platform first saw it; refunds are debited, the Stripe clearing account credited."""
    order = refund.order
    currency = refund.currency
    gl = ledger.gl_map(ctx.integration)
    return ledger.entry_post(
        ctx,
        ledger.Entry(
            reference=credit_memo_reference(refund.stripe_refund_id),
            kind=EntryKind.CREDIT_MEMO,
            day=refund.created_at.date(),
            currency=currency,
            memo=f"Order {order.order_number}{why}: Stripe refund {refund.stripe_refund_id}",
            postings=(
                gl.posting("refund", refund.amount_minor, currency, "Refund"),
                gl.posting(
                    "clearing", -refund.amount_minor, currency, f"Stripe {refund.stripe_refund_id}"
                ),
            ),
            ledger_key=refund.stripe_refund_id,
            credit_memo_customer=f"znode-user-{order.znode_user_id}"
            if order.znode_user_id
            else order.order_number,
            credit_memo_amount=refund.amount_minor,
            order=order,
        ),
    )


def order_canceled_with_money(ctx: ActionContext, order: Order, payment: Payment) -> dict:
    """Money that reached an order canceled in Znode: a payment that landed after the
    cancel, or a cancel after the capture.

    Rule (integration setting ``canceled_order_payments``): ``refund`` (default)
    gives it back in full at once (one refund per order), notes it in Znode and books
    no sale (a sale booked before the cancel gets its credit memo, and Znode's
    payment status follows); ``hold`` keeps it, notes it and quarantines the job for a
    person. The refund's later events find these bookings marked on its row."""
    if setting(ctx, "canceled_order_payments") != "refund":
        raise paid_refused(ctx, order, payment, CANCELED_IN_ZNODE)
    refund = _refund_in_full(ctx, order, payment)
    refund_id = refund.stripe_refund_id
    shown = money.format_minor(refund.amount_minor, order.currency)
    znode_note(
        ctx,
        order,
        note=f"Order {order.order_number} was canceled in Znode: its payment of {shown} "
        f"was refunded in full (Stripe refund {refund_id}).",
        dedupe_key=f"canceled-refund:{refund_id}",
    )
    booked = cancel_refund_book(ctx, refund)
    return {
        "outcome": SKIPPED,
        "reason": "order canceled: payment refunded",
        "refund": refund_id,
        "amount_refunded": refund.amount_minor,
        **booked,
    }


def cancel_refund_book(ctx: ActionContext, refund: Refund) -> dict:
    """Once the refund of a canceled order's payment has gone through: the payment
    status a booked payment showed follows (Refunded), and a sale the ERP holds gets
    its credit memo; each once (the refund's marks). A refund still pending waits for
    its ``refund.updated``."""
    refund.refresh_from_db()
    payment = refund.payment
    if refund.status != RefundStatus.SUCCEEDED:
        return {"waiting": refund.status}
    status = ""
    if refund.znode_booked_at is None:
        if payment.znode_booked_at and (
            status := status_or_none(ctx, PAYMENT_STATUS_TABLE, "refunded")
        ):
            ctx.client("znode").update_payment_status(
                order_id=refund.order.znode_order_id, status_name=status
            )
        Refund.objects.filter(pk=refund.pk).update(znode_booked_at=timezone.now())
    memo = ""
    if refund.erp_booked_at is None and payment.erp_booked_at and ctx.integration.erp_id:
        memo = credit_memo_post(ctx, refund, why=" canceled")
        Refund.objects.filter(pk=refund.pk).update(erp_booked_at=timezone.now())
    return {"payment_status": status, "credit_memo": memo}


def order_settle(
    ctx: ActionContext, order: Order, payment: Payment, *, currency: str, authorized: bool = False
) -> dict:
    """The order paid (or authorized) by ``payment`` as its row now stands: never for
    a total or currency the order no longer has (a new total raced the payment), and
    never for a canceled order. The booking steps' input."""
    order.refresh_from_db()
    if order.state == OrderState.CANCELED and not authorized:
        return order_canceled_with_money(ctx, order, payment)
    received = payment.amount_received_minor
    if not authorized and (
        received != order.amount_minor
        or currency.upper() != money.stripe_currency(order.currency).upper()
    ):
        # Rule: a payment of another amount or currency is not "paid". Stripe's truth
        # is kept on the payment, the order is flagged (underpaid, overpaid, another
        # currency) with a note, and the job waits for a person.
        raise _mispaid(ctx, order, payment, received=received, currency=currency)
    moved = order_move(
        order, OrderState.AUTHORIZED if authorized else OrderState.PAID, failure_reason=""
    )
    if not moved and order.state == OrderState.CANCELED and not authorized:
        # Canceled between the check and the move (decided under the row lock).
        return order_canceled_with_money(ctx, order, payment)
    return {
        "outcome": AUTHORIZED if authorized else PAID,
        "order_state": order.state,
        "moved": moved,
        "charge": payment.charge_id,
        "amount_received": received,
        "payment_intent": payment.payment_intent_id or "",
    }


# --- bookings -----------------------------------------------------------------------------
def _before_payment(ctx: ActionContext, order: Order) -> bool:
    """Only from these states does a payment outcome move the order state: an order
    already shipped stays shipped."""
    names = setting(ctx, "znode_states_before_payment") or BEFORE_PAYMENT_STATES
    now = order_from_wire(
        ctx.client("znode").get_order(order.znode_order_id, expand=EXPAND_ORDER_STATE)
    )
    return now.state in {n.upper() for n in names}


def znode_state_set(ctx: ActionContext, order: Order, outcome: str) -> str:
    """The order state for ``outcome`` by the status table, as the last Znode write.

    A state the store refuses (missing, or not an order state) never blocks what was
    already written (the payment record, the journal): it becomes a note in Znode and
    a line in the step's output for an operator. Transient errors still retry."""
    state = status_for(ctx, ORDER_STATUS_TABLE, outcome)
    if not state or not _before_payment(ctx, order):
        return ""
    try:
        ctx.client("znode").update_order_state(
            order_number=order.order_number,
            state_name=state,
            tracking_number=order.tracking_number,
        )
    except (exc.DataError, exc.BusinessRuleError) as error:
        znode_note(
            ctx,
            order,
            note=f"The platform could not set the order state {state}: {error}",
            dedupe_key=f"state:{outcome}:{state}",
        )
        return f"refused: {error}"
    return state


def mispaid_flag(order: Order, received: int) -> str:
    """How money of another amount than the order's total is named (minor units)."""
    return "underpaid" if received < order.amount_minor else "overpaid"


def _mispaid(
    ctx: ActionContext, order: Order, payment: Payment, *, received: int, currency: str
) -> exc.BusinessRuleError:
    total = money.format_money(order.total, order.currency)
    if currency.upper() != money.stripe_currency(order.currency).upper():
        flag = f"paid in {currency.upper()}"
    else:
        flag = mispaid_flag(order, received)
    Order.objects.filter(pk=order.pk).update(failure_reason=flag)
    return paid_refused(ctx, order, payment, f"{flag}: the order total is now {total}")


# A job finding another running job writing the same payment into Znode (the order's
# job and the payment's event, racing) waits this long for it before it retries later.
BOOKING_WAIT_SECONDS = CLAIM_WAIT_SECONDS


def writer_claim(ctx: ActionContext, row: models.Model) -> AbstractContextManager[None]:
    """Hold ``row`` (a refund, a dispute: its ``reflect_job``) for this job while it
    writes the row's news into Znode and the ERP: an object's events come in pairs and
    bursts, and two jobs each reading "not written yet" would both write (Znode's
    history and notes always insert, §12). See :func:`integrations.services.jobs.row_claim`."""
    return row_claim(
        job_id=ctx.job.pk,
        row=row,
        field="reflect_job",
        doing="being written to Znode and the ERP",
    )


class _ClaimHeld(Exception):
    pass


def _booking_claim(ctx: ActionContext, payment: Payment) -> bool | None:
    """Claim writing ``payment`` into Znode. None: booked already. True: this is the
    first try of any job (nothing of ours can be in Znode yet, so the order as read
    earlier may decide). False: a try before this one may have written; read fresh.

    Another running job's claim is waited for, briefly here (the usual race is over
    in a moment), then by retrying the job."""
    deadline = time.monotonic() + BOOKING_WAIT_SECONDS
    while True:
        try:
            return _booking_claim_once(ctx, payment)
        except _ClaimHeld as held:
            if time.monotonic() >= deadline:
                raise exc.ConflictRetry(str(held), retry_after=2) from None
        time.sleep(0.2)


def _booking_claim_once(ctx: ActionContext, payment: Payment) -> bool | None:
    now = timezone.now()
    job = ctx.job.pk if ctx.job else None
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.znode_booked_at:
            return None
        started: datetime | None = locked.znode_booking_started_at
        holder = locked.znode_booking_job
        if started and holder != job and job_running(holder, now):
            raise _ClaimHeld(
                f"payment {payment.pk} is being written into Znode by job "
                f"{locked.znode_booking_job}"
            )
        locked.znode_booking_started_at = now
        locked.znode_booking_job = job
        locked.save(update_fields=["znode_booking_started_at", "znode_booking_job", "updated_at"])
    return started is None


def _record_in_znode(
    ctx: ActionContext,
    order: Order,
    payment: Payment | None,
    *,
    charge: str,
    amount: Any,
    status: str,
    history: tuple[PaymentRecord, ...] | None,
) -> bool:
    """The payment record, exactly once for ours, never dropping someone else's."""

    def baseline(now: int) -> int:
        """Matching history rows before our first try: the first count seen, kept."""
        if payment is None:
            return now
        Payment.objects.filter(pk=payment.pk, znode_history_baseline__isnull=True).update(
            znode_history_baseline=now
        )
        payment.refresh_from_db(fields=["znode_history_baseline"])
        return payment.znode_history_baseline

    return ctx.client("znode").record_payment(
        order_id=order.znode_order_id,
        transaction_reference=charge,
        amount=amount,
        status=status,
        payment_setting_id=int(
            order.znode_payment_setting_id or setting(ctx, "znode_payment_setting_id") or 0
        ),
        transaction_date=timezone.now(),
        baseline=baseline,
        history=history,
    )


def order_book_in_znode(
    ctx: ActionContext,
    order: Order,
    *,
    charge: str,
    amount_received: int,
    outcome: str,
    seen: PaymentView | None = None,
) -> dict:
    """Writes in the order that keeps the money's evidence first: the payment record,
    the transaction id, the payment status, and the order state last (a state the
    store refuses never blocks the others).

    What Znode shows decides what is written; ``seen`` is the order as this job read
    it earlier. A payment is written once (the payment's ``znode_booked_at``), by one
    job at a time. The record is not idempotent, so it is decided on the history read
    fresh, unless this is the first try of any job for the payment: then nothing of
    ours can be in Znode, and ``seen`` serves. An authorization records nothing:
    ``seen`` only spares writes Znode already shows (stale, it causes a harmless
    re-write)."""
    znode = ctx.client("znode")
    payment_status = status_for(ctx, PAYMENT_STATUS_TABLE, outcome)
    payment = payment_by_charge(order, charge) if charge else None
    if payment is not None and payment.refund_id:
        return {"skipped": f"refunded ({payment.refund_id}): never booked as paid"}
    recorded = False
    if outcome == PAID:
        first_try = _booking_claim(ctx, payment) if payment is not None else False
        if first_try is None:
            return {"skipped": "booked in Znode already", "payment_recorded": False}
        if not first_try or (seen is not None and seen.payments is None):
            seen = None  # the record is decided on the history read now
    if seen is None:
        seen = order_from_wire(
            znode.get_order(order.znode_order_id, expand=EXPAND_PAYMENT_STATE)
        ).payment_view
    if outcome == PAID and charge:
        amount = money.from_minor_units(amount_received or order.amount_minor, order.currency)
        recorded = _record_in_znode(
            ctx,
            order,
            payment,
            charge=charge,
            amount=amount,
            status=payment_status,
            history=seen.payments,
        )
    if charge:
        znode.update_transaction_id(
            order_id=order.znode_order_id, transaction_id=charge, shown=seen.transaction_id
        )
    # The record says what the money did; the order's status flags an open dispute.
    flagged = (dispute_flag(ctx, payment) if outcome == PAID else "") or payment_status
    znode.update_payment_status(
        order_id=order.znode_order_id, status_name=flagged, shown=seen.payment_status
    )
    state = znode_state_set(ctx, order, outcome)
    if outcome == PAID and payment is not None:
        now = timezone.now()
        if Payment.objects.filter(pk=payment.pk, znode_booked_at=None).update(znode_booked_at=now):
            _count_paid(order, now)
    return {"state": state, "payment_status": payment_status, "payment_recorded": recorded}


def _count_paid(order: Order, now) -> None:
    """The dashboard's latency: from the platform's first sight of the order (its
    Znode event) to Znode showing it paid, counted once the write commits."""
    seconds = max((now - order.created_at).total_seconds(), 0.0)
    label = stats.latency_label(seconds)
    transaction.on_commit(lambda: stats.count("paid_latency", label=label), robust=True)


def payment_rebook(*, payment: Payment) -> Payment:
    """An operator's "book it again": the marks are cleared, so the next job for the
    payment (a replayed event) checks Znode and the ERP again and writes what is
    missing there. The claim's start stays: that job reads Znode's history fresh."""
    Payment.objects.filter(pk=payment.pk).update(
        znode_booked_at=None, erp_booked_at=None, znode_booking_job=None
    )
    payment.refresh_from_db()
    return payment


def payment_booked(ctx: ActionContext, payment: Payment) -> bool:
    """Every booking of a paid payment is done (Znode, and the ERP where there is one)."""
    erp_done = payment.erp_booked_at is not None or ctx.integration.erp_id is None
    return payment.znode_booked_at is not None and erp_done
