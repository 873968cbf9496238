"""Charges: made by PaymentIntent confirmation; retrieve, list, update, capture."""

from __future__ import annotations

import copy
import random

from sandbox.stripe import money
from sandbox.stripe import params as p
from sandbox.stripe.cards import DECLINES, Decline
from sandbox.stripe.errors import invalid
from sandbox.stripe.store import random_token

AUTHORIZED_OUTCOME = {
    "advice_code": None,
    "network_advice_code": None,
    "network_decline_code": None,
    "network_status": "approved_by_network",
    "reason": None,
    "risk_level": "normal",
    "seller_message": "Payment complete.",
    "type": "authorized",
}


class ChargesMixin:
    def _new_charge(self, pi: dict, pm: dict) -> dict:
        card = pm["card"]
        suffix = pi.get("statement_descriptor_suffix")
        charge = {
            "id": self.new_id("ch"),
            "object": "charge",
            "amount": pi["amount"],
            "amount_captured": 0,
            "amount_refunded": 0,
            "application": None,
            "application_fee": None,
            "application_fee_amount": None,
            "balance_transaction": None,
            "billing_details": copy.deepcopy(pm["billing_details"]),
            "calculated_statement_descriptor": f"SANDBOX* {suffix}"[:22] if suffix else "SANDBOX",
            "captured": False,
            "created": self.now(),
            "currency": pi["currency"],
            "customer": pi["customer"],
            "description": pi["description"],
            "disputed": False,
            "failure_balance_transaction": None,
            "failure_code": None,
            "failure_message": None,
            "fraud_details": {},
            "livemode": False,
            "metadata": dict(pi["metadata"]),
            "on_behalf_of": None,
            "outcome": None,
            "paid": False,
            "payment_intent": pi["id"],
            "payment_method": pm["id"],
            "payment_method_details": {
                "card": {
                    "amount_authorized": None,
                    "brand": card["brand"],
                    "checks": dict(card["checks"]),
                    "country": card["country"],
                    "exp_month": card["exp_month"],
                    "exp_year": card["exp_year"],
                    "extended_authorization": {"status": "disabled"},
                    "fingerprint": card["fingerprint"],
                    "funding": card["funding"],
                    "incremental_authorization": {"status": "unavailable"},
                    "installments": None,
                    "last4": card["last4"],
                    "mandate": None,
                    "multicapture": {"status": "unavailable"},
                    "network": card["brand"],
                    "network_token": {"used": False},
                    "overcapture": {
                        "maximum_amount_capturable": pi["amount"],
                        "status": "unavailable",
                    },
                    "three_d_secure": None,
                    "wallet": None,
                },
                "type": "card",
            },
            "radar_options": {},
            "receipt_email": pi["receipt_email"],
            "receipt_number": None,
            "receipt_url": f"https://pay.stripe.com/receipts/payment/{random_token(60)}",
            "refunded": False,
            "review": None,
            "shipping": pi["shipping"],
            "source_transfer": None,
            "statement_descriptor": pi["statement_descriptor"],
            "statement_descriptor_suffix": suffix,
            "status": "pending",
            "transfer_data": None,
            "transfer_group": None,
            "_released": 0,
        }
        return self.insert(charge)

    def _authorize(self, charge: dict) -> None:
        charge["status"] = "succeeded"
        charge["paid"] = True
        charge["outcome"] = {**AUTHORIZED_OUTCOME, "risk_score": random.randint(0, 60)}
        charge["payment_method_details"]["card"]["amount_authorized"] = charge["amount"]

    def _decline(self, charge: dict, decline: Decline) -> None:
        charge["status"] = "failed"
        charge["failure_code"] = decline.code
        charge["failure_message"] = decline.message
        charge["outcome"] = {
            "advice_code": decline.advice_code,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": decline.network_status,
            "reason": decline.decline_code
            if decline.outcome_type != "blocked"
            else "highest_risk_level",
            "risk_level": decline.risk_level,
            "risk_score": 95 if decline.risk_level == "highest" else random.randint(0, 60),
            "seller_message": decline.seller_message,
            "type": decline.outcome_type,
        }

    def _capture_charge(self, charge: dict, amount: int) -> None:
        """Capture ``amount`` (the rest of the authorization is released) and book it."""
        pm = self.find("payment_method", charge["payment_method"])
        profile = self.profile(pm)
        charge["captured"] = True
        charge["amount_captured"] = amount
        charge["_released"] = charge["amount"] - amount
        charge["amount_refunded"] = charge["_released"]
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        fee = money.card_fee(amount, charge["currency"])
        txn = self._txn(
            type="charge",
            reporting_category="charge",
            amount=amount,
            currency=charge["currency"],
            source=charge["id"],
            fee=fee,
            description=charge["description"],
            available_now=profile.bypass_pending,
        )
        charge["balance_transaction"] = txn["id"]

    def _refunded_total(self, charge: dict) -> int:
        return sum(
            r["amount"]
            for r in self.table("refund").values()
            if r["charge"] == charge["id"] and r["status"] not in ("failed", "canceled")
        )

    def _refundable(self, charge: dict) -> int:
        return charge["amount_captured"] - self._refunded_total(charge)

    def _sync_refunded(self, charge: dict) -> dict:
        """Recompute amount_refunded/refunded; returns the previous values that changed."""
        before = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
        charge["amount_refunded"] = charge["_released"] + self._refunded_total(charge)
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        return {k: v for k, v in before.items() if charge[k] != v}

    def decline_for(self, pm: dict) -> Decline | None:
        name = self.profile(pm).decline
        return DECLINES[name] if name else None

    # --- API --------------------------------------------------------------------------
    def api_charges_retrieve(self, call) -> dict:
        return self.render(self.get("charge", call.path["id"]), call.expand)

    def api_charges_list(self, call) -> dict:
        params = call.params
        p.check_known(
            params,
            (
                "created",
                "customer",
                "ending_before",
                "limit",
                "payment_intent",
                "starting_after",
                "transfer_group",
            ),
        )
        customer = p.text(params, "customer")
        intent = p.text(params, "payment_intent")
        created = p.range_filter(params, "created")

        def keep(c: dict) -> bool:
            if customer is not None and c["customer"] != customer:
                return False
            if intent is not None and c["payment_intent"] != intent:
                return False
            return not created or created(c["created"])

        return self.list_body(self.newest_first("charge", keep), params, "/v1/charges")

    def api_charges_update(self, call) -> dict:
        charge = self.get("charge", call.path["id"])
        params = call.params
        p.check_known(
            params,
            (
                "customer",
                "description",
                "fraud_details",
                "metadata",
                "receipt_email",
                "shipping",
                "transfer_group",
            ),
        )
        changes: dict = {}
        if "description" in params:
            changes["description"] = p.text(params, "description", max_length=40000)
        if "receipt_email" in params:
            changes["receipt_email"] = p.email(params, "receipt_email")
        if "shipping" in params:
            changes["shipping"] = p.shipping(params["shipping"])
        if "customer" in params:
            customer_id = p.text(params, "customer")
            if charge["customer"] and customer_id != charge["customer"]:
                raise invalid("A charge's customer can only be set once.", "customer")
            if customer_id:
                self.get("customer", customer_id, "customer", 400)
            changes["customer"] = customer_id
        new_metadata = p.metadata(params, charge["metadata"])
        if new_metadata is not None:
            changes["metadata"] = new_metadata
        previous = {k: charge[k] for k, v in changes.items() if charge[k] != v}
        charge.update(changes)
        if previous:
            self.emit("charge.updated", charge, previous)
        return self.render(charge, call.expand)

    def api_charges_capture(self, call) -> dict:
        """Legacy charge capture: captures through the charge's PaymentIntent."""
        charge = self.get("charge", call.path["id"])
        params = call.params
        p.check_known(
            params,
            ("amount", "receipt_email", "statement_descriptor", "statement_descriptor_suffix"),
        )
        if not charge["payment_intent"]:
            raise invalid("This charge has no PaymentIntent.")
        pi = self.get("payment_intent", charge["payment_intent"])
        if charge["captured"]:
            raise invalid(
                f"Charge {charge['id']} has already been captured.", code="charge_already_captured"
            )
        amount = p.integer(params, "amount", minimum=1)
        self._capture_intent(pi, amount, "amount")
        return self.render(charge, call.expand)
