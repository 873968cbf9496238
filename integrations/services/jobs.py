"""Running jobs: claim with a row lock and a lease, have the flow run its unfinished
steps (:func:`~integrations.services.flows.flow_run_steps`) while the lease holds,
record every attempt, retry with backoff or quarantine. Operator actions add evidence
and never delete it. After every change of a job, its event's status is settled
(:func:`~integrations.services.events.event_settle`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from integrations.choices import AttemptOutcome, JobStatus
from integrations.kernel import stats
from integrations.kernel.context import RunContext, current_run
from integrations.kernel.exceptions import ConflictRetry, DataError, error_summary, is_retryable
from integrations.kernel.jsonutil import db_text
from integrations.kernel.metrics import ATTEMPTS, JOBS
from integrations.kernel.redaction import redact_text
from integrations.models import Attempt, Job
from integrations.retry import RetryPolicy
from integrations.services.error_groups import error_group_record, error_group_settle
from integrations.services.events import event_settle, pause_cause
from integrations.services.flow_versions import StepDef
from integrations.services.flows import flow_run_steps

logger = logging.getLogger("integrations.jobs")


class LeaseLost(Exception):
    """Another worker reclaimed this job; stop without writing anything more."""


class WorkerStopping(Exception):
    """The worker process was told to stop (SIGTERM): give the job back before the
    next step instead of starting it."""


worker_stopping = threading.Event()
"""Set in a worker process by the ``worker`` command's SIGTERM handler: the step
running finishes, no further step starts, the job's lease is released
(:func:`job_run` then answers ``"released"``) and the job is pending again, for the
next worker."""


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def jobs_enqueue(job_ids: Iterable[int]) -> None:
    from django_q.tasks import async_task

    for job_id in job_ids:
        try:
            async_task(
                "integrations.tasks.run_job", job_id, task_name=f"job {job_id}", group="jobs"
            )
        except Exception:  # the sweeper picks up pending jobs; never lose the commit
            logger.exception("integrations.jobs.enqueue_failed job=%s", job_id)


# --- claiming -------------------------------------------------------------------------
def _claimable(job: Job, now: datetime) -> bool:
    if job.status == JobStatus.PENDING:
        return True
    if job.status == JobStatus.RETRYING:
        return job.next_attempt_at is None or job.next_attempt_at <= now
    if job.status == JobStatus.RUNNING:
        return job.lease_expires_at is not None and job.lease_expires_at <= now
    return False


def job_claim(*, job_id: int, worker: str) -> tuple[Job, Attempt] | None:
    """Take ownership of a due job for one lease; None if it is not ours to run."""
    lease = timedelta(seconds=settings.INTEGRATIONS["JOB_LEASE_SECONDS"])
    with transaction.atomic():
        job = (
            Job.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("flow", "event", "integration")
            .filter(pk=job_id)
            .first()
        )
        now = timezone.now()
        if job is None or not _claimable(job, now):
            return None
        if job.status == JobStatus.RUNNING:
            Attempt.objects.filter(job=job, outcome=AttemptOutcome.RUNNING).update(
                outcome=AttemptOutcome.LEASE_EXPIRED,
                finished_at=now,
                note=f"lease expired; worker {job.locked_by} presumed lost",
            )
            logger.warning("integrations.jobs.reclaimed job=%s from=%s", job.pk, job.locked_by)
            if job.attempts >= job.max_attempts:
                # A job that takes its worker down every time must not loop forever.
                job.status = JobStatus.QUARANTINED
                job.last_error = f"gave up after {job.attempts} attempts: workers kept dying"
                job.last_error_code = "lease_expired"
                job.lease_expires_at = None
                job.finished_at = now
                job.save()
                error_group_record(
                    job=job,
                    step="",
                    error_class="integrations.jobs.WorkerLost",
                    message="workers kept dying while running the job",
                    now=now,
                )
                _settle_event(job)
                return None
        if _paused(job):
            # Disabled after the job was made: it waits, and runs on resume.
            job.status = JobStatus.PAUSED
            job.lease_expires_at = None
            job.next_attempt_at = None
            job.locked_by = ""
            job.save(
                update_fields=[
                    "status",
                    "lease_expires_at",
                    "next_attempt_at",
                    "locked_by",
                    "updated_at",
                ]
            )
            _settle_event(job)
            logger.info("integrations.jobs.paused job=%s flow=%s", job.pk, job.flow.key)
            return None
        job.status = JobStatus.RUNNING
        job.attempts += 1
        job.locked_by = worker
        job.lease_expires_at = now + lease
        job.next_attempt_at = None
        job.save(
            update_fields=[
                "status",
                "attempts",
                "locked_by",
                "lease_expires_at",
                "next_attempt_at",
                "updated_at",
            ]
        )
        attempt = Attempt.objects.create(job=job, number=job.attempts, worker=worker)
    return job, attempt


def _paused(job: Job) -> bool:
    return not job.flow.enabled or (job.integration is not None and not job.integration.enabled)


def _fenced(job: Job, worker: str):
    """Rows we may still write: the job only while we hold its lease."""
    return Job.objects.filter(pk=job.pk, locked_by=worker, status=JobStatus.RUNNING)


def _renew_lease(job: Job, worker: str) -> None:
    lease = timedelta(seconds=settings.INTEGRATIONS["JOB_LEASE_SECONDS"])
    if not _fenced(job, worker).update(lease_expires_at=timezone.now() + lease):
        raise LeaseLost


# --- running ----------------------------------------------------------------------------
def job_run(*, job_id: int, worker: str | None = None) -> str:
    """Run a job if it is due. Returns the job's status afterwards, or 'skipped'."""
    worker = worker or default_worker_id()
    if worker_stopping.is_set():
        # Handed to a worker that is stopping: leave it pending for the next one.
        transaction.on_commit(lambda: jobs_enqueue([job_id]))
        return "skipped"
    claimed = job_claim(job_id=job_id, worker=worker)
    if claimed is None:
        return "skipped"
    job, attempt = claimed
    token = current_run.set(RunContext(job.pk, attempt.pk, job.reference))
    try:
        return _execute(job, attempt, worker)
    finally:
        current_run.reset(token)


class _Leased:
    """The runner's side of each step of :func:`flow_run_steps`: renew the lease
    before it, store its output after it, both only while the lease is ours."""

    def __init__(self, job: Job, worker: str) -> None:
        self.job, self.worker = job, worker
        self.step = ""  # the step started last, for the attempt's record

    def starting(self, step: StepDef) -> None:
        if worker_stopping.is_set():
            raise WorkerStopping(step.name)
        self.step = step.name
        _renew_lease(self.job, self.worker)

    def finished(self, step: StepDef, output: dict) -> None:
        self.job.step_outputs[step.name] = output
        if not _fenced(self.job, self.worker).update(
            step_outputs=self.job.step_outputs, updated_at=timezone.now()
        ):
            raise LeaseLost


def _execute(job: Job, attempt: Attempt, worker: str) -> str:
    started = time.perf_counter()
    leased = _Leased(job, worker)
    try:
        flow_run_steps(job=job, attempt=attempt, hooks=leased)
    except LeaseLost:
        _finish_attempt(
            attempt,
            started,
            AttemptOutcome.LEASE_EXPIRED,
            step=leased.step,
            note="lease lost to another worker; stopped without further writes",
        )
        return "lease_lost"
    except WorkerStopping as stop:
        return _release(job, attempt, worker, str(stop), started)
    except Exception as exc:
        return _fail(job, attempt, worker, exc, leased.step, started)
    now = timezone.now()
    with transaction.atomic():
        updated = _fenced(job, worker).update(
            status=JobStatus.SUCCEEDED,
            finished_at=now,
            lease_expires_at=None,
            last_error="",
            last_error_code="",
            updated_at=now,
        )
        _finish_attempt(
            attempt,
            started,
            AttemptOutcome.SUCCEEDED if updated else AttemptOutcome.LEASE_EXPIRED,
            step=leased.step,
        )
        _settle_event(job)
    if updated and job.error_group_id:
        error_group_settle(job.error_group_id)  # its group may be cleared now
    return JobStatus.SUCCEEDED if updated else "lease_lost"


def _release(job: Job, attempt: Attempt, worker: str, next_step: str, started: float) -> str:
    """Give the job back between two steps: pending again, its lease released, the
    attempt not counted against its budget; the next worker resumes at ``next_step``."""
    now = timezone.now()
    with transaction.atomic():
        updated = _fenced(job, worker).update(
            status=JobStatus.PENDING,
            locked_by="",
            lease_expires_at=None,
            max_attempts=F("max_attempts") + 1,
            updated_at=now,
        )
        _finish_attempt(
            attempt,
            started,
            AttemptOutcome.RELEASED if updated else AttemptOutcome.LEASE_EXPIRED,
            note=f"worker stopping: released before step {next_step}, where the next one resumes",
        )
        if updated:
            _settle_event(job)
            transaction.on_commit(lambda: jobs_enqueue([job.pk]))
    logger.info("integrations.jobs.released job=%s before=%s", job.pk, next_step)
    return "released" if updated else "lease_lost"


def _fail(
    job: Job, attempt: Attempt, worker: str, exc: Exception, step: str, started: float
) -> str:
    summary = error_summary(exc)
    message = redact_text(summary["message"])
    retryable = is_retryable(exc)
    now = timezone.now()
    policy = RetryPolicy.for_flow(job.flow)
    if retryable and job.attempts < job.max_attempts:
        retry_at = now + timedelta(
            seconds=policy.delay(job.attempts, getattr(exc, "retry_after", None))
        )
        status, outcome = JobStatus.RETRYING, AttemptOutcome.RETRY
        reason = message
    else:
        retry_at = None
        status, outcome = JobStatus.QUARANTINED, AttemptOutcome.QUARANTINED
        why = f"gave up after {job.attempts} attempts" if retryable else "not retryable"
        reason = f"{why}: {message}"
    with transaction.atomic():
        updated = _fenced(job, worker).update(
            status=status,
            next_attempt_at=retry_at,
            lease_expires_at=None,
            last_error=db_text(f"[{step or '-'}] {reason}")[:4000],
            last_error_code=summary["code"][:60],
            finished_at=now if status == JobStatus.QUARANTINED else None,
            updated_at=now,
        )
        attempt.error_class = summary["class"][:200]
        attempt.error_message = db_text(reason)
        attempt.traceback = db_text(redact_text(traceback.format_exc()))[-20000:]
        attempt.retry_at = retry_at
        _finish_attempt(
            attempt, started, outcome if updated else AttemptOutcome.LEASE_EXPIRED, step=step
        )
        if updated:
            error_group_record(
                job=job, step=step, error_class=summary["class"], message=message, now=now
            )
            _settle_event(job)
            if status == JobStatus.RETRYING:
                # Start the retry on time, not at the next sweep.
                transaction.on_commit(retry_waker.arm)
    log = logger.warning if status == JobStatus.RETRYING else logger.error
    log(
        "integrations.jobs.failed job=%s flow=%s step=%s status=%s error=%s",
        job.pk,
        job.flow.key,
        step,
        status,
        reason,
    )
    return status if updated else "lease_lost"


def _finish_attempt(
    attempt: Attempt, started: float, outcome: str, *, step: str = "", note: str = ""
) -> None:
    attempt.outcome = outcome
    attempt.finished_at = timezone.now()
    elapsed = time.perf_counter() - started
    attempt.duration_ms = int(elapsed * 1000)
    attempt.step = step
    if note:
        attempt.note = note
    attempt.save()
    with contextlib.suppress(Exception):  # counting never fails a job
        flow = attempt.job.flow.key
        ATTEMPTS.labels(flow, outcome).observe(elapsed)
        if outcome in _JOB_ENDS:
            JOBS.labels(flow, _JOB_ENDS[outcome]).inc()
            stats.count(f"job_{_JOB_ENDS[outcome]}", flow=flow, total=attempt.duration_ms)


# How an attempt's outcome ends its job's run (integrations_jobs_finished_total).
_JOB_ENDS = {
    AttemptOutcome.SUCCEEDED: "succeeded",
    AttemptOutcome.RETRY: "retrying",
    AttemptOutcome.QUARANTINED: "quarantined",
    AttemptOutcome.RELEASED: "released",
}


# --- operator actions (each leaves an Attempt row as evidence) ---------------------------
def _operator_note(job: Job, *, operator, note: str) -> Attempt:
    return Attempt.objects.create(
        job=job,
        number=0,
        outcome=AttemptOutcome.OPERATOR,
        operator=operator if getattr(operator, "pk", None) else None,
        note=note,
        finished_at=timezone.now(),
    )


def _settle_event(job: Job) -> None:
    if job.event_id:
        event_settle(job.event_id)


def _operator_transition(
    job: Job,
    *,
    refused: Mapping[str, str],
    changes: Mapping[str, Any],
    operator,
    note: str | Callable[[Job], str],
) -> Job:
    """One operator action on a job, in the caller's transaction: re-read the job
    under a row lock, refuse the statuses in ``refused`` (status → why; ``{status}``
    names it), write ``changes``, leave the note as evidence, settle the event.

    A change's value, and the note, may be a function of the job as locked."""
    job = Job.objects.select_for_update(of=("self",)).select_related("flow").get(pk=job.pk)
    if job.status in refused:
        raise DataError(refused[job.status].format(status=job.status))
    note = note(job) if callable(note) else note
    for name, value in changes.items():
        setattr(job, name, value(job) if callable(value) else value)
    job.save(update_fields=[*changes, "updated_at"])
    _operator_note(job, operator=operator, note=note)
    _settle_event(job)
    return job


def _fresh_budget(job: Job) -> int:
    return job.attempts + RetryPolicy.for_flow(job.flow).max_attempts


@transaction.atomic
def job_requeue(*, job: Job, operator=None, note: str = "") -> Job:
    """Make a finished or waiting job due now with a fresh attempt budget.

    Steps that already succeeded stay done; the retry resumes at the first
    unfinished step, with the flow as it is now (an operator retries after fixing
    it: the job's pinned version is let go and it pins the current one).
    """
    job = _operator_transition(
        job,
        refused={
            JobStatus.RUNNING: "job is running; wait for it or for its lease to expire",
            JobStatus.SUCCEEDED: "job already succeeded; replay its event instead",
        },
        changes={
            "status": JobStatus.PENDING,
            "next_attempt_at": None,
            "finished_at": None,
            "max_attempts": _fresh_budget,
            "flow_version": None,
        },
        operator=operator,
        note=f"retry requested. {note}".strip(),
    )
    transaction.on_commit(lambda: jobs_enqueue([job.pk]))
    return job


@transaction.atomic
def job_quarantine(*, job: Job, operator=None, note: str = "") -> Job:
    finished = (JobStatus.SUCCEEDED, JobStatus.DISCARDED, JobStatus.QUARANTINED)
    return _operator_transition(
        job,
        refused=dict.fromkeys(finished, "job is {status}; nothing to quarantine"),
        changes={
            "status": JobStatus.QUARANTINED,
            "next_attempt_at": None,
            "lease_expires_at": None,
            "locked_by": "",  # fences out a worker still running it
            "last_error": f"quarantined by operator: {note}".strip(),
            "finished_at": timezone.now(),
        },
        operator=operator,
        note=f"quarantined. {note}".strip(),
    )


@transaction.atomic
def job_discard(*, job: Job, operator=None, note: str = "") -> Job:
    unfit = (JobStatus.SUCCEEDED, JobStatus.DISCARDED, JobStatus.RUNNING)
    job = _operator_transition(
        job,
        refused=dict.fromkeys(unfit, "job is {status}; it cannot be discarded"),
        changes={
            "status": JobStatus.DISCARDED,
            "next_attempt_at": None,
            "finished_at": timezone.now(),
        },
        operator=operator,
        note=f"discarded. {note}".strip(),
    )
    # Its group may be cleared now, once this commits (locks: job, event, then group,
    # as a failure takes them).
    group_id = job.error_group_id
    transaction.on_commit(lambda: error_group_settle(group_id))
    return job


@transaction.atomic
def job_edit_context(*, job: Job, context: dict, operator=None, note: str = "") -> Job:
    """Edit the input document of a quarantined job (audited), then retry it."""

    def audit(locked: Job) -> str:
        before = json.dumps(locked.context, sort_keys=True, cls=DjangoJSONEncoder)
        return f"context edited. {note}\nprevious context: {before}"[:20000]

    job = _operator_transition(
        job,
        refused={
            status: "only quarantined jobs can be edited"
            for status in JobStatus.values
            if status != JobStatus.QUARANTINED
        },
        changes={"context": context},
        operator=operator,
        note=audit,
    )
    return job_requeue(job=job, operator=operator, note="after edit")


# --- pause and resume ----------------------------------------------------------------------
def _resumable():
    return Job.objects.filter(status=JobStatus.PAUSED, flow__enabled=True).filter(
        Q(integration__isnull=True) | Q(integration__enabled=True)
    )


def jobs_resume(*, flow=None, integration=None, limit: int = 1000) -> list[int]:
    """Paused jobs whose flow and integration are both enabled again become pending,
    are enqueued after commit, and their events settle (waiting → processing).

    Called when an integration or a flow is enabled (``integration_update``,
    ``flow_set_enabled``) for that one, and by the sweeper for all (an operator may
    tick *enabled* in the admin). Returns the resumed jobs' ids."""
    with transaction.atomic():
        rows = _resumable()
        if flow is not None:
            rows = rows.filter(flow=flow)
        if integration is not None:
            rows = rows.filter(integration=integration)
        due = list(
            rows.select_for_update(skip_locked=True, of=("self",))
            .order_by("id")
            .values_list("pk", "event_id")[:limit]
        )
        if not due:
            return []
        ids = [pk for pk, _ in due]
        Job.objects.filter(pk__in=ids).update(status=JobStatus.PENDING, updated_at=timezone.now())
        for event_id in sorted({event_id for _, event_id in due if event_id}):
            event_settle(event_id)
        transaction.on_commit(lambda: jobs_enqueue(ids))
    logger.info("integrations.jobs.resumed jobs=%s", len(ids))
    return ids


def paused_max_days() -> float:
    """How long a job waits for its flow or integration to resume
    (``INTEGRATIONS["PAUSED_JOB_MAX_DAYS"]``, 30 by default; Stripe itself gives up
    redelivering after 3 days, so a pause shorter than that loses nothing either)."""
    return float(settings.INTEGRATIONS.get("PAUSED_JOB_MAX_DAYS", 30))


def jobs_expire_paused(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Paused jobs that waited longer than :func:`paused_max_days` are discarded, with
    the reason as evidence (an operator can still requeue one, or replay its event);
    an event left with nothing that ran is *ignored*, saying so."""
    from integrations.choices import EventStatus
    from integrations.models import InboundEvent

    now = now or timezone.now()
    days = paused_max_days()
    cutoff = now - timedelta(days=days)
    expired = []
    with transaction.atomic():
        jobs = list(
            Job.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("flow", "integration")
            .filter(status=JobStatus.PAUSED, updated_at__lte=cutoff)
            .order_by("id")[:limit]
        )
        for job in jobs:
            why = pause_cause(job)
            note = f"paused for more than {days:g} days ({why}); discarded"
            Job.objects.filter(pk=job.pk).update(
                status=JobStatus.DISCARDED, finished_at=now, last_error=note, updated_at=now
            )
            _operator_note(job, operator=None, note=note)
            expired.append(job.pk)
            if not job.event_id:
                continue
            event_settle(job.event_id)
            ran = Job.objects.filter(event_id=job.event_id).exclude(status=JobStatus.DISCARDED)
            if not ran.exists():
                InboundEvent.objects.filter(pk=job.event_id).update(
                    status=EventStatus.IGNORED,
                    status_reason=f"waited more than {days:g} days: {why}"[:500],
                    processed_at=now,
                )
    if expired:
        logger.warning("integrations.jobs.paused_expired jobs=%s", expired)
    return expired


# --- the sweeper -------------------------------------------------------------------------
def jobs_due(*, now: datetime, pending_grace_seconds: float = 30, limit: int = 500) -> list[int]:
    """Jobs that should run now: due retries, expired leases, pending ones never started."""
    stale_pending = now - timedelta(seconds=pending_grace_seconds)
    return list(
        Job.objects.filter(
            Q(status=JobStatus.RETRYING, next_attempt_at__lte=now)
            | Q(status=JobStatus.RUNNING, lease_expires_at__lte=now)
            | Q(status=JobStatus.PENDING, updated_at__lte=stale_pending)
        )
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )


# --- starting due retries on time ----------------------------------------------------------
def jobs_wake_due(*, now: datetime | None = None, limit: int = 100) -> list[int]:
    """Hand the retries that are due to the queue: each becomes pending, then is
    enqueued after commit. Returns their ids.

    Pending, not retrying, so another process's waker (or the sweeper) does not hand
    the same retry out again; if the task is lost anyway, the sweeper re-enqueues
    the job once it has been pending for its grace period.
    """
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            Job.objects.select_for_update(skip_locked=True)
            .filter(status=JobStatus.RETRYING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")
            .values_list("pk", flat=True)[:limit]
        )
        if due:
            Job.objects.filter(pk__in=due).update(
                status=JobStatus.PENDING, next_attempt_at=None, updated_at=now
            )
            transaction.on_commit(lambda: jobs_enqueue(due))
    if due:
        logger.info("integrations.jobs.retries_due jobs=%s", due)
    return due


def next_retry_at() -> datetime | None:
    """When the earliest waiting retry is due (one probe of the job_due_idx index)."""
    return Job.objects.filter(status=JobStatus.RETRYING).aggregate(at=Min("next_attempt_at"))["at"]


class RetryWaker:
    """Starts due retries within seconds of their due time, instead of at the next
    sweep (which runs once a minute).

    One daemon thread per worker process, started by the first task the process runs
    (``integrations.tasks``) and by scheduling a retry. It sleeps until the earliest
    retry the database knows, looking again at least every
    ``INTEGRATIONS["RETRY_WAKE_SECONDS"]`` (so retries scheduled by another process
    are found too) and at once when this process schedules one, then calls
    :func:`jobs_wake_due`. The thread holds no state the database does not: if it or
    its process dies, the next task starts a new one and the sweeper still enqueues
    whatever is due. Broker-independent (ORM and Redis alike). Off when
    ``RETRY_WAKE_SECONDS`` is 0 or the queue runs inline (``Q_CLUSTER["sync"]``,
    tests), where :meth:`start` starts it explicitly.
    """

    def __init__(self) -> None:
        self.wakeup = threading.Event()
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.pid: int | None = None

    @staticmethod
    def interval() -> float:
        return float(settings.INTEGRATIONS["RETRY_WAKE_SECONDS"])

    def alive(self) -> bool:
        return self.thread is not None and self.pid == os.getpid() and self.thread.is_alive()

    def ensure(self) -> None:
        """Start the thread in this process unless it runs already or is switched off."""
        if self.alive() or self.interval() <= 0 or settings.Q_CLUSTER.get("sync"):
            return
        self.start()

    def arm(self) -> None:
        """A retry was scheduled: look at the due times again now."""
        self.ensure()
        self.wakeup.set()

    def start(self) -> None:
        with self.lock:
            if self.alive() or self.interval() <= 0:
                return
            self.pid = os.getpid()  # a forked worker needs its own thread
            self.stopping.clear()
            self.thread = threading.Thread(target=self._run, name="retry-waker", daemon=True)
            self.thread.start()

    def stop(self, timeout: float = 10) -> None:
        with self.lock:
            thread, self.thread = self.thread, None
        self.stopping.set()
        self.wakeup.set()
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout)

    def run_once(self, now: datetime | None = None) -> float:
        """Wake what is due; returns how long to sleep before looking again."""
        interval = self.interval()
        jobs_wake_due(now=now)
        upcoming = next_retry_at()
        if upcoming is None:
            return interval
        wait = (upcoming - timezone.now()).total_seconds()
        return min(interval, max(0.2, wait))

    def _run(self) -> None:
        from django.db import close_old_connections

        try:
            while not self.stopping.is_set():
                close_old_connections()  # honour CONN_MAX_AGE; drop a broken connection
                try:
                    delay = self.run_once()
                except Exception:  # the sweeper still covers; keep the thread alive
                    logger.exception("integrations.jobs.retry_waker_failed")
                    connection.close()
                    delay = max(self.interval(), 1.0)
                self.wakeup.wait(delay)
                self.wakeup.clear()
        finally:
            connection.close()


retry_waker = RetryWaker()


# --- claims: one job at a time writes an object's news -------------------------------------
# A job finding another running job holding the same row waits this long for it, then is
# retried shortly.
CLAIM_WAIT_SECONDS = 10.0


def job_running(job_id: int | None, now: datetime) -> bool:
    """The job holding a claim is still running on a live lease (a job that failed,
    waits for a retry or lost its worker holds nothing)."""
    if job_id is None:
        return False
    return Job.objects.filter(
        pk=job_id, status=JobStatus.RUNNING, lease_expires_at__gt=now
    ).exists()


@contextmanager
def row_claim(
    *,
    job_id: int,
    row: models.Model,
    field: str,
    doing: str,
    wait_seconds: float = CLAIM_WAIT_SECONDS,
) -> Iterator[None]:
    """Hold ``row`` for job ``job_id`` (its ``field`` names the holder) while the job
    writes what the row stands for into other systems: two jobs each reading "not
    written yet" would both write. Another job holding it right now is waited for up
    to ``wait_seconds``; then this job is retried shortly (``ConflictRetry``). A claim
    of a job no longer running is taken over."""
    model = type(row)
    deadline = time.monotonic() + wait_seconds
    while True:
        with transaction.atomic():
            holder = getattr(model.objects.select_for_update().get(pk=row.pk), field)
            if not holder or holder == job_id or not job_running(holder, timezone.now()):
                model.objects.filter(pk=row.pk).update(**{field: job_id})
                break
        if time.monotonic() >= deadline:
            raise ConflictRetry(
                f"{model._meta.verbose_name} {row} is {doing} by job {holder}", retry_after=2
            )
        time.sleep(0.2)
    try:
        yield
    finally:
        model.objects.filter(pk=row.pk, **{field: job_id}).update(**{field: None})
