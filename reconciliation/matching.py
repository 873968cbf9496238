"""Each balance transaction of a payout tied to its Znode order, or explained.

A batch is matched at once: the local rows it may belong to (payments by charge and by
PaymentIntent, refunds, disputes, orders by number) are read in one query each. What
the rows cannot place is read from the metadata we put on every Stripe object
(``znode_order_number``, ``integration``): the source's PaymentIntent's, else the
source's own, else its charge's, as far as the list expanded them
(``BALANCE_TRANSACTION_EXPAND``). Only a line nothing local places whose metadata the
list did not hold is read again, object by object; expanded to the PaymentIntent and
the charge, a payout of any size makes no call per line.

Only metadata naming this integration is ours. Metadata naming another integration is
that integration's money (explained). Metadata naming an order but no integration is
not taken as ours: order numbers are a store's, and two stores on one Stripe account
may share them. Such a line is unexplained with that reason, unless our own rows (a
payment, refund or dispute of ours by its charge, PaymentIntent or source) place it.

What a transaction is comes from its ``reporting_category`` (reference stripe.md A7:
better for accounting than ``type``), dispatched by table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from integrations.connectors.stripe.mapping import (
    OrderReference,
    StripeBalanceTransaction,
    order_reference_from_wire,
)
from integrations.models import Integration
from payments.models import Order
from reconciliation import selectors
from reconciliation.choices import MatchedAs


@dataclass(frozen=True)
class Match:
    matched_as: str
    order_id: int | None = None
    """The order (row id) whose money it is: one of this integration's."""
    explained: bool = False
    reason: str = ""


# Money of an order, by reporting category: what it is, and how its own row is found.
ORDER_MONEY: dict[str, str] = {
    "charge": MatchedAs.CHARGE,
    "charge_failure": MatchedAs.CHARGE,
    "partial_capture_reversal": MatchedAs.CHARGE,
    "refund": MatchedAs.REFUND,
    "refund_failure": MatchedAs.REFUND,
    "dispute": MatchedAs.DISPUTE,
    "dispute_reversal": MatchedAs.DISPUTE,
}

# Money of no order, by reporting category, and why.
EXPLAINED: dict[str, tuple[str, str]] = {
    "fee": (MatchedAs.FEE, "a fee Stripe charged the account, not an order's"),
    "network_cost": (MatchedAs.FEE, "card network costs Stripe passed on to the account"),
    "tax": (MatchedAs.FEE, "tax on Stripe's fees"),
    "other_adjustment": (MatchedAs.OTHER, "an adjustment Stripe made to the balance"),
    "transfer": (MatchedAs.OTHER, "a transfer (Connect), not an order's money"),
    "transfer_reversal": (MatchedAs.OTHER, "a reversed transfer (Connect)"),
    "topup": (MatchedAs.OTHER, "a top-up of the balance from the bank"),
    "topup_reversal": (MatchedAs.OTHER, "a reversed top-up"),
    "risk_reserved_funds": (MatchedAs.OTHER, "funds Stripe held in or released from reserve"),
    "platform_earning": (MatchedAs.OTHER, "application fees earned (Connect)"),
    "platform_earning_refund": (MatchedAs.OTHER, "application fees refunded (Connect)"),
    "payout": (MatchedAs.PAYOUT, "another payout's own row"),
    "payout_reversal": (MatchedAs.PAYOUT, "a failed or canceled payout's money back"),
}

# Reasons that name the transaction's source, by reporting category.
EXPLAINED_BY_SOURCE: dict[str, str] = {
    "payout_reversal": "payout {source} failed or was canceled: its money came back to the "
    "balance (reporting category payout_reversal), to be paid out again",
    "payout": "another payout's own row ({source})",
}

# A transaction without a reporting category, by its type.
CATEGORY_OF_TYPE: dict[str, str] = {
    "charge": "charge",
    "payment": "charge",
    "refund": "refund",
    "payment_refund": "refund",
    "refund_failure": "refund_failure",
    "payment_failure_refund": "refund_failure",
    "payout": "payout",
    "payout_cancel": "payout_reversal",
    "payout_failure": "payout_reversal",
    "stripe_fee": "fee",
    "stripe_fx_fee": "fee",
    "tax_fee": "tax",
    "transfer": "transfer",
    "topup": "topup",
    "reserve_hold": "risk_reserved_funds",
    "reserve_release": "risk_reserved_funds",
    "application_fee": "platform_earning",
}

OWN_ROW = "the payout itself: the balance moving to the bank"


def category_of(txn: StripeBalanceTransaction) -> str:
    if txn.reporting_category:
        return txn.reporting_category
    if txn.type == "adjustment":
        return "dispute" if txn.source_type == "dispute" else "other_adjustment"
    return CATEGORY_OF_TYPE.get(txn.type, "")


def is_own_row(txn: StripeBalanceTransaction, payout_id: str) -> bool:
    return txn.type == "payout" and txn.source_id == payout_id


@dataclass
class _Local:
    """The batch's local rows, one query each."""

    by_charge: dict
    by_intent: dict
    refunds: dict
    disputes: dict

    @classmethod
    def load(cls, txns: Sequence[StripeBalanceTransaction]) -> _Local:
        def sources(kind: str) -> list[str]:
            return [t.source_id for t in txns if t.source_type == kind]

        by_charge, by_intent = selectors.payments_by_charge_and_intent(
            charge_ids=(t.charge_id for t in txns), intent_ids=(t.payment_intent_id for t in txns)
        )
        return cls(
            by_charge=by_charge,
            by_intent=by_intent,
            refunds=selectors.refunds_by_stripe_id(refund_ids=sources("refund")),
            disputes=selectors.disputes_by_stripe_id(dispute_ids=sources("dispute")),
        )

    def order_of(self, txn: StripeBalanceTransaction) -> tuple[Order | None, str]:
        """The order a local row gives, and how it was found."""
        source = self.refunds.get(txn.source_id) or self.disputes.get(txn.source_id)
        if source is not None:
            return source.order, f"{txn.source_type} {txn.source_id}"
        for found, label in (
            (self.by_charge.get(txn.charge_id), f"charge {txn.charge_id}"),
            (self.by_intent.get(txn.payment_intent_id), f"PaymentIntent {txn.payment_intent_id}"),
        ):
            if found is not None:
                return found.order, label
        return None, ""


Fetch = Callable[[str], Any]
"""Reads one Stripe object (a PaymentIntent or a charge) by id."""


def _remote_reference(txn: StripeBalanceTransaction, gateway: Any) -> OrderReference:
    """Our metadata on the PaymentIntent, else on the charge, read from Stripe: only for
    a line nothing local places whose list Stripe did not expand that far."""
    reads: list[tuple[str, Fetch]] = []
    if txn.payment_intent_id:
        reads.append((txn.payment_intent_id, gateway.payment_intent_retrieve))
    if txn.charge_id and txn.charge_id != txn.source_id:
        reads.append((txn.charge_id, gateway.charge_retrieve))
    for object_id, fetch in reads:
        reference = order_reference_from_wire(fetch(object_id))
        if reference.named:
            return reference
    return OrderReference()


def transactions_match(
    *,
    integration: Integration,
    payout_id: str,
    txns: Sequence[StripeBalanceTransaction],
    gateway: Any,
) -> list[Match]:
    """A match for each of ``txns``, in order."""
    local = _Local.load(txns)
    found: list[tuple[Order | None, str, OrderReference]] = []
    for txn in txns:
        order, how = (None, "")
        reference = OrderReference()
        if category_of(txn) in ORDER_MONEY:
            order, how = local.order_of(txn)
            if order is None:
                reference = txn.reference
                if not reference.named and not txn.reference_read:
                    reference = _remote_reference(txn, gateway)
        found.append((order, how, reference))
    # Orders named by our metadata, and by metadata naming no integration (said in the
    # reason, never matched).
    numbers = {ref.order_number for _, _, ref in found if ref.integration in ("", integration.name)}
    orders = selectors.order_ids_by_number(integration=integration, order_numbers=numbers)
    return [
        _match(txn, integration, payout_id, order, how, reference, orders)
        for txn, (order, how, reference) in zip(txns, found, strict=True)
    ]


def _match(
    txn: StripeBalanceTransaction,
    integration: Integration,
    payout_id: str,
    order: Order | None,
    how: str,
    reference: OrderReference,
    orders: dict[str, int],
) -> Match:
    if is_own_row(txn, payout_id):
        return Match(MatchedAs.PAYOUT, explained=True, reason=OWN_ROW)
    category = category_of(txn)
    kind = ORDER_MONEY.get(category)
    if kind is None:
        matched_as, why = EXPLAINED.get(category, (MatchedAs.OTHER, ""))
        if category in EXPLAINED_BY_SOURCE and txn.source_id:
            why = EXPLAINED_BY_SOURCE[category].format(source=txn.source_id)
        if why:
            return Match(matched_as, explained=True, reason=why)
        return Match(
            MatchedAs.OTHER,
            reason=f"unexplained: Stripe {txn.type or 'transaction'} of reporting category "
            f"{category or 'none'} that no rule here accounts for",
        )
    if order is not None:
        if order.integration_id == integration.pk:
            return Match(kind, order_id=order.pk, explained=True)
        return Match(
            kind,
            explained=True,
            reason=f"another integration's money: {how} pays order {order.order_number} "
            f"of integration {order.integration.name}",
        )
    if reference.integration and reference.integration != integration.name:
        return Match(
            kind,
            explained=True,
            reason=f"another integration's money: its metadata names integration "
            f"{reference.integration}"
            + (f", order {reference.order_number}" if reference.order_number else ""),
        )
    number = reference.order_number
    if number and not reference.integration:
        known = (
            f"order {number} is ours, but no payment, refund or dispute of ours is this "
            "money: if it is that order's, record its payment"
            if number in orders
            else f"no order {number} is known here"
        )
        return Match(
            kind,
            reason=f"unexplained: its metadata names order {number} but no integration, so "
            f"it may be another integration's money (only metadata naming integration "
            f"{integration.name} is ours); {known}",
        )
    if number:
        matched = orders.get(number)
        if matched is not None:
            return Match(kind, order_id=matched, explained=True)
        return Match(
            kind,
            reason=f"unexplained: order {number} named in its metadata is not known here",
        )
    named = ", ".join(
        f"{label} {value}"
        for label, value in (
            (txn.source_type or "source", txn.source_id),
            ("charge", txn.charge_id if txn.charge_id != txn.source_id else ""),
            ("PaymentIntent", txn.payment_intent_id),
        )
        if value
    )
    return Match(
        kind,
        reason=f"unexplained: no payment, refund or dispute here and no order in the "
        f"metadata of {named or 'its source'}",
    )
