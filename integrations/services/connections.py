"""Creating, testing and re-keying connections."""

from __future__ import annotations

import copy
import json
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
from integrations.fields import EncryptedJSONField, reveal
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


def credentials_parse(text: str) -> dict[str, str]:
    """Credentials written by a person: a JSON object of strings, or KEY=VALUE lines
    (blank lines and lines starting with # are skipped). A key may not repeat."""
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as error:
            raise DataError(f"credentials: not a JSON object ({error.msg})") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise DataError("credentials: expected a JSON object of text values")
        return data
    result: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key:
            raise DataError(f"credentials line {number}: expected KEY=VALUE")
        if key in result:
            raise DataError(f"credentials line {number}: {key} is given twice")
        result[key] = value.strip()
    return result


def credentials_merge(current: Any, changes: Mapping[str, str]) -> dict[str, str]:
    """``current`` (sealed or plain) with ``changes``: listed keys are set or replaced,
    a key with an empty value is removed, other keys are kept."""
    merged = dict(reveal(current) or {})
    for key, value in changes.items():
        if value:
            merged[key] = value
        else:
            merged.pop(key, None)
    return merged


# What decides where a connection's credentials are sent, besides its kind and base URL.
DESTINATION_SETTINGS: dict[str, tuple[str, ...]] = {
    ConnectionKind.ZNODE: ("token_url",),  # the OAuth client secret is posted there
    # appended to the base URL as text ("@host/" moves it), and the client's own code
    ConnectionKind.ERP: ("health_path", "client_class"),
}


def _destination(kind: str, base_url: str, settings: Mapping[str, Any] | None) -> dict[str, Any]:
    names = DESTINATION_SETTINGS.get(kind, ())
    return {
        "kind": kind,
        "base URL": (base_url or "").rstrip("/"),
        **{name: (settings or {}).get(name) for name in names},
    }


def credentials_reentry_problem(
    *,
    stored: Connection,
    kind: str,
    base_url: str,
    settings: Mapping[str, Any] | None,
    entered: Mapping[str, str],
) -> str | None:
    """Why this change of where ``stored``'s credentials are sent cannot be saved.

    Rule: a change of the kind, the base URL or a setting in DESTINATION_SETTINGS
    must re-enter every stored credential in the same change (a new value, or empty
    to remove it). Whoever may edit a connection without knowing its secrets must not
    be able to point them at another host and press "test connection"."""
    before = _destination(stored.kind, stored.base_url, stored.settings)
    after = _destination(kind, base_url, settings)
    changed = [name for name in {**before, **after} if before.get(name) != after.get(name)]
    missing = sorted(set(reveal(stored.credentials) or {}) - set(entered))
    if not changed or not missing:
        return None
    return (
        f"changing where the credentials are sent ({', '.join(changed)}) needs them "
        f"re-entered in the same change: {', '.join(missing)}"
    )


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
    credentials: Mapping[str, str] | None = None,
    rate_limit_per_second: Decimal | float | int | None = None,
    enabled: bool | None = None,
    reason: str = "updated",
) -> Connection:
    """Change what is given (``None``: unchanged). Settings are merged into the stored
    ones, ``unset`` removes keys, and the result is checked as a whole; nothing is
    written when anything is wrong. ``credentials`` are merged like the admin form's
    (an empty value removes the key); a change of where they are sent needs them all
    (``credentials_reentry_problem``). Webhook secrets are not changed here."""
    unset = list(unset)
    credentials = dict(credentials or {})
    with transaction.atomic():
        row = Connection.objects.select_for_update().get(pk=connection.pk)
        stored = copy.copy(row)
        if settings or unset:
            row.settings = connection_schema(row.kind).update(row.settings, settings, unset)
        if base_url is not None:
            row.base_url = base_url
        if credentials:
            row.credentials = credentials_merge(row.credentials, credentials)
        if rate_limit_per_second is not None:
            row.rate_limit_per_second = rate_limit(rate_limit_per_second)
        if enabled is not None:
            row.enabled = enabled
        full_clean(row)
        if problem := credentials_reentry_problem(
            stored=stored,
            kind=row.kind,
            base_url=row.base_url,
            settings=row.settings,
            entered=credentials,
        ):
            raise DataError(problem)
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
