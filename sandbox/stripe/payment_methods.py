"""PaymentMethods (cards only): raw test numbers, test IDs (``pm_card_visa``...), attach/detach."""

from __future__ import annotations

import time

from sandbox.stripe import params as p
from sandbox.stripe.cards import DECLINES, CardProfile, profile_for, test_token_number
from sandbox.stripe.errors import StripeError, invalid, missing_param, no_such

DISPLAY_BRANDS = {"amex": "american_express", "diners": "diners_club"}


def card_error(message: str, code: str, param: str | None = None, **extra) -> StripeError:
    return StripeError(402, message, type="card_error", code=code, param=param, extra=extra)


class PaymentMethodsMixin:
    # --- helpers ----------------------------------------------------------------------
    def profile(self, pm: dict) -> CardProfile:
        return profile_for(pm["_number"])

    def _mint_pm(
        self,
        number: str,
        *,
        exp_month: int = 12,
        exp_year: int | None = None,
        cvc_given: bool = True,
        billing_details: dict | None = None,
        metadata: dict | None = None,
    ) -> dict:
        profile = profile_for(number)
        pm = {
            "id": self.new_id("pm"),
            "object": "payment_method",
            "allow_redisplay": "unspecified",
            "billing_details": billing_details or p.billing_details(None),
            "card": {
                "brand": profile.brand,
                "checks": {
                    "address_line1_check": None,
                    "address_postal_code_check": None,
                    "cvc_check": "pass" if cvc_given else None,
                },
                "country": profile.country,
                "display_brand": DISPLAY_BRANDS.get(profile.brand, profile.brand),
                "exp_month": exp_month,
                "exp_year": exp_year or time.gmtime().tm_year + 3,
                "fingerprint": profile.fingerprint,
                "funding": profile.funding,
                "generated_from": None,
                "last4": profile.last4,
                "networks": {"available": [profile.brand], "preferred": None},
                "regulated_status": "unregulated",
                "three_d_secure_usage": {"supported": True},
                "wallet": None,
            },
            "created": self.now(),
            "customer": None,
            "livemode": False,
            "metadata": metadata or {},
            "type": "card",
            "_number": number,
        }
        return self.insert(pm)

    def _usable_pm(self, value: str, param: str = "payment_method", status: int = 400) -> dict:
        """An existing PaymentMethod, or a new one minted from a test ID like pm_card_visa."""
        number = test_token_number(value)
        if number is not None and value.startswith("pm_"):
            return self._mint_pm(number)
        pm = self.find("payment_method", value)
        if pm is None:
            raise no_such("payment_method", value, param, status)
        return pm

    def _known_pm(self, value: str, param: str = "payment_method") -> None:
        """Validate a PaymentMethod reference without minting anything."""
        number = test_token_number(value)
        if (number is None or not value.startswith("pm_")) and self.find(
            "payment_method", value
        ) is None:
            raise no_such("payment_method", value, param, 400)

    def _check_attachable(self, pm: dict) -> None:
        if pm.get("_used") and not pm.get("customer"):
            raise invalid(
                "This PaymentMethod was previously used without being attached to a Customer or "
                "was detached from a Customer, and may not be used again."
            )

    def _attach(self, pm: dict, customer: dict) -> None:
        profile = self.profile(pm)
        if profile.attach_declines:
            decline = DECLINES[profile.decline]
            raise card_error(
                decline.message,
                decline.code,
                decline.param or "",
                decline_code=decline.decline_code,
            )
        pm["customer"] = customer["id"]
        self.emit("payment_method.attached", pm)

    # --- API ----------------------------------------------------------------------------
    def api_payment_methods_create(self, call) -> dict:
        params = call.params
        p.check_known(params, ("allow_redisplay", "billing_details", "card", "metadata", "type"))
        kind = p.text(params, "type", required=True)
        if kind != "card":
            raise invalid(
                f"The payment method type provided: {kind} is invalid (the sandbox has card).",
                "type",
            )
        card = p.dict_param(params, "card")
        if card is None:
            raise missing_param("card")
        billing = p.billing_details(params.get("billing_details"))
        metadata = p.metadata(params) or {}
        if "token" in card:
            p.check_known(card, ("token",), "card")
            number = test_token_number(card["token"])
            if number is None or not card["token"].startswith("tok_"):
                raise no_such("token", card["token"], "card[token]", 400)
            pm = self._mint_pm(number, billing_details=billing, metadata=metadata)
            return self.render(pm, call.expand)
        p.check_known(card, ("number", "exp_month", "exp_year", "cvc"), "card")
        number = (p.text(card, "number", param="card[number]") or "").replace(" ", "")
        if not number:
            raise missing_param("card[number]")
        if profile_for(number) is None:
            raise card_error("Your card number is incorrect.", "incorrect_number", "card[number]")
        month = p.integer(card, "exp_month", required=True, param="card[exp_month]")
        if not 1 <= month <= 12:
            raise card_error(
                "Your card's expiration month is invalid.",
                "invalid_expiry_month",
                "card[exp_month]",
            )
        year = p.integer(card, "exp_year", required=True, param="card[exp_year]")
        year = year + 2000 if year < 100 else year
        today = time.gmtime()
        if (year, month) < (today.tm_year, today.tm_mon) or year > today.tm_year + 50:
            raise card_error(
                "Your card's expiration year is invalid.", "invalid_expiry_year", "card[exp_year]"
            )
        cvc = p.text(card, "cvc", param="card[cvc]")
        if cvc is not None and not (cvc.isdigit() and 3 <= len(cvc) <= 4):
            raise card_error("Your card's security code is invalid.", "invalid_cvc", "card[cvc]")
        pm = self._mint_pm(
            number,
            exp_month=month,
            exp_year=year,
            cvc_given=cvc is not None,
            billing_details=billing,
            metadata=metadata,
        )
        return self.render(pm, call.expand)

    def api_payment_methods_retrieve(self, call) -> dict:
        return self.render(self._usable_pm(call.path["id"], "id", 404), call.expand)

    def api_payment_methods_update(self, call) -> dict:
        pm = self._usable_pm(call.path["id"], "id", 404)
        params = call.params
        p.check_known(params, ("allow_redisplay", "billing_details", "card", "metadata"))
        if not pm.get("customer"):
            raise invalid(
                "You must save this PaymentMethod to a customer before you can update it."
            )
        previous: dict = {}
        changes: dict = {}
        if "billing_details" in params:
            changes["billing_details"] = p.billing_details(params["billing_details"])
        new_metadata = p.metadata(params, pm["metadata"])
        if new_metadata is not None:
            changes["metadata"] = new_metadata
        if "allow_redisplay" in params:
            changes["allow_redisplay"] = p.text(
                params, "allow_redisplay", choices=("always", "limited", "unspecified")
            )
        card = p.dict_param(params, "card")
        if card is not None:
            p.check_known(card, ("exp_month", "exp_year"), "card")
            new_card = dict(pm["card"])
            if "exp_month" in card:
                new_card["exp_month"] = p.integer(card, "exp_month", param="card[exp_month]")
            if "exp_year" in card:
                new_card["exp_year"] = p.integer(card, "exp_year", param="card[exp_year]")
            changes["card"] = new_card
        for key, value in changes.items():
            if pm[key] != value:
                previous[key] = pm[key]
                pm[key] = value
        if previous:
            self.emit("payment_method.updated", pm, previous)
        return self.render(pm, call.expand)

    def api_payment_methods_attach(self, call) -> dict:
        params = call.params
        p.check_known(params, ("customer",))
        customer_id = p.text(params, "customer", required=True)
        customer = self.get("customer", customer_id, "customer", 400)
        self._known_pm(call.path["id"], "payment_method")
        pm = self._usable_pm(call.path["id"])
        if pm.get("customer") == customer["id"]:
            return self.render(pm, call.expand)
        if pm.get("customer"):
            raise invalid(
                "The payment method you provided has already been attached to a customer."
            )
        self._check_attachable(pm)
        self._attach(pm, customer)
        return self.render(pm, call.expand)

    def api_payment_methods_detach(self, call) -> dict:
        p.check_known(call.params, ())
        pm = self._usable_pm(call.path["id"], "id", 404)
        customer_id = pm.get("customer")
        if not customer_id:
            raise invalid(
                "The payment method you provided is not attached to a customer so detachment is "
                "impossible."
            )
        pm["customer"] = None
        pm["_used"] = True
        customer = self.find("customer", customer_id)
        if customer and customer["invoice_settings"]["default_payment_method"] == pm["id"]:
            before = dict(customer["invoice_settings"])
            customer["invoice_settings"]["default_payment_method"] = None
            self.emit("customer.updated", customer, {"invoice_settings": before})
        self.emit("payment_method.detached", pm, {"customer": customer_id})
        return self.render(pm, call.expand)

    def _pm_list(self, call, customer_id: str | None, url: str) -> dict:
        params = call.params
        wanted_type = p.text(params, "type")
        if customer_id is None:
            items = []  # Stripe lists nothing without a customer
        else:
            items = self.newest_first(
                "payment_method",
                lambda pm: (
                    pm.get("customer") == customer_id
                    and (wanted_type is None or pm["type"] == wanted_type)
                ),
            )
        return self.list_body(items, params, url)

    def api_payment_methods_list(self, call) -> dict:
        params = call.params
        p.check_known(params, ("customer", "ending_before", "limit", "starting_after", "type"))
        customer_id = p.text(params, "customer")
        if customer_id is not None:
            self.get("customer", customer_id, "customer", 400)
        return self._pm_list(call, customer_id, "/v1/payment_methods")

    def api_customer_payment_methods(self, call) -> dict:
        params = call.params
        p.check_known(
            params, ("allow_redisplay", "ending_before", "limit", "starting_after", "type")
        )
        customer = self.get("customer", call.path["id"])
        return self._pm_list(
            call, customer["id"], f"/v1/customers/{customer['id']}/payment_methods"
        )

    def api_customer_payment_method(self, call) -> dict:
        customer = self.get("customer", call.path["id"])
        pm = self.find("payment_method", call.path["pm"])
        if pm is None or pm.get("customer") != customer["id"]:
            raise no_such("payment_method", call.path["pm"], "customer")
        return self.render(pm, call.expand)
