"""Issue 9, item 2: one event the database cannot store must not stop the inbox.

PostgreSQL refuses NUL in text and ``\\u0000`` (and lone surrogates) in jsonb; SQLite
stores them. The tests assert what each database ends with, so they mean something
on both, and the failure they guard against is the real one on PostgreSQL.
"""

import json

import pytest
from django.db import connection
from django.db import utils as db_utils

from integrations.choices import EventStatus, JobStatus
from integrations.connectors.stripe.webhooks import parse
from integrations.kernel.exceptions import DataError
from integrations.kernel.jsonutil import db_json, db_text
from integrations.models import InboundEvent, Job
from integrations.services import flows, inbox
from integrations.services.events import event_skip
from tests.conftest import make_flow, stripe_event

pytestmark = pytest.mark.django_db

POISON = "Ann\u0000 Lee \ud800"


def receive(conn, payload):
    body = json.dumps(payload).encode()  # NUL and the surrogate travel as JSON escapes
    return inbox.inbox_event_receive(connection_obj=conn, parsed=parse(body), body=body, headers={})


def poisoned_event(**extra):
    event = stripe_event(**extra)
    event["data"]["object"]["metadata"]["customer_name"] = POISON
    return event


def test_text_the_database_cannot_store_becomes_the_replacement_character():
    assert db_text(POISON) == "Ann\ufffd Lee \ufffd"
    assert db_text("plain") == "plain"
    assert db_json({"a\u0000": [POISON, 1, None, {"b": "\udfff"}]}) == {
        "a\ufffd": ["Ann\ufffd Lee \ufffd", 1, None, {"b": "\ufffd"}]
    }
    assert flows._json_safe({"name": POISON}) == {"name": "Ann\ufffd Lee \ufffd"}


def test_an_event_with_nul_in_a_metadata_value_is_routed_and_its_job_runs(
    integration, django_capture_on_commit_callbacks
):
    """Rule: NUL and lone surrogates in text bound for jsonb (job context, step
    outputs, headers) and for text columns become U+FFFD; the raw body keeps the
    sender's escapes as evidence. On PostgreSQL the unfixed drain raised DataError."""
    make_flow(
        "names",
        steps=[("echo", "tests.echo", {"value": "event.data.data.object.metadata.customer_name"})],
    )
    received = receive(integration.stripe, poisoned_event())
    with django_capture_on_commit_callbacks(execute=True):
        assert inbox.inbox_drain() == 1
    job = Job.objects.get()
    assert job.status == JobStatus.SUCCEEDED
    name = job.context["event"]["data"]["data"]["object"]["metadata"]["customer_name"]
    assert name == "Ann\ufffd Lee \ufffd"
    assert job.step_outputs["echo"]["value"] == "Ann\ufffd Lee \ufffd"
    event = InboundEvent.objects.get(pk=received.event_id)
    assert event.status == EventStatus.PROCESSED
    assert "\\u0000" in event.body  # the evidence is the sender's


def test_an_event_routing_cannot_store_fails_alone_and_the_batch_goes_on(
    integration, django_capture_on_commit_callbacks, monkeypatch
):
    """Rule: routing runs each event in a savepoint; whatever it raises (here the
    database refusing the row) rolls back that event only, which is marked failed
    with the reason, and the events after it are routed in the same drain. A later
    drain does not meet it again. On SQLite, which stores NUL, the refusal is
    simulated with the error PostgreSQL raises."""
    monkeypatch.setattr(inbox, "db_json", lambda value: value)  # sanitizing off
    if connection.vendor != "postgresql":
        real = inbox.event_document

        def refusing(event, *args, **kwargs):
            if "\\u0000" in event.body:
                raise db_utils.DataError("unsupported Unicode escape sequence")
            return real(event, *args, **kwargs)

        monkeypatch.setattr(inbox, "event_document", refusing)
    make_flow("a", steps=[("echo", "tests.echo", {"value": "event.id"})])
    bad = receive(integration.stripe, poisoned_event())
    good = receive(integration.stripe, stripe_event())
    with django_capture_on_commit_callbacks(execute=True):
        assert inbox.inbox_drain() == 2
    failed = InboundEvent.objects.get(pk=bad.event_id)
    assert failed.status == EventStatus.FAILED
    assert failed.status_reason.startswith("could not route: DataError")
    assert not Job.objects.filter(event=failed).exists()
    assert InboundEvent.objects.get(pk=good.event_id).status == EventStatus.PROCESSED
    assert inbox.inbox_drain() == 0


def test_an_operator_skips_a_failed_event_or_replays_it(
    integration, django_capture_on_commit_callbacks, admin_user
):
    """Rule: skip (event_skip) is for received, waiting or failed events: their
    unfinished jobs are discarded with the note, the event is ignored saying who and
    why, nothing is deleted; a processed event cannot be skipped. A replay of the
    poisoned event now routes (its text is made storable)."""
    make_flow("f", steps=[("boom", "tests.fail", {"error": "'bad_data'"})])
    received = receive(integration.stripe, poisoned_event())
    with django_capture_on_commit_callbacks(execute=True):
        inbox.inbox_drain()
    event = InboundEvent.objects.get(pk=received.event_id)
    assert event.status == EventStatus.FAILED
    skipped = event_skip(event=event, operator=admin_user, note="bad test data")
    assert skipped.status == EventStatus.IGNORED
    assert skipped.status_reason == "skipped by admin: bad test data"
    job = Job.objects.get(event=event)
    assert job.status == JobStatus.DISCARDED
    assert job.attempt_log.filter(note__contains="bad test data").exists()
    with pytest.raises(DataError, match="only received, waiting or failed"):
        event_skip(event=skipped, operator=admin_user, note="again")
    replay = inbox.event_replay(event=event, operator=admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        inbox.inbox_drain()
    assert Job.objects.filter(event=replay).count() == 1


def test_a_job_failing_with_text_the_database_refuses_is_still_quarantined(
    integration, django_capture_on_commit_callbacks
):
    """The failure's own text (an upstream message with NUL) is made storable too, so
    the job ends quarantined with its reason instead of staying leased as running
    (PostgreSQL refuses NUL in text)."""
    make_flow("f", steps=[("boom", "tests.fail", {"error": "'nul'"})], max_attempts=1)
    received = receive(integration.stripe, stripe_event())
    with django_capture_on_commit_callbacks(execute=True):
        inbox.inbox_drain()
    job = Job.objects.get(event_id=received.event_id)
    assert job.status == JobStatus.QUARANTINED
    assert "Ann\ufffd Lee" in job.last_error
    assert job.lease_expires_at is None


def test_the_database_failing_leaves_the_event_for_the_next_drain(
    integration, django_capture_on_commit_callbacks, monkeypatch
):
    """Rule: only the event's own fault fails it for good. A deadlock, a lock timeout
    or a dropped connection while routing leaves it received, and the next drain
    routes it (an event answered 2xx is never lost to a passing database error)."""
    make_flow("a", steps=[("echo", "tests.echo", {"value": "event.id"})])
    received = receive(integration.stripe, stripe_event())
    real = inbox.event_route

    def deadlocked(*args, **kwargs):
        raise db_utils.OperationalError("deadlock detected")

    monkeypatch.setattr(inbox, "event_route", deadlocked)
    with django_capture_on_commit_callbacks(execute=True):
        inbox.inbox_drain()
    assert InboundEvent.objects.get(pk=received.event_id).status == EventStatus.RECEIVED
    monkeypatch.setattr(inbox, "event_route", real)
    with django_capture_on_commit_callbacks(execute=True):
        inbox.inbox_drain()
    assert InboundEvent.objects.get(pk=received.event_id).status == EventStatus.PROCESSED
