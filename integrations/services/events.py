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
  discarded, *failed* when one is quarantined and none is still to run,
  *processing* otherwise;
- routed, and no job → *ignored*, saying why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from integrations.choices import EventStatus, JobStatus
from integrations.models import InboundEvent, Job

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
    return {"status": EventStatus.PROCESSING, "status_reason": ""}
