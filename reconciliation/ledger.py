"""The ledger, by the clearing-account method (reference stripe.md A7, "Accounting
pattern"): what the platform books, how, and the GL map that names the accounts.

Order-to-cash puts each order's money on the Stripe clearing account as it moves: the
sale debits clearing (credits sales), a refund's credit memo credits it, a dispute's
movement credits (or debits) it net of its fee. Each payout then empties it: its
journal credits clearing with what those entries put there for its transactions,
expenses Stripe's fees by ``fee_details`` type, books the account's own movements
(Stripe's fees, adjustments, ...) by reporting category, and debits the bank with the
payout. Where Stripe settled in another currency than the order's, the payout's side
goes through the FX account, and a conversion entry in the order's currency empties
that currency's clearing.
"""

from __future__ import annotations

from reconciliation.choices import MatchedAs

# Order money whose clearing the payout empties, by reporting category: the key of the
# order-to-cash entry that booked it.
_LINKED_BY_SOURCE = {"charge": "", "refund": "", "refund_failure": "refund_failure:"}
_LINKED_BY_TXN = ("dispute", "dispute_reversal")


def ledger_key_of(
    *, category: str, matched_as: str, txn_id: str, source_id: str, has_order: bool
) -> str:
    """The ledger key of the order-to-cash entry that put a balance transaction's money
    on the clearing account ("" when none did): the charge for a sale, the refund for
    its credit memo, ``refund_failure:`` and the refund for a failed refund's reversal,
    the movement itself (a ``txn_``) for a dispute's."""
    if not has_order or matched_as not in (MatchedAs.CHARGE, MatchedAs.REFUND, MatchedAs.DISPUTE):
        return ""
    if category in _LINKED_BY_SOURCE:
        return _LINKED_BY_SOURCE[category] + source_id if source_id else ""
    if category in _LINKED_BY_TXN:
        return txn_id
    return ""
