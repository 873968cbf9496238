"""Verify and parse Stripe webhook requests. No database access here."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import stripe
from django.views.decorators.debug import sensitive_variables

from integrations.connectors.base import ParsedEvent, load_json_object
from integrations.connectors.stripe.constants import METADATA_ORDER_NUMBER
from integrations.kernel.exceptions import WebhookPayloadError, WebhookVerificationError

SIGNATURE_META = "HTTP_STRIPE_SIGNATURE"


@sensitive_variables()  # an error report never shows the secrets (or anything) of this frame
def verify(*, body: bytes, meta: Mapping[str, str], secrets: list[str], tolerance: int) -> None:
    """Accept the request if any active secret verifies ``Stripe-Signature``.

    Uses the official SDK on the raw bytes; building the SDK's event object is left
    out on purpose (it costs ~40x the signature check and we parse the JSON once
    ourselves). Every way a header can fail is a :class:`WebhookVerificationError`
    (a 400), never another exception: the SDK's compare raises ``TypeError`` on a
    non-ASCII signature, so such a header is refused before it gets there, and any
    other SDK error is caught as a rejection.
    """
    header = meta.get(SIGNATURE_META)
    if not header:
        raise WebhookVerificationError("missing Stripe-Signature header")
    if not isinstance(header, str) or not header.isascii():
        raise WebhookVerificationError("Stripe-Signature header is not ASCII")
    if not secrets:
        raise WebhookVerificationError("connection has no webhook secret configured")
    try:
        payload = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookVerificationError("body is not UTF-8") from exc
    last_error: Exception | None = None
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance)
            return
        except stripe.SignatureVerificationError as exc:
            last_error = exc
        except (TypeError, ValueError, OverflowError) as exc:
            # Malformed input the SDK does not map to its own error.
            raise WebhookVerificationError(
                f"Stripe-Signature header unreadable ({type(exc).__name__})"
            ) from None
    raise WebhookVerificationError(f"Stripe signature rejected: {last_error}")


def parse(body: bytes) -> ParsedEvent:
    data = load_json_object(body)
    event_id, event_type = data.get("id"), data.get("type")
    if not isinstance(event_id, str) or not event_id:
        raise WebhookPayloadError("Stripe event has no 'id'")
    if not isinstance(event_type, str) or not event_type:
        raise WebhookPayloadError("Stripe event has no 'type'")
    obj = (data.get("data") or {}).get("object") or {}
    if not isinstance(obj, dict):
        raise WebhookPayloadError("Stripe event data.object is not an object")
    created = data.get("created")
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    return ParsedEvent(
        external_id=event_id,
        event_type=event_type,
        payload=data,
        occurred_at=datetime.fromtimestamp(created, tz=UTC) if isinstance(created, int) else None,
        object_id=str(obj.get("id") or "")[:255],
        reference=str(metadata.get(METADATA_ORDER_NUMBER) or "")[:255],
    )
