"""Per-minute counts for the dashboard, kept in memory by each process and written to
the database every few seconds as increments of one row per minute (and per hour) and
metric, so a dashboard over a week reads a few thousand rows, never the event tables.

Counted where the work happens: events received (intake and polls), job runs ended
and their attempts' time (workers), API calls (both), and the time from an order's
first sight to Znode showing it paid (a histogram of :data:`LATENCY_BUCKETS`).

A count is a hint for people, not a ledger: what a process holds when it is killed
(a few seconds' worth) is lost, and nothing else reads it. The writer is installed by
the engine (:func:`set_flusher`); the kernel itself touches no database."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Key = tuple[str, str, str, str, datetime]
"""(metric, flow, connection, label, minute)."""

LATENCY_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, float("inf"))
"""Upper bounds (seconds) of the latency histogram; a count's label is the bound."""

_lock = threading.Lock()
_pending: dict[Key, list[int]] = {}
_flusher: Callable[[dict[Key, list[int]]], Any] | None = None


def set_flusher(flusher: Callable[[dict[Key, list[int]]], Any] | None) -> None:
    global _flusher
    _flusher = flusher


def _minute(at: datetime | None) -> datetime:
    moment = at or datetime.now(UTC)
    return moment.replace(second=0, microsecond=0)


def count(
    metric: str,
    *,
    flow: str = "",
    connection: str = "",
    label: str = "",
    n: int = 1,
    total: int = 0,
    at: datetime | None = None,
) -> None:
    """Add ``n`` (and ``total``, e.g. milliseconds) to this minute's count of
    ``metric``. Cheap: a dict update under a lock; the writer thread does the rest."""
    key = (metric, flow[:120], connection[:80], label[:40], _minute(at))
    with _lock:
        slot = _pending.get(key)
        if slot is None:
            _pending[key] = [n, total]
        else:
            slot[0] += n
            slot[1] += total
    if _flusher is not None:
        # No thread now (a limit, shutdown): the next count tries again.
        with contextlib.suppress(Exception):
            _writer.ensure()


def latency_label(seconds: float) -> str:
    for bound in LATENCY_BUCKETS:
        if seconds <= bound:
            return "inf" if bound == float("inf") else f"{bound:g}"
    return "inf"


def take() -> dict[Key, list[int]]:
    """What was counted since the last take (and forget it)."""
    global _pending
    with _lock:
        taken, _pending = _pending, {}
    return taken


def flush() -> int:
    """Write what was counted now (the writer thread calls this every few seconds;
    tests and a stopping process call it directly). Returns the rows written."""
    taken = take()
    if not taken or _flusher is None:
        return 0
    try:
        _flusher(taken)
    except Exception:  # the counts are lost, never the work that made them
        import logging

        logging.getLogger("integrations.stats").warning(
            "integrations.stats.flush_failed rows=%s", len(taken), exc_info=True
        )
        return 0
    return len(taken)


class _Writer:
    """One daemon thread per process writes the counts every ``interval`` seconds
    (0: never by itself, as in the tests, which flush when they want)."""

    interval: float = 5.0

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.pid: int | None = None

    def ensure(self) -> None:
        import os

        if self.interval <= 0:
            return
        if self.thread is not None and self.pid == os.getpid() and self.thread.is_alive():
            return
        with self.lock:
            if self.thread is not None and self.pid == os.getpid() and self.thread.is_alive():
                return
            self.pid = os.getpid()  # a forked worker needs its own thread
            self.thread = threading.Thread(target=self._run, name="stats-writer", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            flush()


_writer = _Writer()


def set_interval(seconds: float) -> None:
    """Write every ``seconds`` (0: only when :func:`flush` is called, as the tests do);
    a process that exits normally writes what it still holds."""
    _writer.interval = seconds
    if seconds > 0:
        import atexit

        atexit.register(flush)
