"""The poller reports the sandbox store's returns (9.x has no webhooks, §7.1): one event
per return change, in the states the connection names, and a change that a Znode 10
Return event reports too creates its jobs once."""

import json
from datetime import datetime
from decimal import Decimal
from urllib.parse import unquote_plus
from zoneinfo import ZoneInfo

import pytest
import requests
from django.utils import timezone

from integrations.choices import EventSource, EventStatus
from integrations.connectors.znode.client import ZnodeClient, forget_cached
from integrations.connectors.znode.sync import RETURNS_WATERMARK, return_event_body
from integrations.connectors.znode.webhooks import parse
from integrations.kernel import exceptions as exc
from integrations.kernel.jsonutil import dumps_exact
from integrations.models import ApiCall, InboundEvent, Integration, Job, PollCursor
from integrations.services.inbox import inbox_drain
from integrations.services.polling import connection_poll
from tests.conftest import ZNODE_TOKEN, make_flow, post_znode, znode_event
from tests.support.shop import STORE_TIMEZONE, Shop, store_connection

pytestmark = pytest.mark.django_db


def polled_store(sandbox, name="store-returns", **settings):
    forget_cached()  # no return state list cached from another test's store
    return store_connection(sandbox, name=name, poll=True, **settings)


@pytest.fixture
def store(sandbox):
    return polled_store(sandbox)


class Returns:
    """The back office of the sandbox store: open returns, move them between states."""

    def __init__(self, sandbox):
        self.base = f"{sandbox.system_url('znode')}/_test/returns"
        self.shop = Shop(sandbox.system_url("znode"))

    def open(self, total: str = "20.00") -> dict:
        order = self.shop.place_order(total=total)
        response = requests.post(self.base, json={"order_number": order["OrderNumber"]}, timeout=10)
        response.raise_for_status()
        return response.json()["Return"]

    def move(self, number: str, state: str) -> dict:
        response = requests.post(f"{self.base}/{number}/state", json={"state": state}, timeout=10)
        response.raise_for_status()
        return response.json()["Return"]


@pytest.fixture
def returns(sandbox):
    return Returns(sandbox)


def return_events(store, return_id=None) -> list[InboundEvent]:
    qs = InboundEvent.objects.filter(connection=store, event_type__startswith="return.")
    if return_id is not None:
        qs = qs.filter(object_id=str(return_id))
    return list(qs.order_by("id"))


def store_time(text: str) -> datetime:
    return timezone.make_aware(datetime.fromisoformat(text), ZoneInfo(STORE_TIMEZONE))


def returns_watermark(store) -> str | None:
    return PollCursor.objects.get(connection=store).watermarks.get(RETURNS_WATERMARK)


@pytest.mark.parametrize(
    ("row", "event_id", "name"),
    [
        (
            {"RmaReturnStateId": 50, "ModifiedDate": "2026-11-30T10:00:00.5"},
            "poll:return:7:50:2026-11-30T10:00:00.5",
            "Updated",
        ),
        (
            {
                "RmaReturnStateId": 10,
                "CreatedDate": "2026-11-30T09:00:00",
                "ModifiedDate": "2026-11-30T09:00:00",
            },
            "poll:return:7:10:2026-11-30T09:00:00",
            "Created",  # as it was created
        ),
        (
            {  # unset BaseModel dates (.NET's MinValue) say nothing about a creation
                "ReturnStatus": " Refund  Processed ",
                "CreatedDate": "0001-01-01T00:00:00",
                "ModifiedDate": "0001-01-01T00:00:00",
            },
            "poll:return:7:Refund Processed:0001-01-01T00:00:00",
            "Updated",
        ),
        ({}, "poll:return:7::", "Updated"),
    ],
)
def test_a_polled_return_is_shaped_like_a_return_event(row, event_id, name):
    row = {"RmaReturnDetailsId": 7, "ReturnNumber": "RMA-7", "OrderNumber": "SO-7", **row}
    body = return_event_body(row)
    parsed = parse(body)
    assert (parsed.external_id, parsed.event_type) == (event_id, f"return.{name.lower()}")
    assert (parsed.object_id, parsed.reference) == ("7", "SO-7")
    assert parsed.payload["object"] == row
    assert return_event_body(row).startswith(body[: body.index(b'"EventTimeStamp"')])


def test_an_approved_return_is_one_event_and_a_re_read_stores_nothing(store, returns):
    connection_poll(connection=store)  # the seeded history: no approved return
    assert return_events(store) == []
    opened = returns.open(total="20.00")
    approved = returns.move(opened["ReturnNumber"], "Approved")
    result = connection_poll(connection=store)
    assert (result.created, result.updated, result.observed) == (1, 0, 1)  # its order, it
    (event,) = return_events(store)
    return_id = opened["RmaReturnDetailsId"]
    assert event.external_id == f"poll:return:{return_id}:50:{approved['ModifiedDate']}"
    assert (event.event_type, event.source, event.status) == (
        "return.updated",
        EventSource.POLL,
        EventStatus.RECEIVED,
    )
    assert (event.object_id, event.reference) == (str(return_id), opened["OrderNumber"])
    body = json.loads(event.body)
    assert (body["EventModule"], body["EventName"], body["EventDataCode"]) == (
        "Return",
        "Updated",
        opened["ReturnNumber"],
    )
    assert json.loads(body["EventPayload"])["RmaReturnStateId"] == 50
    # The overlap re-reads the same row: nothing new, not even a delivery count.
    assert connection_poll(connection=store).observed == 0
    assert connection_poll(connection=store).observed == 0
    assert [(e.pk, e.deliveries) for e in return_events(store)] == [(event.pk, 1)]
    # The watermark: the newest ModifiedDate read (store-local time, §2.2).
    assert datetime.fromisoformat(returns_watermark(store)) == store_time(approved["ModifiedDate"])


def test_a_later_change_is_a_new_event_and_other_states_none(store, returns):
    connection_poll(connection=store)
    opened = returns.open()
    number, return_id = opened["ReturnNumber"], opened["RmaReturnDetailsId"]
    first = returns.move(number, "Approved")
    connection_poll(connection=store)
    returns.move(number, "In Review")  # reopened: not a state this store reports
    assert connection_poll(connection=store).observed == 0
    again = returns.move(number, "Approved")  # approved again: a new change
    assert connection_poll(connection=store).observed == 1
    assert [e.external_id for e in return_events(store, return_id)] == [
        f"poll:return:{return_id}:50:{first['ModifiedDate']}",
        f"poll:return:{return_id}:50:{again['ModifiedDate']}",
    ]
    assert first["ModifiedDate"] != again["ModifiedDate"]


def test_the_poller_filters_by_the_states_named(sandbox, returns):
    submitted = returns.open()
    approved = returns.open()
    returns.move(approved["ReturnNumber"], "Approved")
    refunded = returns.open()
    returns.move(refunded["ReturnNumber"], "Refund Processed")

    default = polled_store(sandbox, name="default-states")
    connection_poll(connection=default)
    assert [e.object_id for e in return_events(default)] == [str(approved["RmaReturnDetailsId"])]
    listed = ApiCall.objects.filter(connection=default, operation="znode.return.list").first()
    assert "filter=rmareturnstateid~in~50,modifieddate~ge~" in unquote_plus(listed.url)

    two = polled_store(sandbox, name="two-states", poll_return_states=["approved", "SUBMITTED"])
    connection_poll(connection=two)
    assert {e.object_id for e in return_events(two)} == {
        str(submitted["RmaReturnDetailsId"]),
        str(approved["RmaReturnDetailsId"]),
        "502",  # the seeded return of order SBX-000011, submitted within the last day
    }

    every = polled_store(sandbox, name="all-states", poll_return_states=[])
    connection_poll(connection=every)
    by_id = {e.object_id: e for e in return_events(every)}
    assert set(by_id) == {str(r["RmaReturnDetailsId"]) for r in (submitted, approved, refunded)} | {
        "502"
    }
    listed = ApiCall.objects.filter(connection=every, operation="znode.return.list").first()
    assert "rmareturnstateid" not in listed.url
    # A return as it was created is reported as created, a changed one as updated.
    assert by_id[str(submitted["RmaReturnDetailsId"])].event_type == "return.created"
    assert by_id[str(refunded["RmaReturnDetailsId"])].event_type == "return.updated"


def test_an_unknown_state_name_fails_the_poll_after_the_orders(sandbox):
    store = polled_store(sandbox, name="typo", poll_return_states=["Aproved"])
    with pytest.raises(exc.DataError, match="no return state named 'Aproved'"):
        connection_poll(connection=store)
    cursor = PollCursor.objects.get(connection=store)
    assert cursor.watermark is not None  # the orders were polled
    assert cursor.watermarks == {}
    assert "no return state named 'Aproved'" in cursor.last_error
    assert not ApiCall.objects.filter(connection=store, operation="znode.return.list").exists()


def test_return_polling_can_be_switched_off(sandbox, returns):
    store = polled_store(sandbox, name="orders-only", poll_returns=False)
    returns.move(returns.open()["ReturnNumber"], "Approved")
    result = connection_poll(connection=store)
    assert result.observed == 0 and result.created > 0
    assert return_events(store) == []
    assert not ApiCall.objects.filter(connection=store, operation="znode.return.list").exists()
    assert PollCursor.objects.get(connection=store).watermarks == {}


def test_the_returns_watermark_reached_is_kept_when_the_poll_fails(store, returns, monkeypatch):
    connection_poll(connection=store)
    returns.move(returns.open()["ReturnNumber"], "Approved")
    connection_poll(connection=store)
    before = returns_watermark(store)
    orders_before = PollCursor.objects.get(connection=store).watermark
    assert before is not None
    later = returns.move(returns.open()["ReturnNumber"], "Approved")

    real = ZnodeClient.list_returns

    def outage_after_the_later_return(self, **kwargs):
        rows = real(self, **kwargs)
        for row in rows:
            yield row
            if row["ReturnNumber"] == later["ReturnNumber"]:
                raise exc.ConnectorUnavailable("znode.return.list: connection reset")

    monkeypatch.setattr(ZnodeClient, "list_returns", outage_after_the_later_return)
    with pytest.raises(exc.ConnectorUnavailable):
        connection_poll(connection=store)
    cursor = PollCursor.objects.get(connection=store)
    assert cursor.watermarks[RETURNS_WATERMARK] > before  # advanced to the row read
    assert cursor.watermark >= orders_before
    assert cursor.lease_until is None and "ConnectorUnavailable" in cursor.last_error
    assert return_events(store, later["RmaReturnDetailsId"])  # its event was stored
    monkeypatch.undo()
    kept = cursor.watermarks[RETURNS_WATERMARK]
    connection_poll(connection=store)
    assert returns_watermark(store) == kept  # nothing newer since
    assert len(return_events(store)) == 2


# --- the same change from a Znode 10 Return event and from the poller -------------------------
@pytest.fixture
def both(sandbox, stripe_connection):
    """Return events from webhooks and the poller both on, one flow per return event."""
    store = polled_store(
        sandbox, name="store-both", webhook_secrets=[ZNODE_TOKEN], poll_return_states=[]
    )
    Integration.objects.create(name="both", znode=store, stripe=stripe_connection)
    make_flow("return-created", source="znode", event="return.created")
    make_flow("return-updated", source="znode", event="return.updated")
    connection_poll(connection=store)  # the seeded history, known before the test starts
    inbox_drain()
    return store


def return_webhook(client, store, name: str, number: str) -> InboundEvent:
    """What a store sending Return events posts: the return as Znode holds it now."""
    model = ZnodeClient(store).get_return(number)
    payload = znode_event(module="Return", name=name, payload={})
    payload.update(
        EventDataId=model["RmaReturnDetailsId"],
        EventDataCode=number,
        EventPayload=dumps_exact(model),
    )
    response = post_znode(client, store, payload)
    assert response.status_code == 200, response.content
    return InboundEvent.objects.get(connection=store, external_id=payload["EventId"])


def jobs_of(order_number: str) -> list[str]:
    return list(
        Job.objects.filter(reference=order_number, flow__key__startswith="return-")
        .order_by("id")
        .values_list("flow__key", flat=True)
    )


def test_a_return_from_a_webhook_and_the_poller_is_one_job(client, both, returns):
    opened = returns.open()
    created = return_webhook(client, both, "Created", opened["ReturnNumber"])
    connection_poll(connection=both)
    inbox_drain()
    assert jobs_of(opened["OrderNumber"]) == ["return-created"]
    polled = return_events(both, opened["RmaReturnDetailsId"])[-1]
    assert (polled.source, polled.event_type, polled.status, polled.duplicate_of_id) == (
        EventSource.POLL,
        "return.created",
        EventStatus.DUPLICATE,
        created.pk,
    )

    returns.move(opened["ReturnNumber"], "Approved")
    connection_poll(connection=both)  # the poller first this time
    update = return_events(both, opened["RmaReturnDetailsId"])[-1]
    late = return_webhook(client, both, "Updated", opened["ReturnNumber"])
    inbox_drain()
    assert jobs_of(opened["OrderNumber"]) == ["return-created", "return-updated"]
    assert Job.objects.get(flow__key="return-updated").event_id == update.pk
    late.refresh_from_db()
    assert (late.status, late.duplicate_of_id) == (EventStatus.DUPLICATE, update.pk)


def test_our_refund_history_on_a_return_comes_back_as_no_job(client, both, returns):
    """The refund's return history row (§5.1 createreturnhistory) leaves the return's
    row as it was: the poller reads nothing new, and a store sending Return events for
    it sends the same change again."""
    opened = returns.open()
    returns.move(opened["ReturnNumber"], "Approved")
    connection_poll(connection=both)
    inbox_drain()
    assert jobs_of(opened["OrderNumber"]) == ["return-updated"]
    routed = return_events(both, opened["RmaReturnDetailsId"])[-1]
    ZnodeClient(both).add_return_history(
        return_details_id=opened["RmaReturnDetailsId"],
        transaction_id="re_echo",
        amount=Decimal("5.00"),
        message="Refunded",
    )
    echo = return_webhook(client, both, "Updated", opened["ReturnNumber"])
    assert connection_poll(connection=both).observed == 0
    inbox_drain()
    assert jobs_of(opened["OrderNumber"]) == ["return-updated"]
    echo.refresh_from_db()
    assert (echo.status, echo.duplicate_of_id) == (EventStatus.DUPLICATE, routed.pk)


def test_a_return_approved_again_after_its_refund_failed_runs_its_flow_again(both, returns):
    """Reopened (In Review, a state the default poller does not report) and approved
    again: the same state and amount as before, a new save: a new job."""
    opened = returns.open()
    returns.move(opened["ReturnNumber"], "Approved")
    connection_poll(connection=both)
    inbox_drain()
    returns.move(opened["ReturnNumber"], "In Review")
    returns.move(opened["ReturnNumber"], "Approved")
    connection_poll(connection=both)
    inbox_drain()
    assert jobs_of(opened["OrderNumber"]) == ["return-updated", "return-updated"]


def test_a_stored_watermark_that_is_no_date_is_read_as_none(store, returns):
    approved = returns.move(returns.open()["ReturnNumber"], "Approved")
    PollCursor.objects.create(connection=store, watermarks={RETURNS_WATERMARK: "yesterday"})
    assert connection_poll(connection=store).observed == 1  # the default lookback
    assert datetime.fromisoformat(returns_watermark(store)) == store_time(approved["ModifiedDate"])
