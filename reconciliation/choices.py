"""Vocabularies of the reconciliation rows."""

from django.db import models


class TieOut(models.TextChoices):
    PENDING = "pending", "pending"
    TIED_OUT = "tied_out", "tied out"
    DISCREPANCY = "discrepancy", "discrepancy"
    NOT_PAID_OUT = "not_paid_out", "not paid out"
    # A manual payout on an account with automatic payouts: the next automatic payout
    # lists its own row with the transactions it drew on, and ties it out there.
    IN_AUTOMATIC = "in_automatic", "in an automatic payout"


class MatchedAs(models.TextChoices):
    """What a balance transaction is, for the tie-out."""

    CHARGE = "charge", "charge"
    REFUND = "refund", "refund"
    DISPUTE = "dispute", "dispute"
    PAYOUT = "payout", "payout"
    FEE = "fee", "fee"
    OTHER = "other", "other"


class LedgerState(models.TextChoices):
    """Where a payout's journal is: the ledger side of its tie-out."""

    NOT_POSTED = "not_posted", "not posted"
    WAITING = "waiting", "waiting"
    POSTED = "posted", "posted"
    REFUSED = "refused", "refused"


class EntryKind(models.TextChoices):
    """What a journal entry of the ledger books."""

    SALE = "sale", "sale"
    CREDIT_MEMO = "credit_memo", "credit memo"
    REFUND_FAILURE = "refund_failure", "failed refund"
    DISPUTE = "dispute", "dispute"
    PAYOUT = "payout", "payout"
    FX = "fx", "currency conversion"


class Document(models.TextChoices):
    """The ERP document an entry is posted as."""

    JOURNAL_ENTRY = "journal_entry", "journal entry"
    CREDIT_MEMO = "credit_memo", "credit memo"
