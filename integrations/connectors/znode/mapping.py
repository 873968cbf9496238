"""Znode wire ⇄ facts (reference znode-api.md §3.3: OrderModel, AddressModel,
OrderLineItemModel; §5.1: RMAReturnModel; §6: UserModel and its address book). Pure
functions: no database or network access."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from integrations.connectors.base import ChangeFingerprint
from integrations.connectors.znode.constants import (
    ADDRESS_CREATED,
    ADDRESS_UPDATED,
    ORDER_CREATED,
    ORDER_UPDATED,
    RETURN_CREATED,
    RETURN_UPDATED,
    USER_CREATED,
    USER_UPDATED,
)
from integrations.kernel.countries import country_alpha2
from integrations.kernel.facts import CustomerProfile, PostalAddress, fact_json


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


def history_has_references(history: Sequence[PaymentRecord]) -> bool:
    """The payment history names its rows' ``TransactionReference`` (some 9.x builds
    leave it out of the model: then only amount and status tell rows apart, §12)."""
    return any(record.reference is not None for record in history)


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


def znode_date(value: object) -> datetime | None:
    """A Znode date as sent; None for none, for what is no date, and for .NET's and
    SQL Server's "no date" minimums (an unset BaseModel date, §2.2, is .NET's
    ``DateTime.MinValue``, sent as ``0001-01-01T00:00:00``)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return None if parsed.year < 1900 else parsed


def store_time(value: object, tz: tzinfo) -> datetime | None:
    """A Znode date (store-local, no offset: the connection's ``timezone``) as an
    aware moment, or None."""
    parsed = znode_date(value)
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


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


# --- customers (§6) ------------------------------------------------------------------------
@dataclass(frozen=True)
class ZnodeAddress:
    """One row of a customer's address book (AddressModel, §3.3; ``customer/addresslist``)."""

    address_id: int
    """``AddressId``."""
    user_id: int | None
    """``UserId``: the customer the row belongs to."""
    default_billing: bool
    """``IsDefaultBilling``."""
    default_shipping: bool
    """``IsDefaultShipping``."""
    address: PostalAddress
    """The address. ``country`` is the ISO alpha-2 code where ``CountryCode`` or
    ``CountryName`` names a country (a code, an alpha-3 code or an English name);
    otherwise the text as Znode sent it, upper-cased and whitespace-folded, so a
    validator can name it (a country no ISO table knows, never silently dropped)."""
    modified: str
    """``ModifiedDate`` as sent (store-local time, no offset)."""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class ZnodeCustomer:
    """A Znode customer (UserModel, §6: "customer" is a user) with its address book."""

    user_id: int
    """``UserId``."""
    portal_id: int | None
    """``PortalId``: the store the user belongs to."""
    email: str
    first_name: str
    last_name: str
    phone: str
    """``PhoneNumber``."""
    modified: str
    """``ModifiedDate`` as sent (store-local time, no offset)."""
    addresses: tuple[ZnodeAddress, ...]
    """The user's address-book rows, by ``AddressId``."""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def name(self) -> str:
        """First and last name joined by a space, blanks dropped."""
        return " ".join(x for x in (self.first_name, self.last_name) if x)

    def _default(self, flag: str) -> ZnodeAddress | None:
        # Znode keeps one default of each kind (setting one clears the others, §12);
        # should a store show two anyway, the oldest row wins, the same on every read.
        rows = [a for a in self.addresses if getattr(a, flag)]
        return min(rows, key=lambda a: a.address_id) if rows else None

    @property
    def billing_address(self) -> ZnodeAddress | None:
        """The default billing address (the lowest ``AddressId`` among the rows flagged
        ``IsDefaultBilling``); None when no row is."""
        return self._default("default_billing")

    @property
    def shipping_address(self) -> ZnodeAddress | None:
        """The default shipping address, chosen like :attr:`billing_address`."""
        return self._default("default_shipping")

    @property
    def profile(self) -> CustomerProfile:
        """The customer as the two-way sync compares it (an empty address where Znode
        has no default of that kind)."""
        billing, shipping = self.billing_address, self.shipping_address
        return CustomerProfile(
            email=self.email,
            name=self.name,
            phone=self.phone,
            billing=billing.address if billing else PostalAddress(),
            shipping=shipping.address if shipping else PostalAddress(),
        )


def _folded(value: object) -> str:
    """Text with runs of whitespace folded to one space, ends stripped."""
    return " ".join(_text(value).split())


def _flag(value: object) -> bool:
    """A .NET bool as sent: JSON true, or "true"/"1" from a lenient source."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return value is True or (isinstance(value, int) and value == 1)


def _country(raw: Mapping[str, Any]) -> str:
    text = _text(raw.get("CountryCode")) or _text(raw.get("CountryName"))
    code = country_alpha2(text)
    return code if code is not None else _folded(text).upper()


def address_row_from_wire(raw: Mapping[str, Any]) -> ZnodeAddress:
    """A ``customer/addresslist`` row, a created or updated address, or an Address
    event's payload. ``Address2`` and ``Address3`` are joined into ``line2``; the state
    is ``StateCode``, else ``StateName``."""
    extra = [_text(raw.get("Address2")), _text(raw.get("Address3"))]
    return ZnodeAddress(
        address_id=_int(raw.get("AddressId")) or 0,
        user_id=_int(raw.get("UserId")),
        default_billing=_flag(raw.get("IsDefaultBilling")),
        default_shipping=_flag(raw.get("IsDefaultShipping")),
        address=PostalAddress(
            name=" ".join(
                x for x in (_text(raw.get("FirstName")), _text(raw.get("LastName"))) if x
            ),
            line1=_text(raw.get("Address1")),
            line2=" ".join(x for x in extra if x),
            city=_text(raw.get("CityName")),
            state=_text(raw.get("StateCode")) or _text(raw.get("StateName")),
            postal_code=_text(raw.get("PostalCode")),
            country=_country(raw),
            phone=_text(raw.get("PhoneNumber")),
        ),
        modified=_text(raw.get("ModifiedDate")),
        raw=raw,
    )


def customer_from_wire(
    user: Mapping[str, Any], addresses: Iterable[Mapping[str, Any]] = ()
) -> ZnodeCustomer:
    """A user (``useraccounts``, ``users/getcustomeraccountdetails``, a
    ``customeraccount/list`` row or a User event's payload) with its address rows.

    ``addresses``: the rows of ``customer/addresslist``; none given, the user's own
    ``Addresses`` list where it carries one (``ZnodeClient.get_customer`` fills it in:
    Znode itself answers null there, §12). Rows of another user are left out, so the
    rows of one ``userid in`` read can be handed to each user as they are."""
    user_id = _int(user.get("UserId")) or 0
    rows = list(addresses) or _rows(user.get("Addresses"))
    book = sorted(
        (
            address_row_from_wire(row)
            for row in rows
            if isinstance(row, Mapping) and _int(row.get("UserId")) in (None, user_id)
        ),
        key=lambda a: a.address_id,
    )
    return ZnodeCustomer(
        user_id=user_id,
        portal_id=_int(user.get("PortalId")),
        email=_text(user.get("Email")),
        first_name=_text(user.get("FirstName")),
        last_name=_text(user.get("LastName")),
        phone=_text(user.get("PhoneNumber")),
        modified=_text(user.get("ModifiedDate")),
        addresses=tuple(book),
        raw=user,
    )


def default_flags_cleared(*, billing: bool, shipping: bool) -> dict[str, Any]:
    """What Znode writes on a user's other rows when a row takes a default flag
    (``createcustomeraddress`` and ``updatecustomeraddress`` clear it there, §12)."""
    cleared: dict[str, Any] = {}
    if billing:
        cleared["IsDefaultBilling"] = False
    if shipping:
        cleared["IsDefaultShipping"] = False
    return cleared


def address_book(user_id: int, rows: Iterable[Mapping[str, Any]]) -> ZnodeCustomer:
    """The address book of one user out of a ``customer/addresslist`` read of several
    (``userid in``): a customer with only its addresses (the user's own fields empty)."""
    return customer_from_wire({"UserId": int(user_id)}, rows)


def _split_name(name: str) -> tuple[str | None, str | None]:
    """A full name as Znode's first and last name: split at the first space, so
    joining them back gives the same name ("Mary Ann Smith" → "Mary", "Ann Smith")."""
    first, _, last = _folded(name).partition(" ")
    return first or None, last or None


def _or_none(value: str) -> str | None:
    text = _folded(value)
    return text or None


USER_PROFILE_FIELDS = ("email", "name", "phone")


def user_changes(
    profile: CustomerProfile, fields: Iterable[str] = USER_PROFILE_FIELDS
) -> dict[str, Any]:
    """The UserModel fields a profile sets (to merge into the model read, §12:
    ``customeraccount/update`` writes every column): ``Email``, ``FirstName``,
    ``LastName`` (the name split at its first space) and ``PhoneNumber``; only those
    of the profile ``fields`` given (``email``, ``name``, ``phone``), so a field that
    did not change keeps Znode's own text (an email's case, say).

    Blank values are written as null, which is what Znode stores for "not set" (an
    omitted field becomes null, §12) and what a read of such a column answers; both
    read back as "". The exception is a blank email: it is left out (the stored email
    is kept), because the email is the account's login identity in Znode and a
    profile without one means "not known", never "remove it"."""
    wanted = set(fields)
    changes: dict[str, Any] = {}
    if "email" in wanted and (email := _folded(profile.email)):
        changes["Email"] = email
    if "name" in wanted:
        changes["FirstName"], changes["LastName"] = _split_name(profile.name)
    if "phone" in wanted:
        changes["PhoneNumber"] = _or_none(profile.phone)
    return changes


def address_changes(address: PostalAddress) -> dict[str, Any]:
    """The AddressModel fields an address sets (to merge into the row read: the
    address PUT replaces the whole row, §12): ``FirstName``/``LastName`` (the name
    split like :func:`user_changes`), ``Address1``, ``Address2`` (``line2``),
    ``Address3`` (null: :func:`address_row_from_wire` joins it into ``line2``),
    ``CityName``, ``StateName`` and ``StateCode`` (both the state as given: the model
    has both, §3.3, and a read prefers the code), ``PostalCode``, ``CountryName`` and
    ``CountryCode`` (the alpha-2 code, as orders carry it, §3.3; both, because a read
    prefers ``CountryCode`` and a stale one would win over the new name) and
    ``PhoneNumber``. A country no ISO table knows is written as given (upper-cased),
    so an address read from Znode writes back unchanged; blanks are written as null.
    The default flags are the caller's to set."""
    first, last = _split_name(address.name)
    code = country_alpha2(address.country)
    country = _or_none(code if code is not None else _folded(address.country).upper())
    state = _or_none(address.state)
    return {
        "FirstName": first,
        "LastName": last,
        "Address1": _or_none(address.line1),
        "Address2": _or_none(address.line2),
        "Address3": None,
        "CityName": _or_none(address.city),
        "StateName": state,
        "StateCode": state,
        "PostalCode": _or_none(address.postal_code),
        "CountryName": country,
        "CountryCode": country,
        "PhoneNumber": _or_none(address.phone),
    }


def new_address_values(address: PostalAddress, *, billing: bool, shipping: bool) -> dict[str, Any]:
    """The AddressModel of a new address-book row (``ZnodeClient.create_address``):
    :func:`address_changes` with the default flags it takes (setting one clears it on
    the user's other rows, §12)."""
    return {
        **address_changes(address),
        "IsDefaultBilling": billing,
        "IsDefaultShipping": shipping,
    }


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

    def digest(self, obj: Mapping[str, Any]) -> str:
        """The fingerprint of one state of the object (sha256 hex of ``facts``)."""
        facts = json.dumps(self.facts(obj), separators=(",", ":"))
        return hashlib.sha256(facts.encode()).hexdigest()

    def __call__(self, event_type: str, payload: Mapping[str, Any]) -> ChangeFingerprint | None:
        created, updated = self.types
        if event_type not in self.types:
            return None
        obj, envelope = _event_parts(payload)
        object_id = _object_id(obj.get(self.id_field) or envelope.get("EventDataId"))
        if object_id is None:
            return None
        creates = event_type == created
        return ChangeFingerprint(
            object_key=f"{event_type.partition('.')[0]}:{object_id}",
            fingerprint=self.digest(obj),
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


def _user_facts(user: Mapping[str, Any]) -> list[str]:
    """What the customer sync acts on in a user: ``Email`` (lower case),
    ``FirstName``, ``LastName`` and ``PhoneNumber``, whitespace-folded (null and ""
    alike).

    Left out on purpose, because our own writes do not set them or an unrelated save
    touches them: the modified dates, ``EmailOptIn``/``SMSOptIn``, ``ExternalId``,
    the store, role and account columns."""
    return [
        _folded(user.get("Email")).lower(),
        _folded(user.get("FirstName")),
        _folded(user.get("LastName")),
        _folded(user.get("PhoneNumber")),
    ]


_ADDRESS_PARTS = ("name", "line1", "line2", "city", "state", "postal_code", "country", "phone")


def _address_facts(row: Mapping[str, Any]) -> list[str]:
    """What the customer sync acts on in an address row: its ``UserId``, the address
    as :func:`address_row_from_wire` reads it (so "USA" and "US", or a line split
    differently between ``Address2`` and ``Address3``, are one address) and the two
    default flags. Left out: the modified dates, ``DisplayName``, ``IsActive`` and the
    other columns the sync never writes."""
    found = address_row_from_wire(row)
    values = [_folded(getattr(found.address, f)) for f in _ADDRESS_PARTS]
    return [
        _text(found.user_id),
        *values,
        "1" if found.default_billing else "0",
        "1" if found.default_shipping else "0",
    ]


user_change_fingerprint = _ChangeOf((USER_CREATED, USER_UPDATED), "UserId", _user_facts)
"""The user a ``user.created``/``user.updated`` event is about (``user:<UserId>``)."""

address_change_fingerprint = _ChangeOf(
    (ADDRESS_CREATED, ADDRESS_UPDATED), "AddressId", _address_facts
)
"""The address row an ``address.created``/``address.updated`` event is about
(``address:<AddressId>``: one user has several rows)."""


def user_change_key(user_id: int) -> str:
    """The ``object_key`` of a user's changes (what :func:`change_fingerprint` gives a
    ``user.*`` event)."""
    return f"user:{int(user_id)}"


def address_change_key(address_id: int) -> str:
    """The ``object_key`` of an address row's changes."""
    return f"address:{int(address_id)}"


def user_fingerprint(model: Mapping[str, Any]) -> str:
    """The fingerprint a ``user.created``/``user.updated`` event whose object is
    ``model`` gets: what a write of ``model`` (``customeraccount/update``) comes back
    as, from a Znode 10 webhook or the poller."""
    return user_change_fingerprint.digest(model)


def address_fingerprint(model: Mapping[str, Any]) -> str:
    """The fingerprint an ``address.*`` event whose object is ``model`` gets (see
    :func:`user_fingerprint`)."""
    return address_change_fingerprint.digest(model)


def user_fingerprint_after(customer: ZnodeCustomer, changes: Mapping[str, Any]) -> str:
    """The fingerprint the user will carry once ``changes`` (:func:`user_changes`) are
    written over it as read: what to hand the inbox's ``change_expect`` before."""
    return user_fingerprint({**customer.raw, **changes})


def address_fingerprint_after(address: ZnodeAddress, changes: Mapping[str, Any]) -> str:
    """Like :func:`user_fingerprint_after`, for an address-book row."""
    return address_fingerprint({**address.raw, **changes})


def user_event_facts(event_type: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """What a user event names: ``customer.user_id`` and ``customer.portal_id`` (the
    flows re-read the customer; events are hints). The id falls back to the envelope's
    ``EventDataId``."""
    if not event_type.startswith("user."):
        return {}
    user, envelope = _event_parts(payload)
    user_id = _object_id(user.get("UserId")) or _object_id(envelope.get("EventDataId"))
    return {"customer": {"user_id": user_id, "portal_id": _object_id(user.get("PortalId"))}}


def address_event_facts(event_type: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """What an address event names: the customer whose address book changed
    (``customer.user_id``: the row's ``UserId``; ``portal_id`` None, an address row
    names no store)."""
    if not event_type.startswith("address."):
        return {}
    row, _ = _event_parts(payload)
    return {"customer": {"user_id": _object_id(row.get("UserId")), "portal_id": None}}


# What an event is about, by its module (the part before the dot).
_CHANGE_FINGERPRINTS = {
    "order": order_change_fingerprint,
    "return": return_change_fingerprint,
    "user": user_change_fingerprint,
    "address": address_change_fingerprint,
}
_EVENT_FACTS = {
    "order": order_event_facts,
    "return": return_event_facts,
    "user": user_event_facts,
    "address": address_event_facts,
}


def change_fingerprint(event_type: str, payload: Mapping[str, Any]) -> ChangeFingerprint | None:
    """The connector's ``change_fingerprint``: the order's, the return's, the user's
    or the address row's."""
    reader = _CHANGE_FINGERPRINTS.get(event_type.partition(".")[0])
    return reader(event_type, payload) if reader else None


def event_facts(event_type: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The connector's ``event_facts``: ``order``, ``return`` or ``customer``."""
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
