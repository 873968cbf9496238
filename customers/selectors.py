"""Reads of customer links."""

from __future__ import annotations

from django.utils import timezone

from customers.models import TRUSTED_MATCHES, CustomerLink, CustomerSyncLock
from integrations.models import Integration
from integrations.services.jobs import job_running


def stripe_customer_linked(*, integration: Integration, znode_user_id: int | None) -> str:
    """The Stripe customer this integration linked to the Znode user, surely theirs
    (empty: none, or one found by email only that no operator confirmed: a customer
    attached to a payment page shows its saved cards)."""
    if znode_user_id is None:
        return ""
    link = CustomerLink.objects.filter(
        integration=integration, znode_user_id=znode_user_id, matched_by__in=TRUSTED_MATCHES
    ).first()
    return link.stripe_customer_id if link else ""


def customer_sync_running(link: CustomerLink) -> bool:
    """A job is syncing the link's user right now."""
    lock = CustomerSyncLock.objects.filter(
        integration_id=link.integration_id, znode_user_id=link.znode_user_id
    ).first()
    return bool(lock and job_running(lock.job, timezone.now()))
