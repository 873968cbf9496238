"""Polling Znode for orders: the 9.x way (no webhooks) and the 10.x safety net.

Each poll reads ``orders/list`` from the watermark minus an overlap, re-reads the
open orders it knows, and emits the same normalized events the webhook endpoint
produces (``order.created`` / ``order.updated``) into the inbox, deduplicated by an
event id made of the order id and a per-order version. Where Znode 10 webhooks are on
as well, the inbox recognises a change both sources report (the connector's
``change_fingerprint``) and creates its jobs once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from integrations.choices import ConnectionKind, EventSource
from integrations.connectors import registry as connectors
from integrations.kernel.redaction import redact_text
from integrations.models import Connection, PollCursor, PolledOrder
from integrations.services.inbox import inbox_event_receive

logger = logging.getLogger("integrations.polling")

DEFAULT_OVERLAP = timedelta(minutes=10)
DEFAULT_LOOKBACK = timedelta(days=1)
FINAL_STATES = ("CANCELED", "CANCELLED", "RETURNED", "EXPIRED", "REJECTED", "FAILED")
OPEN_BATCH = 50


@dataclass(frozen=True)
class PollResult:
    created: int = 0
    updated: int = 0
    skipped: bool = False


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


def _claim(connection: Connection, now: datetime, lease: timedelta) -> PollCursor | None:
    cursor, _ = PollCursor.objects.get_or_create(connection=connection)
    claimed = PollCursor.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now), pk=cursor.pk
    ).update(lease_until=now + lease)
    if not claimed:
        return None
    cursor.refresh_from_db()
    return cursor


def znode_poll(*, connection: Connection, now: datetime | None = None) -> PollResult:
    if connection.kind != ConnectionKind.ZNODE or not connection.enabled:
        return PollResult(skipped=True)
    now = now or timezone.now()
    cursor = _claim(connection, now, timedelta(minutes=5))
    if cursor is None:
        return PollResult(skipped=True)  # another worker is polling this store
    settings = connection.settings or {}
    overlap = timedelta(seconds=int(settings.get("poll_overlap_seconds", DEFAULT_OVERLAP.seconds)))
    final = {s.upper() for s in settings.get("final_states", FINAL_STATES)}
    since = (cursor.watermark or now - DEFAULT_LOOKBACK) - overlap
    client = connection.client()
    created = updated = 0
    watermark = cursor.watermark
    error = "interrupted"
    try:
        seen: set[int] = set()
        for row in client.list_orders(since=since):
            seen.add(int(row["OmsOrderId"]))
            c, u = _observe(connection, row, final)
            created, updated = created + c, updated + u
            when = _order_date(row, client.timezone)
            if when and (watermark is None or when > watermark):
                watermark = when
        open_ids = list(
            PolledOrder.objects.filter(connection=connection, open=True)
            .exclude(order_id__in=seen)
            .order_by(F("checked_at").asc(nulls_first=True))
            .values_list("order_id", flat=True)[:OPEN_BATCH]
        )
        if open_ids:
            rows = client.list_orders(filters=[("omsorderid", "in", open_ids)])
            for row in rows:
                c, u = _observe(connection, row, final)
                created, updated = created + c, updated + u
        error = ""
    except Exception as exc:
        error = redact_text(f"{type(exc).__name__}: {exc}")
        logger.warning("integrations.polling.failed connection=%s error=%s", connection.name, error)
        raise
    finally:
        PollCursor.objects.filter(pk=cursor.pk).update(
            watermark=watermark,
            lease_until=None,
            last_run_at=now,
            last_emitted=created + updated,
            last_error=error,
        )
    return PollResult(created=created, updated=updated)


def _observe(connection: Connection, row: dict, final: set[str]) -> tuple[int, int]:
    # The seen-order row and its inbox event commit together, or neither does: a
    # failed event write must not leave the order looking already reported.
    with transaction.atomic():
        return _observe_locked(connection, row, final)


def _observe_locked(connection: Connection, row: dict, final: set[str]) -> tuple[int, int]:
    order_id = int(row["OmsOrderId"])
    mark = fingerprint(row)
    state = str(row.get("OrderState") or "")
    is_open = state.upper() not in final
    known = PolledOrder.objects.filter(connection=connection, order_id=order_id).first()
    now = timezone.now()
    if known is None:
        known = PolledOrder.objects.create(
            connection=connection,
            order_id=order_id,
            order_number=str(row.get("OrderNumber") or ""),
            fingerprint=mark,
            state=state,
            open=is_open,
            checked_at=now,
        )
        _emit(connection, row, "Created", known.version)
        return 1, 0
    if known.fingerprint == mark:
        PolledOrder.objects.filter(pk=known.pk).update(checked_at=now, open=is_open)
        return 0, 0
    known.version += 1
    known.fingerprint, known.state, known.open, known.checked_at = mark, state, is_open, now
    known.save(update_fields=["version", "fingerprint", "state", "open", "checked_at"])
    _emit(connection, row, "Updated", known.version)
    return 0, 1


def _emit(connection: Connection, row: dict, name: str, version: int) -> None:
    """Shape the change like a Znode 10 webhook so one parser serves both sources."""
    body = json.dumps(
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
    inbox_event_receive(
        connection_obj=connection,
        parsed=connectors.get("znode").parse(body),
        body=body,
        headers={},
        source=EventSource.POLL,
    )


def poll_schedules_sync() -> int:
    """One django-q2 schedule per polling Znode connection; stale ones removed."""
    from django_q.models import Schedule

    wanted = {}
    for connection in Connection.objects.filter(kind=ConnectionKind.ZNODE, enabled=True):
        settings = connection.settings or {}
        if settings.get("poll", True) and connection.base_url:
            wanted[f"integrations.poll:{connection.pk}"] = (
                connection,
                int(settings.get("poll_every_minutes", 1)),
            )
    Schedule.objects.filter(name__startswith="integrations.poll:").exclude(
        name__in=list(wanted)
    ).delete()
    for name, (connection, minutes) in wanted.items():
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": "integrations.tasks.poll_znode",
                "args": str(connection.pk),
                "schedule_type": Schedule.MINUTES,
                "minutes": minutes,
                "repeats": -1,
            },
        )
    return len(wanted)
