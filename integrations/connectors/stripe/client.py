"""The one place that speaks to Stripe: a StripeClient per connection (pinned API
version, explicit network retries and timeouts), every HTTP attempt recorded as an
ApiCall, SDK errors mapped onto our taxonomy, deterministic idempotency keys passed
through, and our own backoff on 429 (the SDK does not retry those).

Results are plain dicts (``to_dict()``): StripeObject is not a dict since v15.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import orjson
import stripe

from integrations.connectors.stripe.constants import API_VERSION
from integrations.connectors.stripe.mapping import BALANCE_TRANSACTION_EXPAND
from integrations.connectors.stripe.transport import Urllib3Client
from integrations.kernel import exceptions as exc
from integrations.kernel.exceptions import PaymentDeclined
from integrations.kernel.http import CallRecord, calls_store, held_calls, record_api_call
from integrations.kernel.throttle import throttle

if TYPE_CHECKING:
    from integrations.kernel.types import Connection

_operation: ContextVar[str] = ContextVar("stripe_operation", default="")
_body_cut: ContextVar[int] = ContextVar("stripe_body_cut", default=0)
"""Responses longer than this (characters; 0: none) are recorded cut to it."""

# Our own pacing for 429s inside one call, before the job-level retry takes over.
RATE_LIMIT_BACKOFF = (0.5, 1.0, 2.0)
# Items per page of a list we read to the end (Stripe's maximum).
LIST_PAGE_SIZE = 100
# What an ApiCall keeps of a page of a large list (characters): the start of the page;
# its items are stored as rows of their own (a page of expanded balance transactions is
# some 300 KB).
LIST_PAGE_BODY_KEPT = 4096
# Pages of balance transactions read ahead while the caller matches and stores a batch
# (reconciliation's is 500: five pages).
LIST_READ_AHEAD = 5


def _sdk_debug_log_when_enabled() -> None:
    """stripe-python (16.x) formats every answer's whole body for its debug log before
    the logger is asked whether it logs debug at all (``_util.log_debug``: the body
    decoded, searched, repr'd): some 1.6 ms of a 270 KB page, at every level. Its
    requestor is given a ``log_debug`` that asks first and then does exactly what the
    SDK's does (``stripe.log``/``STRIPE_LOG`` = "debug" or the ``stripe`` logger at
    DEBUG still log every body)."""
    try:
        from stripe import _api_requestor, _util

        original = _util.log_debug
        console_level, logger = _util._console_log_level, _util.logger
        installed = _api_requestor.log_debug
    except (ImportError, AttributeError):  # another SDK layout: left as it is
        return
    if getattr(installed, "asks_first", False):
        return

    def log_debug(message: str, **params: Any) -> None:
        if console_level() == "debug" or logger.isEnabledFor(logging.DEBUG):
            original(message, **params)

    log_debug.asks_first = True  # type: ignore[attr-defined]
    _api_requestor.log_debug = log_debug


_sdk_debug_log_when_enabled()


class RecordingHTTPClient(Urllib3Client):
    """Records every HTTP attempt (the SDK's own retries included) and paces them."""

    def __init__(self, connection: Connection, timeout: float | tuple[float, float] = (5, 30)):
        super().__init__(timeout=timeout)
        self.connection = connection

    def request(self, method, url, headers, post_data=None):
        throttle(self.connection)
        headers = dict(headers or {})
        with record_api_call(
            connection=self.connection,
            method=method,
            url=url,
            operation=_operation.get(),
            idempotency_key=headers.get("Idempotency-Key", "") if method.lower() == "post" else "",
            request_headers=headers,
            request_body=post_data,
        ) as call:
            content, status, response_headers = super().request(method, url, headers, post_data)
            call.status_code = status
            cut = _body_cut.get()
            # A page of expanded balance transactions is ~1,000x the stored record: cut
            # before it is redacted (as text, by the secret patterns), not after.
            call.response_body = content[:cut] if cut and len(content) > cut else content
            return content, status, response_headers


def build_client(connection: Connection) -> stripe.StripeClient:
    api_key = connection.credential("api_key")
    if not api_key:
        raise exc.ConnectorConfigurationError(f"connection {connection.name} has no api_key")
    options: dict[str, Any] = {
        "stripe_version": connection.settings.get("api_version", API_VERSION),
        # StripeClient makes one attempt unless told otherwise (observed in 15.x/16.x).
        "max_network_retries": int(connection.settings.get("max_network_retries", 2)),
        "http_client": RecordingHTTPClient(connection),
    }
    if connection.base_url:
        options["base_addresses"] = {"api": connection.base_url.rstrip("/")}
    return stripe.StripeClient(api_key, **options)


def map_error(error: stripe.StripeError) -> exc.IntegrationError:
    """SDK exception → taxonomy (keeping the HTTP status). Card errors are business
    outcomes, not failures."""
    mapped = _map_error(error)
    mapped.http_status = error.http_status
    return mapped


def _map_error(error: stripe.StripeError) -> exc.IntegrationError:
    message = f"Stripe: {error.user_message or error}"
    if isinstance(error, stripe.CardError):
        body = getattr(error, "error", None)
        return PaymentDeclined(
            message,
            decline_code=getattr(body, "decline_code", None) or "",
            error_code=error.code or "",
            payment_intent=getattr(getattr(body, "payment_intent", None), "id", "")
            or _json_get(error, "payment_intent", "id"),
            charge=getattr(body, "charge", None) or _json_get(error, "charge"),
        )
    retry_after = _retry_after(error)
    if isinstance(error, stripe.RateLimitError):
        return exc.RateLimited(message, retry_after=retry_after)
    if isinstance(error, stripe.IdempotencyError):
        # Same key, different parameters: a bug in how we derive keys. Never retry.
        return exc.IdempotencyMismatch(f"idempotency key reused with other parameters: {message}")
    if isinstance(error, stripe.APIConnectionError):
        return exc.ConnectorUnavailable(message)
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
        return exc.Unauthorized(message)
    if isinstance(error, stripe.InvalidRequestError):
        if error.http_status == 404:
            return exc.NotFound(message)
        if error.http_status == 409:
            return exc.ConflictRetry(message)
        return exc.BadRequest(message)
    if (error.http_status and error.http_status >= 500) or isinstance(error, stripe.APIError):
        return exc.ConnectorUnavailable(message, retry_after=retry_after)
    return exc.PermanentError(message)


def _retry_after(error: stripe.StripeError) -> float | None:
    headers = error.headers or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _json_get(error: stripe.StripeError, *path: str) -> str:
    node: Any = (error.json_body or {}).get("error", {})
    for key in path:
        node = (
            node.get(key) if isinstance(node, Mapping) else node if isinstance(node, str) else None
        )
    return node if isinstance(node, str) else ""


class StripeGateway:
    """Typed operations the flows use. Every write takes a deterministic idempotency key."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.client = build_client(connection)

    def _call(self, operation: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        token = _operation.set(operation)
        try:
            for attempt, pause in enumerate((*RATE_LIMIT_BACKOFF, None)):
                try:
                    return fn(*args, **kwargs)
                except stripe.RateLimitError as error:
                    if pause is None:
                        raise map_error(error) from error
                    retry_after = _retry_after(error)
                    time.sleep(max(pause, min(retry_after or 0, 5.0)) * (1 + 0.1 * attempt))
                except stripe.StripeError as error:
                    raise map_error(error) from error
        finally:
            _operation.reset(token)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _options(idempotency_key: str | None) -> dict[str, Any]:
        return {"idempotency_key": idempotency_key} if idempotency_key else {}

    def _write(self, operation: str, fn, *args, params: dict, idempotency_key: str) -> dict:
        if not idempotency_key:
            raise exc.DataError(f"{operation}: every Stripe write needs an idempotency key")
        result = self._call(
            operation, fn, *args, params=params, options=self._options(idempotency_key)
        )
        return result.to_dict()

    def _read(self, operation: str, fn, *args, params: dict | None = None) -> dict:
        return self._call(operation, fn, *args, params=params or {}).to_dict()

    # --- customers -------------------------------------------------------------------
    def customer_create(self, *, params: dict, idempotency_key: str) -> dict:
        v1 = self.client.v1
        return self._write(
            "customer.create", v1.customers.create, params=params, idempotency_key=idempotency_key
        )

    def customer_update(self, customer_id: str, *, params: dict, idempotency_key: str) -> dict:
        v1 = self.client.v1
        return self._write(
            "customer.update",
            v1.customers.update,
            customer_id,
            params=params,
            idempotency_key=idempotency_key,
        )

    def customer_retrieve(self, customer_id: str, *, expand: list[str] = ()) -> dict:
        params = {"expand": list(expand)} if expand else {}
        return self._read(
            "customer.retrieve", self.client.v1.customers.retrieve, customer_id, params=params
        )

    def customer_search(self, *, query: str) -> list[dict]:
        """Customers matching a search query (first page: enough to find one)."""
        page = self._call(
            "customer.search",
            self.client.v1.customers.search,
            params={"query": query, "limit": 10},
        )
        return [c.to_dict() for c in page.data]

    def customer_payment_methods(self, customer_id: str, *, type: str = "card") -> list[dict]:
        """Every payment method of ``type`` attached to the customer, all pages
        (``GET /v1/customers/{id}/payment_methods``)."""
        return list(
            self._each(
                "customer.payment_methods",
                self.client.v1.customers.payment_methods.list,
                {"limit": LIST_PAGE_SIZE, "type": type},
                customer_id,
            )
        )

    def customer_list(self, *, email: str, most: int = 200) -> list[dict]:
        """The customers whose email is ``email``, whatever its case, all pages (at most
        ``most``). Stripe's ``email`` filter is case-sensitive, so the address is asked
        as given and, when it differs, in lower case (the form most stores keep); the
        answers are those whose email equals it ignoring case."""
        wanted = email.casefold()
        seen: dict[str, dict] = {}
        for asked in dict.fromkeys((email, email.lower())):
            for customer in self._each(
                "customer.list",
                self.client.v1.customers.list,
                {"email": asked, "limit": LIST_PAGE_SIZE},
            ):
                if str(customer.get("email") or "").casefold() == wanted:
                    seen.setdefault(str(customer.get("id")), customer)
                if len(seen) >= most:
                    return list(seen.values())
        return list(seen.values())

    # --- payment intents -------------------------------------------------------------------
    def payment_intent_create(self, *, params: dict, idempotency_key: str) -> dict:
        return self._write(
            "payment_intent.create",
            self.client.v1.payment_intents.create,
            params=params,
            idempotency_key=idempotency_key,
        )

    def payment_intents_since(self, *, created_gte: int, customer: str = "") -> Iterator[dict]:
        """Every PaymentIntent created since ``created_gte`` (of ``customer`` when given),
        newest first, auto-paging."""
        params: dict[str, Any] = {"created": {"gte": int(created_gte)}, "limit": 100}
        if customer:
            params["customer"] = customer
        yield from self._each("payment_intent.list", self.client.v1.payment_intents.list, params)

    def payment_intent_retrieve(self, payment_intent_id: str, *, expand: list[str] = ()) -> dict:
        params = {"expand": list(expand)} if expand else {}
        return self._read(
            "payment_intent.retrieve",
            self.client.v1.payment_intents.retrieve,
            payment_intent_id,
            params=params,
        )

    def payment_intent_update(
        self, payment_intent_id: str, *, params: dict, idempotency_key: str
    ) -> dict:
        return self._write(
            "payment_intent.update",
            self.client.v1.payment_intents.update,
            payment_intent_id,
            params=params,
            idempotency_key=idempotency_key,
        )

    def payment_intent_confirm(
        self, payment_intent_id: str, *, params: dict, idempotency_key: str
    ) -> dict:
        return self._write(
            "payment_intent.confirm",
            self.client.v1.payment_intents.confirm,
            payment_intent_id,
            params=params,
            idempotency_key=idempotency_key,
        )

    def payment_intent_capture(
        self, payment_intent_id: str, *, params: dict, idempotency_key: str
    ) -> dict:
        return self._write(
            "payment_intent.capture",
            self.client.v1.payment_intents.capture,
            payment_intent_id,
            params=params,
            idempotency_key=idempotency_key,
        )

    def payment_intent_cancel(
        self, payment_intent_id: str, *, params: dict, idempotency_key: str
    ) -> dict:
        return self._write(
            "payment_intent.cancel",
            self.client.v1.payment_intents.cancel,
            payment_intent_id,
            params=params,
            idempotency_key=idempotency_key,
        )

    # --- checkout sessions (the Stripe-hosted payment page) ----------------------------------
    def checkout_session_create(self, *, params: dict, idempotency_key: str) -> dict:
        return self._write(
            "checkout.session.create",
            self.client.v1.checkout.sessions.create,
            params=params,
            idempotency_key=idempotency_key,
        )

    def checkout_session_retrieve(self, session_id: str, *, expand: list[str] = ()) -> dict:
        params = {"expand": list(expand)} if expand else {}
        return self._read(
            "checkout.session.retrieve",
            self.client.v1.checkout.sessions.retrieve,
            session_id,
            params=params,
        )

    def checkout_session_expire(self, session_id: str, *, idempotency_key: str) -> dict:
        """Close an open hosted payment page (a complete or expired one is refused: 400)."""
        return self._write(
            "checkout.session.expire",
            self.client.v1.checkout.sessions.expire,
            session_id,
            params={},
            idempotency_key=idempotency_key,
        )

    # --- charges and refunds ---------------------------------------------------------------
    def charge_retrieve(self, charge_id: str, *, expand: list[str] = ()) -> dict:
        params = {"expand": list(expand)} if expand else {}
        return self._read(
            "charge.retrieve", self.client.v1.charges.retrieve, charge_id, params=params
        )

    def charge_capture(self, charge_id: str, *, params: dict, idempotency_key: str) -> dict:
        """Capture an authorized charge (``capture=false``), e.g. one Znode's payment
        app made with the legacy Charges API (reference znode-api.md §9.1)."""
        return self._write(
            "charge.capture",
            self.client.v1.charges.capture,
            charge_id,
            params=params,
            idempotency_key=idempotency_key,
        )

    def refund_create(self, *, params: dict, idempotency_key: str) -> dict:
        return self._write(
            "refund.create",
            self.client.v1.refunds.create,
            params=params,
            idempotency_key=idempotency_key,
        )

    def refund_retrieve(self, refund_id: str) -> dict:
        return self._read("refund.retrieve", self.client.v1.refunds.retrieve, refund_id)

    def refunds_for_charge(self, charge_id: str) -> Iterator[dict]:
        """Every refund of a charge, newest first (``Charge.refunds`` is no longer
        expanded, reference stripe.md A2)."""
        yield from self._each(
            "refund.list", self.client.v1.refunds.list, {"charge": charge_id, "limit": 100}
        )

    # --- disputes ----------------------------------------------------------------------------
    def dispute_retrieve(self, dispute_id: str) -> dict:
        return self._read("dispute.retrieve", self.client.v1.disputes.retrieve, dispute_id)

    # --- reconciliation ------------------------------------------------------------------
    def balance_retrieve(self) -> dict:
        return self._call("balance.retrieve", self.client.v1.balance.retrieve).to_dict()

    def balance_transactions_for_payout(
        self, payout_id: str, *, parse: Callable[[dict], Any] | None = None
    ) -> Iterator[Any]:
        """Every balance transaction of an automatic payout, with the objects whose
        metadata names the order expanded (``BALANCE_TRANSACTION_EXPAND``). ``parse``
        (the mapping's ``balance_transaction_from_wire``): each item as it makes it,
        on the thread that reads ahead, while the caller works through the last pages."""
        yield from self._list_plain(
            "balance_transaction.list",
            "/v1/balance_transactions",
            {
                "payout": payout_id,
                "limit": LIST_PAGE_SIZE,
                "expand": list(BALANCE_TRANSACTION_EXPAND),
            },
            ahead=LIST_READ_AHEAD,
            items=(lambda rows: [parse(row) for row in rows]) if parse else None,
        )

    def balance_transactions_available(
        self,
        *,
        available_gt: int,
        available_lte: int,
        created_gte: int = 0,
        currency: str = "",
        parse: Callable[[dict], Any] | None = None,
    ) -> Iterator[Any]:
        """The balance history that became available in ``(available_gt,
        available_lte]`` (of ``currency`` when given), newest first, expanded like a
        payout's list: what a manual payout, which ``payout=`` cannot itemise (reference
        stripe.md A7), paid out. Stripe lists by ``created`` only, so the transactions
        created in ``[created_gte, available_lte]`` (funds become available after they
        are created, never before) are streamed and filtered here by ``available_on``,
        a page at a time. ``parse``: as for a payout's list."""
        params: dict[str, Any] = {
            "created": {"gte": int(created_gte), "lte": int(available_lte)},
            "limit": LIST_PAGE_SIZE,
            "expand": list(BALANCE_TRANSACTION_EXPAND),
        }
        if currency:
            params["currency"] = currency

        def items(rows: list[dict]) -> list[Any]:
            kept = [
                row
                for row in rows
                if available_gt < (row.get("available_on") or 0) <= available_lte
            ]
            return [parse(row) for row in kept] if parse else kept

        yield from self._list_plain(
            "balance_transaction.list",
            "/v1/balance_transactions",
            params,
            ahead=LIST_READ_AHEAD,
            items=items,
        )

    def account_retrieve(self) -> dict:
        """The account the key belongs to (``GET /v1/account``): its payout schedule."""
        return self._read("account.retrieve", self.client.v1.accounts.retrieve_current)

    def payout_retrieve(self, payout_id: str) -> dict:
        return self._read("payout.retrieve", self.client.v1.payouts.retrieve, payout_id)

    def payouts_list(
        self,
        *,
        arrival_gte: int | None = None,
        arrival_lt: int | None = None,
        created_lt: int | None = None,
    ) -> Iterator[dict]:
        """Payouts, newest first, auto-paging: by arrival date (``[arrival_gte,
        arrival_lt)``) and/or created before ``created_lt``."""
        params: dict[str, Any] = {"limit": LIST_PAGE_SIZE}
        arrival = {
            k: int(v) for k, v in (("gte", arrival_gte), ("lt", arrival_lt)) if v is not None
        }
        if arrival:
            params["arrival_date"] = arrival
        if created_lt is not None:
            params["created"] = {"lt": int(created_lt)}
        yield from self._each("payout.list", self.client.v1.payouts.list, params)

    def _list_plain(
        self,
        operation: str,
        path: str,
        params: dict,
        *,
        ahead: int = 1,
        items: Callable[[list[dict]], list[Any]] | None = None,
    ) -> Iterator[Any]:
        """Every item of a list, page after page (``starting_after``), decoded as plain
        JSON: for the large lists (a payout's balance transactions, each with its
        expanded source) building StripeObjects and turning them back into dicts costs
        several times the page's decoding.

        Up to ``ahead`` pages are read on a thread of its own while the caller works
        through the ones it has (Stripe answers while we match and store). That thread
        touches no database: each page's request is recorded as ``operation`` by the
        caller's thread when it takes the page (its body cut to
        ``LIST_PAGE_BODY_KEPT``: the items are stored as rows of their own). ``items``
        makes of a page's items what is yielded (kept, mapped), on that thread too: an
        error it raises ends the list there, as a page that cannot be read does."""
        pages: queue.Queue = queue.Queue(maxsize=max(1, ahead))
        stop = threading.Event()
        reader = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._pages_read, operation, path, dict(params), pages, stop, items),
            name=f"stripe-list-{operation}",
            daemon=True,
        )
        reader.start()
        held: list[CallRecord] = []  # stored together, a read-ahead's worth at a time
        try:
            while True:
                try:
                    page, calls = pages.get(timeout=0.5)
                except queue.Empty:
                    if reader.is_alive() or not pages.empty():
                        continue
                    raise exc.ConnectorUnavailable(
                        f"Stripe: the reader of {operation} stopped before the list's end"
                    ) from None
                held.extend(calls)
                if page is None or isinstance(page, BaseException) or len(held) >= ahead:
                    calls_store(held)
                    held = []
                if page is None:
                    return
                if isinstance(page, BaseException):
                    raise page
                yield from page.get("data") or []
        finally:
            stop.set()
            while reader.is_alive() or not pages.empty():  # what it read is recorded
                with contextlib.suppress(queue.Empty):
                    held.extend(pages.get(timeout=0.05)[1])
            reader.join()
            calls_store(held)

    def _pages_read(
        self,
        operation: str,
        path: str,
        query: dict,
        pages: queue.Queue,
        stop: threading.Event,
        items: Callable[[list[dict]], list[Any]] | None = None,
    ) -> None:
        """Read the list's pages into ``pages`` (each with the record of its request,
        held for the caller's thread to store), then ``None``; an error is put, not
        raised, and ends the reading. Reads no further page once ``stop`` is set."""
        cut = _body_cut.set(LIST_PAGE_BODY_KEPT)
        try:
            while not stop.is_set():
                more = False
                with held_calls() as calls:
                    try:
                        page: dict | BaseException = self._call(
                            operation, self._get_plain, path, query
                        )
                        if not isinstance(page, dict) or not isinstance(page.get("data", []), list):
                            raise exc.DataError(f"Stripe: {operation} answered no list")
                        data = page.get("data") or []
                        more = bool(data and page.get("has_more"))
                        if more:
                            query["starting_after"] = data[-1]["id"]
                        if items is not None:
                            page = {"data": items(data)}
                    except BaseException as error:  # raised on the caller's thread
                        page, more = error, False
                # Waits for room: the caller takes pages, or drains them when it stops.
                pages.put((page, calls))
                if not more:
                    pages.put((None, []))
                    return
        finally:
            _body_cut.reset(cut)

    def _get_plain(self, path: str, params: dict) -> dict:
        """One GET through the SDK's requestor (auth, version, network retries, our
        recording HTTP client), its JSON decoded as plain dicts; an error answer
        raises the SDK's error, as any call does."""
        requestor = self.client._requestor  # the SDK's own; raw_request would decode
        # every page a second time, into OrderedDicts
        body, status, headers = requestor.request_raw(
            "get", path, params=params, base_address="api", api_mode="V1", usage=["list"]
        )
        if not 200 <= status < 300:
            requestor._interpret_response(body, status, headers, "V1")  # raises
        # orjson decodes what Stripe sends as json.loads does, in 40% of its time; what
        # it refuses (a lone surrogate escape, a byte order mark) the standard library
        # reads, or refuses with a ValueError as before.
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            return json.loads(body)

    def _each(
        self, operation: str, fn: Callable[..., Any], params: dict, *args: Any
    ) -> Iterator[dict]:
        """Every item of a list, page after page (each page's request recorded as
        ``operation``); ``args`` go before the params (a nested list's parent id)."""
        page = self._call(operation, fn, *args, params=params)
        token = _operation.set(operation)
        try:
            for item in page.auto_paging_iter():
                yield item.to_dict()
        except stripe.StripeError as error:
            raise map_error(error) from error
        finally:
            _operation.reset(token)
