"""PaymentIntents (cards): create, update, confirm, capture, cancel, list; and the status
machine requires_payment_method → requires_confirmation → succeeded | requires_capture |
processing, or back to requires_payment_method with ``last_payment_error`` on a decline."""

from __future__ import annotations

from sandbox.stripe import money
from sandbox.stripe import params as p
from sandbox.stripe.cards import DECLINES
from sandbox.stripe.errors import StripeError, invalid, unexpected_state
from sandbox.stripe.store import random_token

OPEN = ("requires_payment_method", "requires_confirmation", "requires_action")
CANCELABLE = (*OPEN, "requires_capture")
ALWAYS_UPDATABLE = ("description", "metadata", "receipt_email", "expand")
CREATE_PARAMS = (
    "amount", "automatic_payment_methods", "capture_method", "confirm", "confirmation_method",
    "currency", "customer", "description", "error_on_requires_action", "mandate_data",
    "metadata", "off_session", "payment_method", "payment_method_configuration",
    "payment_method_options", "payment_method_types", "radar_options", "receipt_email",
    "return_url", "setup_future_usage", "shipping", "statement_descriptor",
    "statement_descriptor_suffix", "use_stripe_sdk",
)  # fmt: skip
UPDATE_PARAMS = (
    "amount", "capture_method", "currency", "customer", "description", "metadata",
    "payment_method", "payment_method_options", "payment_method_types", "receipt_email",
    "setup_future_usage", "shipping", "statement_descriptor", "statement_descriptor_suffix",
)  # fmt: skip
CONFIRM_PARAMS = (
    "capture_method", "error_on_requires_action", "mandate_data", "off_session",
    "payment_method", "payment_method_options", "payment_method_types", "radar_options",
    "receipt_email", "return_url", "setup_future_usage", "shipping", "use_stripe_sdk",
)  # fmt: skip


def _listing(options: list[str]) -> str:
    return ", ".join(options)


class PaymentIntentsMixin:
    # --- shared validation ------------------------------------------------------------
    def _pi_common(self, params: dict, pi: dict) -> dict:
        """Validate the fields create/update/confirm share; returns the changes."""
        changes: dict = {}
        if "capture_method" in params:
            changes["capture_method"] = (
                p.text(params, "capture_method", choices=("automatic", "automatic_async", "manual"))
                or "automatic_async"
            )
        if "description" in params:
            changes["description"] = p.text(params, "description", max_length=1000)
        if "receipt_email" in params:
            changes["receipt_email"] = p.email(params, "receipt_email")
        if "shipping" in params:
            changes["shipping"] = p.shipping(params["shipping"])
        if "setup_future_usage" in params:
            changes["setup_future_usage"] = p.text(
                params, "setup_future_usage", choices=("off_session", "on_session")
            )
        for key in ("statement_descriptor", "statement_descriptor_suffix"):
            if key in params:
                changes[key] = p.text(params, key, max_length=22)
        if "payment_method_types" in params:
            types = p.string_list(params, "payment_method_types") or ["card"]
            for kind in types:
                if kind != "card":
                    raise invalid(
                        f'The payment method type "{kind}" is invalid. The sandbox supports: card.',
                        "payment_method_types",
                    )
            changes["payment_method_types"] = types
        new_metadata = p.metadata(params, pi.get("metadata"))
        if new_metadata is not None:
            changes["metadata"] = new_metadata
        return changes

    def _check_pm_for(self, pm_ref: str, customer_id: str | None) -> None:
        """The PaymentMethod may be used by a payment of this customer (or of no customer)."""
        self._known_pm(pm_ref)
        pm = self.find("payment_method", pm_ref)
        if pm is None:
            return  # a test ID: a fresh PaymentMethod is minted for it
        owner = pm.get("customer")
        if owner and customer_id is None:
            raise invalid(
                "The provided PaymentMethod was previously attached to a Customer. To use it, "
                "also pass the ID of that Customer in the `customer` parameter.",
                "payment_method",
            )
        if owner and owner != customer_id:
            raise invalid(
                f"The provided PaymentMethod belongs to a different Customer ({owner}) than the "
                f"one on this PaymentIntent ({customer_id}).",
                "payment_method",
            )
        owner_obj = self.find("customer", owner) if owner else None
        if owner_obj is not None and owner_obj.get("_deleted"):
            raise invalid("The Customer this PaymentMethod belongs to has been deleted.")
        if not owner:
            self._check_attachable(pm)

    # --- API --------------------------------------------------------------------------
    def api_payment_intents_create(self, call) -> dict:
        params = call.params
        p.check_known(params, CREATE_PARAMS)
        amount = p.integer(params, "amount", required=True)
        currency = money.check_currency(p.text(params, "currency", required=True))
        money.check_amount(amount, currency)
        self.check_settles(currency)
        customer_id = p.text(params, "customer")
        if customer_id is not None:
            self.get("customer", customer_id, "customer", 400)
        confirmation_method = (
            p.text(params, "confirmation_method", choices=("automatic", "manual")) or "automatic"
        )
        confirm = p.boolean(params, "confirm", False)
        off_session = params.get("off_session")
        if off_session not in (None, "", "true", "false", "one_off", "recurring"):
            raise invalid(f"Invalid off_session: {off_session}", "off_session")
        if off_session not in (None, "", "false") and not confirm:
            raise invalid("You can only pass `off_session` when `confirm=true`.", "off_session")
        automatic = p.dict_param(params, "automatic_payment_methods")
        if automatic is not None:
            p.check_known(automatic, ("enabled", "allow_redirects"), "automatic_payment_methods")
            if "payment_method_types" in params and p.boolean(automatic, "enabled"):
                raise invalid(
                    "You may only specify one of these parameters: automatic_payment_methods, "
                    "payment_method_types.",
                    "automatic_payment_methods",
                )
        changes = self._pi_common(params, {})
        pm_ref = p.text(params, "payment_method")
        if pm_ref is not None:
            self._check_pm_for(pm_ref, customer_id)
        elif confirm:
            raise self._missing_pm()
        # Everything is valid: from here on the PaymentIntent exists.
        pm = self._usable_pm(pm_ref) if pm_ref else None
        pi = self._new_intent(
            amount,
            currency,
            customer_id,
            changes,
            pm=pm,
            confirmation_method=confirmation_method,
            automatic_payment_methods=(
                {
                    "allow_redirects": automatic.get("allow_redirects") or "always",
                    "enabled": p.boolean(automatic, "enabled", False),
                }
                if automatic is not None
                else None
            ),
        )
        if confirm:
            self._confirm(pi, pm)
        return self.render(pi, call.expand)

    def api_payment_intents_retrieve(self, call) -> dict:
        p.check_known(call.params, ("client_secret",))
        return self.render(self.get("payment_intent", call.path["id"]), call.expand)

    def api_payment_intents_list(self, call) -> dict:
        params = call.params
        p.check_known(params, ("created", "customer", "ending_before", "limit", "starting_after"))
        customer = p.text(params, "customer")
        created = p.range_filter(params, "created")

        def keep(pi: dict) -> bool:
            if customer is not None and pi["customer"] != customer:
                return False
            return not created or created(pi["created"])

        items = self.newest_first("payment_intent", keep)
        return self.list_body(items, params, "/v1/payment_intents")

    def api_payment_intents_update(self, call) -> dict:
        pi = self.get("payment_intent", call.path["id"])
        params = call.params
        p.check_known(params, UPDATE_PARAMS)
        status = pi["status"]
        if status not in OPEN:
            for key in params:
                if key not in ALWAYS_UPDATABLE:
                    raise unexpected_state(
                        f"This PaymentIntent's {key} could not be updated because it has a status "
                        f"of {status}. You may only update the {key} of a PaymentIntent with one "
                        f"of the following statuses: {_listing(list(OPEN))}."
                    )
        changes = self._pi_common(params, pi)
        currency = pi["currency"]
        if "currency" in params:
            currency = changes["currency"] = money.check_currency(
                p.text(params, "currency", required=True)
            )
        amount = pi["amount"]
        if "amount" in params:
            amount = changes["amount"] = p.integer(params, "amount", required=True)
        if "amount" in params or "currency" in params:
            money.check_amount(amount, currency)
            self.check_settles(currency)
        customer_id = pi["customer"]
        if "customer" in params:
            customer_id = p.text(params, "customer")
            if customer_id is not None:
                self.get("customer", customer_id, "customer", 400)
            if pi["customer"] and customer_id != pi["customer"]:
                raise invalid(
                    "You cannot change the customer of a PaymentIntent once it has been set.",
                    "customer",
                )
            changes["customer"] = customer_id
        pm_ref = pi["payment_method"]
        if "payment_method" in params:
            pm_ref = p.text(params, "payment_method")
            if pm_ref is not None:
                self._check_pm_for(pm_ref, customer_id)
        elif "customer" in params and pm_ref:
            self._check_pm_for(pm_ref, customer_id)
        if "payment_method" in params:
            pm = self._usable_pm(pm_ref) if pm_ref else None
            changes["payment_method"] = pm["id"] if pm else None
            changes["status"] = "requires_confirmation" if pm else "requires_payment_method"
        if status in OPEN:
            changes["last_payment_error"] = None
        pi.update(changes)
        return self.render(pi, call.expand)

    def api_payment_intents_confirm(self, call) -> dict:
        pi = self.get("payment_intent", call.path["id"])
        params = call.params
        p.check_known(params, CONFIRM_PARAMS)
        status = pi["status"]
        if status == "succeeded":
            raise unexpected_state(
                "You cannot confirm this PaymentIntent because it has already succeeded after "
                "being previously confirmed."
            )
        if status not in OPEN:
            raise unexpected_state(
                f"You cannot confirm this PaymentIntent because it has a status of {status}. Only "
                "a PaymentIntent with one of the following statuses may be confirmed: "
                "requires_confirmation, requires_payment_method, requires_action."
            )
        off_session = params.get("off_session")
        if off_session not in (None, "", "true", "false", "one_off", "recurring"):
            raise invalid(f"Invalid off_session: {off_session}", "off_session")
        changes = self._pi_common(params, pi)
        pm_ref = p.text(params, "payment_method") or pi["payment_method"]
        if pm_ref is None:
            raise self._missing_pm()
        self._check_pm_for(pm_ref, pi["customer"])
        pi.update(changes)
        self._confirm(pi, self._usable_pm(pm_ref))
        return self.render(pi, call.expand)

    def api_payment_intents_capture(self, call) -> dict:
        pi = self.get("payment_intent", call.path["id"])
        params = call.params
        p.check_known(
            params,
            (
                "amount_to_capture",
                "final_capture",
                "metadata",
                "statement_descriptor",
                "statement_descriptor_suffix",
            ),
        )
        amount = p.integer(params, "amount_to_capture", minimum=1)
        self._capture_intent(pi, amount, "amount_to_capture", params)
        return self.render(pi, call.expand)

    def api_payment_intents_cancel(self, call) -> dict:
        pi = self.get("payment_intent", call.path["id"])
        params = call.params
        p.check_known(params, ("cancellation_reason",))
        reason = p.text(
            params,
            "cancellation_reason",
            choices=("duplicate", "fraudulent", "requested_by_customer", "abandoned"),
        )
        status = pi["status"]
        if status not in CANCELABLE:
            raise unexpected_state(
                f"You cannot cancel this PaymentIntent because it has a status of {status}. Only a "
                "PaymentIntent with one of the following statuses may be canceled: "
                f"{_listing([*CANCELABLE, 'processing'])}."
            )
        self._cancel_intent(pi, reason)
        return self.render(pi, call.expand)

    # --- the status machine -------------------------------------------------------------
    def _new_intent(
        self,
        amount: int,
        currency: str,
        customer_id: str | None,
        changes: dict,
        *,
        pm: dict | None = None,
        confirmation_method: str = "automatic",
        automatic_payment_methods: dict | None = None,
    ) -> dict:
        """Store a new PaymentIntent from validated values (``changes`` from ``_pi_common``)
        and emit ``payment_intent.created``. Also used by Checkout when the customer pays."""
        pi_id = self.new_id("pi")
        pi = {
            "id": pi_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_details": {"tip": {}},
            "amount_received": 0,
            "application": None,
            "application_fee_amount": None,
            "automatic_payment_methods": automatic_payment_methods,
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": "automatic_async",
            "client_secret": f"{pi_id}_secret_{random_token(25)}",
            "confirmation_method": confirmation_method,
            "created": self.now(),
            "currency": currency,
            "customer": customer_id,
            "description": None,
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": {},
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": pm["id"] if pm else None,
            "payment_method_configuration_details": None,
            "payment_method_options": {
                "card": {
                    "installments": None,
                    "mandate_options": None,
                    "network": None,
                    "request_three_d_secure": "automatic",
                }
            },
            "payment_method_types": ["card"],
            "processing": None,
            "receipt_email": None,
            "review": None,
            "setup_future_usage": None,
            "shipping": None,
            "source": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "status": "requires_confirmation" if pm else "requires_payment_method",
            "transfer_data": None,
            "transfer_group": None,
        }
        pi.update(changes)
        self.insert(pi)
        self.emit("payment_intent.created", pi)
        return pi

    def _cancel_intent(self, pi: dict, reason: str | None) -> None:
        """Cancel a PaymentIntent in one of CANCELABLE (an authorization is released)."""
        if pi["status"] == "requires_capture":
            charge = self.get("charge", pi["latest_charge"])
            charge["_released"] = charge["amount"]
            previous = self._sync_refunded(charge)
            self.emit("charge.refunded", charge, previous)
        pi.update(
            status="canceled",
            canceled_at=self.now(),
            cancellation_reason=reason,
            amount_capturable=0,
            next_action=None,
        )
        self.emit("payment_intent.canceled", pi)

    def _missing_pm(self) -> StripeError:
        return invalid(
            "You cannot confirm this PaymentIntent because it's missing a payment method. To "
            "confirm the PaymentIntent, specify a payment method with the `payment_method` "
            "parameter.",
            "payment_method",
            "payment_intent_unexpected_state",
        )

    def _confirm(self, pi: dict, pm: dict) -> None:
        """Charge ``pm`` for ``pi``. Raises the 402 card error on a decline (after recording it)."""
        pi["payment_method"] = pm["id"]
        pi["last_payment_error"] = None
        charge = self._new_charge(pi, pm)
        pi["latest_charge"] = charge["id"]
        decline = self.decline_for(pm)
        profile = self.profile(pm)
        if decline is not None:
            self._decline(charge, decline)
            self._payment_failed(pi, charge, pm)
            raise self._card_error(pi, charge, pm)
        self._keep_or_consume(pi, pm)
        if profile.settle:
            pi["status"] = "processing"
            self.emit("charge.pending", charge)
            self.emit("payment_intent.processing", pi)
            delay = int(self.state["config"].get("async_settle_seconds", 60))
            self.schedule(delay, "settle_payment", pi["id"])
            return
        self._authorize(charge)
        self._authorized(pi, charge)

    def _authorized(self, pi: dict, charge: dict) -> None:
        if pi["capture_method"] == "manual":
            pi["status"] = "requires_capture"
            pi["amount_capturable"] = pi["amount"]
            self.emit("charge.succeeded", charge)
            self.emit("payment_intent.amount_capturable_updated", pi)
            return
        self._capture_charge(charge, pi["amount"])
        pi["status"] = "succeeded"
        pi["amount_received"] = pi["amount"]
        self.emit("charge.succeeded", charge)
        self.emit("payment_intent.succeeded", pi)
        self._after_capture(charge)

    def _payment_failed(self, pi: dict, charge: dict, pm: dict) -> None:
        decline = self.decline_for(pm) or DECLINES["generic_decline"]
        error = {
            "advice_code": decline.advice_code,
            "charge": charge["id"],
            "code": decline.code,
            "decline_code": decline.decline_code,
            "doc_url": f"https://stripe.com/docs/error-codes/{decline.code.replace('_', '-')}",
            "message": decline.message,
            "payment_method": self.render(pm),
            "type": "card_error",
        }
        if decline.param:
            error["param"] = decline.param
        pi.update(
            status="requires_payment_method",
            payment_method=None,
            last_payment_error=error,
            amount_capturable=0,
        )
        if not pm.get("customer"):
            pm["_used"] = True
        self.emit("charge.failed", charge)
        self.emit("payment_intent.payment_failed", pi)

    def _card_error(self, pi: dict, charge: dict, pm: dict) -> StripeError:
        return self._charge_card_error(
            charge,
            self.decline_for(pm),
            payment_intent=self.render(pi),
            payment_method=self.render(pm),
        )

    def _keep_or_consume(self, pi: dict, pm: dict) -> None:
        """A PaymentMethod used without a customer can't be used again, unless the payment
        saves it for the future (``setup_future_usage`` with a customer)."""
        if pm.get("customer"):
            return
        if pi["setup_future_usage"] and pi["customer"]:
            customer = self.get("customer", pi["customer"])
            pm["customer"] = customer["id"]
            self.emit("payment_method.attached", pm)
        else:
            pm["_used"] = True

    def _capture_intent(
        self, pi: dict, amount: int | None, param: str, params: dict | None = None
    ) -> None:
        status = pi["status"]
        if status != "requires_capture":
            raise unexpected_state(
                f"This PaymentIntent could not be captured because it has a status of {status}. "
                "Only a PaymentIntent with one of the following statuses may be captured: "
                "requires_capture."
            )
        capturable = pi["amount_capturable"]
        amount = capturable if amount is None else amount
        if amount > capturable:
            raise invalid(
                f"The amount to capture ({amount}) must be less than or equal to the "
                f"PaymentIntent's amount_capturable ({capturable}).",
                param,
                "amount_too_large",
            )
        money.check_amount(amount, pi["currency"], param)
        changes = self._pi_common(
            {k: v for k, v in (params or {}).items() if k in ("metadata",)}, pi
        )
        for key in ("statement_descriptor", "statement_descriptor_suffix"):
            if params and key in params:
                changes[key] = p.text(params, key, max_length=22)
        charge = self.get("charge", pi["latest_charge"])
        pi.update(changes)
        self._capture_charge(charge, amount)
        pi.update(status="succeeded", amount_received=amount, amount_capturable=0)
        self.emit("charge.captured", charge)
        self.emit("payment_intent.succeeded", pi)
        self._after_capture(charge)

    def _after_capture(self, charge: dict) -> None:
        pm = self.find("payment_method", charge["payment_method"])
        reason = self.profile(pm).dispute
        if reason and charge["amount_captured"] > 0:
            self._open_dispute(charge, reason)

    def settle_payment(self, pi_id: str) -> None:
        """Scheduled: a ``processing`` payment (sandbox-only cards) succeeds or fails."""
        pi = self.find("payment_intent", pi_id)
        if pi is None or pi["status"] != "processing":
            return
        charge = self.get("charge", pi["latest_charge"])
        pm = self.get("payment_method", charge["payment_method"])
        if self.profile(pm).settle == "failed":
            self._decline(charge, DECLINES["generic_decline"])
            self._payment_failed(pi, charge, pm)
            return
        self._authorize(charge)
        self._authorized(pi, charge)
