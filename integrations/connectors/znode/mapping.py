"""Znode wire ⇄ facts (reference znode-api.md §3.3: OrderModel, AddressModel,
OrderLineItemModel; §5.1: RMAReturnModel). Pure functions: no database or network
access."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from integrations.connectors.base import ChangeFingerprint
from integrations.connectors.znode.constants import (
    ORDER_CREATED,
    ORDER_UPDATED,
    RETURN_CREATED,
    RETURN_UPDATED,
)
from integrations.kernel.facts import PostalAddress, fact_json


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
    details_id: int | None = None
    """``OmsOrderDetailsId``: notes and history rows hang on it (§3.1, §12)."""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def payment_view(self) -> PaymentView:
        return PaymentView(self.payment_status, self.transaction_id, self.payments)


@dataclass(frozen=True)
class ReturnHistoryRow:
    """A row of a return's ``ReturnHistoryAndNotesList`` that records money: what
    ``rmareturn/createreturnhistory`` wrote (§5.1, "How a refund is recorded")."""

    transaction_id: str
    amount: Decimal | None
    """``ReturnAmount``: negative for a refund; None when Znode sent none."""
    message: str


@dataclass(frozen=True)
class ZnodeReturn:
    """A Znode return as the platform acts on it (RMAReturnModel, §5.1)."""

    id: int
    """``RmaReturnDetailsId``."""
    number: str
    """``ReturnNumber``."""
    order_number: str
    order_id: int | None
    """``OmsOrderId``."""
    order_details_id: int | None
    """``OmsOrderDetailsId``, where the model carries it."""
    user_id: int | None
    state_id: int | None
    """``RmaReturnStateId``."""
    state: str
    """``ReturnStatus`` upper-cased (``APPROVED``, ``REFUND PROCESSED``); empty if absent."""
    total: Decimal
    """``TotalReturnAmount``; zero when Znode sent none (or no number)."""
    currency: str
    """ISO 4217, upper case."""
    modified: str
    """``ModifiedDate`` as sent (store-local time, no offset)."""
    has_line_items: bool
    """``ReturnLineItems`` is a non-empty list: they come only with the
    ``returnitemlist`` expand, and a return written back without them is refused."""
    history: tuple[ReturnHistoryRow, ...] = ()
    """The rows of ``ReturnHistoryAndNotesList`` that carry a ``TransactionId`` (the
    others are notes)."""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


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


def _rows(raw: object) -> list[Mapping[str, Any]]:
    """The objects of a list Znode sent (none where it sent no list)."""
    return [row for row in raw if isinstance(row, Mapping)] if isinstance(raw, list) else []


def _lines(raw: object) -> tuple[OrderLine, ...]:
    return tuple(
        OrderLine(
            id=_int(row.get("OmsOrderLineItemsId")),
            sku=_text(row.get("Sku")),
            name=_text(row.get("ProductName")),
            quantity=_decimal(row.get("Quantity")),
            price=_decimal(row.get("Price")),
            total=_decimal(row.get("Total")),
        )
        for row in _rows(raw)
    )


def order_from_wire(raw: Mapping[str, Any]) -> ZnodeOrder:
    """An order read from ``orders/{id}`` (with the state expands), a list row or a
    webhook's payload. Values Znode left out are empty (``None`` for numbers)."""
    billing = address_from_wire(raw.get("BillingAddress"))
    own_name = " ".join(x for x in (_text(raw.get("FirstName")), _text(raw.get("LastName"))) if x)
    return ZnodeOrder(
        id=_int(raw.get("OmsOrderId")) or 0,
        number=_text(raw.get("OrderNumber")),
        details_id=_int(raw.get("OmsOrderDetailsId")),
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


def _return_history(raw: object) -> tuple[ReturnHistoryRow, ...]:
    return tuple(
        ReturnHistoryRow(
            transaction_id=_text(row.get("TransactionId")),
            amount=_decimal(row.get("ReturnAmount")),
            message=_text(row.get("Message")),
        )
        for row in _rows(raw)
        if _text(row.get("TransactionId"))
    )


def return_from_wire(raw: Mapping[str, Any]) -> ZnodeReturn:
    """A return read from ``rmareturn/getreturndetails`` (line items with the
    ``returnitemlist`` expand), a ``rmareturn/list`` row (no collections) or an
    event's payload. Values Znode left out are empty (``None`` for ids)."""
    lines = raw.get("ReturnLineItems")
    return ZnodeReturn(
        id=_int(raw.get("RmaReturnDetailsId")) or 0,
        number=_text(raw.get("ReturnNumber")),
        order_number=_text(raw.get("OrderNumber")),
        order_id=_int(raw.get("OmsOrderId")),
        order_details_id=_int(raw.get("OmsOrderDetailsId")),
        user_id=_int(raw.get("UserId")),
        state_id=_int(raw.get("RmaReturnStateId")),
        state=_name(raw.get("ReturnStatus")),
        total=_decimal(raw.get("TotalReturnAmount")) or Decimal(0),
        currency=_text(raw.get("CurrencyCode")).upper(),
        modified=_text(raw.get("ModifiedDate")),
        has_line_items=isinstance(lines, list) and bool(lines),
        history=_return_history(raw.get("ReturnHistoryAndNotesList")),
        raw=raw,
    )


def _event_parts(payload: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """An event payload's object and envelope (``{"envelope": ..., "object": ...}``,
    as ``webhooks.parse`` and the poller store it), each a mapping whatever was sent."""
    obj, envelope = payload.get("object"), payload.get("envelope")
    return (
        obj if isinstance(obj, Mapping) else {},
        envelope if isinstance(envelope, Mapping) else {},
    )


def return_event_facts(event_type: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """What a return event names, under ``return`` (``return.number``, ``return.state``,
    ``return.total``...): the return as the event carried it (the flows re-read it
    before money moves; events are hints). The id and number fall back to the
    envelope's ``EventDataId`` / ``EventDataCode`` where the object lacks them."""
    if event_type not in (RETURN_CREATED, RETURN_UPDATED):
        return {}
    obj, envelope = _event_parts(payload)
    fallback = {
        "RmaReturnDetailsId": envelope.get("EventDataId"),
        "ReturnNumber": envelope.get("EventDataCode"),
    }
    known = {k: v for k, v in obj.items() if v not in (None, "") or k not in fallback}
    return {"return": fact_json(return_from_wire({**fallback, **known}))}


def order_event_facts(event_type: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """What an order event names: ``order.id`` and ``order.number`` (the flows re-read
    the rest; events are hints). ``payload`` is what ``webhooks.parse`` or the poller
    stored: ``{"envelope": ..., "object": <order>}``."""
    if not event_type.startswith("order."):
        return {}
    order, envelope = _event_parts(payload)
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


def _name(value: object) -> str:
    """A state name as both sources agree on it: blanks folded, upper case."""
    return " ".join(_text(value).split()).upper()


def _object_id(value: Any) -> int | None:
    try:
        number = int(value or 0)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


@dataclass(frozen=True)
class _ChangeOf:
    """What a created/updated event (``types``) changes, for the inbox's duplicate and
    echo check: the object, ``<module>:<id>`` (``id_field`` of the event's object, or
    the envelope's ``EventDataId``), and a hash of ``facts`` (what the flows act on).
    None for other events and for an object without an id.

    ``payload`` is what :func:`integrations.connectors.znode.webhooks.parse` returns
    for a Znode 10 webhook and for the poller's event alike
    (``{"envelope": ..., "object": <object>}``), so both give the same fingerprint
    for the same state of the object."""

    types: tuple[str, str]
    id_field: str
    facts: Callable[[Mapping[str, Any]], list[str]]

    def __call__(self, event_type: str, payload: Mapping[str, Any]) -> ChangeFingerprint | None:
        created, updated = self.types
        if event_type not in self.types:
            return None
        obj, envelope = _event_parts(payload)
        object_id = _object_id(obj.get(self.id_field) or envelope.get("EventDataId"))
        if object_id is None:
            return None
        facts = json.dumps(self.facts(obj), separators=(",", ":"))
        creates = event_type == created
        return ChangeFingerprint(
            object_key=f"{event_type.partition('.')[0]}:{object_id}",
            fingerprint=hashlib.sha256(facts.encode()).hexdigest(),
            creates=creates,
            update_event_type=updated if creates else "",
        )


def _order_facts(order: Mapping[str, Any]) -> list[str]:
    """What the order flows act on: the order state, ``Total``, ``CurrencyCode`` and
    ``PaymentSettingId``.

    Left out on purpose, because our own actions write them back to Znode and every
    write bumps the modified date and comes back as an "Order Updated" webhook or a
    polled change: the payment status, payment history, notes, ``ExternalId``,
    ``TransactionId``, the tracking number and the modified dates."""
    return [
        _order_state(order),
        _amount(order.get("Total")),
        _text(order.get("CurrencyCode")).upper(),
        _text(order.get("PaymentSettingId")),
    ]


def _return_state(ret: Mapping[str, Any]) -> str:
    # Both sources carry RmaReturnStateId (list rows and details alike, §5.1); the name
    # stands in only where no id came, marked so a name never matches an id by guess.
    state_id = _int(ret.get("RmaReturnStateId"))
    if state_id:
        return f"#{state_id}"
    return _name(ret.get("ReturnStatus"))


def _return_facts(ret: Mapping[str, Any]) -> list[str]:
    """What the return flows act on: the return's state, ``TotalReturnAmount``, and
    its ``ModifiedDate``: a return approved again after its refund failed has the same
    state and amount as the first time, and the 9.x poller never sees the state in
    between (it reports refund states only), so only the date tells the second
    approval from a repeat of the first. Both sources carry the same date for the same
    save of the return.

    Left out on purpose: notes, history rows and line-item details. Our write-backs
    either change the state anyway (Refund Processed, In Review) or add history rows,
    which leave the return's row as it was."""
    return [
        _return_state(ret),
        _amount(ret.get("TotalReturnAmount")),
        _text(ret.get("ModifiedDate")),
    ]


order_change_fingerprint = _ChangeOf((ORDER_CREATED, ORDER_UPDATED), "OmsOrderId", _order_facts)
"""The order an ``order.created``/``order.updated`` event is about (``order:<id>``)."""

return_change_fingerprint = _ChangeOf(
    (RETURN_CREATED, RETURN_UPDATED), "RmaReturnDetailsId", _return_facts
)
"""The return a ``return.created``/``return.updated`` event is about
(``return:<RmaReturnDetailsId>``)."""


# What an event is about, by its module (the part before the dot).
_CHANGE_FINGERPRINTS = {"order": order_change_fingerprint, "return": return_change_fingerprint}
_EVENT_FACTS = {"order": order_event_facts, "return": return_event_facts}


def change_fingerprint(event_type: str, payload: Mapping[str, Any]) -> ChangeFingerprint | None:
    """The connector's ``change_fingerprint``: the order's or the return's."""
    reader = _CHANGE_FINGERPRINTS.get(event_type.partition(".")[0])
    return reader(event_type, payload) if reader else None


def event_facts(event_type: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The connector's ``event_facts``: ``order`` or ``return``."""
    reader = _EVENT_FACTS.get(event_type.partition(".")[0])
    return reader(event_type, payload) if reader else {}


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
