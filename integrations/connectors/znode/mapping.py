"""Znode wire ⇄ facts (reference znode-api.md §3.3: OrderModel, AddressModel,
OrderLineItemModel). Pure functions: no database or network access."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from integrations.connectors.base import ChangeFingerprint
from integrations.connectors.znode.constants import ORDER_CREATED, ORDER_UPDATED
from integrations.kernel.facts import PostalAddress


# --- facts --------------------------------------------------------------------------------
@dataclass(frozen=True)
class OrderLine:
    """One line of a Znode order (OrderLineItemModel)."""

    id: int | None
    sku: str
    name: str
    quantity: Decimal | None
    price: Decimal | None
    """Unit price."""
    total: Decimal | None


@dataclass(frozen=True)
class PaymentRecord:
    """A row of the order's payment history (``PaymentHistoryList``, §3.3, §9)."""

    reference: str | None
    """``TransactionReference``; None where this Znode build leaves it out of the model
    (then only amount and status tell rows apart)."""
    amount: Decimal | None
    status: str
    """``TransactionStatus``."""


@dataclass(frozen=True)
class PaymentView:
    """What an order shows of its payment, as read at one moment."""

    payment_status: str
    transaction_id: str
    payments: tuple[PaymentRecord, ...] | None = None
    """The payment history; None where it was not read."""


@dataclass(frozen=True)
class ZnodeOrder:
    """A Znode order as the platform acts on it (OrderModel, §3.3)."""

    id: int
    """``OmsOrderId``: the order header."""
    number: str
    user_id: int | None
    email: str
    name: str
    phone: str
    currency: str
    """ISO 4217, upper case."""
    total: Decimal | None
    """``Total`` (there is no ``TotalAmount``); None when Znode sent none."""
    state: str
    """The order state's name, upper case (``omsorderstate`` expand)."""
    payment_status: str
    """The payment state's name as Znode shows it (``omspaymentstate`` expand)."""
    transaction_id: str
    """The gateway's id of the payment (a Stripe charge for Znode's Stripe app)."""
    tracking_number: str
    payment_setting_id: int | None
    billing: PostalAddress
    shipping: PostalAddress
    lines: tuple[OrderLine, ...] = ()
    payments: tuple[PaymentRecord, ...] = ()
    """The payment history as read (every read of an order carries it)."""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def payment_view(self) -> PaymentView:
        return PaymentView(self.payment_status, self.transaction_id, self.payments)


def _int(value: object) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number


def _decimal(value: object) -> Decimal | None:
    """Znode's decimals (the client parses JSON numbers as Decimal; never via float)."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def address_from_wire(raw: Mapping[str, Any] | None) -> PostalAddress:
    """AddressModel → address. On orders ``CountryName`` holds the 2-letter code and
    ``StateName`` the state code (§3.3)."""
    raw = raw if isinstance(raw, Mapping) else {}
    country = _text(raw.get("CountryCode") or raw.get("CountryName")).upper()
    extra = [_text(raw.get("Address2")), _text(raw.get("Address3"))]
    return PostalAddress(
        name=" ".join(x for x in (_text(raw.get("FirstName")), _text(raw.get("LastName"))) if x),
        line1=_text(raw.get("Address1")),
        line2=" ".join(x for x in extra if x),
        city=_text(raw.get("CityName")),
        state=_text(raw.get("StateCode") or raw.get("StateName")),
        postal_code=_text(raw.get("PostalCode")),
        country=country if len(country) == 2 else "",
        phone=_text(raw.get("PhoneNumber")),
    )


def _lines(raw: object) -> tuple[OrderLine, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(
        OrderLine(
            id=_int(row.get("OmsOrderLineItemsId")),
            sku=_text(row.get("Sku")),
            name=_text(row.get("ProductName")),
            quantity=_decimal(row.get("Quantity")),
            price=_decimal(row.get("Price")),
            total=_decimal(row.get("Total")),
        )
        for row in raw
        if isinstance(row, Mapping)
    )


def order_from_wire(raw: Mapping[str, Any]) -> ZnodeOrder:
    """An order read from ``orders/{id}`` (with the state expands), a list row or a
    webhook's payload. Values Znode left out are empty (``None`` for numbers)."""
    billing = address_from_wire(raw.get("BillingAddress"))
    own_name = " ".join(x for x in (_text(raw.get("FirstName")), _text(raw.get("LastName"))) if x)
    return ZnodeOrder(
        id=_int(raw.get("OmsOrderId")) or 0,
        number=_text(raw.get("OrderNumber")),
        user_id=_int(raw.get("UserId")),
        email=_text(raw.get("Email") or raw.get("EmailAddress")),
        name=billing.name or own_name,
        phone=billing.phone or _text(raw.get("PhoneNumber")),
        currency=_text(raw.get("CurrencyCode")).upper(),
        total=_decimal(raw.get("Total")),
        state=_text(raw.get("OrderState")).upper(),
        payment_status=_text(raw.get("PaymentStatus")),
        transaction_id=_text(raw.get("TransactionId")),
        tracking_number=_text(raw.get("TrackingNumber")),
        payment_setting_id=_int(raw.get("PaymentSettingId")),
        billing=billing,
        shipping=address_from_wire(raw.get("ShippingAddress")),
        lines=_lines(raw.get("OrderLineItems")),
        payments=payment_records(raw),
        raw=raw,
    )


def order_event_facts(event_type: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """What an order event names: ``order.id`` and ``order.number`` (the flows re-read
    the rest; events are hints). ``payload`` is what ``webhooks.parse`` or the poller
    stored: ``{"envelope": ..., "object": <order>}``."""
    if not event_type.startswith("order."):
        return {}
    order = payload.get("object")
    order = order if isinstance(order, Mapping) else {}
    envelope = payload.get("envelope")
    envelope = envelope if isinstance(envelope, Mapping) else {}
    order_id = _int(order.get("OmsOrderId")) or _int(envelope.get("EventDataId"))
    number = _text(order.get("OrderNumber") or envelope.get("EventDataCode"))
    return {"order": {"id": order_id, "number": number}}


# --- what an order event changes (the inbox's duplicate and echo check) ----------------
def _order_state(order: Mapping[str, Any]) -> str:
    # List rows carry the state's Description ("Pending Approval"); details with the
    # omsorderstate expand and webhook payloads carry its name ("PENDING APPROVAL").
    # Both agree upper-cased (reference §3.2, §3.3). Only an id: use it, so a payload
    # without names still tells states apart (at worst one extra job, never a lost one).
    name = order.get("OrderState")
    if isinstance(name, str) and name.strip():
        return " ".join(name.split()).upper()
    state_id = order.get("OmsOrderStateId")
    if isinstance(state_id, int | str) and str(state_id).strip() not in ("", "0"):
        return f"#{str(state_id).strip()}"
    return ""


def _amount(value: object) -> str:
    # "42.5", 42.5 and "42.500000" are one amount; a value that is no number is kept
    # as it came rather than failing the whole inbox.
    if value is None or value == "":
        return ""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    if not number.is_finite():
        return str(value)
    return format(number.normalize(), "f")


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def order_change_fingerprint(
    event_type: str, payload: Mapping[str, Any]
) -> ChangeFingerprint | None:
    """The order an ``order.created``/``order.updated`` event is about, and a hash of
    what the order flows act on: the order state, ``Total``, ``CurrencyCode`` and
    ``PaymentSettingId``.

    Left out on purpose, because our own actions write them back to Znode and every
    write bumps the modified date and comes back as an "Order Updated" webhook or a
    polled change: the payment status, payment history, notes, ``ExternalId``,
    ``TransactionId``, the tracking number and the modified dates.

    ``payload`` is what :func:`integrations.connectors.znode.webhooks.parse` returns
    for a Znode 10 webhook and for the poller's event alike
    (``{"envelope": ..., "object": <order>}``), so both give the same fingerprint
    for the same order state.
    """
    if event_type not in (ORDER_CREATED, ORDER_UPDATED):
        return None
    order = payload.get("object")
    order = order if isinstance(order, Mapping) else {}
    envelope = payload.get("envelope")
    envelope = envelope if isinstance(envelope, Mapping) else {}
    try:
        order_id = int(order.get("OmsOrderId") or envelope.get("EventDataId") or 0)
    except (TypeError, ValueError):
        return None
    if order_id <= 0:
        return None
    facts = [
        _order_state(order),
        _amount(order.get("Total")),
        _text(order.get("CurrencyCode")).upper(),
        _text(order.get("PaymentSettingId")),
    ]
    digest = hashlib.sha256(json.dumps(facts, separators=(",", ":")).encode()).hexdigest()
    creates = event_type == ORDER_CREATED
    return ChangeFingerprint(
        object_key=f"order:{order_id}",
        fingerprint=digest,
        creates=creates,
        update_event_type=ORDER_UPDATED if creates else "",
    )


def history_rows(order: Mapping[str, Any]) -> list[dict]:
    """The rows of an order's ``PaymentHistoryList``.

    It is a list model (§3.3, §9): ``{"PaymentHistoryList": [...], paging}``, not a
    bare list; null when the order has none."""
    history = order.get("PaymentHistoryList")
    if isinstance(history, dict):
        history = history.get("PaymentHistoryList")
    if not isinstance(history, list):
        return []
    return [row for row in history if isinstance(row, dict)]


def payment_records(order: Mapping[str, Any]) -> tuple[PaymentRecord, ...]:
    return tuple(
        PaymentRecord(
            reference=_text(row["TransactionReference"]) if "TransactionReference" in row else None,
            amount=_decimal(row.get("Amount")),
            status=_text(row.get("TransactionStatus")),
        )
        for row in history_rows(dict(order))
    )


def payment_records_from_json(rows: object) -> tuple[PaymentRecord, ...]:
    """Records handed on as a step's JSON output (``fact_json``) back as facts."""
    if not isinstance(rows, list):
        return ()
    return tuple(
        PaymentRecord(
            reference=None if row.get("reference") is None else _text(row["reference"]),
            amount=_decimal(row.get("amount")),
            status=_text(row.get("status")),
        )
        for row in rows
        if isinstance(row, Mapping)
    )
