"""GET /health/ (issue 13, Deliver 5): the database, the broker, a live worker, the
backlog and the oldest job's wait, as JSON; 503 when any is unhealthy. GET
/health/live/: this process answers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.choices import JobStatus
from integrations.models import Job, WorkerHeartbeat
from integrations.services.health import worker_gone, worker_heartbeat
from tests.conftest import make_flow

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker():
    worker_heartbeat("host:1", started_at=timezone.now())
    return "host:1"


def _job(
    status: str,
    *,
    created_ago: float = 0,
    due_ago: float | None = None,
    pending_since: float | None = None,
) -> Job:
    """A job made ``created_ago`` seconds ago, last changed (made pending) then or
    ``pending_since`` seconds ago, due ``due_ago`` seconds ago."""
    flow = Job.objects.first().flow if Job.objects.exists() else make_flow("health-flow")
    job = Job.objects.create(flow=flow, status=status, max_attempts=3)
    now = timezone.now()
    changed = created_ago if pending_since is None else pending_since
    Job.objects.filter(pk=job.pk).update(
        created_at=now - timedelta(seconds=created_ago),
        updated_at=now - timedelta(seconds=changed),
        next_attempt_at=None if due_ago is None else now - timedelta(seconds=due_ago),
    )
    return job


def test_a_platform_with_a_live_worker_and_no_backlog_is_healthy(client, worker):
    response = client.get("/health/")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "worker", "backlog"}
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["worker"]["alive"] is True
    assert body["checks"]["backlog"] == {
        "ok": True,
        "ms": body["checks"]["backlog"]["ms"],
        "jobs_waiting": 0,
        "jobs_waiting_more": False,
        "events_waiting": 0,
        "events_waiting_more": False,
        "oldest_job_wait_seconds": None,
    }
    assert response["Cache-Control"].startswith("max-age=0")


def test_no_worker_or_a_silent_one_is_unhealthy(client, worker, settings):
    WorkerHeartbeat.objects.update(seen_at=timezone.now() - timedelta(seconds=61))
    stale = client.get("/health/")
    worker_gone(worker)
    none = client.get("/health/")

    for response in (stale, none):
        assert response.status_code == 503
        check = response.json()["checks"]["worker"]
        assert (check["ok"], check["problem"]) == (False, "no worker said it is alive")
    assert stale.json()["checks"]["worker"]["last_seen_seconds_ago"] >= 61
    assert none.json()["checks"]["worker"]["last_seen_seconds_ago"] is None


def test_the_oldest_waiting_job_and_the_backlog_are_measured_and_limited(client, worker, settings):
    settings.INTEGRATIONS = {**settings.INTEGRATIONS, "HEALTH_MAX_BACKLOG": 3}
    _job(JobStatus.PENDING, created_ago=30)
    # Retried by an operator a moment ago: waiting since then, not since it was made.
    _job(JobStatus.PENDING, created_ago=90000, pending_since=3)
    _job(JobStatus.RETRYING, created_ago=5000, due_ago=120)  # due for 2 minutes
    _job(JobStatus.RETRYING, created_ago=5000, due_ago=-600)  # not due: not waiting
    _job(JobStatus.SUCCEEDED, created_ago=99999)

    healthy = client.get("/health/").json()["checks"]["backlog"]
    _job(JobStatus.PENDING, created_ago=1000)
    settings.INTEGRATIONS = {**settings.INTEGRATIONS, "HEALTH_MAX_WAIT_SECONDS": 900}
    unhealthy = client.get("/health/")

    assert healthy["ok"] and healthy["jobs_waiting"] == 3
    assert 119 <= healthy["oldest_job_wait_seconds"] < 200
    assert unhealthy.status_code == 503
    backlog = unhealthy.json()["checks"]["backlog"]
    assert (backlog["jobs_waiting"], backlog["jobs_waiting_more"]) == (3, True)
    assert backlog["oldest_job_wait_seconds"] >= 1000
    assert backlog["problem"] == (
        f"more than 3 jobs wait to run; the oldest job has waited "
        f"{backlog['oldest_job_wait_seconds']:.0f} s (limit 900 s)"
    )


def test_a_broker_that_does_not_answer_is_unhealthy_and_named_by_kind_only(
    client, worker, settings
):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "redis": "redis://:s3cret@127.0.0.1:1/0"}

    response = client.get("/health/")

    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == {"ok": False, "error": "ConnectionError"}
    assert "s3cret" not in response.content.decode()


def test_the_redis_broker_answers_when_it_is_there(client, worker, settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "redis": "redis://127.0.0.1:6379/0"}

    check = client.get("/health/").json()["checks"]["broker"]

    assert (check["ok"], check["kind"]) == (True, "redis")


def test_liveness_needs_nothing_but_the_process(client):
    response = client.get("/health/live/")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
