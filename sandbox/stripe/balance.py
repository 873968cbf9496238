"""Balance, balance transactions and automatic payouts.

Every money movement books a balance transaction. Charge funds are ``pending`` until
``available_on`` (created + ``settlement_days``, 2 by default); refunds, disputes and payouts
move the available balance at once. The payout run (a test hook) pays out, per currency, the
whole available balance not yet paid out, and links each included transaction to the payout so
``GET /v1/balance_transactions?payout=po_...`` lists them (with the payout's own row): their
nets sum to zero.
"""

from __future__ import annotations

from sandbox.stripe import params as p
from sandbox.stripe.errors import invalid, no_such
from sandbox.stripe.store import DAY

TXN_TYPES = (
    "adjustment", "charge", "payment", "payment_refund", "payout", "payout_cancel",
    "payout_failure", "refund", "refund_failure", "stripe_fee",
)  # fmt: skip
PAYOUT_FAILURES = {
    "account_closed": "The bank account has been closed.",
    "account_frozen": "The bank account has been frozen.",
    "insufficient_funds": "Your Stripe account has insufficient funds to cover the payout.",
    "invalid_account_number": "The bank account number appears to be invalid.",
    "no_account": "The bank account could not be located.",
    "declined": "The bank has declined this transfer.",
}


class BalanceMixin:
    # --- booking ----------------------------------------------------------------------
    def _txn(
        self,
        *,
        type: str,
        reporting_category: str,
        amount: int,
        currency: str,
        source: str,
        fee: int = 0,
        fee_description: str = "Stripe processing fees",
        description: str | None = None,
        available_now: bool = False,
    ) -> dict:
        now = self.now()
        days = int(self.state["config"].get("settlement_days", 2))
        txn = {
            "id": self.new_id("txn"),
            "object": "balance_transaction",
            "amount": amount,
            "available_on": now if available_now else now + days * DAY,
            "balance_type": "payments",
            "created": now,
            "currency": currency,
            "description": description,
            "exchange_rate": None,
            "fee": fee,
            "fee_details": (
                [
                    {
                        "amount": fee,
                        "application": None,
                        "currency": currency,
                        "description": fee_description,
                        "type": "stripe_fee",
                    }
                ]
                if fee
                else []
            ),
            "net": amount - fee,
            "reporting_category": reporting_category,
            "source": source,
            "status": "available" if available_now else "pending",
            "type": type,
            "_payout": None,
        }
        return self.insert(txn)

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

    def make_available(self) -> int:
        """Pending transactions whose ``available_on`` has come become available."""
        now = self.now()
        changed = 0
        for txn in self.table("balance_transaction").values():
            if txn["status"] == "pending" and txn["available_on"] <= now:
                txn["status"] = "available"
                changed += 1
        if changed:
            self.emit("balance.available", self.balance_body())
        return changed

    def run_payouts(self) -> dict:
        """Mark payouts in transit as paid, settle what is due, then pay out the available
        balance of each currency as one automatic payout."""
        paid = []
        for payout in list(self.table("payout").values()):
            if payout["status"] == "in_transit" and payout["automatic"]:
                payout["status"] = "paid"
                self.emit("payout.paid", payout, {"status": "in_transit"})
                paid.append(payout["id"])
        self.make_available()
        unpaid: dict[str, list[dict]] = {}
        for txn in self.table("balance_transaction").values():
            if txn["status"] == "available" and txn["_payout"] is None:
                unpaid.setdefault(txn["currency"], []).append(txn)
        created = []
        for currency, txns in sorted(unpaid.items()):
            amount = sum(t["net"] for t in txns)
            if amount <= 0:
                continue
            payout = self._new_payout(amount, currency)
            for txn in txns:
                txn["_payout"] = payout["id"]
            payout["reconciliation_status"] = "completed"
            self.emit("payout.reconciliation_completed", payout)
            created.append(payout["id"])
        return {"created": created, "paid": paid, "now": self.now()}

    def _new_payout(self, amount: int, currency: str) -> dict:
        payout_id = self.new_id("po")
        now = self.now()
        txn = self._txn(
            type="payout",
            reporting_category="payout",
            amount=-amount,
            currency=currency,
            source=payout_id,
            description="STRIPE PAYOUT",
            available_now=True,
        )
        txn["_payout"] = payout_id
        payout = {
            "id": payout_id,
            "object": "payout",
            "amount": amount,
            "application_fee": None,
            "application_fee_amount": None,
            "arrival_date": now + DAY,
            "automatic": True,
            "balance_transaction": txn["id"],
            "created": now,
            "currency": currency,
            "description": "STRIPE PAYOUT",
            "destination": "ba_sandbox0bank0account",
            "failure_balance_transaction": None,
            "failure_code": None,
            "failure_message": None,
            "livemode": False,
            "metadata": {},
            "method": "standard",
            "original_payout": None,
            "reconciliation_status": "in_progress",
            "reversed_by": None,
            "source_type": "card",
            "statement_descriptor": None,
            "status": "in_transit",
            "trace_id": {"status": "pending", "value": None},
            "type": "bank_account",
        }
        self.insert(payout)
        self.emit("payout.created", payout)
        return payout

    def fail_payout(self, payout: dict, code: str) -> dict:
        """Test helper: the bank returns the payout; the money goes back to the balance."""
        if payout["status"] not in ("in_transit", "paid", "pending"):
            raise invalid(f"Payout {payout['id']} has a status of {payout['status']}.")
        if code not in PAYOUT_FAILURES:
            raise invalid(
                f"failure_code must be one of {', '.join(PAYOUT_FAILURES)}", "failure_code"
            )
        txn = self._txn(
            type="payout_failure",
            reporting_category="payout_reversal",
            amount=payout["amount"],
            currency=payout["currency"],
            source=payout["id"],
            description="STRIPE PAYOUT FAILURE",
            available_now=True,
        )
        before = payout["status"]
        payout.update(
            status="failed",
            failure_code=code,
            failure_message=PAYOUT_FAILURES[code],
            failure_balance_transaction=txn["id"],
        )
        self.emit("payout.failed", payout, {"status": before})
        return payout

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

        def keep(t: dict) -> bool:
            if payout_id is not None and t["_payout"] != payout_id:
                return False
            if kind is not None and t["type"] != kind:
                return False
            if source is not None and t["source"] != source:
                return False
            if currency is not None and t["currency"] != currency.lower():
                return False
            return not created or created(t["created"])

        items = self.newest_first("balance_transaction", keep)
        return self.list_body(items, params, "/v1/balance_transactions")

    def api_balance_transactions_retrieve(self, call) -> dict:
        return self.render(self.get("balance_transaction", call.path["id"]), call.expand)

    def api_payouts_list(self, call) -> dict:
        params = call.params
        p.check_known(
            params,
            (
                "arrival_date",
                "created",
                "destination",
                "ending_before",
                "limit",
                "starting_after",
                "status",
            ),
        )
        status = p.text(
            params, "status", choices=("pending", "paid", "failed", "canceled", "in_transit")
        )
        created = p.range_filter(params, "created")
        arrival = p.range_filter(params, "arrival_date")
        destination = p.text(params, "destination")

        def keep(po: dict) -> bool:
            if status is not None and po["status"] != status:
                return False
            if destination is not None and po["destination"] != destination:
                return False
            if arrival and not arrival(po["arrival_date"]):
                return False
            return not created or created(po["created"])

        return self.list_body(self.newest_first("payout", keep), params, "/v1/payouts")

    def api_payouts_retrieve(self, call) -> dict:
        return self.render(self.get("payout", call.path["id"]), call.expand)

    def api_payouts_update(self, call) -> dict:
        payout = self.get("payout", call.path["id"])
        p.check_known(call.params, ("metadata",))
        new_metadata = p.metadata(call.params, payout["metadata"])
        if new_metadata is not None and new_metadata != payout["metadata"]:
            previous = {"metadata": payout["metadata"]}
            payout["metadata"] = new_metadata
            self.emit("payout.updated", payout, previous)
        return self.render(payout, call.expand)
