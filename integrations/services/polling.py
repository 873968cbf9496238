"""The engine's side of polling: schedules, the cursor's lease, and the rows a poller
keeps between polls.

What to read from a system and how to turn it into events is its connector's
(``Connector.poll``, e.g. ``integrations/connectors/znode/sync.py``), reached only
through the connector registry. The engine hands it a :class:`PollStore` over the
cursor (watermark) and the seen-order rows, and stores its events in the inbox.
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
from integrations.connectors.base import ParsedEvent, PollStore, SeenOrder
from integrations.kernel.redaction import redact_text
from integrations.models import Connection, PollCursor, PolledOrder
from integrations.services.inbox import inbox_event_receive

logger = logging.getLogger("integrations.polling")

LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class PollResult:
    created: int = 0
    updated: int = 0
    skipped: bool = False


def _claim(connection: Connection, now: datetime, lease: timedelta) -> PollCursor | None:
    cursor, _ = PollCursor.objects.get_or_create(connection=connection)
    claimed = PollCursor.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now), pk=cursor.pk
    ).update(lease_until=now + lease)
    if not claimed:
        return None
    cursor.refresh_from_db()
    return cursor


class _CursorStore(PollStore):
    """One poll's :class:`PollStore`: the cursor's watermark (written back when the
    poll ends), the connection's ``PolledOrder`` rows, and the inbox."""

    def __init__(self, connection: Connection, cursor: PollCursor) -> None:
        self.connection = connection
        self._watermark = cursor.watermark
        self.created = self.updated = 0

    @property
    def watermark(self) -> datetime | None:
        return self._watermark

    def advance(self, watermark: datetime) -> None:
        self._watermark = watermark

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
            watermark=store.watermark,
            lease_until=None,
            last_run_at=now,
            last_emitted=store.created + store.updated,
            last_error=error,
        )
    return PollResult(created=store.created, updated=store.updated)


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
