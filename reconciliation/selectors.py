"""Reads for reconciliation: the local rows a batch of balance transactions is matched
against, each fetched in one query per batch, and a payout's totals."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Q, Sum

from integrations.models import Integration
from payments.models import Dispute, Order, Payment, Refund
from reconciliation.models import BalanceTransaction, JournalEntry, Payout


def payout_find(*, integration: Integration, stripe_payout_id: str) -> Payout | None:
    return Payout.objects.filter(integration=integration, stripe_payout_id=stripe_payout_id).first()


def payments_by_charge(*, charge_ids: Iterable[str]) -> dict[str, Payment]:
    """Payments (with their order) by charge id, of every integration: money of
    another integration is recognised as such, not as unknown."""
    ids = {c for c in charge_ids if c}
    rows = (
        Payment.objects.filter(charge_id__in=ids)
        .select_related("order__integration")
        .order_by("-id")
    )
    return {p.charge_id: p for p in rows} if ids else {}


def payments_by_intent(*, intent_ids: Iterable[str]) -> dict[str, Payment]:
    ids = {i for i in intent_ids if i}
    rows = Payment.objects.filter(payment_intent_id__in=ids).select_related("order__integration")
    return {p.payment_intent_id: p for p in rows} if ids else {}


def refunds_by_stripe_id(*, refund_ids: Iterable[str]) -> dict[str, Refund]:
    ids = {r for r in refund_ids if r}
    rows = Refund.objects.filter(stripe_refund_id__in=ids).select_related("order__integration")
    return {r.stripe_refund_id: r for r in rows} if ids else {}


def disputes_by_stripe_id(*, dispute_ids: Iterable[str]) -> dict[str, Dispute]:
    ids = {d for d in dispute_ids if d}
    rows = Dispute.objects.filter(stripe_dispute_id__in=ids).select_related("order__integration")
    return {d.stripe_dispute_id: d for d in rows} if ids else {}


def orders_by_number(*, integration: Integration, order_numbers: Iterable[str]) -> dict[str, Order]:
    numbers = {n for n in order_numbers if n}
    # What matching reads of them: a payout's batch names hundreds.
    rows = Order.objects.filter(integration=integration, order_number__in=numbers).only(
        "id", "order_number", "integration_id"
    )
    return {o.order_number: o for o in rows} if numbers else {}


def transaction_payouts(*, integration: Integration, txn_ids: Iterable[str]) -> dict[str, int]:
    """The payout (row id) each already imported transaction belongs to."""
    ids = set(txn_ids)
    rows = BalanceTransaction.objects.filter(integration=integration, stripe_txn_id__in=ids)
    return dict(rows.values_list("stripe_txn_id", "payout_id")) if ids else {}


@dataclass(frozen=True)
class PayoutTotals:
    count: int
    """Every imported transaction, the payout's own row included."""
    lines: int
    """The transactions that make up the payout (its own row left out)."""
    net: int
    """Sum of the lines' nets."""
    explained_net: int
    """Sum of the nets of the lines matched to an order or explained."""
    unexplained: int
    """Lines neither matched nor explained."""
    unexplained_net: int


def payout_totals(*, payout: Payout) -> PayoutTotals:
    """Summed by the database: a payout's rows are never all in memory."""
    rows = BalanceTransaction.objects.filter(payout=payout)
    lines = rows.exclude(type="payout", source_id=payout.stripe_payout_id)
    unexplained = Q(explained=False)
    totals = lines.aggregate(
        lines=Count("id"),
        net=Sum("net_minor"),
        explained_net=Sum("net_minor", filter=Q(explained=True)),
        unexplained=Count("id", filter=unexplained),
        unexplained_net=Sum("net_minor", filter=unexplained),
    )
    # Sums of no rows are None; the aliases are the fields' names.
    return PayoutTotals(count=rows.count(), **{k: v or 0 for k, v in totals.items()})


def payout_unexplained(*, payout: Payout, limit: int = 5) -> list[BalanceTransaction]:
    return list(payout.transactions.filter(explained=False).order_by("created", "id")[:limit])


def payout_reversal(
    *, integration: Integration, payout_id: str, txn_id: str = ""
) -> BalanceTransaction | None:
    """The imported balance transaction that returned a failed or canceled payout's
    money (``txn_id`` where Stripe names it, else the payout_reversal whose source is
    the payout), with the payout that holds it."""
    rows = BalanceTransaction.objects.filter(integration=integration).select_related("payout")
    if txn_id:
        return rows.filter(stripe_txn_id=txn_id).first()
    return (
        rows.filter(source_id=payout_id, type__in=("payout_failure", "payout_cancel"))
        .order_by("id")
        .first()
    )


def erp_shared(*, integration: Integration) -> bool:
    """Other integrations post to the same ERP connection."""
    if integration.erp_id is None:
        return False
    others = Integration.objects.filter(erp_id=integration.erp_id).exclude(pk=integration.pk)
    return others.exists()


def sale_is_ours(*, integration: Integration, charge_id: str, reference: str) -> bool:
    """A sales journal of the ERP is this integration's by its own rows: the charge is
    a payment of its orders, or it posted the journal."""
    if Payment.objects.filter(charge_id=charge_id, order__integration=integration).exists():
        return True
    return JournalEntry.objects.filter(
        integration=integration, external_reference=reference
    ).exists()
