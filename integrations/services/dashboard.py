"""What the admin's dashboard shows: the flow of events and jobs from the per-minute
counts (:mod:`integrations.services.stats`), the backlog and what waits for an
operator from bounded, indexed reads, and the money figures the domain apps register.
Nothing here counts a whole table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from integrations.choices import ErrorGroupState, JobStatus
from integrations.kernel.stats import LATENCY_BUCKETS
from integrations.models import Connection, ErrorGroup, Flow, Job
from integrations.registry import figures
from integrations.services.health import backlog_read, count_upto
from integrations.services.stats import Series, tallies_read

# window → (rows read, buckets, step): the last hour by minute, the day and the week by hour.
WINDOWS: dict[str, tuple[str, int, timedelta]] = {
    "hour": ("m", 60, timedelta(minutes=1)),
    "day": ("h", 24, timedelta(hours=1)),
    "week": ("h", 168, timedelta(hours=1)),
}
JOB_ENDS = ("job_succeeded", "job_retrying", "job_quarantined")
COUNTED_UPTO = 10_000  # waiting for an operator: counted up to this, then "10,000+"


@dataclass(frozen=True)
class Row:
    name: str
    events: int
    done: int
    succeeded: int
    failed: int
    calls: int
    call_errors: int
    avg_ms: int | None

    @property
    def success_rate(self) -> str:
        ended = self.succeeded + self.failed
        return f"{100 * self.succeeded / ended:.1f} %" if ended else "-"


def _since(now: datetime, window: str) -> datetime:
    period, buckets, step = WINDOWS[window]
    if period == "m":
        end = now.replace(second=0, microsecond=0) + step
    else:
        end = now.replace(minute=0, second=0, microsecond=0) + step
    return end - step * buckets


def percentiles(histogram: dict[str, int]) -> dict[str, str]:
    """p50/p95/p99 of a latency histogram, as the bucket's upper bound ("≤ 1 s")."""
    total = sum(histogram.values())
    if not total:
        return {}
    labels = ["inf" if b == float("inf") else f"{b:g}" for b in LATENCY_BUCKETS]
    out = {}
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        seen = 0
        for label in labels:
            seen += histogram.get(label, 0)
            if seen >= q * total:
                out[name] = "> 900 s" if label == "inf" else f"≤ {label} s"
                break
    return out


def _row(series: Series, name: str, **where: str) -> Row:
    succeeded, ms = series.sum("job_succeeded", **where)
    retrying, ms_r = series.sum("job_retrying", **where)
    quarantined, ms_q = series.sum("job_quarantined", **where)
    calls, _ = series.sum("api_call", **where)
    errors, _ = series.sum("api_error", **where)
    events, _ = series.sum("events", **where)
    done = succeeded + retrying + quarantined
    return Row(
        name=name,
        events=events,
        done=done,
        succeeded=succeeded,
        failed=retrying + quarantined,
        calls=calls + errors,
        call_errors=errors,
        avg_ms=round((ms + ms_r + ms_q) / done) if done else None,
    )


def _count_upto(rows) -> tuple[int, bool]:
    n = count_upto(rows, COUNTED_UPTO)
    return min(n, COUNTED_UPTO), n > COUNTED_UPTO


def dashboard_read(
    *, window: str = "hour", flow: str = "", connection: str = "", now: datetime | None = None
) -> dict[str, Any]:
    """Everything the dashboard shows for ``window`` (hour, day, week), of one flow or
    connection or all."""
    now = now or timezone.now()
    window = window if window in WINDOWS else "hour"
    period, buckets, step = WINDOWS[window]
    since = _since(now, window)
    series = tallies_read(
        period=period,
        since=since,
        buckets=buckets,
        step=step,
        flow=flow,
        connection_name=connection,
    )
    events = series.values("events")
    done = [sum(v) for v in zip(*(series.values(m) for m in JOB_ENDS), strict=True)]
    total = _row(series, "all")
    backlog = backlog_read(now, limit=COUNTED_UPTO)
    quarantined = Job.objects.filter(status=JobStatus.QUARANTINED)
    if flow:
        quarantined = quarantined.filter(flow__key=flow)
    return {
        "window": window,
        "flow": flow,
        "connection": connection,
        "now": now,
        "since": since,
        "windows": list(WINDOWS),
        "flows": list(Flow.objects.order_by("key").values_list("key", flat=True)),
        "connections": list(Connection.objects.order_by("name").values_list("name", flat=True)),
        "total": total,
        "per_flow": [_row(series, key, flow=key) for key in series.names("flow")],
        "per_connection": [
            _row(series, name, connection=name) for name in series.names("connection")
        ],
        "chart": chart(series.starts, {"events in": events, "jobs done": done}),
        "latency": percentiles(series.labels("paid_latency")),
        "latency_count": sum(series.labels("paid_latency").values()),
        "backlog": backlog,
        "quarantined": _count_upto(quarantined),
        "open_groups": _count_upto(ErrorGroup.objects.filter(state=ErrorGroupState.OPEN)),
        "money": figures(since=now.replace(hour=0, minute=0, second=0, microsecond=0)),
    }


def chart(starts: list[datetime], lines: dict[str, list[int]]) -> dict[str, Any]:
    """Polylines for an SVG of 600 by 120, one per series, scaled to the largest value."""
    width, height = 600, 120
    peak = max((max(v) for v in lines.values() if v), default=0) or 1
    step = width / max(len(starts) - 1, 1)
    out = []
    for name, values in lines.items():
        points = " ".join(
            f"{i * step:.1f},{height - (v / peak) * (height - 4):.1f}" for i, v in enumerate(values)
        )
        out.append({"name": name, "points": points, "sum": sum(values), "last": values[-1]})
    return {
        "lines": out,
        "peak": peak,
        "first": starts[0] if starts else None,
        "last": starts[-1] if starts else None,
    }
