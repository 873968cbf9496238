"""Polling Znode for orders: the 9.x way (no webhooks) and the 10.x safety net.

Each poll reads ``orders/list`` from the watermark minus an overlap, re-reads the
open orders it knows, and emits the same normalized events the webhook endpoint
produces (``order.created`` / ``order.updated``) into the inbox, deduplicated by an
event id made of the order id and a per-order version. Where Znode 10 webhooks are on
as well, the inbox recognises a change both sources report (the connector's
``change_fingerprint``) and creates its jobs once.

What the poller remembers between polls (the watermark, the orders it has seen) it
reads and writes through the engine's :class:`~integrations.connectors.base.PollStore`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.utils import timezone

from integrations.connectors.base import PollStore, SeenOrder
from integrations.connectors.znode import webhooks
from integrations.connectors.znode.settings import (
    DEFAULT_FINAL_STATES,
    DEFAULT_POLL_OVERLAP_SECONDS,
)

if TYPE_CHECKING:
    from integrations.kernel.types import Connection

DEFAULT_OVERLAP = timedelta(seconds=DEFAULT_POLL_OVERLAP_SECONDS)
DEFAULT_LOOKBACK = timedelta(days=1)
FINAL_STATES = tuple(DEFAULT_FINAL_STATES)
OPEN_BATCH = 50


def poll_every_minutes(connection: Connection) -> int | None:
    settings = connection.settings or {}
    if settings.get("poll", True) and connection.base_url:
        return int(settings.get("poll_every_minutes", 1))
    return None


def poll(connection: Connection, store: PollStore, *, now: datetime) -> None:
    """One poll: the orders dated since the watermark (less the overlap), then the
    open orders that window did not cover."""
    settings = connection.settings or {}
    overlap = timedelta(seconds=int(settings.get("poll_overlap_seconds", DEFAULT_OVERLAP.seconds)))
    final = {s.upper() for s in settings.get("final_states", FINAL_STATES)}
    since = (store.watermark or now - DEFAULT_LOOKBACK) - overlap
    client = connection.client()
    seen: set[int] = set()
    for row in client.list_orders(since=since):
        seen.add(int(row["OmsOrderId"]))
        _observe(store, row, final)
        when = _order_date(row, client.timezone)
        if when and (store.watermark is None or when > store.watermark):
            store.advance(when)
    open_ids = store.open_orders(exclude=seen, limit=OPEN_BATCH)
    if open_ids:
        for row in client.list_orders(filters=[("omsorderid", "in", open_ids)]):
            _observe(store, row, final)


def _order_date(row: dict, tz) -> datetime | None:
    value = row.get("OrderDate")
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
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
    return json.dumps(
        {
            "EventId": f"poll:order:{row['OmsOrderId']}:v{version}",
            "EventModule": "Order",
            "EventName": name,
            "EventDataId": row["OmsOrderId"],
            "EventDataCode": row.get("OrderNumber"),
            "EventPayload": json.dumps(row, default=str),
            "EventTimeStamp": timezone.now().isoformat(),
            "EventVersion": "poll",
        },
        default=str,
    ).encode()
