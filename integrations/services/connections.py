"""Creating, testing and re-keying connections."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction

from integrations import crypto
from integrations.choices import ConnectionKind, Environment
from integrations.connectors import registry as connectors
from integrations.fields import EncryptedJSONField
from integrations.kernel.exceptions import DataError
from integrations.kernel.redaction import redact_text
from integrations.models import Connection
from integrations.settings_schema import connection_schema

# simple_history keeps the change reason in a CharField(max_length=100).
CHANGE_REASON_LIMIT = 100

logger = logging.getLogger("integrations.connections")


def full_clean(row: models.Model) -> None:
    """``full_clean()`` with its errors as one readable DataError."""
    try:
        row.full_clean()
    except ValidationError as error:
        problems = [
            f"{field}: {' '.join(messages)}" if field != "__all__" else " ".join(messages)
            for field, messages in error.message_dict.items()
        ]
        raise DataError("; ".join(problems)) from error


def change_reason(text: str) -> str:
    return text if len(text) <= CHANGE_REASON_LIMIT else text[: CHANGE_REASON_LIMIT - 1] + "…"


def rate_limit(value: Decimal | float | int | str) -> Decimal:
    """A rate limit in requests per second: a number above 0."""
    try:
        rate = Decimal(str(value).strip())
    except InvalidOperation:
        rate = None
    if rate is None or not rate.is_finite() or rate <= 0:
        raise DataError(f"the rate limit must be requests per second above 0, got {str(value)!r}")
    return rate


def connection_create(
    *,
    name: str,
    kind: str,
    base_url: str = "",
    environment: str = Environment.DEV,
    credentials: dict[str, str] | None = None,
    webhook_secrets: list[str] | None = None,
    settings: Mapping[str, Any] | None = None,
    rate_limit_per_second: Decimal | float | int | None = None,
) -> Connection:
    """A new connection; settings are checked against the connector's schema."""
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
        settings=connection_schema(kind).validate(settings),
    )
    if rate_limit_per_second is not None:
        connection.rate_limit_per_second = rate_limit(rate_limit_per_second)
    full_clean(connection)
    connection._change_reason = "created"
    connection.save()
    _poll_schedules_follow(kind)
    return connection


def _poll_schedules_follow(kind: str) -> None:
    """A polled system's schedules follow its connections (created, turned on or off)."""
    if connectors.get(kind).supports_polling:
        from integrations.services.polling import poll_schedules_sync

        poll_schedules_sync()


def connection_update(
    *,
    connection: Connection,
    base_url: str | None = None,
    settings: Mapping[str, Any] | None = None,
    unset: Iterable[str] = (),
    rate_limit_per_second: Decimal | float | int | None = None,
    enabled: bool | None = None,
    reason: str = "updated",
) -> Connection:
    """Change what is given (``None``: unchanged). Settings are merged into the stored
    ones, ``unset`` removes keys, and the result is checked as a whole; nothing is
    written when anything is wrong. Credentials and secrets are not changed here."""
    unset = list(unset)
    with transaction.atomic():
        row = Connection.objects.select_for_update().get(pk=connection.pk)
        if settings or unset:
            row.settings = connection_schema(row.kind).update(row.settings, settings, unset)
        if base_url is not None:
            row.base_url = base_url
        if rate_limit_per_second is not None:
            row.rate_limit_per_second = rate_limit(rate_limit_per_second)
        if enabled is not None:
            row.enabled = enabled
        full_clean(row)
        row._change_reason = change_reason(reason)
        row.save()
    _poll_schedules_follow(row.kind)  # polling may have been turned on or off
    return row


def connection_by_name(*, name: str, kind: str | None = None) -> Connection:
    """The connection called ``name`` (of ``kind``, when given), or DataError."""
    connection = Connection.objects.filter(name=name).first()
    if connection is None:
        raise DataError(f"no connection named {name!r}")
    if kind is not None and connection.kind != kind:
        raise DataError(f"connection {name!r} is a {connection.kind} connection, not {kind}")
    return connection


@dataclass(frozen=True)
class ConnectionTestResult:
    ok: bool
    message: str


def connection_test(*, connection: Connection) -> ConnectionTestResult:
    """One cheap authenticated call (recorded as an ApiCall), then the setup checks of
    every integration that uses the connection: the system answering is not enough if
    the configuration cannot work with it."""
    from django.db.models import Q

    from integrations.models import Integration
    from integrations.registry import setup_problems

    try:
        message = connectors.get(connection.kind).test_connection(connection)
        uses = Q(znode=connection) | Q(stripe=connection) | Q(erp=connection)
        problems = [
            f"{integration.name}: {problem}"
            for integration in Integration.objects.filter(uses)
            for problem in setup_problems(integration=integration)
        ]
        if problems:
            raise DataError(f"{message.split(';')[0]}, but " + "; ".join(problems))
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
