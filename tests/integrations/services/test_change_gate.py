"""One order change, one job: the same change reported by a Znode 10 webhook and by the
9.x poller, and the echoes of our own writes, are stored as evidence but create no job.
The two-way customer sync's writes to Stripe are announced (``change_expect``): their
echo makes no job, anybody else's change does.

Webhooks are signed for real and go through the endpoint. Their payload is the order as
the sandbox store holds it after each write (the body its "Order Updated" webhook
carries); the poller reads the same store's ``orders/list`` rows over HTTP.
"""

import base64
import json
import threading
import time
from decimal import Decimal

import pytest
import requests

from integrations.choices import EventSource, EventStatus
from integrations.connectors.znode.client import forget_cached
from integrations.connectors.znode.mapping import order_change_fingerprint
from integrations.connectors.znode.sync import order_event_body
from integrations.connectors.znode.webhooks import parse
from integrations.models import InboundEvent, Integration, Job, RoutedChange
from integrations.services import inbox
from integrations.services.inbox import inbox_drain
from integrations.services.polling import connection_poll
from tests.conftest import ZNODE_TOKEN, make_flow, post_znode, znode_event
from tests.support.shop import STORE_DOMAIN, STORE_KEY, Shop, store_connection

pytestmark = pytest.mark.django_db


# --- the fingerprint ----------------------------------------------------------------------
WEBHOOK_ORDER = {  # an "Order Updated" webhook payload: state by name, number total
    "OmsOrderId": 42,
    "OrderNumber": "ORD-42",
    "OmsOrderStateId": 50,
    "OrderState": "PENDING APPROVAL",
    "Total": 42.5,
    "CurrencyCode": "USD",
    "PaymentSettingId": 7,
    "PaymentStatus": "Authorized",
    "TrackingNumber": None,
    "TransactionId": "ch_1",
    "ExternalId": None,
    "OrderModifiedDate": "2026-11-30T10:00:00",
    "OrderNotes": [],
    "PaymentHistoryList": [],
}
LIST_ROW = {  # the same order as an orders/list row: state Description, hidden id
    "OmsOrderId": 42,
    "OrderNumber": "ORD-42",
    "OmsOrderStateId": 0,
    "OrderState": "Pending Approval",
    "Total": "42.500000",
    "CurrencyCode": "USD",
    "PaymentSettingId": 7,
    "PaymentStatus": "Authorized",
    "OrderModifiedDate": "2026-11-30T10:00:00",
}


def fingerprint_of(order: dict, event_type: str = "order.updated"):
    return order_change_fingerprint(event_type, {"envelope": {}, "object": order})


def test_a_list_row_and_a_webhook_payload_of_one_order_state_agree():
    webhook, row = fingerprint_of(WEBHOOK_ORDER), fingerprint_of(LIST_ROW)
    assert webhook.object_key == row.object_key == "order:42"
    assert webhook.fingerprint == row.fingerprint
    assert len(webhook.fingerprint) == 64
    assert (webhook.creates, webhook.update_event_type) == (False, "")
    created = fingerprint_of(WEBHOOK_ORDER, "order.created")
    assert (created.creates, created.update_event_type) == (True, "order.updated")
    assert created.fingerprint == webhook.fingerprint


@pytest.mark.parametrize(
    "echo",
    [
        {"PaymentStatus": "Captured"},
        {"OrderNotes": [{"Notes": "Paid with Stripe pi_1"}]},
        {"TrackingNumber": "1ZTRACK"},
        {"TransactionId": "ch_2"},
        {"ExternalId": "pi_1"},
        {"OrderModifiedDate": "2026-11-30T10:05:00", "ModifiedDate": "2026-11-30T10:05:00"},
        {"PaymentHistoryList": [{"Amount": 42.5, "TransactionStatus": "Captured"}]},
        {"Total": Decimal("42.50"), "CurrencyCode": "usd", "OrderState": " pending  approval "},
    ],
)
def test_fields_no_flow_acts_on_leave_the_fingerprint_alone(echo):
    assert fingerprint_of({**WEBHOOK_ORDER, **echo}) == fingerprint_of(WEBHOOK_ORDER)


@pytest.mark.parametrize(
    "change",
    [
        {"OrderState": "CANCELED", "OmsOrderStateId": 40},
        {"Total": 55},
        {"CurrencyCode": "EUR"},
        {"PaymentSettingId": 8},
    ],
)
def test_what_flows_act_on_changes_the_fingerprint(change):
    assert fingerprint_of({**WEBHOOK_ORDER, **change}) != fingerprint_of(WEBHOOK_ORDER)


def test_state_ids_stand_in_for_names_only_when_no_name_is_given():
    by_id = {**WEBHOOK_ORDER, "OrderState": None}
    assert fingerprint_of(by_id) != fingerprint_of({**by_id, "OmsOrderStateId": 40})
    assert fingerprint_of(by_id) != fingerprint_of(WEBHOOK_ORDER)  # never merged by guess


@pytest.mark.parametrize(
    ("event_type", "payload"),
    [
        ("user.updated", {"object": {"UserId": 5}}),
        ("order.deleted", {"object": {"OmsOrderId": 42}}),
        ("order.updated", {"object": {"OrderNumber": "ORD-42"}}),
        ("order.updated", {"object": {"OmsOrderId": "not-a-number"}}),
    ],
)
def test_events_without_an_order_are_always_routed(event_type, payload):
    assert order_change_fingerprint(event_type, payload) is None


def test_the_order_id_may_come_from_the_envelope_and_odd_totals_do_not_fail():
    change = order_change_fingerprint(
        "order.updated", {"envelope": {"EventDataId": 42}, "object": {"Total": "n/a"}}
    )
    assert change.object_key == "order:42"


# --- routing: two sources, echoes, real changes -------------------------------------------
@pytest.fixture
def store(sandbox):
    forget_cached()
    return store_connection(sandbox, name="store-both", poll=True, webhook_secrets=[ZNODE_TOKEN])


@pytest.fixture
def shop(sandbox):
    return Shop(sandbox.system_url("znode"))


@pytest.fixture
def both(store, stripe_connection):
    """A store with webhooks and the poller both on, and one flow per order event."""
    Integration.objects.create(name="both", znode=store, stripe=stripe_connection)
    make_flow("order-created", source="znode", event="order.created")
    make_flow("order-updated", source="znode", event="order.updated")
    connection_poll(connection=store)  # the seeded history: known before the test starts
    inbox_drain()
    return store


def webhook(client, store, name: str, order: dict) -> InboundEvent:
    payload = znode_event(name=name, payload=order)
    response = post_znode(client, store, payload)
    assert response.status_code == 200, response.content
    return InboundEvent.objects.get(connection=store, external_id=payload["EventId"])


def jobs_of(number: str) -> list[str]:
    return list(
        Job.objects.filter(reference=number).order_by("id").values_list("flow__key", flat=True)
    )


def events_of(number: str, event_type: str) -> list[InboundEvent]:
    return list(InboundEvent.objects.filter(reference=number, event_type=event_type).order_by("id"))


def znode_api(sandbox, method: str, path: str, body: dict | None = None) -> None:
    """A write as our actions make it, straight to the sandbox's 9.x API."""
    token = base64.b64encode(f"{STORE_DOMAIN}|{STORE_KEY}".encode()).decode()
    response = requests.request(
        method,
        f"{sandbox.system_url('znode')}/{path}",
        json=body,
        headers={"Authorization": f"Basic {token}"},
        timeout=10,
    )
    response.raise_for_status()
    assert response.json().get("IsSuccess", True) is True, response.text


@pytest.mark.parametrize("poller_first", [False, True])
def test_one_order_from_a_signed_webhook_and_the_poller_is_one_job(
    client, both, shop, poller_first
):
    placed = shop.place_order(total="42.50")
    number = placed["OrderNumber"]
    if poller_first:
        assert connection_poll(connection=both).created == 1
        inbox_drain()
        webhook(client, both, "Created", placed)
    else:
        webhook(client, both, "Created", placed)
        assert connection_poll(connection=both).created == 1
    inbox_drain()

    assert jobs_of(number) == ["order-created"]
    first, second = events_of(number, "order.created")
    expected_sources = [EventSource.POLL, EventSource.WEBHOOK]
    if not poller_first:
        expected_sources.reverse()
    assert [first.source, second.source] == expected_sources
    assert Job.objects.get(reference=number).event_id == first.pk
    assert second.status == EventStatus.DUPLICATE
    assert second.duplicate_of_id == first.pk
    assert second.status_reason == (
        f"duplicate of event {first.pk} (order.created via {first.source}): "
        f"the creation of order:{placed['OmsOrderId']} was routed already"
    )
    assert second.processed_at is not None
    change = RoutedChange.objects.get(connection=both, object_key=f"order:{placed['OmsOrderId']}")
    assert (change.event_id, change.created_event_id) == (first.pk, first.pk)


@pytest.fixture
def routed_order(client, both, shop):
    placed = shop.place_order(total="42.50")
    webhook(client, both, "Created", placed)
    connection_poll(connection=both)
    inbox_drain()
    assert jobs_of(placed["OrderNumber"]) == ["order-created"]
    return placed


def test_echoes_of_our_own_writes_make_no_job(client, both, shop, sandbox, routed_order):
    order_id, number = routed_order["OmsOrderId"], routed_order["OrderNumber"]
    detail_id = routed_order["OmsOrderDetailsId"]
    writes = [
        ("GET", f"orders/updateorderpaymentstatus/{order_id}/Captured", None),
        ("POST", "orders/addordernote", {"OmsOrderDetailsId": detail_id, "Notes": "Paid: pi_1"}),
        ("GET", f"orders/updatetrackingnumber/{order_id}/1ZTRACK42", None),
        ("GET", f"orders/updateordertransactionid/{order_id}/ch_3MtwBw", None),
        (
            "PUT",
            "orders/updateorderdetailsbyordernumber",
            {"OmsOrderNumber": number, "ExternalId": "pi_1"},
        ),
    ]
    modified = [shop.order(number)["OrderModifiedDate"]]
    for method, path, body in writes:
        time.sleep(0.01)  # a fresh modified date on every write
        znode_api(sandbox, method, path, body)
        after = shop.order(number)
        modified.append(after["OrderModifiedDate"])
        webhook(client, both, "Updated", after)  # what Znode 10 sends after the write
    assert connection_poll(connection=both).updated == 1  # the poller sees "Captured"
    jobs_before = Job.objects.count()

    inbox_drain()

    assert Job.objects.count() == jobs_before
    assert jobs_of(number) == ["order-created"]
    assert len(set(modified)) == 6  # every write bumped the modified date
    updates = events_of(number, "order.updated")
    assert [e.source for e in updates] == [EventSource.WEBHOOK] * 5 + [EventSource.POLL]
    created = events_of(number, "order.created")[0]
    assert {e.status for e in updates} == {EventStatus.DUPLICATE}
    assert {e.duplicate_of_id for e in updates} == {created.pk}
    assert {e.status_reason for e in updates} == {
        f"no change that matters: order:{order_id} is as event {created.pk} "
        "(order.created via webhook) left it (only fields no flow acts on differ, "
        "such as our own writes)"
    }


def update_total(sandbox, number: str, total: str) -> None:
    response = requests.post(
        f"{sandbox.system_url('znode')}/_test/orders/{number}/update_total",
        json={"total": total},
        timeout=10,
    )
    response.raise_for_status()


@pytest.mark.parametrize("change", ["cancel", "total"])
def test_a_real_change_from_both_sources_is_exactly_one_job(
    client, both, shop, sandbox, routed_order, change
):
    number = routed_order["OrderNumber"]
    if change == "cancel":
        shop.cancel(number)
    else:
        update_total(sandbox, number, "55.00")
    after = shop.order(number)
    assert (after["OrderState"], after["Total"] != routed_order["Total"]) in {
        ("CANCELED", False),
        ("SUBMITTED", True),
    }
    update = webhook(client, both, "Updated", after)
    assert connection_poll(connection=both).updated == 1

    inbox_drain()

    assert jobs_of(number) == ["order-created", "order-updated"]
    assert Job.objects.get(flow__key="order-updated", reference=number).event_id == update.pk
    polled = events_of(number, "order.updated")[-1]
    assert (polled.source, polled.status, polled.duplicate_of_id) == (
        EventSource.POLL,
        EventStatus.DUPLICATE,
        update.pk,
    )
    # The same change delivered again later is still no second job.
    webhook(client, both, "Updated", shop.order(number))
    inbox_drain()
    assert jobs_of(number) == ["order-created", "order-updated"]


def test_a_creation_after_an_update_still_runs_the_created_flow(client, both, shop):
    placed = shop.place_order(total="42.50")
    number = placed["OrderNumber"]
    webhook(client, both, "Updated", placed)  # the "Created" webhook comes late
    inbox_drain()
    webhook(client, both, "Created", placed)
    inbox_drain()
    connection_poll(connection=both)  # the poller's creation: a duplicate by now
    inbox_drain()
    assert jobs_of(number) == ["order-updated", "order-created"]
    assert events_of(number, "order.created")[-1].status == EventStatus.DUPLICATE


def test_the_pollers_first_sight_of_a_changed_order_runs_the_update_flows(client, both, shop):
    # Webhook "Created" routed; the order is canceled and Znode's "Updated" webhook is
    # lost (Znode 10 does not retry); the poller sees the order for the first time.
    placed = shop.place_order(total="42.50")
    number = placed["OrderNumber"]
    webhook(client, both, "Created", placed)
    inbox_drain()
    shop.cancel(number)
    assert connection_poll(connection=both).created == 1
    inbox_drain()
    assert jobs_of(number) == ["order-created", "order-updated"]
    polled = events_of(number, "order.created")[-1]
    job = Job.objects.get(reference=number, flow__key="order-updated")
    assert (job.event_id, polled.source) == (polled.pk, EventSource.POLL)
    assert job.context["event"]["type"] == "order.created"
    assert job.context["event"]["routed_as"] == "order.updated"
    # The late webhook of the cancel is then no second job.
    webhook(client, both, "Updated", shop.order(number))
    inbox_drain()
    assert jobs_of(number) == ["order-created", "order-updated"]


def test_an_operator_replay_always_runs(client, both, shop, routed_order):
    number = routed_order["OrderNumber"]
    duplicate = events_of(number, "order.created")[-1]
    assert duplicate.status == EventStatus.DUPLICATE
    inbox.event_replay(event=duplicate)
    inbox_drain()
    assert jobs_of(number) == ["order-created", "order-created"]


def test_stripe_events_are_not_gated(integration):
    from integrations.connectors.stripe.webhooks import parse as parse_stripe
    from tests.conftest import stripe_event

    make_flow("pi", steps=[])
    payload = stripe_event()
    for event_id in ("evt_a", "evt_b"):  # the same object and state, two event ids
        body = json.dumps({**payload, "id": event_id}).encode()
        inbox.inbox_event_receive(
            connection_obj=integration.stripe, parsed=parse_stripe(body), body=body, headers={}
        )
    inbox_drain()
    assert Job.objects.count() == 2
    assert RoutedChange.objects.count() == 0


def deliver_order(connection, name: str, order: dict) -> None:
    body = json.dumps(znode_event(name=name, payload=order)).encode()
    inbox.inbox_event_receive(connection_obj=connection, parsed=parse(body), body=body, headers={})


def test_a_failing_fingerprint_routes_the_event_instead_of_stopping_the_inbox(
    integration, monkeypatch
):
    from integrations.connectors.znode.connector import ZnodeConnector

    make_flow("order-updated", source="znode", event="order.updated", steps=[])

    def broken(self, event_type, payload):
        raise KeyError("OrderState")

    monkeypatch.setattr(ZnodeConnector, "change_fingerprint", broken)
    for _ in range(2):
        deliver_order(integration.znode, "Updated", WEBHOOK_ORDER)
    assert inbox_drain() == 2
    assert Job.objects.count() == 2  # one too many, never one too few
    assert RoutedChange.objects.count() == 0


def test_long_keys_and_fingerprints_are_hashed_to_fit(integration, monkeypatch):
    from integrations.connectors.base import ChangeFingerprint
    from integrations.connectors.znode.connector import ZnodeConnector

    make_flow("order-updated", source="znode", event="order.updated", steps=[])
    monkeypatch.setattr(
        ZnodeConnector,
        "change_fingerprint",
        lambda self, event_type, payload: ChangeFingerprint("order:" + "9" * 300, "f" * 100),
    )
    for _ in range(2):
        deliver_order(integration.znode, "Updated", WEBHOOK_ORDER)
    assert inbox_drain() == 2
    assert Job.objects.count() == 1
    change = RoutedChange.objects.get()
    assert (len(change.object_key), len(change.fingerprint)) == (255, 64)
    assert change.object_key.startswith("order:999")


# --- concurrency --------------------------------------------------------------------------
def slow_verdicts(monkeypatch) -> None:
    """Hold each change row a while once locked, so racing drains overlap."""
    real_verdict = inbox._verdict

    def slow_verdict(*args, **kwargs):
        verdict = real_verdict(*args, **kwargs)
        time.sleep(0.3)
        return verdict

    monkeypatch.setattr(inbox, "_verdict", slow_verdict)


def race(drains: int, **kwargs) -> tuple[list[int], list[Exception]]:
    start = threading.Barrier(drains)
    routed, errors = [], []

    def drain():
        from django.db import connection

        try:
            start.wait(timeout=10)
            routed.append(inbox_drain(**kwargs))
        except Exception as exc:  # pragma: no cover - reported by the caller
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=drain) for _ in range(drains)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return routed, errors


def poll_shaped(connection, row: dict, version: int) -> None:
    body = order_event_body(row, "Updated", version)
    inbox.inbox_event_receive(
        connection_obj=connection,
        parsed=parse(body),
        body=body,
        headers={},
        source=EventSource.POLL,
    )


@pytest.mark.django_db(transaction=True)
def test_two_drains_racing_on_one_change_make_one_job(integration, monkeypatch):
    make_flow("order-created", source="znode", event="order.created", steps=[])
    make_flow("order-updated", source="znode", event="order.updated", steps=[])
    store = integration.znode
    monkeypatch.setattr(inbox, "_send_drain", lambda: None)  # the drains below race
    deliver_order(store, "Created", WEBHOOK_ORDER)
    assert inbox_drain() == 1  # the order is known: its change row exists
    canceled = {**WEBHOOK_ORDER, "OrderState": "CANCELED", "OmsOrderStateId": 40}
    deliver_order(store, "Updated", canceled)
    poll_shaped(store, {**LIST_ROW, "OrderState": "Canceled"}, 2)
    assert InboundEvent.objects.filter(status=EventStatus.RECEIVED).count() == 2

    # Hold the change row a while once locked: without the lock both drains would
    # read the fingerprint of the creation and both create a job.
    slow_verdicts(monkeypatch)
    routed, errors = race(2, limit=1)

    assert errors == []
    assert sum(routed) == 2
    update_jobs = Job.objects.filter(flow__key="order-updated")
    assert update_jobs.count() == 1
    updates = InboundEvent.objects.filter(event_type="order.updated")
    statuses = dict(updates.values_list("pk", "status"))
    winner = update_jobs.get().event_id
    loser = next(pk for pk in statuses if pk != winner)
    assert statuses[loser] == EventStatus.DUPLICATE
    assert InboundEvent.objects.get(pk=loser).duplicate_of_id == winner
    assert RoutedChange.objects.get().event_id == winner


@pytest.mark.django_db(transaction=True)
def test_drains_locking_the_same_orders_in_opposite_order_do_not_deadlock(integration, monkeypatch):
    make_flow("order-created", source="znode", event="order.created", steps=[])
    make_flow("order-updated", source="znode", event="order.updated", steps=[])
    store = integration.znode
    monkeypatch.setattr(inbox, "_send_drain", lambda: None)
    orders = {n: {**WEBHOOK_ORDER, "OmsOrderId": n, "OrderNumber": f"ORD-{n}"} for n in (1, 2)}

    for order in orders.values():
        deliver_order(store, "Created", order)
    assert inbox_drain() == 2
    canceled = {n: {**o, "OrderState": "CANCELED"} for n, o in orders.items()}
    for n in (1, 2, 2, 1):  # one drain takes (1, 2), the other (2, 1)
        deliver_order(store, "Updated", canceled[n])

    slow_verdicts(monkeypatch)
    routed, errors = race(2, limit=2)

    assert errors == []
    assert sum(routed) == 4
    updated = Job.objects.filter(flow__key="order-updated").values_list("reference", flat=True)
    assert sorted(updated) == ["ORD-1", "ORD-2"]
    assert InboundEvent.objects.filter(status=EventStatus.DUPLICATE).count() == 2


# --- our own writes: the echo of the two-way sync -----------------------------------------
# A Stripe customer the platform writes, through the sandbox over HTTP; the sandbox's
# signed webhooks are posted to the platform's endpoint as Stripe sends them.
@pytest.fixture
def customers(sandbox, znode_connection):
    from integrations.services.connections import connection_create
    from tests.integrations.connectors.stripe.test_customers import WHSEC

    stripe = connection_create(
        name="stripe-sync",
        kind="stripe",
        base_url=sandbox.system_url("stripe"),
        credentials={"api_key": "sk_test_change_gate"},
        webhook_secrets=[WHSEC],
        rate_limit_per_second=500,
    )
    Integration.objects.create(name="sync", znode=znode_connection, stripe=stripe)
    make_flow("customer-created", event="customer.created")
    make_flow("customer-updated", event="customer.updated")
    return stripe


@pytest.fixture
def stripe_hooks(sandbox):
    from tests.integrations.connectors.stripe.test_customers import WHSEC
    from tests.sandbox.localstripe_support import WebhookReceiver

    receiver = WebhookReceiver()
    sandbox.control("POST", "webhooks/stripe", {"url": receiver.url, "secret": WHSEC})
    yield receiver
    receiver.close()


def gateway_of(connection):
    from integrations.connectors.stripe.client import StripeGateway

    return StripeGateway(connection)


def stripe_webhook(client, connection, hooks, event_type: str, number: int) -> InboundEvent:
    """The ``number``-th (1-based) signed ``event_type`` webhook the sandbox sent, posted
    to the connection's endpoint and routed."""
    from tests.conftest import post_stripe
    from tests.integrations.connectors.stripe.test_customers import signed_deliveries

    delivery = signed_deliveries(hooks, event_type, number)[number - 1]
    body = delivery["body"].decode()
    response = post_stripe(client, connection, body, header=delivery["signature"])
    assert response.status_code == 200, response.content
    inbox_drain()
    return InboundEvent.objects.get(connection=connection, external_id=json.loads(body)["id"])


def customer_jobs() -> list[tuple[str, int]]:
    return list(Job.objects.order_by("id").values_list("flow__key", "event_id"))


def echo_reason(object_key: str, row: RoutedChange) -> str:
    return (
        f"echo of our own write: {object_key} is as we wrote it at "
        f"{row.written_at.isoformat(timespec='seconds')}"
    )


def write_profile(connection, customer_id: str, key: str):
    """What the sync does: announce the state, then write it."""
    from integrations.connectors.stripe.mapping import (
        customer_change_key,
        customer_profile_params,
        expected_customer_fingerprint,
    )
    from tests.integrations.connectors.stripe.test_customers import PROFILE

    expected = expected_customer_fingerprint(PROFILE, default_payment_method="")
    inbox.change_expect(
        connection=connection, object_key=customer_change_key(customer_id), fingerprint=expected
    )
    gateway_of(connection).customer_update(
        customer_id, params=customer_profile_params(PROFILE), idempotency_key=key
    )
    return expected


def someone_else_updates(connection, customer_id: str, **params) -> None:
    gateway_of(connection).client.v1.customers.update(customer_id, params)


def test_the_echo_of_our_own_write_makes_no_job(client, customers, stripe_hooks):
    someone = gateway_of(customers).client.v1.customers.create({"email": "ada@example.com"})
    created = stripe_webhook(client, customers, stripe_hooks, "customer.created", 1)
    assert customer_jobs() == [("customer-created", created.pk)]

    expected = write_profile(customers, someone.id, "sync:ada:1")
    echo = stripe_webhook(client, customers, stripe_hooks, "customer.updated", 1)

    assert customer_jobs() == [("customer-created", created.pk)]
    row = RoutedChange.objects.get(connection=customers, object_key=f"customer:{someone.id}")
    assert (row.fingerprint, row.event_id, row.created_event_id) == (
        expected,
        created.pk,
        created.pk,
    )
    assert row.written_at > row.routed_at
    assert (echo.status, echo.duplicate_of_id) == (EventStatus.IGNORED, None)
    assert echo.status_reason == echo_reason(f"customer:{someone.id}", row)
    assert echo.processed_at is not None


def test_a_later_change_routes_and_so_does_a_change_back_to_our_state(
    client, customers, stripe_hooks
):
    someone = gateway_of(customers).client.v1.customers.create({"email": "ada@example.com"})
    created = stripe_webhook(client, customers, stripe_hooks, "customer.created", 1)
    expected = write_profile(customers, someone.id, "sync:ada:1")
    stripe_webhook(client, customers, stripe_hooks, "customer.updated", 1)  # our echo

    someone_else_updates(customers, someone.id, name="Augusta Ada King")
    renamed = stripe_webhook(client, customers, stripe_hooks, "customer.updated", 2)
    assert customer_jobs() == [("customer-created", created.pk), ("customer-updated", renamed.pk)]
    row = RoutedChange.objects.get(connection=customers, object_key=f"customer:{someone.id}")
    assert (row.event_id, row.fingerprint != expected) == (renamed.pk, True)
    assert row.routed_at > row.written_at

    # Someone puts back exactly what we wrote: their change, not our echo.
    someone_else_updates(customers, someone.id, name="Ada Lovelace")
    back = stripe_webhook(client, customers, stripe_hooks, "customer.updated", 3)
    assert customer_jobs() == [
        ("customer-created", created.pk),
        ("customer-updated", renamed.pk),
        ("customer-updated", back.pk),
    ]
    row.refresh_from_db()
    assert (row.event_id, row.fingerprint) == (back.pk, expected)
    assert back.status == EventStatus.PROCESSING


def test_the_creation_of_a_customer_we_made_is_our_echo(client, customers, stripe_hooks):
    from integrations.connectors.stripe.mapping import customer_change_key, customer_fingerprint

    made = gateway_of(customers).customer_create(
        params={"email": "ada@example.com", "name": "Ada Lovelace"},
        idempotency_key="customer:user-42",
    )
    key = customer_change_key(made["id"])
    inbox.change_expect(
        connection=customers, object_key=key, fingerprint=customer_fingerprint(made)
    )
    ours = stripe_webhook(client, customers, stripe_hooks, "customer.created", 1)

    assert customer_jobs() == []
    row = RoutedChange.objects.get(connection=customers, object_key=key)
    assert (row.created_event_id, row.event_id, row.routed_at) == (None, None, None)
    assert (ours.status, ours.duplicate_of_id) == (EventStatus.IGNORED, None)
    assert ours.status_reason == echo_reason(key, row)

    # A customer made by someone else is a creation to route.
    theirs = gateway_of(customers).client.v1.customers.create({"email": "bob@example.com"})
    routed = stripe_webhook(client, customers, stripe_hooks, "customer.created", 2)
    assert json.loads(routed.body)["data"]["object"]["id"] == theirs.id
    assert customer_jobs() == [("customer-created", routed.pk)]
    # And a later change to ours by someone else runs the update flows.
    someone_else_updates(customers, made["id"], phone="+15550100")
    changed = stripe_webhook(client, customers, stripe_hooks, "customer.updated", 1)
    assert customer_jobs() == [
        ("customer-created", routed.pk),
        ("customer-updated", changed.pk),
    ]


def test_an_expectation_of_another_state_does_not_drop_the_event(client, customers, stripe_hooks):
    someone = gateway_of(customers).client.v1.customers.create({"email": "ada@example.com"})
    stripe_webhook(client, customers, stripe_hooks, "customer.created", 1)
    inbox.change_expect(
        connection=customers, object_key=f"customer:{someone.id}", fingerprint="0" * 64
    )
    someone_else_updates(customers, someone.id, name="Ada")
    update = stripe_webhook(client, customers, stripe_hooks, "customer.updated", 1)
    assert [flow for flow, _ in customer_jobs()] == ["customer-created", "customer-updated"]
    assert customer_jobs()[-1][1] == update.pk


def test_an_expectation_is_stored_like_the_fingerprint_an_event_gives(customers):
    inbox.change_expect(
        connection=customers, object_key="customer:" + "9" * 300, fingerprint="f" * 100
    )
    row = RoutedChange.objects.get(connection=customers)
    assert (len(row.object_key), len(row.fingerprint), row.routed_at) == (255, 64, None)
    assert row.object_key.startswith("customer:999")
    first = row.written_at
    inbox.change_expect(connection=customers, object_key="customer:" + "9" * 300, fingerprint="e")
    row.refresh_from_db()
    assert (RoutedChange.objects.count(), row.fingerprint) == (1, "e")
    assert row.written_at >= first
