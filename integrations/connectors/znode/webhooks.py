"""Verify and parse Znode 10 webhook-consumer requests. No database access here.

Znode signs nothing: it sends the Authorization value configured in its Admin
(Dev Center > Webhook Settings). We accept that value, or, for a gateway in front of
Znode that signs, an ``X-Znode-Signature: sha256=<hex HMAC of the body>`` header.
Either is compared in constant time against every active secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime

from django.utils.crypto import constant_time_compare

from integrations.connectors.base import ParsedEvent, load_json_object
from integrations.connectors.znode.constants import AUTHORIZATION_META, SIGNATURE_META
from integrations.kernel.exceptions import WebhookPayloadError, WebhookVerificationError


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(*, body: bytes, meta: Mapping[str, str], secrets: list[str]) -> None:
    if not secrets:
        raise WebhookVerificationError("connection has no webhook secret configured")
    signature = meta.get(SIGNATURE_META, "")
    authorization = meta.get(AUTHORIZATION_META, "")
    if not signature and not authorization:
        raise WebhookVerificationError("missing Authorization or X-Znode-Signature header")
    matched = False
    for secret in secrets:
        # Evaluate every secret (no early exit) so timing says nothing about which one.
        if signature and constant_time_compare(signature, sign(body, secret)):
            matched = True
        if authorization and constant_time_compare(authorization, secret):
            matched = True
    if not matched:
        raise WebhookVerificationError("Znode webhook credentials rejected")


def _parse_timestamp(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# The id of the object an event is about, by EventModule (§7.2): an address event is
# about the address (one user has several), not about its user.
OBJECT_ID_FIELDS = {
    "order": "OmsOrderId",
    "user": "UserId",
    "address": "AddressId",
    "portal": "PortalId",
    "product": "PimProductId",
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
        reference=str(payload.get("OrderNumber") or data.get("EventDataCode") or "")[:255],
    )
