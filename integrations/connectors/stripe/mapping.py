"""Stripe wire ⇄ facts: the objects the platform reads (a PaymentIntent, a charge, a
Checkout Session, a customer) as frozen dataclasses that keep ``raw``, and the request
parameters it sends, built from business values. Pure functions: no network access.

Amounts are Stripe's integers in minor units, as Stripe sends them; currencies are as
Stripe writes them (lower case). Converting to and from major units is the currency
table's business (``payments/money.py``), not this module's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from integrations.connectors.base import ChangeFingerprint
from integrations.connectors.stripe.constants import (
    CUSTOMER_CREATED,
    CUSTOMER_UPDATED,
    METADATA_INTEGRATION,
    METADATA_ORDER_NUMBER,
    METADATA_REFUND_KEY,
    METADATA_RETURN_NUMBER,
    METADATA_ZNODE_USER,
)
from integrations.kernel.countries import country_alpha2, is_country_code, postal_code, state_code
from integrations.kernel.facts import CustomerProfile, PostalAddress, fact_json, profile_values


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
    created: int = 0
    """When it was created (Unix seconds)."""

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
    """``invoice_settings.default_payment_method`` (else the legacy ``default_source``)."""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # Added after ``raw`` so that positional construction of the fields above still works.
    name: str = ""
    phone: str = ""
    address: PostalAddress = field(default_factory=PostalAddress)
    """The billing address (``address``); Stripe keeps no name or phone in it."""
    shipping: PostalAddress = field(default_factory=PostalAddress)
    """``shipping.address`` with ``shipping.name`` and ``shipping.phone``."""
    deleted: bool = False
    integration: str = ""
    """Our metadata: the integration (store) that made it, beside ``znode_user_id``:
    two stores on one Stripe account each have their own user 42."""
    """A deleted customer's stub (``{"id", "object", "deleted": true}``)."""

    @property
    def profile(self) -> CustomerProfile:
        """The customer as the two-way sync compares it with the Znode user."""
        return CustomerProfile(
            email=self.email,
            name=self.name,
            phone=self.phone,
            billing=self.address,
            shipping=self.shipping,
        )


@dataclass(frozen=True)
class StripeCard:
    """A PaymentMethod a customer can pay with again (a saved card)."""

    id: str
    """``pm_…``"""
    customer: str
    """The customer it is attached to ("" when detached; the fact of a
    ``payment_method.detached`` event names the customer it left)."""
    brand: str
    """``card.brand`` ("" for a payment method that is no card)."""
    last4: str
    exp_month: int
    exp_year: int
    type: str
    """The payment method's type: ``card``, ``sepa_debit``…"""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


def is_charge_id(value: str) -> bool:
    """A Stripe charge (``ch_``, or ``py_`` for other payment methods' charges)."""
    return value.startswith(("ch_", "py_"))


def is_payment_intent_id(value: str | None) -> bool:
    return bool(value) and value.startswith("pi_")


def _is_mapping(value: Any) -> bool:
    """A JSON object: a dict (what the wire decodes to, checked first: a payout's list
    asks this of every field of 50,000 rows) or any other Mapping."""
    return type(value) is dict or isinstance(value, Mapping)


def _id(value: Any) -> str:
    """An expandable field: either an id string or an expanded object."""
    if _is_mapping(value):
        return str(value.get("id") or "")
    return str(value or "")


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(obj.get("metadata"))


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
    error = error if _is_mapping(error) else {}
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
        charge=charge_from_wire(latest) if _is_mapping(latest) else None,
        client_secret=_text(raw.get("client_secret")),
        raw=raw,
        created=_int(raw.get("created")),
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


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if _is_mapping(value) else {}


def _address(raw: Any, *, name: Any = None, phone: Any = None) -> PostalAddress:
    """Stripe's address object (null parts, or a null address, read as empty)."""
    parts = _mapping(raw)
    return PostalAddress(
        name=_text(name),
        line1=_text(parts.get("line1")),
        line2=_text(parts.get("line2")),
        city=_text(parts.get("city")),
        state=_text(parts.get("state")),
        postal_code=_text(parts.get("postal_code")),
        country=_text(parts.get("country")),
        phone=_text(phone),
    )


def customer_from_wire(raw: Mapping[str, Any]) -> StripeCustomer:
    invoice = _mapping(raw.get("invoice_settings"))
    method = _id(invoice.get("default_payment_method")) or _id(raw.get("default_source"))
    shipping = _mapping(raw.get("shipping"))
    return StripeCustomer(
        id=_id(raw.get("id")),
        email=_text(raw.get("email")),
        znode_user_id=_text(_metadata(raw).get(METADATA_ZNODE_USER)),
        integration=_text(_metadata(raw).get(METADATA_INTEGRATION)),
        default_payment_method=method,
        raw=raw,
        name=_text(raw.get("name")),
        phone=_text(raw.get("phone")),
        address=_address(raw.get("address")),
        shipping=_address(
            shipping.get("address"), name=shipping.get("name"), phone=shipping.get("phone")
        ),
        deleted=raw.get("deleted") is True,
    )


def card_from_wire(raw: Mapping[str, Any]) -> StripeCard:
    card = _mapping(raw.get("card"))
    return StripeCard(
        id=_id(raw.get("id")),
        customer=_id(raw.get("customer")),
        brand=_text(card.get("brand")),
        last4=_text(card.get("last4")),
        exp_month=_int(card.get("exp_month")),
        exp_year=_int(card.get("exp_year")),
        type=_text(raw.get("type")),
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
# The customer's own fields (reference stripe.md A6 for the email; Stripe's OpenAPI
# spec, stripe/openapi openapi/spec3.yaml, POST /v1/customers/{customer}: name
# maxLength 256, phone 20, email 512).
NAME_MAX = 256
PHONE_MAX = 20
EMAIL_MAX = 512
ADDRESS_PART_MAX = 5000
"""Each part of the billing and the shipping address (line1, line2, city, state,
postal_code, country). The reference (A8) and stripe-python 16.1.0's params are silent;
Stripe's OpenAPI spec gives maxLength 5000 for every part, as the sandbox does
(``sandbox/stripe/params.py``)."""
SHIPPING_NAME_MAX = 256
"""``shipping.name``. The reference and stripe-python are silent (the SDK calls it the
"Customer name"); the OpenAPI spec and the sandbox allow 5000. The stricter reading: a
shipping name is a customer's name, held to the customer's ``name`` limit."""
SHIPPING_PHONE_MAX = 20
"""``shipping.phone``, by the same stricter reading: the customer's ``phone`` limit
(the OpenAPI spec and the sandbox allow 5000)."""


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


def customer_metadata(*, znode_user_id: int, integration: str) -> dict[str, str]:
    """Our metadata on a customer: the Znode user and the integration (store) it is of."""
    return {METADATA_ZNODE_USER: str(int(znode_user_id)), METADATA_INTEGRATION: integration}


def customer_create_params(*, email: str, znode_user_id: int, integration: str) -> dict[str, Any]:
    """Only what is the same for every order of the user, so two concurrent first
    orders send identical requests under the same idempotency key."""
    return {
        "email": email[:EMAIL_MAX],
        "metadata": customer_metadata(znode_user_id=znode_user_id, integration=integration),
    }


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


# --- the customer's profile, written by the two-way sync -------------------------------------
_ADDRESS_PARTS = ("line1", "line2", "city", "state", "postal_code", "country")


def _located(address: PostalAddress) -> bool:
    """The address has a part Stripe keeps in an address object (not only a name or
    a phone)."""
    return any(getattr(address, part).strip() for part in _ADDRESS_PARTS)


def _country(value: str) -> str:
    return value.strip().upper()


def _written_address(address: PostalAddress, *, name: str = "", phone: str = "") -> PostalAddress:
    """What Stripe keeps of an address: its six parts (the country code in upper case,
    the state as its ISO 3166-2 code where the country's subdivisions name it, the
    postal code in upper case), with the ``name`` and ``phone`` given; nothing when it
    has no part."""
    if not _located(address):
        return PostalAddress()
    parts = {part: getattr(address, part) for part in _ADDRESS_PARTS}
    country = _country(address.country)
    parts.update(
        country=country,
        state=state_code(country, address.state),
        postal_code=postal_code(address.postal_code),
    )
    return PostalAddress(**parts, name=name, phone=phone)


def _address_param(address: PostalAddress) -> dict[str, str] | str:
    """Every part of Stripe's address object, an empty one as "" (which unsets it,
    whether Stripe merges the object or replaces it); "" for no address at all."""
    if not _located(address):
        return ""
    return {part: getattr(address, part) for part in _ADDRESS_PARTS}


def profile_as_written(profile: CustomerProfile) -> CustomerProfile:
    """The profile as the Stripe customer shows it after
    :func:`customer_profile_params`: the billing address without name and phone (Stripe's
    ``address`` has neither: the customer's ``name`` and ``phone`` stand for them), the
    shipping name defaulted to the profile's name, no shipping without a shipping
    address, country codes in upper case."""
    shipping = profile.shipping
    return replace(
        profile,
        billing=_written_address(profile.billing),
        shipping=_written_address(
            shipping, name=shipping.name or profile.name, phone=shipping.phone
        ),
    )


# Profile fields (``profile_values`` names) → the customer's parameters.
_PROFILE_PARAMS = {
    "email": "email",
    "name": "name",
    "phone": "phone",
    "billing_address": "address",
    "shipping_address": "shipping",
}


def customer_profile_params(
    profile: CustomerProfile,
    *,
    znode_user_id: int | None = None,
    integration: str = "",
    fields: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The customer update that makes the Stripe customer show exactly ``profile``
    (as :func:`profile_as_written` describes it); with ``fields`` (profile field
    names: ``email``, ``name``, ``phone``, ``billing_address``, ``shipping_address``)
    only those, so a field changed meanwhile in the Dashboard is not written over.

    Every field is sent: an empty one as "" (stripe-python form-encodes "" as
    ``name=``, which unsets the field; it leaves None out, which would keep the old
    value). No billing address unsets ``address``; no shipping address unsets
    ``shipping``. The shipping name Stripe requires is the shipping address's name, else
    the profile's. ``metadata[znode_user_id]`` (and ``integration``) when given (other
    keys are kept).
    Nothing is truncated: check :func:`profile_problems` first."""
    written = profile_as_written(profile)
    shipping: dict[str, Any] | str = ""
    if _located(written.shipping):
        shipping = {
            "name": written.shipping.name,
            "phone": written.shipping.phone,
            "address": _address_param(written.shipping),
        }
    params: dict[str, Any] = {
        "email": written.email,
        "name": written.name,
        "phone": written.phone,
        "address": _address_param(written.billing),
        "shipping": shipping,
    }
    if fields is not None:
        wanted = {_PROFILE_PARAMS[f] for f in fields if f in _PROFILE_PARAMS}
        params = {k: v for k, v in params.items() if k in wanted}
    if znode_user_id is not None:
        params["metadata"] = {METADATA_ZNODE_USER: str(int(znode_user_id))}
        if integration:
            params["metadata"][METADATA_INTEGRATION] = integration
    return params


def _too_long(label: str, value: str, limit: int) -> list[str]:
    if len(value) <= limit:
        return []
    return [f"{label} is {len(value)} characters; Stripe accepts at most {limit}"]


def _address_problems(label: str, address: PostalAddress) -> list[str]:
    problems: list[str] = []
    for part in _ADDRESS_PARTS:
        problems += _too_long(f"{label} {part}", getattr(address, part), ADDRESS_PART_MAX)
    country = _country(address.country)
    if country and not is_country_code(country):
        known = country_alpha2(address.country)
        hint = f" (that is {known})" if known else ""
        problems.append(
            f"{label} country {address.country!r} is not an ISO 3166-1 alpha-2 code{hint}"
        )
    return problems


def _email_problems(email: str) -> list[str]:
    if not email:
        return []  # unsets the email
    if len(email) > EMAIL_MAX:
        return _too_long("email", email, EMAIL_MAX)
    try:
        validate_email(email)
    except ValidationError:
        return [f"email {email!r} is not a valid email address"]
    return []


def profile_problems(profile: CustomerProfile) -> list[str]:
    """Why ``profile`` cannot be written to Stripe as it is (``[]``: it can), one
    readable reason per problem, each naming the field (and the limit): an invalid
    email, a country that is no ISO 3166-1 alpha-2 code, a part longer than Stripe
    accepts, a shipping address without a name Stripe requires, or a shipping name or
    phone without a shipping address to keep them in."""
    problems = _email_problems(profile.email)
    problems += _too_long("name", profile.name, NAME_MAX)
    problems += _too_long("phone", profile.phone, PHONE_MAX)
    problems += _address_problems("billing address", profile.billing)
    shipping = profile.shipping
    if _located(shipping):
        problems += _too_long("shipping name", shipping.name, SHIPPING_NAME_MAX)
        problems += _too_long("shipping phone", shipping.phone, SHIPPING_PHONE_MAX)
        problems += _address_problems("shipping address", shipping)
        if not (shipping.name or profile.name):
            problems.append(
                "shipping address has no name and neither has the profile; Stripe "
                "requires a name with a shipping address"
            )
    elif shipping.name or shipping.phone:
        problems.append(
            "shipping name or phone is set without a shipping address; Stripe keeps "
            "them only with one"
        )
    return problems


# --- what a customer event changes, for the inbox's echo check ---------------------------------
def customer_change_key(customer_id: str) -> str:
    """The customer's name in the inbox's change gate (``RoutedChange.object_key``)."""
    return f"customer:{customer_id}"


def customer_state_fingerprint(profile: CustomerProfile, *, default_payment_method: str) -> str:
    """sha256 hex of what the customer flows act on: the profile (normalized:
    :func:`~integrations.kernel.facts.profile_values`) and the default payment method."""
    values = {"profile": profile_values(profile), "default_payment_method": default_payment_method}
    encoded = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()


def customer_fingerprint(raw: Mapping[str, Any]) -> str:
    """The fingerprint of a customer as Stripe sends it: its profile and its default
    payment method (a new default card is a change that matters; a description or
    metadata is not). Pure; odd values are read as what they can be."""
    customer = customer_from_wire(_mapping(raw))
    return customer_state_fingerprint(
        customer.profile, default_payment_method=customer.default_payment_method
    )


def expected_customer_fingerprint(profile: CustomerProfile, *, default_payment_method: str) -> str:
    """The fingerprint the customer will carry once ``customer_profile_params(profile)``
    is written (its default payment method unchanged): what to hand the inbox's
    ``change_expect`` before the write."""
    return customer_state_fingerprint(
        profile_as_written(profile), default_payment_method=default_payment_method
    )


def customer_change_fingerprint(
    event_type: str, payload: Mapping[str, Any]
) -> ChangeFingerprint | None:
    """The connector's ``change_fingerprint`` for ``customer.created`` and
    ``customer.updated``: ``customer:<id>`` and :func:`customer_fingerprint` of the
    event's object. None for every other event (and an object without an id)."""
    if event_type not in (CUSTOMER_CREATED, CUSTOMER_UPDATED):
        return None
    obj = _mapping(_mapping(payload.get("data")).get("object"))
    customer_id = obj.get("id")
    if not isinstance(customer_id, str) or not customer_id:
        return None
    creates = event_type == CUSTOMER_CREATED
    return ChangeFingerprint(
        object_key=customer_change_key(customer_id),
        fingerprint=customer_fingerprint(obj),
        creates=creates,
        update_event_type=CUSTOMER_UPDATED if creates else "",
    )


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
    details = details if _is_mapping(details) else {}
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
        movements=tuple(_movement(t) for t in txns if _is_mapping(t) and t.get("id"))
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


# --- reconciliation: payouts and balance transactions (reference stripe.md A7) -------------
PAYOUT_NOT_PAID_OUT = frozenset({"failed", "canceled"})
"""Payout statuses of money that never reached the bank."""

BALANCE_TRANSACTION_EXPAND: tuple[str, ...] = ("data.source",)
"""What a list of balance transactions expands: the source. Its PaymentIntent and its
charge (a refund's or a dispute's), whose metadata names the order, are to be expanded
too (``data.source.payment_intent``, ``data.source.charge``: 3 levels, within Stripe's
4; Stripe expands a path where an item has it, a payout's own row has no
``payment_intent``), so that matching reads no object line by line; the sandbox still
refuses a path an item of the list lacks, so until it expands them as Stripe does, a
line that neither our rows nor its source's metadata place is read again (matching's
``_remote_reference``)."""


def payout_schedule_from_wire(raw: Mapping[str, Any]) -> str:
    """The account's payout schedule (``GET /v1/account``: ``settings.payouts.schedule
    .interval``): ``manual``, or ``daily``, ``weekly``, ``monthly`` (automatic payouts);
    "" when the account does not say."""
    account = raw.get("settings")
    payouts = account.get("payouts") if isinstance(account, Mapping) else None
    schedule = payouts.get("schedule") if isinstance(payouts, Mapping) else None
    interval = schedule.get("interval") if isinstance(schedule, Mapping) else None
    return interval if isinstance(interval, str) else ""


@dataclass(frozen=True)
class StripePayout:
    id: str
    """``po_…``"""
    amount: int
    """Minor units paid to the bank (positive)."""
    currency: str
    status: str
    """pending, in_transit, paid, failed or canceled."""
    automatic: bool
    """Made by Stripe's payout schedule: only these can be itemised with
    ``GET /v1/balance_transactions?payout=`` (A7)."""
    arrival_date: int
    """Unix time the money is expected at the bank."""
    created: int
    balance_transaction: str = ""
    """The payout's own balance transaction (``txn_…``): the balance moving out."""
    reconciliation_status: str = ""
    """not_applicable, in_progress or completed: ``completed`` once Stripe has tied every
    transaction to it (A7)."""
    failure_code: str = ""
    """Why a failed payout failed (``account_closed``, ``no_account``...)."""
    failure_message: str = ""
    failure_balance_transaction: str = ""
    """The balance transaction (``txn_…``, a ``payout_failure`` or ``payout_cancel`` of
    reporting category ``payout_reversal``) that returned a failed or canceled payout's
    money to the balance."""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def paid_out(self) -> bool:
        """False once Stripe says it failed or was canceled: nothing reached the bank
        (a payout can fail after ``payout.paid``)."""
        return self.status not in PAYOUT_NOT_PAID_OUT

    @property
    def settled(self) -> bool:
        """Stripe is done adding transactions to it: reconciliation completed, or paid
        where Stripe reports no reconciliation. A payout can be paid while its
        reconciliation is still in progress (``payout.paid`` may come before
        ``payout.reconciliation_completed``): not settled yet."""
        if self.reconciliation_status == "completed":
            return True
        return self.status == "paid" and self.reconciliation_status in ("", "not_applicable")


def payout_from_wire(raw: Mapping[str, Any]) -> StripePayout:
    return StripePayout(
        id=_id(raw.get("id")),
        amount=_int(raw.get("amount")),
        currency=_text(raw.get("currency")),
        status=_text(raw.get("status")),
        automatic=raw.get("automatic") is True,
        arrival_date=_int(raw.get("arrival_date")),
        created=_int(raw.get("created")),
        balance_transaction=_id(raw.get("balance_transaction")),
        reconciliation_status=_text(raw.get("reconciliation_status")),
        failure_code=_text(raw.get("failure_code")),
        failure_message=_text(raw.get("failure_message")),
        failure_balance_transaction=_id(raw.get("failure_balance_transaction")),
        raw=raw,
    )


@dataclass(frozen=True)
class OrderReference:
    """Our metadata on a Stripe object (a PaymentIntent, charge, refund or dispute):
    the Znode order whose money it is, and the integration that made it."""

    order_number: str = ""
    integration: str = ""

    @property
    def named(self) -> bool:
        return bool(self.order_number or self.integration)


def order_reference_from_wire(raw: Mapping[str, Any]) -> OrderReference:
    metadata = _metadata(_mapping(raw))
    return OrderReference(
        order_number=_text(metadata.get(METADATA_ORDER_NUMBER)),
        integration=_text(metadata.get(METADATA_INTEGRATION)),
    )


FeeDetail = tuple[str, int, str]
"""One entry of ``fee_details``: (type, amount in minor units, currency)."""

# A source that was not expanded is known by its id's prefix.
_SOURCE_PREFIXES = (
    ("ch_", "charge"),
    ("py_", "charge"),
    ("re_", "refund"),
    ("pyr_", "refund"),
    ("dp_", "dispute"),
    ("du_", "dispute"),
    ("po_", "payout"),
    ("tr_", "transfer"),
    ("tu_", "topup"),
    ("ia_", "issuing.authorization"),
)


@dataclass(frozen=True)
class StripeBalanceTransaction:
    """One movement of the balance (A7), with what matching needs of its source."""

    id: str
    """``txn_…``"""
    type: str
    """charge, payment, refund, adjustment, payout, stripe_fee… (about 50 values)."""
    reporting_category: str
    """charge, refund, dispute, fee, payout, other_adjustment…: better for accounting."""
    amount: int
    """Gross, signed, minor units of ``currency`` (already converted: see
    ``exchange_rate``)."""
    fee: int
    """Positive when charged."""
    net: int
    """``amount - fee``."""
    currency: str
    """The settlement currency (lower case, as Stripe writes it)."""
    exchange_rate: Decimal | None
    """Set when the presentment currency differed; exact as Stripe wrote it."""
    fee_details: tuple[FeeDetail, ...]
    source_id: str
    source_type: str
    """The source's ``object`` (charge, refund, dispute, payout…), else guessed from
    its id's prefix; "" when unknown."""
    available_on: int
    created: int
    description: str = ""
    status: str = ""
    """pending or available."""
    charge_id: str = ""
    """The charge the money belongs to: the source itself, or the refund's or the
    dispute's charge."""
    payment_intent_id: str = ""
    """The PaymentIntent of the source (charge, refund or dispute), where it names one."""
    reference: OrderReference = field(default_factory=OrderReference)
    """Our metadata on the source: its expanded PaymentIntent's, else the source's own,
    else its expanded charge's (a refund's or a dispute's)."""
    reference_read: bool = False
    """Every object whose metadata may name the order was expanded in the list (the
    source, its PaymentIntent and its charge, where it names them): ``reference`` is
    all Stripe holds, and nothing needs reading again."""
    # No ``raw``: a payout's batch of 500 would keep 500 expanded sources alive.


def _exchange_rate(value: Any) -> Decimal | None:
    """Stripe writes the rate as a JSON number; read it as the digits written (never
    through binary floating point arithmetic)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        rate = Decimal(str(value))
    except InvalidOperation:
        return None
    return rate if rate.is_finite() else None


def fee_details_from_wire(value: Any) -> tuple[FeeDetail, ...]:
    """Stripe's ``fee_details`` list (as Stripe sends it, or as a balance transaction
    row keeps it): (type, amount, currency) per entry."""
    if not isinstance(value, list):
        return ()
    return tuple(
        (_text(d.get("type")), _int(d.get("amount")), _text(d.get("currency")))
        for d in value
        if _is_mapping(d)
    )


def _source_type(source: Any) -> str:
    if _is_mapping(source):
        return _text(source.get("object"))
    source_id = _text(source)
    return next((kind for prefix, kind in _SOURCE_PREFIXES if source_id.startswith(prefix)), "")


def _expanded(value: Any) -> bool:
    """A link the list expanded, or one naming nothing (a charge without PaymentIntent)."""
    return value is None or value == "" or _is_mapping(value)


_NO_REFERENCE = OrderReference()


def balance_transaction_from_wire(raw: Mapping[str, Any]) -> StripeBalanceTransaction:
    source = raw.get("source")
    source_type = _source_type(source)
    obj = _mapping(source)
    intent = obj.get("payment_intent")
    charge = obj.get("charge") if source_type != "charge" else None
    charge_id = _id(source) if source_type == "charge" else _id(charge)
    reference = _NO_REFERENCE
    for linked in (intent, obj, charge):
        if _is_mapping(linked):
            found = order_reference_from_wire(linked)
            if found.named:
                reference = found
                break
    amount = _int(raw.get("amount"))
    fee = _int(raw.get("fee"))
    net = raw.get("net")
    return StripeBalanceTransaction(
        id=_id(raw.get("id")),
        type=_text(raw.get("type")),
        reporting_category=_text(raw.get("reporting_category")),
        amount=amount,
        fee=fee,
        net=_int(net) if isinstance(net, int) else amount - fee,
        currency=_text(raw.get("currency")),
        exchange_rate=_exchange_rate(raw.get("exchange_rate")),
        fee_details=fee_details_from_wire(raw.get("fee_details")),
        source_id=_id(source),
        source_type=source_type,
        available_on=_int(raw.get("available_on")),
        created=_int(raw.get("created")),
        description=_text(raw.get("description")),
        status=_text(raw.get("status")),
        charge_id=charge_id,
        payment_intent_id=_id(intent),
        reference=reference,
        reference_read=_is_mapping(source) and _expanded(intent) and _expanded(charge),
    )


def charge_reference(raw: Mapping[str, Any]) -> OrderReference:
    """Our metadata on a charge read with ``expand=["payment_intent"]``: the
    PaymentIntent's, else the charge's own."""
    for obj in (_mapping(raw.get("payment_intent")), raw):
        reference = order_reference_from_wire(obj)
        if reference.named:
            return reference
    return OrderReference()


def _card_of_event(obj: Mapping[str, Any], previous: Mapping[str, Any]) -> StripeCard:
    """A payment method event's card. A detached one names no customer any more
    (``customer: null``); the event's ``previous_attributes`` still do, so the fact
    names the customer it left."""
    card = card_from_wire(obj)
    if not card.customer:
        card = replace(card, customer=_id(previous.get("customer")))
    return card


def _object_only(
    reader: Callable[[Mapping[str, Any]], Any],
) -> Callable[[Mapping[str, Any], Mapping[str, Any]], Any]:
    return lambda obj, previous: reader(obj)


# What an event's object is, by its ``object`` field: the name mappings read it under,
# and its reader (of the object and the event's ``previous_attributes``).
_EVENT_FACTS: dict[str, tuple[str, Callable[[Mapping[str, Any], Mapping[str, Any]], Any]]] = {
    "payment_intent": ("payment", _object_only(payment_from_wire)),
    "charge": ("charge", _object_only(charge_from_wire)),
    "checkout.session": ("page", _object_only(page_from_wire)),
    "customer": ("customer", _object_only(customer_from_wire)),
    "refund": ("refund", _object_only(refund_from_wire)),
    "dispute": ("dispute", _object_only(dispute_from_wire)),
    "payment_method": ("card", _card_of_event),
    "payout": ("payout", _object_only(payout_from_wire)),
}


def event_facts(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The event's object as a fact, under ``payment``, ``charge``, ``page``,
    ``customer``, ``refund``, ``dispute``, ``card`` or ``payout`` (``payment.order_number``,
    ``card.customer``...). Events are hints: actions re-read the object before money
    moves."""
    data = _mapping(payload.get("data"))
    obj = data.get("object")
    if not _is_mapping(obj):
        return {}
    known = _EVENT_FACTS.get(str(obj.get("object") or ""))
    if known is None:
        return {}
    name, reader = known
    return {name: fact_json(reader(obj, _mapping(data.get("previous_attributes"))))}
