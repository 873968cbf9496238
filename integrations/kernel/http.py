"""Outbound HTTP with timeouts, error mapping and an ApiCall row for every request.

Connector clients call :func:`http_request` (plain REST) or wrap SDK calls in
:func:`record_api_call`; nothing else in the code base speaks HTTP to a system.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests
from django.conf import settings
from django.db import transaction

from integrations.kernel import exceptions as exc
from integrations.kernel.context import current_run
from integrations.kernel.metrics import observe_api_call
from integrations.kernel.redaction import redact_body, redact_headers, redact_text

if TYPE_CHECKING:
    from integrations.kernel.types import Connection

_recorder: Callable[[CallRecord], Any] | None = None
_many_recorder: Callable[[list[CallRecord]], Any] | None = None

_session = requests.Session()

_held: ContextVar[list[CallRecord] | None] = ContextVar("held_api_calls", default=None)
"""Where finished calls wait to be stored, in a context that holds them (held_calls)."""


@dataclass
class CallRecord:
    """Mutable record filled in while a call runs, saved as an ApiCall at the end."""

    connection: Connection | None
    method: str
    url: str
    operation: str = ""
    idempotency_key: str = ""
    request_headers: Mapping[str, Any] = field(default_factory=dict)
    request_body: str | bytes | None = None
    status_code: int | None = None
    response_body: str | bytes | None = None
    error: str = ""
    duration_ms: int = 0
    run: Any = None
    """The job run the call was made in (``current_run`` then): stored with it, on
    whichever thread stores it."""


@contextmanager
def record_api_call(
    *,
    connection: Connection | None,
    method: str,
    url: str,
    operation: str = "",
    idempotency_key: str = "",
    request_headers: Mapping[str, Any] | None = None,
    request_body: str | bytes | None = None,
) -> Iterator[CallRecord]:
    """Time a call and store it (redacted) whatever the outcome."""
    record = CallRecord(
        connection=connection,
        method=method.upper(),
        url=url,
        operation=operation,
        idempotency_key=idempotency_key,
        request_headers=request_headers or {},
        request_body=request_body,
        run=current_run.get(),
    )
    started = time.perf_counter()
    try:
        yield record
    except BaseException as error:
        record.error = record.error or f"{type(error).__name__}: {redact_text(str(error))}"
        raise
    finally:
        record.duration_ms = int((time.perf_counter() - started) * 1000)
        with contextlib.suppress(Exception):  # counting never fails a call
            observe_api_call(
                connection.name if connection is not None else "",
                record.status_code,
                record.error,
                record.duration_ms,
            )
        held = _held.get()
        if held is not None:
            held.append(record)
        elif _recorder is not None:
            _recorder(record)


@contextmanager
def held_calls() -> Iterator[list[CallRecord]]:
    """Hold the calls finished in this context instead of storing them: for calls
    made on a thread that must not touch the database (a page read ahead), stored by
    the thread that does, in its own run and transaction (:func:`calls_store`)."""
    held: list[CallRecord] = []
    token = _held.set(held)
    try:
        yield held
    finally:
        _held.reset(token)


def calls_store(records: list[CallRecord]) -> None:
    """Store calls a context held (:func:`held_calls`), in the order they finished, in
    one transaction (one commit for a batch of pages, not one each)."""
    if _recorder is None or not records:
        return
    if _many_recorder is not None:
        _many_recorder(records)
        return
    with transaction.atomic():
        for record in records:
            _recorder(record)


def set_call_recorder(
    recorder: Callable[[CallRecord], Any] | None,
    many: Callable[[list[CallRecord]], Any] | None = None,
) -> None:
    """Where finished calls are stored (the engine's ApiCall table); none: not stored.
    ``many`` stores a list of them at once."""
    global _recorder, _many_recorder
    _recorder = recorder
    _many_recorder = many if recorder is not None else None


def redacted(record: CallRecord) -> dict[str, Any]:
    """The record's fields as they may be stored: secrets masked, bodies bounded."""
    limit = settings.INTEGRATIONS["API_CALL_BODY_LIMIT"]
    run = record.run if record.run is not None else current_run.get()
    return {
        "connection": record.connection,
        "job_id": run.job_id,
        "attempt_id": run.attempt_id,
        "method": record.method,
        "url": redact_text(record.url)[:2000],
        "operation": record.operation,
        "idempotency_key": record.idempotency_key,
        "request_headers": redact_headers(dict(record.request_headers)),
        "request_body": redact_body(record.request_body, limit),
        "status_code": record.status_code,
        "response_body": redact_body(record.response_body, limit),
        "error": record.error[:4000],
        "duration_ms": record.duration_ms,
        "reference": run.reference[:255],
    }


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def error_for_status(
    status: int, message: str, retry_after: float | None = None
) -> exc.IntegrationError:
    """Map an HTTP status onto the taxonomy (see DESIGN.md, "Errors"); the error keeps
    the status as ``http_status``."""
    if status == 429:
        cls = exc.RateLimited
    elif status == 409:
        cls = exc.ConflictRetry
    elif status == 408 or status >= 500:
        cls = exc.ConnectorUnavailable
    elif status in (401, 403):
        cls = exc.Unauthorized
    elif status == 404:
        cls = exc.NotFound
    else:
        cls = exc.BadRequest
    return cls(message, retry_after=retry_after if cls.retryable else None, http_status=status)


def http_request(
    connection: Connection | None,
    method: str,
    url: str,
    *,
    operation: str = "",
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    data: Any = None,
    idempotency_key: str = "",
    timeout: tuple[float, float] | float | None = None,
    raise_for_status: bool = True,
) -> requests.Response:
    """Send one request, record it, and raise a taxonomy error on failure."""
    timeout = timeout or settings.INTEGRATIONS["HTTP_TIMEOUT"]
    request = requests.Request(
        method.upper(), url, headers=dict(headers or {}), params=params, json=json, data=data
    ).prepare()
    if idempotency_key:
        request.headers["Idempotency-Key"] = idempotency_key
    with record_api_call(
        connection=connection,
        method=method,
        url=request.url or url,
        operation=operation,
        idempotency_key=idempotency_key,
        request_headers=request.headers,
        request_body=request.body,
    ) as record:
        try:
            response = _session.send(request, timeout=timeout)
        except requests.Timeout as error:
            raise exc.ConnectorTimeout(f"{operation or url}: timed out") from error
        except requests.RequestException as error:
            raise exc.ConnectorUnavailable(f"{operation or url}: {type(error).__name__}") from error
        record.status_code = response.status_code
        record.response_body = response.content
        if raise_for_status and response.status_code >= 400:
            message = f"{operation or url}: HTTP {response.status_code} {response.text[:300]}"
            raise error_for_status(
                response.status_code,
                redact_text(message),
                parse_retry_after(response.headers.get("Retry-After")),
            )
        return response
