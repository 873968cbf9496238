"""Creating, testing and re-keying connections."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction

from integrations import crypto
from integrations.choices import ConnectionKind, Environment
from integrations.connectors import registry as connectors
from integrations.exceptions import DataError
from integrations.fields import EncryptedJSONField
from integrations.models import Connection
from integrations.redaction import redact_text

logger = logging.getLogger("integrations.connections")


def connection_create(
    *,
    name: str,
    kind: str,
    base_url: str = "",
    environment: str = Environment.DEV,
    credentials: dict[str, str] | None = None,
    webhook_secrets: list[str] | None = None,
    settings: dict | None = None,
    rate_limit_per_second: float | None = None,
) -> Connection:
    if kind not in ConnectionKind.values:
        raise DataError(f"unknown kind {kind!r}; choose one of {', '.join(ConnectionKind.values)}")
    if Connection.objects.filter(name=name).exists():
        raise DataError(f"a connection named {name!r} already exists")
    connection = Connection(
        name=name,
        kind=kind,
        base_url=base_url,
        environment=environment,
        credentials=credentials or {},
        webhook_secrets=[s for s in (webhook_secrets or []) if s],
        settings=settings or {},
    )
    if rate_limit_per_second is not None:
        connection.rate_limit_per_second = rate_limit_per_second
    connection.full_clean()
    connection._change_reason = "created"
    connection.save()
    if kind == ConnectionKind.ZNODE:
        from integrations.services.polling import poll_schedules_sync

        poll_schedules_sync()
    return connection


@dataclass(frozen=True)
class ConnectionTestResult:
    ok: bool
    message: str


def connection_test(*, connection: Connection) -> ConnectionTestResult:
    """One cheap authenticated call; the outcome is recorded as an ApiCall."""
    try:
        message = connectors.get(connection.kind).test_connection(connection)
    except Exception as exc:
        text = redact_text(f"{type(exc).__name__}: {exc}")
        logger.warning(
            "integrations.connections.test_failed connection=%s error=%s", connection.name, text
        )
        return ConnectionTestResult(False, text)
    return ConnectionTestResult(True, message)


def encryption_keys_rotate() -> int:
    """Re-encrypt every secret column with the primary key. Returns rows touched.

    Run after putting a new key first in FIELD_ENCRYPTION_KEYS; the old key can be
    removed once this has finished (history rows included).
    """
    from django.apps import apps
    from django.db import connection as db

    quote = db.ops.quote_name
    touched = 0
    with transaction.atomic():
        for model in apps.get_models():
            fields = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedJSONField)]
            if not fields:
                continue
            # Raw SQL on purpose: the ORM would decrypt into Sealed values, and we
            # want to rotate ciphertext as stored. Names come from model metadata.
            table = quote(model._meta.db_table)
            pk_column = quote(model._meta.pk.column)
            columns = [f.column for f in fields]
            with db.cursor() as cursor:
                cursor.execute(
                    f"SELECT {pk_column}, {', '.join(quote(c) for c in columns)} FROM {table}"  # noqa: S608
                )
                rows = cursor.fetchall()
                for pk, *tokens in rows:
                    new = [crypto.rotate(t) if t else t for t in tokens]
                    assignments = ", ".join(f"{quote(c)} = %s" for c in columns)
                    cursor.execute(
                        f"UPDATE {table} SET {assignments} WHERE {pk_column} = %s",  # noqa: S608
                        [*new, pk],
                    )
                    touched += 1
    return touched
