"""A sender's redelivery of a failed event re-runs what failed, never an operator's decision."""

import pytest

from integrations.choices import AttemptOutcome, EventStatus, JobStatus
from integrations.models import InboundEvent, Job
from integrations.services.jobs import job_quarantine
from tests.conftest import make_flow, post_stripe, stripe_event
from tests.support.upstream import Reply

pytestmark = pytest.mark.django_db

WRITE = [("write", "tests.call_upstream", {"reference": "event.reference"})]


def test_redelivery_keeps_an_operator_quarantine_and_retries_what_failed_on_its_own(
    client, integration, upstream, django_capture_on_commit_callbacks
):
    """Rule: on redelivery of a failed event, a quarantined job whose last attempt row
    is an operator action (an operator quarantined it) stays quarantined; jobs that
    failed on their own (their last row is the failed attempt) run again."""
    make_flow("held", steps=WRITE, max_attempts=3)
    make_flow("broke", steps=WRITE, max_attempts=1)
    upstream.queue(Reply(status=503), Reply(status=503))
    payload = stripe_event()
    with django_capture_on_commit_callbacks(execute=True):
        post_stripe(client, integration.stripe, payload)
    held, broke = Job.objects.get(flow__key="held"), Job.objects.get(flow__key="broke")
    assert (held.status, broke.status) == (JobStatus.RETRYING, JobStatus.QUARANTINED)
    job_quarantine(job=held, note="customer asked us to wait")
    assert InboundEvent.objects.get().status == EventStatus.FAILED
    held_log = list(held.attempt_log.values_list("outcome", flat=True))
    assert held_log[-1] == AttemptOutcome.OPERATOR

    with django_capture_on_commit_callbacks(execute=True):
        response = post_stripe(client, integration.stripe, payload)

    assert response.json()["duplicate"] is True
    held.refresh_from_db()
    broke.refresh_from_db()
    assert held.status == JobStatus.QUARANTINED
    assert held.last_error == "quarantined by operator: customer asked us to wait"
    assert list(held.attempt_log.values_list("outcome", flat=True)) == held_log
    assert broke.status == JobStatus.SUCCEEDED
    assert len(upstream.requests) == 3  # the two first tries, then the broken job's retry
