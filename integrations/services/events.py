"""An inbound event's status, decided here and nowhere else.

Intake stores an event as *received*, or as *ignored* when its type is none we
handle (:func:`event_intake_status`; an operator's replay enters as received too).
From then on every change of status is :func:`event_settle`, called when routing is
done and after every change of one of the event's jobs:

- routing raised → *failed*, "could not route: …" (the sweeper does not retry it;
  a redelivery or a replay does);
- the change it reports was routed already → *duplicate*, pointing at the event it
  repeats, kept as evidence;
- it has jobs → from their statuses: *processed* when each succeeded or was
  discarded, *failed* when one is quarantined and none is still to run, *waiting*
  when the only ones still to run are paused (their flow or integration is
  disabled; they run when it is enabled again, see ``services/jobs.py``),
  *processing* otherwise;
- routed, and no job → *ignored*, saying why.

An operator may skip an event that is received, waiting or failed
(:func:`event_skip`: its unfinished jobs are discarded, the event is *ignored* with
who and why), or replay it (``inbox.event_replay``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from integrations.choices import EventStatus, JobStatus
from integrations.kernel.exceptions import DataError
from integrations.kernel.jsonutil import db_text
from integrations.models import InboundEvent, Job

logger = logging.getLogger("integrations.events")

ACTIVE = frozenset({JobStatus.PENDING, JobStatus.RUNNING, JobStatus.RETRYING})
FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.DISCARDED})


@dataclass(frozen=True)
class Routed:
    """What routing made of an event, for :func:`event_settle`."""

    reason: str = ""
    """Why it made no job (no integration, an unreadable body, no flow), or why it
    is a duplicate."""
    duplicate_of: int | None = None
    """The event whose change this one repeats."""
    failure: str = ""
    """Routing raised this error."""


def event_intake_status(*, known: bool, event_type: str) -> tuple[str, str]:
    """Status and reason of a newly stored event (on the intake hot path: no query)."""
    if known:
        return EventStatus.RECEIVED, ""
    return EventStatus.IGNORED, f"{event_type} is not an event we handle"


def event_settle(event_id: int, *, routed: Routed | None = None) -> None:
    """Decide the event's status (the rules are the module's docstring).

    ``routed``: given by routing, which runs with the event's row locked. Without it
    (a job changed), the row is locked here, so two jobs finishing together cannot
    both decide from a stale snapshot; an event without jobs is left as it is.
    """
    if routed is None:
        with transaction.atomic():
            list(InboundEvent.objects.select_for_update().filter(pk=event_id).values_list("pk"))
            values = _decide(event_id, None)
            if values:
                InboundEvent.objects.filter(pk=event_id).update(**values)
        return
    InboundEvent.objects.filter(pk=event_id).update(**_decide(event_id, routed))


def _decide(event_id: int, routed: Routed | None) -> dict[str, Any]:
    values = _status(event_id, routed)
    if "status_reason" in values:  # text from errors and payloads: storable, bounded
        values["status_reason"] = db_text(values["status_reason"])[:500]
    return values


def _status(event_id: int, routed: Routed | None) -> dict[str, Any]:
    now = timezone.now()
    if routed is not None and routed.failure:
        return {
            "status": EventStatus.FAILED,
            "status_reason": f"could not route: {routed.failure}"[:500],
        }
    if routed is not None and routed.duplicate_of is not None:
        return {
            "status": EventStatus.DUPLICATE,
            "status_reason": routed.reason[:500],
            "duplicate_of_id": routed.duplicate_of,
            "processed_at": now,
        }
    statuses = set(Job.objects.filter(event_id=event_id).values_list("status", flat=True))
    if not statuses:
        if routed is None:
            return {}
        return {
            "status": EventStatus.IGNORED,
            "status_reason": (routed.reason or "no flow condition matched")[:500],
            "processed_at": now,
        }
    if statuses <= FINISHED:
        return {"status": EventStatus.PROCESSED, "status_reason": "", "processed_at": now}
    if JobStatus.QUARANTINED in statuses and not statuses & ACTIVE:
        return {"status": EventStatus.FAILED, "status_reason": "a job is quarantined"}
    if JobStatus.PAUSED in statuses and not statuses & ACTIVE:
        return {"status": EventStatus.WAITING, "status_reason": _paused_reason(event_id)}
    return {"status": EventStatus.PROCESSING, "status_reason": ""}


def _paused_reason(event_id: int) -> str:
    paused = Job.objects.filter(event_id=event_id, status=JobStatus.PAUSED).select_related(
        "flow", "integration"
    )
    why = sorted({pause_cause(job) for job in paused})
    return f"waiting until resumed: {'; '.join(why)}"


def pause_cause(job: Job) -> str:
    """Why a paused job waits (its flow and integration loaded)."""
    if not job.flow.enabled:
        return f"flow {job.flow.key} is disabled"
    if job.integration_id and not job.integration.enabled:
        return f"integration {job.integration.name} is paused"
    return f"flow {job.flow.key} was paused"  # resumed since; the sweeper starts it


SKIPPABLE = frozenset({EventStatus.RECEIVED, EventStatus.WAITING, EventStatus.FAILED})


@transaction.atomic
def event_skip(*, event: InboundEvent, operator=None, note: str = "") -> InboundEvent:
    """An operator gives up on an event that cannot or should not run: one that
    cannot be routed (failed, such as a poisoned body), one still received, or one
    waiting for a paused flow.

    Its unfinished jobs (pending, waiting to retry, quarantined, paused) are
    discarded with the note (``job_discard``: an attempt row as evidence); a running
    job refuses the skip. The event becomes *ignored*, saying who skipped it and why;
    nothing is deleted. A replay (``inbox.event_replay``) can still run it later.
    """
    from integrations.services.jobs import job_discard

    event = InboundEvent.objects.select_for_update().get(pk=event.pk)
    if event.status not in SKIPPABLE:
        raise DataError(f"event is {event.status}; only received, waiting or failed events skip")
    jobs = list(Job.objects.filter(event=event).exclude(status__in=FINISHED))
    if any(job.status == JobStatus.RUNNING for job in jobs):
        raise DataError("a job of this event is running; wait for it, then skip")
    who = getattr(operator, "get_username", lambda: operator)() or "system"
    for job in jobs:
        job_discard(job=job, operator=operator, note=f"event skipped. {note}".strip())
    reason = f"skipped by {who}" + (f": {note}" if note else "")
    InboundEvent.objects.filter(pk=event.pk).update(
        status=EventStatus.IGNORED, status_reason=db_text(reason)[:500], processed_at=timezone.now()
    )
    logger.info("integrations.events.skipped event=%s by=%s", event.pk, who)
    event.refresh_from_db()
    return event
