"""Charges: made by PaymentIntent confirmation or directly with the legacy Charges API
(``POST /v1/charges``, as Znode's stock Stripe provider does: znode-api.md §9.1); retrieve,
list, update, capture.

Legacy charges have ``payment_intent: null``. ``capture=false`` leaves an authorization
(``captured: false``, ``charge.succeeded``) that ``POST /v1/charges/{id}/capture`` captures
(``charge.captured``, at most the authorized amount, the rest released) and that a full
refund releases ("void"). A declined card answers the same 402 card error as a PaymentIntent
confirmation, after recording the failed charge (``charge.failed``). ``source`` takes a test
token (``tok_visa``...), a card or PaymentMethod id or a test PaymentMethod id
(``pm_card_visa``...); ``payment_method`` takes the same ids except tokens (a sandbox
convenience: Stripe's Charges API documents only ``source``).
"""

from __future__ import annotations

import random

from sandbox.stripe import money
from sandbox.stripe import params as p
from sandbox.stripe.cards import DECLINES, Decline, test_token_number
from sandbox.stripe.errors import StripeError, invalid, missing_param
from sandbox.stripe.store import DAY, clone, random_token

CREATE_PARAMS = (
    "amount", "capture", "currency", "customer", "description", "metadata", "payment_method",
    "receipt_email", "shipping", "source", "statement_descriptor", "statement_descriptor_suffix",
)  # fmt: skip
CAPTURE_WINDOW = 7 * DAY  # an uncaptured card charge must be captured within 7 days

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
            "billing_details": clone(pm["billing_details"]),
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
            "source": None,
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
        txn = self._txn(
            type="charge",
            reporting_category="charge",
            amount=amount,
            currency=charge["currency"],
            source=charge["id"],
            fees="card",
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
        """Capture an authorization: through the PaymentIntent of a PaymentIntent charge, or
        the legacy charge itself (``amount`` at most the authorized amount)."""
        charge = self.get("charge", call.path["id"])
        params = call.params
        p.check_known(
            params,
            ("amount", "receipt_email", "statement_descriptor", "statement_descriptor_suffix"),
        )
        if charge["captured"]:
            raise invalid(
                f"Charge {charge['id']} has already been captured.", code="charge_already_captured"
            )
        amount = p.integer(params, "amount", minimum=1)
        if charge["payment_intent"]:
            pi = self.get("payment_intent", charge["payment_intent"])
            self._capture_intent(pi, amount, "amount")
            return self.render(charge, call.expand)
        if charge["status"] != "succeeded":
            raise invalid(f"Charge {charge['id']} has failed and cannot be captured.")
        if charge["refunded"]:
            raise invalid(
                f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
            )
        if charge["created"] + CAPTURE_WINDOW <= self.now():
            raise invalid(
                f"Charge {charge['id']} has expired: uncaptured charges must be captured "
                "within 7 days.",
                code="charge_expired_for_capture",
            )
        amount = charge["amount"] if amount is None else amount
        if amount > charge["amount"]:
            raise invalid(
                "The payment could not be captured because the requested capture amount is "
                "greater than the amount you can capture for this charge.",
                "amount",
                "amount_too_large",
            )
        money.check_amount(amount, charge["currency"])
        if "receipt_email" in params:
            charge["receipt_email"] = p.email(params, "receipt_email")
        for key in ("statement_descriptor", "statement_descriptor_suffix"):
            if key in params:
                charge[key] = p.text(params, key, max_length=22)
        self._capture_charge(charge, amount)
        charge["payment_method_details"]["card"].pop("capture_before", None)
        self.emit("charge.captured", charge)
        self._after_capture(charge)
        return self.render(charge, call.expand)

    # --- the legacy Charges API -----------------------------------------------------------
    def api_charges_create(self, call) -> dict:
        params = call.params
        p.check_known(params, CREATE_PARAMS)
        amount = p.integer(params, "amount", required=True)
        currency = money.check_currency(p.text(params, "currency", required=True))
        money.check_amount(amount, currency)
        self.check_settles(currency)
        capture = p.boolean(params, "capture", True)
        customer_id = p.text(params, "customer")
        if customer_id is not None:
            self.get("customer", customer_id, "customer", 400)
        fields = {
            "id": None,
            "amount": amount,
            "currency": currency,
            "customer": customer_id,
            "description": p.text(params, "description", max_length=40000),
            "metadata": p.metadata(params) or {},
            "receipt_email": p.email(params, "receipt_email"),
            "shipping": p.shipping(params["shipping"]) if "shipping" in params else None,
            "statement_descriptor": p.text(params, "statement_descriptor", max_length=22),
            "statement_descriptor_suffix": p.text(
                params, "statement_descriptor_suffix", max_length=22
            ),
        }
        source = p.text(params, "source")
        pm_ref = p.text(params, "payment_method")
        if source is not None and pm_ref is not None:
            raise invalid(
                "You may only specify one of these parameters: payment_method, source.", "source"
            )
        # Everything is valid once the card is: from here on the charge exists.
        pm, card_source = self._legacy_card(
            source or pm_ref, "source" if source is not None else "payment_method", customer_id
        )
        charge = self._new_charge(fields, pm)
        charge["payment_intent"] = None
        charge["source"] = card_source
        if not pm.get("customer"):
            pm["_used"] = True  # a card charged without a customer cannot be used again
        profile = self.profile(pm)
        decline = self.decline_for(pm)
        if decline is None and profile.settle == "failed":
            decline = DECLINES["generic_decline"]  # no asynchronous cards on Charges
        if decline is not None:
            self._decline(charge, decline)
            self.emit("charge.failed", charge)
            raise self._charge_card_error(charge, decline)
        self._authorize(charge)
        if capture:
            self._capture_charge(charge, amount)
            self.emit("charge.succeeded", charge)
            self._after_capture(charge)
        else:
            charge["payment_method_details"]["card"]["capture_before"] = (
                charge["created"] + CAPTURE_WINDOW
            )
            self.emit("charge.succeeded", charge)
        return self.render(charge, call.expand)

    def _legacy_card(self, ref: str | None, param: str, customer_id: str | None):
        """(PaymentMethod, the charge's ``source`` card or None) for a legacy charge."""
        if ref is None:
            if customer_id is None:
                raise missing_param("source")
            # Charges use the customer's default *source*; the sandbox keeps none (cards
            # are PaymentMethods here), as on a Stripe account that only uses PaymentMethods.
            raise invalid("Cannot charge a customer that has no active card", "customer", "missing")
        if ref.startswith("tok_"):
            if param != "source":
                raise invalid(
                    f"Invalid payment_method: {ref} is a token; pass it as `source`.", param
                )
            number = test_token_number(ref)
            if number is None:
                raise StripeError(
                    400, f"No such token: '{ref}'", param=param, code="resource_missing"
                )
            if customer_id is not None:
                raise invalid(
                    f"Customer {customer_id} does not have a linked source with ID {ref}.",
                    param,
                    "missing",
                )
            pm = self._mint_pm(number)
            # A token charged directly becomes a card object (card_...), usable where
            # PaymentMethod ids are.
            self.table("payment_method").pop(pm["id"])
            pm["id"] = self.new_id("card")
            self.insert(pm)
            return pm, self._card_source(pm)
        self._check_pm_for(ref, customer_id)
        pm = self._usable_pm(ref, param)
        return pm, (self._card_source(pm) if pm["id"].startswith("card_") else None)

    def _card_source(self, pm: dict) -> dict:
        card = pm["card"]
        address = pm["billing_details"]["address"]
        return {
            "id": pm["id"],
            "object": "card",
            "address_city": address.get("city"),
            "address_country": address.get("country"),
            "address_line1": address.get("line1"),
            "address_line1_check": None,
            "address_line2": address.get("line2"),
            "address_state": address.get("state"),
            "address_zip": address.get("postal_code"),
            "address_zip_check": None,
            "brand": {"amex": "American Express", "diners": "Diners Club"}.get(
                card["brand"], card["brand"].title() if card["brand"] != "jcb" else "JCB"
            ),
            "country": card["country"],
            "customer": pm.get("customer"),
            "cvc_check": card["checks"]["cvc_check"],
            "dynamic_last4": None,
            "exp_month": card["exp_month"],
            "exp_year": card["exp_year"],
            "fingerprint": card["fingerprint"],
            "funding": card["funding"],
            "last4": card["last4"],
            "metadata": {},
            "name": pm["billing_details"].get("name"),
            "tokenization_method": None,
            "wallet": None,
        }

    def _charge_card_error(self, charge: dict, decline: Decline, **objects: dict) -> StripeError:
        """The 402 card error Stripe answers for a declined charge; ``objects`` are
        the rendered objects it also carries (a PaymentIntent's decline names the
        PaymentIntent and its payment method)."""
        call = getattr(self, "call", None)
        extra = {
            "charge": charge["id"],
            **objects,
            "request_log_url": f"https://dashboard.stripe.com/test/logs/{call.request_id}"
            if call
            else None,
        }
        if decline.advice_code:
            extra["advice_code"] = decline.advice_code
        return StripeError(
            402,
            decline.message,
            type="card_error",
            code=decline.code,
            param=decline.param,
            decline_code=decline.decline_code,
            extra=extra,
        )
