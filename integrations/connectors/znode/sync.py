"""Polling Znode for orders and returns: the 9.x way (no webhooks) and the 10.x
safety net.

Each poll reads ``orders/list`` from the watermark minus an overlap, re-reads the
open orders it knows, and emits the same normalized events the webhook endpoint
produces (``order.created`` / ``order.updated``) into the inbox, deduplicated by an
event id made of the order id and a per-order version. Then it reads ``rmareturn/list``
by modified date from the returns' watermark minus the same overlap, in the states the
connection names (``poll_return_states``), and emits ``return.created`` /
``return.updated`` events whose id is made of the return's id, state and modified
date, so a re-read stores nothing and every later change is a new event. Where Znode
10 webhooks are on as well, the inbox recognises a change both sources report (the
connector's ``change_fingerprint``) and creates its jobs once.

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
from integrations.connectors.znode.settings import (
    DEFAULT_FINAL_STATES,
    DEFAULT_POLL_OVERLAP_SECONDS,
    SCHEMA,
)

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from integrations.connectors.znode.client import ZnodeClient
    from integrations.kernel.types import Connection

logger = logging.getLogger("integrations.polling")

DEFAULT_OVERLAP = timedelta(seconds=DEFAULT_POLL_OVERLAP_SECONDS)
DEFAULT_LOOKBACK = timedelta(days=1)
FINAL_STATES = tuple(DEFAULT_FINAL_STATES)
OPEN_BATCH = 50
RETURNS_WATERMARK = "returns"


def poll_every_minutes(connection: Connection) -> int | None:
    settings = connection.settings or {}
    if settings.get("poll", True) and connection.base_url:
        return int(settings.get("poll_every_minutes", 1))
    return None


def poll(connection: Connection, store: PollStore, *, now: datetime) -> None:
    """One poll: the orders dated since the watermark (less the overlap), then the
    open orders that window did not cover, then the returns (unless ``poll_returns``
    is off)."""
    settings = connection.settings or {}
    overlap = timedelta(seconds=int(settings.get("poll_overlap_seconds", DEFAULT_OVERLAP.seconds)))
    final = {s.upper() for s in settings.get("final_states", FINAL_STATES)}
    since = (store.watermark or now - DEFAULT_LOOKBACK) - overlap
    client = connection.client()
    seen: set[int] = set()
    for row in client.list_orders(since=since):
        seen.add(int(row["OmsOrderId"]))
        _observe(store, row, final)
        when = _store_time(row.get("OrderDate"), client.timezone)
        if when and (store.watermark is None or when > store.watermark):
            store.advance(when)
    open_ids = store.open_orders(exclude=seen, limit=OPEN_BATCH)
    if open_ids:
        for row in client.list_orders(filters=[("omsorderid", "in", open_ids)]):
            _observe(store, row, final)
    if SCHEMA.value(settings, "poll_returns"):
        poll_returns(client, store, now=now, overlap=overlap)


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
        when = _store_time(row.get("ModifiedDate"), client.timezone)
        mark = store.watermark_of(RETURNS_WATERMARK)
        if when and (mark is None or when > mark):
            store.advance_to(RETURNS_WATERMARK, when)


def _znode_date(value: object) -> datetime | None:
    """A Znode date as sent; None for none, for what is no date, and for .NET's and
    SQL Server's "no date" minimums (an unset BaseModel date, §2.2, is .NET's
    ``DateTime.MinValue``, sent as ``0001-01-01T00:00:00``)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return None if parsed.year < 1900 else parsed


def _store_time(value: object, tz: ZoneInfo) -> datetime | None:
    """A Znode date (store-local, no offset) as an aware moment, or None."""
    parsed = _znode_date(value)
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else timezone.make_aware(parsed, tz)


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
    created = str(row.get("CreatedDate") or "")
    unchanged = modified == created and _znode_date(modified) is not None
    return _event_body(
        f"poll:return:{row['RmaReturnDetailsId']}:{state}:{modified}",
        "Return",
        "Created" if unchanged else "Updated",
        row["RmaReturnDetailsId"],
        row.get("ReturnNumber"),
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
