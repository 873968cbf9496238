"""Test hooks under ``/stripe/_test/`` (no API key needed; JSON or form bodies), the sandbox
clock, and scheduled work (pending refunds settling, processing payments finishing, Checkout
Sessions expiring).

    GET  /stripe/_test/clock                       {"now", "offset", "frozen"}
    POST /stripe/_test/clock                       {"frozen": true}: stop the wall clock (only
                                                    advance_time moves it: tests of due times
                                                    are exact); {"frozen": false}: run on from
                                                    there. A reset unfreezes it.
    POST /stripe/_test/advance_time                {"seconds": N}: move the clock, run what is due
    POST /stripe/_test/settle                      run every scheduled action now (not expiries:
                                                    a Checkout Session expires with the clock)
    POST /stripe/_test/run_payouts                 a payout run (sandbox.stripe.payouts):
                                                    {"created", "paid", "in_transit", "now"}
    POST /stripe/_test/config                      the account's settings, answered in full:
                                                    "settlement_days", "async_settle_seconds",
                                                    "webhook_retry_delays": [..],
                                                    "payout_interval_seconds" (0: off),
                                                    "payout_schedule" ("automatic" or
                                                    "manual": no automatic payouts), and
                                                    the fees and currencies of
                                                    sandbox.stripe.balance ("card_fees",
                                                    "dispute_fees", "fee_tax_percent",
                                                    "settlement_currencies",
                                                    "default_settlement_currency", "fx_rates";
                                                    each replaced whole, null restores the
                                                    default)
    POST /stripe/_test/payouts/seed                {"count": N, "currency": "usd", "amount":
                                                    1000, "metadata": {"k": "BENCH-{i}"},
                                                    "refunds_every": 0, "refund_amount": null}:
                                                    N paid payments and one paid automatic
                                                    payout holding them, no events. 200:
                                                    {"payout", "count", "amount", "currency"}
    POST /stripe/_test/payouts/{id}/fail           {"failure_code": "account_closed"}
    POST /stripe/_test/disputes/{id}/resolve       {"status": "won" | "lost"}
    POST /stripe/_test/checkout/sessions/{id}/pay  {"payment_method": "pm_card_visa"}: the
                                                    customer submits the hosted page with that
                                                    card (any test PaymentMethod id, or a pm_
                                                    the session's customer may use). 200: the
                                                    completed session; 402: the card error of
                                                    the decline (the session stays open, its
                                                    payment_intent set; pay again to retry);
                                                    400: the session is not open, or a bad
                                                    payment_method; 404: no such session. With
                                                    "redirect": "true" (the page's form) it
                                                    answers 303: to success_url (with
                                                    {CHECKOUT_SESSION_ID} filled in) on success,
                                                    else back to the page, which shows why.
"""

from __future__ import annotations

import json
import time

from sandbox.http import Response, decode_nested_form
from sandbox.stripe import money
from sandbox.stripe import params as p
from sandbox.stripe.errors import StripeError, invalid

SEED_MAX = 200_000
ACTIONS = ("settle_payment", "settle_refund", "expire_checkout_session")
CLOCK_ONLY = frozenset({"expire_checkout_session"})
"""Actions that only the clock runs: ``/_test/settle`` leaves them scheduled."""


def hook_body(request) -> dict:
    if not request.body:
        return {}
    content_type = request.headers.get("Content-Type", "")
    if "json" in content_type or request.body.lstrip().startswith(b"{"):
        try:
            data = json.loads(request.body)
        except ValueError:
            raise invalid("The body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise invalid("The body must be a JSON object.")
        return data
    return decode_nested_form(request.body.decode())


def _number(value, name: str, cast=int):
    try:
        return cast(value)
    except (TypeError, ValueError):
        raise invalid(f"{name} must be a number", name) from None


def _whole(value, name: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise invalid(f"{name} must be a whole number", name)
    number = _number(value, name)
    if number < minimum:
        raise invalid(f"{name} must be at least {minimum}", name)
    return number


def _mapping(value, name: str) -> dict:
    if not isinstance(value, dict):
        raise invalid(f"{name} must be an object keyed by currency", name)
    return {money.check_currency(k, f"{name}[{k}]"): v for k, v in value.items()}


def _currencies(value, name: str) -> list[str]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list):
        raise invalid(f"{name} must be a list of currencies", name)
    listed = [money.check_currency(str(v).strip(), name) for v in value]
    return list(dict.fromkeys(listed))


def _card_fees(value, name: str) -> dict:
    fees = {}
    for currency, price in _mapping(value, name).items():
        where = f"{name}[{currency}]"
        if not isinstance(price, dict) or set(price) - {"percent", "fixed"}:
            raise invalid(f'{where} must be {{"percent": "2.9", "fixed": 30}}', where)
        percent = money.decimal_text(price.get("percent", "0"), f"{where}[percent]")
        fixed = _whole(price.get("fixed", 0), f"{where}[fixed]")
        fees[currency] = {"percent": str(percent), "fixed": fixed}
    return fees


def _choice(value, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise invalid(f"{name} must be one of {', '.join(choices)}", name)
    return value


# The account's settings besides the webhook delays: name → its check (the stored value).
SETTINGS = {
    "settlement_days": lambda v, n: _number(v, n),
    "async_settle_seconds": lambda v, n: _number(v, n),
    "payout_interval_seconds": lambda v, n: _whole(v, n),
    "payout_schedule": lambda v, n: _choice(v, n, ("automatic", "manual")),
    "settlement_currencies": _currencies,
    "default_settlement_currency": lambda v, n: money.check_currency(v, n),
    "fx_rates": lambda v, n: {
        c: str(money.decimal_text(r, f"{n}[{c}]", positive=True)) for c, r in _mapping(v, n).items()
    },
    "card_fees": _card_fees,
    "dispute_fees": lambda v, n: {c: _whole(f, f"{n}[{c}]") for c, f in _mapping(v, n).items()},
    "fee_tax_percent": lambda v, n: str(money.decimal_text(v, n)),
}


class TestingMixin:
    default_config: dict

    # --- scheduled work ---------------------------------------------------------------
    def schedule(self, delay: int, action: str, object_id: str) -> None:
        assert action in ACTIONS
        self.state["scheduled"].append(
            {"at": self.now() + delay, "action": action, "id": object_id}
        )

    def run_due(self, force: bool = False) -> int:
        now = self.now()
        scheduled = self.state["scheduled"]
        due = [a for a in scheduled if a["at"] <= now or (force and a["action"] not in CLOCK_ONLY)]
        if due:
            self.state["scheduled"] = [a for a in scheduled if a not in due]
            for action in sorted(due, key=lambda a: a["at"]):
                if action["action"] in ACTIONS:
                    getattr(self, action["action"])(action["id"])
        self.make_available()
        self.payouts_due()
        return len(due)

    # --- hooks ------------------------------------------------------------------------
    def hook_clock(self, call) -> dict:
        return self._clock()

    def _clock(self) -> dict:
        return {
            "now": self.now(),
            "offset": self.state["clock_offset"],
            "frozen": self.state.get("clock_frozen") is not None,
        }

    def hook_set_clock(self, call) -> dict:
        data = hook_body(call.request)
        for key in data:
            if key != "frozen":
                raise invalid(f"Unknown setting: {key}", key)
        frozen = data.get("frozen")
        if isinstance(frozen, str):
            frozen = p.boolean(data, "frozen")
        if not isinstance(frozen, bool):
            raise invalid("frozen must be true or false", "frozen")
        stopped_at = self.state.get("clock_frozen")
        if frozen and stopped_at is None:
            self.state["clock_frozen"] = int(time.time())
        elif not frozen and stopped_at is not None:
            # Run on from the frozen instant: the clock never jumps.
            self.state["clock_offset"] += stopped_at - int(time.time())
            self.state["clock_frozen"] = None
        return self._clock()

    def hook_advance_time(self, call) -> dict:
        data = hook_body(call.request)
        seconds = _number(data.get("seconds", 0), "seconds")
        if seconds < 0:
            raise invalid("The sandbox clock only moves forward.", "seconds")
        self.state["clock_offset"] += seconds
        ran = self.run_due()
        return {**self._clock(), "ran": ran}

    def hook_settle(self, call) -> dict:
        return {"ran": self.run_due(force=True)}

    def hook_run_payouts(self, call) -> dict:
        return self.run_payouts()

    def hook_config(self, call) -> dict:
        data = hook_body(call.request)
        for key in data:
            if key != "webhook_retry_delays" and key not in SETTINGS:
                raise invalid(f"Unknown setting: {key}", key)
        # Every value is checked before any is kept: a refused request changes nothing.
        config = dict(self.state["config"])
        delays = None
        for key, value in data.items():
            if key == "webhook_retry_delays":
                if isinstance(value, str):
                    value = [v for v in value.split(",") if v]
                delays = config[key] = [_number(v, key, float) for v in value]
            elif value is None or value == "":
                config.pop(key, None)
            else:
                config[key] = SETTINGS[key](value, key)
        currencies = config.get("settlement_currencies")
        if not currencies:
            config.pop("settlement_currencies", None)
        default = config.get("default_settlement_currency")
        if default is not None and default not in (currencies or ()):
            raise invalid(
                "default_settlement_currency must be one of the settlement_currencies",
                "default_settlement_currency",
            )
        self.state["config"] = config
        if delays is not None:
            self.webhooks.retry_delays = tuple(delays)
        if "payout_interval_seconds" in data:  # the schedule starts over from now
            self.state["payout_schedule"] = {}
            self.payouts_due()
        return {**self.default_config, **config}

    def hook_seed_payout(self, call) -> dict:
        data = hook_body(call.request)
        known = ("amount", "count", "currency", "metadata", "refund_amount", "refunds_every")
        for key in data:
            if key not in known:
                raise invalid(f"Unknown setting: {key}", key)
        count = _whole(data.get("count", 0), "count", 1)
        if count > SEED_MAX:
            raise invalid(f"count must be at most {SEED_MAX}", "count")
        currency = money.check_currency(data.get("currency", "usd"))
        self.check_settles(currency)
        amount = _whole(data.get("amount", 1000), "amount", 1)
        money.check_amount(amount, currency)
        metadata = data.get("metadata") or {}
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise invalid("metadata must be an object of strings", "metadata")
        p.metadata({"metadata": metadata})  # Stripe's limits on keys and values
        every = _whole(data.get("refunds_every", 0), "refunds_every")
        refund_amount = data.get("refund_amount")
        if refund_amount is not None:
            refund_amount = _whole(refund_amount, "refund_amount", 1)
            if refund_amount >= amount:
                raise invalid("refund_amount must be less than amount (a partial refund)")
        payout = self.seed_payout(
            count=count,
            currency=currency,
            amount=amount,
            metadata=metadata,
            refunds_every=every,
            refund_amount=refund_amount,
        )
        return {
            "payout": payout["id"],
            "count": count,
            "amount": payout["amount"],
            "currency": payout["currency"],
        }

    def hook_fail_payout(self, call) -> dict:
        data = hook_body(call.request)
        payout = self.get("payout", call.path["id"])
        return self.render(
            self.fail_payout(payout, str(data.get("failure_code", "account_closed")))
        )

    def hook_resolve_dispute(self, call) -> dict:
        data = hook_body(call.request)
        dispute = self.get("dispute", call.path["id"])
        return self.render(self.resolve_dispute(dispute, str(data.get("status", ""))))

    def hook_pay_checkout_session(self, call) -> dict | Response:
        data = hook_body(call.request)
        session = self.get("checkout.session", call.path["id"])
        pm_ref = p.text(data, "payment_method")
        if str(data.get("redirect", "")).lower() != "true":
            return self.render(self.pay_checkout_session(session, pm_ref))
        try:
            self.pay_checkout_session(session, pm_ref)
        except StripeError:
            location = f"/{self.name}/checkout/pay/{session['id']}"  # the page says why
        else:
            location = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"])
        return Response(303, b"", {"Location": location, "Content-Type": "text/html"})
