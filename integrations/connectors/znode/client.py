"""Znode API client, 9.x ("V1") dialect, as verified in ``reference/znode-api.md``.

What it takes care of so callers do not have to:

* auth: Basic ``domain|key`` (a pipe), or OAuth 2.0 client credentials for stores
  behind an API gateway (token cached per connection, refreshed before expiry, one
  refresh-and-retry on 401); ``Znode-DomainName`` / ``Znode-UserId`` context headers;
* the envelope: PascalCase bodies, ``HasError``/``ErrorCode``/``ErrorMessage``, 204
  meaning "none", ``IsSuccess`` on true/false answers, 400 ``CustomModelState``;
* query syntax: ``filter=key~op~value`` (commas in values as ``^``), ``sort=``, 1-based
  ``page=index~N,size~M``, and ``cache=refresh`` after another parameter on every read
  that must not be stale;
* state vocabularies (order, payment, return states) loaded by name and cached, never
  hard-coded ids;
* the pitfalls of §12: payment records are not idempotent (we check the payment
  history first), state writes clear the tracking number (we restore it) and ignore
  unknown names silently (we verify), notes need the order-details id, customer
  and address updates replace the whole row (read-modify-write), useraccounts answers
  no addresses (we read the address list), length limits.

Every call is throttled per connection, has a timeout and is recorded as an ApiCall.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from django.utils import timezone as dj_timezone

from integrations.connectors.znode.mapping import (
    PaymentRecord,
    history_has_references,
    history_rows,
    order_from_wire,
    payment_records,
    return_from_wire,
)
from integrations.connectors.znode.settings import SCHEMA
from integrations.kernel import exceptions as exc
from integrations.kernel.http import error_for_status, http_request, parse_retry_after
from integrations.kernel.jsonutil import dumps_exact
from integrations.kernel.redaction import redact_text
from integrations.kernel.throttle import throttle

if TYPE_CHECKING:
    import requests

    from integrations.kernel.types import Connection

ORDER_EXPANDS = ("omsorderstate", "omspaymentstate", "paymenttype", "ordernotes", "orderlineitems")
RETURN_EXPANDS = ("returnitemlist",)
ORDER_HISTORY_EXPANDS = ("znodeomshistories",)
REFUND_PROCESSED_STATE = "REFUND PROCESSED"
REFUND_PROCESSED_STATE_ID = 80  # ZnodeRmaReturnStateEnum (§5.1)
NOTE_LIMIT = 500
EXTERNAL_ID_LIMIT = 50
TRANSACTION_REFERENCE_LIMIT = 50
VOCABULARY_TTL = 300.0
# ErrorCodes.cs: 9 = ExceptionalError (unhandled); others (1 NullModel, 2 AlreadyExist,
# 5 InvalidData, 6 NotFound, 7 NotPermitted, 8 IdLessThanOne, 301 ...) are business.
TRANSIENT_ERROR_CODES = frozenset({9})

# kind → (route, operation, list property, name column, id column) of a state list.
VOCABULARIES = {
    "order": (
        "orderstate/list",
        "znode.order_states",
        "OrderStates",
        "OrderStateName",
        "OmsOrderStateId",
    ),
    "payment": (
        "orders/getpaymentstatelist",
        "znode.payment_states",
        "PaymentStateList",
        "Name",
        "OmsPaymentStateId",
    ),
    "return": (
        "rmareturn/getreturnstatuslist",
        "znode.return_states",
        "ReturnStates",
        "ReturnStateName",
        "RmaReturnStateId",
    ),
}

Filters = list[tuple[str, str, Any]]
"""``filter=`` tuples (key, operator, value), AND-ed (§2.3)."""

_tokens: dict[int, tuple[str, float]] = {}
_api_tokens: dict[int, tuple[str, float]] = {}
# token/generatetoken answers no lifetime; tokens live TokenExpirationTime minutes (10
# in the shipped config, reference §1.2). Assume half of that (renewed a minute before,
# and once more on a 401).
API_TOKEN_LIFETIME = 300.0
_vocabularies: dict[tuple[int, str], tuple[dict[str, dict], float]] = {}
_cache_lock = threading.Lock()


def forget_cached(connection_id: int | None = None) -> None:
    """Drop cached tokens and vocabularies (all, or one connection's)."""
    with _cache_lock:
        for store in (_tokens, _api_tokens, _vocabularies):
            for key in list(store):
                if (
                    connection_id is None
                    or key == connection_id
                    or (isinstance(key, tuple) and key[0] == connection_id)
                ):
                    del store[key]


def store_timezone(connection: Connection) -> ZoneInfo:
    """The time zone of the store server's clock (Znode dates carry no offset)."""
    from django.conf import settings as dj_settings

    return ZoneInfo((connection.settings or {}).get("timezone") or dj_settings.TIME_ZONE)


def _path(value: object) -> str:
    """A value placed in a URL path: a '/', '?' or '#' must not change the route."""
    from urllib.parse import quote

    return quote(str(value), safe="")


# --- query syntax ------------------------------------------------------------------------
def filter_value(value: Any) -> str:
    if isinstance(value, datetime):
        value = value.strftime("%Y-%m-%d %H:%M:%S")
    elif isinstance(value, list | tuple | set):
        return "^".join(filter_value(v) for v in value)
    return str(value).replace(",", "^")


def build_filter(filters: list[tuple[str, str, Any]]) -> str:
    return ",".join(f"{key}~{op}~{filter_value(value)}" for key, op, value in filters)


def build_params(
    *,
    expand: tuple[str, ...] | list[str] = (),
    filters: list[tuple[str, str, Any]] | None = None,
    sort: list[tuple[str, str]] | None = None,
    page: tuple[int, int] | None = None,
    fresh: bool = False,
) -> dict[str, str]:
    params: dict[str, str] = {}
    if expand:
        params["expand"] = ",".join(expand)
    if filters:
        params["filter"] = build_filter(filters)
    if sort:
        params["sort"] = ",".join(f"{key}~{direction}" for key, direction in sort)
    if page:
        index, size = page
        if index < 1:
            raise ValueError("Znode pages start at 1")
        params["page"] = f"index~{index},size~{size}"
    if fresh:
        # Last, after another parameter: the server builds its cache key by cutting
        # the literal "&cache=refresh", so it must not be the first parameter.
        if not params:
            params["expand"] = ""
        params["cache"] = "refresh"
    return params


@dataclass(frozen=True)
class ListRoute:
    """A 9.x list route: where its rows sit in the answer (§2.4: ``list_key``, and
    ``rows_key`` inside it; no ``rows_key``: ``list_key`` holds the rows itself), the
    date column a ``since`` window filters on, and the order rows are read in."""

    path: str
    operation: str
    list_key: str
    rows_key: str
    date_column: str
    sort: tuple[tuple[str, str], ...]


ORDER_LIST = ListRoute(
    "orders/list", "znode.order.list", "OrderList", "Orders", "orderdate", (("orderdate", "asc"),)
)
RETURN_LIST = ListRoute(
    "rmareturn/list",
    "znode.return.list",
    "ReturnList",
    "Returns",
    "modifieddate",
    (("modifieddate", "asc"), ("rmareturndetailsid", "asc")),  # ties: a stable order
)


# customer/addresslist filters, sorts and pages the user-address links (ZnodeUserAddress:
# UserAddressId, UserId, AddressId and the audit columns, §6), not the address rows.
ADDRESS_LIST = ListRoute(
    "customer/addresslist",
    "znode.customer.addresses",
    "AddressList",
    "",
    "modifieddate",
    (("addressid", "asc"),),
)
ADDRESS_CHANGES = ListRoute(
    ADDRESS_LIST.path,
    ADDRESS_LIST.operation,
    ADDRESS_LIST.list_key,
    "",
    "modifieddate",
    (("modifieddate", "asc"), ("addressid", "asc")),  # ties: a stable order
)
CUSTOMER_LIST_OPERATION = "znode.customer.list"
USER_IDS_PER_READ = 200
"""``userid in`` values per ``customer/addresslist`` read (keeps URLs short)."""


def _return_notes(ret: dict) -> set[str]:
    """The notes a return shows: its ``Notes``, and the note rows of ``ReturnNotes`` and
    ``ReturnHistoryAndNotesList`` (where this read carries them)."""
    rows = [ret, *(ret.get("ReturnNotes") or []), *(ret.get("ReturnHistoryAndNotesList") or [])]
    return {str(r["Notes"]).strip() for r in rows if isinstance(r, dict) and r.get("Notes")}


def matching_rows(history: Sequence[PaymentRecord], amount: Decimal, status: str) -> int:
    """How many history rows have this amount and status."""
    return sum(
        1
        for record in history
        if record.amount is not None
        and record.amount == Decimal(amount)
        and record.status.lower() == status.lower()
    )


def is_order_state(row: dict) -> bool:
    """Whether a row of ``orderstate/list`` is an order state (IsOrderState=1)."""
    flag = row.get("IsOrderState")
    return flag is None or flag is True or str(flag).lower() in ("1", "true")


class ZnodeClient:
    def __init__(self, connection: Connection) -> None:
        if not connection.base_url:
            raise exc.ConnectorConfigurationError(f"connection {connection.name} has no base URL")
        self.connection = connection
        self.base = connection.base_url.rstrip("/")
        self.settings = connection.settings or {}
        self.timezone = store_timezone(connection)
        seconds = self.settings.get("timeout_seconds")
        self.timeout = (min(5.0, float(seconds)), float(seconds)) if seconds else None

    # --- auth ----------------------------------------------------------------------------
    @property
    def uses_oauth(self) -> bool:
        return self.settings.get("auth") == "oauth"

    def _basic(self) -> str:
        domain = self.connection.credential("domain_name")
        key = self.connection.credential("domain_key")
        if not domain or not key:
            raise exc.ConnectorConfigurationError(
                f"connection {self.connection.name} needs credentials domain_name and domain_key"
            )
        return "Basic " + base64.b64encode(f"{domain}|{key}".encode()).decode()

    def _cached_token(
        self,
        store: dict[int, tuple[str, float]],
        fetch: Callable[[], tuple[str, float]],
        *,
        renew: bool,
    ) -> str:
        """A token from ``store``, or a new one from ``fetch`` (token, seconds it
        lives); refreshed a little before expiry so an in-flight call never carries a
        dead token."""
        now = time.time()
        with _cache_lock:
            cached = store.get(self.connection.pk)
        if cached and not renew and cached[1] > now:
            return cached[0]
        token, expires_in = fetch()
        margin = min(60.0, expires_in / 5)
        with _cache_lock:
            store[self.connection.pk] = (token, now + expires_in - margin)
        return token

    def _bearer(self, *, renew: bool = False) -> str:
        return "Bearer " + self._cached_token(_tokens, self._fetch_token, renew=renew)

    def _fetch_token(self) -> tuple[str, float]:
        token_url = self.settings.get("token_url") or f"{self.base}/oauth/token"
        client_id = self.connection.credential("client_id")
        client_secret = self.connection.credential("client_secret")
        if not client_id or not client_secret:
            raise exc.ConnectorConfigurationError(
                f"connection {self.connection.name} needs client_id and client_secret for OAuth"
            )
        data = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        }
        if scope := self.settings.get("scope"):
            data["scope"] = scope
        throttle(self.connection)
        response = http_request(
            self.connection, "POST", token_url, operation="znode.oauth.token", data=data
        )
        body = response.json()
        if not body.get("access_token"):
            raise exc.Unauthorized("OAuth token endpoint answered without an access_token")
        return body["access_token"], float(body.get("expires_in") or 300)

    @property
    def uses_api_token(self) -> bool:
        """EnableTokenBasedAuthorization (reference §1.2): a ``Token`` header from
        ``token/generatetoken`` on every call, and the Basic header still."""
        return bool(SCHEMA.value(self.connection.settings, "token_auth"))

    def _fetch_api_token(self) -> tuple[str, float]:
        throttle(self.connection)
        response = http_request(
            self.connection,
            "GET",
            f"{self.base}/token/generatetoken",
            operation="znode.token.generate",
            headers={"Accept": "application/json", "Authorization": self._basic()},
            timeout=self.timeout,
            raise_for_status=False,
        )
        body = self._unwrap(response, "znode.token.generate") or {}
        token = body.get("Response")
        if response.status_code != 200 or not token:
            raise exc.Unauthorized("Znode token/generatetoken answered without a token")
        return str(token), API_TOKEN_LIFETIME

    def _headers(self, *, renew: bool = False) -> dict[str, str]:
        headers = {
            "Accept": "application/json",
            "Authorization": self._bearer(renew=renew) if self.uses_oauth else self._basic(),
        }
        if self.uses_api_token:
            headers["Token"] = self._cached_token(_api_tokens, self._fetch_api_token, renew=renew)
        if store := self.settings.get("store_domain"):
            headers["Znode-DomainName"] = str(store)
        if user := self.settings.get("acting_user_id"):
            headers["Znode-UserId"] = str(user)
        return headers

    # --- envelope ------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        params: dict[str, str] | None = None,
        json: Any = None,
    ) -> dict[str, Any] | None:
        """One call. Returns the body, or None for 204 ("none")."""
        url = f"{self.base}/{path.lstrip('/')}"
        body = dumps_exact(json).encode() if json is not None else None
        for attempt in (1, 2):
            throttle(self.connection)
            headers = self._headers(renew=attempt == 2)
            if body is not None:
                headers["Content-Type"] = "application/json"
            response = http_request(
                self.connection,
                method,
                url,
                operation=operation,
                headers=headers,
                params=params,
                data=body,
                timeout=self.timeout,
                raise_for_status=False,
            )
            if (
                response.status_code == 401
                and attempt == 1
                and (self.uses_oauth or self.uses_api_token)
            ):
                continue  # token revoked or expired early: refresh once
            return self._unwrap(response, operation)
        raise AssertionError("unreachable")  # pragma: no cover

    def _unwrap(self, response: requests.Response, operation: str) -> dict[str, Any] | None:
        status = response.status_code
        if status == 204:
            return None
        body: Any = None
        if response.content:
            try:
                # Decimals stay Decimal: money must never pass through float, and a
                # model read here is often written back (read-modify-write).
                body = json.loads(response.content, parse_float=Decimal)
            except ValueError:
                body = None
        if status == 400 and isinstance(body, dict):
            state = body.get("CustomModelState") or body.get("ModelState") or {}
            raise exc.BadRequest(f"{operation}: Znode refused the input: {redact_text(str(state))}")
        if isinstance(body, dict) and body.get("HasError"):
            code = body.get("ErrorCode")
            message = f"{operation}: Znode error {code}: {body.get('ErrorMessage')}"
            if code is None or code in TRANSIENT_ERROR_CODES:
                # An unhandled exception on the server: the same call may well succeed.
                raise exc.ConnectorUnavailable(redact_text(message))
            # A ZnodeException with a business code (bad data, not found, not
            # permitted...) answers the same way every time: do not retry it.
            raise exc.BusinessRuleError(redact_text(message), extra={"code": code})
        if status >= 400:
            text = redact_text(response.text[:300])
            raise error_for_status(
                status,
                f"{operation}: HTTP {status} {text}",
                parse_retry_after(response.headers.get("Retry-After")),
            )
        if not isinstance(body, dict):
            raise exc.ConnectorUnavailable(f"{operation}: Znode answered {status} without JSON")
        return body

    def _get_write(self, path: str, *, operation: str, refused: str) -> None:
        """One of 9.x's GET routes that write (path values, a TrueFalseResponse)."""
        if not self._is_success(self.request("GET", path, operation=operation)):
            raise exc.BusinessRuleError(refused)

    @staticmethod
    def _is_success(body: dict[str, Any] | None) -> bool:
        if not body:
            return False
        if "IsSuccess" in body:
            return bool(body["IsSuccess"])
        model = body.get("booleanModel") or {}
        return bool(model.get("IsSuccess"))

    # --- vocabularies --------------------------------------------------------------------
    def _vocabulary(self, kind: str, *, fresh: bool = False) -> dict[str, dict]:
        """A state list by upper-case name, cached. ``fresh`` bypasses both our cache
        and Znode's own GET cache (``cache=refresh``, §8), so a state an operator has
        just added is seen at once."""
        key = (self.connection.pk, kind)
        now = time.time()
        with _cache_lock:
            cached = _vocabularies.get(key)
        if cached and cached[1] > now and not fresh:
            return cached[0]
        path, operation, list_key, name_key, id_key = VOCABULARIES[kind]
        body = self.request(
            "GET", path, operation=operation, params=build_params(fresh=True) if fresh else None
        )
        rows = (body or {}).get(list_key) or []
        names = {str(r[name_key]).upper(): {"id": r[id_key], **r} for r in rows}
        with _cache_lock:
            _vocabularies[key] = (names, now + VOCABULARY_TTL)
        return names

    def order_states(self) -> dict[str, dict]:
        """Order states by upper-case name (cached)."""
        return self._vocabulary("order")

    def state(self, kind: str, name: str) -> dict:
        """A state row by name (case-insensitive), or DataError naming what exists.

        For order states only rows with ``IsOrderState`` count: Znode resolves the
        names of order-state writes among those alone and silently ignores the others
        (§3.1, §4.1, §12), so a quote or account state such as APPROVED is refused
        here, before any write."""
        names = self._vocabulary(kind)
        row = names.get(name.upper())
        if row is None:
            names = self._vocabulary(kind, fresh=True)  # maybe an operator just added it
            row = names.get(name.upper())
        if row is None:
            raise exc.DataError(
                f"Znode has no {kind} state named {name!r}; it has: {', '.join(sorted(names))}"
            )
        if kind == "order" and not is_order_state(row):
            usable = sorted(n for n, r in names.items() if is_order_state(r))
            raise exc.DataError(
                f"Znode state {name!r} is not an order state (IsOrderState is off: a quote, "
                f"account or line-item state), so an order cannot be set to it; usable: "
                f"{', '.join(usable)}"
            )
        return row

    def check_states(self, kind: str, names: list[str]) -> list[str]:
        """Problems with ``names`` as states of ``kind`` in this store (empty: all fine)."""
        problems = []
        for name in names:
            try:
                self.state(kind, name)
            except exc.DataError as error:
                problems.append(str(error))
        return problems

    # --- orders ------------------------------------------------------------------------------
    def _read_order(self, path: str, *, operation: str, expand: tuple[str, ...], label: object):
        body = self.request(
            "GET", path, operation=operation, params=build_params(expand=expand, fresh=True)
        )
        order = (body or {}).get("Order")
        if not order:
            raise exc.NotFound(f"Znode order {label} does not exist")
        return order

    def get_order(self, order_id: int, *, expand: tuple[str, ...] = ORDER_EXPANDS) -> dict:
        return self._read_order(
            f"orders/{int(order_id)}", operation="znode.order.get", expand=expand, label=order_id
        )

    def get_order_by_number(self, order_number: str) -> dict:
        return self._read_order(
            f"orders/getbyordernumber/{_path(order_number)}",
            operation="znode.order.get_by_number",
            expand=ORDER_EXPANDS,
            label=order_number,
        )

    def list_orders(
        self,
        *,
        filters: Filters | None = None,
        since: datetime | None = None,
        page_size: int = 50,
        max_pages: int = 1000,
    ) -> Iterator[dict]:
        """Order list rows (no line items), oldest first, through every page;
        ``since``: dated at or after that minute."""
        return self._list_pages(ORDER_LIST, filters, since, page_size, max_pages)

    def _since_filter(self, column: str, since: datetime) -> tuple[str, str, datetime]:
        """``column`` at or after the minute of ``since``. Znode compares dates in the
        store server's local time, no offset, and at minute precision (§3.2, §12):
        seconds in the value (or ``gt``) would make the server drop the rows of that
        minute; start at the minute."""
        local = dj_timezone.localtime(since, self.timezone) if since.tzinfo else since
        return (column, "ge", local.replace(tzinfo=None, second=0, microsecond=0))

    def _list_pages(
        self,
        route: ListRoute,
        filters: Filters | None,
        since: datetime | None,
        page_size: int,
        max_pages: int,
    ) -> Iterator[dict]:
        """The rows of a list route, page after page (1-based, §2.3) until a 204 (no
        rows, or past the end: §12), an empty page or the last of ``TotalPages``
        (given at the top level and again in the list model, §2.4)."""
        filters = list(filters or [])
        if since is not None:
            filters.append(self._since_filter(route.date_column, since))
        for index in range(1, max_pages + 1):
            body = self.request(
                "GET",
                route.path,
                operation=route.operation,
                params=build_params(
                    filters=filters, sort=list(route.sort), page=(index, page_size), fresh=True
                ),
            )
            if body is None:
                return  # 204: no (more) rows
            listed = body.get(route.list_key) or {}
            if route.rows_key:
                rows = listed.get(route.rows_key) or []
            else:  # the rows sit right under list_key; paging only at the top level
                rows, listed = (listed if isinstance(listed, list) else []), {}
            yield from rows
            total_pages = body.get("TotalPages") or listed.get("TotalPages")
            if not rows or (total_pages is not None and index >= int(total_pages)):
                return

    def update_order_state(
        self, *, order_number: str, state_name: str, tracking_number: str = ""
    ) -> dict:
        """Set the order state by name, verified, never losing the tracking number.

        ``orders/updateorderstatus`` takes the state id and the tracking number in
        the same body and overwrites ``TrackingNumber`` with it (§3.1), so the number
        travels inside the write: the one Znode shows now, or ``tracking_number``
        (the caller's persisted copy) when Znode shows none, e.g. after an earlier
        write cleared it and its answer was lost. A retry that finds the state already
        set still restores a missing number.
        """
        row = self.state("order", state_name)  # refuses a name Znode would ignore
        before = self.get_order_by_number(order_number)
        tracking = str(before.get("TrackingNumber") or "") or tracking_number
        if str(before.get("OrderState") or "").upper() != str(row["OrderStateName"]).upper():
            body = self.request(
                "PUT",
                "orders/updateorderstatus",
                operation="znode.order.update_state",
                json={
                    "OmsOrderId": int(before["OmsOrderId"]),
                    "OmsOrderDetailsId": before.get("OmsOrderDetailsId"),
                    "OmsOrderStateId": int(row["id"]),
                    "TrackingNumber": tracking or None,
                },
            )
            if not self._is_success(body):
                raise exc.BusinessRuleError(
                    f"Znode refused the state {state_name} for {order_number}"
                )
        after = self.get_order_by_number(order_number)
        if str(after.get("OrderState") or "").upper() != str(row["OrderStateName"]).upper():
            raise exc.BusinessRuleError(
                f"Znode kept order {order_number} in {after.get('OrderState')!r} instead of "
                f"{state_name!r}"
            )
        if tracking and not after.get("TrackingNumber"):
            self.update_tracking_number(order_id=after["OmsOrderId"], tracking_number=tracking)
            after["TrackingNumber"] = tracking
        return after

    def update_transaction_id(
        self, *, order_id: int, transaction_id: str, shown: str | None = None
    ) -> bool:
        """Set the order's ``TransactionId`` (the gateway id, §3.3) unless it already
        holds it (``shown``: what the caller read; None reads it). Returns whether a
        write was made."""
        if shown is None:
            shown = order_from_wire(self.get_order(order_id, expand=())).transaction_id
        if shown == transaction_id:
            return False
        self._get_write(
            f"orders/updateordertransactionid/{int(order_id)}/{_path(transaction_id)}",
            operation="znode.order.update_transaction_id",
            refused=f"Znode did not store transaction id for {order_id}",
        )
        return True

    def update_tracking_number(self, *, order_id: int, tracking_number: str) -> None:
        self._get_write(
            f"orders/updatetrackingnumber/{int(order_id)}/{_path(tracking_number)}",
            operation="znode.order.update_tracking",
            refused=f"Znode did not store tracking number for {order_id}",
        )

    def update_payment_status(
        self, *, order_id: int, status_name: str, shown: str | None = None
    ) -> bool:
        """Set the payment status by name; False when ``shown`` (the order's payment
        status as the caller read it) already is that status."""
        row = self.state("payment", status_name)
        shown = shown or ""
        if shown and shown.casefold() == str(row["Name"]).casefold():
            return False
        self._get_write(
            f"orders/updateorderpaymentstatus/{int(order_id)}/{_path(row['Name'])}",
            operation="znode.order.update_payment_status",
            refused=f"Znode did not set payment status {status_name}",
        )
        return True

    def local_time(self, moment: datetime) -> str:
        """A moment as Znode wants it: store-local wall time, no offset (§2.2)."""
        if moment.tzinfo is not None:
            moment = dj_timezone.localtime(moment, self.timezone)
        return moment.strftime("%Y-%m-%dT%H:%M:%S")

    def payment_history(self, order_id: int) -> list[dict]:
        """The order's payment history rows, read fresh."""
        return history_rows(self.get_order(order_id, expand=()))

    def record_payment(
        self,
        *,
        order_id: int,
        transaction_reference: str,
        amount: Decimal,
        status: str,
        payment_setting_id: int,
        transaction_date: datetime,
        remaining_amount: Decimal = Decimal(0),
        baseline: Callable[[int], int] | None = None,
        history: Sequence[PaymentRecord] | None = None,
    ) -> bool:
        """Add a payment record once. Returns False when it was already there.

        ``order/saveorderpaymentdetail`` always inserts (§12), so the history is read
        first. Rows normally carry ``TransactionReference`` and ours is found by it.
        Some 9.x builds leave it out of the model; then ``baseline`` tells ours from a
        customer's genuine second payment of the same amount: given how many rows of
        this amount and status the order has now, it returns how many it had before
        our first try (the caller persists the first count it is given). The write is
        ours when there are more such rows than that. ``history``: the order's records
        as the caller read them, where it knows no record of ours can be missing from
        them (spares a read); None reads them fresh.
        """
        if len(transaction_reference) > TRANSACTION_REFERENCE_LIMIT:
            raise exc.DataError(f"transaction reference over 50 chars: {transaction_reference}")
        if history is None:
            history = payment_records(self.get_order(order_id, expand=()))
        if history_has_references(history):
            if any(r.reference == transaction_reference for r in history):
                return False
        elif baseline is not None:
            now = matching_rows(history, amount, status)
            if now > baseline(now):
                return False
        body = self.request(
            "POST",
            "order/saveorderpaymentdetail",
            operation="znode.order.record_payment",
            json={
                "OmsOrderId": int(order_id),
                "TransactionReference": transaction_reference,
                "Total": Decimal(amount),
                "TransactionStatus": status,
                "TransactionDate": self.local_time(transaction_date),
                "PaymentSettingId": int(payment_setting_id),
                "RemainingOrderAmount": Decimal(remaining_amount),
            },
        )
        if not self._is_success(body):
            raise exc.BusinessRuleError(f"Znode refused the payment record for order {order_id}")
        return True

    def add_order_note(
        self,
        *,
        order_id: int,
        note: str,
        dedupe_key: str = "",
        details_id: int | None = None,
        first: bool = False,
    ) -> bool:
        """Add a note once. Returns False when a note with ``dedupe_key`` already exists.

        ``orders/addordernote`` always inserts, so a retry after a lost response would
        write the note twice; the key is appended to the text and looked up first
        (unless ``first``: the caller knows this is the key's first write).
        """
        if not note.strip():
            raise exc.DataError("an order note cannot be empty")
        marker = f" [ref:{dedupe_key}]" if dedupe_key else ""
        if (
            marker
            and not first
            and any(marker in str(n.get("Notes")) for n in self.order_notes(order_id=order_id))
        ):
            return False
        if not details_id:  # notes are keyed by the order's details row (§3.1)
            details_id = self.get_order(order_id, expand=()).get("OmsOrderDetailsId")
        if not details_id:
            raise exc.DataError(f"Znode order {order_id} has no OmsOrderDetailsId")
        text = note[: NOTE_LIMIT - len(marker)] + marker
        body = self.request(
            "POST",
            "orders/addordernote",
            operation="znode.order.add_note",
            json={"OmsOrderDetailsId": details_id, "OmsQuoteId": 0, "Notes": text},
        )
        if not self._is_success(body):
            raise exc.BusinessRuleError(f"Znode did not store the note on order {order_id}")
        return True

    def order_notes(self, *, order_id: int) -> list[dict]:
        body = self.request(
            "GET",
            f"orders/getordernoteslist/{int(order_id)}/0",
            operation="znode.order.notes",
            params=build_params(fresh=True),
        )
        return (body or {}).get("OrderNotesList") or []

    def add_order_history(
        self, *, order_details_id: int, message: str, transaction_id: str, amount: Decimal
    ) -> None:
        """Add a row to the order's history, as Znode's admin records a refund (§5.1):
        ``amount`` as given (the caller passes a refund negative), ``message`` cut to
        the note limit. Always inserts: a caller that may retry puts a marker in the
        message and looks for it first (:meth:`order_history_messages`)."""
        body = self.request(
            "POST",
            "orders/createorderhistory",
            operation="znode.order.add_history",
            json={
                "OmsOrderDetailsId": int(order_details_id),
                "Message": message[:NOTE_LIMIT],
                "TransactionId": transaction_id,
                "OrderAmount": Decimal(amount),
            },
        )
        if body is None or ("IsSuccess" in body and not body["IsSuccess"]):
            raise exc.BusinessRuleError(
                f"Znode did not store the history of order details {order_details_id}"
            )

    def order_history_messages(self, order_id: int) -> list[str]:
        """The messages of the order's history, read fresh (``znodeomshistories``).

        ``OrderHistory`` is a dictionary in OrderModel (§3.3; the sandbox keys it by
        the row's date); a list of rows carrying ``Message`` is read as well."""
        history = self.get_order(order_id, expand=ORDER_HISTORY_EXPANDS).get("OrderHistory")
        if isinstance(history, dict):
            values = list(history.values())
        elif isinstance(history, list):
            values = [row.get("Message") if isinstance(row, dict) else row for row in history]
        else:
            values = []
        return [str(value) for value in values if value not in (None, "")]

    # --- customers ----------------------------------------------------------------------------
    def get_customer(self, *, user_id: int, portal_id: int | None) -> dict:
        """The user (UserModel, §6) read fresh, its ``Addresses`` filled from
        ``customer/addresslist`` (Znode answers null there, §12). ``portal_id``:
        ``useraccounts/{userId}/{portalId}``; None: the user whatever its store,
        ``users/getcustomeraccountdetails/{userId}``."""
        if portal_id is None:
            path = f"users/getcustomeraccountdetails/{int(user_id)}"
        else:
            path = f"useraccounts/{int(user_id)}/{int(portal_id)}"
        body = self.request(
            "GET", path, operation="znode.customer.get", params=build_params(fresh=True)
        )
        user = (body or {}).get("User")
        if not user:
            raise exc.NotFound(f"Znode user {user_id} does not exist")
        user["Addresses"] = self.list_addresses(user_id=user_id)
        return user

    def update_customer(
        self, *, user_id: int, portal_id: int | None, changes: dict[str, Any]
    ) -> dict:
        """Read, modify, write back the full model: Znode nulls omitted fields (§12).
        Returns the model as written (Znode echoes the posted model, not the stored
        row; the caller fingerprints exactly what was written)."""
        current = self.get_customer(user_id=user_id, portal_id=portal_id)
        current.pop("Addresses", None)
        model = {**current, **changes, "UserId": int(user_id)}
        self.request("PUT", "customeraccount/update", operation="znode.customer.update", json=model)
        return model

    def list_customers(
        self,
        *,
        since: datetime | None = None,
        after_user_id: int = 0,
        page_size: int = 100,
        on_total: Callable[[int], None] | None = None,
    ) -> Iterator[dict]:
        """``customeraccount/list`` rows (UserModel, no addresses) by ``UserId``,
        ascending, after ``after_user_id``; ``since``: modified at or after that minute.

        Read page by page lazily, each page asking for the users after the last one
        read (``userid gt``, page 1): a cursor of the last ``UserId`` done resumes
        exactly there, and a user changed or added meanwhile never shifts a row out of
        the pages still to come. The route's ``{loggedUserAccountId}`` is the
        connection's ``acting_user_id``; without one 0, the user no portal restriction
        is added for (as with no ``Znode-UserId``, §1.3). ``on_total`` is told the
        first page's ``TotalResults`` (the users still to come), when the store says
        (the field is nullable, §2.4)."""
        acting = int(self.settings.get("acting_user_id") or 0)
        last = int(after_user_id)
        told = on_total is None
        window = [self._since_filter("modifieddate", since)] if since is not None else []
        while True:
            body = self.request(
                "GET",
                f"customeraccount/list/{acting}",
                operation=CUSTOMER_LIST_OPERATION,
                params=build_params(
                    filters=[*window, ("userid", "gt", last)],
                    sort=[("userid", "asc")],
                    page=(1, page_size),
                    fresh=True,
                ),
            )
            rows = [r for r in ((body or {}).get("Users") or []) if isinstance(r, dict)]
            if not told:
                told = True
                total = (body or {}).get("TotalResults")
                if isinstance(total, int) and not isinstance(total, bool) and total >= 0:
                    on_total(total)
            for row in rows:
                user_id = int(row.get("UserId") or 0)
                if user_id <= last:
                    # The store ignored the userid filter or the sort: going on could
                    # loop forever or skip users; stopping quietly would look complete.
                    raise exc.DataError(
                        f"{CUSTOMER_LIST_OPERATION}: user {user_id} came after user {last}; "
                        "Znode did not apply userid~gt / sort=userid~asc"
                    )
                last = user_id
                yield row
            if len(rows) < page_size:
                return

    def list_addresses(
        self,
        *,
        user_id: int | None = None,
        user_ids: Sequence[int] = (),
        since: datetime | None = None,
    ) -> list[dict]:
        """``customer/addresslist`` rows (AddressModel), through every page: of one
        user (``userid eq``), of several (``userid in``, values joined with ``^``,
        §2.3), and/or attached to their user at or after the minute of ``since``.

        9.x filters and sorts this list on the user-address links (ZnodeUserAddress,
        §6), so ``since`` finds the addresses *added* since then: editing an address
        moves its row's ``ModifiedDate`` but not its link's. With ``since`` rows come
        in that date's order, else by ``AddressId`` (per read of at most
        :data:`USER_IDS_PER_READ` users). Naming no user and no ``since`` is refused
        (it would read the store's whole address book)."""
        if user_id is None and not user_ids and since is None:
            raise ValueError("list_addresses needs user_id, user_ids or since")
        route = ADDRESS_LIST if since is None else ADDRESS_CHANGES
        base: Filters = [] if user_id is None else [("userid", "eq", int(user_id))]
        ids = sorted({int(i) for i in user_ids})
        chunks = [ids[i : i + USER_IDS_PER_READ] for i in range(0, len(ids), USER_IDS_PER_READ)]
        rows: list[dict] = []
        for chunk in chunks or [None]:
            filters = base if chunk is None else [*base, ("userid", "in", chunk)]
            rows.extend(
                row
                for row in self._list_pages(route, filters, since, 100, 1000)
                if isinstance(row, dict)
            )
        return rows

    def _address_row(self, *, user_id: int, address_id: int) -> dict:
        found = next(
            (
                row
                for row in self.list_addresses(user_id=user_id)
                if int(row.get("AddressId") or 0) == int(address_id)
            ),
            None,
        )
        if found is None:
            raise exc.NotFound(f"Znode user {user_id} has no address {address_id}")
        return found

    def update_address(self, *, user_id: int, address_id: int, changes: dict[str, Any]) -> dict:
        """Change some fields of one address row.

        ``PUT customer/updatecustomeraddress`` replaces the whole row, so an omitted
        field becomes null (§6, §12): the stored row is read, changed and written back
        whole. It answers 201, and a default flag set here is cleared on the user's
        other addresses. Returns the full model as written."""
        current = self._address_row(user_id=user_id, address_id=address_id)
        model = {**current, **changes, "AddressId": int(address_id), "UserId": int(user_id)}
        self.request(
            "PUT",
            "customer/updatecustomeraddress",
            operation="znode.customer.update_address",
            json=model,
        )
        return model

    def create_address(self, *, user_id: int, values: dict[str, Any]) -> dict:
        """Add an address to the user's address book (``POST
        customer/createcustomeraddress``, answers 201); returns the created row.

        Always inserts: a caller that may retry looks for its address first. A
        default flag set in ``values`` is cleared on the user's other addresses. Ids
        in ``values`` are dropped (a model with an ``AddressId`` is not inserted), and
        ``DontAddUpdateAddress`` is sent false: list rows carry it true, and with it
        the new address would not be linked to the user."""
        model = {
            **{k: v for k, v in values.items() if k not in ("AddressId", "UserAddressId")},
            "UserId": int(user_id),
            "DontAddUpdateAddress": False,
        }
        body = self.request(
            "POST",
            "customer/createcustomeraddress",
            operation="znode.customer.create_address",
            json=model,
        )
        created = (body or {}).get("Address")
        if not created or not int(created.get("AddressId") or 0):
            raise exc.BusinessRuleError(f"Znode did not create the address of user {user_id}")
        return created

    # --- returns ------------------------------------------------------------------------
    def list_returns(
        self,
        *,
        filters: Filters | None = None,
        since: datetime | None = None,
        page_size: int = 50,
        max_pages: int = 1000,
    ) -> Iterator[dict]:
        """``rmareturn/list`` rows (no line items, no history), least recently modified
        first, through every page; ``since``: modified at or after that minute."""
        return self._list_pages(RETURN_LIST, filters, since, page_size, max_pages)

    def get_return(self, return_number: str) -> dict:
        """A return with its line items: they come only with ``expand=returnitemlist``,
        and a return written back without them is refused (§5.1)."""
        body = self.request(
            "GET",
            f"rmareturn/getreturndetails/{_path(return_number)}",
            operation="znode.return.get",
            params=build_params(expand=RETURN_EXPANDS, fresh=True),
        )
        found = (body or {}).get("Return")
        if not found:
            raise exc.NotFound(f"Znode return {return_number} does not exist")
        return found

    def update_return_state(self, *, return_number: str, state_name: str, notes: str = "") -> dict:
        """Save the return in the state named, as Znode's admin does (§5.1): the model
        read with its line items (a model without them is refused), ``IsAdminRequest``
        on, and ``IsRefundProcess`` on exactly when the state is Refund Processed (80;
        the server takes that flag as the state). ``notes``: set as the model's
        ``Notes``, which Znode adds to the return's notes when it changes.

        A return already in that state (with that note among its notes, if one is
        given) is not saved again: a retry after a lost answer writes nothing twice.
        Returns the model as saved (or as found)."""
        row = self.state("return", state_name)
        current = self.get_return(return_number)
        note = notes.strip()[:NOTE_LIMIT]
        if return_from_wire(current).state_id == int(row["id"]) and (
            not note or note in _return_notes(current)
        ):
            return current
        if not current.get("ReturnLineItems"):
            raise exc.DataError(
                f"Znode return {return_number} came without its line items; writing it back "
                "would be refused"
            )
        model = {
            **current,
            "RmaReturnStateId": row["id"],
            "ReturnStatus": row.get("ReturnStateName") or current.get("ReturnStatus"),
            "IsAdminRequest": True,
            "IsRefundProcess": int(row["id"]) == self._refund_processed_state_id(),
        }
        if note:
            model["Notes"] = note
        body = self.request(
            "POST", "rmareturn/saveorderreturn", operation="znode.return.update_state", json=model
        )
        if body is None:
            raise exc.BusinessRuleError(f"Znode did not update return {return_number}")
        return body.get("Return") or model

    def _refund_processed_state_id(self) -> int:
        """The id of Refund Processed: by name in this store's list, else the code's
        own value (``ZnodeRmaReturnStateEnum``, §5.1)."""
        row = self._vocabulary("return").get(REFUND_PROCESSED_STATE)
        return int(row["id"]) if row else REFUND_PROCESSED_STATE_ID

    def add_return_history(
        self, *, return_details_id: int, transaction_id: str, amount: Decimal, message: str
    ) -> None:
        body = self.request(
            "POST",
            "rmareturn/createreturnhistory",
            operation="znode.return.add_history",
            json=[
                {
                    "RmaReturnDetailsId": int(return_details_id),
                    "TransactionId": transaction_id,
                    "ReturnAmount": -abs(Decimal(amount)),
                    "Message": message[:NOTE_LIMIT],
                }
            ],
        )
        if body is not None and body.get("HasError"):
            raise exc.BusinessRuleError(f"Znode refused the return history: {body}")
