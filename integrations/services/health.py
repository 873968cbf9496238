"""Is the platform healthy: what ``GET /health/`` answers (503 when it is not).

Each check is one bounded, indexed query or one round trip, so a probe every few
seconds costs nothing on a database with millions of rows: the backlog is counted up
to its limit, never the whole table. What a check reports is safe to show anybody: a
failure says its kind (``OperationalError``), never a message that may name a host or
a user."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from integrations.choices import EventStatus, JobStatus
from integrations.models import InboundEvent, Job, WorkerHeartbeat


def _setting(name: str) -> Any:
    return settings.INTEGRATIONS[name]


@dataclass(frozen=True)
class Health:
    healthy: bool
    checks: dict[str, dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {"status": "ok" if self.healthy else "unhealthy", "checks": self.checks}


def _timed(check) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = check()
    except Exception as error:  # any failure is this check's answer, by its kind only
        return {"ok": False, "error": type(error).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1), **result}


def _database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


def _broker() -> dict[str, Any]:
    """Redis answers a PING within 2 s; the ORM broker is the database (checked)."""
    url = settings.Q_CLUSTER.get("redis")
    if not url:
        return {"kind": "orm"}
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        if not client.ping():
            raise ConnectionError("the broker did not answer")
    finally:
        client.close()
    return {"kind": "redis"}


def _age(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else round(max((now - moment).total_seconds(), 0.0), 1)


def _worker(now: datetime) -> dict[str, Any]:
    newest = WorkerHeartbeat.objects.order_by("-seen_at").values_list("seen_at", flat=True)
    age = _age(newest.first(), now)
    stale = _setting("HEALTH_WORKER_STALE_SECONDS")
    alive = age is not None and age <= stale
    return {
        "alive": alive,
        "last_seen_seconds_ago": age,
        "stale_after_seconds": stale,
        **({} if alive else {"problem": "no worker said it is alive"}),
    }


def count_upto(rows, limit: int) -> int:
    """How many ``rows``, counted up to ``limit + 1`` and unordered (on their index,
    never the whole table): more than ``limit`` means "more than the limit"."""
    return rows.order_by()[: limit + 1].count()


def backlog_read(now: datetime, *, limit: int) -> dict[str, Any]:
    """Jobs waiting to run (pending, or a retry that is due) and events waiting to be
    routed, each counted up to ``limit`` (``more``: past it), and how long the oldest
    job has waited (seconds; None: none waits)."""
    pending_jobs = Job.objects.filter(status=JobStatus.PENDING)
    due_jobs = Job.objects.filter(status=JobStatus.RETRYING, next_attempt_at__lte=now)
    # Unordered, each on its own index, at most limit + 1 rows read: never the table.
    jobs = count_upto(pending_jobs, limit) + count_upto(due_jobs, limit)
    events = count_upto(InboundEvent.objects.filter(status=EventStatus.RECEIVED), limit)
    pending = pending_jobs.order_by("updated_at").values_list("updated_at", flat=True).first()
    retry = due_jobs.order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first()
    oldest = min((m for m in (pending, retry) if m is not None), default=None)
    return {
        "jobs_waiting": min(jobs, limit),
        "jobs_more": jobs > limit,
        "events_waiting": min(events, limit),
        "events_more": events > limit,
        "more": jobs > limit or events > limit,
        "oldest_job_wait_seconds": _age(oldest, now),
    }


def _backlog(now: datetime) -> dict[str, Any]:
    limit = _setting("HEALTH_MAX_BACKLOG")
    state = backlog_read(now, limit=limit)
    wait = state["oldest_job_wait_seconds"]
    max_wait = _setting("HEALTH_MAX_WAIT_SECONDS")
    problems = []
    if state["jobs_more"]:
        problems.append(f"more than {limit} jobs wait to run")
    if state["events_more"]:
        problems.append(f"more than {limit} events wait to be routed")
    if wait is not None and wait > max_wait:
        problems.append(f"the oldest job has waited {wait:.0f} s (limit {max_wait:.0f} s)")
    return {
        "jobs_waiting": state["jobs_waiting"],
        "jobs_waiting_more": state["jobs_more"],
        "events_waiting": state["events_waiting"],
        "events_waiting_more": state["events_more"],
        "oldest_job_wait_seconds": wait,
        **({"problem": "; ".join(problems)} if problems else {}),
    }


def health_check(*, now: datetime | None = None) -> Health:
    """Database, broker, worker heartbeat, backlog and the oldest job's wait."""
    now = now or timezone.now()
    checks = {"database": _timed(_database), "broker": _timed(_broker)}
    if checks["database"]["ok"]:
        checks["worker"] = _timed(lambda: _worker(now))
        checks["backlog"] = _timed(lambda: _backlog(now))
    for check in checks.values():
        if check.get("problem"):
            check["ok"] = False
    return Health(healthy=all(check["ok"] for check in checks.values()), checks=checks)


def worker_heartbeat(worker: str, *, started_at: datetime) -> None:
    """Say the worker ``worker`` is alive now."""
    WorkerHeartbeat.objects.update_or_create(
        worker=worker[:100], defaults={"seen_at": timezone.now(), "started_at": started_at}
    )


def worker_gone(worker: str) -> None:
    WorkerHeartbeat.objects.filter(worker=worker[:100]).delete()
