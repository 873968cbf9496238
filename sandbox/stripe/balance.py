"""Balance, balance transactions, fees and currency conversion (stripe.md A7).

Every money movement books a balance transaction: ``amount`` gross in the settlement
currency, signed; ``fee`` positive, itemised in ``fee_details`` (``stripe_fee``, ``tax``);
``net = amount - fee``. Charge funds are ``pending`` until ``available_on`` (created +
``settlement_days``, 2 by default); refunds, disputes and payouts move the available balance
at once. Payouts are in :mod:`sandbox.stripe.payouts`.

The account's prices and currencies are settings (``POST /stripe/_test/config``); unset,
they are what the sandbox always did:

- ``card_fees``: ``{"eur": {"percent": "1.5", "fixed": 25}}``, per settlement currency; any
  other pays Stripe's US list price, 2.9% + 30 minor units (none in zero-decimal, 300 in
  three-decimal currencies), rounded half-up to the minor unit.
- ``dispute_fees``: ``{"usd": 1500}``, minor units per settlement currency; 15.00 otherwise.
- ``fee_tax_percent``: tax on Stripe's fees ("20" is 20%), a ``tax`` entry of
  ``fee_details`` and part of ``fee``; "0", no tax, by default. Refunds carry no fee.
- ``settlement_currencies`` (``["usd", "eur"]``) and ``default_settlement_currency`` (the
  first by default); unset, every currency settles as itself. A charge in a settlement
  currency settles in it; one in another currency is converted into the default settlement
  currency at ``fx_rates`` (``{"gbp": "1.2712"}``: units of the default settlement currency
  per unit, decimal strings): its transaction's ``amount``, ``fee``, ``net`` and
  ``currency`` are the settlement currency's and ``exchange_rate`` is set (A7: the amount
  is already converted). Its refunds and disputes convert at the same rate.

``state["ledger"]`` indexes the transactions: those still pending (so the settling every
request starts with looks at them only), those no payout holds yet, and each payout's in
booking order (so ``GET /v1/balance_transactions?payout=`` pages in O(page size)).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from sandbox.http import Response, json_bytes
from sandbox.stripe import money
from sandbox.stripe import params as p
from sandbox.stripe.errors import invalid, no_such
from sandbox.stripe.store import DAY, bad_cursor, list_window

TXN_TYPES = (
    "adjustment", "charge", "payment", "payment_refund", "payout", "payout_cancel",
    "payout_failure", "refund", "refund_failure", "stripe_fee",
)  # fmt: skip
FEE_DESCRIPTIONS = {"card": "Stripe processing fees", "dispute": "Dispute fee"}
TAX_DESCRIPTION = "Tax on Stripe fees"
JSON = {"Content-Type": "application/json"}


def fee_entry(amount: int, currency: str, description: str, kind: str) -> dict:
    return {
        "amount": amount,
        "application": None,
        "currency": currency,
        "description": description,
        "type": kind,
    }


class BalanceMixin:
    # --- the account's currencies and prices ---------------------------------------------
    def _settles_into(self, currency: str) -> tuple[str, Decimal | None]:
        """(settlement currency, exchange rate or None) of money in ``currency``."""
        config = self.state["config"]
        currencies = config.get("settlement_currencies")
        if not currencies or currency in currencies:
            return currency, None
        rate = config.get("fx_rates", {}).get(currency)
        if rate is None:
            # check_settles refused the payment without a rate; only settings changed since
            # it was made land here, and it settles as itself rather than at a made-up rate.
            return currency, None
        return config.get("default_settlement_currency") or currencies[0], Decimal(rate)

    def check_settles(self, currency: str, param: str = "currency") -> None:
        """Refuse a payment the account could not settle: a currency that is neither a
        settlement currency nor has a configured rate (a sandbox setting, not Stripe's)."""
        config = self.state["config"]
        currencies = config.get("settlement_currencies")
        if currencies and currency not in currencies and currency not in config.get("fx_rates", {}):
            raise invalid(
                f"The sandbox account settles in {', '.join(currencies)} and has no fx_rates "
                f"entry for {currency}: add one with POST /stripe/_test/config.",
                param,
            )

    def _fee_details(self, kind: str | None, amount: int, currency: str) -> list[dict]:
        """The fees of a charge (``card``) or a dispute (``dispute``) of ``amount`` in the
        settlement ``currency``: Stripe's fee, then the tax on it."""
        if kind is None:
            return []
        config = self.state["config"]
        if kind == "card":
            price = config.get("card_fees", {}).get(currency)
            fee = (
                money.card_fee(amount, currency, Decimal(price["percent"]), price["fixed"])
                if price
                else money.card_fee(amount, currency)
            )
        else:
            fee = config.get("dispute_fees", {}).get(currency, money.dispute_fee(currency))
        if not fee:
            return []
        details = [fee_entry(fee, currency, FEE_DESCRIPTIONS[kind], "stripe_fee")]
        tax = money.percent_of(fee, Decimal(config.get("fee_tax_percent", "0")))
        if tax:
            details.append(fee_entry(tax, currency, TAX_DESCRIPTION, "tax"))
        return details

    # --- booking ----------------------------------------------------------------------
    def _txn(
        self,
        *,
        type: str,
        reporting_category: str,
        amount: int,
        currency: str,
        source: str,
        fees: str | None = None,
        description: str | None = None,
        available_now: bool = False,
        like: str | None = None,
    ) -> dict:
        """Book ``amount`` minor units of ``currency`` (the source's own) in its settlement
        currency. ``fees``: ``card`` or ``dispute``, charged on the settled amount. ``like``:
        the transaction whose conversion this one repeats, e.g. a refund's or a dispute's
        charge: the same rate. (Stripe converts at the rate of the day; the sandbox has one
        rate per currency, so the same rate is the day's rate too.)"""
        if like is not None:
            base = self.find("balance_transaction", like)
            rate = Decimal(base["_rate"]) if base and base.get("_rate") else None
            settlement = base["currency"] if rate is not None else currency
        else:
            settlement, rate = self._settles_into(currency)
        gross = amount if rate is None else money.convert(amount, currency, settlement, rate)
        fee_details = self._fee_details(fees, gross, settlement)
        fee = sum(d["amount"] for d in fee_details)
        now = self.now()
        days = int(self.state["config"].get("settlement_days", 2))
        txn = {
            "id": self.new_id("txn"),
            "object": "balance_transaction",
            "amount": gross,
            "available_on": now if available_now else now + days * DAY,
            "balance_type": "payments",
            "created": now,
            "currency": settlement,
            "description": description,
            # A JSON number, as Stripe sends it; check_rate kept the digits a float keeps.
            "exchange_rate": None if rate is None else float(rate),
            "fee": fee,
            "fee_details": fee_details,
            "net": gross - fee,
            "reporting_category": reporting_category,
            "source": source,
            "status": "available" if available_now else "pending",
            "type": type,
            "_payout": None,
            "_rate": None if rate is None else str(rate),
        }
        return self._book(txn)

    def _book(self, txn: dict) -> dict:
        self.insert(txn)
        ledger = self.ledger()
        if txn["status"] == "pending":
            ledger["pending"][txn["id"]] = txn["available_on"]
        ledger["unpaid"][txn["id"]] = None
        return txn

    def ledger(self) -> dict:
        """The transaction indexes, rebuilt from the transactions for a state saved before
        they existed."""
        ledger = self.state.get("ledger")
        if ledger is None:
            ledger = self.state["ledger"] = {"pending": {}, "unpaid": {}, "payouts": {}}
            for txn in self.table("balance_transaction").values():
                if txn["status"] == "pending":
                    ledger["pending"][txn["id"]] = txn["available_on"]
                if txn["_payout"] is None:
                    ledger["unpaid"][txn["id"]] = None
                else:
                    held = ledger["payouts"].setdefault(txn["_payout"], [])
                    txn["_payout_pos"] = len(held)
                    held.append(txn["id"])
        return ledger

    def _link(self, txn: dict, payout_id: str) -> None:
        """``txn`` is part of payout ``payout_id``: listed with it, never paid out again."""
        ledger = self.ledger()
        held = ledger["payouts"].setdefault(payout_id, [])
        txn["_payout"] = payout_id
        txn["_payout_pos"] = len(held)
        held.append(txn["id"])
        ledger["unpaid"].pop(txn["id"], None)

    def balance_body(self) -> dict:
        available: dict[str, int] = {}
        pending: dict[str, int] = {}
        for txn in self.table("balance_transaction").values():
            bucket = available if txn["status"] == "available" else pending
            bucket[txn["currency"]] = bucket.get(txn["currency"], 0) + txn["net"]
        currencies = sorted(set(available) | set(pending)) or ["usd"]

        def entries(bucket: dict) -> list[dict]:
            return [
                {
                    "amount": bucket.get(c, 0),
                    "currency": c,
                    "source_types": {"card": bucket.get(c, 0)},
                }
                for c in currencies
            ]

        return {
            "object": "balance",
            "available": entries(available),
            "livemode": False,
            "pending": entries(pending),
        }

    def available_balance(self, currency: str) -> int:
        return sum(
            t["net"]
            for t in self.table("balance_transaction").values()
            if t["status"] == "available" and t["currency"] == currency
        )

    def make_available(self) -> int:
        """Pending transactions whose ``available_on`` has come become available."""
        pending = self.ledger()["pending"]
        if not pending:
            return 0
        now = self.now()
        due = [txn_id for txn_id, at in pending.items() if at <= now]
        table = self.table("balance_transaction")
        for txn_id in due:
            del pending[txn_id]
            table[txn_id]["status"] = "available"
        if due:
            self.emit("balance.available", self.balance_body())
        return len(due)

    # --- API ------------------------------------------------------------------------
    def api_balance(self, call) -> dict:
        p.check_known(call.params, ())
        return self.balance_body()

    def api_balance_transactions_list(self, call) -> dict:
        params = call.params
        p.check_known(
            params,
            (
                "created",
                "currency",
                "ending_before",
                "limit",
                "payout",
                "source",
                "starting_after",
                "type",
            ),
        )
        payout_id = p.text(params, "payout")
        if payout_id is not None:
            payout = self.find("payout", payout_id)
            if payout is None:
                raise no_such("payout", payout_id, "payout", 400)
            if not payout["automatic"]:
                raise invalid(
                    "Balance transaction history can only be filtered on automatic transfers, "
                    "not manual.",
                    "payout",
                )
        kind = p.text(params, "type", choices=TXN_TYPES)
        source = p.text(params, "source")
        currency = p.text(params, "currency")
        created = p.range_filter(params, "created")
        keep = None
        if kind is not None or source is not None or currency is not None or created:

            def keep(t: dict) -> bool:
                if kind is not None and t["type"] != kind:
                    return False
                if source is not None and t["source"] != source:
                    return False
                if currency is not None and t["currency"] != currency.lower():
                    return False
                return not created or created(t["created"])

        url = "/v1/balance_transactions"
        if payout_id is not None:
            return self._payout_page(payout_id, params, keep, url)
        return self.list_body(self.newest_first("balance_transaction", keep), params, url)

    def _payout_page(
        self, payout_id: str, params: dict, keep: Callable[[dict], bool] | None, url: str
    ) -> dict:
        """A page of a payout's transactions, newest first, walked from the payout's index:
        a page costs its size (plus what ``keep`` skips), however large the payout."""
        limit, after, before = list_window(params)
        held = self.ledger()["payouts"].get(payout_id, [])
        table = self.table("balance_transaction")

        def position(txn_id: str, param: str) -> int:
            txn = table.get(txn_id)
            if txn is None or txn["_payout"] != payout_id:
                raise bad_cursor(txn_id, param)
            return txn["_payout_pos"]

        page: list[dict] = []
        if before:  # the `limit` newer ones next to it, shown newest first
            for index in range(position(before, "ending_before") + 1, len(held)):
                txn = table[held[index]]
                if keep is None or keep(txn):
                    page.append(txn)
                    if len(page) > limit:
                        break
            has_more = len(page) > limit
            page = page[:limit][::-1]
        else:
            start = position(after, "starting_after") - 1 if after else len(held) - 1
            has_more = False
            for index in range(start, -1, -1):
                txn = table[held[index]]
                if keep is None or keep(txn):
                    if len(page) == limit:
                        has_more = True
                        break
                    page.append(txn)
        body = self.page_body(page, has_more, params, url, share=True)
        # Encoded here, under the lock, as the body shares the store's objects.
        return Response(200, json_bytes(body), dict(JSON))

    def api_balance_transactions_retrieve(self, call) -> dict:
        return self.render(self.get("balance_transaction", call.path["id"]), call.expand)
