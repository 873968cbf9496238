"""Znode's payment application with the stock Stripe gateway (znode-api.md §9.1).

A card checkout on a payment setting with a gateway (7 ``STRIPE_CC``, 8 ``STRIPE_CC_AUTH``)
is authorized by the payment application before the order is saved: its Stripe provider
(Stripe.net on the legacy Charges API) creates a charge with ``capture=false`` using the
secret key of the setting's gateway login, records a transaction row keyed by a new GUID
(``ZnodeTransactions``), and the order carries ``TransactionId`` = the charge id and
``PaymentTransactionToken`` = that GUID (never a Stripe object). A declined card places no
order.

The sandbox does this for real against the sandbox Stripe of the same ``Sandbox`` (reached
through ``self.peers["stripe"]``, set by ``Sandbox.__init__``), through the same route
handler as ``POST /v1/charges`` over HTTP, so events and idempotency behave alike; at
checkout the call also goes through Stripe's fault injection (an error places no order,
502; a lost response after the write leaves an orphaned authorization in Stripe, as a
timeout of the real payment app would).

What the stock provider sends besides the charge itself is not known from the reference
(it "creates/uses a Stripe customer + source"): the sandbox sends the card as ``source``, no
customer, ``description: "Order <number>"`` and ``metadata[OrderNumber]``, and nothing a
client could rely on to find the order from the charge.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from sandbox.http import Headers, Request, Response
from sandbox.znode.orders import ZERO_DECIMAL
from sandbox.znode.wire import ZnodeError, money, now_text

CARD_TYPES = {
    "visa": "Visa",
    "mastercard": "MasterCard",
    "amex": "AmericanExpress",
    "discover": "Discover",
    "jcb": "JCB",
    "diners": "DinersClub",
    "unionpay": "UnionPay",
}


class CardDeclined(ZnodeError):
    """The gateway declined the card: the storefront places no order (402)."""

    def __init__(self, message: str, decline_code: str | None, code: str | None, charge: str):
        super().__init__(message, None, 402)
        self.decline_code, self.stripe_code, self.charge = decline_code, code, charge


class GatewayFailure(ZnodeError):
    """The payment application got no usable answer from the gateway (502)."""

    def __init__(self, message: str, gateway_status: int | None = None):
        super().__init__(message, None, 502)
        self.gateway_status = gateway_status


def minor_units(total: Any, currency: str) -> int:
    """The order total in the currency's minor unit (cents; yen as is)."""
    exponent = 0 if currency.upper() in ZERO_DECIMAL else 2
    return int((money(total) * (Decimal(10) ** exponent)).to_integral_value())


class PaymentAppMixin:
    state: dict[str, Any]
    peers: dict[str, Any]

    def stripe_peer(self):
        return (getattr(self, "peers", None) or {}).get("stripe")

    def has_gateway(self, setting: dict) -> bool:
        return setting.get("GatewayCode") is not None

    def stripe_call(
        self, path: str, form: dict[str, str], api_key: str, *, faults: bool = True
    ) -> Response:
        """POST a form to the sandbox Stripe in-process, as the Stripe SDK would."""
        stripe = self.stripe_peer()
        if stripe is None:
            raise GatewayFailure("The payment gateway is not reachable.")
        request = Request(
            "POST",
            f"/{stripe.name}{path}",
            Headers(
                {
                    "Authorization": f"Bearer {api_key}",
                    "Content-Type": "application/x-www-form-urlencoded",
                    "User-Agent": "Stripe/v1 .NetBindings/6.12.0 (Znode payment application)",
                }
            ),
            urlencode(form).encode(),
        )
        if faults:
            return stripe.handle(request, path)
        # Seeding: the same route handler (idempotency, events), no faults or latency.
        handler, params, _ = stripe.router.match("POST", path)
        request.params = params
        with stripe.lock:
            return handler(request)

    def authorize_card(self, order: dict, setting: dict, card: str, *, faults: bool = True) -> dict:
        """The payment app's "paynow" for a Stripe setting: an uncaptured charge of the
        order total. Returns the charge; raises CardDeclined / GatewayFailure."""
        currency = order["CurrencyCode"]
        form = {
            "amount": str(minor_units(order["Total"], currency)),
            "currency": currency.lower(),
            "capture": "false",
            "source": card,
            "description": f"Order {order['OrderNumber']}",
            "metadata[OrderNumber]": order["OrderNumber"],
        }
        key = setting.get("GatewayUsername") or ""
        response = self.stripe_call("/v1/charges", form, key, faults=faults)
        body = response.body if isinstance(response.body, dict) else {}
        if response.status == 200 and body.get("object") == "charge":
            return body
        error = body.get("error") or {}
        if response.status == 402:
            raise CardDeclined(
                error.get("message") or "Your card was declined.",
                error.get("decline_code"),
                error.get("code"),
                error.get("charge"),
            )
        raise GatewayFailure(
            f"Payment gateway error: {error.get('message') or response.status}",
            response.status,
        )

    def record_transaction(self, order: dict, charge: dict, setting: dict) -> str:
        """ZnodeTransactions row of the payment app; its GUID is the order's token."""
        token = str(uuid.uuid4())
        self.state.setdefault("payment_transactions", {})[token] = {
            "GUID": token,
            "TransactionId": charge["id"],
            "CaptureTransactionId": None,
            "RefundTransactionId": None,
            "TransactionDate": now_text(),
            "Amount": order["Total"],
            "CurrencyCode": order["CurrencyCode"],
            "PaymentSettingId": setting["PaymentSettingId"],
            "PaymentStatus": "AUTHORIZED",
            "ResponseCode": None,
            "ResponseText": charge.get("outcome", {}).get("seller_message"),
        }
        return token

    @staticmethod
    def card_fields(charge: dict) -> dict:
        card = (charge.get("payment_method_details") or {}).get("card") or {}
        brand = card.get("brand") or ""
        return {
            "CreditCardNumber": card.get("last4"),
            "CardType": CARD_TYPES.get(brand, brand.title() or None),
            "CreditCardExpMonth": card.get("exp_month"),
            "CreditCardExpYear": card.get("exp_year"),
        }
