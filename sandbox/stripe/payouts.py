"""Payouts: automatic ones by a payout run, manual ones by the API (stripe.md A7).

A payout run (``POST /stripe/_test/run_payouts``, or by itself every
``payout_interval_seconds`` of the sandbox clock when that setting is above 0) first moves
the payouts on: in transit → ``paid`` (``payout.paid``), a manual payout pending → in
transit (``payout.updated``). Then it settles what is due and pays out, per settlement
currency, the available balance no payout holds yet as one automatic payout (in transit,
``reconciliation_status`` completed; ``payout.created``, ``payout.reconciliation_completed``):
it holds those transactions and its own ``payout`` row of -amount, so
``GET /v1/balance_transactions?payout=po_...`` lists them and their nets sum to zero.

The account's payout schedule (``GET /v1/account``: ``settings.payouts.schedule``) is
automatic (``interval`` daily), or manual when the setting ``payout_schedule`` is
"manual": then a payout run makes no automatic payout, only moves the payouts on, and
the balance is paid out only by ``POST /v1/payouts``, whose payouts nothing itemises.

``POST /v1/payouts`` makes a manual payout (``automatic: false``, ``reconciliation_status``
not_applicable) out of the available balance of its currency (400 ``balance_insufficient``
when short), pending until the next runs. It books its own ``payout`` row and holds no
transactions (``payout=`` refuses it, as Stripe does). Its row, like the rows that return
money from a canceled (``payout_cancel``) or failed (``payout_failure``) payout, is part of
the balance the next automatic payout pays out, so that payout's rows still sum to zero
(the sandbox's reading: Stripe's docs say only that manual payouts are not itemised).
"""

from __future__ import annotations

import gc
from contextlib import contextmanager

from sandbox.stripe import money
from sandbox.stripe import params as p
from sandbox.stripe.errors import StripeError, invalid, no_such
from sandbox.stripe.store import DAY

BANK_ACCOUNT = "ba_sandbox0bank0account"
ACCOUNT = "acct_sandbox0account"
PAYOUT_FAILURES = {
    "account_closed": "The bank account has been closed.",
    "account_frozen": "The bank account has been frozen.",
    "insufficient_funds": "Your Stripe account has insufficient funds to cover the payout.",
    "invalid_account_number": "The bank account number appears to be invalid.",
    "no_account": "The bank account could not be located.",
    "declined": "The bank has declined this transfer.",
}
CREATE_PARAMS = (
    "amount", "currency", "description", "destination", "metadata", "method", "source_type",
    "statement_descriptor",
)  # fmt: skip
INSUFFICIENT = (
    "You have insufficient funds in your Stripe account for this transfer. Your card balance "
    "is too low. You can use the /v1/balance endpoint to view your Stripe balance (for more "
    "details, see stripe.com/docs/api#balance)."
)


@contextmanager
def _no_collection():
    """No garbage collection while a seed makes millions of objects that all live on, and
    none of them in the collections after: each full collection would walk them all (it
    doubles a 50,000-payment seed's time and halves the listing's rate after it)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


class PayoutsMixin:
    # --- payout runs --------------------------------------------------------------------
    def run_payouts(self) -> dict:
        """Move the payouts on, settle what is due, then pay out the available balance of
        each currency as one automatic payout."""
        paid, in_transit = [], []
        for payout in list(self.table("payout").values()):
            if payout["status"] == "in_transit":
                payout["status"] = "paid"
                self.emit("payout.paid", payout, {"status": "in_transit"})
                paid.append(payout["id"])
            elif payout["status"] == "pending":
                payout["status"] = "in_transit"
                self.emit("payout.updated", payout, {"status": "pending"})
                in_transit.append(payout["id"])
        self.make_available()
        if self.manual_schedule():
            return {"created": [], "paid": paid, "in_transit": in_transit, "now": self.now()}
        table = self.table("balance_transaction")
        unpaid: dict[str, list[dict]] = {}
        for txn_id in self.ledger()["unpaid"]:
            txn = table[txn_id]
            if txn["status"] == "available":
                unpaid.setdefault(txn["currency"], []).append(txn)
        created = []
        for currency, txns in sorted(unpaid.items()):
            amount = sum(t["net"] for t in txns)
            if amount <= 0:
                continue
            payout = self._new_payout(amount, currency, holds=txns)
            payout["reconciliation_status"] = "completed"
            self.emit("payout.reconciliation_completed", payout)
            created.append(payout["id"])
        return {"created": created, "paid": paid, "in_transit": in_transit, "now": self.now()}

    def manual_schedule(self) -> bool:
        return self.state["config"].get("payout_schedule") == "manual"

    def api_account(self, call) -> dict:
        """The account, as far as reconciliation reads it: its payout schedule."""
        p.check_known(call.params, ("expand",))
        manual = self.manual_schedule()
        return {
            "id": ACCOUNT,
            "object": "account",
            "country": "US",
            "default_currency": "usd",
            "livemode": False,
            "payouts_enabled": True,
            "settings": {
                "payouts": {
                    "debit_negative_balances": False,
                    "schedule": {
                        "delay_days": int(self.state["config"].get("settlement_days", 2)),
                        "interval": "manual" if manual else "daily",
                    },
                    "statement_descriptor": None,
                }
            },
        }

    def payouts_due(self) -> None:
        """Pay out by the schedule (``payout_interval_seconds`` of the sandbox clock; 0, the
        default, is off). Runs under the lock, from the server's ticker and before each
        request (so ``advance_time`` past a due run makes it at once)."""
        interval = int(self.state["config"].get("payout_interval_seconds", 0))
        if interval <= 0:
            return
        now = self.now()
        due = self.state.setdefault("payout_schedule", {}).get("next_at")
        if due is None or now >= due:
            if due is not None:
                self.run_payouts()
            self.state["payout_schedule"]["next_at"] = now + interval

    def _new_payout(
        self,
        amount: int,
        currency: str,
        *,
        holds: list[dict] | None = None,
        automatic: bool = True,
        status: str = "in_transit",
        **fields,
    ) -> dict:
        """A payout of ``amount``, with its own ``payout`` row of -amount. An automatic one
        ``holds`` transactions, listed before its own row; a manual one holds none (its
        row stays in the balance the next automatic payout pays out)."""
        payout_id = self.new_id("po")
        now = self.now()
        for txn in holds or ():
            self._link(txn, payout_id)
        txn = self._txn(
            type="payout",
            reporting_category="payout",
            amount=-amount,
            currency=currency,
            source=payout_id,
            description=fields.get("description") or "STRIPE PAYOUT",
            available_now=True,
        )
        if automatic:
            self._link(txn, payout_id)
        payout = {
            "id": payout_id,
            "object": "payout",
            "amount": amount,
            "application_fee": None,
            "application_fee_amount": None,
            "arrival_date": now + DAY,
            "automatic": automatic,
            "balance_transaction": txn["id"],
            "created": now,
            "currency": currency,
            "description": "STRIPE PAYOUT",
            "destination": BANK_ACCOUNT,
            "failure_balance_transaction": None,
            "failure_code": None,
            "failure_message": None,
            "livemode": False,
            "metadata": {},
            "method": "standard",
            "original_payout": None,
            "reconciliation_status": "in_progress" if automatic else "not_applicable",
            "reversed_by": None,
            "source_type": "card",
            "statement_descriptor": None,
            "status": status,
            "trace_id": {"status": "pending", "value": None},
            "type": "bank_account",
            **fields,
        }
        self.insert(payout)
        self.emit("payout.created", payout)
        return payout

    def _payout_returned(self, payout: dict, kind: str, description: str) -> dict:
        """The money of a payout that never reached the bank (``payout_failure``,
        ``payout_cancel``) back in the balance."""
        return self._txn(
            type=kind,
            reporting_category="payout_reversal",
            amount=payout["amount"],
            currency=payout["currency"],
            source=payout["id"],
            description=description,
            available_now=True,
        )

    def fail_payout(self, payout: dict, code: str) -> dict:
        """Test helper: the bank returns the payout; the money goes back to the balance."""
        if payout["status"] not in ("in_transit", "paid", "pending"):
            raise invalid(f"Payout {payout['id']} has a status of {payout['status']}.")
        if code not in PAYOUT_FAILURES:
            raise invalid(
                f"failure_code must be one of {', '.join(PAYOUT_FAILURES)}", "failure_code"
            )
        txn = self._payout_returned(payout, "payout_failure", "STRIPE PAYOUT FAILURE")
        before = payout["status"]
        payout.update(
            status="failed",
            failure_code=code,
            failure_message=PAYOUT_FAILURES[code],
            failure_balance_transaction=txn["id"],
        )
        self.emit("payout.failed", payout, {"status": before})
        return payout

    def seed_payout(
        self,
        *,
        count: int,
        currency: str,
        amount: int,
        metadata: dict[str, str],
        refunds_every: int = 0,
        refund_amount: int | None = None,
    ) -> dict:
        """Book ``count`` paid card payments and one paid automatic payout holding them all,
        with no events (a benchmark's fixture, ``POST /_test/payouts/seed``). Each payment
        is a succeeded, captured PaymentIntent with its charge and an available balance
        transaction with the account's fees; its metadata (on the PaymentIntent and the
        charge) is ``metadata`` with ``{i}`` replaced by its number, 1..count. Every
        ``refunds_every``-th is partly refunded (``refund_amount``, half by default)."""
        # One card pays for them all: 4000000000000077 puts the funds in the available
        # balance at once, as if the days to settle had passed.
        pm = self._usable_pm("pm_card_bypassPending")
        pm["_used"] = True
        txns, total = [], 0
        with self.quiet(), _no_collection():
            for number in range(1, count + 1):
                tag = str(number)
                values = {k: v.replace("{i}", tag) for k, v in metadata.items()}
                pi = self._new_intent(amount, currency, None, {"metadata": values}, pm=pm)
                charge = self._new_charge(pi, pm)
                pi["latest_charge"] = charge["id"]
                self._authorize(charge)
                self._capture_charge(charge, amount)
                pi.update(status="succeeded", amount_received=amount)
                txn = self.table("balance_transaction")[charge["balance_transaction"]]
                txns.append(txn)
                total += txn["net"]
                if refunds_every and number % refunds_every == 0:
                    refund_txn = self._seed_refund(charge, refund_amount)
                    txns.append(refund_txn)
                    total += refund_txn["net"]
            if total <= 0:
                raise invalid("The seeded payments net nothing to pay out.", "amount")
            payout = self._new_payout(
                total, txns[0]["currency"], holds=txns, status="paid", arrival_date=self.now()
            )
            payout["reconciliation_status"] = "completed"
        return payout

    def _seed_refund(self, charge: dict, amount: int | None) -> dict:
        """A succeeded partial refund of a seeded charge; its balance transaction."""
        amount = charge["amount"] // 2 if amount is None else amount
        refund = self._new_refund(
            charge, amount, reason="requested_by_customer", metadata={}, pending=False
        )
        self.insert(refund)
        # Not _sync_refunded: it sums all the account's refunds, once per refund.
        charge["amount_refunded"] = amount
        charge["refunded"] = amount >= charge["amount"]
        return self.table("balance_transaction")[refund["balance_transaction"]]

    # --- API ------------------------------------------------------------------------
    def api_payouts_create(self, call) -> dict:
        params = call.params
        p.check_known(params, CREATE_PARAMS)
        amount = p.integer(params, "amount", required=True, minimum=1)
        currency = money.check_currency(p.text(params, "currency", required=True))
        money.check_payout_amount(amount, currency)
        method = p.text(params, "method", choices=("standard", "instant")) or "standard"
        source_type = (
            p.text(params, "source_type", choices=("bank_account", "card", "fpx")) or "card"
        )
        destination = p.text(params, "destination")
        if destination is not None and destination != BANK_ACCOUNT:
            raise no_such("external account", destination, "destination", 400)
        fields = {
            "description": p.text(params, "description", max_length=5000),
            "metadata": p.metadata(params) or {},
            "method": method,
            "source_type": source_type,
            "statement_descriptor": p.text(params, "statement_descriptor", max_length=22),
        }
        if self.available_balance(currency) < amount:
            raise StripeError(400, INSUFFICIENT, code="balance_insufficient")
        payout = self._new_payout(amount, currency, automatic=False, status="pending", **fields)
        if method == "instant":
            payout["arrival_date"] = payout["created"]
        return self.render(payout, call.expand)

    def api_payouts_cancel(self, call) -> dict:
        payout = self.get("payout", call.path["id"])
        p.check_known(call.params, ())
        if payout["status"] != "pending":
            raise invalid(
                f"Payout {payout['id']} has a status of {payout['status']}: only a pending "
                "payout can be canceled."
            )
        txn = self._payout_returned(payout, "payout_cancel", "STRIPE PAYOUT CANCEL")
        payout.update(status="canceled", failure_balance_transaction=txn["id"])
        self.emit("payout.canceled", payout, {"status": "pending"})
        return self.render(payout, call.expand)

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
        self.update_metadata(payout, call.params, "payout.updated")
        return self.render(payout, call.expand)
