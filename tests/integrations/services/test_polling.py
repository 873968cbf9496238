"""The poller finds orders placed in the sandbox store with webhooks switched off."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule

from integrations.choices import EventSource, EventStatus
from integrations.connectors import registry as connectors
from integrations.connectors.znode.client import forget_cached
from integrations.models import InboundEvent, Integration, Job, PollCursor, PolledOrder
from integrations.services.connections import connection_create
from integrations.services.inbox import inbox_drain
from integrations.services.polling import PollResult, connection_poll, poll_schedules_sync
from tests.conftest import make_flow
from tests.support.shop import Shop, store_connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def store(sandbox):
    forget_cached()
    return store_connection(sandbox, name="store-polled", poll=True)


@pytest.fixture
def shop(sandbox):
    return Shop(sandbox.system_url("znode"))


def events(kind=None):
    qs = InboundEvent.objects.filter(source=EventSource.POLL).order_by("id")
    return list(qs.filter(event_type=kind) if kind else qs)


def test_new_orders_become_order_created_events_once(store, shop):
    connection_poll(connection=store)  # first run: the seeded history of the last day
    baseline = len(events())
    placed = [shop.place_order(total=f"{20 + i}.00") for i in range(3)]
    result = connection_poll(connection=store)
    assert (result.created, result.updated) == (3, 0)
    created = events("order.created")[-3:]
    assert [e.reference for e in created] == [o["OrderNumber"] for o in placed]
    assert created[0].external_id == f"poll:order:{placed[0]['OmsOrderId']}:v1"
    assert created[0].status == EventStatus.RECEIVED
    # Polling again (overlapping window) emits nothing new.
    assert connection_poll(connection=store).created == 0
    assert len(events()) == baseline + 3


def test_state_changes_become_order_updated_events(store, shop):
    placed = shop.place_order()
    connection_poll(connection=store)
    shop.cancel(placed["OrderNumber"])
    result = connection_poll(connection=store)
    assert result.updated == 1
    update = events("order.updated")[-1]
    assert update.external_id == f"poll:order:{placed['OmsOrderId']}:v2"
    polled = PolledOrder.objects.get(connection=store, order_id=placed["OmsOrderId"])
    assert polled.open is False  # canceled is final: no more re-reads


def test_open_orders_older_than_the_window_are_still_watched(store, shop):
    old = shop.place_order(
        order_date=(timezone.now() - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S")
    )
    connection_poll(connection=store)
    # Move the watermark far past the order: the date window no longer covers it.
    PollCursor.objects.filter(connection=store).update(
        watermark=timezone.now() + timedelta(hours=1)
    )
    shop.set_state(old["OrderNumber"], state="SHIPPED")
    result = connection_poll(connection=store)
    assert result.updated == 1
    assert events("order.updated")[-1].reference == old["OrderNumber"]


def test_polled_events_run_the_same_flows_as_webhooks(
    store, shop, stripe_connection, django_capture_on_commit_callbacks
):
    Integration.objects.create(name="polled", znode=store, stripe=stripe_connection)
    make_flow(
        "order-created",
        source="znode",
        event="order.created",
        steps=[("echo", "tests.echo", {"value": "event.data.object.OrderNumber"})],
    )
    connection_poll(connection=store)
    placed = shop.place_order()
    connection_poll(connection=store)
    with django_capture_on_commit_callbacks(execute=True):
        inbox_drain()
    job = Job.objects.get(reference=placed["OrderNumber"])
    assert job.step_outputs["echo"]["value"] == placed["OrderNumber"]


def test_a_second_poller_does_not_run_concurrently(store):
    PollCursor.objects.create(connection=store, lease_until=timezone.now() + timedelta(minutes=1))
    assert connection_poll(connection=store).skipped is True


def test_outage_keeps_the_watermark_and_releases_the_lease(store, shop, sandbox):
    from integrations.kernel import exceptions as exc

    connection_poll(connection=store)
    cursor = PollCursor.objects.get(connection=store)
    sandbox.set_faults("znode", error_rate=1.0)
    with pytest.raises(exc.ConnectorUnavailable):
        connection_poll(connection=store)
    after = PollCursor.objects.get(connection=store)
    assert after.watermark == cursor.watermark
    assert after.lease_until is None
    assert "ConnectorUnavailable" in after.last_error


def test_one_schedule_per_polling_store(store, sandbox):
    connection_create(
        name="store-no-poll",
        kind="znode",
        base_url=sandbox.system_url("znode"),
        settings={"poll": False},
    )
    assert poll_schedules_sync() == 1
    schedule = Schedule.objects.get(name=f"integrations.poll:{store.pk}")
    assert (schedule.func, schedule.args, schedule.minutes) == (
        "integrations.tasks.poll_connection",
        str(store.pk),
        1,
    )
    from integrations import tasks

    assert tasks.poll_znode is tasks.poll_connection  # schedules written before the rename
    store.enabled = False
    store.save()
    poll_schedules_sync()
    assert not Schedule.objects.filter(name__startswith="integrations.poll:").exists()


def test_the_engine_polls_through_the_registered_connector(store, monkeypatch):
    """The engine holds the lease and the cursor; what to read is the connector's
    ``poll``, found in the registry, which reports through the store it is given."""
    calls = []

    def poll(connection, poll_store, *, now):
        calls.append((connection.pk, poll_store.watermark, now))
        poll_store.advance(now - timedelta(minutes=1))
        assert PollCursor.objects.get(connection=store).lease_until == now + timedelta(minutes=5)

    monkeypatch.setattr(connectors.get("znode"), "poll", poll)
    now = timezone.now()
    assert connection_poll(connection=store, now=now) == PollResult(created=0, updated=0)
    assert calls == [(store.pk, None, now)]
    cursor = PollCursor.objects.get(connection=store)
    assert (cursor.watermark, cursor.lease_until, cursor.last_run_at, cursor.last_error) == (
        now - timedelta(minutes=1),
        None,
        now,
        "",
    )


def test_a_connection_whose_connector_does_not_poll_is_skipped(stripe_connection):
    assert connectors.get("stripe").supports_polling is False
    assert connection_poll(connection=stripe_connection) == PollResult(skipped=True)
    assert not PollCursor.objects.exists()
