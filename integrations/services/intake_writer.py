"""Writing inbox rows: the one statement intake runs, and group commit.

Every webhook costs one durable commit, and on a small machine the commit (WAL
flush, round trips, wake-ups) costs more than everything else intake does. When
several requests arrive at once in one process (threaded workers), the writer
thread stores all of them with one multi-row INSERT and one commit, then lets each
request answer. Nothing is acknowledged before its row is committed, so nothing is
lost; duplicates are still decided by the unique (connection, external id) key.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from typing import Any

from django.db import connection

from integrations.kernel.exceptions import TransientError
from integrations.models import InboundEvent

logger = logging.getLogger("integrations.inbox")

FIELDS = (
    "connection",
    "external_id",
    "event_type",
    "source",
    "status",
    "status_reason",
    "object_id",
    "reference",
    "headers",
    "body",
    "remote_addr",
    "occurred_at",
    "received_at",
    "deliveries",
)
MAX_BATCH = 64
WAIT_SECONDS = 30.0

_sql_cache: dict[tuple[str, int], str] = {}


def _sql(rows: int) -> str:
    key = (connection.vendor, rows)
    sql = _sql_cache.get(key)
    if sql is None:
        quote = connection.ops.quote_name
        meta = InboundEvent._meta
        columns = ", ".join(quote(meta.get_field(f).column) for f in FIELDS)
        group = "(" + ", ".join(["%s"] * len(FIELDS)) + ")"
        sql = (
            f"INSERT INTO {quote(meta.db_table)} ({columns}) "  # noqa: S608 - names from _meta
            f"VALUES {', '.join([group] * rows)} "
            f"ON CONFLICT ({quote('connection_id')}, {quote('external_id')}) DO NOTHING "
            f"RETURNING {quote('id')}, {quote('connection_id')}, {quote('external_id')}"
        )
        _sql_cache[key] = sql
    return sql


def insert_events(rows: list[dict[str, Any]]) -> list[int | None]:
    """Insert rows that are new; returns each row's id, or None where a row with the
    same (connection, external id) existed already or came earlier in ``rows``.

    One ``INSERT … ON CONFLICT DO NOTHING RETURNING`` on this thread's connection: it
    commits at once in autocommit mode and joins the caller's transaction otherwise.
    """
    sql = _sql(len(rows))
    if connection.vendor == "postgresql":
        # Server-side binding for this statement: the raw body travels as a parameter
        # instead of being quoted into the SQL text, and psycopg prepares the
        # statement after a few runs. (Django binds client-side by default.)
        from psycopg import Cursor
        from psycopg.types.json import Jsonb

        params = [
            Jsonb(row[name]) if name == "headers" else row[name] for row in rows for name in FIELDS
        ]
        connection.ensure_connection()
        with Cursor(connection.connection) as cursor:
            cursor.execute(sql, params)
            returned = cursor.fetchall()
    else:
        fields = [InboundEvent._meta.get_field(name) for name in FIELDS]
        params = [f.get_db_prep_save(row[f.name], connection) for row in rows for f in fields]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            returned = cursor.fetchall()
    inserted = {(conn_id, external_id): pk for pk, conn_id, external_id in returned}
    result: list[int | None] = []
    for row in rows:
        result.append(inserted.pop((row["connection"], row["external_id"]), None))
    return result


class _Slot:
    __slots__ = ("done", "error", "result", "values")

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.done = threading.Event()
        self.result: int | None = None
        self.error: BaseException | None = None


class GroupCommitWriter:
    """One writer thread per process; requests hand it rows and wait for the commit."""

    def __init__(self) -> None:
        self.queue: queue.Queue[_Slot | None] = queue.Queue()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.pid: int | None = None
        self.batches: list[int] = []  # recent batch sizes, for tests and diagnostics

    def submit(self, values: dict[str, Any]) -> int | None:
        self._ensure_thread()
        slot = _Slot(values)
        self.queue.put(slot)
        if not slot.done.wait(WAIT_SECONDS):
            # The sender gets a 5xx and delivers again; the row may or may not be
            # in, and the unique key makes the redelivery safe either way.
            raise TransientError("the inbox writer did not answer in time")
        if slot.error is not None:
            raise slot.error
        return slot.result

    def _ensure_thread(self) -> None:
        if self.thread is not None and self.pid == os.getpid() and self.thread.is_alive():
            return
        with self.lock:
            if self.thread is not None and self.pid == os.getpid() and self.thread.is_alive():
                return
            self.pid = os.getpid()  # a forked worker starts its own writer
            self.thread = threading.Thread(target=self._run, name="inbox-writer", daemon=True)
            self.thread.start()

    def close(self) -> None:
        """Stop the writer thread and close its database connection."""
        with self.lock:
            thread, self.thread = self.thread, None
        if thread is not None and thread.is_alive():
            self.queue.put(None)
            thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self.queue.get()
            if first is None:
                connection.close()
                return
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self.queue.put(None)  # finish this batch, then stop
                    break
                batch.append(item)
            connection.close_if_unusable_or_obsolete()  # honour CONN_MAX_AGE
            try:
                results = insert_events([slot.values for slot in batch])
                for slot, result in zip(batch, results, strict=True):
                    slot.result = result
            except BaseException as error:
                logger.exception("integrations.inbox.write_failed rows=%s", len(batch))
                for slot in batch:
                    slot.error = error
                connection.close()  # start the next batch on a fresh connection
            finally:
                self.batches = [*self.batches[-99:], len(batch)]
                for slot in batch:
                    slot.done.set()


writer = GroupCommitWriter()
