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


# What matching reads of a payment's, refund's or dispute's order: only these columns
# are selected (a payment row and its order and integration hold dozens, compiled and
# decoded for every batch of a payout). The rows returned are deferred otherwise: a
# caller reading another field makes a query per row.
_ORDER_OF = (
    "order__id",
    "order__integration_id",
    "order__order_number",
    "order__integration__name",
)


def payments_by_charge_and_intent(
    *, charge_ids: Iterable[str], intent_ids: Iterable[str]
) -> tuple[dict[str, Payment], dict[str, Payment]]:
    """Payments (with their order) by charge id, and by PaymentIntent id, in one query,
    of every integration: money of another integration is recognised as such, not as
    unknown. Of two payments of one charge, the first made."""
    charges = {c for c in charge_ids if c}
    intents = {i for i in intent_ids if i}
    by_charge: dict[str, Payment] = {}
    by_intent: dict[str, Payment] = {}
    if not charges and not intents:
        return by_charge, by_intent
    rows = (
        Payment.objects.filter(Q(charge_id__any_of=charges) | Q(payment_intent_id__any_of=intents))
        .select_related("order__integration")
        .only("charge_id", "payment_intent_id", *_ORDER_OF)
        .order_by("-id")
    )
    for payment in rows:
        if payment.charge_id in charges:
            by_charge[payment.charge_id] = payment
        if payment.payment_intent_id in intents:
            by_intent[payment.payment_intent_id] = payment
    return by_charge, by_intent


def refunds_by_stripe_id(*, refund_ids: Iterable[str]) -> dict[str, Refund]:
    ids = {r for r in refund_ids if r}
    rows = (
        Refund.objects.filter(stripe_refund_id__any_of=ids)
        .select_related("order__integration")
        .only("stripe_refund_id", *_ORDER_OF)
    )
    return {r.stripe_refund_id: r for r in rows} if ids else {}


def disputes_by_stripe_id(*, dispute_ids: Iterable[str]) -> dict[str, Dispute]:
    ids = {d for d in dispute_ids if d}
    rows = (
        Dispute.objects.filter(stripe_dispute_id__any_of=ids)
        .select_related("order__integration")
        .only("stripe_dispute_id", *_ORDER_OF)
    )
    return {d.stripe_dispute_id: d for d in rows} if ids else {}


def order_ids_by_number(
    *, integration: Integration, order_numbers: Iterable[str]
) -> dict[str, int]:
    """The integration's orders (row ids) by number: what matching needs of the orders a
    payout's metadata names, hundreds a batch."""
    numbers = {n for n in order_numbers if n}
    rows = Order.objects.filter(integration=integration, order_number__any_of=numbers)
    return dict(rows.values_list("order_number", "id")) if numbers else {}


def transaction_payouts(*, integration: Integration, txn_ids: Iterable[str]) -> dict[str, int]:
    """The payout (row id) each already imported transaction belongs to."""
    ids = set(txn_ids)
    rows = BalanceTransaction.objects.filter(integration=integration, stripe_txn_id__any_of=ids)
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
