from datetime import timedelta

import pytest
from django.conf import settings

from integrations.choices import AttemptOutcome, JobStatus
from integrations.models import ApiCall, Attempt, Job
from integrations.services import jobs as services
from integrations.services.sweeper import sweep
from tests.conftest import make_flow, make_job
from tests.support import actions as test_actions
from tests.support.upstream import Reply

pytestmark = pytest.mark.django_db

LEASE = settings.INTEGRATIONS["JOB_LEASE_SECONDS"]


def write_flow(**kwargs):
    return make_flow(
        "write",
        steps=[("write", "tests.call_upstream", {"reference": "event.reference"})],
        **kwargs,
    )


def test_success_records_attempt_output_and_api_call(integration, upstream):
    job = make_job(write_flow(), integration)
    assert services.job_run(job_id=job.pk, worker="w1") == JobStatus.SUCCEEDED
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.attempts == 1
    assert job.step_outputs == {"write": {"status": 200, "body": {"ok": True}}}
    attempt = Attempt.objects.get(job=job)
    assert (attempt.number, attempt.outcome, attempt.worker) == (1, AttemptOutcome.SUCCEEDED, "w1")
    call = ApiCall.objects.get()
    assert (call.job_id, call.attempt_id, call.status_code) == (job.pk, attempt.pk, 200)
    assert call.idempotency_key == "tests:ORD-1001:write"
    assert call.request_headers["Authorization"] == "[redacted]"
    assert upstream.requests[0].headers["Idempotency-Key"] == "tests:ORD-1001:write"


def test_retryable_error_is_retried_on_schedule_then_quarantined(integration, upstream, clock):
    upstream.default = Reply(status=503, body={"error": "maintenance"})
    job = make_job(write_flow(max_attempts=3, retry_base_seconds=10), integration)

    assert services.job_run(job_id=job.pk) == JobStatus.RETRYING
    job.refresh_from_db()
    first_delay = (job.next_attempt_at - clock.now).total_seconds()
    assert 5 <= first_delay <= 10  # equal jitter in [base/2, base]
    # Not due yet: neither the sweeper nor a stray task runs it early.
    assert services.jobs_due(now=clock.now) == []
    assert services.job_run(job_id=job.pk) == "skipped"

    clock.advance(seconds=first_delay + 0.001)
    assert services.jobs_due(now=clock.now) == [job.pk]
    assert services.job_run(job_id=job.pk) == JobStatus.RETRYING
    job.refresh_from_db()
    second_delay = (job.next_attempt_at - clock.now).total_seconds()
    assert 10 <= second_delay <= 20  # doubled

    clock.advance(seconds=second_delay + 0.001)
    assert services.job_run(job_id=job.pk) == JobStatus.QUARANTINED
    job.refresh_from_db()
    assert job.status == JobStatus.QUARANTINED
    assert job.last_error.startswith("[write] gave up after 3 attempts: ")
    assert job.last_error_code == "unavailable"
    outcomes = list(job.attempt_log.values_list("number", "outcome"))
    assert outcomes == [
        (1, AttemptOutcome.RETRY),
        (2, AttemptOutcome.RETRY),
        (3, AttemptOutcome.QUARANTINED),
    ]
    assert len(upstream.requests) == 3
    assert ApiCall.objects.filter(job=job).count() == 3


def test_retry_after_is_honoured(integration, upstream, clock):
    upstream.queue(Reply(status=429, headers={"Retry-After": "120"}))
    job = make_job(write_flow(retry_base_seconds=1), integration)
    assert services.job_run(job_id=job.pk) == JobStatus.RETRYING
    job.refresh_from_db()
    assert (job.next_attempt_at - clock.now).total_seconds() == pytest.approx(120)
    assert job.last_error_code == "rate_limited"


@pytest.mark.parametrize(
    ("status", "code"), [(400, "bad_request"), (401, "unauthorized"), (404, "not_found")]
)
def test_client_errors_quarantine_at_once(integration, upstream, status, code):
    upstream.queue(Reply(status=status, body={"error": "nope"}))
    job = make_job(write_flow(), integration)
    assert services.job_run(job_id=job.pk) == JobStatus.QUARANTINED
    job.refresh_from_db()
    assert job.attempts == 1
    assert job.last_error_code == code
    assert job.last_error.startswith("[write] not retryable: ")
    assert len(upstream.requests) == 1


def test_unexpected_exception_quarantines_with_traceback(integration):
    flow = make_flow("bug", steps=[("boom", "tests.fail", {"error": "'bug'"})])
    job = make_job(flow, integration)
    assert services.job_run(job_id=job.pk) == JobStatus.QUARANTINED
    attempt = Attempt.objects.get(job=job)
    assert attempt.error_class == "builtins.KeyError"
    assert "Traceback" in attempt.traceback and "KeyError" in attempt.traceback


def test_missing_required_mapping_value_quarantines_with_readable_reason(integration):
    flow = make_flow("m", steps=[("echo", "tests.echo", {})])
    step = flow.steps.get()
    from integrations.models import Mapping, MappingField

    step.mapping = Mapping.objects.create(key="m-echo")
    step.save()
    MappingField.objects.create(
        mapping=step.mapping, target="value", source="event.data.customer_email", required=True
    )
    job = make_job(flow, integration)
    assert services.job_run(job_id=job.pk) == JobStatus.QUARANTINED
    job.refresh_from_db()
    assert job.last_error == (
        "[echo] not retryable: value is required but event.data.customer_email gave no value"
    )
    assert test_actions.CALLS == []


def test_retry_resumes_at_first_unfinished_step(integration, upstream, clock):
    flow = make_flow(
        "two-steps",
        steps=[
            ("first", "tests.echo", {"value": "event.reference"}),
            ("second", "tests.call_upstream", {"reference": "steps.first.value"}),
        ],
        retry_base_seconds=1,
    )
    upstream.queue(Reply(status=502))
    job = make_job(flow, integration)
    assert services.job_run(job_id=job.pk) == JobStatus.RETRYING
    assert [c["step"] for c in test_actions.CALLS] == ["first"]
    clock.advance(seconds=5)
    assert services.job_run(job_id=job.pk) == JobStatus.SUCCEEDED
    # the first step was not repeated
    assert [c["step"] for c in test_actions.CALLS] == ["first"]
    job.refresh_from_db()
    assert job.step_outputs["second"]["status"] == 200
    assert [r.body for r in upstream.requests] == [b'{"reference": "ORD-1001"}'] * 2


def test_expired_lease_is_reclaimed_by_the_sweeper_exactly_once(
    integration, upstream, clock, django_capture_on_commit_callbacks
):
    job = make_job(write_flow(), integration)
    # Worker A claims the job and dies before doing anything.
    claimed = services.job_claim(job_id=job.pk, worker="worker-a")
    assert claimed is not None
    # While the lease is valid nobody else may run it.
    assert services.job_run(job_id=job.pk, worker="worker-b") == "skipped"
    assert sweep(now=clock.now)["enqueued"] == 0

    clock.advance(seconds=LEASE + 1)
    # The sweeper enqueues it; with the inline queue that runs it at once.
    assert sweep(now=clock.now)["enqueued"] == 1
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert len(upstream.requests) == 1
    outcomes = list(job.attempt_log.values_list("number", "outcome", "worker"))
    assert outcomes[0][:2] == (1, AttemptOutcome.LEASE_EXPIRED)
    assert outcomes[1][1] == AttemptOutcome.SUCCEEDED
    # A second sweep finds nothing; a late task for the job does nothing.
    assert sweep(now=clock.advance(minutes=5))["enqueued"] == 0
    assert services.job_run(job_id=job.pk) == "skipped"
    assert len(upstream.requests) == 1


def test_zombie_worker_cannot_write_after_losing_its_lease(integration, upstream, clock):
    job = make_job(write_flow(), integration)
    job_a, attempt_a = services.job_claim(job_id=job.pk, worker="worker-a")
    clock.advance(seconds=LEASE + 1)
    assert services.job_run(job_id=job.pk, worker="worker-b") == JobStatus.SUCCEEDED
    # Worker A wakes up and tries to carry on with its stale copy.
    assert services._execute(job_a, attempt_a, "worker-a") == "lease_lost"
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.locked_by == "worker-b"
    attempt_a.refresh_from_db()
    assert attempt_a.outcome == AttemptOutcome.LEASE_EXPIRED
    assert len(upstream.requests) == 1


def test_stale_pending_job_is_picked_up_by_the_sweeper(integration, upstream, clock):
    job = make_job(write_flow(), integration)  # enqueue "lost": nobody ran it
    assert sweep(now=clock.now)["enqueued"] == 0
    clock.advance(seconds=31)
    assert sweep(now=clock.now)["enqueued"] == 1
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED


def test_operator_retry_of_quarantined_job_adds_attempts_and_keeps_evidence(
    integration, upstream, admin_user, django_capture_on_commit_callbacks
):
    upstream.queue(Reply(status=400, body={"error": "bad"}))
    job = make_job(write_flow(max_attempts=1), integration)
    services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.QUARANTINED
    with django_capture_on_commit_callbacks(execute=True):
        services.job_requeue(job=job, operator=admin_user, note="fixed the ERP account")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    log = list(job.attempt_log.values_list("number", "outcome", "operator__username"))
    assert log == [
        (1, AttemptOutcome.QUARANTINED, None),
        (0, AttemptOutcome.OPERATOR, "admin"),
        (2, AttemptOutcome.SUCCEEDED, None),
    ]
    assert ApiCall.objects.filter(job=job).count() == 2


def test_discard_and_quarantine_are_recorded(integration, admin_user):
    job = make_job(write_flow(), integration)
    services.job_quarantine(job=job, operator=admin_user, note="investigating")
    assert Job.objects.get().status == JobStatus.QUARANTINED
    services.job_discard(job=job, operator=admin_user, note="duplicate order")
    job.refresh_from_db()
    assert job.status == JobStatus.DISCARDED
    notes = list(job.attempt_log.values_list("note", flat=True))
    assert notes == ["quarantined. investigating", "discarded. duplicate order"]


def test_succeeded_job_cannot_be_requeued(integration, upstream):
    from integrations.kernel.exceptions import DataError

    job = make_job(write_flow(), integration)
    services.job_run(job_id=job.pk)
    job.refresh_from_db()
    with pytest.raises(DataError, match="already succeeded"):
        services.job_requeue(job=job)
    assert job.attempt_log.count() == 1


def test_edit_and_retry_is_audited(integration, admin_user, django_capture_on_commit_callbacks):
    flow = make_flow("e", steps=[("echo", "tests.echo", {"value": "event.reference"})])
    job = make_job(flow, integration, context={"event": {}})
    services.job_quarantine(job=job, operator=admin_user, note="no reference")
    with django_capture_on_commit_callbacks(execute=True):
        services.job_edit_context(
            job=job, context={"event": {"reference": "ORD-9"}}, operator=admin_user, note="typo"
        )
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.step_outputs["echo"]["value"] == "ORD-9"
    edit_note = job.attempt_log.get(note__startswith="context edited").note
    assert 'previous context: {"event": {}}' in edit_note


def test_lease_is_renewed_between_steps(integration, clock):
    flow = make_flow("lease", steps=[("a", "tests.echo", {}), ("b", "tests.echo", {})])
    job = make_job(flow, integration)
    claimed_job, attempt = services.job_claim(job_id=job.pk, worker="w")
    clock.advance(seconds=LEASE - 20)  # within the lease
    assert services._execute(claimed_job, attempt, "w") == JobStatus.SUCCEEDED
    job.refresh_from_db()
    assert job.lease_expires_at is None
    assert Attempt.objects.get(job=job).finished_at is not None
    assert timedelta(0) <= clock.now - job.updated_at


def test_a_job_that_keeps_killing_its_worker_is_quarantined(integration, clock):
    job = make_job(write_flow(max_attempts=2), integration)
    for worker in ("w1", "w2"):
        assert services.job_claim(job_id=job.pk, worker=worker) is not None
        clock.advance(seconds=LEASE + 1)  # the worker died
    assert services.job_claim(job_id=job.pk, worker="w3") is None
    job.refresh_from_db()
    assert job.status == JobStatus.QUARANTINED
    assert job.last_error == "gave up after 2 attempts: workers kept dying"
