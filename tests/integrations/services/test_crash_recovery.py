"""A worker process killed mid-job loses nothing: after its lease expires the sweeper
finishes the job exactly once, and the repeated external write carries the same
idempotency key so the external system can deduplicate it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection as db

from integrations.choices import AttemptOutcome, JobStatus
from integrations.models import Job
from integrations.services.sweeper import sweep
from tests.conftest import make_flow, make_job
from tests.support.upstream import Reply

ROOT = Path(__file__).resolve().parents[3]


def database_url() -> str:
    conf = db.settings_dict
    if conf["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{conf['NAME']}"
    user = conf.get("USER") or "postgres"
    password = f":{conf['PASSWORD']}" if conf.get("PASSWORD") else ""
    host = conf.get("HOST") or "127.0.0.1"
    port = conf.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{conf['NAME']}"


def start_worker(job_id: int) -> subprocess.Popen:
    code = (
        "import django; django.setup(); import tests.support.actions; "
        "from integrations.services.jobs import job_run; "
        f"job_run(job_id={job_id}, worker='doomed-worker')"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": database_url(),
        "JOB_LEASE_SECONDS": "2",
    }
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)


@pytest.mark.django_db(transaction=True)
def test_killed_worker_is_recovered_exactly_once(integration, upstream):
    flow = make_flow(
        "crashy",
        steps=[
            ("prepare", "tests.echo", {"value": "event.reference"}),
            ("write", "tests.call_upstream", {"reference": "event.reference"}),
        ],
    )
    job = make_job(flow, integration)
    # The external system hangs on the write, so the worker is mid-step when killed.
    upstream.queue(Reply(delay=30))
    worker = start_worker(job.pk)
    try:
        deadline = time.monotonic() + 30
        while not upstream.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert upstream.requests, "worker never reached the external write"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()

    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    assert job.locked_by == "doomed-worker"
    assert list(job.step_outputs) == ["prepare"]  # the finished step was checkpointed
    # Nothing happens while the dead worker's lease is still valid...
    assert sweep()["enqueued"] == 0
    time.sleep(max(0.0, (job.lease_expires_at - db_now()).total_seconds()) + 0.2)
    # ...then the sweeper reclaims it and the (inline) queue finishes it.
    assert sweep()["enqueued"] == 1

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert list(job.attempt_log.values_list("number", "outcome")) == [
        (1, AttemptOutcome.LEASE_EXPIRED),
        (2, AttemptOutcome.SUCCEEDED),
    ]
    keys = [r.headers["Idempotency-Key"] for r in upstream.requests]
    assert keys == ["tests:ORD-1001:write", "tests:ORD-1001:write"]
    # The prepare step ran once, in the dead worker; it was not repeated.
    assert job.step_outputs["prepare"] == {"value": "ORD-1001", "amount": None}
    assert sweep()["enqueued"] == 0
    assert Job.objects.get().status == JobStatus.SUCCEEDED


def db_now():
    from django.utils import timezone

    return timezone.now()
