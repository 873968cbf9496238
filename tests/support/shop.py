"""Drive the sandbox Znode store like shoppers and the back office do (test routes)."""

from __future__ import annotations

import requests

STORE_DOMAIN = "sandbox-store.local"
STORE_KEY = "8f3b2c1e-5d4a-4b6e-9c7f-0a1b2c3d4e5f"
OAUTH_CLIENT_ID = "sandbox-client"
OAUTH_CLIENT_SECRET = "sandbox-secret"
STRIPE_PAYMENT_SETTING_ID = 7  # stock Stripe gateway: the payment app authorizes a charge
STRIPE_AUTHORIZE_SETTING_ID = 8  # the same gateway, a second setting
LINK_PAYMENT_SETTING_ID = 10  # "Pay by Stripe link": nothing charged at checkout
SAVED_PAYMENT_SETTING_ID = 11  # "Stripe saved card": nothing charged at checkout
PURCHASE_ORDER_SETTING_ID = 2
STORE_TIMEZONE = "America/Chicago"  # the sandbox store's clock (dates carry no offset)


def payment_rows(order: dict, reference: str | None = None) -> list[dict]:
    """Rows of an order's PaymentHistoryList, a list model (znode-api.md §3.3); only
    those of ``reference`` when given."""
    rows = (order.get("PaymentHistoryList") or {}).get("PaymentHistoryList") or []
    return [r for r in rows if reference is None or r.get("TransactionReference") == reference]


class Shop:
    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/") + "/_test"

    def _post(self, path: str, body: dict | None = None) -> dict:
        response = requests.post(self.base + path, json=body or {}, timeout=10)
        response.raise_for_status()
        return response.json() if response.content else {}

    def configure(self, **knobs) -> dict:
        return self._post("/config", knobs)

    def place_order(self, *, user_id: int = 11, total: str = "19.99", **extra) -> dict:
        """A checkout. ``card="pm_card_visa"`` (or ``tok_visa``, a decline test id...) is
        what the shopper typed: on a gateway setting (7, 8, the default 7) Znode's payment
        app authorizes a Stripe charge with it; a declined card raises HTTPError 402 and
        places no order. Other ``extra`` keys as POST /znode/_test/orders takes them."""
        lines = extra.pop("lines", [{"sku": "SBX-MUG-11OZ", "quantity": 1, "price": total}])
        return self._post("/orders", {"user_id": user_id, "lines": lines, **extra})["Order"]

    def order(self, number: str) -> dict:
        response = requests.get(f"{self.base}/orders/{number}", timeout=10)
        response.raise_for_status()
        return response.json()["Order"]

    def set_state(self, number: str, **body) -> dict:
        return self._post(f"/orders/{number}/state", body)

    def ship(self, number: str, tracking_number: str = "1Z999") -> dict:
        return self._post(f"/orders/{number}/ship", {"tracking_number": tracking_number})

    def cancel(self, number: str) -> dict:
        return self._post(f"/orders/{number}/cancel")

    def create_return(self, order_number: str, lines: list[dict] | None = None) -> dict:
        """A shopper's submitted return (RMA, §5.1): ``lines`` [{sku, quantity}]; none:
        every line in full."""
        return self._post("/returns", {"order_number": order_number, "lines": lines or []})[
            "Return"
        ]

    def return_state(self, return_number: str, state: str) -> dict:
        """The store's admin moves a return (``Approved``, ``Rejected``...)."""
        return self._post(f"/returns/{return_number}/state", {"state": state})["Return"]


def store_connection(sandbox, *, name: str = "store", credentials=None, **settings):
    """A Znode connection to the sandbox store (polling off unless asked for; the store's
    time zone unless ``timezone=`` says otherwise)."""
    from integrations.services.connections import connection_create

    webhook_secrets = settings.pop("webhook_secrets", [])
    settings.setdefault("timezone", STORE_TIMEZONE)
    return connection_create(
        name=name,
        kind="znode",
        base_url=sandbox.system_url("znode"),
        credentials=credentials or {"domain_name": STORE_DOMAIN, "domain_key": STORE_KEY},
        webhook_secrets=webhook_secrets,
        settings={"store_domain": STORE_DOMAIN, "poll": False, **settings},
        rate_limit_per_second=500,
    )
