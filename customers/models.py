"""Links between Znode users and Stripe customers."""

from django.db import models

from integrations.models import Integration


class CustomerLink(models.Model):
    """One Znode user ⇄ one Stripe customer, per integration."""

    integration = models.ForeignKey(Integration, on_delete=models.PROTECT, related_name="+")
    znode_user_id = models.BigIntegerField(help_text="Znode UserId.")
    stripe_customer_id = models.CharField(max_length=255, help_text="Stripe cus_… id.")
    email = models.EmailField(max_length=512, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

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
