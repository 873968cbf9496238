"""Money given back: a Znode return refunded through Stripe, a refund made anywhere
(the Stripe Dashboard, a support tool) reflected in Znode and the ERP, and every
refund's lifecycle (pending, succeeded, failed, canceled).

Rules:

- One refund per return and attempt: the row (with its idempotency key) is written
  before Stripe is called, so the same return seen twice, a retry after a lost answer
  and two partial returns of the same amount each do the right thing. A new attempt
  happens only after the last one failed and a person approved the return again.
- Never more than the order still holds (``selectors.order_money``: captured, less
  refunded, refunding and disputed, counting refunds made anywhere): refused before
  any Stripe write, and checked again against the charge Stripe shows.
- Znode is written as its own admin records a refund (reference §5.1 "How a refund is
  recorded"): order history with the negative amount and the refund id, return
  history, the return saved at Refund Processed, the order's payment status by the
  status table, a note. The ERP gets a credit memo keyed by the refund, only for money
  that went back, and reversed if that refund fails later.
- Each write is marked on the refund row when done and looked up before it is made
  again (history by transaction id or marker, notes by key, ERP documents by
  reference), so a lost answer never doubles anything.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.connectors.stripe import mapping as stripe_facts
from integrations.connectors.stripe.constants import METADATA_REFUND_KEY, METADATA_RETURN_NUMBER
from integrations.connectors.stripe.mapping import StripeRefund
from integrations.connectors.znode.constants import EXPAND_PAYMENT_STATE
from integrations.connectors.znode.mapping import ZnodeReturn, order_from_wire, return_from_wire
from integrations.kernel import exceptions as exc
from integrations.runtime import ActionContext
from payments import money
from payments.choices import (
    REFUND_FINAL,
    CollectionMode,
    PaymentStatus,
    RefundOrigin,
    RefundStatus,
    ReturnState,
)
from payments.exceptions import OverRefund, RefundFailed
from payments.models import Order, Payment, Refund, Return
from payments.selectors import (
    order_find,
    order_money,
    payment_for_refund,
    payment_refunds_held,
    refund_by_stripe_id,
    refund_for_key,
    return_find,
    return_for_refund,
)
from payments.services import (
    PAYMENT_STATUS_TABLE,
    cancel_refund_book,
    credit_memo_post,
    order_metadata,
    payment_refunded_total,
    refund_sent_before,
    status_or_none,
    writer_claim,
    znode_note,
)
from reconciliation import ledger
from reconciliation.choices import EntryKind
from reconciliation.references import credit_memo_reference

RETURN_REFUND_TABLE = "znode-return-refund-states"
RETURN_STATE_TABLE = "znode-return-states"
REFUND = "refund"


def _shown(refund: Refund) -> str:
    return money.format_minor(refund.amount_minor, refund.currency)


# --- the local rows ------------------------------------------------------------------------
def return_upsert(
    ctx: ActionContext, order: Order, znode_return: ZnodeReturn
) -> tuple[Return, str]:
    """Our row of a Znode return, with what Znode shows of it now, and the Znode state
    the row held before (empty for a return first seen)."""
    currency = (znode_return.currency or order.currency).upper()
    if currency != order.currency.upper():
        raise exc.DataError(
            f"return {znode_return.number} is in {currency}, its order "
            f"{order.order_number} in {order.currency}"
        )
    amount_minor = money.to_minor_units(znode_return.total, currency)
    fields = {
        "order": order,
        "znode_return_id": znode_return.id,
        "znode_state": znode_return.state,
        "amount": znode_return.total,
        "amount_minor": amount_minor,
        "currency": currency,
    }
    row = return_find(integration=ctx.integration, return_number=znode_return.number)
    if row is None:
        try:
            with transaction.atomic():
                created = Return.objects.create(
                    integration=ctx.integration, return_number=znode_return.number, **fields
                )
            return created, ""
        except IntegrityError:  # a concurrent job made it
            row = return_find(integration=ctx.integration, return_number=znode_return.number)
    seen_before = row.znode_state
    if row.state not in (ReturnState.REFUNDING, ReturnState.REFUNDED):
        # The amount of a return being refunded is the one refunded.
        Return.objects.filter(pk=row.pk).update(**fields)
    else:
        Return.objects.filter(pk=row.pk).update(znode_state=znode_return.state)
    row.refresh_from_db()
    return row, seen_before


def _refund_follow(refund: Refund, stripe_refund: StripeRefund) -> None:
    """The refund row follows Stripe, forward only (a stale read moves nothing back)."""
    moves = bool(stripe_refund.status) and refund.can_move_to(stripe_refund.status)
    failed = moves and stripe_refund.status in REFUND_FINAL
    Refund.objects.filter(pk=refund.pk).update(
        status=stripe_refund.status if moves else refund.status,
        failed_at=timezone.now() if failed else refund.failed_at,
        failure_reason=refund.failure_reason or stripe_refund.failure_reason[:100],
        reason=refund.reason or stripe_refund.reason[:100],
        stripe_refund_id=refund.stripe_refund_id or stripe_refund.id,
        updated_at=timezone.now(),
    )
    refund.refresh_from_db()
    if refund.payment_id:
        payment_refunded_total(refund.payment)


def _refundable_payment(order: Order) -> Payment:
    payment = (
        order.payments.filter(status="succeeded", amount_received_minor__gt=0)
        .order_by("-id")
        .first()
    )
    if payment is None:
        raise OverRefund(f"order {order.order_number} has no captured payment to refund")
    return payment


def _check_refundable(order: Order, amount_minor: int, *, what: str) -> None:
    held = order_money(order)
    refundable = held.refundable
    if amount_minor > refundable:
        raise OverRefund(
            f"{what} of {money.format_minor(amount_minor, order.currency)} is more than order "
            f"{order.order_number} still holds: captured "
            f"{money.format_minor(held.captured, order.currency)}, refunded "
            f"{money.format_minor(held.refunded + held.refunding, order.currency)}, disputed "
            f"{money.format_minor(held.disputed, order.currency)}; refundable "
            f"{money.format_minor(refundable, order.currency)}. Nothing was refunded."
        )


# --- Znode return → Stripe refund --------------------------------------------------------
def return_refund(ctx: ActionContext, return_number: str) -> dict:
    """Refund a Znode return that reached a refund state (status table
    ``znode-return-refund-states``), once per return and attempt."""
    znode_return = return_from_wire(ctx.client("znode").get_return(return_number))
    order = order_find(integration=ctx.integration, order_number=znode_return.order_number)
    if order is None:
        return {"skipped": f"order {znode_return.order_number} is not collected here"}
    if order.collection_mode == CollectionMode.NOT_OURS and not order_money(order).captured:
        return {"skipped": f"order {order.order_number}'s money is not collected here"}
    row, seen_before = return_upsert(ctx, order, znode_return)
    wanted = status_or_none(ctx, RETURN_REFUND_TABLE, znode_return.state)
    if row.state == ReturnState.REFUNDED:
        return {"skipped": f"return {row.return_number} was refunded already", **_last(row)}
    if row.state != ReturnState.REFUNDING and wanted != REFUND:
        return {"skipped": f"return {row.return_number} is {znode_return.state or 'unknown'}"}
    if (
        row.state == ReturnState.REFUND_FAILED
        and status_or_none(ctx, RETURN_REFUND_TABLE, seen_before) == REFUND
    ):
        # Its refund failed and it has not moved since: a person approves it again.
        return {"skipped": f"return {row.return_number}'s refund failed: waiting for a person"}
    if row.amount_minor <= 0:
        raise exc.DataError(f"return {row.return_number} has no amount to refund")
    refund = _return_refund_row(ctx, order, row)
    if refund.stripe_refund_id:
        stripe_refund = stripe_facts.refund_from_wire(
            ctx.client("stripe").refund_retrieve(refund.stripe_refund_id)
        )
    else:
        stripe_refund = _refund_send(ctx, order, refund)
    _refund_follow(refund, stripe_refund)
    return {"refund": refund.stripe_refund_id, "status": refund.status, **_amounts(refund)}


def _last(row: Return) -> dict:
    refund = row.refunds.order_by("-id").first()
    return {"refund": refund.stripe_refund_id, "status": refund.status} if refund else {}


def _amounts(refund: Refund) -> dict:
    return {"amount_minor": refund.amount_minor, "currency": refund.currency}


def _return_refund_row(ctx: ActionContext, order: Order, row: Return) -> Refund:
    """The refund of the return's current attempt: the one requested already, or a new
    one (and a new attempt), written before any Stripe call under the order's lock,
    after the over-refund check."""
    if row.state == ReturnState.REFUNDING:
        current = row.refunds.filter(attempt=row.attempt).first()
        if current is not None:
            return current
    payment = _refundable_payment(order)
    what = f"return {row.return_number}"
    _check_refundable(order, row.amount_minor, what=what)  # no Stripe call yet
    if _refunded_elsewhere(ctx, order, payment):
        # Refunds made in Stripe whose events have not come: recorded now (one of them
        # may be this return's money), then the return is decided again.
        charge_refunds_record(ctx, payment.charge_id)
        row.refresh_from_db()
        if row.state in (ReturnState.REFUNDING, ReturnState.REFUNDED):
            linked = row.refunds.filter(attempt=row.attempt).first()
            if linked is not None:
                return linked
        _check_refundable(order, row.amount_minor, what=what)
    with transaction.atomic():
        Order.objects.select_for_update().filter(pk=order.pk).first()
        row = Return.objects.select_for_update().get(pk=row.pk)
        if row.state == ReturnState.REFUNDING:  # a concurrent job got here first
            current = row.refunds.filter(attempt=row.attempt).first()
            if current is not None:
                return current
        _check_refundable(order, row.amount_minor, what=what)
        attempt = row.attempt + 1
        key = ctx.idempotency_key(
            "refund", "return", ctx.integration.name, row.return_number, attempt
        )
        Return.objects.filter(pk=row.pk).update(
            state=ReturnState.REFUNDING, attempt=attempt, updated_at=timezone.now()
        )
        return Refund.objects.create(
            order=order,
            payment=payment,
            return_request=row,
            origin=RefundOrigin.RETURN,
            attempt=attempt,
            amount_minor=row.amount_minor,
            currency=order.currency,
            idempotency_key=key,
        )


def _refunded_elsewhere(ctx: ActionContext, order: Order, payment: Payment) -> bool:
    """Stripe shows more refunded on the charge than our rows know (a read, never a
    write)."""
    if not payment.charge_id:
        return False
    charge = stripe_facts.charge_from_wire(ctx.client("stripe").charge_retrieve(payment.charge_id))
    return charge.amount_refunded > payment_refunds_held(payment)


def _refund_send(ctx: ActionContext, order: Order, refund: Refund) -> StripeRefund:
    """Create the refund in Stripe under the row's key. A row older than this try may
    have reached Stripe already (the key is kept 24 hours only, A4): it is looked for
    first, by the key in its metadata."""
    gateway = ctx.client("stripe")
    payment = refund.payment
    if (found := refund_sent_before(ctx, refund)) is not None:
        return found
    intent = payment.payment_intent_id or ""
    metadata = {
        **order_metadata(ctx, order),
        **stripe_facts.stripe_metadata(
            {
                METADATA_RETURN_NUMBER: refund.return_request.return_number
                if refund.return_request_id
                else "",
                METADATA_REFUND_KEY: refund.idempotency_key,
            }
        ),
    }
    params = stripe_facts.refund_params(
        payment_intent=intent if stripe_facts.is_payment_intent_id(intent) else "",
        charge=payment.charge_id,
        metadata=metadata,
        amount_minor=refund.amount_minor,
    )
    try:
        raw = gateway.refund_create(params=params, idempotency_key=refund.idempotency_key)
    except exc.BadRequest as error:
        # Stripe refused it (over its own bound, a disputed charge): nothing moved. The
        # return is reopened for a person like a refund that failed.
        Refund.objects.filter(pk=refund.pk).update(
            status=RefundStatus.CANCELED,
            failed_at=timezone.now(),
            failure_reason=f"refused by Stripe: {error}"[:100],
            updated_at=timezone.now(),
        )
        payment_refunded_total(payment)
        refund_reflect(ctx, refund)  # raises RefundFailed with the reason
        raise
    return stripe_facts.refund_from_wire(raw)


# --- a Stripe refund, wherever it was made ----------------------------------------------
def refund_record(ctx: ActionContext, stripe_refund: StripeRefund) -> Refund | None:
    """Our row of a Stripe refund (re-read by the caller): ours are found by id or by
    the key in their metadata, so nothing echoes; one made elsewhere on one of our
    payments gets a row; another integration's, or a payment not ours, gets none."""
    refund = refund_by_stripe_id(stripe_refund.id)
    if refund is None and stripe_refund.refund_key:
        refund = refund_for_key(stripe_refund.refund_key)
    if refund is None:
        if stripe_refund.integration and stripe_refund.integration != ctx.integration.name:
            return None
        payment = payment_for_refund(
            integration=ctx.integration,
            payment_intent=stripe_refund.payment_intent,
            charge=stripe_refund.charge,
        )
        if payment is None or payment.status != PaymentStatus.SUCCEEDED:
            # Not ours, or an authorization released (Znode's "void" of an uncaptured
            # charge is a refund of it): no money of a sale went back.
            return None
        refund = _outside_refund_row(payment, stripe_refund)
    elif refund.order.integration_id != ctx.integration.pk:
        return None
    _refund_follow(refund, stripe_refund)
    return refund


def _outside_refund_row(payment: Payment, stripe_refund: StripeRefund) -> Refund:
    order = payment.order
    currency = stripe_refund.currency.upper() or payment.currency
    linked = return_for_refund(order, return_number=stripe_refund.return_number)
    if (
        linked is not None
        and not stripe_refund.return_number
        and linked.amount_minor != stripe_refund.amount
    ):
        linked = None  # another amount: not that return's money
    try:
        with transaction.atomic():
            if linked is not None:
                # The return's next attempt, made in Stripe by a person; only while it
                # still waits for its money (our own refund of it may have begun).
                linked = Return.objects.select_for_update().get(pk=linked.pk)
                if linked.state not in (ReturnState.OPEN, ReturnState.REFUND_FAILED):
                    linked = None
            if linked is not None:
                Return.objects.filter(pk=linked.pk).update(
                    attempt=linked.attempt + 1,
                    state=ReturnState.REFUNDING
                    if linked.can_move_to(ReturnState.REFUNDING)
                    else linked.state,
                )
            return Refund.objects.create(
                order=order,
                payment=payment,
                return_request=linked,
                attempt=linked.attempt + 1 if linked else 1,
                stripe_refund_id=stripe_refund.id,
                origin=RefundOrigin.RETURN if linked else RefundOrigin.OUTSIDE,
                status=RefundStatus.REQUESTED,
                amount_minor=stripe_refund.amount,
                currency=currency,
                reason=stripe_refund.reason[:100],
            )
    except IntegrityError:  # a concurrent event made it
        return Refund.objects.get(stripe_refund_id=stripe_refund.id)


def charge_refunds_record(ctx: ActionContext, charge_id: str) -> list[Refund]:
    """Every refund of a charge (``charge.refunded`` lists none since 2022-11-15,
    reference stripe.md A2: they are read)."""
    rows = []
    for raw in ctx.client("stripe").refunds_for_charge(charge_id):
        row = refund_record(ctx, stripe_facts.refund_from_wire(raw))
        if row is not None:
            rows.append(row)
    return rows


# --- reflecting a refund in Znode and the ERP ------------------------------------------------
def refund_reflect(ctx: ActionContext, refund: Refund) -> dict:
    """Show Znode and the ERP what the refund's status now says, each write once, by
    one job at a time (our own refund's events arrive while our flow reflects it)."""
    refund.refresh_from_db()
    if refund.status not in (RefundStatus.SUCCEEDED, *REFUND_FINAL):
        return {"refund": refund.stripe_refund_id, "status": refund.status, "waiting": True}
    with writer_claim(ctx, refund):
        refund.refresh_from_db()
        if refund.status == RefundStatus.SUCCEEDED:
            return _reflect_success(ctx, refund)
        return _reflect_failure(ctx, refund)


def _is_current(refund: Refund) -> bool:
    """The refund is its return's current attempt (an older attempt's late news never
    moves the return)."""
    row = refund.return_request
    return row is not None and refund.attempt == row.attempt


def _reflect_success(ctx: ActionContext, refund: Refund) -> dict:
    result: dict[str, Any] = {"refund": refund.stripe_refund_id, "status": refund.status}
    if refund.origin == RefundOrigin.CANCELLATION:
        # The cancellation's own booking: the payment status and the sale's memo.
        return {**result, **cancel_refund_book(ctx, refund)}
    if refund.znode_booked_at is None:
        result.update(_znode_refund_write(ctx, refund))
        Refund.objects.filter(pk=refund.pk).update(znode_booked_at=timezone.now())
    if refund.erp_booked_at is None and ctx.integration.erp_id is not None:
        if refund.payment is not None and refund.payment.erp_booked_at is None:
            # Credited only against a sale the ERP holds: retried until it is booked.
            raise exc.ConflictRetry(
                f"refund {refund}: the sale of {refund.payment} is not in the ERP yet; "
                "its credit memo waits for it"
            )
        result["credit_memo"] = credit_memo_post(ctx, refund, why=_why(refund))
        Refund.objects.filter(pk=refund.pk).update(erp_booked_at=timezone.now())
    if _is_current(refund):
        Return.objects.filter(pk=refund.return_request_id).exclude(
            state=ReturnState.REFUNDED
        ).update(state=ReturnState.REFUNDED, updated_at=timezone.now())
    return result


def _znode_refund_write(ctx: ActionContext, refund: Refund) -> dict:
    """As Znode's admin records a refund (§5.1): order history (negative amount, the
    refund id), return history, the return at Refund Processed, the payment status,
    a note."""
    znode = ctx.client("znode")
    order = refund.order
    refund_id = refund.stripe_refund_id
    amount = money.from_minor_units(refund.amount_minor, refund.currency)
    row = refund.return_request
    for_return = f" for return {row.return_number}" if row else ""
    made = "" if refund.origin == RefundOrigin.RETURN else " (made in Stripe)"
    marker = f"[ref:refund:{refund_id}]"
    znode_order = order_from_wire(
        znode.get_order(order.znode_order_id, expand=EXPAND_PAYMENT_STATE)
    )
    if not any(marker in message for message in znode.order_history_messages(order.znode_order_id)):
        znode.add_order_history(
            order_details_id=znode_order.details_id,
            message=f"Refunded {_shown(refund)}{for_return}{made}: Stripe refund {refund_id} "
            + marker,
            transaction_id=refund_id,
            amount=-amount,
        )
    result: dict[str, Any] = {}
    if row is not None:
        result.update(_znode_return_refunded(ctx, refund, row, amount))
    held = order_money(order)
    outcome = "refunded" if held.refunded >= held.captured else "partially_refunded"
    status = status_or_none(ctx, PAYMENT_STATUS_TABLE, outcome)
    if status and status.lower() != znode_order.payment_status.lower():
        znode.update_payment_status(order_id=order.znode_order_id, status_name=status)
    left = money.format_minor(held.refundable, order.currency)
    znode_note(
        ctx,
        order,
        note=f"Stripe refund {refund_id}: {_shown(refund)} given back{for_return}{made}. "
        f"Still refundable: {left}.",
        dedupe_key=f"refund:{refund_id}",
    )
    return {**result, "payment_status": status}


def _znode_return_refunded(
    ctx: ActionContext, refund: Refund, row: Return, amount: Decimal
) -> dict:
    znode = ctx.client("znode")
    znode_return = return_from_wire(znode.get_return(row.return_number))
    if not any(h.transaction_id == refund.stripe_refund_id for h in znode_return.history):
        znode.add_return_history(
            return_details_id=znode_return.id,
            transaction_id=refund.stripe_refund_id,
            amount=amount,
            message=f"Refunded {_shown(refund)} through Stripe ({refund.stripe_refund_id})",
        )
    target = status_or_none(ctx, RETURN_STATE_TABLE, "refunded")
    if target and znode_return.state != target.upper():
        znode.update_return_state(return_number=row.return_number, state_name=target)
    return {"return": row.return_number, "return_state": target}


def _why(refund: Refund) -> str:
    if refund.return_request_id:
        return f", return {refund.return_request.return_number}"
    return "" if refund.origin == RefundOrigin.RETURN else ", refunded in Stripe"


def _reflect_failure(ctx: ActionContext, refund: Refund) -> dict:
    """The money did not go back: the credit memo (if one was posted) is reversed, the
    return reopened for a person, Znode noted; the job is quarantined with Stripe's
    reason the first time (a later event for the same failure finds it handled)."""
    order = refund.order
    result: dict[str, Any] = {"refund": refund.stripe_refund_id, "status": refund.status}
    if not refund.erp_reversed_at and ctx.integration.erp_id and _memo_posted(ctx, refund):
        result["reversal"] = _credit_memo_reverse(ctx, refund)
        Refund.objects.filter(pk=refund.pk).update(erp_reversed_at=timezone.now())
    if refund.failure_noted_at is not None:
        return {**result, "noted": True}
    reason = refund.failure_reason or refund.status
    row = refund.return_request
    # Only the return's current attempt, with no other live refund of it, reopens it.
    reopen = (
        _is_current(refund)
        and not row.refunds.exclude(pk=refund.pk).exclude(status__in=REFUND_FINAL).exists()
    )
    if reopen:
        if row.can_move_to(ReturnState.REFUND_FAILED):
            Return.objects.filter(pk=row.pk).update(state=ReturnState.REFUND_FAILED)
        target = status_or_none(ctx, RETURN_STATE_TABLE, "refund_failed")
        if target:
            ctx.client("znode").update_return_state(
                return_number=row.return_number,
                state_name=target,
                notes=f"Stripe refund {refund.stripe_refund_id} {refund.status}: {reason}. "
                "Approve the return again to retry.",
            )
            Return.objects.filter(pk=row.pk).update(znode_state=target.upper())
    if refund.znode_booked_at is not None and refund.origin != RefundOrigin.CANCELLATION:
        held = order_money(order)
        outcome = "partially_refunded" if held.refunded else "paid"
        status = status_or_none(ctx, PAYMENT_STATUS_TABLE, outcome)
        if status:
            ctx.client("znode").update_payment_status(
                order_id=order.znode_order_id, status_name=status
            )
    for_return = f" for return {row.return_number}" if row else ""
    znode_note(
        ctx,
        order,
        note=f"Stripe refund {refund.stripe_refund_id or '(not made)'} of "
        f"{_shown(refund)}{for_return} "
        f"{refund.status}: {reason}. The customer has not been paid back; "
        + ("the return was reopened for a person." if reopen else "refund again in Stripe."),
        dedupe_key=f"refund-failed:{refund.stripe_refund_id or refund.pk}",
    )
    Refund.objects.filter(pk=refund.pk).update(failure_noted_at=timezone.now())
    raise RefundFailed(
        f"Stripe refund {refund.stripe_refund_id} of {_shown(refund)} for order "
        f"{order.order_number}{for_return} {refund.status}: {reason}"
    )


def _memo_posted(ctx: ActionContext, refund: Refund) -> bool:
    """A credit memo of the refund is in the ERP (our mark, or found there: its answer
    may have been lost)."""
    if refund.erp_booked_at is not None:
        return True
    if not refund.stripe_refund_id or refund.origin == RefundOrigin.CANCELLATION:
        return bool(refund.erp_booked_at)
    memo = credit_memo_reference(refund.stripe_refund_id)
    return ctx.client("erp").credit_memo_find(memo) is not None


def _credit_memo_reverse(ctx: ActionContext, refund: Refund) -> str:
    """A journal entry undoing the credit memo of a refund that failed after it was
    posted (the money came back to the merchant)."""
    currency = refund.currency
    gl = ledger.gl_map(ctx.integration)
    return ledger.entry_post(
        ctx,
        ledger.Entry(
            reference=f"refund-failed:{refund.stripe_refund_id}",
            kind=EntryKind.REFUND_FAILURE,
            day=(refund.failed_at or refund.updated_at).date(),
            currency=currency,
            memo=f"Order {refund.order.order_number}: Stripe refund {refund.stripe_refund_id} "
            f"failed ({refund.failure_reason or refund.status}); reverses credit memo "
            f"refund:{refund.stripe_refund_id}",
            postings=(
                gl.posting(
                    "clearing",
                    refund.amount_minor,
                    currency,
                    f"Stripe {refund.stripe_refund_id} failed",
                ),
                gl.posting("refund", -refund.amount_minor, currency, "Refund reversed"),
            ),
            ledger_key=f"refund_failure:{refund.stripe_refund_id}",
            order=refund.order,
        ),
    )
