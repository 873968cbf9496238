"""Links between Znode users and Stripe customers."""

from django.db import models
from simple_history.models import HistoricalRecords

from integrations.models import Integration


class MatchedBy(models.TextChoices):
    CREATED = "created", "created by the platform"
    METADATA = "metadata", "found by our metadata"
    EMAIL = "email", "found by email only (not trusted for saved cards)"
    CONFIRMED = "confirmed", "found by email, confirmed by an operator"


TRUSTED_MATCHES = (MatchedBy.CREATED, MatchedBy.METADATA, MatchedBy.CONFIRMED)


class CustomerLink(models.Model):
    """One Znode user ⇄ one Stripe customer, per integration."""

    integration = models.ForeignKey(
        Integration,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The integration whose Znode store and Stripe account it links.",
    )
    znode_user_id = models.BigIntegerField(help_text="Znode UserId.")
    znode_portal_id = models.IntegerField(
        null=True, blank=True, help_text="Znode PortalId (store) the user belongs to."
    )
    stripe_customer_id = models.CharField(max_length=255, help_text="Stripe cus_… id.")
    email = models.EmailField(max_length=512, blank=True, help_text="Email when last synced.")
    matched_by = models.CharField(
        max_length=10,
        choices=MatchedBy.choices,
        default=MatchedBy.CREATED,
        help_text="How the Stripe customer was found. Anyone can type an email into a "
        "store: a customer found by email only is never charged with its saved cards, nor "
        "given our metadata, until an operator confirms the match.",
    )
    znode_fingerprint = models.CharField(
        max_length=64,
        blank=True,
        help_text="Hash of the profile as last written to or read from Znode: an update "
        "carrying it again only echoes our own write.",
    )
    stripe_fingerprint = models.CharField(
        max_length=64,
        blank=True,
        help_text="Hash of the profile as last written to or read from Stripe.",
    )
    znode_synced_at = models.DateTimeField(
        null=True, blank=True, help_text="When the Znode side was last brought in step."
    )
    stripe_synced_at = models.DateTimeField(
        null=True, blank=True, help_text="When the Stripe side was last brought in step."
    )
    synced_profile = models.JSONField(
        default=dict,
        blank=True,
        help_text="The profile both sides last agreed on (normalized): a side whose field "
        "differs from it changed that field since; both changed it is a conflict.",
    )
    stripe_changed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the newest Stripe change seen happened (its event's time): the "
        "'newest' ownership rule compares it with Znode's modified date.",
    )
    cards_synced_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the saved cards were last read from Stripe (empty: not yet; the "
        "next sync of a trusted link reads the cards saved before it was linked).",
    )
    created_at = models.DateTimeField(auto_now_add=True, help_text="When the link was made.")
    updated_at = models.DateTimeField(auto_now=True, help_text="When the link was last saved.")
    history = HistoricalRecords(excluded_fields=["cards_synced_at"])

    class Meta:
        permissions = [("confirm_customerlink", "Can confirm a customer matched by email")]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "znode_user_id"], name="customerlink_unique_user"
            ),
            models.UniqueConstraint(
                fields=["integration", "stripe_customer_id"], name="customerlink_unique_customer"
            ),
        ]

    def __str__(self) -> str:
        return f"Znode user {self.znode_user_id} ⇄ {self.stripe_customer_id}"

    @property
    def trusted(self) -> bool:
        """The Stripe customer is this user's for sure (ours, or confirmed)."""
        return self.matched_by in TRUSTED_MATCHES


class SavedCard(models.Model):
    """A card saved on the linked Stripe customer, as Stripe last listed it."""

    link = models.ForeignKey(CustomerLink, on_delete=models.CASCADE, related_name="cards")
    stripe_payment_method_id = models.CharField(max_length=255, help_text="Stripe pm_… id.")
    brand = models.CharField(max_length=40, blank=True, help_text="Card brand (visa, amex…).")
    last4 = models.CharField(max_length=4, blank=True, help_text="Last four digits.")
    exp_month = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Expiry month.")
    exp_year = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Expiry year.")
    is_default = models.BooleanField(
        default=False, help_text="The customer's default payment method in Stripe."
    )
    updated_at = models.DateTimeField(auto_now=True, help_text="When Stripe last listed it.")

    class Meta:
        ordering = ["-is_default", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["link", "stripe_payment_method_id"], name="savedcard_unique_method"
            )
        ]

    def __str__(self) -> str:
        expiry = (
            f" {self.exp_month:02d}/{self.exp_year}" if self.exp_month and self.exp_year else ""
        )
        return f"{self.brand or 'card'} •••• {self.last4}{expiry}"


class ConflictRule(models.TextChoices):
    OWNER = "owner", "the field's owner"
    NEWEST = "newest", "the newest change"


class CustomerConflict(models.Model):
    """Both sides changed one field of a customer since they last agreed: which value
    won, and by which rule. Listed for an operator, who may set it right by hand."""

    link = models.ForeignKey(
        CustomerLink,
        on_delete=models.SET_NULL,
        null=True,
        related_name="conflicts",
        help_text="The customer (empty once an operator unlinked it; the conflict stays).",
    )
    field = models.CharField(max_length=40, help_text="Profile field (email, billing_address…).")
    base_value = models.JSONField(null=True, blank=True, help_text="What both last agreed on.")
    znode_value = models.JSONField(null=True, blank=True, help_text="Znode's value.")
    stripe_value = models.JSONField(null=True, blank=True, help_text="Stripe's value.")
    winner = models.CharField(max_length=10, help_text="The side whose value was kept.")
    rule = models.CharField(
        max_length=10, choices=ConflictRule.choices, help_text="Why that side won."
    )
    job = models.ForeignKey(
        "integrations.Job",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The sync job that met the conflict (none: the backfill).",
    )
    created_at = models.DateTimeField(auto_now_add=True, help_text="When the conflict was met.")
    reviewed_at = models.DateTimeField(
        null=True, blank=True, help_text="When an operator marked it reviewed."
    )
    reviewed_by = models.CharField(
        max_length=150, blank=True, help_text="The operator who reviewed it."
    )

    class Meta:
        ordering = ["-created_at"]
        permissions = [("review_customerconflict", "Can mark customer conflicts reviewed")]
        constraints = [
            models.UniqueConstraint(
                fields=["link", "field", "job"], name="customerconflict_once_per_job"
            )
        ]

    def __str__(self) -> str:
        who = f"Znode user {self.link.znode_user_id}" if self.link else "an unlinked customer"
        return f"{self.field} of {who}: {self.winner} won"


class CustomerBackfill(models.Model):
    """Where ``manage.py sync_customers`` stands for an integration: a run resumes
    after the last Znode user it finished; a finished run starts the next one over."""

    integration = models.OneToOneField(
        Integration, on_delete=models.CASCADE, related_name="+", help_text="Integration."
    )
    since = models.DateTimeField(
        null=True, blank=True, help_text="Only users modified since (--since); empty: all."
    )
    after_user_id = models.BigIntegerField(
        default=0, help_text="The last Znode UserId finished: a resumed run starts after it."
    )
    counts = models.JSONField(default=dict, blank=True, help_text="Totals of this run so far.")
    started_at = models.DateTimeField(help_text="When this run started.")
    finished_at = models.DateTimeField(
        null=True, blank=True, help_text="When this run finished (empty: it can resume)."
    )

    def __str__(self) -> str:
        return f"customer backfill of {self.integration}"


class CustomerSweep(models.Model):
    """Where the address-book sweep stands for an integration: each run reads the
    address books of the next linked users after ``after_user_id``, round and round."""

    integration = models.OneToOneField(
        Integration, on_delete=models.CASCADE, related_name="+", help_text="Integration."
    )
    after_user_id = models.BigIntegerField(
        default=0, help_text="The last linked Znode UserId swept: the next run starts after it."
    )
    swept_at = models.DateTimeField(null=True, blank=True, help_text="When the last run ran.")

    def __str__(self) -> str:
        return f"address-book sweep of {self.integration}"


class CustomerSyncLock(models.Model):
    """One job at a time syncs a Znode user, linked yet or not (a Znode save raises a
    user and an address event at once): the job holding it."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="+")
    znode_user_id = models.BigIntegerField(help_text="Znode UserId.")
    job = models.BigIntegerField(
        null=True, blank=True, help_text="The job syncing this user right now."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "znode_user_id"], name="customersynclock_unique_user"
            )
        ]

    def __str__(self) -> str:
        return f"sync of Znode user {self.znode_user_id}"


class RejectedCustomer(models.Model):
    """A Stripe customer an operator unlinked from a Znode user: never found for that
    user again (our metadata may still name them, or the email still match)."""

    integration = models.ForeignKey(
        Integration,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="The integration it was unlinked in.",
    )
    znode_user_id = models.BigIntegerField(help_text="Znode UserId.")
    stripe_customer_id = models.CharField(max_length=255, help_text="Stripe cus_… id.")
    rejected_by = models.CharField(max_length=150, blank=True, help_text="The operator.")
    created_at = models.DateTimeField(auto_now_add=True, help_text="When the operator unlinked it.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "znode_user_id", "stripe_customer_id"],
                name="rejectedcustomer_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.stripe_customer_id} is not Znode user {self.znode_user_id}"
