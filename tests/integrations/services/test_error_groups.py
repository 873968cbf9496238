"""Error groups: failures filed by kind, triaged, retried or discarded at once, reopened
when they come back."""

import pytest
from django.contrib.auth.models import User

from integrations.choices import AttemptOutcome, ErrorGroupState, JobStatus
from integrations.kernel.exceptions import DataError
from integrations.models import Attempt, ErrorGroup, Job
from integrations.services import jobs
from integrations.services.error_groups import (
    error_fingerprint,
    error_group_discard,
    error_group_orders,
    error_group_retry,
    error_group_triage,
    error_normalize,
)
from tests.conftest import make_flow, make_job
from tests.support.upstream import Reply

pytestmark = pytest.mark.django_db


def order_flow(**kwargs):
    return make_flow(
        "write-order",
        steps=[
            (
                "write",
                "tests.call_upstream",
                {"reference": "event.reference", "path": "event.path"},
            )
        ],
        **kwargs,
    )


def order_job(flow, integration, number: int):
    reference = f"ORD-{number}"
    return make_job(
        flow,
        integration,
        reference=reference,
        context={"event": {"reference": reference, "path": f"/orders/{number}"}},
    )


@pytest.mark.parametrize(
    ("message", "normalized"),
    [
        (
            "erp POST http://127.0.0.1:41234/orders/1042 answered 503",
            "erp POST http://<n>:<n>/orders/<n> answered <n>",
        ),
        (
            "charge ch_3NxA9f2eZvKYlo2C0 of pi_3NxA9f2eZvKYlo2C1 is not captured",
            "charge <id> of <id> is not captured",
        ),
        ("invalid email ann.lee+shop@example.co.uk", "invalid email <email>"),
        ("token 5f0c9d0b-6c1e-4f7a-9a8e-2b1f3d4c5e6f expired", "token <id> expired"),
        ("total 171.35 differs from 171,350.00", "total <n> differs from <n>"),
        # Field names are words, not ids: they stay.
        ("order_number is missing", "order_number is missing"),
    ],
)
def test_a_message_loses_what_varies_between_failures_of_its_kind(message, normalized):
    assert error_normalize(message) == normalized


def test_the_fingerprint_is_flow_step_class_and_normalized_message():
    base = {"flow_key": "f", "step": "s", "error_class": "E", "message": "order 1 failed"}
    same = error_fingerprint(**{**base, "message": "order 2 failed"})
    assert error_fingerprint(**base) == same
    for changed in ({"flow_key": "g"}, {"step": "t"}, {"error_class": "F"}):
        assert error_fingerprint(**{**base, **changed}) != same


def test_failures_of_one_kind_share_a_group_across_orders_and_attempts(integration, upstream):
    upstream.default = Reply(status=503, body={"error": "maintenance"})
    flow = order_flow(max_attempts=2)
    first, second = order_job(flow, integration, 1042), order_job(flow, integration, 1043)

    assert jobs.job_run(job_id=first.pk) == JobStatus.RETRYING
    assert jobs.job_run(job_id=second.pk) == JobStatus.RETRYING
    group = ErrorGroup.objects.get()
    assert (group.flow, group.step, group.state) == (flow, "write", ErrorGroupState.OPEN)
    assert group.error_class == "integrations.kernel.exceptions.ConnectorUnavailable"
    assert group.message == 'tests.write: HTTP <n> {"error": "maintenance"}'
    assert group.sample == 'tests.write: HTTP 503 {"error": "maintenance"}'
    assert group.occurrences == 2
    assert set(Job.objects.values_list("error_group", flat=True)) == {group.pk}

    # The final attempt (quarantined, "gave up after …") is the same kind.
    Job.objects.update(next_attempt_at=None)
    assert jobs.job_run(job_id=first.pk) == JobStatus.QUARANTINED
    assert ErrorGroup.objects.get().occurrences == 3
    assert error_group_orders(group) == ["ORD-1042", "ORD-1043"]

    # Another kind of failure is another group.
    upstream.default = Reply(status=400, body={"error": "no such account"})
    other = order_job(flow, integration, 1044)
    assert jobs.job_run(job_id=other.pk) == JobStatus.QUARANTINED
    assert ErrorGroup.objects.count() == 2
    assert Job.objects.get(pk=other.pk).error_group_id != group.pk


def test_bulk_retry_clears_the_group_once_its_jobs_succeed(integration, upstream):
    operator = User.objects.create_user("ops", is_staff=True)
    upstream.default = Reply(status=503)
    flow = order_flow(max_attempts=1)
    failed = [order_job(flow, integration, n) for n in (1, 2, 3)]
    for job in failed:
        assert jobs.job_run(job_id=job.pk) == JobStatus.QUARANTINED
    done = order_job(flow, integration, 4)
    Job.objects.filter(pk=done.pk).update(status=JobStatus.SUCCEEDED)
    group = ErrorGroup.objects.get()

    upstream.default = Reply(status=200)
    result = error_group_retry(group=group, operator=operator, note="store is back")
    assert (result.done, result.refused) == (3, [])
    assert set(Job.objects.filter(error_group=group).values_list("status", flat=True)) == {
        JobStatus.PENDING
    }
    notes = Attempt.objects.filter(outcome=AttemptOutcome.OPERATOR, operator=operator)
    assert notes.count() == 3
    assert all(f"bulk retry of error group {group.pk}" in n.note for n in notes)
    latest = group.history.latest()
    assert latest.history_change_reason == "bulk retry: 3 job(s) by ops: store is back"
    assert latest.history_user == operator

    for job in failed[:2]:
        assert jobs.job_run(job_id=job.pk) == JobStatus.SUCCEEDED
    assert ErrorGroup.objects.get().state == ErrorGroupState.OPEN  # one still failing
    assert jobs.job_run(job_id=failed[2].pk) == JobStatus.SUCCEEDED
    group.refresh_from_db()
    assert group.state == ErrorGroupState.RESOLVED and group.resolved_at is not None
    assert group.history.latest().history_change_reason.startswith("cleared")
    assert Job.objects.get(pk=done.pk).status == JobStatus.SUCCEEDED  # never touched


def test_a_resolved_group_reopens_when_the_error_comes_back(integration, upstream):
    upstream.default = Reply(status=503)
    flow = order_flow(max_attempts=1)
    assert jobs.job_run(job_id=order_job(flow, integration, 1).pk) == JobStatus.QUARANTINED
    group = ErrorGroup.objects.get()
    error_group_triage(group=group, operator=None, state=ErrorGroupState.RESOLVED)
    ErrorGroup.objects.filter(pk=group.pk).update(alerted_at=group.last_seen_at, alerted_size=1)

    assert jobs.job_run(job_id=order_job(flow, integration, 2).pk) == JobStatus.QUARANTINED
    group.refresh_from_db()
    assert (group.state, group.reopened, group.resolved_at) == (ErrorGroupState.OPEN, 1, None)
    assert (group.alerted_at, group.alerted_size) == (None, 0)  # a new opening, alerted anew
    assert group.history.latest().history_change_reason == "reopened: the error came back"


def test_an_ignored_group_stays_ignored_when_it_fails_again(integration, upstream):
    upstream.default = Reply(status=503)
    flow = order_flow(max_attempts=1)
    jobs.job_run(job_id=order_job(flow, integration, 1).pk)
    group = ErrorGroup.objects.get()
    error_group_triage(group=group, operator=None, state=ErrorGroupState.IGNORED)

    jobs.job_run(job_id=order_job(flow, integration, 2).pk)
    group.refresh_from_db()
    assert (group.state, group.occurrences, group.reopened) == (ErrorGroupState.IGNORED, 2, 0)


def test_bulk_discard_gives_up_the_failing_jobs_and_resolves_the_group(integration, upstream):
    upstream.default = Reply(status=503)
    flow = order_flow(max_attempts=3)
    waiting = order_job(flow, integration, 1)
    out = order_job(flow, integration, 2)
    assert jobs.job_run(job_id=waiting.pk) == JobStatus.RETRYING
    Job.objects.filter(pk=out.pk).update(max_attempts=1)
    assert jobs.job_run(job_id=out.pk) == JobStatus.QUARANTINED
    group = ErrorGroup.objects.get()

    result = error_group_discard(group=group, note="orders were cancelled")
    assert result.done == 2
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.DISCARDED}
    group.refresh_from_db()
    assert group.state == ErrorGroupState.RESOLVED
    assert Attempt.objects.filter(outcome=AttemptOutcome.OPERATOR).count() == 2


def test_a_single_discard_also_clears_its_group_once_it_commits(
    integration, upstream, django_capture_on_commit_callbacks
):
    upstream.default = Reply(status=503)
    flow = order_flow(max_attempts=1)
    job = order_job(flow, integration, 1)
    jobs.job_run(job_id=job.pk)
    with django_capture_on_commit_callbacks(execute=True):
        jobs.job_discard(job=job, note="duplicate order")
        assert ErrorGroup.objects.get().state == ErrorGroupState.OPEN  # not before commit
    assert ErrorGroup.objects.get().state == ErrorGroupState.RESOLVED


def test_triage_keeps_who_what_and_why_and_refuses_an_unknown_state(integration, upstream):
    lead = User.objects.create_user("lead", is_staff=True)
    upstream.default = Reply(status=503)
    jobs.job_run(job_id=order_job(order_flow(max_attempts=1), integration, 1).pk)
    group = ErrorGroup.objects.get()

    error_group_triage(
        group=group,
        operator=lead,
        state=ErrorGroupState.ACKNOWLEDGED,
        assignee=lead,
        note="looking",
    )
    group.refresh_from_db()
    assert (group.state, group.assignee) == (ErrorGroupState.ACKNOWLEDGED, lead)
    entry = group.history.latest()
    assert entry.history_user == lead
    assert entry.history_change_reason == "open → acknowledged; assigned to lead by lead: looking"

    versions = group.history.count()
    with pytest.raises(DataError):
        error_group_triage(group=group, operator=lead, state="fixed")
    group.refresh_from_db()
    assert group.state == ErrorGroupState.ACKNOWLEDGED
    assert group.history.count() == versions


def test_a_job_whose_workers_keep_dying_is_grouped(integration, clock):
    flow = order_flow(max_attempts=1)
    job = order_job(flow, integration, 1)
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, attempts=1, locked_by="dead:1", lease_expires_at=clock.now
    )
    clock.advance(seconds=1)
    assert jobs.job_claim(job_id=job.pk, worker="w2") is None
    job.refresh_from_db()
    assert job.status == JobStatus.QUARANTINED
    assert job.error_group.error_class == "integrations.jobs.WorkerLost"


def test_filing_that_fails_never_undoes_the_failure(integration, upstream, monkeypatch):
    from integrations.services import error_groups

    def broken(**kwargs):
        raise RuntimeError("grouping is broken")

    monkeypatch.setattr(error_groups, "_record", broken)
    upstream.default = Reply(status=503)
    job = order_job(order_flow(max_attempts=1), integration, 1)
    assert jobs.job_run(job_id=job.pk) == JobStatus.QUARANTINED
    job.refresh_from_db()
    assert job.status == JobStatus.QUARANTINED and job.error_group is None
    assert not ErrorGroup.objects.exists()


def test_a_job_that_fails_another_way_leaves_its_former_group_to_clear(
    integration, upstream, django_capture_on_commit_callbacks
):
    flow = order_flow(max_attempts=3)
    job = order_job(flow, integration, 1)
    upstream.default = Reply(status=503)
    assert jobs.job_run(job_id=job.pk) == JobStatus.RETRYING
    first = Job.objects.get(pk=job.pk).error_group
    Job.objects.filter(pk=job.pk).update(next_attempt_at=None)
    upstream.default = Reply(status=400, body={"error": "no such account"})
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs.job_run(job_id=job.pk) == JobStatus.QUARANTINED
    second = Job.objects.get(pk=job.pk).error_group
    assert second != first
    first.refresh_from_db()
    assert first.state == ErrorGroupState.RESOLVED  # none of its jobs fails that way now
    assert ErrorGroup.objects.get(pk=second.pk).state == ErrorGroupState.OPEN
