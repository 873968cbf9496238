"""Chargebacks: a dispute on one of our charges is recorded with its reason, evidence
due date and outcome; Znode gets a note per stage and a flag (status table
``znode-dispute-states``); the ERP gets each money movement of the dispute (the
withdrawal with its fee, a reinstatement) as a journal entry keyed by Stripe's balance
transaction, so a movement is posted once whichever event brings it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.connectors.stripe.mapping import DisputeMovement, StripeDispute
from integrations.runtime import ActionContext
from payments import money
from payments.choices import DisputeOutcome
from payments.models import Dispute, Payment
from payments.selectors import dispute_by_stripe_id, payment_for_refund
from payments.services import (
    DISPUTE_STATE_TABLE,
    status_or_none,
    writer_claim,
    znode_note,
)
from reconciliation import ledger
from reconciliation.choices import EntryKind

_OUTCOMES = {
    "won": DisputeOutcome.WON,
    "lost": DisputeOutcome.LOST,
    "warning_closed": DisputeOutcome.CLOSED,
    "prevented": DisputeOutcome.CLOSED,
}


def _when(timestamp: int) -> datetime | None:
    return datetime.fromtimestamp(timestamp, tz=UTC) if timestamp else None


def dispute_record(ctx: ActionContext, dispute: StripeDispute) -> dict:
    """Record a dispute (re-read by the caller) on one of our payments and reflect it;
    another integration's, or a charge not ours, is left alone."""
    payment = payment_for_refund(
        integration=ctx.integration, payment_intent=dispute.payment_intent, charge=dispute.charge
    )
    if payment is None:
        return {"skipped": f"dispute {dispute.id} is not on a payment of ours"}
    row = _dispute_upsert(payment, dispute)
    result: dict[str, Any] = {
        "dispute": dispute.id,
        "status": dispute.status,
        "outcome": row.outcome,
    }
    with writer_claim(ctx, row):  # its events come in pairs
        row.refresh_from_db()
        if ctx.integration.erp_id is not None:
            result["journal_entries"] = _post_movements(ctx, row, dispute)
        result.update(_znode_dispute_show(ctx, row))
    return result


def _dispute_upsert(payment: Payment, dispute: StripeDispute) -> Dispute:
    withdrawn = -sum(m.amount for m in dispute.movements)
    fields = {
        "order": payment.order,
        "payment": payment,
        "charge_id": dispute.charge,
        "status": dispute.status,
        "outcome": _OUTCOMES.get(dispute.status, DisputeOutcome.OPEN),
        "reason": dispute.reason[:100],
        "amount_minor": dispute.amount,
        "currency": (dispute.currency or payment.currency).upper(),
        "fee_minor": sum(m.fee for m in dispute.movements),
        "evidence_due_by": _when(dispute.evidence_due_by),
        "funds_withdrawn": withdrawn > 0,
    }
    row = dispute_by_stripe_id(dispute.id)
    if row is None:
        try:
            with transaction.atomic():
                return Dispute.objects.create(stripe_dispute_id=dispute.id, **fields)
        except IntegrityError:
            row = dispute_by_stripe_id(dispute.id)
    if row.outcome and not fields["outcome"]:
        # Closed is final: an older event read late does not reopen it.
        fields = {k: v for k, v in fields.items() if k not in ("status", "outcome")}
    Dispute.objects.filter(pk=row.pk).update(**fields, updated_at=timezone.now())
    row.refresh_from_db()
    return row


def movement_entry(ctx: ActionContext, row: Dispute, movement: DisputeMovement) -> ledger.Entry:
    """One money movement of a dispute: the disputed amount against the disputes
    account, the fee as expense, the net through the Stripe clearing account (a
    withdrawal: disputes and fee debited, clearing credited; a reinstatement the
    other way). Keyed in the ledger by the movement (its balance transaction)."""
    gl = ledger.gl_map(ctx.integration)
    currency = (movement.currency or row.currency).upper()
    net = movement.amount - movement.fee
    reason = row.reason or "chargeback"
    kind = "withdrawn" if movement.amount < 0 else "reinstated"
    return ledger.Entry(
        reference=f"dispute:{row.stripe_dispute_id}:{movement.id}",
        kind=EntryKind.DISPUTE,
        day=(_when(movement.created) or row.created_at).date(),
        currency=currency,
        memo=f"Order {row.order.order_number}: dispute {row.stripe_dispute_id} funds {kind}",
        postings=(
            gl.posting("dispute", -movement.amount, currency, f"Dispute ({reason})"),
            gl.posting("dispute_fee", movement.fee, currency, "Stripe dispute fee"),
            gl.posting("clearing", net, currency, f"Stripe {movement.id}"),
        ),
        ledger_key=movement.id,
        order=row.order,
    )


def _post_movements(ctx: ActionContext, row: Dispute, dispute: StripeDispute) -> list[str]:
    posted = list(row.erp_posted)
    documents = []
    for movement in dispute.movements:
        if movement.id in posted or not (movement.amount or movement.fee):
            continue
        entry = movement_entry(ctx, row, movement)
        documents.append(ledger.entry_post(ctx, entry))
        posted.append(movement.id)
        Dispute.objects.filter(pk=row.pk).update(erp_posted=posted)
    row.refresh_from_db()
    return documents


def _znode_dispute_show(ctx: ActionContext, row: Dispute) -> dict:
    phase = row.outcome or "open"  # the stage Znode is told about
    if phase in row.znode_noted:
        return {"znode": "noted already"}
    order = row.order
    shown = money.format_minor(row.amount_minor, row.currency)
    due = (
        f"; evidence due {row.evidence_due_by:%Y-%m-%d %H:%M} UTC"
        if row.evidence_due_by and phase == "open"
        else ""
    )
    text = {
        "open": f"Stripe dispute {row.stripe_dispute_id} opened on {row.charge_id} for {shown} "
        f"(reason: {row.reason or 'unknown'}){due}. The funds are withheld.",
        "won": f"Stripe dispute {row.stripe_dispute_id} won: {shown} reinstated.",
        "lost": f"Stripe dispute {row.stripe_dispute_id} lost: {shown} went back to the "
        "cardholder.",
        "closed": f"Stripe dispute {row.stripe_dispute_id} closed without a chargeback.",
    }[phase]
    znode_note(ctx, order, note=text, dedupe_key=f"dispute:{row.stripe_dispute_id}:{phase}")
    status = status_or_none(ctx, DISPUTE_STATE_TABLE, phase)
    if status:
        ctx.client("znode").update_payment_status(order_id=order.znode_order_id, status_name=status)
    Dispute.objects.filter(pk=row.pk).update(znode_noted=[*row.znode_noted, phase])
    return {"znode_phase": phase, "payment_status": status}
