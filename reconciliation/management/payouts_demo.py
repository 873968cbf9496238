"""The demo's money to the bank (``manage.py demo``): the sandbox's Stripe settles in
USD and EUR and converts GBP into USD, makes a charge's funds available two days
later and pays out daily, Stripe's default schedule; a few shoppers pay in EUR and
GBP beside the USD ones. When the day's orders, refunds and disputes have settled,
the sandbox's clock moves on to the next payout days, and the demo watches every
payout arrive through Stripe's events, tie out, and post to the ERP, whose trial
balance then shows the Stripe clearing account at zero in every currency.

It plays Stripe's schedule and the shoppers from outside, through the sandbox's test
hooks and Znode's storefront; what it reports is read from the platform's rows and the
ERP's own trial balance.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal

import requests

from integrations.logging import calls_quieted
from integrations.models import Integration
from payments import money
from payments.choices import OrderState
from payments.models import Order
from reconciliation import ledger
from reconciliation.choices import EntryKind, LedgerState, TieOut
from reconciliation.models import JournalEntry, Payout

DAY = 86400
STRIPE_CONFIG = {
    "settlement_currencies": ["usd", "eur"],
    "fx_rates": {"gbp": "1.2712"},  # USD per GBP: GBP charges settle in USD
    "settlement_days": 2,
    "payout_interval_seconds": DAY,  # automatic payouts, daily (on the sandbox's clock)
}
FOREIGN_ORDERS = (("EUR", "24.00"), ("EUR", "61.50"), ("EUR", "12.90"), ("GBP", "35.00"))
MUG = "SBX-MUG-11OZ"


@dataclass(frozen=True)
class Shown:
    payout: str
    currency: str
    amount: str
    transactions: int
    tie_out: str
    ledger: str
    converted: str


class PayoutsDemo:
    def __init__(
        self, *, sandbox: str, stripe_key: str, erp_token: str, card_setting: int, out
    ) -> None:
        self.sandbox = sandbox.rstrip("/")
        self.stripe_headers = {"Authorization": f"Bearer {stripe_key}"}
        self.erp_headers = {"Authorization": f"Bearer {erp_token}"}
        self.card_setting = card_setting
        self.out = out
        self.orders: list[str] = []

    # --- Stripe's account and the shoppers -------------------------------------------------
    def configure(self) -> None:
        response = requests.post(
            f"{self.sandbox}/stripe/_test/config",
            json=STRIPE_CONFIG,
            headers=self.stripe_headers,
            timeout=10,
        )
        response.raise_for_status()
        self.out.write(
            "Stripe settles in USD and EUR (GBP converted to USD at 1.2712), funds are "
            "available after 2 days, payouts are daily"
        )

    def place(self) -> None:
        """Shoppers paying in EUR and GBP by card at Znode's checkout (adopted)."""
        for currency, price in FOREIGN_ORDERS:
            response = requests.post(
                f"{self.sandbox}/znode/_test/orders",
                json={
                    "user_id": 11,
                    "lines": [{"sku": MUG, "quantity": 1, "price": price}],
                    "currency": currency,
                    "card": "pm_card_visa",
                    "payment_setting_id": self.card_setting,
                },
                timeout=10,
            )
            response.raise_for_status()
            order = response.json()["Order"]
            self.orders.append(order["OrderNumber"])
            self.out.write(f"placed {order['OrderNumber']} {order['Total']} {currency} by card")

    # --- waiting -----------------------------------------------------------------------------
    def _sold(self, integration: Integration) -> bool:
        """Every foreign order's sale is in the ERP (and so on the clearing account)."""
        orders = Order.objects.filter(integration=integration, order_number__in=self.orders)
        posted = JournalEntry.objects.filter(
            kind=EntryKind.SALE, order__in=orders, posted_at__isnull=False
        )
        return posted.values("order").distinct().count() == len(self.orders)

    def _ship(self, integration: Integration, shipped: set[str]) -> None:
        """The warehouse ships the authorized ones; Znode's shipment captures them."""
        authorized = Order.objects.filter(
            integration=integration, order_number__in=self.orders, state=OrderState.AUTHORIZED
        ).exclude(order_number__in=shipped)
        for number in authorized.values_list("order_number", flat=True):
            requests.post(
                f"{self.sandbox}/znode/_test/orders/{number}/ship", json={}, timeout=10
            ).raise_for_status()
            shipped.add(number)

    def _stripe_payouts(self) -> list[dict]:
        response = requests.get(
            f"{self.sandbox}/stripe/v1/payouts",
            params={"limit": 100},
            headers=self.stripe_headers,
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["data"]

    def _days_pass(self, days: int) -> None:
        """The sandbox's clock moves on: what falls due runs (funds become available,
        the daily payout goes out, payouts in transit arrive)."""
        requests.post(
            f"{self.sandbox}/stripe/_test/advance_time",
            json={"seconds": days * DAY},
            headers=self.stripe_headers,
            timeout=10,
        ).raise_for_status()

    def settle(self, integration: Integration, timeout: float) -> bool:
        """Once the foreign orders are sold: the days until the payouts are paid, then
        until every payout Stripe made is imported and posted, or one cannot be."""
        deadline = time.monotonic() + timeout
        shipped: set[str] = set()
        while not self._sold(integration):
            self._ship(integration, shipped)
            if time.monotonic() > deadline:
                return False
            time.sleep(1)
        self._days_pass(3)  # the charges' funds available, and the next payout day
        self._days_pass(1)  # the payouts arrive at the bank (paid)
        self.out.write("\nthe sandbox's clock moves on 4 days: Stripe pays out")
        while True:
            made = {p["id"] for p in self._stripe_payouts()}
            rows = Payout.objects.filter(integration=integration, stripe_payout_id__in=made)
            done = rows.filter(ledger_state=LedgerState.POSTED).count()
            self.out.write(f"payouts reconciled and posted: {done}/{len(made)}")
            if made and done == len(made):
                return True
            if rows.filter(ledger_state=LedgerState.REFUSED).exists():
                return False
            if time.monotonic() > deadline:
                return False
            time.sleep(1)

    # --- the report ----------------------------------------------------------------------
    def _shown(self, payout: Payout) -> Shown:
        converted = sorted(
            JournalEntry.objects.filter(payout=payout, kind=EntryKind.FX).values_list(
                "currency", flat=True
            )
        )
        return Shown(
            payout=payout.stripe_payout_id,
            currency=payout.currency,
            amount=money.format_minor(payout.amount_minor, payout.currency),
            transactions=payout.transaction_count,
            tie_out=payout.get_tie_out_display(),
            ledger=payout.get_ledger_state_display(),
            converted=f"(FX from {', '.join(converted)})" if converted else "",
        )

    def clearing(self, integration: Integration) -> dict[str, Decimal]:
        """The Stripe clearing account's balance in the ERP's trial balance, by currency."""
        with calls_quieted():
            body = requests.get(
                f"{self.sandbox}/erp/api/trial-balance", headers=self.erp_headers, timeout=10
            ).json()
        gl = ledger.gl_map(integration)
        return {
            row["currency"]: Decimal(row["balance"])
            for row in body["accounts"]
            if row["account"] == gl.account("clearing", row["currency"])
        }

    def report(self, integration: Integration) -> bool:
        payouts = Payout.objects.filter(integration=integration).order_by("stripe_created", "id")
        self.out.write("\npayouts (Stripe → the bank, tied out and posted to the ERP):")
        tied = True
        for payout in payouts:
            s = self._shown(payout)
            tied &= payout.tie_out == TieOut.TIED_OUT and payout.ledger_state == LedgerState.POSTED
            self.out.write(
                f"  {s.payout}  {s.amount:>16}  {s.transactions:4} transactions  "
                f"{s.tie_out}, {s.ledger} {s.converted}".rstrip()
            )
        clearing = self.clearing(integration)
        self.out.write(
            "ERP trial balance, Stripe clearing account: "
            + ", ".join(money.format_money(b, c) for c, b in sorted(clearing.items()))
        )
        currencies = {p.currency for p in payouts}
        return (
            bool(payouts) and tied and currencies >= {"USD", "EUR"} and not any(clearing.values())
        )
