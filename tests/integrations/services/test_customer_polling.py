"""The poller reports the sandbox store's customers and address books (9.x has no
webhooks, §7.1): one event per change, nothing on a re-read, none with
``poll_customers`` off; and a change a Znode 10 User webhook reports too creates its
jobs once."""

import json
import time
from datetime import datetime
from urllib.parse import unquote_plus
from zoneinfo import ZoneInfo

import pytest
import requests
from django.utils import timezone

from integrations.choices import EventSource, EventStatus
from integrations.connectors.znode.client import ZnodeClient, forget_cached
from integrations.connectors.znode.mapping import (
    address_changes,
    change_fingerprint,
    user_changes,
    user_fingerprint,
)
from integrations.connectors.znode.sync import (
    ADDRESSES_WATERMARK,
    CUSTOMERS_WATERMARK,
    address_event_body,
    user_event_body,
)
from integrations.connectors.znode.webhooks import parse
from integrations.kernel import exceptions as exc
from integrations.kernel.facts import CustomerProfile, PostalAddress
from integrations.models import ApiCall, InboundEvent, Integration, Job, PollCursor
from integrations.services.inbox import inbox_drain
from integrations.services.polling import connection_poll
from tests.conftest import ZNODE_TOKEN, make_flow, post_znode
from tests.sandbox.test_znode_helpers import Receiver
from tests.support.shop import STORE_TIMEZONE, store_connection

pytestmark = pytest.mark.django_db


def polled_store(sandbox, name="store-customers", **settings):
    forget_cached()
    return store_connection(sandbox, name=name, poll=True, **settings)


@pytest.fixture
def store(sandbox):
    return polled_store(sandbox)


def sign_up(sandbox, email="gus@example.com", **fields) -> dict:
    """A shopper signs up in the sandbox store (``/_test/customers``)."""
    response = requests.post(
        f"{sandbox.system_url('znode')}/_test/customers",
        json={"first_name": "Gus", "last_name": "Green", "email": email, **fields},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["User"]


def events(store, prefix: str) -> list[InboundEvent]:
    qs = InboundEvent.objects.filter(connection=store, event_type__startswith=prefix)
    return list(qs.order_by("id"))


def customer_events(store) -> list[InboundEvent]:
    return [e for e in events(store, "") if e.event_type.startswith(("user.", "address."))]


def watermark(store, name: str) -> datetime | None:
    text = PollCursor.objects.get(connection=store).watermarks.get(name)
    return None if text is None else datetime.fromisoformat(text)


def store_time(text: str) -> datetime:
    return timezone.make_aware(datetime.fromisoformat(text), ZoneInfo(STORE_TIMEZONE))


@pytest.mark.parametrize(
    ("row", "event_id", "name"),
    [
        (
            {"CreatedDate": "2026-11-30T09:00:00", "ModifiedDate": "2026-11-30T09:00:00"},
            "poll:user:7:2026-11-30T09:00:00",
            "Created",
        ),
        (
            {"CreatedDate": "2026-11-30T09:00:00", "ModifiedDate": "2026-11-30T10:00:00.5"},
            "poll:user:7:2026-11-30T10:00:00.5",
            "Updated",
        ),
        (  # .NET's "no date" says nothing about a creation
            {"CreatedDate": "0001-01-01T00:00:00", "ModifiedDate": "0001-01-01T00:00:00"},
            "poll:user:7:0001-01-01T00:00:00",
            "Updated",
        ),
        ({}, "poll:user:7:", "Updated"),
    ],
)
def test_a_polled_user_is_shaped_like_a_user_event(row, event_id, name):
    row = {"UserId": 7, "UserName": "gus@example.com", "Email": "gus@example.com", **row}
    parsed = parse(user_event_body(row))
    assert (parsed.external_id, parsed.event_type) == (event_id, f"user.{name.lower()}")
    assert (parsed.object_id, parsed.reference) == ("7", "gus@example.com")
    assert parsed.payload["object"] == row
    address = {"AddressId": 9, "UserId": 7, "DisplayName": "Gus home", **row}
    parsed = parse(address_event_body(address))
    assert parsed.external_id == event_id.replace("user:7", "address:9")
    assert (parsed.event_type, parsed.object_id) == (f"address.{name.lower()}", "9")
    assert parsed.payload["object"] == address


def test_a_new_customer_and_each_change_are_one_event_and_a_re_poll_stores_nothing(sandbox, store):
    connection_poll(connection=store)  # the seeded customers changed long ago
    assert events(store, "user.") == events(store, "address.") == []
    assert (watermark(store, CUSTOMERS_WATERMARK), watermark(store, ADDRESSES_WATERMARK)) == (
        None,
        None,
    )
    gus = sign_up(
        sandbox,
        address={"address1": "3 Oak St", "city": "Reno", "state": "NV", "postal_code": "89501"},
    )
    result = connection_poll(connection=store)
    assert result.observed == 2
    (user,) = events(store, "user.")
    (address,) = events(store, "address.")
    row = ZnodeClient(store).list_addresses(user_id=gus["UserId"])[0]
    assert (user.external_id, user.event_type, user.source, user.status) == (
        f"poll:user:{gus['UserId']}:{gus['ModifiedDate']}",
        "user.created",
        EventSource.POLL,
        EventStatus.RECEIVED,
    )
    assert (user.object_id, user.reference) == (str(gus["UserId"]), "gus@example.com")
    body = json.loads(user.body)
    assert (body["EventModule"], body["EventName"], body["EventDataId"]) == (
        "User",
        "Created",
        gus["UserId"],
    )
    assert json.loads(body["EventPayload"])["Email"] == "gus@example.com"
    assert (address.external_id, address.event_type, address.object_id) == (
        f"poll:address:{row['AddressId']}:{row['ModifiedDate']}",
        "address.created",
        str(row["AddressId"]),
    )
    # The overlap re-reads the same rows: nothing new, not even a delivery count.
    assert connection_poll(connection=store).observed == 0
    assert [(e.pk, e.deliveries) for e in customer_events(store)] == [
        (user.pk, 1),
        (address.pk, 1),
    ]
    assert watermark(store, CUSTOMERS_WATERMARK) == store_time(gus["ModifiedDate"])
    assert watermark(store, ADDRESSES_WATERMARK) == store_time(row["ModifiedDate"])

    time.sleep(0.01)  # a later ModifiedDate
    written = ZnodeClient(store).update_customer(
        user_id=gus["UserId"],
        portal_id=None,
        changes=user_changes(CustomerProfile(email="gus@example.com", name="Gus  Green-Gray")),
    )
    assert connection_poll(connection=store).observed == 1
    assert connection_poll(connection=store).observed == 0
    update = events(store, "user.")[-1]
    stored = ZnodeClient(store).get_customer(user_id=gus["UserId"], portal_id=None)
    assert (update.external_id, update.event_type) == (
        f"poll:user:{gus['UserId']}:{stored['ModifiedDate']}",
        "user.updated",
    )
    # The poller's event carries the fingerprint the writer predicted.
    parsed = parse(update.body.encode())
    change = change_fingerprint(parsed.event_type, parsed.payload)
    assert change.fingerprint == user_fingerprint(written)
    assert watermark(store, CUSTOMERS_WATERMARK) == store_time(stored["ModifiedDate"])
    assert len(customer_events(store)) == 3


def test_addresses_added_are_reported_edits_of_older_ones_are_not(store):
    """9.x filters customer/addresslist on the user-address links (§6): an address
    added is seen (and, while its link is within the window, each edit of it), an edit
    of an address added long ago is not."""
    connection_poll(connection=store)
    client = ZnodeClient(store)
    created = client.create_address(
        user_id=11,
        values={**address_changes(PostalAddress(line1="7 Bay St", country="US")), "IsActive": 1},
    )
    assert connection_poll(connection=store).observed == 1
    time.sleep(0.01)
    edited = client.update_address(
        user_id=11, address_id=created["AddressId"], changes={"CityName": "Oakland"}
    )
    client.update_address(user_id=11, address_id=201, changes={"CityName": "Berkeley"})
    assert connection_poll(connection=store).observed == 1
    assert connection_poll(connection=store).observed == 0
    rows = {r["AddressId"]: r for r in client.list_addresses(user_id=11)}
    assert [(e.external_id, e.event_type) for e in events(store, "address.")] == [
        (f"poll:address:{created['AddressId']}:{created['ModifiedDate']}", "address.created"),
        (
            f"poll:address:{created['AddressId']}:{rows[created['AddressId']]['ModifiedDate']}",
            "address.updated",
        ),
    ]
    assert rows[201]["CityName"] == "Berkeley"  # written, but no event (added 60 days ago)
    assert json.loads(events(store, "address.")[-1].body)["EventPayload"].count("Oakland") == 1
    assert edited["CityName"] == "Oakland"
    listed = (
        ApiCall.objects.filter(connection=store, operation="znode.customer.addresses")
        .order_by("id")
        .first()
    )
    assert "filter=modifieddate~ge~" in unquote_plus(listed.url)
    assert "sort=modifieddate~asc,addressid~asc" in unquote_plus(listed.url)


def test_customer_polling_can_be_switched_off(sandbox):
    store = polled_store(sandbox, name="no-customers", poll_customers=False)
    sign_up(sandbox, address={"address1": "3 Oak St"})
    result = connection_poll(connection=store)
    assert result.observed == 0 and result.created > 0  # the orders were polled
    assert events(store, "user.") == events(store, "address.") == []
    operations = set(ApiCall.objects.filter(connection=store).values_list("operation", flat=True))
    assert operations & {"znode.customer.list", "znode.customer.addresses"} == set()
    assert PollCursor.objects.get(connection=store).watermarks == {}


def test_the_customers_watermark_waits_for_the_whole_list(sandbox, store, monkeypatch):
    """Users come in UserId order, not by date: a poll that fails half-way must not
    move the watermark past users it has not read."""
    connection_poll(connection=store)
    first = sign_up(sandbox, email="one@example.com")
    connection_poll(connection=store)
    before = watermark(store, CUSTOMERS_WATERMARK)
    assert before == store_time(first["ModifiedDate"])
    second = sign_up(sandbox, email="two@example.com")
    third = sign_up(sandbox, email="three@example.com")

    real = ZnodeClient.list_customers

    def outage_after_the_second(self, **kwargs):
        for row in real(self, **kwargs):
            yield row
            if row["UserId"] == second["UserId"]:
                raise exc.ConnectorUnavailable("znode.customer.list: connection reset")

    monkeypatch.setattr(ZnodeClient, "list_customers", outage_after_the_second)
    with pytest.raises(exc.ConnectorUnavailable):
        connection_poll(connection=store)
    assert watermark(store, CUSTOMERS_WATERMARK) == before
    assert [e.object_id for e in events(store, "user.")] == [
        str(first["UserId"]),
        str(second["UserId"]),  # stored before the outage
    ]
    monkeypatch.undo()
    assert connection_poll(connection=store).observed == 1  # the third; the second known
    assert watermark(store, CUSTOMERS_WATERMARK) == store_time(third["ModifiedDate"])


# --- the same change from a Znode 10 User webhook and from the poller ------------------------
@pytest.fixture
def both(sandbox, stripe_connection):
    """User webhooks and the poller both on, one flow per user event; the sandbox store
    sends its webhooks to ``receiver`` (they are posted to our endpoint by the test)."""
    store = polled_store(sandbox, name="store-both", webhook_secrets=[ZNODE_TOKEN])
    Integration.objects.create(name="both", znode=store, stripe=stripe_connection)
    make_flow("user-created", source="znode", event="user.created")
    make_flow("user-updated", source="znode", event="user.updated")
    connection_poll(connection=store)
    inbox_drain()
    return store


@pytest.fixture
def receiver(sandbox):
    hook = Receiver()
    sandbox.control("POST", "webhooks/znode", {"url": hook.url, "secret": ZNODE_TOKEN})
    yield hook
    hook.close()


def relay(client, store, receiver: Receiver, module: str) -> InboundEvent:
    """Post the store's newest webhook of ``module`` to our endpoint as it came."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = [raw for _, raw in receiver.received if json.loads(raw)["EventModule"] == module]
        if found:
            break
        time.sleep(0.02)
    receiver.received.clear()
    response = post_znode(client, store, found[-1].decode())
    assert response.status_code == 200, response.content
    return InboundEvent.objects.get(connection=store, external_id=json.loads(found[-1])["EventId"])


def jobs() -> list[str]:
    return list(
        Job.objects.filter(flow__key__startswith="user-")
        .order_by("id")
        .values_list("flow__key", flat=True)
    )


def test_a_user_change_from_a_webhook_and_the_poller_is_one_job(client, sandbox, both, receiver):
    gus = sign_up(sandbox)
    created = relay(client, both, receiver, "User")
    connection_poll(connection=both)
    inbox_drain()
    assert jobs() == ["user-created"]
    polled = events(both, "user.")[-1]
    assert (polled.source, polled.event_type, polled.status, polled.duplicate_of_id) == (
        EventSource.POLL,
        "user.created",
        EventStatus.DUPLICATE,
        created.pk,
    )

    time.sleep(0.01)
    ZnodeClient(both).update_customer(
        user_id=gus["UserId"], portal_id=1, changes={"PhoneNumber": "555-0160"}
    )
    connection_poll(connection=both)  # the poller first this time
    update = events(both, "user.")[-1]
    late = relay(client, both, receiver, "User")
    inbox_drain()
    assert jobs() == ["user-created", "user-updated"]
    assert Job.objects.get(flow__key="user-updated").event_id == update.pk
    late.refresh_from_db()
    assert (late.status, late.duplicate_of_id) == (EventStatus.DUPLICATE, update.pk)

    # A save of a field the sync never writes comes back from both as no job.
    time.sleep(0.01)
    ZnodeClient(both).update_customer(
        user_id=gus["UserId"], portal_id=1, changes={"EmailOptIn": True}
    )
    opted = relay(client, both, receiver, "User")
    assert connection_poll(connection=both).observed == 1  # a new ModifiedDate
    inbox_drain()
    assert jobs() == ["user-created", "user-updated"]
    opted.refresh_from_db()
    again = events(both, "user.")[-1]
    assert (opted.status, again.status) == (EventStatus.DUPLICATE, EventStatus.DUPLICATE)
    assert opted.duplicate_of_id == again.duplicate_of_id == update.pk
