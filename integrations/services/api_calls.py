"""Every outbound call as an ApiCall row: the engine's recorder for the kernel's HTTP."""

from __future__ import annotations

from integrations.kernel.http import CallRecord, redacted
from integrations.models import ApiCall


def api_call_store(record: CallRecord) -> ApiCall:
    """Store one finished call, redacted (secrets masked, bodies bounded)."""
    return ApiCall.objects.create(**redacted(record))
