"""Issue 9, item 8: events for a paused integration or a disabled flow wait, and run
when it resumes (Stripe does not redeliver what was answered 2xx).

The rule (``inbox.event_route``): every integration that contains the event's
connection and every flow its type triggers get a job, enabled or not; a job whose
integration is paused or whose flow is disabled is made *paused* (its event
*waiting*) and becomes pending when both are enabled again: at once through
``integration_update`` / ``flow_set_enabled``, within a sweep when the box is ticked
in the admin. A paused job waits at most ``INTEGRATIONS["PAUSED_JOB_MAX_DAYS"]``
(30) days, then is discarded with the reason and its event ignored. An event whose
connection is in no integration, or that no flow at all is triggered by, is ignored
at once, as before: there is nothing to resume.
"""

import json
from datetime import timedelta

import pytest

import tests.support.actions as test_actions
from integrations.choices import EventStatus, JobStatus
from integrations.connectors.stripe.webhooks import parse
from integrations.models import Flow, InboundEvent, Integration, Job
from integrations.services import inbox
from integrations.services.connections import connection_create
from integrations.services.flows import flow_set_enabled
from integrations.services.integrations import integration_update
from integrations.services.jobs import job_run, jobs_expire_paused
from integrations.services.sweeper import sweep
from tests.conftest import make_flow, make_job, stripe_event

pytestmark = pytest.mark.django_db


def deliver(conn, capture):
    body = json.dumps(stripe_event()).encode()
    with capture(execute=True):
        received = inbox.inbox_event_receive(
            connection_obj=conn, parsed=parse(body), body=body, headers={}
        )
        inbox.inbox_drain()
    return InboundEvent.objects.get(pk=received.event_id)


def test_events_of_a_paused_integration_wait_and_run_when_it_is_enabled(
    integration, django_capture_on_commit_callbacks
):
    make_flow("a", steps=[("echo", "tests.echo", {"value": "event.id"})])
    integration_update(integration=integration, enabled=False, reason="maintenance")
    event = deliver(integration.stripe, django_capture_on_commit_callbacks)
    assert event.status == EventStatus.WAITING
    assert event.status_reason == "waiting until resumed: integration main is paused"
    assert list(Job.objects.values_list("status", flat=True)) == [JobStatus.PAUSED]
    assert test_actions.CALLS == []
    with django_capture_on_commit_callbacks(execute=True):
        integration_update(integration=integration, enabled=True, reason="back")
    assert list(Job.objects.values_list("status", flat=True)) == [JobStatus.SUCCEEDED]
    assert [c["value"] for c in test_actions.CALLS] == [event.external_id]
    event.refresh_from_db()
    assert event.status == EventStatus.PROCESSED


def test_events_of_a_disabled_flow_wait_and_run_when_it_is_enabled(
    integration, django_capture_on_commit_callbacks
):
    flow = make_flow("a", steps=[("echo", "tests.echo", {"value": "event.id"})])
    other = make_flow("b", steps=[("echo", "tests.echo", {"value": "event.type"})])
    flow_set_enabled(flow=flow, enabled=False, reason="paused for a fix")
    event = deliver(integration.stripe, django_capture_on_commit_callbacks)
    # The other flow runs now; the disabled one waits, so the event does too.
    assert dict(Job.objects.values_list("flow__key", "status")) == {
        "a": JobStatus.PAUSED,
        "b": JobStatus.SUCCEEDED,
    }
    event.refresh_from_db()
    assert event.status == EventStatus.WAITING
    assert event.status_reason == "waiting until resumed: flow a is disabled"
    assert Flow.history.filter(key="a").first().history_change_reason == "paused for a fix"
    with django_capture_on_commit_callbacks(execute=True):
        flow_set_enabled(flow=flow, enabled=True)
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.SUCCEEDED}
    assert sorted(c["value"] for c in test_actions.CALLS) == sorted(
        [event.external_id, "payment_intent.succeeded"]
    )
    event.refresh_from_db()
    assert event.status == EventStatus.PROCESSED
    assert other.enabled


def test_the_sweeper_resumes_a_flow_enabled_in_the_admin(
    integration, django_capture_on_commit_callbacks
):
    flow = make_flow("a", steps=[("echo", "tests.echo", {"value": "event.id"})])
    Flow.objects.filter(pk=flow.pk).update(enabled=False)  # the admin's save
    event = deliver(integration.stripe, django_capture_on_commit_callbacks)
    assert event.status == EventStatus.WAITING
    Flow.objects.filter(pk=flow.pk).update(enabled=True)
    with django_capture_on_commit_callbacks(execute=True):
        sweep()
    assert Job.objects.get().status == JobStatus.SUCCEEDED
    event.refresh_from_db()
    assert event.status == EventStatus.PROCESSED


def test_one_paused_integration_does_not_hold_another(
    integration, django_capture_on_commit_callbacks
):
    second = Integration.objects.create(
        name="second",
        znode=connection_create(name="znode-2", kind="znode"),
        stripe=integration.stripe,
        enabled=False,
    )
    make_flow("a", steps=[("echo", "tests.echo", {"value": "event.id"})])
    deliver(integration.stripe, django_capture_on_commit_callbacks)
    assert dict(Job.objects.values_list("integration__name", "status")) == {
        "main": JobStatus.SUCCEEDED,
        "second": JobStatus.PAUSED,
    }
    with django_capture_on_commit_callbacks(execute=True):
        integration_update(integration=second, enabled=True)
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.SUCCEEDED}


def test_a_job_whose_flow_is_disabled_before_it_starts_waits_instead_of_running(
    integration, django_capture_on_commit_callbacks
):
    flow = make_flow("a", steps=[("echo", "tests.echo", {"value": "event.reference"})])
    job = make_job(flow, integration)
    Flow.objects.filter(pk=flow.pk).update(enabled=False)
    assert job_run(job_id=job.pk) == "skipped"
    job.refresh_from_db()
    assert job.status == JobStatus.PAUSED and job.attempts == 0
    assert test_actions.CALLS == []
    with django_capture_on_commit_callbacks(execute=True):
        flow_set_enabled(flow=flow, enabled=True)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED


def test_a_paused_job_waits_at_most_the_configured_days(
    integration, django_capture_on_commit_callbacks, settings, clock
):
    settings.INTEGRATIONS = {**settings.INTEGRATIONS, "PAUSED_JOB_MAX_DAYS": 3}
    make_flow("a", steps=[("echo", "tests.echo", {"value": "event.id"})])
    integration_update(integration=integration, enabled=False)
    event = deliver(integration.stripe, django_capture_on_commit_callbacks)
    clock.advance(days=2, hours=23)
    assert jobs_expire_paused() == []
    clock.advance(hours=2)
    assert jobs_expire_paused() == [Job.objects.get().pk]
    job = Job.objects.get()
    assert job.status == JobStatus.DISCARDED
    assert job.last_error == "paused for more than 3 days (integration main is paused); discarded"
    event.refresh_from_db()
    assert event.status == EventStatus.IGNORED
    assert event.status_reason == "waited more than 3 days: integration main is paused"
    assert event.processed_at == clock.now
    with django_capture_on_commit_callbacks(execute=True):
        integration_update(integration=integration, enabled=True)
    assert test_actions.CALLS == []  # given up: resuming does not revive it
    assert clock.now - job.updated_at < timedelta(seconds=1)
