"""A Stripe fake good enough for the official SDK: point ``stripe.StripeClient`` at it with
``base_addresses={"api": f"{sandbox_url}/stripe"}``.

    Auth          Authorization: Bearer sk_test_... (or Basic with the key as user)
    Customers     POST/GET /v1/customers, GET /v1/customers/search,
                  GET/POST/DELETE /v1/customers/{id}, GET /v1/customers/{id}/payment_methods[/{pm}]
    PaymentMethod POST/GET /v1/payment_methods, GET/POST /v1/payment_methods/{id},
                  POST /v1/payment_methods/{id}/attach|detach
    PaymentIntent POST/GET /v1/payment_intents, GET/POST /v1/payment_intents/{id},
                  POST /v1/payment_intents/{id}/confirm|capture|cancel
    Checkout      POST/GET /v1/checkout/sessions (payment mode, hosted page),
                  GET/POST /v1/checkout/sessions/{id} (update: metadata),
                  GET /v1/checkout/sessions/{id}/line_items, POST /v1/checkout/sessions/{id}/expire
    Charges       POST/GET /v1/charges (legacy create: source/payment_method, capture),
                  GET/POST /v1/charges/{id}, POST /v1/charges/{id}/capture
    Refunds       POST/GET /v1/refunds, GET/POST /v1/refunds/{id}, POST /v1/refunds/{id}/cancel
    Disputes      GET /v1/disputes, GET/POST /v1/disputes/{id}, POST /v1/disputes/{id}/close
    Balance       GET /v1/balance, GET /v1/balance_transactions[/{id}], GET /v1/balance/history
    Payouts       POST/GET /v1/payouts (create: a manual payout), GET/POST /v1/payouts/{id},
                  POST /v1/payouts/{id}/cancel (automatic payouts: sandbox.stripe.payouts)
    Events        GET /v1/events, GET /v1/events/{id}
    Webhooks      POST/GET /v1/webhook_endpoints, GET/POST/DELETE /v1/webhook_endpoints/{id}
    Hosted page   GET /stripe/checkout/pay/{id} (no API key: the customer's browser; a
                  session's ``url``, built from the request's Host header)
    Test hooks    /stripe/_test/... (see sandbox.stripe.testing)

Errors have Stripe's shape and status codes; every response carries ``Request-Id``; POSTs
honour ``Idempotency-Key`` (per API key: replayed with ``Idempotent-Replayed: true``, or 400
``idempotency_error`` when reused with other parameters or on another endpoint). Every change is
kept as an Event and delivered as a signed webhook (``Stripe-Signature: t=..,v1=..``) to the
endpoints registered with ``POST /_sandbox/webhooks/stripe`` or ``/v1/webhook_endpoints``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from sandbox.faults import FaultInjector
from sandbox.http import Request, Response, json_response
from sandbox.stripe import params as p
from sandbox.stripe.balance import BalanceMixin
from sandbox.stripe.charges import ChargesMixin
from sandbox.stripe.checkout import CheckoutMixin
from sandbox.stripe.customers import CustomersMixin
from sandbox.stripe.disputes import DisputesMixin
from sandbox.stripe.errors import StripeError
from sandbox.stripe.events import API_VERSION, EventsMixin, StripeWebhookDispatcher
from sandbox.stripe.payment_intents import PaymentIntentsMixin
from sandbox.stripe.payment_methods import PaymentMethodsMixin
from sandbox.stripe.payouts import PayoutsMixin
from sandbox.stripe.refunds import RefundsMixin
from sandbox.stripe.store import DAY, StoreMixin, empty_state, random_token
from sandbox.stripe.testing import TestingMixin
from sandbox.stripe.webhook_endpoints import WebhookEndpointsMixin
from sandbox.system import System

IDEMPOTENCY_TTL = DAY
IDEMPOTENCY_MAX = 5000

ROUTES = (
    ("POST", "/v1/customers", "api_customers_create"),
    ("GET", "/v1/customers", "api_customers_list"),
    ("GET", "/v1/customers/search", "api_customers_search"),
    ("GET", "/v1/customers/{id}", "api_customers_retrieve"),
    ("POST", "/v1/customers/{id}", "api_customers_update"),
    ("DELETE", "/v1/customers/{id}", "api_customers_delete"),
    ("GET", "/v1/customers/{id}/payment_methods", "api_customer_payment_methods"),
    ("GET", "/v1/customers/{id}/payment_methods/{pm}", "api_customer_payment_method"),
    ("POST", "/v1/payment_methods", "api_payment_methods_create"),
    ("GET", "/v1/payment_methods", "api_payment_methods_list"),
    ("GET", "/v1/payment_methods/{id}", "api_payment_methods_retrieve"),
    ("POST", "/v1/payment_methods/{id}", "api_payment_methods_update"),
    ("POST", "/v1/payment_methods/{id}/attach", "api_payment_methods_attach"),
    ("POST", "/v1/payment_methods/{id}/detach", "api_payment_methods_detach"),
    ("POST", "/v1/payment_intents", "api_payment_intents_create"),
    ("GET", "/v1/payment_intents", "api_payment_intents_list"),
    ("GET", "/v1/payment_intents/{id}", "api_payment_intents_retrieve"),
    ("POST", "/v1/payment_intents/{id}", "api_payment_intents_update"),
    ("POST", "/v1/payment_intents/{id}/confirm", "api_payment_intents_confirm"),
    ("POST", "/v1/payment_intents/{id}/capture", "api_payment_intents_capture"),
    ("POST", "/v1/payment_intents/{id}/cancel", "api_payment_intents_cancel"),
    ("POST", "/v1/checkout/sessions", "api_checkout_sessions_create"),
    ("GET", "/v1/checkout/sessions", "api_checkout_sessions_list"),
    ("GET", "/v1/checkout/sessions/{id}", "api_checkout_sessions_retrieve"),
    ("POST", "/v1/checkout/sessions/{id}", "api_checkout_sessions_update"),
    ("GET", "/v1/checkout/sessions/{id}/line_items", "api_checkout_sessions_line_items"),
    ("POST", "/v1/checkout/sessions/{id}/expire", "api_checkout_sessions_expire"),
    ("GET", "/checkout/pay/{id}", "page_checkout"),
    ("POST", "/v1/charges", "api_charges_create"),
    ("GET", "/v1/charges", "api_charges_list"),
    ("GET", "/v1/charges/{id}", "api_charges_retrieve"),
    ("POST", "/v1/charges/{id}", "api_charges_update"),
    ("POST", "/v1/charges/{id}/capture", "api_charges_capture"),
    ("POST", "/v1/refunds", "api_refunds_create"),
    ("GET", "/v1/refunds", "api_refunds_list"),
    ("GET", "/v1/refunds/{id}", "api_refunds_retrieve"),
    ("POST", "/v1/refunds/{id}", "api_refunds_update"),
    ("POST", "/v1/refunds/{id}/cancel", "api_refunds_cancel"),
    ("GET", "/v1/disputes", "api_disputes_list"),
    ("GET", "/v1/disputes/{id}", "api_disputes_retrieve"),
    ("POST", "/v1/disputes/{id}", "api_disputes_update"),
    ("POST", "/v1/disputes/{id}/close", "api_disputes_close"),
    ("GET", "/v1/account", "api_account"),
    ("GET", "/v1/balance", "api_balance"),
    ("GET", "/v1/balance/history", "api_balance_transactions_list"),
    ("GET", "/v1/balance_transactions", "api_balance_transactions_list"),
    ("GET", "/v1/balance_transactions/{id}", "api_balance_transactions_retrieve"),
    ("POST", "/v1/payouts", "api_payouts_create"),
    ("GET", "/v1/payouts", "api_payouts_list"),
    ("GET", "/v1/payouts/{id}", "api_payouts_retrieve"),
    ("POST", "/v1/payouts/{id}", "api_payouts_update"),
    ("POST", "/v1/payouts/{id}/cancel", "api_payouts_cancel"),
    ("GET", "/v1/events", "api_events_list"),
    ("GET", "/v1/events/{id}", "api_events_retrieve"),
    ("POST", "/v1/webhook_endpoints", "api_webhook_endpoints_create"),
    ("GET", "/v1/webhook_endpoints", "api_webhook_endpoints_list"),
    ("GET", "/v1/webhook_endpoints/{id}", "api_webhook_endpoints_retrieve"),
    ("POST", "/v1/webhook_endpoints/{id}", "api_webhook_endpoints_update"),
    ("DELETE", "/v1/webhook_endpoints/{id}", "api_webhook_endpoints_delete"),
    ("GET", "/_test/clock", "hook_clock"),
    ("POST", "/_test/clock", "hook_set_clock"),
    ("POST", "/_test/advance_time", "hook_advance_time"),
    ("POST", "/_test/settle", "hook_settle"),
    ("POST", "/_test/run_payouts", "hook_run_payouts"),
    ("POST", "/_test/config", "hook_config"),
    ("POST", "/_test/payouts/seed", "hook_seed_payout"),
    ("POST", "/_test/payouts/{id}/fail", "hook_fail_payout"),
    ("POST", "/_test/disputes/{id}/resolve", "hook_resolve_dispute"),
    ("POST", "/_test/checkout/sessions/{id}/pay", "hook_pay_checkout_session"),
)
# Reached without an API key: the test hooks, and the hosted page a customer's browser opens.
OPEN_PREFIXES = ("/_test/", "/checkout/pay/")


@dataclass
class Call:
    """One API request as the handlers see it."""

    request: Request
    params: dict
    path: dict
    request_id: str
    api_key: str
    idempotency_key: str | None

    @property
    def expand(self) -> list[str]:
        return p.expand(self.params)


def _api_key(request: Request) -> str:
    header = request.headers.get("Authorization", "") or ""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip()).decode().partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            return ""
    return ""


class Stripe(
    CheckoutMixin,  # first: it follows its PaymentIntents through confirm, cancel and settling
    CustomersMixin,
    PaymentMethodsMixin,
    PaymentIntentsMixin,
    ChargesMixin,
    RefundsMixin,
    DisputesMixin,
    BalanceMixin,
    PayoutsMixin,
    EventsMixin,
    WebhookEndpointsMixin,
    TestingMixin,
    StoreMixin,
    System,
):
    name = "stripe"
    webhook_retry_delays: tuple[float, ...] = (1.0, 5.0, 20.0)
    """Delays between webhook delivery attempts (Stripe test mode retries a few times)."""
    default_config = {
        "settlement_days": 2,
        "async_settle_seconds": 60,
        "payout_interval_seconds": 0,
        "payout_schedule": "automatic",
        "settlement_currencies": [],
        "default_settlement_currency": None,
        "fx_rates": {},
        "card_fees": {},
        "dispute_fees": {},
        "fee_tax_percent": "0",
    }

    def __init__(self, faults: FaultInjector) -> None:
        self.call: Call | None = None
        self.webhooks = StripeWebhookDispatcher(
            "stripe", faults, self.webhook_retry_delays, self.webhook_result
        )
        super().__init__(faults)

    def reset(self) -> None:
        self.state = empty_state()
        self.webhooks.retry_delays = tuple(self.webhook_retry_delays)

    def register_routes(self) -> None:
        for method, pattern, handler_name in ROUTES:
            self.router.add(method, pattern, self._endpoint(getattr(self, handler_name)))

    def tick(self) -> None:
        """The server's ticker: automatic payouts by the schedule, under the store's lock
        like every request."""
        with self.lock:
            self.payouts_due()

    # --- errors and auth ------------------------------------------------------------------
    def error_response(self, status: int, message: str) -> Response:
        error = {
            "message": message,
            "type": "api_error" if status >= 500 else "invalid_request_error",
        }
        if status == 429:
            error["code"] = "rate_limit"
        return json_response({"error": error}, status)

    def not_found(self, path: str) -> Response:
        return json_response(
            {
                "error": {
                    "message": f"Unrecognized request URL ({path}). Please see "
                    "https://stripe.com/docs or we can help at https://support.stripe.com/.",
                    "type": "invalid_request_error",
                }
            },
            404,
        )

    def authenticate(self, request: Request) -> Response | None:
        if any(request.path.startswith(f"/{self.name}{open_}") for open_ in OPEN_PREFIXES):
            return None
        key = _api_key(request)
        if not key:
            message = (
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details."
            )
        elif key.startswith("sk_test_") and len(key) > 10:
            return None
        else:
            message = f"Invalid API Key provided: {key[:8]}{'*' * max(0, len(key) - 12)}{key[-4:]}"
        return json_response({"error": {"message": message, "type": "invalid_request_error"}}, 401)

    def handle(self, request: Request, subpath: str) -> Response:
        request_id = f"req_{random_token(14)}"
        request.stripe_request_id = request_id
        response = super().handle(request, subpath)
        response.headers["Request-Id"] = request_id
        response.headers.setdefault(
            "Stripe-Version", request.headers.get("Stripe-Version") or API_VERSION
        )
        return response

    # --- the request pipeline -----------------------------------------------------------
    def _endpoint(self, handler):
        def run(request: Request) -> Response:
            # Runs under self.lock (System.handle).
            key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
            call = Call(
                request=request,
                params={},
                path=dict(request.params),
                request_id=getattr(request, "stripe_request_id", f"req_{random_token(14)}"),
                api_key=_api_key(request),
                idempotency_key=key or None,
            )
            self.call = None
            try:
                self.run_due()  # time-driven work first, attributed to no request
                call.params = (
                    request.form() if not request.path.startswith(f"/{self.name}/_test/") else {}
                )
                replay = self._replay(call, request)
                if replay is not None:
                    return replay
                self.call = call
                result = handler(call)  # a page or a redirect comes as a Response
                response = result if isinstance(result, Response) else json_response(result)
            except StripeError as exc:
                response = json_response(exc.body(), exc.status)
            finally:
                self.call = None
            self._remember(call, request, response)
            if call.idempotency_key:
                response.headers["Idempotency-Key"] = call.idempotency_key
                response.headers["Original-Request"] = call.request_id
            return response

        return run

    # --- idempotency --------------------------------------------------------------------
    def _idempotency_slot(self, call: Call) -> str:
        return f"{call.api_key}\n{call.idempotency_key}"

    def _replay(self, call: Call, request: Request) -> Response | None:
        if not call.idempotency_key:
            return None
        if len(call.idempotency_key) > 255:
            raise StripeError(
                400,
                "Idempotency keys can be at most 255 characters long.",
                type="idempotency_error",
            )
        stored = self.state["idempotency"].get(self._idempotency_slot(call))
        if stored is None or stored["at"] < self.now() - IDEMPOTENCY_TTL:
            return None
        path = request.path.removeprefix(f"/{self.name}")
        if stored["method"] != request.method or stored["path"] != path:
            raise StripeError(
                400,
                "Keys for idempotent requests can only be used for the same endpoint they were "
                f"first used for ('{stored['method']} {stored['path']}' vs "
                f"'{request.method} {path}'). Try using a key other than "
                f"'{call.idempotency_key}' if you meant to execute a different request.",
                type="idempotency_error",
            )
        if stored["params"] != call.params:
            raise StripeError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{call.idempotency_key}' if "
                "you meant to execute a different request.",
                type="idempotency_error",
            )
        return json_response(
            stored["body"],
            stored["status"],
            **{
                "Idempotent-Replayed": "true",
                "Original-Request": stored["request_id"],
                "Idempotency-Key": call.idempotency_key,
            },
        )

    def _remember(self, call: Call, request: Request, response: Response) -> None:
        """Store what the endpoint answered once it started working: successes and card
        errors (a refused validation stores nothing, so a corrected retry may reuse the key)."""
        if not call.idempotency_key or not (response.status < 400 or response.status == 402):
            return
        if response.headers.get("Idempotent-Replayed"):
            return
        store = self.state["idempotency"]
        store[self._idempotency_slot(call)] = {
            "method": request.method,
            "path": request.path.removeprefix(f"/{self.name}"),
            "params": call.params,
            "status": response.status,
            "body": response.body,
            "request_id": call.request_id,
            "at": self.now(),
        }
        horizon = self.now() - IDEMPOTENCY_TTL
        while store and (
            len(store) > IDEMPOTENCY_MAX or next(iter(store.values()))["at"] < horizon
        ):
            del store[next(iter(store))]
