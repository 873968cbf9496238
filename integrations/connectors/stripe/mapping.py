"""Stripe wire ⇄ facts: the objects the platform reads (a PaymentIntent, a charge, a
Checkout Session, a customer) as frozen dataclasses that keep ``raw``, and the request
parameters it sends, built from business values. Pure functions: no network access.

Amounts are Stripe's integers in minor units, as Stripe sends them; currencies are as
Stripe writes them (lower case). Converting to and from major units is the currency
table's business (``payments/money.py``), not this module's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from integrations.connectors.stripe.constants import (
    METADATA_INTEGRATION,
    METADATA_ORDER_NUMBER,
    METADATA_REFUND_KEY,
    METADATA_RETURN_NUMBER,
    METADATA_ZNODE_USER,
)
from integrations.kernel.facts import PostalAddress, fact_json


# --- facts --------------------------------------------------------------------------------
@dataclass(frozen=True)
class StripeCharge:
    id: str
    status: str
    paid: bool
    captured: bool
    refunded: bool
    """Fully refunded (a released authorization shows this too)."""
    amount: int
    amount_captured: int
    amount_refunded: int
    currency: str
    payment_intent: str
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def succeeded(self) -> bool:
        """Authorized (``captured`` says whether the money was taken too)."""
        return self.status == "succeeded"


@dataclass(frozen=True)
class StripePayment:
    """A PaymentIntent."""

    id: str
    status: str
    amount: int
    amount_received: int
    amount_capturable: int
    currency: str
    customer: str
    charge_id: str
    """The latest charge."""
    order_number: str
    """Our metadata: the Znode order it pays."""
    integration: str
    """Our metadata: the integration that created it (empty on older payments)."""
    decline_code: str = ""
    failure_code: str = ""
    failure_message: str = ""
    charge: StripeCharge | None = None
    """The latest charge, where it was expanded."""
    client_secret: str = field(default="", repr=False)
    """For the customer's browser only; never stored in a step's output."""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def received(self) -> int:
        """What Stripe has received: ``amount_received``, or what the expanded charge
        says was captured (emulators that leave ``amount_received`` at 0, reference
        localstripe.md)."""
        charge = self.charge
        if self.amount_received or charge is None:
            return self.amount_received
        if charge.amount_captured:
            return charge.amount_captured
        return charge.amount if charge.captured and charge.paid else 0


@dataclass(frozen=True)
class CheckoutPage:
    """A Checkout Session: Stripe's hosted payment page."""

    id: str
    status: str
    """open, complete or expired."""
    url: str
    payment_intent: str
    """Made by Stripe once the customer pays (empty before)."""
    amount_total: int
    expires_at: int
    order_number: str
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_open(self) -> bool:
        """The customer can still pay on it."""
        return self.status == "open"

    @property
    def is_expired(self) -> bool:
        return self.status == "expired"

    @property
    def is_complete(self) -> bool:
        """The customer paid (or is paying) on it."""
        return self.status == "complete"


@dataclass(frozen=True)
class StripeCustomer:
    id: str
    email: str
    znode_user_id: str
    """Our metadata: the Znode user it was made for (empty: none named)."""
    default_payment_method: str
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


def is_charge_id(value: str) -> bool:
    """A Stripe charge (``ch_``, or ``py_`` for other payment methods' charges)."""
    return value.startswith(("ch_", "py_"))


def is_payment_intent_id(value: str | None) -> bool:
    return bool(value) and value.startswith("pi_")


def _id(value: Any) -> str:
    """An expandable field: either an id string or an expanded object."""
    if isinstance(value, Mapping):
        return str(value.get("id") or "")
    return str(value or "")


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def charge_from_wire(raw: Mapping[str, Any]) -> StripeCharge:
    return StripeCharge(
        id=_id(raw.get("id")),
        status=_text(raw.get("status")),
        paid=bool(raw.get("paid")),
        captured=bool(raw.get("captured")),
        refunded=bool(raw.get("refunded")),
        amount=_int(raw.get("amount")),
        amount_captured=_int(raw.get("amount_captured")),
        amount_refunded=_int(raw.get("amount_refunded")),
        currency=_text(raw.get("currency")),
        payment_intent=_id(raw.get("payment_intent")),
        raw=raw,
    )


def payment_from_wire(raw: Mapping[str, Any]) -> StripePayment:
    metadata = _metadata(raw)
    error = raw.get("last_payment_error")
    error = error if isinstance(error, Mapping) else {}
    latest = raw.get("latest_charge")
    return StripePayment(
        id=_id(raw.get("id")),
        status=_text(raw.get("status")),
        amount=_int(raw.get("amount")),
        amount_received=_int(raw.get("amount_received")),
        amount_capturable=_int(raw.get("amount_capturable")),
        currency=_text(raw.get("currency")),
        customer=_id(raw.get("customer")),
        charge_id=_id(latest),
        order_number=_text(metadata.get(METADATA_ORDER_NUMBER)),
        integration=_text(metadata.get(METADATA_INTEGRATION)),
        decline_code=_text(error.get("decline_code")),
        failure_code=_text(error.get("code")),
        failure_message=_text(error.get("message")),
        charge=charge_from_wire(latest) if isinstance(latest, Mapping) else None,
        client_secret=_text(raw.get("client_secret")),
        raw=raw,
    )


def page_from_wire(raw: Mapping[str, Any]) -> CheckoutPage:
    return CheckoutPage(
        id=_id(raw.get("id")),
        status=_text(raw.get("status")),
        url=_text(raw.get("url")),
        payment_intent=_id(raw.get("payment_intent")),
        amount_total=_int(raw.get("amount_total")),
        expires_at=_int(raw.get("expires_at")),
        order_number=_text(_metadata(raw).get(METADATA_ORDER_NUMBER)),
        raw=raw,
    )


def customer_from_wire(raw: Mapping[str, Any]) -> StripeCustomer:
    invoice = raw.get("invoice_settings")
    invoice = invoice if isinstance(invoice, Mapping) else {}
    method = _id(invoice.get("default_payment_method")) or _id(raw.get("default_source"))
    return StripeCustomer(
        id=_id(raw.get("id")),
        email=_text(raw.get("email")),
        znode_user_id=_text(_metadata(raw).get(METADATA_ZNODE_USER)),
        default_payment_method=method,
        raw=raw,
    )


# --- requests -----------------------------------------------------------------------------
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
NAME_MAX = 256
PHONE_MAX = 20
EMAIL_MAX = 512


def stripe_metadata(values: Mapping[str, object]) -> dict[str, str]:
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


def order_metadata(
    *, order_number: str, znode_order_id: int | None, znode_user_id: int | None, integration: str
) -> dict[str, str]:
    """What every payment object we make carries, so its events find their order."""
    return stripe_metadata(
        {
            METADATA_ORDER_NUMBER: order_number,
            "znode_order_id": znode_order_id,
            METADATA_ZNODE_USER: znode_user_id,
            METADATA_INTEGRATION: integration,
        }
    )


def _capture_method(manual_capture: bool) -> str:
    return "manual" if manual_capture else "automatic"


def payment_intent_params(
    *,
    amount_minor: int,
    currency: str,
    customer: str,
    metadata: dict[str, str],
    manual_capture: bool,
    description: str = "",
    payment_method: str = "",
) -> dict[str, Any]:
    """A PaymentIntent; with ``payment_method`` it is confirmed off-session (a saved
    card charged without the customer present)."""
    params: dict[str, Any] = {
        "amount": amount_minor,
        "currency": currency,
        "customer": customer,
        "metadata": metadata,
        "capture_method": _capture_method(manual_capture),
    }
    if description:
        params["description"] = description
    if payment_method:
        params.update(payment_method=payment_method, confirm=True, off_session=True)
    return params


def checkout_session_params(
    *,
    amount_minor: int,
    currency: str,
    title: str,
    reference: str,
    metadata: dict[str, str],
    manual_capture: bool,
    success_url: str,
    cancel_url: str = "",
    description: str = "",
    customer: str = "",
    customer_email: str = "",
) -> dict[str, Any]:
    """A hosted payment page for one amount: one line titled ``title``; its
    PaymentIntent carries ``metadata`` too."""
    intent_data: dict[str, Any] = {
        "metadata": metadata,
        "capture_method": _capture_method(manual_capture),
    }
    if description:
        intent_data["description"] = description
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": currency,
                    "unit_amount": amount_minor,
                    "product_data": {"name": title},
                },
                "quantity": 1,
            }
        ],
        "client_reference_id": reference,
        "metadata": metadata,
        "payment_intent_data": intent_data,
        "success_url": success_url,
    }
    if cancel_url:
        params["cancel_url"] = cancel_url
    if customer:
        params["customer"] = customer
    elif customer_email:
        params["customer_email"] = customer_email
    return params


def customer_search_query(znode_user_id: int) -> str:
    """Stripe's search query for the customers made for a Znode user."""
    return f"metadata['{METADATA_ZNODE_USER}']:'{int(znode_user_id)}'"


def customer_create_params(*, email: str, znode_user_id: int) -> dict[str, Any]:
    """Only what is the same for every order of the user, so two concurrent first
    orders send identical requests under the same idempotency key."""
    return {"email": email[:EMAIL_MAX], "metadata": {METADATA_ZNODE_USER: str(znode_user_id)}}


def address_params(address: PostalAddress) -> dict[str, str]:
    """Stripe's address object; empty parts left out."""
    result = {
        "line1": address.line1,
        "line2": address.line2,
        "city": address.city,
        "state": address.state,
        "postal_code": address.postal_code,
        "country": address.country,
    }
    return {k: v for k, v in result.items() if v}


def customer_details_params(*, name: str, phone: str, address: PostalAddress) -> dict[str, Any]:
    """Name, phone and billing address, within Stripe's lengths; empty: nothing to send."""
    details: dict[str, Any] = {}
    if name:
        details["name"] = name[:NAME_MAX]
    if phone:
        details["phone"] = phone[:PHONE_MAX]
    if located := address_params(address):
        details["address"] = located
    return details


CANCEL_PARAMS = {"cancellation_reason": "requested_by_customer"}


def capture_params(amount_minor: int) -> dict[str, int]:
    """Capture exactly ``amount_minor`` of a PaymentIntent's authorization."""
    return {"amount_to_capture": amount_minor}


def charge_capture_params(amount_minor: int) -> dict[str, int]:
    """Capture exactly ``amount_minor`` of a charge (Charges API)."""
    return {"amount": amount_minor}


def amount_params(amount_minor: int) -> dict[str, int]:
    return {"amount": amount_minor}


def release_charge_params(charge_id: str) -> dict[str, str]:
    """An uncaptured charge is released by refunding it."""
    return {"charge": charge_id}


@dataclass(frozen=True)
class StripeRefund:
    id: str
    status: str
    """pending, requires_action, succeeded, failed or canceled (A3)."""
    amount: int
    currency: str
    charge: str
    payment_intent: str
    created: int
    """Unix time Stripe made it."""
    reason: str = ""
    failure_reason: str = ""
    order_number: str = ""
    """Our metadata: the Znode order it refunds (empty: made outside the platform)."""
    integration: str = ""
    """Our metadata: the integration that made it."""
    return_number: str = ""
    """Our metadata: the Znode return it pays back."""
    refund_key: str = ""
    """Our metadata: the idempotency key the platform made it with."""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def money_back(self) -> bool:
        """The money went (or is going) back: neither failed nor canceled."""
        return self.status not in ("failed", "canceled")


def refund_from_wire(raw: Mapping[str, Any]) -> StripeRefund:
    metadata = _metadata(raw)
    return StripeRefund(
        id=_id(raw.get("id")),
        status=_text(raw.get("status")),
        amount=_int(raw.get("amount")),
        currency=_text(raw.get("currency")),
        charge=_id(raw.get("charge")),
        payment_intent=_id(raw.get("payment_intent")),
        created=_int(raw.get("created")),
        reason=_text(raw.get("reason")),
        failure_reason=_text(raw.get("failure_reason")),
        order_number=_text(metadata.get(METADATA_ORDER_NUMBER)),
        integration=_text(metadata.get(METADATA_INTEGRATION)),
        return_number=_text(metadata.get(METADATA_RETURN_NUMBER)),
        refund_key=_text(metadata.get(METADATA_REFUND_KEY)),
        raw=raw,
    )


@dataclass(frozen=True)
class DisputeMovement:
    """One balance transaction of a dispute: the withdrawal (negative amount, with the
    dispute fee) or a reinstatement (positive)."""

    id: str
    amount: int
    fee: int
    currency: str
    reporting_category: str
    created: int = 0
    """Unix time of the movement."""


@dataclass(frozen=True)
class StripeDispute:
    id: str
    status: str
    """warning_needs_response, warning_under_review, warning_closed, needs_response,
    under_review, won, lost or prevented (A3)."""
    amount: int
    currency: str
    charge: str
    payment_intent: str
    reason: str
    evidence_due_by: int
    """Unix time; 0 when Stripe gives none."""
    created: int
    movements: tuple[DisputeMovement, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def closed(self) -> bool:
        return self.status in ("won", "lost", "warning_closed", "prevented")


def _movement(raw: Mapping[str, Any]) -> DisputeMovement:
    return DisputeMovement(
        id=_id(raw.get("id")),
        amount=_int(raw.get("amount")),
        fee=_int(raw.get("fee")),
        currency=_text(raw.get("currency")),
        reporting_category=_text(raw.get("reporting_category")),
        created=_int(raw.get("created")),
    )


def dispute_from_wire(raw: Mapping[str, Any]) -> StripeDispute:
    details = raw.get("evidence_details")
    details = details if isinstance(details, Mapping) else {}
    txns = raw.get("balance_transactions")
    return StripeDispute(
        id=_id(raw.get("id")),
        status=_text(raw.get("status")),
        amount=_int(raw.get("amount")),
        currency=_text(raw.get("currency")),
        charge=_id(raw.get("charge")),
        payment_intent=_id(raw.get("payment_intent")),
        reason=_text(raw.get("reason")),
        evidence_due_by=_int(details.get("due_by")),
        created=_int(raw.get("created")),
        movements=tuple(_movement(t) for t in txns if isinstance(t, Mapping) and t.get("id"))
        if isinstance(txns, list)
        else (),
        raw=raw,
    )


def refund_params(
    *,
    payment_intent: str = "",
    charge: str = "",
    metadata: dict[str, str],
    amount_minor: int | None = None,
) -> dict[str, Any]:
    """A refund by PaymentIntent where there is one, else by charge: of
    ``amount_minor``, or (None) of everything the payment still holds (Stripe refunds
    the rest)."""
    params: dict[str, Any] = {"metadata": metadata, "reason": "requested_by_customer"}
    if amount_minor is not None:
        params["amount"] = int(amount_minor)
    if payment_intent:
        params["payment_intent"] = payment_intent
    else:
        params["charge"] = charge
    return params


# What an event's object is, by its ``object`` field: the name mappings read it under.
_EVENT_FACTS = {
    "payment_intent": ("payment", payment_from_wire),
    "charge": ("charge", charge_from_wire),
    "checkout.session": ("page", page_from_wire),
    "customer": ("customer", customer_from_wire),
    "refund": ("refund", refund_from_wire),
    "dispute": ("dispute", dispute_from_wire),
}


def event_facts(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The event's object as a fact, under ``payment``, ``charge``, ``page`` or
    ``customer`` (``payment.order_number``, ``payment.decline_code``...). Events are
    hints: actions re-read the object before money moves."""
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(obj, Mapping):
        return {}
    known = _EVENT_FACTS.get(str(obj.get("object") or ""))
    if known is None:
        return {}
    name, reader = known
    return {name: fact_json(reader(obj))}
