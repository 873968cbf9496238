"""Znode 9.x wire format: JSON encoding (decimals with scale 6, .NET dates), the
BaseResponse envelope, list paging and the error shapes the real API answers with."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sandbox.http import Response

JSON_TYPE = "application/json; charset=utf-8"
MIN_DATE = "0001-01-01T00:00:00"
INT_MAX = 2147483647
SCALE = Decimal("0.000001")  # numeric(28,6) columns come back with six decimals

UNAUTHORIZED_CODE = 32
UNAUTHORIZED_MESSAGE = "You are unauthorized to access this resource"

# ZnodeException error codes (Projects/Engines/Znode.Engine.Exceptions/ErrorCodes.cs)
NULL_MODEL, ALREADY_EXIST, INVALID_DATA, NOT_FOUND, NOT_PERMITTED = 1, 2, 5, 6, 7
ID_LESS_THAN_ONE, EXCEPTIONAL_ERROR, NOT_ORDER_ELIGIBLE_FOR_RETURN = 8, 9, 301


class ZnodeError(Exception):
    """A business/validation error: 500 with HasError, ErrorCode, ErrorMessage."""

    def __init__(self, message: str, code: int | None = None, status: int = 500, **payload):
        super().__init__(message)
        self.message, self.code, self.status, self.payload = message, code, status, payload


class ModelStateError(Exception):
    """Model validation failed: 400 with CustomModelState {"model.Field": message}."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(str(errors))
        self.errors = errors


# --- dates -----------------------------------------------------------------------------
# Znode writes DateTime.Now of the IIS server and Newtonsoft serialises it without an
# offset (znode-api.md §2.2): every date the sandbox Znode writes or reads is a naive
# wall-clock time in the store's time zone (knob ``timezone``). The zone of the store being
# served is bound per request with ``store_clock`` (Znode.handle / handle_test / reset).
DEFAULT_TIMEZONE = "America/Chicago"
_ZONE: ContextVar[ZoneInfo | None] = ContextVar("znode_store_zone", default=None)


def zone_named(name: str) -> ZoneInfo:
    """The ZoneInfo for an IANA name; ValueError for an unknown one."""
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def store_zone() -> ZoneInfo:
    return _ZONE.get() or zone_named(DEFAULT_TIMEZONE)


@contextmanager
def store_clock(name: str | None) -> Iterator[ZoneInfo]:
    """Bind the store time zone for the code run inside (one request, one reseed)."""
    zone = zone_named(name or DEFAULT_TIMEZONE)
    token = _ZONE.set(zone)
    try:
        yield zone
    finally:
        _ZONE.reset(token)


def now() -> datetime:
    """Server-local time: the store's wall clock, naive (Znode sends no offset)."""
    return datetime.now(store_zone()).replace(tzinfo=None)


def to_store_local(value: datetime) -> datetime:
    """An aware datetime as the store's naive wall-clock time (naive values are kept)."""
    if value.tzinfo is None:
        return value
    return value.astimezone(store_zone()).replace(tzinfo=None)


def fmt_date(value: datetime | None) -> str | None:
    """Newtonsoft style: fraction digits trimmed of trailing zeros, no offset."""
    if value is None:
        return None
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += "." + f"{value.microsecond:06d}".rstrip("0")
    return text


def now_text() -> str:
    return fmt_date(now())


_DATE_FORMATS = (
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
)


def parse_date(value: Any) -> datetime | None:
    """Parse what a client may send (ISO 8601 any case, with/without offset, or the
    admin grid's MM/dd/yyyy hh:mm tt). A value without an offset is store-local time, as
    DateTime.Parse on the server reads it; one with an offset is converted to it."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    text = str(value).strip().strip("'").strip()
    if not text:
        return None
    iso = text.upper()
    if iso.endswith("Z"):
        iso = iso[:-1] + "+00:00"
    iso = re.sub(r"(\.\d{6})\d+", r"\1", iso)  # .NET sends up to 7 fraction digits
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        parsed = None
        for fmt in _DATE_FORMATS:
            try:
                parsed = datetime.strptime(iso, fmt)
                break
            except ValueError:
                continue
        if parsed is None:
            return None
    return to_store_local(parsed)


# --- money -----------------------------------------------------------------------------
def money(value: Any, default: str = "0") -> Decimal:
    if value is None or value == "":
        value = default
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ZnodeError(f"Input string '{value}' was not in a correct format.") from None


def money_text(value: Any) -> str:
    """How amounts are kept in the (JSON) state: exact decimal strings."""
    return str(money(value))


# --- JSON ------------------------------------------------------------------------------
_MARK = "\u2063DEC\u2063"
_MARK_RE = re.compile('"' + _MARK + r"(-?\d+(?:\.\d+)?)" + _MARK + '"')


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{_MARK}{value.quantize(SCALE)}{_MARK}"
    if isinstance(value, datetime):
        return fmt_date(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any) -> str:
    """JSON with decimals written as numbers at scale 6 (``125.500000``), as .NET does."""
    text = json.dumps(value, default=_default, ensure_ascii=False)
    return _MARK_RE.sub(r"\1", text)


def loads(body: bytes) -> Any:
    return json.loads(body, parse_float=Decimal)


def minify(value: Any) -> Any:
    """``Minified-Json-Response: true``: drop default-valued properties."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if item is None or item is False or item == MIN_DATE:
                continue
            if isinstance(item, int | Decimal) and not isinstance(item, bool) and item == 0:
                continue
            out[key] = minify(item)
        return out
    if isinstance(value, list):
        return [minify(item) for item in value]
    return value


# --- envelope --------------------------------------------------------------------------
def base_fields() -> dict[str, Any]:
    """BaseResponse + BaseModel properties, with .NET defaults."""
    return {
        "ErrorCode": None,
        "ErrorMessage": None,
        "HasError": False,
        "CustomModelState": None,
        "ErrorDetailList": None,
        "CreatedBy": 0,
        "CreatedDate": MIN_DATE,
        "ModifiedBy": 0,
        "ModifiedDate": MIN_DATE,
        "ActionMode": None,
        "Custom1": None,
        "Custom2": None,
        "Custom3": None,
        "Custom4": None,
        "Custom5": None,
    }


def model_base(created_by=0, created=None, modified_by=0, modified=None) -> dict[str, Any]:
    """The BaseModel properties every model carries."""
    return {
        "CreatedBy": created_by or 0,
        "CreatedDate": created or MIN_DATE,
        "ModifiedBy": modified_by or 0,
        "ModifiedDate": modified or MIN_DATE,
        "ActionMode": None,
        "Custom1": None,
        "Custom2": None,
        "Custom3": None,
        "Custom4": None,
        "Custom5": None,
    }


def respond(payload: dict[str, Any], status: int = 200, **headers: str) -> Response:
    body = {**payload, **base_fields()}
    for key in list(payload):
        body[key] = payload[key]  # payload keys (if any overlap) win
    return Response(status, dumps(body).encode(), {"Content-Type": JSON_TYPE, **headers})


def raw(body: Any, status: int = 200, **headers: str) -> Response:
    return Response(status, dumps(body).encode(), {"Content-Type": JSON_TYPE, **headers})


def no_content() -> Response:
    return Response(204, None, {})


def true_false(success: bool) -> Response:
    return respond({"IsSuccess": bool(success), "booleanModel": None})


def error(message: str | None, code: int | None = None, status: int = 500, **payload) -> Response:
    body = {
        **payload,
        **base_fields(),
        "HasError": True,
        "ErrorMessage": message,
        "ErrorCode": code,
    }
    return Response(status, dumps(body).encode(), {"Content-Type": JSON_TYPE})


def model_state_error(errors: dict[str, str]) -> Response:
    body = {**base_fields(), "HasError": True, "ErrorMessage": "", "CustomModelState": errors}
    return Response(400, dumps(body).encode(), {"Content-Type": JSON_TYPE})


def unauthorized(message: str = UNAUTHORIZED_MESSAGE, **headers: str) -> Response:
    # Znode's APIAuthorizeAttribute really answers HasError:false here.
    body = {**base_fields(), "ErrorCode": UNAUTHORIZED_CODE, "ErrorMessage": message}
    return Response(401, dumps(body).encode(), {"Content-Type": JSON_TYPE, **headers})


def web_api_message(message: str, status: int) -> Response:
    """ASP.NET Web API's own error body (unknown route, wrong verb)."""
    return Response(status, dumps({"Message": message}).encode(), {"Content-Type": JSON_TYPE})


def paging_fields(page_index: int, page_size: int, total: int) -> dict[str, int]:
    pages = math.ceil(total / page_size) if page_size else 0
    return {
        "PageIndex": page_index,
        "PageSize": page_size,
        "TotalResults": total,
        "TotalPages": pages,
    }
