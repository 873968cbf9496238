"""Error groups: every failed attempt of a job is filed under the kind of its failure
(flow, step, error class, and the message with ids and numbers taken out), so
operators triage one group instead of its hundred jobs, and retry or discard them at
once. The drift check files into the same groups: its mismatches are quarantined jobs
of the ``drift-recheck`` flow.

A group is *open* when it first fails; an operator may acknowledge, resolve or ignore
it and name an assignee. It resolves itself once none of its jobs is left failing
(each succeeded or was discarded) and reopens when the error comes back. Triage and
bulk actions are kept in the group's history with who, when and why; every job a bulk
action touches also gets its own operator attempt, as a single action would.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, F
from django.utils import timezone

from integrations.choices import ErrorGroupState, JobStatus
from integrations.kernel.exceptions import DataError
from integrations.kernel.jsonutil import db_text
from integrations.models import ErrorGroup, Job

logger = logging.getLogger("integrations.error_groups")

# Jobs of a group that are still failing: waiting for a retry, out of retries, or
# being retried now. A group without any is cleared.
FAILING = (JobStatus.RETRYING, JobStatus.QUARANTINED, JobStatus.PENDING, JobStatus.RUNNING)
# Jobs an operator's bulk action applies to, and how many at once (an admin request
# must end in time; the action says how many remain).
RETRYABLE = (JobStatus.RETRYING, JobStatus.QUARANTINED)
BULK_LIMIT = 500

# What varies between failures of one kind: ids (Stripe's pi_…, UUIDs, long hex),
# email addresses, and every number (order numbers, amounts, ports, HTTP codes stay
# apart only through the error class).
_NORMALIZE = (
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<id>"),
    (re.compile(r"\b[a-z]{1,12}_(?=[A-Za-z0-9]*\d)[A-Za-z0-9]{6,}\b"), "<id>"),
    (re.compile(r"\b[0-9a-f]{16,}\b", re.I), "<id>"),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "<email>"),
    (re.compile(r"\d+(?:[.,]\d+)*"), "<n>"),
    (re.compile(r"\s+"), " "),
)


def error_normalize(message: str) -> str:
    """The message of a failure with what varies between failures of its kind taken
    out: ``Order 1042 (pi_3NxA9f2e) answered 503`` → ``Order <n> (<id>) answered <n>``."""
    text = message or ""
    for pattern, replacement in _NORMALIZE:
        text = pattern.sub(replacement, text)
    return text.strip()[:500]


def error_fingerprint(*, flow_key: str, step: str, error_class: str, message: str) -> str:
    """What makes failures one kind, as a hash."""
    normalized = error_normalize(message)
    return hashlib.sha256(f"{flow_key}\n{step}\n{error_class}\n{normalized}".encode()).hexdigest()


def error_group_record(
    *, job: Job, step: str, error_class: str, message: str, now: datetime | None = None
) -> ErrorGroup | None:
    """File one failed attempt of ``job`` under its group (made on the first failure
    of its kind; reopened if it was resolved) and point the job at it. In the caller's
    transaction: the failure and its filing commit together. Filing never undoes the
    failure: if it fails (a savepoint rolls back), the job is recorded failed without
    a group and the error is logged. Returns the group, or None then."""
    try:
        with transaction.atomic():
            return _record(job=job, step=step, error_class=error_class, message=message, now=now)
    except Exception:
        logger.exception("integrations.error_groups.record_failed job=%s", job.pk)
        return None


def _record(
    *, job: Job, step: str, error_class: str, message: str, now: datetime | None
) -> ErrorGroup:
    now = now or timezone.now()
    message = db_text(message)
    fingerprint = error_fingerprint(
        flow_key=job.flow.key, step=step, error_class=error_class, message=message
    )
    try:
        with transaction.atomic():  # two workers may meet the first failure of a kind
            group, created = ErrorGroup.objects.get_or_create(
                fingerprint=fingerprint,
                defaults={
                    "flow_id": job.flow_id,
                    "step": step[:80],
                    "error_class": error_class[:200],
                    "message": error_normalize(message),
                    "sample": message[:4000],
                    "occurrences": 1,
                    "first_seen_at": now,
                    "last_seen_at": now,
                },
            )
    except IntegrityError:
        created = False
    if created:
        logger.warning("integrations.error_groups.opened group=%s flow=%s", group.pk, job.flow.key)
    else:
        # Under the row's lock: a settle resolving it meanwhile has committed, or waits
        # and then sees this job failing.
        group = ErrorGroup.objects.select_for_update().get(fingerprint=fingerprint)
        ErrorGroup.objects.filter(pk=group.pk).update(
            occurrences=F("occurrences") + 1, last_seen_at=now, sample=message[:4000]
        )
        if group.state == ErrorGroupState.RESOLVED:
            _reopen(group)
    previous = job.error_group_id
    Job.objects.filter(pk=job.pk).update(error_group=group)
    job.error_group_id = group.pk
    if previous and previous != group.pk:
        # It fails another way now: its former group may have no job failing left.
        transaction.on_commit(lambda: error_group_settle(previous))
    return group


def _reopen(group: ErrorGroup) -> None:
    group.refresh_from_db()
    group.state = ErrorGroupState.OPEN
    group.reopened += 1
    group.resolved_at = None
    group.alerted_at = None
    group.alerted_size = 0
    group._change_reason = "reopened: the error came back"
    group.save()
    logger.warning("integrations.error_groups.reopened group=%s", group.pk)


def error_group_settle(group_id: int | None, *, now: datetime | None = None) -> bool:
    """A group none of whose jobs is still failing resolves itself (unless ignored).
    Called when one of its jobs succeeds or is discarded; True if it resolved now."""
    if not group_id:
        return False
    try:
        return _settle(group_id, now)
    except Exception:  # a job's success or discard never fails for its group's sake
        logger.exception("integrations.error_groups.settle_failed group=%s", group_id)
        return False


def _settle(group_id: int, now: datetime | None) -> bool:
    if Job.objects.filter(error_group_id=group_id, status__in=FAILING).exists():
        return False
    with transaction.atomic():
        group = ErrorGroup.objects.select_for_update().filter(pk=group_id).first()
        if group is None or group.state not in (
            ErrorGroupState.OPEN,
            ErrorGroupState.ACKNOWLEDGED,
        ):
            return False
        if Job.objects.filter(error_group_id=group_id, status__in=FAILING).exists():
            return False  # a job failed again meanwhile
        group.state = ErrorGroupState.RESOLVED
        group.resolved_at = now or timezone.now()
        group._change_reason = "cleared: every job succeeded or was discarded"
        group.save()
    logger.info("integrations.error_groups.cleared group=%s", group_id)
    return True


# --- triage -------------------------------------------------------------------------------
@transaction.atomic
def error_group_triage(
    *,
    group: ErrorGroup,
    operator: Any,
    state: str | None = None,
    assignee: Any = ...,
    note: str = "",
) -> ErrorGroup:
    """Set a group's triage state and/or assignee (``None`` unassigns), kept in its
    history with the operator and ``note``."""
    if state is not None and state not in ErrorGroupState.values:
        raise DataError(f"unknown triage state {state!r}")
    group = ErrorGroup.objects.select_for_update().get(pk=group.pk)
    changes = []
    if state is not None and state != group.state:
        changes.append(f"{group.state} → {state}")
        group.state = state
        group.resolved_at = timezone.now() if state == ErrorGroupState.RESOLVED else None
        if state == ErrorGroupState.OPEN:
            group.alerted_at, group.alerted_size = None, 0
    if assignee is not ... and getattr(assignee, "pk", None) != group.assignee_id:
        changes.append(f"assigned to {assignee}" if assignee else "unassigned")
        group.assignee = assignee
    if not changes:
        return group
    group._change_reason = _reason("; ".join(changes), operator, note)
    group._history_user = operator if getattr(operator, "pk", None) else None
    group.save()
    return group


def _reason(what: str, operator: Any, note: str) -> str:
    by = f" by {operator}" if getattr(operator, "pk", None) else ""
    return f"{what}{by}{f': {note}' if note else ''}"[:100]


# --- bulk actions -------------------------------------------------------------------------
@dataclass(frozen=True)
class BulkResult:
    done: int
    refused: list[str]
    remaining: int = 0
    """Jobs of the group the action did not reach (past its limit): run it again."""


def _bulk(
    group: ErrorGroup,
    *,
    operator: Any,
    note: str,
    verb: str,
    service: Callable[..., Job],
    limit: int,
) -> BulkResult:
    done, refused = 0, []
    candidates = Job.objects.filter(error_group=group, status__in=RETRYABLE)
    total = candidates.count()
    ids = list(candidates.order_by("id").values_list("pk", flat=True)[:limit])
    for job in Job.objects.filter(pk__in=ids).order_by("id"):
        try:
            service(job=job, operator=operator, note=f"{verb} of error group {group.pk}. {note}")
        except DataError as error:  # it moved meanwhile (a worker took it, say)
            refused.append(f"job {job.pk}: {error.message}")
        else:
            done += 1
    with transaction.atomic():
        locked = ErrorGroup.objects.select_for_update().get(pk=group.pk)
        locked._change_reason = _reason(f"{verb}: {done} job(s)", operator, note)
        locked._history_user = operator if getattr(operator, "pk", None) else None
        locked.save()
    logger.info(
        "integrations.error_groups.%s group=%s jobs=%s refused=%s",
        verb.replace(" ", "_"),
        group.pk,
        done,
        len(refused),
    )
    return BulkResult(done=done, refused=refused, remaining=max(total - len(ids), 0))


def error_group_retry(
    *, group: ErrorGroup, operator: Any = None, note: str = "", limit: int = BULK_LIMIT
) -> BulkResult:
    """Retry now every job of the group that waits for a retry or is out of retries
    (each resumes at its first unfinished step, with a fresh attempt budget)."""
    from integrations.services.jobs import job_requeue

    return _bulk(
        group, operator=operator, note=note, verb="bulk retry", service=job_requeue, limit=limit
    )


def error_group_discard(
    *, group: ErrorGroup, operator: Any = None, note: str = "", limit: int = BULK_LIMIT
) -> BulkResult:
    """Give up every job of the group that waits for a retry or is out of retries
    (evidence kept); the group then resolves itself."""
    from integrations.services.jobs import job_discard

    result = _bulk(
        group, operator=operator, note=note, verb="bulk discard", service=job_discard, limit=limit
    )
    error_group_settle(group.pk)
    return result


# --- reads ----------------------------------------------------------------------------------
def error_group_jobs_by_status(
    group_ids: list[int], *, statuses: tuple[str, ...] | None = None
) -> dict[int, dict[str, int]]:
    """For each group, its jobs by status (on the partial index of failed jobs), of
    ``statuses`` only if given."""
    counts: dict[int, dict[str, int]] = {pk: {} for pk in group_ids}
    rows = Job.objects.filter(error_group_id__in=group_ids)
    if statuses is not None:
        rows = rows.filter(status__in=statuses)
    rows = rows.order_by().values("error_group_id", "status").annotate(n=Count("id"))
    for row in rows:
        counts[row["error_group_id"]][row["status"]] = row["n"]
    return counts


def error_group_orders(group: ErrorGroup, *, limit: int = 50) -> list[str]:
    """The orders (business references) the group's failing jobs are about, up to
    ``limit``."""
    seen: dict[str, None] = {}
    rows = (
        Job.objects.filter(error_group=group, status__in=FAILING)
        .exclude(reference="")
        .order_by("id")
        .values_list("reference", flat=True)[: limit * 4]  # read on the index, bounded
    )
    for reference in rows:
        seen.setdefault(reference, None)
        if len(seen) >= limit:
            break
    return sorted(seen)
