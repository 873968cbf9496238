"""Every outbound call as an ApiCall row: the engine's recorder for the kernel's HTTP."""

from __future__ import annotations

from integrations.db import bulk_insert
from integrations.kernel.http import CallRecord, redacted
from integrations.kernel.jsonutil import db_json
from integrations.models import ApiCall


def api_call_store(record: CallRecord) -> ApiCall:
    """Store one finished call, redacted (secrets masked, bodies bounded), as text the
    database can store (an answer with NUL in it is kept, with U+FFFD for the NUL)."""
    return ApiCall.objects.create(**db_json(redacted(record)))


def api_calls_store(records: list[CallRecord]) -> int:
    """Store finished calls at once (one statement), each as :func:`api_call_store`
    stores one; returns how many."""
    if not records:
        return 0
    rows = []
    for record in records:
        values = db_json(redacted(record))
        connection = values.pop("connection")  # the row by its id, as job_id and attempt_id
        values["connection_id"] = connection.pk if connection is not None else None
        rows.append(values)
    fields = tuple(rows[0])  # :func:`redacted`'s fields, the same for every call
    return bulk_insert(ApiCall, [tuple(values.values()) for values in rows], fields=fields)
