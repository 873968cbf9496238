"""Database helpers the apps share, for the few writes too large for the ORM's per-row
Python work: a batch of thousands of rows, many to a statement (on PostgreSQL one
array per column, elsewhere as many rows as the database takes parameters).

Identifiers in the SQL come from a model's own metadata, quoted; every value is a
parameter."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from django.core.exceptions import EmptyResultSet
from django.db import connections, models, router
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
    named = [opts.get_field(name) for name in fields]
    # The fields not named are inserted with their defaults, as the ORM would.
    rest = [
        field
        for field in opts.concrete_fields
        if field not in named and not isinstance(field, models.AutoField)
    ]
    defaults = tuple(field.get_default() for field in rest)
    columns = [*named, *rest]
    preps: list[Callable[[Any], Any] | None] = [
        None if isinstance(field, _PLAIN) or field.is_relation else _prep(field, connection)
        for field in columns
    ]
    names = [quote(field.column) for field in columns]
    targets = ", ".join(quote(opts.get_field(name).column) for name in unique)
    sets = ", ".join(
        f"{quote(opts.get_field(name).column)} = EXCLUDED.{quote(opts.get_field(name).column)}"
        for name in update
    )
    if any(preps):
        params = [
            tuple(
                value if prep is None else prep(value)
                for value, prep in zip((*row, *defaults), preps, strict=True)
            )
            for row in rows
        ]
    else:
        params = [(*row, *defaults) for row in rows]
    head = f"INSERT INTO {quote(opts.db_table)} ({', '.join(names)})"
    tail = f"ON CONFLICT ({targets}) DO UPDATE SET {sets}"
    if connection.vendor == "postgresql":
        # One statement, its values one array per column, sent in binary: a query of a
        # few hundred characters whatever the batch. (A VALUES list of thousands of
        # placeholders costs the driver more to parse than the server to run, and
        # Django's client-side binding quotes every value as text.)
        # Cast to the type without its length (varchar(3) → varchar): an explicit cast
        # to varchar(n) would cut a longer value; the INSERT's own check refuses it.
        arrays = ", ".join(f"%b::{_unsized(field.db_type(connection))}[]" for field in columns)
        incoming = f"SELECT * FROM unnest({arrays}) AS incoming ({', '.join(names)})"  # noqa: S608
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
                f"FROM {quote(opts.db_table)} AS stored JOIN incoming ON {joined}), "
                f"written AS ({head} SELECT * FROM incoming {tail} RETURNING 1) "
                "SELECT * FROM before"
            )
        connection.ensure_connection()
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, [list(column) for column in zip(*params, strict=True)])
            return dict(cursor.fetchall()) if previous is not None else {}
    before: dict[Any, Any] = {}
    one = f"({', '.join(['%s'] * len(names))})"
    size = max(1, connection.ops.bulk_batch_size(columns, params))
    at = [fields.index(name) for name in unique]
    with connection.cursor() as cursor:
        for start in range(0, len(params), size):
            chunk = params[start : start + size]
            if previous is not None:
                keys = ", ".join([f"({', '.join(['%s'] * len(at))})"] * len(chunk))
                cursor.execute(
                    f"SELECT {_pair(opts, previous, quote)} FROM {quote(opts.db_table)} "  # noqa: S608
                    f"WHERE ({targets}) IN (VALUES {keys})",
                    [row[i] for row in chunk for i in at],
                )
                before.update(cursor.fetchall())
            cursor.execute(
                f"{head} VALUES {', '.join([one] * len(chunk))} {tail}",
                [value for row in chunk for value in row],
            )
    return before


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


@models.CharField.register_lookup
class AnyOf(lookups.In):
    """``field__any_of=values``: ``IN``, written on PostgreSQL as ``= ANY(%s)`` with the
    values as one array parameter. A batch of hundreds of ids is one short query (an
    IN list of hundreds of placeholders is a long query the driver parses and quotes
    placeholder by placeholder, every time); the index on the field is used alike."""

    lookup_name = "any_of"

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, tuple]:
        if not self.rhs_is_direct_value() or self.bilateral_transforms:
            return self.as_sql(compiler, connection)
        values = [value for value in self.rhs if value is not None]  # as IN leaves None out
        if not values:
            raise EmptyResultSet  # as IN does: nothing is among no values
        field = self.lhs.output_field
        lhs, lhs_params = self.process_lhs(compiler, connection)
        prepared = [field.get_db_prep_value(v, connection, prepared=True) for v in values]
        return f"{lhs} = ANY(%s)", (*lhs_params, prepared)
