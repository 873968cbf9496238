"""Every outbound call as an ApiCall row: the engine's recorder for the kernel's HTTP."""

from __future__ import annotations

from integrations.kernel.http import CallRecord, redacted
from integrations.kernel.jsonutil import db_json
from integrations.models import ApiCall


def api_call_store(record: CallRecord) -> ApiCall:
    """Store one finished call, redacted (secrets masked, bodies bounded), as text the
    database can store (an answer with NUL in it is kept, with U+FFFD for the NUL)."""
    return ApiCall.objects.create(**db_json(redacted(record)))


def api_calls_store(records: list[CallRecord]) -> list[ApiCall]:
    """Store finished calls at once (one insert), as :func:`api_call_store` does each."""
    rows = ApiCall.objects.bulk_create([ApiCall(**db_json(redacted(r))) for r in records])
    for record, row in zip(records, rows, strict=True):
        record.saved = row
    return rows
