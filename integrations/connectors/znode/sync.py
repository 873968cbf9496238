"""Polling Znode for orders, returns and customers: the 9.x way (no webhooks) and the
10.x safety net.

Each poll reads ``orders/list`` from the watermark minus an overlap, re-reads the
open orders it knows, and emits the same normalized events the webhook endpoint
produces (``order.created`` / ``order.updated``) into the inbox, deduplicated by an
event id made of the order id and a per-order version. Then it reads ``rmareturn/list``
by modified date from the returns' watermark minus the same overlap, in the states the
connection names (``poll_return_states``), and emits ``return.created`` /
``return.updated`` events whose id is made of the return's id, state and modified
date, so a re-read stores nothing and every later change is a new event. Then (unless
``poll_customers`` is off) the users modified since the customers' watermark
(``customeraccount/list``) become ``user.created`` / ``user.updated`` events, and the
address-book rows added since the addresses' watermark (``customer/addresslist``)
``address.created`` / ``address.updated`` events, each with an id made of the object's
id and its ``ModifiedDate``. Where Znode 10 webhooks are on as well, the inbox
recognises a change both sources report (the connector's ``change_fingerprint``) and
creates its jobs once.

What the poller remembers between polls (the watermarks, the orders it has seen) it
reads and writes through the engine's :class:`~integrations.connectors.base.PollStore`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.utils import timezone

from integrations.connectors.base import PollStore, SeenOrder
from integrations.connectors.znode import webhooks
from integrations.connectors.znode.mapping import store_time, znode_date
from integrations.connectors.znode.settings import (
    DEFAULT_FINAL_STATES,
    DEFAULT_POLL_OVERLAP_SECONDS,
    SCHEMA,
)

if TYPE_CHECKING:
    from integrations.connectors.znode.client import ZnodeClient
    from integrations.kernel.types import Connection

logger = logging.getLogger("integrations.polling")

DEFAULT_OVERLAP = timedelta(seconds=DEFAULT_POLL_OVERLAP_SECONDS)
DEFAULT_LOOKBACK = timedelta(days=1)
FINAL_STATES = tuple(DEFAULT_FINAL_STATES)
OPEN_BATCH = 50
RETURNS_WATERMARK = "returns"
CUSTOMERS_WATERMARK = "customers"
ADDRESSES_WATERMARK = "addresses"


def poll_every_minutes(connection: Connection) -> int | None:
    settings = connection.settings or {}
    if settings.get("poll", True) and connection.base_url:
        return int(settings.get("poll_every_minutes", 1))
    return None


def poll(connection: Connection, store: PollStore, *, now: datetime) -> None:
    """One poll: the orders dated since the watermark (less the overlap), then the
    open orders that window did not cover, then the returns (unless ``poll_returns``
    is off), then the customers and their addresses (unless ``poll_customers`` is
    off)."""
    settings = connection.settings or {}
    overlap = timedelta(seconds=int(settings.get("poll_overlap_seconds", DEFAULT_OVERLAP.seconds)))
    final = {s.upper() for s in settings.get("final_states", FINAL_STATES)}
    since = (store.watermark or now - DEFAULT_LOOKBACK) - overlap
    client = connection.client()
    seen: set[int] = set()
    for row in client.list_orders(since=since):
        seen.add(int(row["OmsOrderId"]))
        _observe(store, row, final)
        when = store_time(row.get("OrderDate"), client.timezone)
        if when and (store.watermark is None or when > store.watermark):
            store.advance(when)
    open_ids = store.open_orders(exclude=seen, limit=OPEN_BATCH)
    if open_ids:
        for row in client.list_orders(filters=[("omsorderid", "in", open_ids)]):
            _observe(store, row, final)
    if SCHEMA.value(settings, "poll_returns"):
        poll_returns(client, store, now=now, overlap=overlap)
    if SCHEMA.value(settings, "poll_customers"):
        poll_customers(client, store, now=now, overlap=overlap)


def poll_returns(
    client: ZnodeClient, store: PollStore, *, now: datetime, overlap: timedelta
) -> None:
    """The returns modified since the returns' watermark (less ``overlap``; Znode
    compares the date at minute precision), in the states of ``poll_return_states``
    (all when empty), each reported as a return event. The list rows are enough: the
    flows re-read a return before they act on it, so no return is fetched here."""
    names = SCHEMA.value(client.settings, "poll_return_states")
    filters = []
    if names:
        # By id (`in` values joined with ^, §2.3): the names resolved in this store's
        # own return state list, never hard-coded; an unknown name fails the poll.
        ids = sorted({int(client.state("return", name)["id"]) for name in names})
        filters.append(("rmareturnstateid", "in", ids))
    since = (store.watermark_of(RETURNS_WATERMARK) or now - DEFAULT_LOOKBACK) - overlap
    for row in client.list_returns(filters=filters, since=since):
        if row.get("RmaReturnDetailsId") in (None, "", 0):
            logger.warning("integrations.poll.return_without_id row=%r", row.get("ReturnNumber"))
            continue
        body = return_event_body(row)
        store.event_observed(parsed=webhooks.parse(body), body=body)
        when = store_time(row.get("ModifiedDate"), client.timezone)
        mark = store.watermark_of(RETURNS_WATERMARK)
        if when and (mark is None or when > mark):
            store.advance_to(RETURNS_WATERMARK, when)


def poll_customers(
    client: ZnodeClient, store: PollStore, *, now: datetime, overlap: timedelta
) -> None:
    """The users modified since the customers' watermark, then the address-book rows
    added since the addresses' watermark (each less ``overlap``; the first poll looks
    back :data:`DEFAULT_LOOKBACK`), each row reported as a User / Address event. The
    rows are enough: the customer sync re-reads a customer before it acts.

    The users come in ``UserId`` order (``list_customers``), not by date, so their
    watermark moves only once the whole list is read: a poll that fails half-way
    leaves it where it was, and the next one re-reads what this one stored (same
    event ids: nothing twice). The addresses come by date, and their watermark moves
    row by row as the returns' does.

    On 9.x ``customer/addresslist`` filters by the date an address was added to the
    user (§6: the filter runs on ZnodeUserAddress), so an edit of an existing address
    is not seen here; a Znode 10 Address webhook reports it, and a row added and then
    edited within the window is reported in its edited state."""
    since = (store.watermark_of(CUSTOMERS_WATERMARK) or now - DEFAULT_LOOKBACK) - overlap
    newest = None
    for row in client.list_customers(since=since):
        body = user_event_body(row)
        store.event_observed(parsed=webhooks.parse(body), body=body)
        when = store_time(row.get("ModifiedDate"), client.timezone)
        if when and (newest is None or when > newest):
            newest = when
    mark = store.watermark_of(CUSTOMERS_WATERMARK)
    if newest and (mark is None or newest > mark):
        store.advance_to(CUSTOMERS_WATERMARK, newest)

    since = (store.watermark_of(ADDRESSES_WATERMARK) or now - DEFAULT_LOOKBACK) - overlap
    for row in client.list_addresses(since=since):
        if row.get("AddressId") in (None, "", 0):
            logger.warning("integrations.poll.address_without_id user=%r", row.get("UserId"))
            continue
        body = address_event_body(row)
        store.event_observed(parsed=webhooks.parse(body), body=body)
        when = store_time(row.get("ModifiedDate"), client.timezone)
        mark = store.watermark_of(ADDRESSES_WATERMARK)
        if when and (mark is None or when > mark):
            store.advance_to(ADDRESSES_WATERMARK, when)


def fingerprint(row: dict) -> str:
    """What a change must touch to be worth an event (our own ExternalId writes are not)."""
    relevant = {k: row.get(k) for k in ("OrderState", "PaymentStatus", "Total", "CurrencyCode")}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()


def _observe(store: PollStore, row: dict, final: set[str]) -> None:
    order_id = int(row["OmsOrderId"])
    mark = fingerprint(row)
    state = str(row.get("OrderState") or "")
    is_open = state.upper() not in final
    known = store.known_order(order_id)
    if known is not None and known.fingerprint == mark:
        store.order_checked(order_id, open=is_open)
        return
    order = SeenOrder(
        order_id=order_id,
        order_number=str(row.get("OrderNumber") or ""),
        fingerprint=mark,
        version=1 if known is None else known.version + 1,
        state=state,
        open=is_open,
    )
    body = order_event_body(row, "Created" if known is None else "Updated", order.version)
    store.order_changed(order, parsed=webhooks.parse(body), body=body)


def order_event_body(row: dict, name: str, version: int) -> bytes:
    """Shape the change like a Znode 10 webhook so one parser serves both sources."""
    return _event_body(
        f"poll:order:{row['OmsOrderId']}:v{version}",
        "Order",
        name,
        row["OmsOrderId"],
        row.get("OrderNumber"),
        row,
    )


def return_event_body(row: dict) -> bytes:
    """A ``rmareturn/list`` row as a Znode 10 webhook of module "Return" would carry
    it. "Created" while the return is as it was created (its ``ModifiedDate`` still
    its ``CreatedDate``), "Updated" after. The event id is made of the return's id, its
    state and its ``ModifiedDate``: the overlap re-reading the same row gives the same
    id, and any later change (approved again after being reopened) a new one."""
    state = row.get("RmaReturnStateId") or " ".join(str(row.get("ReturnStatus") or "").split())
    modified = str(row.get("ModifiedDate") or "")
    return _event_body(
        f"poll:return:{row['RmaReturnDetailsId']}:{state}:{modified}",
        "Return",
        _created_or_updated(row),
        row["RmaReturnDetailsId"],
        row.get("ReturnNumber"),
        row,
    )


def _created_or_updated(row: dict) -> str:
    """The event name of a polled row: Created while the object is as it was created
    (its ``ModifiedDate`` still its ``CreatedDate``, and a real date), else Updated."""
    modified = str(row.get("ModifiedDate") or "")
    unchanged = modified == str(row.get("CreatedDate") or "") and znode_date(modified)
    return "Created" if unchanged else "Updated"


def user_event_body(row: dict) -> bytes:
    """A ``customeraccount/list`` row as a Znode 10 webhook of module "User" carries
    it (``EventDataCode``: the user name, as Znode sends it). The event id is made of
    the ``UserId`` and its ``ModifiedDate``: a re-read gives the same id, any later
    save a new one."""
    return _event_body(
        f"poll:user:{row['UserId']}:{row.get('ModifiedDate') or ''}",
        "User",
        _created_or_updated(row),
        row["UserId"],
        row.get("UserName"),
        row,
    )


def address_event_body(row: dict) -> bytes:
    """A ``customer/addresslist`` row as a Znode 10 webhook of module "Address"
    carries it (``EventDataCode``: its ``DisplayName``); the event id is made of the
    ``AddressId`` and its ``ModifiedDate``."""
    return _event_body(
        f"poll:address:{row['AddressId']}:{row.get('ModifiedDate') or ''}",
        "Address",
        _created_or_updated(row),
        row["AddressId"],
        row.get("DisplayName"),
        row,
    )


def _event_body(
    event_id: str, module: str, name: str, data_id: object, data_code: object, row: dict
) -> bytes:
    return json.dumps(
        {
            "EventId": event_id,
            "EventModule": module,
            "EventName": name,
            "EventDataId": data_id,
            "EventDataCode": data_code,
            "EventPayload": json.dumps(row, default=str),
            "EventTimeStamp": timezone.now().isoformat(),
            "EventVersion": "poll",
        },
        default=str,
    ).encode()
