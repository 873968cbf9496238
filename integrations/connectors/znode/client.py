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
  updates replace the whole row (read-modify-write), length limits.

Every call is throttled per connection, has a timeout and is recorded as an ApiCall.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from django.utils import timezone as dj_timezone

from integrations import exceptions as exc
from integrations.http import error_for_status, http_request, parse_retry_after
from integrations.jsonutil import dumps_exact
from integrations.redaction import redact_text
from integrations.throttle import throttle

if TYPE_CHECKING:
    import requests

    from integrations.models import Connection

ORDER_EXPANDS = ("omsorderstate", "omspaymentstate", "paymenttype", "ordernotes", "orderlineitems")
NOTE_LIMIT = 500
EXTERNAL_ID_LIMIT = 50
TRANSACTION_REFERENCE_LIMIT = 50
VOCABULARY_TTL = 300.0
# ErrorCodes.cs: 9 = ExceptionalError (unhandled); others (1 NullModel, 2 AlreadyExist,
# 5 InvalidData, 6 NotFound, 7 NotPermitted, 8 IdLessThanOne, 301 ...) are business.
TRANSIENT_ERROR_CODES = frozenset({9})

_tokens: dict[int, tuple[str, float]] = {}
_vocabularies: dict[tuple[int, str], tuple[dict[str, dict], float]] = {}
_cache_lock = threading.Lock()


def forget_cached(connection_id: int | None = None) -> None:
    """Drop cached tokens and vocabularies (all, or one connection's)."""
    with _cache_lock:
        for store in (_tokens, _vocabularies):
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

    def _bearer(self, *, renew: bool = False) -> str:
        now = time.time()
        with _cache_lock:
            cached = _tokens.get(self.connection.pk)
        if cached and not renew and cached[1] > now:
            return f"Bearer {cached[0]}"
        token, expires_in = self._fetch_token()
        # Refresh a little before expiry so an in-flight call never carries a dead token.
        margin = min(60.0, expires_in / 5)
        with _cache_lock:
            _tokens[self.connection.pk] = (token, now + expires_in - margin)
        return f"Bearer {token}"

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

    def _headers(self, *, renew: bool = False) -> dict[str, str]:
        headers = {
            "Accept": "application/json",
            "Authorization": self._bearer(renew=renew) if self.uses_oauth else self._basic(),
        }
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
            if response.status_code == 401 and self.uses_oauth and attempt == 1:
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

    @staticmethod
    def _is_success(body: dict[str, Any] | None) -> bool:
        if not body:
            return False
        if "IsSuccess" in body:
            return bool(body["IsSuccess"])
        model = body.get("booleanModel") or {}
        return bool(model.get("IsSuccess"))

    # --- vocabularies --------------------------------------------------------------------
    def _vocabulary(self, kind: str) -> dict[str, dict]:
        key = (self.connection.pk, kind)
        now = time.time()
        with _cache_lock:
            cached = _vocabularies.get(key)
        if cached and cached[1] > now:
            return cached[0]
        if kind == "order":
            body = self.request("GET", "orderstate/list", operation="znode.order_states")
            rows = (body or {}).get("OrderStates") or []
            names = {
                str(r["OrderStateName"]).upper(): {"id": r["OmsOrderStateId"], **r} for r in rows
            }
        elif kind == "payment":
            body = self.request(
                "GET", "orders/getpaymentstatelist", operation="znode.payment_states"
            )
            rows = (body or {}).get("PaymentStateList") or []
            names = {str(r["Name"]).upper(): {"id": r["OmsPaymentStateId"], **r} for r in rows}
        else:
            body = self.request(
                "GET", "rmareturn/getreturnstatuslist", operation="znode.return_states"
            )
            rows = (body or {}).get("ReturnStates") or []
            names = {
                str(r["ReturnStateName"]).upper(): {"id": r["RmaReturnStateId"], **r} for r in rows
            }
        with _cache_lock:
            _vocabularies[key] = (names, now + VOCABULARY_TTL)
        return names

    def order_states(self) -> dict[str, dict]:
        """Order states by upper-case name (cached)."""
        return self._vocabulary("order")

    def state(self, kind: str, name: str) -> dict:
        """A state row by name (case-insensitive), or DataError naming what exists."""
        names = self._vocabulary(kind)
        row = names.get(name.upper())
        if row is None:
            forget_cached(self.connection.pk)  # maybe an operator just added it
            names = self._vocabulary(kind)
            row = names.get(name.upper())
        if row is None:
            raise exc.DataError(
                f"Znode has no {kind} state named {name!r}; it has: {', '.join(sorted(names))}"
            )
        return row

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
        filters: list[tuple[str, str, Any]] | None = None,
        since: datetime | None = None,
        page_size: int = 50,
        max_pages: int = 1000,
    ) -> Iterator[dict]:
        """Order list rows (no line items), oldest first, through every page."""
        filters = list(filters or [])
        if since is not None:
            # Znode compares OrderDate in the store server's local time, no offset.
            local = dj_timezone.localtime(since, self.timezone) if since.tzinfo else since
            filters.append(("orderdate", "ge", local.replace(tzinfo=None)))
        for index in range(1, max_pages + 1):
            body = self.request(
                "GET",
                "orders/list",
                operation="znode.order.list",
                params=build_params(
                    filters=filters,
                    sort=[("orderdate", "asc")],
                    page=(index, page_size),
                    fresh=True,
                ),
            )
            if body is None:
                return  # 204: no (more) rows
            rows = (body.get("OrderList") or {}).get("Orders") or []
            yield from rows
            total_pages = body.get("TotalPages") or (body.get("OrderList") or {}).get("TotalPages")
            if not rows or (total_pages is not None and index >= int(total_pages)):
                return

    def update_order_state(
        self, *, order_number: str, state_name: str, note: str = "", external_id: str = ""
    ) -> dict:
        """Set the order state by name, verified, keeping the tracking number."""
        self.state("order", state_name)  # fail fast on a name Znode would silently ignore
        before = self.get_order_by_number(order_number)
        payload: dict[str, Any] = {"OmsOrderNumber": order_number, "OrderStateName": state_name}
        if note:
            payload["OrderNotes"] = note[:NOTE_LIMIT]
        if external_id:
            if len(external_id) > EXTERNAL_ID_LIMIT:
                raise exc.DataError(f"external id longer than {EXTERNAL_ID_LIMIT}: {external_id}")
            payload["ExternalId"] = external_id
        body = self.request(
            "PUT",
            "orders/updateorderdetailsbyordernumber",
            operation="znode.order.update_state",
            json=payload,
        )
        if not self._is_success(body):
            raise exc.BusinessRuleError(f"Znode refused the state {state_name} for {order_number}")
        after = self.get_order_by_number(order_number)
        if str(after.get("OrderState") or "").upper() != state_name.upper():
            raise exc.BusinessRuleError(
                f"Znode kept order {order_number} in {after.get('OrderState')!r} instead of "
                f"{state_name!r}"
            )
        tracking = before.get("TrackingNumber")
        if tracking and not after.get("TrackingNumber"):
            self.update_tracking_number(order_id=after["OmsOrderId"], tracking_number=tracking)
            after["TrackingNumber"] = tracking
        return after

    def update_tracking_number(self, *, order_id: int, tracking_number: str) -> None:
        body = self.request(
            "GET",
            f"orders/updatetrackingnumber/{int(order_id)}/{_path(tracking_number)}",
            operation="znode.order.update_tracking",
        )
        if not self._is_success(body):
            raise exc.BusinessRuleError(f"Znode did not store tracking number for {order_id}")

    def update_payment_status(self, *, order_id: int, status_name: str) -> None:
        row = self.state("payment", status_name)
        body = self.request(
            "GET",
            f"orders/updateorderpaymentstatus/{int(order_id)}/{_path(row['Name'])}",
            operation="znode.order.update_payment_status",
        )
        if not self._is_success(body):
            raise exc.BusinessRuleError(f"Znode did not set payment status {status_name}")

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
    ) -> bool:
        """Add a payment record once. Returns False when it was already there.

        ``order/saveorderpaymentdetail`` always inserts, so a retried call would
        record the payment twice: the payment history is read first.
        """
        if len(transaction_reference) > TRANSACTION_REFERENCE_LIMIT:
            raise exc.DataError(f"transaction reference over 50 chars: {transaction_reference}")
        if self.payment_recorded(
            order_id=order_id,
            transaction_reference=transaction_reference,
            amount=amount,
            status=status,
        ):
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
                "TransactionDate": transaction_date.strftime("%Y-%m-%dT%H:%M:%S"),
                "PaymentSettingId": int(payment_setting_id),
                "RemainingOrderAmount": Decimal(remaining_amount),
            },
        )
        if not self._is_success(body):
            raise exc.BusinessRuleError(f"Znode refused the payment record for order {order_id}")
        return True

    def payment_recorded(
        self,
        *,
        order_id: int,
        transaction_reference: str,
        amount: Decimal | None = None,
        status: str = "",
    ) -> bool:
        """Whether the order's payment history already holds this payment.

        The history rows normally carry ``TransactionReference``. Some 9.x builds
        leave it out of the model (the stored procedure selects it, the model does
        not map it); then a row with the same amount and status counts as ours.
        """
        history = self.get_order(order_id).get("PaymentHistoryList") or []
        if any("TransactionReference" in row for row in history):
            return any(
                str(row.get("TransactionReference")) == transaction_reference for row in history
            )
        if amount is None:
            return False
        return any(
            Decimal(str(row.get("Amount"))) == Decimal(amount)
            and str(row.get("TransactionStatus") or "").lower() == status.lower()
            for row in history
            if row.get("Amount") is not None
        )

    def add_order_note(self, *, order_id: int, note: str, dedupe_key: str = "") -> bool:
        """Add a note once. Returns False when a note with ``dedupe_key`` already exists.

        ``orders/addordernote`` always inserts, so a retry after a lost response would
        write the note twice; the key is appended to the text and looked up first.
        """
        if not note.strip():
            raise exc.DataError("an order note cannot be empty")
        marker = f" [ref:{dedupe_key}]" if dedupe_key else ""
        if marker and any(
            marker in str(n.get("Notes")) for n in self.order_notes(order_id=order_id)
        ):
            return False
        order = self.get_order(order_id, expand=())
        details_id = order.get("OmsOrderDetailsId")
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

    # --- customers ----------------------------------------------------------------------------
    def get_customer(self, *, user_id: int, portal_id: int) -> dict:
        body = self.request(
            "GET",
            f"useraccounts/{int(user_id)}/{int(portal_id)}",
            operation="znode.customer.get",
            params=build_params(fresh=True),
        )
        user = (body or {}).get("User")
        if not user:
            raise exc.NotFound(f"Znode user {user_id} does not exist")
        # useraccounts returns Addresses null; addresses come from their own list.
        user["Addresses"] = self.list_addresses(user_id=user_id)
        return user

    def update_customer(self, *, user_id: int, portal_id: int, changes: dict[str, Any]) -> dict:
        """Read, modify, write back the full model: Znode nulls omitted fields."""
        current = self.get_customer(user_id=user_id, portal_id=portal_id)
        current.pop("Addresses", None)
        model = {**current, **changes}
        body = self.request(
            "PUT", "customeraccount/update", operation="znode.customer.update", json=model
        )
        return (body or {}).get("User") or model

    def list_addresses(self, *, user_id: int) -> list[dict]:
        body = self.request(
            "GET",
            "customer/addresslist",
            operation="znode.customer.addresses",
            params=build_params(filters=[("userid", "eq", int(user_id))], fresh=True),
        )
        return (body or {}).get("AddressList") or []

    def update_address(self, *, address: dict[str, Any]) -> dict:
        body = self.request(
            "PUT",
            "customer/updatecustomeraddress",
            operation="znode.customer.update_address",
            json=address,
        )
        return (body or {}).get("Address") or address

    # --- returns ------------------------------------------------------------------------
    def list_returns(self, *, filters: list[tuple[str, str, Any]] | None = None) -> list[dict]:
        body = self.request(
            "GET",
            "rmareturn/list",
            operation="znode.return.list",
            params=build_params(filters=filters, fresh=True),
        )
        return ((body or {}).get("ReturnList") or {}).get("Returns") or []

    def get_return(self, return_number: str) -> dict:
        body = self.request(
            "GET",
            f"rmareturn/getreturndetails/{_path(return_number)}",
            operation="znode.return.get",
            params=build_params(fresh=True),
        )
        found = (body or {}).get("Return")
        if not found:
            raise exc.NotFound(f"Znode return {return_number} does not exist")
        return found

    def update_return_state(self, *, return_number: str, state_name: str) -> dict:
        row = self.state("return", state_name)
        current = self.get_return(return_number)
        model = {
            **current,
            "RmaReturnStateId": row["id"],
            "IsAdminRequest": True,
            "IsRefundProcess": row["id"] == self.state("return", "REFUND PROCESSED")["id"]
            if "REFUND PROCESSED" in self._vocabulary("return")
            else False,
        }
        body = self.request(
            "POST", "rmareturn/saveorderreturn", operation="znode.return.update_state", json=model
        )
        if body is None or body.get("HasError"):
            raise exc.BusinessRuleError(f"Znode did not update return {return_number}")
        return (body.get("Return") or model) if isinstance(body, dict) else model

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
