import json
import threading
import time

import pytest

from integrations.choices import EventStatus, JobStatus
from integrations.connectors.stripe.webhooks import parse
from integrations.models import InboundEvent, Integration, Job
from integrations.services import inbox
from integrations.services.connections import connection_create
from tests.conftest import make_flow, stripe_event

pytestmark = pytest.mark.django_db


def receive(connection, payload):
    body = json.dumps(payload).encode()
    return inbox.inbox_event_receive(
        connection_obj=connection, parsed=parse(body), body=body, headers={}
    )


def test_drain_routes_received_events_in_order_and_enqueues_after_commit(
    integration, django_capture_on_commit_callbacks
):
    make_flow("a", steps=[("echo", "tests.echo", {"value": "event.id"})])
    ids = [receive(integration.stripe, stripe_event()).event_id for _ in range(3)]
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {EventStatus.RECEIVED}
    with django_capture_on_commit_callbacks(execute=True):
        assert inbox.inbox_drain(limit=2) == 3
    assert list(Job.objects.order_by("event_id").values_list("event_id", "status")) == [
        (i, JobStatus.SUCCEEDED) for i in ids
    ]
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {EventStatus.PROCESSED}
    assert inbox.inbox_drain() == 0


def test_condition_and_pattern_select_flows(integration, django_capture_on_commit_callbacks):
    make_flow("any-pi", event="payment_intent.*", steps=[("a", "tests.echo", {})])
    make_flow(
        "big-only",
        event="payment_intent.succeeded",
        condition="event.data.data.object.amount > `5000`",
        steps=[("a", "tests.echo", {})],
    )
    make_flow("charges", event="charge.*", steps=[("a", "tests.echo", {})])
    receive(integration.stripe, stripe_event())  # amount 1999
    with django_capture_on_commit_callbacks(execute=True):
        inbox.inbox_drain()
    assert list(Job.objects.values_list("flow__key", flat=True)) == ["any-pi"]


def test_one_event_runs_once_per_integration_sharing_the_connection(
    integration, django_capture_on_commit_callbacks
):
    other_store = connection_create(name="znode-2", kind="znode")
    Integration.objects.create(name="second", znode=other_store, stripe=integration.stripe)
    make_flow("a", steps=[("a", "tests.echo", {})])
    receive(integration.stripe, stripe_event())
    with django_capture_on_commit_callbacks(execute=True):
        inbox.inbox_drain()
    assert sorted(Job.objects.values_list("integration__name", flat=True)) == ["main", "second"]


def test_event_of_a_connection_outside_any_integration_is_ignored(stripe_connection):
    make_flow("a", steps=[("a", "tests.echo", {})])
    receive(stripe_connection, stripe_event())
    inbox.inbox_drain()
    event = InboundEvent.objects.get()
    assert event.status == EventStatus.IGNORED
    assert event.status_reason == "connection stripe-test belongs to no integration"
    assert Job.objects.count() == 0


def test_concurrent_duplicate_deliveries_store_one_row(integration, transactional_db):
    payload = stripe_event()
    results, errors = [], []

    def deliver():
        from django.db import connection

        try:
            results.append(receive(integration.stripe, payload).created)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == [False, False, False, True]
    event = InboundEvent.objects.get()
    assert event.deliveries == 4


def test_nudger_coalesces_a_burst_into_few_drains(monkeypatch, settings):
    sent = []
    monkeypatch.setattr(inbox, "_send_drain", lambda: sent.append(time.monotonic()))
    settings.INTEGRATIONS = {**settings.INTEGRATIONS, "INBOX_NUDGE_INTERVAL": 0.2}
    nudger = inbox._Nudger()
    for _ in range(50):
        nudger()
    time.sleep(0.1)
    assert len(sent) == 1  # the first wake-up went out at once
    nudger()  # an event after that drain was sent ...
    time.sleep(0.45)
    assert len(sent) == 2  # ... is covered by exactly one more drain
    assert sent[1] - sent[0] >= 0.19  # never more often than the interval
    assert nudger.thread.daemon and nudger.thread.is_alive()


def test_nudger_without_interval_drains_inline(monkeypatch, settings):
    sent = []
    monkeypatch.setattr(inbox, "_send_drain", lambda: sent.append(1))
    settings.INTEGRATIONS = {**settings.INTEGRATIONS, "INBOX_NUDGE_INTERVAL": 0}
    nudger = inbox._Nudger()
    nudger()
    nudger()
    assert sent == [1, 1] and nudger.thread is None


def test_a_flow_condition_that_fails_does_not_stop_the_inbox(
    integration, django_capture_on_commit_callbacks
):
    make_flow(
        "broken",
        condition="length(event.data.data.object.amount) > `0`",  # length() of a number
        steps=[("a", "tests.echo", {})],
    )
    bad = receive(integration.stripe, stripe_event())
    make_flow("good", event="charge.succeeded", steps=[("a", "tests.echo", {})])
    good = receive(integration.stripe, stripe_event("charge.succeeded"))
    with django_capture_on_commit_callbacks(execute=True):
        assert inbox.inbox_drain() == 2
    failed = InboundEvent.objects.get(pk=bad.event_id)
    assert failed.status == EventStatus.FAILED
    assert failed.status_reason.startswith("could not route:")
    assert InboundEvent.objects.get(pk=good.event_id).status == EventStatus.PROCESSED


def test_empty_remote_address_is_stored_as_none(client, stripe_connection):
    from tests.conftest import sign_stripe

    body = json.dumps(stripe_event())
    response = client.post(
        stripe_connection.webhook_path,
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign_stripe(body),
        REMOTE_ADDR="",  # gunicorn behind a unix socket
    )
    assert response.status_code == 200
    assert InboundEvent.objects.get().remote_addr is None


def test_unknown_tokens_are_not_cached(client, stripe_connection):
    from integrations import views

    for n in range(20):
        client.post(
            f"/webhooks/stripe/random-{n}/",
            data="{}",
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE="t=1,v1=x",
        )
    assert len(views._cache) == 0


def test_a_drained_event_is_parsed_once(
    integration, monkeypatch, django_capture_on_commit_callbacks
):
    """Issue 8: the change gate, the flows' documents and the connector's facts all
    read one parse of each event per drain, whatever becomes of it."""
    from collections import Counter

    from integrations.connectors import registry as connectors
    from integrations.connectors.znode import webhooks as znode_webhooks
    from tests.conftest import znode_event

    make_flow("paid", steps=[("a", "tests.echo", {})])
    make_flow("created", source="znode", event="order.created", steps=[("a", "tests.echo", {})])
    for _ in range(2):
        receive(integration.stripe, stripe_event())  # a job each
    receive(integration.stripe, stripe_event("charge.refunded"))  # no flow: ignored
    order = {"OmsOrderId": 42, "OrderNumber": "ORD-42", "OrderState": "PENDING", "Total": 5}
    znode_ids = []
    for payload in (order, order, {**order, "OmsOrderId": 43}):
        body = json.dumps(znode_event(payload=payload)).encode()
        result = inbox.inbox_event_receive(
            connection_obj=integration.znode,
            parsed=znode_webhooks.parse(body),
            body=body,
            headers={},
        )
        znode_ids.append(result.event_id)
    # The second creation of order 42 is a duplicate; order 43's body is unreadable.
    InboundEvent.objects.filter(pk=znode_ids[-1]).update(body="{not json")

    parsed = Counter()
    for kind in ("stripe", "znode"):
        connector = connectors.get(kind)

        def counting(body, parse=connector.parse):
            parsed[body] += 1
            return parse(body)

        monkeypatch.setattr(connector, "parse", counting)
    with django_capture_on_commit_callbacks(execute=True):
        assert inbox.inbox_drain(limit=4) == 6

    stored = {e.body.encode(): e.status for e in InboundEvent.objects.all()}
    assert parsed == Counter(dict.fromkeys(stored, 1))
    assert sorted(stored.values()) == sorted(
        [EventStatus.PROCESSED] * 3
        + [EventStatus.IGNORED] * 2  # no flow; the unreadable body
        + [EventStatus.DUPLICATE]
    )
