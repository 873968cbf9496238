"""Links between Znode users and Stripe customers."""

from django.db import models
from simple_history.models import HistoricalRecords

from integrations.models import Integration


class CustomerLink(models.Model):
    """One Znode user ⇄ one Stripe customer, per integration."""

    integration = models.ForeignKey(Integration, on_delete=models.PROTECT, related_name="+")
    znode_user_id = models.BigIntegerField(help_text="Znode UserId.")
    znode_portal_id = models.IntegerField(
        null=True, blank=True, help_text="Znode PortalId (store) the user belongs to."
    )
    stripe_customer_id = models.CharField(max_length=255, help_text="Stripe cus_… id.")
    email = models.EmailField(max_length=512, blank=True, help_text="Email when last synced.")
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
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
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
