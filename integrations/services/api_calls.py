"""Every outbound call as an ApiCall row: the engine's recorder for the kernel's HTTP."""

from __future__ import annotations

from integrations.db import bulk_insert
from integrations.kernel.http import CallRecord, redacted
from integrations.kernel.jsonutil import db_json
from integrations.models import ApiCall

_FIELDS = (
    "connection",
    "job",
    "attempt",
    "method",
    "url",
    "operation",
    "idempotency_key",
    "request_headers",
    "request_body",
    "status_code",
    "response_body",
    "error",
    "duration_ms",
    "reference",
)
"""What a stored call holds (:func:`redacted`'s fields), a foreign key by its row id."""


def api_call_store(record: CallRecord) -> ApiCall:
    """Store one finished call, redacted (secrets masked, bodies bounded), as text the
    database can store (an answer with NUL in it is kept, with U+FFFD for the NUL)."""
    return ApiCall.objects.create(**db_json(redacted(record)))


def api_calls_store(records: list[CallRecord]) -> int:
    """Store finished calls at once (one statement), each as :func:`api_call_store`
    stores one; returns how many."""
    rows = []
    for record in records:
        values = db_json(redacted(record))
        connection = values.pop("connection")
        values["connection"] = connection.pk if connection is not None else None
        values["job"] = values.pop("job_id")
        values["attempt"] = values.pop("attempt_id")
        rows.append(tuple(values[name] for name in _FIELDS))
    return bulk_insert(ApiCall, rows, fields=_FIELDS)
