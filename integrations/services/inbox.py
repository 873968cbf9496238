"""The inbox: store verified events once, then route them to flows as jobs.

Intake does one INSERT per event and nothing else on the hot path: the inbox row is
itself the queue entry. A debounced "drain" task (sent after commit) and the sweeper
turn received rows into jobs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from integrations.choices import AttemptOutcome, EventSource, EventStatus, JobStatus
from integrations.connectors import registry as connectors
from integrations.connectors.base import ChangeFingerprint, ParsedEvent
from integrations.kernel import stats
from integrations.kernel.context import correlated
from integrations.kernel.exceptions import DataError, IntegrationError, WebhookPayloadError
from integrations.kernel.jsonutil import db_json, db_text
from integrations.models import Connection, Flow, InboundEvent, Integration, Job, RoutedChange
from integrations.retry import RetryPolicy
from integrations.services.events import Routed, event_intake_status, event_settle
from integrations.services.flows import flow_condition_holds, flows_matching
from integrations.services.intake_writer import insert_events, writer
from integrations.services.jobs import job_requeue, jobs_enqueue

logger = logging.getLogger("integrations.inbox")


@dataclass(frozen=True)
class InboxResult:
    event_id: int
    status: str
    created: bool
    requeued: bool = False


def inbox_event_receive(
    *,
    connection_obj: Connection,
    parsed: ParsedEvent,
    body: bytes | str,
    headers: dict[str, Any],
    remote_addr: str | None = None,
    source: str = EventSource.WEBHOOK,
) -> InboxResult:
    """Store one verified event, exactly once per (connection, external id).

    A repeated delivery of a processed (or in-flight) event changes nothing but the
    delivery counter; a repeated delivery of a failed event re-runs its failed jobs.
    """
    connector = connectors.get(connection_obj.kind)
    parsed = _storable(parsed)
    known = connector.is_known_event(parsed.event_type)
    status, reason = event_intake_status(known=known, event_type=parsed.event_type)
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    values = {
        "connection": connection_obj.pk,
        "external_id": parsed.external_id,
        "event_type": parsed.event_type[:120],
        "source": source,
        "status": status,
        "status_reason": reason,
        "object_id": parsed.object_id,
        "reference": parsed.reference,
        "headers": db_json(headers),
        "body": text,
        "remote_addr": remote_addr or None,  # '' behind a unix socket is no address
        "occurred_at": parsed.occurred_at,
        "received_at": timezone.now(),
        "deliveries": 1,
    }
    if connection.in_atomic_block or not settings.INTEGRATIONS["INTAKE_GROUP_COMMIT"]:
        # Inside a caller's transaction the row must commit (or not) with it.
        event_id = insert_events([values])[0]
    else:
        event_id = writer.submit(values)
    if event_id is None:
        return _redelivered(connection_obj, parsed)
    stats.count("events", connection=connection_obj.name, label=source)
    if known:
        transaction.on_commit(inbox_nudge)
    return InboxResult(event_id=event_id, status=status, created=True)


def _storable(parsed: ParsedEvent) -> ParsedEvent:
    """The event's columns as the database can store them (no NUL, no lone
    surrogate: :func:`~integrations.kernel.jsonutil.db_text`); the body keeps the
    sender's text."""
    columns = {
        name: db_text(getattr(parsed, name))
        for name in ("external_id", "event_type", "object_id", "reference")
    }
    if all(columns[name] is getattr(parsed, name) for name in columns):
        return parsed
    return replace(parsed, **columns)


def _redelivered(connection_obj: Connection, parsed: ParsedEvent) -> InboxResult:
    event = InboundEvent.objects.get(connection=connection_obj, external_id=parsed.external_id)
    InboundEvent.objects.filter(pk=event.pk).update(deliveries=F("deliveries") + 1)
    requeued = False
    if event.status == EventStatus.FAILED:
        with transaction.atomic():
            quarantined = Job.objects.select_for_update().filter(
                event=event, status=JobStatus.QUARANTINED
            )
            # Only jobs that failed on their own run again: when the last word on a
            # job is an operator's (they quarantined it), a redelivery does not undo it.
            failed = [
                job
                for job in quarantined
                if job.attempt_log.order_by("-id").values_list("outcome", flat=True).first()
                != AttemptOutcome.OPERATOR
            ]
            for job in failed:
                job_requeue(job=job, note="the sender delivered the event again")
            requeued = bool(failed)
    logger.info(
        "integrations.inbox.duplicate event=%s status=%s requeued=%s",
        parsed.external_id,
        event.status,
        requeued,
    )
    return InboxResult(event_id=event.pk, status=event.status, created=False, requeued=requeued)


# --- nudging the worker ---------------------------------------------------------------
class _Nudger:
    """Wakes the worker after new events are stored: at most one drain task per
    interval per process, and always one after the last event of a burst.

    Requests only set a flag; one long-lived daemon thread per process sends the
    tasks, so intake pays no enqueue and no extra database connection per event
    (the thread keeps its own). The sweeper drains anyway if a process dies.
    """

    def __init__(self) -> None:
        self.wanted = threading.Event()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.pid: int | None = None

    def __call__(self) -> None:
        interval = settings.INTEGRATIONS["INBOX_NUDGE_INTERVAL"]
        if interval <= 0:
            _send_drain()  # tests and single-process tools: at once, in this thread
            return
        self.wanted.set()
        if self.thread is None or self.pid != os.getpid() or not self.thread.is_alive():
            self._start()

    def _start(self) -> None:
        with self.lock:
            if self.thread is not None and self.pid == os.getpid() and self.thread.is_alive():
                return
            self.pid = os.getpid()  # a forked worker needs its own thread
            self.thread = threading.Thread(target=self._run, name="inbox-nudger", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        from django.db import close_old_connections

        while True:
            self.wanted.wait()
            self.wanted.clear()
            close_old_connections()  # honour CONN_MAX_AGE; drop a broken connection
            _send_drain()
            time.sleep(settings.INTEGRATIONS["INBOX_NUDGE_INTERVAL"])


def _send_drain() -> None:
    from django_q.tasks import async_task

    try:
        async_task("integrations.tasks.drain_inbox", task_name="drain inbox", group="inbox")
    except Exception:  # the sweeper drains anyway; never fail an accepted webhook
        logger.exception("integrations.inbox.nudge_failed")


inbox_nudge = _Nudger()


# --- routing events to flows ------------------------------------------------------------
def event_document(
    event: InboundEvent,
    integration: Integration | None,
    *,
    parsed: ParsedEvent,
    facts: dict[str, Any],
    routed_as: str = "",
) -> dict[str, Any]:
    """The context document mappings and conditions read: the event as parsed (once,
    by the caller) and its business facts (``_event_facts``, the same for every
    integration)."""
    document = {
        "event": {
            "id": event.external_id,
            "type": event.event_type,
            "source": event.source,
            "occurred_at": event.occurred_at.isoformat() if event.occurred_at else None,
            "object_id": event.object_id,
            "reference": event.reference,
            "data": parsed.payload,
        },
        "connection": {
            "name": event.connection.name,
            "kind": event.connection.kind,
            "environment": event.connection.environment,
        },
        "integration": (
            {"name": integration.name, "settings": integration.settings} if integration else {}
        ),
    }
    if routed_as and routed_as != event.event_type:
        document["event"]["routed_as"] = routed_as
    document.update(facts)
    return document


def event_sample_document(event: InboundEvent) -> dict[str, Any]:
    """The document a flow of ``event`` reads (its first integration's), as the inbox
    would build it, for the mapping preview. Read only."""
    from django.db.models import Q

    reading = event_read(event)
    if reading.parsed is None:
        raise DataError(reading.error)
    conn = event.connection_id
    integration = (
        Integration.objects.filter(Q(znode_id=conn) | Q(stripe_id=conn) | Q(erp_id=conn))
        .order_by("pk")
        .first()
    )
    return event_document(
        event, integration, parsed=reading.parsed, facts=_event_facts(event, reading.parsed)
    )


RESERVED_DOCUMENT_NAMES = frozenset({"event", "connection", "integration", "steps"})


def _event_facts(event: InboundEvent, parsed: ParsedEvent) -> dict[str, Any]:
    """The connector's business facts of the event (``payment``, ``order`` ...); a
    connector bug leaves them out (the flow's required inputs then say what is missing)
    rather than stopping the inbox."""
    try:
        facts = connectors.get(event.connection.kind).event_facts(event.event_type, parsed.payload)
    except Exception:
        logger.exception("integrations.inbox.event_facts_failed event=%s", event.pk)
        return {}
    return {k: v for k, v in (facts or {}).items() if k not in RESERVED_DOCUMENT_NAMES}


# --- the change gate: one job per change, whichever source reports it ---------------------
@dataclass(frozen=True)
class _Verdict:
    route_as: str = ""
    """Event type whose flows run; blank: create no job."""
    duplicate_of: int | None = None
    reason: str = ""


def _change_of(event: InboundEvent, parsed: ParsedEvent) -> ChangeFingerprint | None:
    if event.source == EventSource.REPLAY:
        return None  # an operator's replay always runs its flows again
    connector = connectors.get(event.connection.kind)
    try:
        change = connector.change_fingerprint(event.event_type, parsed.payload)
    except Exception:
        # A connector bug must not stop the inbox: route as if there were no gate (at
        # worst one job too many, never one too few).
        logger.exception("integrations.inbox.fingerprint_failed event=%s", event.pk)
        return None
    if change is None:
        return None
    object_key, fingerprint = _storable_change(change.object_key, change.fingerprint)
    return replace(change, object_key=object_key, fingerprint=fingerprint)


def _storable_change(object_key: str, fingerprint: str) -> tuple[str, str]:
    """An object key and fingerprint as the change row stores them: storable text,
    within the columns, without merging two objects or two states (the same for what
    an event reports and for what :func:`change_expect` announces)."""
    object_key, fingerprint = db_text(object_key), db_text(fingerprint)
    if len(object_key) > 255:
        digest = hashlib.sha256(object_key.encode()).hexdigest()
        object_key = f"{object_key[:190]}:{digest}"
    if len(fingerprint) > 64:
        fingerprint = hashlib.sha256(fingerprint.encode()).hexdigest()
    return object_key, fingerprint


def _lock_change(connection_id: int, object_key: str) -> RoutedChange:
    """The object's change row, created if new, locked until the transaction ends.

    INSERT … ON CONFLICT DO NOTHING, then SELECT … FOR UPDATE: a second transaction
    waits on the unique key (or the row lock) until the first commits, then reads
    what the first recorded. SQLite runs IMMEDIATE transactions one at a time.
    """
    RoutedChange.objects.bulk_create(
        [RoutedChange(connection_id=connection_id, object_key=object_key)], ignore_conflicts=True
    )
    return RoutedChange.objects.select_for_update().get(
        connection_id=connection_id, object_key=object_key
    )


def _describe(event_id: int) -> str:
    row = InboundEvent.objects.filter(pk=event_id).values_list("event_type", "source").first()
    return f"event {event_id} ({row[0]} via {row[1]})" if row else f"event {event_id}"


def change_expect(*, connection: Connection, object_key: str, fingerprint: str) -> None:
    """Announce our own write: "we are about to write this object into this state; an
    event that reports exactly this state is the echo of our write".

    ``object_key`` and ``fingerprint`` are what the connector's ``change_fingerprint``
    gives for the object in the state being written (for a Stripe customer:
    ``customer_change_key`` and ``expected_customer_fingerprint``). Call it just before
    the write. Until an event is routed to jobs after it, an event carrying this
    fingerprint (a creation too) makes no job and is settled as our echo; an event with
    another fingerprint (somebody else's change) routes as ever, and from then on the
    written state is no longer ours to drop: a change back to it routes.

    If the write then fails, the expectation stays: an event reporting that state is
    dropped all the same, and the object is then as we wanted it. Several writes in a
    row: only the last announced state is the echo (an earlier write's event routes, at
    worst one job too many, never one too few).

    Locks the object's change row (made if new) in its own ``transaction.atomic()``,
    and only that row: inside a caller's transaction the lock is held until that
    commits (a drain routing the object waits for it), so never call it while holding
    other change rows. Domain apps import it from here
    (``integrations.services.inbox``).
    """
    object_key, fingerprint = _storable_change(object_key, fingerprint)
    with transaction.atomic():
        row = _lock_change(connection.pk, object_key)
        RoutedChange.objects.filter(pk=row.pk).update(
            fingerprint=fingerprint, written_at=timezone.now()
        )
    logger.info(
        "integrations.inbox.change_expected connection=%s object=%s", connection.pk, object_key
    )


def change_last_routed_at(*, connection: Connection, object_key: str) -> datetime | None:
    """When the newest change of the object routed to jobs happened (its event's time;
    our own writes' echoes are never routed), or None: what a domain app compares with
    the other side's modified date when "the newest change wins"."""
    object_key, _ = _storable_change(object_key, "")
    row = (
        RoutedChange.objects.filter(connection_id=connection.pk, object_key=object_key)
        .values_list("event__occurred_at", "event__received_at", "routed_at")
        .first()
    )
    if row is None:
        return None
    occurred, received, routed = row
    return occurred or received or routed


def _our_echo(change: ChangeFingerprint, row: RoutedChange) -> bool:
    """The event reports the state our last write announced, and no event was routed
    since that write."""
    return (
        row.written_at is not None
        and bool(row.fingerprint)
        and row.fingerprint == change.fingerprint
        and (row.routed_at is None or row.written_at > row.routed_at)
    )


def _verdict(event: InboundEvent, change: ChangeFingerprint, row: RoutedChange) -> _Verdict:
    if _our_echo(change, row):
        # Our own write (its creation too, when we made the object): no flow reacts to
        # it. Not a duplicate of any event: the state was never routed.
        written = row.written_at.isoformat(timespec="seconds")
        return _Verdict(
            reason=f"echo of our own write: {change.object_key} is as we wrote it at {written}"
        )
    if change.creates:
        if row.created_event_id is None:
            return _Verdict(route_as=event.event_type)
        if change.update_event_type and row.fingerprint != change.fingerprint:
            # Another source's first sight of the object, after it changed: the
            # change must still run (the update that announced it may be lost).
            return _Verdict(route_as=change.update_event_type)
        prior = row.created_event_id
        return _Verdict(
            duplicate_of=prior,
            reason=f"duplicate of {_describe(prior)}: the creation of {change.object_key} "
            "was routed already",
        )
    if row.fingerprint and row.fingerprint == change.fingerprint and row.event_id:
        prior = row.event_id
        return _Verdict(
            duplicate_of=prior,
            reason=f"no change that matters: {change.object_key} is as {_describe(prior)} "
            "left it (only fields no flow acts on differ, such as our own writes)",
        )
    return _Verdict(route_as=event.event_type)


def _record_change(
    row: RoutedChange, change: ChangeFingerprint, event: InboundEvent, now: datetime
) -> None:
    values: dict[str, Any] = {"fingerprint": change.fingerprint, "event": event, "routed_at": now}
    if change.creates and row.created_event_id is None:
        values["created_event"] = event
    RoutedChange.objects.filter(pk=row.pk).update(**values)


# --- routing: read each event once, lock its change, make its jobs -----------------------
@dataclass(frozen=True)
class EventReading:
    """An event's stored body, parsed once for all the routing of one drain."""

    parsed: ParsedEvent | None = None
    error: str = ""
    """Why the stored body can no longer be read (then ``parsed`` is None)."""
    change: ChangeFingerprint | None = None
    """What it changes, for the change gate (None: no gate)."""


def event_read(event: InboundEvent) -> EventReading:
    """Parse the stored body (through the connector registry) and reduce it to its
    change: the one parse of this event in this process."""
    connector = connectors.get(event.connection.kind)
    try:
        parsed = connector.parse(event.body.encode("utf-8"))
    except (WebhookPayloadError, IntegrationError) as exc:
        return EventReading(error=f"stored body can no longer be read: {exc}")
    except Exception as exc:  # a connector bug: this event fails, the batch goes on
        logger.exception("integrations.inbox.parse_failed event=%s", event.pk)
        return EventReading(error=f"stored body can no longer be read: {exc!r}")
    return EventReading(parsed=parsed, change=_change_of(event, parsed))


def _lock_changes_in_order(readings: list[tuple[InboundEvent, EventReading]]) -> None:
    """Lock every change row a batch will touch, in one global order.

    A drain holds its locks until the batch commits; two drains locking the same
    two objects in opposite orders would deadlock.
    """
    keys = {
        (event.connection_id, reading.change.object_key)
        for event, reading in readings
        if reading.change is not None
    }
    for connection_id, object_key in sorted(keys):
        _lock_change(connection_id, object_key)


def event_route(event: InboundEvent, *, reading: EventReading | None = None) -> list[Job]:
    """:func:`_event_route`, its logs correlated by the event's reference."""
    with correlated(event.reference):
        return _event_route(event, reading=reading)


def _event_route(event: InboundEvent, *, reading: EventReading | None = None) -> list[Job]:
    """Create the jobs an event triggers, then settle its status
    (:func:`~integrations.services.events.event_settle`): ignored when nothing wants
    it, duplicate when the change it reports was routed already (connector's
    ``change_fingerprint``), ignored as our echo when it reports the state our own
    last write announced (:func:`change_expect`).

    Paused is not absent: a job is made for every integration that contains the
    event's connection and every flow its type triggers, enabled or not; where the
    integration is paused or the flow disabled the job is made *paused* and runs when
    both are enabled again (Stripe does not redeliver what we answered 2xx). Only an
    event for which nothing exists to resume is ignored: its connection is in no
    integration, or no flow at all is triggered by its type.

    Runs inside the caller's transaction, with the event row locked. ``reading``: the
    stored body as :func:`event_read` read it, where the caller has it already.
    Returns the jobs to enqueue now (not the paused ones).
    """
    conn = event.connection
    integrations = [
        i
        for i in Integration.objects.select_related("znode", "stripe", "erp")
        if conn.pk in i.connection_ids()
    ]
    if not integrations:
        reason = f"connection {conn.name} belongs to no integration"
        event_settle(event.pk, routed=Routed(reason=reason))
        return []
    reading = reading or event_read(event)
    if reading.parsed is None:
        event_settle(event.pk, routed=Routed(reason=reading.error))
        return []
    change, gate, route_as = reading.change, None, event.event_type
    now = timezone.now()
    if change is not None:
        gate = _lock_change(conn.pk, change.object_key)
        verdict = _verdict(event, change, gate)
        if not verdict.route_as:
            # Kept as evidence, visible in the admin with the event it repeats.
            event_settle(
                event.pk, routed=Routed(reason=verdict.reason, duplicate_of=verdict.duplicate_of)
            )
            logger.info(
                "integrations.inbox.%s event=%s object=%s of=%s",
                "duplicate_change" if verdict.duplicate_of else "echo_of_our_write",
                event.pk,
                change.object_key,
                verdict.duplicate_of,
            )
            return []
        route_as = verdict.route_as
    flows = flows_matching(source=conn.kind, event_type=route_as, enabled_only=False)
    jobs: list[Job] = []
    made = False
    facts = _event_facts(event, reading.parsed)
    for integration in integrations:
        document = event_document(
            event, integration, parsed=reading.parsed, facts=facts, routed_as=route_as
        )
        for flow in flows:
            if not flow_condition_holds(flow, document):
                continue
            live = integration.enabled and flow.enabled
            job, created = Job.objects.get_or_create(
                event=event,
                flow=flow,
                integration=integration,
                defaults={
                    "status": JobStatus.PENDING if live else JobStatus.PAUSED,
                    # Text jsonb can store (NUL, lone surrogates), whatever the sender put
                    # in a name or a metadata value.
                    "context": db_json(document),
                    "max_attempts": _max_attempts(flow),
                    "reference": event.reference,
                },
            )
            made = made or created
            if created and live:
                jobs.append(job)
    if made and change is not None and gate is not None:
        _record_change(gate, change, event, now)
    reason = "" if flows else f"no enabled flow is triggered by {conn.kind} {route_as}"
    event_settle(event.pk, routed=Routed(reason=reason))
    return jobs


def _failure(error: Exception) -> str:
    if isinstance(error, WebhookPayloadError | IntegrationError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def _max_attempts(flow: Flow) -> int:
    return RetryPolicy.for_flow(flow).max_attempts


def inbox_drain(*, limit: int = 100, older_than_seconds: float = 0) -> int:
    """Route received events to jobs in batches; returns how many were routed.

    Each event of a batch is parsed once (:func:`event_read`), before its change row
    is locked, and that reading serves all its routing."""
    routed = 0
    while True:
        cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
        with transaction.atomic():
            batch = list(
                # of=self: locking the connection row too would block every insert
                # (its foreign key check) for as long as the batch runs.
                InboundEvent.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("connection")
                .filter(status=EventStatus.RECEIVED, received_at__lte=cutoff)
                .order_by("id")[:limit]
            )
            job_ids: list[int] = []
            readings = [(event, event_read(event)) for event in batch]
            _lock_changes_in_order(readings)
            for event, reading in readings:
                try:
                    # One bad event must not stop the inbox: whatever routing it raises
                    # (a mapping, a connector bug, a row the database refuses) is rolled
                    # back to this savepoint, and the event is marked failed with the
                    # reason; the rest of the batch goes on. An operator replays or
                    # skips it (event_replay, event_skip).
                    with transaction.atomic():
                        routed_jobs = event_route(event, reading=reading)
                        job_ids.extend(job.pk for job in routed_jobs)
                except (OperationalError, InterfaceError):
                    # The database itself (a deadlock, a lock timeout, a dropped
                    # connection), not the event: it stays received for the next drain.
                    logger.exception("integrations.inbox.route_deferred event=%s", event.pk)
                except Exception as error:
                    event_settle(event.pk, routed=Routed(failure=_failure(error)))
                    logger.exception("integrations.inbox.route_failed event=%s", event.pk)
            transaction.on_commit(lambda ids=job_ids: jobs_enqueue(ids))
        routed += len(batch)
        if len(batch) < limit:
            return routed


def event_replay(*, event: InboundEvent, operator=None) -> InboundEvent:
    """Run an event's flows again as a new inbox row that points at the original.

    The original and its jobs stay untouched as evidence; business idempotency keys
    keep a replay from doubling external writes.
    """
    number = event.replays.count() + 1
    with transaction.atomic():
        replay = InboundEvent.objects.create(
            connection=event.connection,
            external_id=f"{event.external_id}#replay-{number}"[:255],
            event_type=event.event_type,
            source=EventSource.REPLAY,
            status=EventStatus.RECEIVED,
            status_reason=f"replayed by {operator or 'system'}",
            object_id=event.object_id,
            reference=event.reference,
            headers=event.headers,
            body=event.body,
            occurred_at=event.occurred_at,
            replay_of=event,
        )
        transaction.on_commit(inbox_nudge)
    logger.info("integrations.inbox.replay event=%s replay=%s", event.pk, replay.pk)
    return replay
