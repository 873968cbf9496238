"""The ledger's names for the documents the platform posts to the ERP: each is the
document's external reference (its idempotency key there), and what the drift check
looks for."""

from __future__ import annotations


def sale_reference(charge_id: str) -> str:
    """The sales journal entry of a Stripe charge's money."""
    return f"sale:{charge_id}"


def credit_memo_reference(refund_id: str) -> str:
    """The credit memo of a Stripe refund."""
    return f"refund:{refund_id}"


def charge_of_sale(reference: str) -> str:
    """The charge a sales journal entry's reference names ("" for another document)."""
    kind, _, charge = reference.partition(":")
    return charge if kind == "sale" and charge else ""
