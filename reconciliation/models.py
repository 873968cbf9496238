"""Payouts and their balance transactions, as imported from Stripe and matched to
orders (``services.payout_import``). Amounts are integers in the currency's minor
units, as Stripe counts them; currencies are upper-case ISO 4217 codes."""

from django.db import models
from simple_history.models import HistoricalRecords

from integrations.models import Integration
from payments.models import Order
from reconciliation.choices import MatchedAs, TieOut


class Payout(models.Model):
    """One Stripe payout to the bank and whether its transactions add up to it."""

    integration = models.ForeignKey(
        Integration,
        on_delete=models.PROTECT,
        related_name="payouts",
        help_text="The integration whose Stripe account paid it out.",
    )
    stripe_payout_id = models.CharField(max_length=255, help_text="Stripe's payout id (po_…).")
    amount_minor = models.BigIntegerField(
        help_text="What Stripe paid to the bank, in the currency's minor units."
    )
    currency = models.CharField(max_length=3, help_text="ISO 4217 code of the payout.")
    status = models.CharField(
        max_length=20, help_text="Stripe's status: pending, in_transit, paid, failed, canceled."
    )
    automatic = models.BooleanField(
        default=True,
        help_text="Made by Stripe's payout schedule. Only these are itemised by Stripe; a "
        "manual payout is reconciled from the balance history by date range.",
    )
    arrival_date = models.DateTimeField(
        null=True, blank=True, help_text="When Stripe expects the money at the bank."
    )
    stripe_created = models.DateTimeField(
        null=True, blank=True, help_text="When Stripe created the payout."
    )
    tie_out = models.CharField(
        max_length=20,
        choices=TieOut.choices,
        default=TieOut.PENDING,
        help_text="Tied out: the nets of its matched or explained transactions add up to "
        "the amount and none is unexplained. Discrepancy: they do not (see the amount and "
        "the note). Pending: not imported to the end yet, or Stripe is not done with it.",
    )
    discrepancy_minor = models.BigIntegerField(
        default=0,
        help_text="The payout amount minus the nets of its matched or explained "
        "transactions (minor units): what is unaccounted for.",
    )
    transactions_net_minor = models.BigIntegerField(
        default=0,
        help_text="Sum of the nets of its transactions, the payout's own row left out.",
    )
    transaction_count = models.PositiveIntegerField(
        default=0, help_text="Its balance transactions imported, the payout's own row included."
    )
    unexplained_count = models.PositiveIntegerField(
        default=0, help_text="Transactions neither matched to an order nor explained."
    )
    note = models.TextField(
        blank=True, help_text="How it was reconciled and why it does not tie out, if so."
    )
    imported_at = models.DateTimeField(
        null=True, blank=True, help_text="When its transactions were last imported."
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ("-arrival_date", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "stripe_payout_id"], name="payout_unique_stripe_id"
            )
        ]

    def __str__(self) -> str:
        return self.stripe_payout_id


class BalanceTransaction(models.Model):
    """One Stripe balance transaction of a payout, matched to its order or explained."""

    integration = models.ForeignKey(
        Integration,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The integration whose Stripe account booked it.",
    )
    payout = models.ForeignKey(
        Payout,
        on_delete=models.PROTECT,
        related_name="transactions",
        help_text="The payout that took its money to the bank.",
    )
    stripe_txn_id = models.CharField(max_length=255, help_text="Stripe's id (txn_…).")
    type = models.CharField(
        max_length=50, help_text="Stripe's type: charge, refund, adjustment, payout, stripe_fee…"
    )
    reporting_category = models.CharField(
        max_length=50,
        blank=True,
        help_text="Stripe's reporting category: charge, refund, dispute, fee, payout…",
    )
    gross_minor = models.BigIntegerField(
        help_text="Stripe's amount: gross, signed, in minor units of the currency."
    )
    fee_minor = models.BigIntegerField(help_text="Stripe's fee, positive when charged.")
    net_minor = models.BigIntegerField(help_text="Gross minus fee: what reached the balance.")
    currency = models.CharField(max_length=3, help_text="ISO 4217 settlement currency.")
    exchange_rate = models.DecimalField(
        max_digits=24,
        decimal_places=12,
        null=True,
        blank=True,
        help_text="Stripe's rate from the presentment currency, when it differed.",
    )
    fee_details = models.JSONField(
        default=list,
        blank=True,
        help_text="The fee split by type: [{type, amount (minor units), currency}].",
    )
    source_id = models.CharField(
        max_length=255, blank=True, help_text="What caused it: a charge, refund, dispute, payout…"
    )
    source_type = models.CharField(
        max_length=50, blank=True, help_text="The kind of its source (charge, refund, dispute…)."
    )
    available_on = models.DateTimeField(
        null=True, blank=True, help_text="When Stripe made its funds available."
    )
    created = models.DateTimeField(null=True, blank=True, help_text="When Stripe booked it.")
    order = models.ForeignKey(
        Order,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The Znode order whose money it is (empty: see the reason).",
    )
    matched_as = models.CharField(
        max_length=20,
        choices=MatchedAs.choices,
        default=MatchedAs.OTHER,
        help_text="What it is to the tie-out: an order's charge, refund or dispute, the "
        "payout itself, a fee of the account, or other money.",
    )
    explained = models.BooleanField(
        default=False,
        help_text="Matched to an order, or accounted for with a reason. An unexplained "
        "transaction makes the payout a discrepancy.",
    )
    unmatched_reason = models.TextField(
        blank=True, help_text="Why it has no order: what it is, or what could not be found."
    )

    class Meta:
        ordering = ("payout", "created", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "stripe_txn_id"], name="balance_txn_unique_stripe_id"
            )
        ]

    def __str__(self) -> str:
        return self.stripe_txn_id
