"""The sweeper: the safety net that makes lost wake-ups and dead workers harmless."""

from __future__ import annotations

import logging
from datetime import datetime

from django.utils import timezone

from integrations.services.inbox import inbox_drain
from integrations.services.jobs import jobs_due, jobs_enqueue, jobs_expire_paused, jobs_resume
from integrations.services.stats import tallies_prune

logger = logging.getLogger("integrations.sweeper")


def sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Route events whose nudge was lost, resume paused jobs whose flow and
    integration are enabled again (or discard those paused too long), and enqueue
    every job that is due."""
    now = now or timezone.now()
    routed = inbox_drain(older_than_seconds=5)
    jobs_resume()
    jobs_expire_paused(now=now)
    due = jobs_due(now=now)
    jobs_enqueue(due)
    try:
        tallies_prune(now=now)
    except Exception:  # the dashboard's old counts wait for the next sweep
        logger.exception("integrations.sweeper.prune_failed")
    if routed or due:
        logger.info("integrations.sweeper routed=%s enqueued=%s", routed, len(due))
    return {"routed": routed, "enqueued": len(due)}
