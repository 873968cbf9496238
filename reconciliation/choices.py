"""Vocabularies of the reconciliation rows."""

from django.db import models


class TieOut(models.TextChoices):
    PENDING = "pending", "pending"
    TIED_OUT = "tied_out", "tied out"
    DISCREPANCY = "discrepancy", "discrepancy"


class MatchedAs(models.TextChoices):
    """What a balance transaction is, for the tie-out."""

    CHARGE = "charge", "charge"
    REFUND = "refund", "refund"
    DISPUTE = "dispute", "dispute"
    PAYOUT = "payout", "payout"
    FEE = "fee", "fee"
    OTHER = "other", "other"
