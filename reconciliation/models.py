"""Payouts and their balance transactions, as imported from Stripe and matched to
orders (``services.payout_import``). Amounts are integers in the currency's minor
units, as Stripe counts them; currencies are upper-case ISO 4217 codes."""

from django.db import models
from simple_history.models import HistoricalRecords

from integrations.models import Integration
from payments.models import Order
from reconciliation.choices import Document, EntryKind, LedgerState, MatchedAs, TieOut


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
    bundled = models.BooleanField(
        default=False,
        help_text="A manual payout on an account with automatic payouts: drawn from the "
        "balance the next automatic payout reconciles, which lists its own row (and the "
        "money's return if it failed). It holds no transactions and posts no journal.",
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
        "the note). Pending: not imported to the end yet, or Stripe is not done with it. "
        "Not paid out: Stripe says it failed or was canceled. In an automatic payout: a "
        "manual payout on an account with automatic payouts, tied out by the automatic "
        "payout that lists its own row.",
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
    ledger_state = models.CharField(
        max_length=20,
        choices=LedgerState.choices,
        default=LedgerState.NOT_POSTED,
        help_text="Posted: its journal is in the ERP and the Stripe clearing account nets "
        "to zero for it. Waiting: an order's entry it clears is not posted yet. Refused: "
        "it would not balance or clear (see the ledger note). Not posted: not tied out.",
    )
    ledger_note = models.TextField(
        blank=True, help_text="The ledger's proof for the payout, or why it is not posted."
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ("-arrival_date", "-id")
        permissions = [("export_payout", "Can export payouts and their transactions")]
        # Today's payouts (the dashboard): a range read.
        indexes = [models.Index(fields=["arrival_date"], name="payout_arrival_idx")]
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
        # The unique constraint (integration, stripe_txn_id) leads with it: a second
        # index would only slow the import of a payout's thousands of rows.
        db_index=False,
        help_text="The integration whose Stripe account booked it.",
    )
    payout = models.ForeignKey(
        Payout,
        on_delete=models.PROTECT,
        related_name="transactions",
        # Indexed with the ledger key (Meta.indexes), which serves the payout alone too.
        db_index=False,
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
    cleared_by = models.ForeignKey(
        "JournalEntry",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        # Indexed where set (Meta.indexes): an import writes none, and thousands of rows
        # a payout would each add an entry for NULL to a full index.
        db_index=False,
        help_text="The payout journal that took its money off the Stripe clearing account "
        "(a transaction is cleared once, by one payout).",
    )
    ledger_key = models.CharField(
        max_length=255,
        blank=True,
        help_text="The order-to-cash journal entry that put its money on the Stripe "
        "clearing account (the entry's ledger key: the charge, the refund, the dispute's "
        "movement); empty when no entry of an order's does.",
    )

    class Meta:
        ordering = ("payout", "created", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "stripe_txn_id"], name="balance_txn_unique_stripe_id"
            )
        ]
        indexes = [
            # A payout's keys are read by payout (the ledger's "is this entry one of the
            # payout's?"): one probe per entry, however the planner joins, and however
            # large the table (a key alone is never looked up outside its payout).
            models.Index(fields=["payout", "ledger_key"], name="balance_txn_payout_key"),
            models.Index(
                fields=["cleared_by"],
                name="balance_txn_cleared_by",
                condition=models.Q(cleared_by__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.stripe_txn_id


class GlAccount(models.Model):
    """One line of the GL map: the ledger account a kind of money posts to.

    ``key`` is a Stripe reporting category (charge, refund, dispute, fee, ...), a fee
    type (``fee:stripe_fee``, ``fee:tax``, ...) or a role of the clearing-account
    method (clearing, bank, fx, rounding). A row for one currency wins over the row
    for every currency (currency empty); a row of an integration wins over the rows
    for every integration (``reconciliation.ledger`` documents the fallbacks)."""

    integration = models.ForeignKey(
        Integration,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="gl_accounts",
        help_text="The integration whose entries use it; empty: every integration.",
    )
    key = models.CharField(
        max_length=60,
        help_text="What posts to it: a Stripe reporting category (charge, refund, dispute, "
        "fee, other_adjustment, ...), a fee type (fee:stripe_fee, fee:tax, ...) or a role "
        "(clearing: Stripe clearing; bank: where payouts arrive; fx: currency conversion; "
        "rounding; other: any category without its own row).",
    )
    currency = models.CharField(
        max_length=3,
        blank=True,
        help_text="ISO 4217 code (upper case) of the entries it is for; empty: every currency.",
    )
    account = models.CharField(max_length=60, help_text="The ERP's account number.")
    description = models.CharField(
        max_length=200, blank=True, help_text="What the account is, for finance."
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ("key", "currency", "integration_id")
        verbose_name = "GL account"
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "key", "currency"],
                condition=models.Q(integration__isnull=False),
                name="gl_account_unique_per_integration",
            ),
            models.UniqueConstraint(
                fields=["key", "currency"],
                condition=models.Q(integration__isnull=True),
                name="gl_account_unique_default",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.currency or '*'} → {self.account}"

    def save(self, *args, **kwargs):
        self.currency = self.currency.upper()  # one row per currency, however typed
        super().save(*args, **kwargs)


class JournalEntry(models.Model):
    """A balanced double-entry journal the platform posts to the ERP, kept as posted:
    an order's sale, credit memo or dispute movement, a payout's deposit, its currency
    conversion. ``external_reference`` is its idempotency key in the ERP."""

    integration = models.ForeignKey(
        Integration,
        on_delete=models.PROTECT,
        related_name="journal_entries",
        help_text="The integration that posts it.",
    )
    external_reference = models.CharField(
        max_length=255, help_text="Its key in the ERP: the same document is never posted twice."
    )
    kind = models.CharField(max_length=20, choices=EntryKind.choices, help_text="What it books.")
    document = models.CharField(
        max_length=20,
        choices=Document.choices,
        default=Document.JOURNAL_ENTRY,
        help_text="The ERP document it is posted as.",
    )
    ledger_key = models.CharField(
        max_length=255,
        blank=True,
        db_index=True,
        help_text="What a balance transaction finds it by: the charge of a sale, the "
        "refund of a credit memo, the movement (txn_) of a dispute.",
    )
    date = models.DateField(help_text="Its date in the ledger.")
    currency = models.CharField(max_length=3, help_text="ISO 4217 code of its amounts.")
    memo = models.CharField(max_length=500, blank=True, help_text="What it is, in words.")
    order = models.ForeignKey(
        Order,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The order whose money it books, if one.",
    )
    payout = models.ForeignKey(
        Payout,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="journal_entries",
        help_text="The payout it books, if one.",
    )
    total = models.DecimalField(
        max_digits=19, decimal_places=3, help_text="Its debits (equal to its credits)."
    )
    erp_document_id = models.CharField(
        max_length=255, blank=True, help_text="The ERP's id of the posted document."
    )
    posted_at = models.DateTimeField(
        null=True, blank=True, help_text="When the ERP accepted it (empty: not yet)."
    )
    created_at = models.DateTimeField(
        auto_now_add=True, help_text="When the platform recorded it (before posting)."
    )

    class Meta:
        ordering = ("-date", "-id")
        verbose_name_plural = "journal entries"
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "external_reference"],
                name="journal_entry_unique_reference",
            )
        ]

    def __str__(self) -> str:
        return self.external_reference


class JournalLine(models.Model):
    """A debit or a credit of a journal entry."""

    entry = models.ForeignKey(
        JournalEntry, on_delete=models.CASCADE, related_name="lines", help_text="Its entry."
    )
    position = models.PositiveIntegerField(help_text="Its place in the entry.")
    key = models.CharField(
        max_length=60, help_text="The GL map's key it was posted under (clearing, charge, ...)."
    )
    account = models.CharField(max_length=60, help_text="The ERP's account number.")
    debit = models.DecimalField(max_digits=19, decimal_places=3, default=0)
    credit = models.DecimalField(max_digits=19, decimal_places=3, default=0)
    signed_minor = models.BigIntegerField(
        help_text="Debit minus credit in minor units of the entry's currency (sums in the "
        "database)."
    )
    description = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ("entry", "position")
        indexes = [models.Index(fields=["key", "entry"], name="journal_line_key_entry")]

    def __str__(self) -> str:
        return f"{self.account} {self.debit or -self.credit}"
