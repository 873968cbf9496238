"""Refunds by PaymentIntent or charge, bounded by what is left to refund; card-dependent
lifecycles (``pm_card_pendingRefund``: pending → succeeded, ``pm_card_refundFail``:
succeeded → failed). A full refund of an uncaptured legacy charge (no PaymentIntent)
releases the authorization: the "void" of Znode's Stripe provider (znode-api.md §9.1)."""

from __future__ import annotations

from sandbox.stripe import money
from sandbox.stripe import params as p
from sandbox.stripe.errors import invalid

REASONS = ("duplicate", "fraudulent", "requested_by_customer")


class RefundsMixin:
    def _refund_target(self, params: dict) -> dict:
        charge_id = p.text(params, "charge")
        pi_id = p.text(params, "payment_intent")
        if charge_id is None and pi_id is None:
            raise invalid(
                "One of the following params should be provided for this request: "
                "payment_intent or charge."
            )
        if pi_id is not None:
            pi = self.get("payment_intent", pi_id, "payment_intent", 400)
            if pi["status"] == "requires_capture":
                raise invalid(
                    f"This PaymentIntent ({pi_id}) has not been captured, so it cannot be "
                    "refunded. To release the authorized funds, cancel the PaymentIntent instead."
                )
            charge = self.find("charge", pi["latest_charge"])
            if charge is None or charge["status"] != "succeeded" or not charge["captured"]:
                raise invalid(
                    f"This PaymentIntent ({pi_id}) does not have a successful charge to refund."
                )
            if charge_id is not None and charge_id != charge["id"]:
                raise invalid(
                    f"The charge {charge_id} does not belong to the PaymentIntent {pi_id}.",
                    "charge",
                )
            return charge
        charge = self.get("charge", charge_id, "charge", 400)
        if charge["status"] != "succeeded":
            raise invalid(f"Charge {charge_id} has not succeeded, so it cannot be refunded.")
        if not charge["captured"] and charge["payment_intent"]:
            raise invalid(
                f"Charge {charge_id} has not been captured, so it cannot be refunded. To release "
                "the authorized funds, cancel its PaymentIntent instead."
            )
        return charge

    def api_refunds_create(self, call) -> dict:
        params = call.params
        p.check_known(
            params,
            (
                "amount",
                "charge",
                "instructions_email",
                "metadata",
                "origin",
                "payment_intent",
                "reason",
                "refund_application_fee",
                "reverse_transfer",
            ),
        )
        charge = self._refund_target(params)
        amount = p.integer(params, "amount", minimum=1)
        reason = p.text(params, "reason", choices=REASONS)
        metadata = p.metadata(params) or {}
        if not charge["captured"]:
            return self._release_authorization(call, charge, amount, reason, metadata)
        if charge["disputed"]:
            raise invalid(
                f"Charge {charge['id']} has been charged back; cannot issue a refund.",
                code="charge_disputed",
            )
        remaining = self._refundable(charge)
        if remaining <= 0:
            raise invalid(
                f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
            )
        amount = remaining if amount is None else amount
        if amount > remaining:
            currency = charge["currency"]
            raise invalid(
                f"Refund amount ({money.format_amount(amount, currency)}) is greater than "
                f"unrefunded amount on charge ({money.format_amount(remaining, currency)})",
                "amount",
            )
        pm = self.find("payment_method", charge["payment_method"])
        behaviour = self.profile(pm).refund
        refund = self._new_refund(
            charge, amount, reason=reason, metadata=metadata, pending=behaviour == "pending"
        )
        self._book_refund(refund, charge)
        if behaviour in ("pending", "fail"):
            delay = int(self.state["config"].get("async_settle_seconds", 60))
            self.schedule(delay, "settle_refund", refund["id"])
        return self.render(refund, call.expand)

    def _new_refund(
        self, charge: dict, amount: int, *, reason: str | None, metadata: dict, pending: bool
    ) -> dict:
        """A refund of ``amount`` of a captured charge, its money taken from the balance at
        once (converted as the charge was); not stored yet."""
        refund_id = self.new_id("re")
        txn = self._txn(
            type="refund",
            reporting_category="refund",
            amount=-amount,
            currency=charge["currency"],
            source=refund_id,
            description="REFUND FOR CHARGE"
            + (f" ({charge['description']})" if charge["description"] else ""),
            available_now=True,
            like=charge["balance_transaction"],
        )
        return self._refund_object(
            charge,
            refund_id=refund_id,
            amount=amount,
            balance_transaction=txn["id"],
            reversal=False,
            reason=reason,
            metadata=metadata,
            pending=pending,
        )

    def _release_authorization(
        self, call, charge: dict, amount: int | None, reason: str | None, metadata: dict
    ) -> dict:
        """Refund an uncaptured legacy charge: all of it, no money moves (no balance
        transaction), and it can no longer be captured."""
        if charge["refunded"]:
            raise invalid(
                f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
            )
        if amount is not None and amount != charge["amount"]:
            raise invalid(
                "You cannot partially refund an uncaptured charge. Instead, capture the charge "
                "for an amount less than the original amount",
                "amount",
            )
        refund = self._refund_object(
            charge,
            refund_id=self.new_id("re"),
            amount=charge["amount"],
            balance_transaction=None,
            reversal=True,
            reason=reason,
            metadata=metadata,
            pending=False,
        )
        charge["payment_method_details"]["card"].pop("capture_before", None)
        self._book_refund(refund, charge)
        return self.render(refund, call.expand)

    def _refund_object(
        self,
        charge: dict,
        *,
        refund_id: str,
        amount: int,
        balance_transaction: str | None,
        reversal: bool,
        reason: str | None,
        metadata: dict,
        pending: bool,
    ) -> dict:
        """A Refund as Stripe renders it. ``reversal``: an uncaptured authorization
        released (no money moves, no acquirer reference)."""
        return {
            "id": refund_id,
            "object": "refund",
            "amount": amount,
            "balance_transaction": balance_transaction,
            "charge": charge["id"],
            "created": self.now(),
            "currency": charge["currency"],
            "destination_details": {
                "card": {
                    "reference": None,
                    "reference_status": "unavailable" if reversal else "pending",
                    "reference_type": "acquirer_reference_number",
                    "type": "reversal" if reversal else "refund",
                },
                "type": "card",
            },
            "metadata": metadata,
            "payment_intent": None if reversal else charge["payment_intent"],
            "pending_reason": "processing" if pending else None,
            "reason": reason,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": "pending" if pending else "succeeded",
            "transfer_reversal": None,
        }

    def _book_refund(self, refund: dict, charge: dict) -> None:
        self.insert(refund)
        previous = self._sync_refunded(charge)
        self.emit("charge.refunded", charge, previous)
        self.emit("refund.created", refund)

    def settle_refund(self, refund_id: str) -> None:
        """Scheduled: a pending refund succeeds; a refundFail card's refund fails."""
        refund = self.find("refund", refund_id)
        if refund is None or refund["status"] not in ("pending", "succeeded"):
            return
        charge = self.get("charge", refund["charge"])
        pm = self.find("payment_method", charge["payment_method"])
        if self.profile(pm).refund != "fail":
            if refund["status"] == "pending":
                refund.update(status="succeeded", pending_reason=None)
                refund["destination_details"]["card"]["reference_status"] = "available"
                refund["destination_details"]["card"]["reference"] = str(self.now())[-9:]
                previous = {"status": "pending", "pending_reason": "processing"}
                self.emit("refund.updated", refund, previous)
                self.emit("charge.refund.updated", refund, previous)
            return
        txn = self._txn(
            type="refund_failure",
            reporting_category="refund_failure",
            amount=refund["amount"],
            currency=refund["currency"],
            source=refund["id"],
            description="REFUND FAILURE",
            available_now=True,
            like=refund["balance_transaction"],
        )
        before = refund["status"]
        refund.update(
            status="failed",
            failure_reason="expired_or_canceled_card",
            failure_balance_transaction=txn["id"],
        )
        self._sync_refunded(charge)
        self.emit("refund.updated", refund, {"status": before})
        self.emit("refund.failed", refund)
        self.emit("charge.refund.updated", refund, {"status": before})

    def api_refunds_retrieve(self, call) -> dict:
        return self.render(self.get("refund", call.path["id"]), call.expand)

    def api_refunds_update(self, call) -> dict:
        refund = self.get("refund", call.path["id"])
        self.update_metadata(refund, call.params, "refund.updated", "charge.refund.updated")
        return self.render(refund, call.expand)

    def api_refunds_cancel(self, call) -> dict:
        refund = self.get("refund", call.path["id"])
        raise invalid(
            f"Refund {refund['id']} can't be canceled: only refunds with status requires_action "
            "can be canceled, and card refunds never need action."
        )

    def api_refunds_list(self, call) -> dict:
        return self.list_by_payment("refund", call.params, "/v1/refunds")
