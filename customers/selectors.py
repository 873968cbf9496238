"""Reads of customer links."""

from __future__ import annotations

from customers.models import CustomerLink
from integrations.models import Integration


def stripe_customer_linked(*, integration: Integration, znode_user_id: int | None) -> str:
    """The Stripe customer this integration linked to the Znode user (empty: none)."""
    if znode_user_id is None:
        return ""
    link = CustomerLink.objects.filter(integration=integration, znode_user_id=znode_user_id).first()
    return link.stripe_customer_id if link else ""
