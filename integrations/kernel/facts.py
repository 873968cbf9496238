"""Fact types more than one connector speaks in.

A fact is a frozen dataclass of business values that a connector's ``mapping.py``
reads out of its wire format (and keeps the ``raw`` payload beside). Domain code reads
facts, never wire paths. Facts that only one system has live in that connector's
``mapping.py``; what two systems exchange (an address from Znode to Stripe) lives here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields, is_dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class PostalAddress:
    """A postal address: ``country`` is ISO 3166-1 alpha-2 (empty when unknown)."""

    name: str = ""
    line1: str = ""
    line2: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = ""
    phone: str = ""

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    @classmethod
    def from_json(cls, value: object) -> PostalAddress:
        """An address handed on as JSON (``fact_json``, or Stripe's address keys)."""
        if not isinstance(value, dict):
            return cls()
        names = {f.name for f in fields(cls)}
        return cls(**{k: str(v) for k, v in value.items() if k in names and v is not None})


@dataclass(frozen=True)
class CustomerProfile:
    """A customer as both systems hold it: what the two-way sync compares and copies.
    Values are as read; :func:`profile_fingerprint` normalizes them."""

    email: str = ""
    name: str = ""
    phone: str = ""
    billing: PostalAddress = field(default_factory=PostalAddress)
    shipping: PostalAddress = field(default_factory=PostalAddress)


def _normal(value: str) -> str:
    return " ".join(str(value or "").split())


def profile_values(profile: CustomerProfile) -> dict[str, Any]:
    """The profile normalized the way both sides must agree on (case of the email and
    the country code, runs of spaces), field by field."""

    def address(a: PostalAddress) -> dict[str, str]:
        values = {f.name: _normal(getattr(a, f.name)) for f in fields(a)}
        values["country"] = values["country"].upper()
        return values

    return {
        "email": _normal(profile.email).lower(),
        "name": _normal(profile.name),
        "phone": _normal(profile.phone),
        "billing_address": address(profile.billing),
        "shipping_address": address(profile.shipping),
    }


def profile_from_values(values: dict[str, Any]) -> CustomerProfile:
    """The profile that :func:`profile_values` normalized into ``values``."""
    return CustomerProfile(
        email=values.get("email") or "",
        name=values.get("name") or "",
        phone=values.get("phone") or "",
        billing=PostalAddress.from_json(values.get("billing_address")),
        shipping=PostalAddress.from_json(values.get("shipping_address")),
    )


def profile_fingerprint(profile: CustomerProfile) -> str:
    """A hash of the normalized profile (64 hex characters): a change that carries the
    fingerprint last synced only echoes that sync."""
    encoded = json.dumps(profile_values(profile), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()


def fact_json(fact: Any) -> dict[str, Any]:
    """A fact as plain JSON for a step's output or the mapping document: without
    ``raw`` (the wire payload stays with the event), Decimals as strings."""
    if not is_dataclass(fact) or isinstance(fact, type):
        raise TypeError(f"{type(fact).__name__} is not a fact")
    return {f.name: _json(getattr(fact, f.name)) for f in fields(fact) if f.name != "raw"}


def _json(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return fact_json(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value
