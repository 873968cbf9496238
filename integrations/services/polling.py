"""The engine's side of polling: schedules, the cursor's lease, and the rows a poller
keeps between polls.

What to read from a system and how to turn it into events is its connector's
(``Connector.poll``, e.g. ``integrations/connectors/znode/sync.py``), reached only
through the connector registry. The engine hands it a :class:`PollStore` over the
cursor (watermarks) and the seen-order rows, and stores its events in the inbox.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from integrations.choices import EventSource
from integrations.connectors import registry as connectors
from integrations.connectors.base import ORDERS_WATERMARK, ParsedEvent, PollStore, SeenOrder
from integrations.kernel.redaction import redact_text
from integrations.models import Connection, InboundEvent, PollCursor, PolledOrder
from integrations.services.inbox import inbox_event_receive

logger = logging.getLogger("integrations.polling")

LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class PollResult:
    created: int = 0
    updated: int = 0
    skipped: bool = False
    observed: int = 0
    """Events stored with no seen-order row (``PollStore.event_observed``: returns)."""


def _claim(connection: Connection, now: datetime, lease: timedelta) -> PollCursor | None:
    cursor, _ = PollCursor.objects.get_or_create(connection=connection)
    claimed = PollCursor.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now), pk=cursor.pk
    ).update(lease_until=now + lease)
    if not claimed:
        return None
    cursor.refresh_from_db()
    return cursor


def _read_watermarks(stored: object) -> dict[str, datetime]:
    # Only we write them (ISO text); anything else is dropped, never a failed poll.
    marks = {}
    for name, text in (stored if isinstance(stored, dict) else {}).items():
        try:
            marks[str(name)] = datetime.fromisoformat(str(text))
        except ValueError:
            logger.warning("integrations.polling.bad_watermark name=%s value=%r", name, text)
    return marks


class _CursorStore(PollStore):
    """One poll's :class:`PollStore`: the cursor's watermarks (written back when the
    poll ends: the orders' in ``watermark``, the others in ``watermarks``), the
    connection's ``PolledOrder`` rows, and the inbox."""

    def __init__(self, connection: Connection, cursor: PollCursor) -> None:
        self.connection = connection
        self._watermarks = _read_watermarks(cursor.watermarks)
        self._watermarks.pop(ORDERS_WATERMARK, None)  # that one has its own column
        if cursor.watermark is not None:
            self._watermarks[ORDERS_WATERMARK] = cursor.watermark
        self.created = self.updated = self.observed = 0

    @property
    def watermark(self) -> datetime | None:
        return self.watermark_of(ORDERS_WATERMARK)

    def advance(self, watermark: datetime) -> None:
        self.advance_to(ORDERS_WATERMARK, watermark)

    def watermark_of(self, name: str) -> datetime | None:
        return self._watermarks.get(name)

    def advance_to(self, name: str, when: datetime) -> None:
        self._watermarks[name] = when

    def cursor_fields(self) -> dict[str, object]:
        """The watermarks as the cursor row stores them."""
        others = {k: v.isoformat() for k, v in self._watermarks.items() if k != ORDERS_WATERMARK}
        return {"watermark": self.watermark, "watermarks": others}

    def event_observed(self, *, parsed: ParsedEvent, body: bytes) -> bool:
        # Looked up first: an overlapping re-read is no redelivery, so it must neither
        # count as one nor re-run the event's quarantined jobs (the inbox does both for
        # a sender's repeat).
        if InboundEvent.objects.filter(
            connection=self.connection, external_id=parsed.external_id
        ).exists():
            return False
        stored = inbox_event_receive(
            connection_obj=self.connection,
            parsed=parsed,
            body=body,
            headers={},
            source=EventSource.POLL,
        )
        if stored.created:
            self.observed += 1
        return stored.created

    def _rows(self):
        return PolledOrder.objects.filter(connection=self.connection)

    def known_order(self, order_id: int) -> SeenOrder | None:
        row = self._rows().filter(order_id=order_id).first()
        if row is None:
            return None
        return SeenOrder(
            order_id=row.order_id,
            order_number=row.order_number,
            fingerprint=row.fingerprint,
            version=row.version,
            state=row.state,
            open=row.open,
        )

    def open_orders(self, *, exclude: Collection[int], limit: int) -> list[int]:
        return list(
            self._rows()
            .filter(open=True)
            .exclude(order_id__in=exclude)
            .order_by(F("checked_at").asc(nulls_first=True))
            .values_list("order_id", flat=True)[:limit]
        )

    def order_checked(self, order_id: int, *, open: bool) -> None:
        self._rows().filter(order_id=order_id).update(checked_at=timezone.now(), open=open)

    def order_changed(self, order: SeenOrder, *, parsed: ParsedEvent, body: bytes) -> None:
        # The seen-order row and its inbox event commit together, or neither does: a
        # failed event write must not leave the order looking already reported.
        with transaction.atomic():
            changed = {
                "version": order.version,
                "fingerprint": order.fingerprint,
                "state": order.state,
                "open": order.open,
                "checked_at": timezone.now(),
            }
            if self._rows().filter(order_id=order.order_id).update(**changed):
                self.updated += 1
            else:
                PolledOrder.objects.create(
                    connection=self.connection,
                    order_id=order.order_id,
                    order_number=order.order_number,
                    **changed,
                )
                self.created += 1
            inbox_event_receive(
                connection_obj=self.connection,
                parsed=parsed,
                body=body,
                headers={},
                source=EventSource.POLL,
            )


def connection_poll(*, connection: Connection, now: datetime | None = None) -> PollResult:
    """Poll one connection through its connector, unless another worker is at it."""
    connector = connectors.find(connection.kind)
    if connector is None or not connector.supports_polling or not connection.enabled:
        return PollResult(skipped=True)
    now = now or timezone.now()
    cursor = _claim(connection, now, LEASE)
    if cursor is None:
        return PollResult(skipped=True)  # another worker is polling this store
    store = _CursorStore(connection, cursor)
    error = "interrupted"
    try:
        connector.poll(connection, store, now=now)
        error = ""
    except Exception as exc:
        error = redact_text(f"{type(exc).__name__}: {exc}")
        logger.warning("integrations.polling.failed connection=%s error=%s", connection.name, error)
        raise
    finally:
        PollCursor.objects.filter(pk=cursor.pk).update(
            **store.cursor_fields(),
            lease_until=None,
            last_run_at=now,
            last_emitted=store.created + store.updated + store.observed,
            last_error=error,
        )
    return PollResult(created=store.created, updated=store.updated, observed=store.observed)


def poll_schedules_sync() -> int:
    """One django-q2 schedule per polled connection (its connector says how often);
    stale ones removed."""
    from django_q.models import Schedule

    polled = [kind for kind, c in connectors.all_connectors().items() if c.supports_polling]
    wanted = {}
    for connection in Connection.objects.filter(kind__in=polled, enabled=True):
        minutes = connectors.get(connection.kind).poll_every_minutes(connection)
        if minutes is not None:
            wanted[f"integrations.poll:{connection.pk}"] = (connection, minutes)
    Schedule.objects.filter(name__startswith="integrations.poll:").exclude(
        name__in=list(wanted)
    ).delete()
    for name, (connection, minutes) in wanted.items():
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": "integrations.tasks.poll_connection",
                "args": str(connection.pk),
                "schedule_type": Schedule.MINUTES,
                "minutes": minutes,
                "repeats": -1,
            },
        )
    return len(wanted)
