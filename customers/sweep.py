"""The address-book sweep: a Znode 9.x store announces no address edit.

9.x has no webhooks, and ``customer/addresslist`` filters on the link between an
address and its user (ZnodeUserAddress, reference §6), whose date is the day the
address was added: an edit of an older address changes no date the poller can ask
for. So each run reads the address books of the next ``batch`` linked users of every
integration whose Znode connection is polled, in one call per integration, and
starts a sync job for each user whose default addresses are no longer what both
sides last agreed on. Round and round: with up to 500 linked users an edit is seen at
the next run (one a minute; 3 reads of 200 users), with N users within N / 500 runs.
Znode 10 reports edits by webhook at once.
"""

from __future__ import annotations

from dataclasses import replace

from django.db import transaction
from django.utils import timezone

from customers.jobs import customer_sync_job_file
from customers.models import CustomerLink, CustomerSweep
from customers.services import params_digest
from customers.sync import comparable
from integrations.connectors import registry as connectors
from integrations.connectors.znode import mapping as znode_facts
from integrations.kernel.facts import profile_from_values, profile_values
from integrations.models import Flow, Integration
from integrations.services.jobs import jobs_enqueue

SWEEP_BATCH = 500
SWEEP_FLOW = "address-updated"


def _polled(integration: Integration) -> bool:
    znode = integration.znode
    if znode is None or not znode.enabled:
        return False
    return connectors.get(znode.kind).poll_every_minutes(znode) is not None


def _seen(link: CustomerLink, book: znode_facts.ZnodeCustomer) -> dict:
    """The agreed profile with the default addresses the address book holds now."""
    billing, shipping = book.billing_address, book.shipping_address
    agreed = profile_from_values(link.synced_profile)
    seen = replace(
        agreed,
        billing=billing.address if billing else agreed.billing,
        shipping=shipping.address if shipping else agreed.shipping,
    )
    return profile_values(comparable(seen))


def integration_sweep(integration: Integration, *, batch: int = SWEEP_BATCH) -> list[int]:
    """One run over the next ``batch`` linked users of ``integration``: the ids of the
    sync jobs it started."""
    if not Flow.objects.filter(key=SWEEP_FLOW, enabled=True).exists():
        return []
    cursor, _ = CustomerSweep.objects.get_or_create(integration=integration)
    links = list(
        CustomerLink.objects.filter(
            integration=integration, znode_user_id__gt=cursor.after_user_id
        ).order_by("znode_user_id")[:batch]
    )
    if not links:
        CustomerSweep.objects.filter(pk=cursor.pk).update(after_user_id=0, swept_at=timezone.now())
        return []
    rows = integration.znode.client().list_addresses(
        user_ids=[link.znode_user_id for link in links]
    )
    started: list[int] = []
    with transaction.atomic():
        for link in links:
            if not link.synced_profile:
                continue
            seen = _seen(link, znode_facts.address_book(link.znode_user_id, rows))
            if seen != link.synced_profile:
                job = customer_sync_job_file(
                    integration=integration,
                    user_id=link.znode_user_id,
                    portal_id=link.znode_portal_id,
                    why="sweep",
                    flow_key=SWEEP_FLOW,
                    enqueue=False,
                    seen=params_digest(seen),  # a bad address is quarantined once
                )
                if job is not None:
                    started.append(job.pk)
        CustomerSweep.objects.filter(pk=cursor.pk).update(
            after_user_id=links[-1].znode_user_id, swept_at=timezone.now()
        )
        transaction.on_commit(lambda: jobs_enqueue(started))
    return started


def customers_sweep(*, batch: int = SWEEP_BATCH) -> dict[str, int]:
    """The sweep of every enabled integration whose Znode connection is polled."""
    started = 0
    for integration in Integration.objects.filter(enabled=True).select_related("znode"):
        if _polled(integration):
            started += len(integration_sweep(integration, batch=batch))
    return {"started": started}
