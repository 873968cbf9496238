"""Link every existing Znode user to its Stripe customer (``manage.py sync_customers``).

Users are read a page at a time in ``UserId`` order, with their addresses in one
call per page, so a user already in step costs no call of its own. A user whose
profile has not changed since its link last agreed is counted unchanged and left
alone; the others go through the same sync as an event would
(:func:`customers.sync.customer_sync`: find before create, so nothing is duplicated).

The run is resumable: after each user the cursor (:class:`CustomerBackfill`) records
the last ``UserId`` finished, and an interrupted run resumes after it. A user whose
data Stripe cannot take (an invalid email, an unknown country, an address too long)
is filed as a quarantined job of the ``user-updated`` flow with the reason, where an
operator retries it after the data is corrected, like any failed sync.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from django.db import transaction
from django.utils import timezone

from customers.jobs import customer_sync_job_file
from customers.models import CustomerBackfill, CustomerLink
from customers.services import stripe_customer_find
from customers.sync import comparable, customer_standing, customer_sync
from integrations.connectors.stripe import mapping as stripe_facts
from integrations.connectors.znode import mapping as znode_facts
from integrations.kernel import exceptions as exc
from integrations.kernel.facts import profile_fingerprint
from integrations.models import Integration
from integrations.runtime import ServiceContext
from integrations.services.jobs import job_run

logger = logging.getLogger("customers.backfill")

PAGE = 100
# Refusals not about a user's data, one after the other, that stop the run: the cause
# is the account or the platform, and every user would be refused the same way.
REFUSALS_TO_STOP = 20
OUTCOMES = ("linked", "created", "matched", "updated", "unchanged", "quarantined")
# Said only when some are: links found by email only wait for an operator; users a
# running job was syncing are left to it (a job is filed for them).
SOMETIMES = ("unconfirmed", "deferred")
DRY_OUTCOMES = ("would_create", "would_match", "would_update", "unchanged", "invalid")
DRY_SOMETIMES = ("unconfirmed",)


@dataclass(frozen=True)
class BackfillReport:
    counts: dict[str, int]
    resumed_after: int
    """The UserId the run resumed after (0: it started at the beginning)."""
    dry_run: bool


def _pages(
    client, *, since: datetime | None, after: int, on_total: Callable[[int], None]
) -> Iterator[list]:
    """Users a page at a time, each with its address book (one read per page)."""
    rows = client.list_customers(
        since=since, after_user_id=after, page_size=PAGE, on_total=on_total
    )
    while page := list(islice(rows, PAGE)):
        ids = [int(znode_facts.customer_from_wire(row).user_id) for row in page]
        addresses = client.list_addresses(user_ids=ids)
        # customer_from_wire keeps each user's own rows of the shared list.
        yield [znode_facts.customer_from_wire(row, addresses) for row in page]


def _cursor(integration: Integration, since: datetime | None, restart: bool) -> CustomerBackfill:
    now = timezone.now()
    cursor, created = CustomerBackfill.objects.get_or_create(
        integration=integration, defaults={"since": since, "started_at": now}
    )
    if not created and (restart or cursor.finished_at or cursor.since != since):
        cursor.since, cursor.after_user_id, cursor.counts = since, 0, {}
        cursor.started_at, cursor.finished_at = now, None
        cursor.save()
    return cursor


def _quarantine(integration: Integration, customer: znode_facts.ZnodeCustomer) -> None:
    """File the user as a job of the sync flow and run it here: the sync raises the
    data error again and the engine quarantines the job with its reason, so the
    operator retries it like any other once the data is corrected."""
    job = customer_sync_job_file(
        integration=integration,
        user_id=customer.user_id,
        portal_id=customer.portal_id,
        why="backfill",
        enqueue=False,
        max_attempts=1,
        # Quarantined once for this data: a second run files no second job.
        seen=profile_fingerprint(comparable(customer.profile)),
    )
    if job is not None:
        job_run(job_id=job.pk)


def _dry_outcome(ctx: ServiceContext, customer: znode_facts.ZnodeCustomer) -> str:
    if stripe_facts.profile_problems(customer.profile):
        return "invalid"
    linked = CustomerLink.objects.filter(
        integration=ctx.integration, znode_user_id=customer.user_id
    ).exists()
    if linked:
        return "would_update"
    found, _ = stripe_customer_find(ctx, znode_user_id=customer.user_id, email=customer.email)
    return "would_match" if found else "would_create"


def _outcome(ctx: ServiceContext, customer: znode_facts.ZnodeCustomer) -> list[str]:
    try:
        result = customer_sync(ctx, user_id=customer.user_id, znode=customer)
    except exc.PermanentError as error:
        if isinstance(error, exc.Unauthorized):
            raise  # the connection's credentials: every user would fail the same way
        # Data Stripe cannot take, or a write it refuses for good: the user's job is
        # quarantined with the reason and the run goes on with the next user.
        logger.info("customers.backfill.quarantined user=%s code=%s", customer.user_id, error.code)
        _quarantine(ctx.integration, customer)
        return ["quarantined"] if isinstance(error, exc.DataError) else ["quarantined", "refused"]
    except exc.ConflictRetry:  # a job syncs the user right now: after it, once more
        customer_sync_job_file(
            integration=ctx.integration,
            user_id=customer.user_id,
            portal_id=customer.portal_id,
            why="backfill",
        )
        return ["deferred"]
    if result.link_created:
        found = ["linked", "created" if result.stripe_created else "matched"]
        return found + (["unconfirmed"] if result.unconfirmed else [])
    if result.unconfirmed:
        return ["unconfirmed"]
    return ["unchanged"] if result.unchanged else ["updated"]


def customers_backfill(
    *,
    integration: Integration,
    since: datetime | None = None,
    dry_run: bool = False,
    restart: bool = False,
    progress: Callable[[int], None] = lambda n: None,
    total: Callable[[int], None] = lambda n: None,
) -> BackfillReport:
    """Link (and bring in step) every Znode user of ``integration`` modified since
    ``since`` (all when None). ``progress`` is called with the number of users done
    after each one, ``total`` with the number still to do when Znode says it. A dry
    run reads both systems and writes nothing, cursor included."""
    ctx = ServiceContext(integration=integration)
    client = ctx.client("znode")
    counts: Counter[str] = Counter()
    if dry_run:
        for page in _pages(client, since=since, after=0, on_total=total):
            for customer in page:
                standing = customer_standing(integration=integration, znode=customer)
                counts[standing or _dry_outcome(ctx, customer)] += 1
                progress(1)
        return BackfillReport(
            counts={
                **{k: counts[k] for k in DRY_OUTCOMES},
                **{k: counts[k] for k in DRY_SOMETIMES if counts[k]},
            },
            resumed_after=0,
            dry_run=True,
        )
    cursor = _cursor(integration, since, restart)
    ctx.run_key = f"backfill-{cursor.pk}-{cursor.started_at.isoformat()}"
    resumed_after = cursor.after_user_id
    counts.update(cursor.counts)
    refused_in_a_row = 0
    for page in _pages(client, since=since, after=cursor.after_user_id, on_total=total):
        for customer in page:
            standing = customer_standing(integration=integration, znode=customer)
            outcome = [standing] if standing else _outcome(ctx, customer)
            refused_in_a_row = refused_in_a_row + 1 if "refused" in outcome else 0
            counts.update(o for o in outcome if o != "refused")
            with transaction.atomic():
                CustomerBackfill.objects.filter(pk=cursor.pk).update(
                    after_user_id=customer.user_id, counts=dict(counts)
                )
            progress(1)
            if refused_in_a_row >= REFUSALS_TO_STOP:
                raise exc.PermanentError(
                    f"Stripe refused the last {refused_in_a_row} users for reasons not in "
                    "their data (see their quarantined jobs); stopped so as not to file one "
                    "for every user. Fix the cause, then run again to resume"
                )
    CustomerBackfill.objects.filter(pk=cursor.pk).update(
        counts=dict(counts), finished_at=timezone.now()
    )
    return BackfillReport(
        counts={
            **{k: counts[k] for k in OUTCOMES},
            **{k: counts[k] for k in SOMETIMES if counts[k]},
        },
        resumed_after=resumed_after,
        dry_run=False,
    )
