"""The dashboard's counts in the database: written as increments by each process
(:mod:`integrations.kernel.stats` holds them in memory for a few seconds), read by
minute or hour, pruned after their time.

One row per minute and per hour of each metric, flow, connection and label; every
write adds to it (``INSERT … ON CONFLICT DO UPDATE``, the same on PostgreSQL and
SQLite), so many processes count into one row without reading it first."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from integrations.kernel.stats import Key
from integrations.models import Tally

# Minute rows serve the last hour's chart, hour rows the day and the week.
KEEP_MINUTES = timedelta(days=2)
KEEP_HOURS = timedelta(days=35)


def _sql(rows: int) -> str:
    table = connection.ops.quote_name(Tally._meta.db_table)
    columns = "period, start, metric, flow, connection, label, count, total"
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * rows)
    return (  # names from _meta, values as parameters
        f"INSERT INTO {table} ({columns}) VALUES {values} "  # noqa: S608
        "ON CONFLICT (period, start, metric, flow, connection, label) DO UPDATE SET "
        f"count = {table}.count + excluded.count, total = {table}.total + excluded.total"
    )


def tallies_write(counts: dict[Key, list[int]]) -> None:
    """Add ``counts`` (by minute) to their minute and hour rows."""
    slots: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for (metric, flow, conn, label, minute), (n, total) in counts.items():
        for period, start in (("m", minute), ("h", minute.replace(minute=0))):
            slot = slots[(period, start, metric, flow, conn, label)]
            slot[0] += n
            slot[1] += total
    rows = sorted(slots.items())  # one order for every process: no deadlock between them
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            for at in range(0, len(rows), 200):
                chunk = rows[at : at + 200]
                adapt = connection.ops.adapt_datetimefield_value  # as the ORM stores it
                params = [
                    value
                    for (period, start, *rest), (n, total) in chunk
                    for value in (period, adapt(start), *rest, n, total)
                ]
                cursor.execute(_sql(len(chunk)), params)
    finally:
        if threading.current_thread().name == "stats-writer":
            connection.close()  # the writer thread sleeps; it holds no connection


def tallies_prune(*, now: datetime | None = None) -> int:
    """Forget minute rows older than two days and hour rows older than 35."""
    now = now or timezone.now()
    gone, _ = Tally.objects.filter(period="m", start__lt=now - KEEP_MINUTES).delete()
    more, _ = Tally.objects.filter(period="h", start__lt=now - KEEP_HOURS).delete()
    return gone + more


# --- reads -----------------------------------------------------------------------------------
@dataclass
class Series:
    """Counts of a window, bucket by bucket, split by metric, flow, connection, label."""

    starts: list[datetime]
    step: timedelta
    rows: dict[tuple[str, str, str, str], list[list[int]]] = field(default_factory=dict)

    def values(
        self, metric: str, *, flow: str | None = None, connection: str | None = None
    ) -> list[int]:
        """Counts of ``metric`` per bucket (of one flow or connection, or all)."""
        out = [0] * len(self.starts)
        for (m, f, c, _), buckets in self.rows.items():
            if m == metric and flow in (None, f) and connection in (None, c):
                for i, (n, _total) in enumerate(buckets):
                    out[i] += n
        return out

    def sum(self, metric: str, **where) -> tuple[int, int]:
        """(count, total) of ``metric`` over the window."""
        n = total = 0
        for (m, f, c, label), buckets in self.rows.items():
            if m != metric or any(
                value is not None and value != {"flow": f, "connection": c, "label": label}[k]
                for k, value in where.items()
            ):
                continue
            n += sum(b[0] for b in buckets)
            total += sum(b[1] for b in buckets)
        return n, total

    def names(self, column: str) -> list[str]:
        index = {"flow": 1, "connection": 2}[column]
        return sorted({key[index] for key in self.rows if key[index]})

    def labels(self, metric: str, **where) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for (m, f, c, label), buckets in self.rows.items():
            if m == metric and all(
                value is None or value == {"flow": f, "connection": c}[k]
                for k, value in where.items()
            ):
                out[label] += sum(b[0] for b in buckets)
        return dict(out)


def tallies_read(
    *,
    period: str,
    since: datetime,
    buckets: int,
    step: timedelta,
    metrics: Iterable[str] | None = None,
    flow: str = "",
    connection_name: str = "",
) -> Series:
    """The rows of ``period`` from ``since`` for ``buckets`` of ``step`` each (one
    range read on the unique key's leading columns), optionally of one flow or
    connection."""
    starts = [since + step * i for i in range(buckets)]
    series = Series(starts=starts, step=step)
    rows = Tally.objects.filter(period=period, start__gte=since, start__lt=since + step * buckets)
    if metrics is not None:
        rows = rows.filter(metric__in=list(metrics))
    if flow:
        rows = rows.filter(flow=flow)
    if connection_name:
        rows = rows.filter(connection=connection_name)
    seconds = step.total_seconds()
    for row in rows.values_list("metric", "flow", "connection", "label", "start", "count", "total"):
        metric, flow_key, conn, label, start, n, total = row
        index = int((start - since).total_seconds() // seconds)
        if not 0 <= index < buckets:
            continue
        slot = series.rows.setdefault(
            (metric, flow_key, conn, label), [[0, 0] for _ in range(buckets)]
        )
        slot[index][0] += n
        slot[index][1] += total
    return series
