"""An event's status is decided in one place (``services/events.py``): the rules, one
by one."""

import json

import pytest

from integrations.choices import EventStatus, JobStatus
from integrations.connectors.stripe.webhooks import parse
from integrations.models import InboundEvent, Job
from integrations.services.events import Routed, event_intake_status, event_settle
from integrations.services.inbox import inbox_event_receive
from tests.conftest import make_flow, stripe_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(integration):
    body = json.dumps(stripe_event()).encode()
    result = inbox_event_receive(
        connection_obj=integration.stripe, parsed=parse(body), body=body, headers={}
    )
    return InboundEvent.objects.get(pk=result.event_id)


def with_jobs(event, integration, *statuses):
    for index, status in enumerate(statuses):
        Job.objects.create(
            event=event,
            flow=make_flow(f"flow-{index}"),
            integration=integration,
            status=status,
            max_attempts=3,
        )


def settled(event, routed=None):
    event_settle(event.pk, routed=routed)
    return InboundEvent.objects.get(pk=event.pk)


def test_intake_stores_known_events_as_received_and_others_as_ignored():
    assert event_intake_status(known=True, event_type="charge.succeeded") == (
        EventStatus.RECEIVED,
        "",
    )
    assert event_intake_status(known=False, event_type="radar.early_fraud_warning") == (
        EventStatus.IGNORED,
        "radar.early_fraud_warning is not an event we handle",
    )


@pytest.mark.parametrize(
    ("jobs", "status", "reason", "processed"),
    [
        ((JobStatus.SUCCEEDED, JobStatus.DISCARDED), EventStatus.PROCESSED, "", True),
        (
            (JobStatus.SUCCEEDED, JobStatus.QUARANTINED),
            EventStatus.FAILED,
            "a job is quarantined",
            False,
        ),
        ((JobStatus.QUARANTINED, JobStatus.RETRYING), EventStatus.PROCESSING, "", False),
        ((JobStatus.PENDING,), EventStatus.PROCESSING, "", False),
    ],
)
def test_an_event_with_jobs_has_their_status(event, integration, jobs, status, reason, processed):
    with_jobs(event, integration, *jobs)
    for routed in (None, Routed()):  # after a job's change, or right after routing
        after = settled(event, routed)
        assert (after.status, after.status_reason) == (status, reason)
        assert (after.processed_at is not None) is processed


def test_an_event_without_jobs_is_left_alone_unless_routing_found_none(event):
    assert settled(event).status == EventStatus.RECEIVED
    after = settled(event, Routed(reason="no enabled flow is triggered by stripe x"))
    assert (after.status, after.status_reason) == (
        EventStatus.IGNORED,
        "no enabled flow is triggered by stripe x",
    )
    assert after.processed_at is not None
    assert settled(event, Routed()).status_reason == "no flow condition matched"


def test_a_routing_failure_and_a_duplicate(event, integration):
    other = InboundEvent.objects.create(connection=integration.stripe, external_id="evt_other")
    after = settled(event, Routed(failure="bad condition"))
    assert (after.status, after.status_reason, after.processed_at) == (
        EventStatus.FAILED,
        "could not route: bad condition",
        None,
    )
    after = settled(event, Routed(reason="duplicate of event 1", duplicate_of=other.pk))
    assert (after.status, after.status_reason, after.duplicate_of_id) == (
        EventStatus.DUPLICATE,
        "duplicate of event 1",
        other.pk,
    )
    assert after.processed_at is not None
