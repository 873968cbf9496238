"""Due retries start within seconds of their due time, not at the next sweep."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.choices import AttemptOutcome, JobStatus
from integrations.models import Job
from integrations.services import jobs as services
from integrations.services.jobs import RetryWaker, jobs_due, jobs_wake_due
from tests.conftest import make_flow, make_job
from tests.support.upstream import Reply

pytestmark = pytest.mark.django_db


def write_flow(**kwargs):
    return make_flow(
        "write",
        steps=[("write", "tests.call_upstream", {"reference": "event.reference"})],
        **kwargs,
    )


def retrying_job(integration, *, due_in: float, reference: str = "ORD-1001") -> Job:
    flow = write_flow() if not Job.objects.exists() else Job.objects.first().flow
    job = make_job(flow, integration, reference=reference)
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.RETRYING,
        attempts=1,
        next_attempt_at=timezone.now() + timedelta(seconds=due_in),
    )
    job.refresh_from_db()
    return job


@pytest.mark.django_db(transaction=True)
def test_a_transient_failure_due_in_a_second_runs_again_without_the_sweeper(
    integration, upstream, monkeypatch
):
    def no_sweeper(**kwargs):  # pragma: no cover - the point is that it never runs
        raise AssertionError("the sweeper must not be needed")

    monkeypatch.setattr("integrations.services.sweeper.sweep", no_sweeper)
    monkeypatch.setattr("integrations.tasks.sweep", no_sweeper)
    upstream.queue(Reply(status=503, body={"error": "maintenance"}))
    job = make_job(write_flow(retry_base_seconds=1), integration)
    assert services.job_run(job_id=job.pk) == JobStatus.RETRYING
    job.refresh_from_db()
    due = job.next_attempt_at
    assert 0.4 <= (due - timezone.now()).total_seconds() <= 1.0  # equal jitter in [0.5, 1]

    waker = RetryWaker()  # a worker process's waker (the queue runs inline here)
    waker.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if job.status == JobStatus.SUCCEEDED:
                break
            time.sleep(0.05)
    finally:
        waker.stop()

    assert job.status == JobStatus.SUCCEEDED
    assert list(job.attempt_log.values_list("number", "outcome")) == [
        (1, AttemptOutcome.RETRY),
        (2, AttemptOutcome.SUCCEEDED),
    ]
    second = job.attempt_log.get(number=2)
    assert second.started_at >= due  # never early
    assert (second.started_at - due).total_seconds() < 5  # and not at the next sweep
    assert len(upstream.requests) == 2
    assert not waker.alive()


def test_due_retries_are_handed_out_once(integration, django_capture_on_commit_callbacks):
    due = retrying_job(integration, due_in=-1, reference="ORD-DUE")
    later = retrying_job(integration, due_in=60, reference="ORD-LATER")
    with django_capture_on_commit_callbacks() as callbacks:
        assert jobs_wake_due() == [due.pk]
    assert len(callbacks) == 1  # the enqueue, after commit
    due.refresh_from_db()
    assert (due.status, due.next_attempt_at, due.attempts) == (JobStatus.PENDING, None, 1)
    later_before = later.updated_at
    later.refresh_from_db()
    assert (later.status, later.updated_at) == (JobStatus.RETRYING, later_before)
    # A second waker (another process) finds nothing left to hand out.
    with django_capture_on_commit_callbacks() as callbacks:
        assert jobs_wake_due() == []
    assert callbacks == []


def test_a_lost_wake_up_is_still_found_by_the_sweeper(integration, clock):
    job = retrying_job(integration, due_in=-1)
    assert jobs_wake_due(now=clock.now) == [job.pk]  # its task is lost: no worker ran it
    assert jobs_due(now=clock.now) == []
    clock.advance(seconds=31)
    assert jobs_due(now=clock.now) == [job.pk]


def test_the_waker_sleeps_until_the_earliest_retry_but_never_past_its_setting(
    integration, settings
):
    settings.INTEGRATIONS = {**settings.INTEGRATIONS, "RETRY_WAKE_SECONDS": 2.0}
    waker = RetryWaker()
    assert waker.run_once() == 2.0  # nothing waiting
    retrying_job(integration, due_in=3600, reference="ORD-LATER")
    assert waker.run_once() == 2.0
    retrying_job(integration, due_in=1, reference="ORD-SOON")
    assert 0.5 < waker.run_once() <= 1.0


def test_the_waker_runs_in_worker_processes_only(settings, monkeypatch):
    started = []
    monkeypatch.setattr(RetryWaker, "start", lambda self: started.append(self))
    waker = RetryWaker()
    waker.ensure()  # tests run the queue inline: no thread
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": False}
    settings.INTEGRATIONS = {**settings.INTEGRATIONS, "RETRY_WAKE_SECONDS": 0}
    waker.ensure()  # switched off
    assert started == []
    settings.INTEGRATIONS = {**settings.INTEGRATIONS, "RETRY_WAKE_SECONDS": 2.0}
    waker.ensure()
    assert started == [waker]


def test_scheduling_a_retry_wakes_the_waker_after_commit(
    integration, upstream, monkeypatch, django_capture_on_commit_callbacks
):
    armed = []
    monkeypatch.setattr(services.retry_waker, "arm", lambda: armed.append(True))
    upstream.queue(Reply(status=503, body={"error": "maintenance"}))
    job = make_job(write_flow(max_attempts=2), integration)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.job_run(job_id=job.pk) == JobStatus.RETRYING
    assert armed == [True]
    Job.objects.filter(pk=job.pk).update(next_attempt_at=timezone.now())
    upstream.queue(Reply(status=503, body={"error": "maintenance"}))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.job_run(job_id=job.pk) == JobStatus.QUARANTINED
    assert armed == [True]  # a quarantined job has no retry to wake
