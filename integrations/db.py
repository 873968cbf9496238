"""Database helpers the apps share, for the few writes too large for the ORM's per-row
Python work: a batch of thousands of rows, many to a statement (on PostgreSQL one
array per column, elsewhere as many rows as the database takes parameters).

Identifiers in the SQL come from a model's own metadata, quoted; every value is a
parameter."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, TypeVar

import psycopg
from django.core.exceptions import EmptyResultSet
from django.db import connections, models, router, transaction
from django.db.models import lookups
from django.utils import timezone

# Values of these fields are stored as the Python value is (str, int, bool, a row id):
# no per-value preparation. Any other field's values go through its own
# ``get_db_prep_save`` (a JSON document, a datetime, a decimal), as the ORM does.
_PLAIN = (
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.BigIntegerField,
    models.PositiveIntegerField,
    models.BooleanField,
)


@dataclass(frozen=True)
class _Columns:
    """How rows of some of a model's fields are written: every concrete column (the
    fields not named get their defaults, as the ORM would give them), quoted, with the
    preparation each value needs."""

    table: str
    fields: list[models.Field]
    names: list[str]
    preps: list[Callable[[Any], Any] | None]
    defaults: tuple

    @classmethod
    def of(cls, model: type[models.Model], fields: Sequence[str], connection: Any) -> _Columns:
        opts = model._meta
        named = [opts.get_field(name) for name in fields]
        rest = [
            field
            for field in opts.concrete_fields
            if field not in named and not isinstance(field, models.AutoField)
        ]
        now = timezone.now()
        defaults = tuple(_default(field, now) for field in rest)
        columns = [*named, *rest]
        quote = connection.ops.quote_name
        return cls(
            table=quote(opts.db_table),
            fields=columns,
            names=[quote(field.column) for field in columns],
            preps=[
                None if isinstance(field, _PLAIN) or field.is_relation else _prep(field, connection)
                for field in columns
            ],
            defaults=defaults,
        )

    def params(self, rows: Sequence[Sequence[Any]]) -> list[tuple]:
        """Each row's values, the defaults after them, prepared for the database."""
        defaults, preps = self.defaults, self.preps
        if not any(preps):
            return [(*row, *defaults) for row in rows]
        return [
            tuple(
                value if prep is None else prep(value)
                for value, prep in zip((*row, *defaults), preps, strict=True)
            )
            for row in rows
        ]

    def unnest(self, connection: Any) -> str:
        """PostgreSQL: the rows as one array per column (``%b``: sent in binary), a
        query of a few hundred characters whatever the batch. (A VALUES list of
        thousands of placeholders costs the driver more to parse than the server to
        run, and Django's client-side binding quotes every value as text, a string's
        every quote escaped one by one.) Each cast is to the type without its length
        (varchar(3) → varchar): a cast to varchar(n) would cut a longer value; the
        INSERT's own check refuses it."""
        arrays = ", ".join(f"%b::{_unsized(field.db_type(connection))}[]" for field in self.fields)
        return f"SELECT * FROM unnest({arrays}) AS incoming ({', '.join(self.names)})"  # noqa: S608

    def head(self) -> str:
        return f"INSERT INTO {self.table} ({', '.join(self.names)})"


def _default(field: models.Field, now: datetime) -> Any:
    """A value for a field the rows do not name: the moment for ``auto_now`` and
    ``auto_now_add`` (what ``pre_save`` sets, once for the batch; a date field the
    day), else the field's default."""
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return now if isinstance(field, models.DateTimeField) else now.date()
    return field.get_default()


def _binary_execute(connection: Any, sql: str, params: list[tuple]) -> list[tuple]:
    """Run ``sql`` on PostgreSQL with ``params`` (rows) as one array per column, bound
    server-side in binary; the rows it returns."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, [list(column) for column in zip(*params, strict=True)])
        return cursor.fetchall() if cursor.description else []


def bulk_insert(
    model: type[models.Model], rows: Sequence[Sequence[Any]], *, fields: Sequence[str]
) -> int:
    """Insert ``rows`` (one value per name of ``fields``, a foreign key by its row id;
    the fields not named get their defaults, ``auto_now`` ones the moment) into
    ``model``'s table in one statement on PostgreSQL (elsewhere as many rows a
    statement as the database takes parameters). No signals, no ``save()``, no row
    ids returned: for rows written and not read back (a record of calls). Returns how
    many were written."""
    if not rows:
        return 0
    connection = connections[router.db_for_write(model)]
    columns = _Columns.of(model, fields, connection)
    params = columns.params(rows)
    if connection.vendor == "postgresql":
        _binary_execute(connection, f"{columns.head()} {columns.unnest(connection)}", params)
        return len(params)
    # All or nothing, as the one statement on PostgreSQL.
    with transaction.atomic(using=connection.alias, savepoint=False), connection.cursor() as cursor:
        for chunk in _chunks(connection, columns, params):
            cursor.execute(
                f"{columns.head()} VALUES {_values(columns, len(chunk))}",
                [value for row in chunk for value in row],
            )
    return len(params)


def bulk_upsert(
    model: type[models.Model],
    rows: Sequence[Sequence[Any]],
    *,
    fields: Sequence[str],
    unique: Sequence[str],
    update: Sequence[str],
    previous: tuple[str, str] | None = None,
) -> dict[Any, Any]:
    """Insert ``rows`` (one value per name of ``fields``, a foreign key by its row id;
    the fields not named get their defaults) into ``model``'s table; a row whose
    ``unique`` fields match one stored has its ``update`` fields written over instead
    (``ON CONFLICT … DO UPDATE``, PostgreSQL and SQLite alike). No signals, no
    ``save()``: for the rows of a table written only in bulk. The caller holds the
    transaction.

    ``previous`` (a key field and a value field, by name): returned, for the rows that
    were stored already, the value field as it was before this write, by key (on
    PostgreSQL read by the same statement, from its snapshot)."""
    if not rows:
        return {}
    connection = connections[router.db_for_write(model)]
    opts = model._meta
    quote = connection.ops.quote_name
    columns = _Columns.of(model, fields, connection)
    targets = ", ".join(quote(opts.get_field(name).column) for name in unique)
    sets = ", ".join(
        f"{quote(opts.get_field(name).column)} = EXCLUDED.{quote(opts.get_field(name).column)}"
        for name in update
    )
    params = columns.params(rows)
    head = columns.head()
    tail = f"ON CONFLICT ({targets}) DO UPDATE SET {sets}"
    if connection.vendor == "postgresql":
        incoming = columns.unnest(connection)
        if previous is None:
            sql = f"{head} {incoming} {tail}"
        else:
            # Every part of one statement sees the same snapshot: ``before`` reads the
            # rows as they were, whatever ``written`` does to them.
            joined = " AND ".join(
                f"stored.{quote(opts.get_field(name).column)} = "
                f"incoming.{quote(opts.get_field(name).column)}"
                for name in unique
            )
            sql = (
                f"WITH incoming AS ({incoming}), "  # noqa: S608
                f"before AS (SELECT {_pair(opts, previous, quote, 'stored')} "
                f"FROM {columns.table} AS stored JOIN incoming ON {joined}), "
                f"written AS ({head} SELECT * FROM incoming {tail} RETURNING 1) "
                "SELECT * FROM before"
            )
        found = _binary_execute(connection, sql, params)
        return dict(found) if previous is not None else {}
    before: dict[Any, Any] = {}
    at = [fields.index(name) for name in unique]
    with connection.cursor() as cursor:
        for chunk in _chunks(connection, columns, params):
            if previous is not None:
                keys = ", ".join([f"({', '.join(['%s'] * len(at))})"] * len(chunk))
                cursor.execute(
                    f"SELECT {_pair(opts, previous, quote)} FROM {columns.table} "  # noqa: S608
                    f"WHERE ({targets}) IN (VALUES {keys})",
                    [row[i] for row in chunk for i in at],
                )
                before.update(cursor.fetchall())
            cursor.execute(
                f"{head} VALUES {_values(columns, len(chunk))} {tail}",
                [value for row in chunk for value in row],
            )
    return before


def _chunks(connection: Any, columns: _Columns, params: list[tuple]) -> Iterator[list[tuple]]:
    """``params`` in runs of as many rows as one statement of the database takes."""
    size = max(1, connection.ops.bulk_batch_size(columns.fields, params))
    for start in range(0, len(params), size):
        yield params[start : start + size]


def _values(columns: _Columns, count: int) -> str:
    one = f"({', '.join(['%s'] * len(columns.names))})"
    return ", ".join([one] * count)


def _unsized(db_type: str) -> str:
    return re.sub(r"\(.*?\)", "", db_type).strip()


def _pair(opts: Any, names: tuple[str, str], quote: Callable[[str], str], alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{quote(opts.get_field(name).column)}" for name in names)


def _prep(field: models.Field, connection: Any) -> Callable[[Any], Any]:
    if isinstance(field, models.DateTimeField):
        adapt = connection.ops.adapt_datetimefield_value

        def prep_moment(value: Any) -> Any:
            # An aware datetime is what get_db_prep_save comes to: the backend's form.
            if value is None or timezone.is_aware(value):
                return adapt(value)
            return field.get_db_prep_save(value, connection)

        return prep_moment

    if isinstance(field, models.JSONField):
        adapt_json = connection.ops.adapt_json_value

        def prep_document(value: Any) -> Any:
            # A plain value (no expression): what get_db_prep_save comes to.
            return None if value is None else adapt_json(value, field.encoder)

        return prep_document

    def prep(value: Any) -> Any:
        return None if value is None else field.get_db_prep_save(value, connection)

    return prep


T = TypeVar("T")


class WriteBehind(Generic[T]):
    """Writes run one at a time on a thread of their own, with a database connection of
    its own, while the caller goes on (matches the next batch while the database stores
    this one: the server's work and ours overlap). At most one write is pending: the
    caller hands over the next only once the one before is done, so what waits in memory
    is bounded, an error surfaces at the next hand-over, and each write's result reaches
    ``done`` on the caller's thread, in order.

    Only where a second connection sees what the caller's has committed: PostgreSQL,
    the caller not inside a transaction (its writes so far are committed, and the
    writes here are not meant to be part of one). Otherwise (SQLite, a test's or a
    caller's transaction) each write runs at once on the caller's thread, as it would
    without this. Each write holds its own transaction.

    Used as a context manager: on the way out the pending write is waited for (its
    error raised, unless another is on its way out already) and the thread's connection
    closed."""

    def __init__(self, done: Callable[[T], None], *, using: str = "default") -> None:
        connection = connections[using]
        self.done = done
        self.using = using
        self.threaded = connection.vendor == "postgresql" and not connection.in_atomic_block
        self._pool = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="write-behind")
            if self.threaded
            else None
        )
        self._pending: Future[T] | None = None

    def submit(self, write: Callable[[], T]) -> None:
        """Run ``write`` (after the pending one is done and its result handed to
        ``done``)."""
        if self._pool is None:
            self.done(write())
            return
        self._settle()
        self._pending = self._pool.submit(write)

    def _settle(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            self.done(pending.result())

    def __enter__(self) -> WriteBehind[T]:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._pool is None:
            return
        try:
            if kind is None:
                self._settle()
            elif self._pending is not None:
                # Leaving with an error already: the pending write only finishes.
                self._pending.exception()
        finally:
            # Looked up on the thread: its own connection, not the caller's.
            self._pool.submit(lambda: connections[self.using].close()).result()
            self._pool.shutdown()


@models.CharField.register_lookup
class AnyOf(lookups.In):
    """``field__any_of=values``: ``IN``, written on PostgreSQL as ``= ANY(%s::text[])``
    with the values as one parameter, an array literal. A batch of hundreds of ids is
    one short query the index on the field serves alike: an IN list of hundreds of
    placeholders is a long query the driver parses and quotes placeholder by
    placeholder, and a list parameter is quoted element by element in Python (by
    Django's client-side binding), every time."""

    lookup_name = "any_of"

    def get_prep_lookup(self) -> Any:
        # Strings are what a CharField's get_prep_value makes of them: not prepared
        # again one by one. Anything else is prepared as IN prepares it.
        if isinstance(self.rhs, list | tuple | set | frozenset) and all(
            type(value) is str for value in self.rhs
        ):
            return list(self.rhs)
        return super().get_prep_lookup()

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, tuple]:
        if (
            not self.rhs_is_direct_value()
            or self.bilateral_transforms
            or any(hasattr(value, "as_sql") for value in self.rhs)  # an expression: IN's
        ):
            return self.as_sql(compiler, connection)
        values = [value for value in self.rhs if value is not None]  # as IN leaves None out
        if not values:
            raise EmptyResultSet  # as IN does: nothing is among no values
        field = self.lhs.output_field
        lhs, lhs_params = self.process_lhs(compiler, connection)
        prepared = (str(field.get_db_prep_value(v, connection, prepared=True)) for v in values)
        return f"{lhs} = ANY(%s::text[])", (*lhs_params, _text_array(prepared))


def _text_array(values: Iterable[str]) -> str:
    """A PostgreSQL array literal of ``values``, each quoted (``"`` and ``\\``
    escaped): one string parameter, quoted by the driver at C speed."""
    quoted = (value.replace("\\", "\\\\").replace('"', '\\"') for value in values)
    return "{" + ",".join(f'"{value}"' for value in quoted) + "}"
