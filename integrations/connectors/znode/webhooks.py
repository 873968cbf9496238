"""Verify and parse Znode 10 webhook-consumer requests. No database access here.

Znode signs nothing: it sends the Authorization value configured in its Admin
(Dev Center > Webhook Settings). We accept that value, or, for a gateway in front of
Znode that signs, a timestamped HMAC in the Stripe manner::

    X-Znode-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

accepted within :data:`TOLERANCE_SECONDS` of our clock (either side), so a captured
request cannot be replayed after that. Rule chosen for the old untimestamped form
``sha256=<hex HMAC of the body>``: it is refused (400), because a request signed that
way can be replayed forever and no setting could make that safe; a gateway moves to
``t=...,v1=...``. The plain Authorization value stays accepted (it is what stock
Znode sends). Every credential is compared in constant time against every active
secret, and every malformed header (non-ASCII, bad numbers, no ``v1``) is a
:class:`WebhookVerificationError`, never another exception.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from django.utils.crypto import constant_time_compare
from django.views.decorators.debug import sensitive_variables

from integrations.connectors.base import ParsedEvent, load_json_object
from integrations.connectors.znode.constants import AUTHORIZATION_META, SIGNATURE_META
from integrations.kernel.exceptions import WebhookPayloadError, WebhookVerificationError

# Seconds a timestamped signature stays valid, like Stripe's default.
TOLERANCE_SECONDS = 300

_SIGNATURE_ITEM = re.compile(r"^(t|v1)=([0-9]{1,12}|[0-9a-f]{64})$")


@sensitive_variables()
def _digest(body: bytes, secret: str, timestamp: int) -> str:
    return hmac.new(secret.encode(), b"%d." % timestamp + body, hashlib.sha256).hexdigest()


@sensitive_variables()
def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``X-Znode-Signature`` value a signing gateway sends for ``body``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={_digest(body, secret, timestamp)}"


def _read_signature(header: str) -> tuple[int, list[str]]:
    if header.startswith("sha256="):
        raise WebhookVerificationError(
            "untimestamped X-Znode-Signature (sha256=) is refused: sign t=<unix>,v1=<hex>"
        )
    if not header.isascii() or len(header) > 1024:
        raise WebhookVerificationError("X-Znode-Signature is malformed")
    timestamp, candidates = None, []
    for item in header.replace(" ", "").split(","):
        match = _SIGNATURE_ITEM.match(item)
        if match is None:
            raise WebhookVerificationError("X-Znode-Signature is malformed")
        key, value = match.groups()
        if key == "t" and value.isdigit() and timestamp is None:
            timestamp = int(value)
        elif key == "v1" and len(value) == 64:
            candidates.append(value)
        else:
            raise WebhookVerificationError("X-Znode-Signature is malformed")
    if timestamp is None or not candidates:
        raise WebhookVerificationError("X-Znode-Signature needs t= and v1=")
    return timestamp, candidates


@sensitive_variables()  # an error report never shows the secrets (or anything) of this frame
def verify(
    *,
    body: bytes,
    meta: Mapping[str, str],
    secrets: list[str],
    tolerance: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    if not secrets:
        raise WebhookVerificationError("connection has no webhook secret configured")
    signature = meta.get(SIGNATURE_META, "")
    authorization = meta.get(AUTHORIZATION_META, "")
    if not signature and not authorization:
        raise WebhookVerificationError("missing Authorization or X-Znode-Signature header")
    timestamp, candidates, refusal = None, [], None
    if signature:
        try:
            timestamp, candidates = _read_signature(signature)
        except WebhookVerificationError as exc:
            refusal = exc
    signed = authorized = False
    for secret in secrets:
        # Evaluate every secret (no early exit) so timing says nothing about which one.
        if candidates:
            expected = _digest(body, secret, timestamp)
            for candidate in candidates:
                if hmac.compare_digest(candidate, expected):
                    signed = True
        if authorization and constant_time_compare(authorization, secret):
            authorized = True
    if authorized:
        return  # the configured value itself: there is no timestamp to check
    if not signed:
        raise refusal or WebhookVerificationError("Znode webhook credentials rejected")
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise WebhookVerificationError(f"X-Znode-Signature timestamp outside {tolerance} s")


def _parse_timestamp(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# The id of the object an event is about, by EventModule (§7.2): an address event is
# about the address (one user has several), not about its user. "Return" is no stock
# Znode 10 module, but a store (and the 9.x poller) may send it: its object is the
# return (RMAReturnModel, §5.1).
OBJECT_ID_FIELDS = {
    "order": "OmsOrderId",
    "user": "UserId",
    "address": "AddressId",
    "portal": "PortalId",
    "product": "PimProductId",
    "return": "RmaReturnDetailsId",
}


def parse(body: bytes) -> ParsedEvent:
    data = load_json_object(body)
    event_id = data.get("EventId")
    module, name = data.get("EventModule"), data.get("EventName")
    if event_id in (None, ""):
        raise WebhookPayloadError("Znode event has no EventId")
    if not isinstance(module, str) or not isinstance(name, str) or not module or not name:
        raise WebhookPayloadError("Znode event has no EventModule/EventName")
    raw_payload = data.get("EventPayload")
    if isinstance(raw_payload, str):
        # Znode double-encodes the domain object as a JSON string.
        try:
            payload = json.loads(raw_payload) if raw_payload.strip() else {}
        except ValueError as exc:
            raise WebhookPayloadError(f"EventPayload is not valid JSON: {exc}") from exc
    elif isinstance(raw_payload, dict) or raw_payload is None:
        payload = raw_payload or {}
    else:
        raise WebhookPayloadError("EventPayload is neither a JSON string nor an object")
    if not isinstance(payload, dict):
        raise WebhookPayloadError("EventPayload does not hold a JSON object")
    envelope = {k: v for k, v in data.items() if k != "EventPayload"}
    id_field = OBJECT_ID_FIELDS.get(module.lower(), "")
    object_id = (payload.get(id_field) if id_field else None) or data.get("EventDataId") or ""
    return ParsedEvent(
        external_id=str(event_id)[:255],
        event_type=f"{module}.{name}".lower(),
        payload={"envelope": envelope, "object": payload},
        occurred_at=_parse_timestamp(data.get("EventTimeStamp")),
        object_id=str(object_id)[:255],
        # The order number where the object names one (a return's too): the inbox and
        # the order's timeline find an order's events by it.
        reference=str(payload.get("OrderNumber") or data.get("EventDataCode") or "")[:255],
    )
