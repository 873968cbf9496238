"""Pure functions from Stripe event payloads to the facts our flows need."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from integrations.connectors.stripe.constants import METADATA_ORDER_NUMBER


@dataclass(frozen=True)
class StripeFacts:
    """The business facts of one Stripe event, whatever its family."""

    event_type: str
    object_type: str
    object_id: str
    status: str = ""
    amount: int | None = None  # minor units, as Stripe sends them
    currency: str = ""
    payment_intent: str = ""
    charge: str = ""
    customer: str = ""
    order_number: str = ""
    decline_code: str = ""
    failure_code: str = ""
    failure_message: str = ""
    balance_transaction: str = ""


def _id(value: Any) -> str:
    """An expandable field: either an id string or an expanded object."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _error_fields(obj: dict) -> tuple[str, str, str]:
    error = obj.get("last_payment_error") or {}
    if error:
        return (
            str(error.get("decline_code") or ""),
            str(error.get("code") or ""),
            str(error.get("message") or ""),
        )
    return (
        str((obj.get("outcome") or {}).get("reason") or ""),
        str(obj.get("failure_code") or ""),
        str(obj.get("failure_message") or ""),
    )


_AMOUNT_FIELDS = {
    "payment_intent": "amount",
    "charge": "amount",
    "refund": "amount",
    "dispute": "amount",
    "payout": "amount",
}


def facts(event: dict) -> StripeFacts:
    obj = (event.get("data") or {}).get("object") or {}
    object_type = str(obj.get("object") or "")
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    decline_code, failure_code, failure_message = _error_fields(obj)
    amount_field = _AMOUNT_FIELDS.get(object_type)
    amount = obj.get(amount_field) if amount_field else None
    if object_type == "payment_intent":
        payment_intent, charge = _id(obj.get("id")), _id(obj.get("latest_charge"))
    elif object_type == "charge":
        payment_intent, charge = _id(obj.get("payment_intent")), _id(obj.get("id"))
    else:
        payment_intent, charge = _id(obj.get("payment_intent")), _id(obj.get("charge"))
    customer = _id(obj.get("id")) if object_type == "customer" else _id(obj.get("customer"))
    return StripeFacts(
        event_type=str(event.get("type") or ""),
        object_type=object_type,
        object_id=_id(obj.get("id")),
        status=str(obj.get("status") or ""),
        amount=amount if isinstance(amount, int) else None,
        currency=str(obj.get("currency") or ""),
        payment_intent=payment_intent,
        charge=charge,
        customer=customer,
        order_number=str(metadata.get(METADATA_ORDER_NUMBER) or ""),
        decline_code=decline_code,
        failure_code=failure_code,
        failure_message=failure_message,
        balance_transaction=_id(obj.get("balance_transaction")),
    )


# Stripe's advice: show fraud-type declines to the customer as a generic decline.
FRAUD_DECLINES = frozenset(
    {"fraudulent", "lost_card", "stolen_card", "pickup_card", "merchant_blacklist"}
)


def customer_facing_decline(decline_code: str) -> str:
    return (
        "generic_decline" if decline_code in FRAUD_DECLINES else (decline_code or "generic_decline")
    )


METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500


def stripe_metadata(values: dict[str, object]) -> dict[str, str]:
    """Metadata Stripe will accept: at most 50 keys of ≤40 characters without square
    brackets, string values of ≤500 characters; empty values are left out."""
    result: dict[str, str] = {}
    for key, value in values.items():
        if value in (None, ""):
            continue
        clean = str(key).replace("[", "").replace("]", "")[:METADATA_KEY_MAX]
        result[clean] = str(value)[:METADATA_VALUE_MAX]
        if len(result) == METADATA_MAX_KEYS:
            break
    return result
