"""A fake Znode 9.x API (plus Znode 10-style webhooks) following
/work/shared/reference/znode-api.md, pitfalls included.

Base URL ``{sandbox}/znode``; e.g. ``GET {base}/orders/list?filter=userid~eq~11``.

    auth.py        Basic domain|key, token/generatetoken, OAuth client credentials + Bearer
    query.py       expand / filter / sort / page (lower-cased query string)
    wire.py        envelope, 204s, error shapes, decimals and dates as .NET writes them
    orders.py      orders, order states, payment states, notes, payments, history
    returns.py     rmareturn/*
    customers.py   users and addresses
    events.py      Znode 10 webhook consumer events
    payapp.py      the payment application: Stripe authorizations at checkout (§9.1)
    storefront.py  /znode/_test/* routes (shopper activity, knobs) - no auth, no faults
    seed.py        the seeded stores, keys, vocabularies, customers, orders, returns

Seeded credentials (sandbox.znode.seed):

    Basic base64("sandbox-store.local|8f3b2c1e-5d4a-4b6e-9c7f-0a1b2c3d4e5f")   portal 1
    Basic base64("sandbox-outlet.local|c4d9e8f7-1a2b-4c3d-8e5f-6a7b8c9d0e1f")  portal 2
    OAuth client sandbox-client / sandbox-secret, scope znode.api (POST {base}/oauth/token)
    Payment settings: 7 "Credit Card (Stripe)" and 8 (Stripe gateway: a charge is
    authorized at checkout), 10 "Pay by Stripe link" and 11 "Stripe saved card" (no
    gateway: the platform collects), 2 purchase order, 9 COD

Dates are the store's local time without an offset (knob ``timezone``, default
America/Chicago); filter values without an offset are read as store-local time.

GET responses are cached per URL (``cache=refresh`` removed from the key) for
``cache_seconds`` (default 60): a re-read right after a write is stale unless the URL
carries ``cache=refresh``. Writes do not invalidate the cache.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sandbox.faults import FaultInjector
from sandbox.http import Request, Response, Router
from sandbox.system import System
from sandbox.webhooks import WebhookDispatcher
from sandbox.znode import seed
from sandbox.znode.auth import AuthMixin
from sandbox.znode.common import guarded
from sandbox.znode.customers import CustomersMixin
from sandbox.znode.events import EventsMixin, sign
from sandbox.znode.orders import OrdersMixin
from sandbox.znode.payapp import PaymentAppMixin
from sandbox.znode.returns import ReturnsMixin
from sandbox.znode.storefront import StorefrontMixin
from sandbox.znode.wire import (
    dumps,
    error,
    loads,
    minify,
    store_clock,
    unauthorized,
    web_api_message,
)

Handler = Callable[[Request], Response]

# GETs that write (they count as writes for error_after_write_rate and are never cached).
MUTATING_GETS = (
    "/orders/updateorderpaymentstatus/",
    "/orders/updatetrackingnumber/",
    "/orders/updateordertransactionid/",
)


class _RequestLog(list):
    """The base request log, with the Znode context headers of each request added."""

    def __init__(self, context: threading.local) -> None:
        super().__init__()
        self.context = context

    def append(self, item) -> None:
        item.update(getattr(self.context, "extra", {}))
        super().append(item)


class Znode(
    AuthMixin,
    OrdersMixin,
    ReturnsMixin,
    CustomersMixin,
    EventsMixin,
    StorefrontMixin,
    PaymentAppMixin,
    System,
):
    name = "znode"

    def __init__(self, faults: FaultInjector) -> None:
        self.cache: dict[str, tuple[float, int, bytes, dict[str, str]]] = {}
        self.test_router = Router()
        self.context = threading.local()
        self.peers: dict[str, System] = {}
        """The other systems of the same Sandbox (set by Sandbox.__init__): the payment
        application reaches the sandbox Stripe through ``peers["stripe"]``."""
        super().__init__(faults)
        self.requests = _RequestLog(self.context)
        self.webhooks = WebhookDispatcher("znode", faults, sign, retry_delays=())

    # --- setup -------------------------------------------------------------------------
    def register_routes(self) -> None:
        self.register_auth_routes()
        self.register_order_routes()
        self.register_return_routes()
        self.register_customer_routes()
        self.register_test_routes()

    def reset(self) -> None:
        self.cache.clear()
        with store_clock(seed.STORE_TIMEZONE):
            self.state = seed.build()
            seed.seed_orders(self)

    def _add(self, method: str, pattern: str, handler: Handler, cached: bool) -> None:
        wrapped = guarded(handler)
        if cached:
            wrapped = self._cached(wrapped)
        self.router.add(method, pattern, wrapped)

    def get_route(self, pattern: str, handler: Handler, *, cached: bool = False) -> None:
        self._add("GET", pattern, handler, cached)

    def put_route(self, pattern: str, handler: Handler) -> None:
        self._add("PUT", pattern, handler, False)

    def post_route(self, pattern: str, handler: Handler) -> None:
        self._add("POST", pattern, handler, False)

    # --- GET cache -------------------------------------------------------------------
    @staticmethod
    def cache_key(request: Request) -> str:
        # The real key drops the literal "?cache=refresh" / "&cache=refresh" from the URL
        # (so "?cache=refresh&x=1" refreshes a different key than "?x=1").
        url = request.target.lower()
        url = url.replace("?cache=refresh", "").replace("&cache=refresh", "")
        domain = (request.headers.get("Znode-DomainName") or "").lower()
        return f"{domain}|{url}"

    def _cached(self, handler: Handler) -> Handler:
        def run(request: Request) -> Response:
            ttl = float(self.state["config"].get("cache_seconds") or 0)
            refresh = "cache=refresh" in request.query_string.lower().split("&")
            key = self.cache_key(request)
            if ttl > 0 and not refresh:
                hit = self.cache.get(key)
                if hit is not None and hit[0] > time.monotonic():
                    _, status, body, headers = hit
                    return Response(status, body, {**headers, "X-Sandbox-Cache": "hit"})
            response = handler(request)
            if ttl > 0 and response.status == 200 and isinstance(response.body, bytes):
                self.cache[key] = (
                    time.monotonic() + ttl,
                    response.status,
                    response.body,
                    dict(response.headers),
                )
            response.headers["X-Sandbox-Cache"] = "refresh" if refresh else "miss"
            return response

        run.__name__ = handler.__name__
        return run

    # --- request handling --------------------------------------------------------------
    def handle(self, request: Request, subpath: str) -> Response:
        self.context.extra = {
            "znode_domain": request.headers.get("Znode-DomainName"),
            "znode_user_id": request.headers.get("Znode-UserId"),
        }
        with store_clock(self.state["config"].get("timezone")):
            return self._handle(request, subpath)

    def _handle(self, request: Request, subpath: str) -> Response:
        lowered = subpath.lower()
        if lowered == "/_test" or lowered.startswith("/_test/"):
            return self.handle_test(request, subpath)
        response = super().handle(request, subpath)
        minified = (request.headers.get("Minified-Json-Response") or "").lower() == "true"
        if (
            minified
            and response.status < 300
            and isinstance(response.body, bytes)
            and response.body
        ):
            response = Response(
                response.status, dumps(minify(loads(response.body))).encode(), response.headers
            )
        return response

    def is_write(self, request: Request) -> bool:
        if request.method in self.write_methods:
            return True
        path = request.path.lower()
        return any(marker in path for marker in MUTATING_GETS)

    def error_response(self, status: int, message: str) -> Response:
        if status == 401:
            return unauthorized()
        if status == 404:
            return web_api_message(message, 404)
        if status == 405:
            return web_api_message("The requested resource does not support this http method.", 405)
        if status == 500:
            rate = float(self.state.get("config", {}).get("bodiless_error_rate") or 0)
            if rate and self.faults.chance(rate):
                return Response(500, None, {})
            return error(message)
        # 429 / 502 / 504 come from whatever sits in front of IIS: a bare message.
        return web_api_message(message, status)

    def not_found(self, path: str) -> Response:
        return web_api_message(
            f"No HTTP resource was found that matches the request URI '{path}'.", 404
        )
