"""Disputes: opened on charges made with the dispute test cards, answered or closed."""

from __future__ import annotations

from sandbox.stripe import params as p
from sandbox.stripe.errors import invalid
from sandbox.stripe.store import DAY

EVIDENCE_FIELDS = (
    "access_activity_log", "billing_address", "cancellation_policy",
    "cancellation_policy_disclosure", "cancellation_rebuttal", "customer_communication",
    "customer_email_address", "customer_name", "customer_purchase_ip", "customer_signature",
    "duplicate_charge_documentation", "duplicate_charge_explanation", "duplicate_charge_id",
    "product_description", "receipt", "refund_policy", "refund_policy_disclosure",
    "refund_refusal_explanation", "service_date", "service_documentation", "shipping_address",
    "shipping_carrier", "shipping_date", "shipping_documentation", "shipping_tracking_number",
    "uncategorized_file", "uncategorized_text",
)  # fmt: skip
NETWORK_REASON = {"fraudulent": "10.4", "product_not_received": "13.1"}
CLOSED = ("won", "lost", "warning_closed", "prevented")


class DisputesMixin:
    def _open_dispute(self, charge: dict, reason: str) -> dict:
        dispute_id = self.new_id("dp")
        amount = charge["amount_captured"]
        currency = charge["currency"]
        # The dispute fee is the settlement currency's (Stripe charges it in the currency
        # the account is paid in); the disputed amount converts as its charge did.
        txn = self._txn(
            type="adjustment",
            reporting_category="dispute",
            amount=-amount,
            currency=currency,
            source=dispute_id,
            fees="dispute",
            description=f"Chargeback withdrawal for {charge['id']}",
            available_now=True,
            like=charge["balance_transaction"],
        )
        now = self.now()
        dispute = {
            "id": dispute_id,
            "object": "dispute",
            "amount": amount,
            "balance_transactions": [self.render(txn)],
            "charge": charge["id"],
            "created": now,
            "currency": currency,
            "enhanced_eligibility_types": [],
            "evidence": dict.fromkeys(EVIDENCE_FIELDS),
            "evidence_details": {
                "due_by": now + 7 * DAY,
                "has_evidence": False,
                "past_due": False,
                "submission_count": 0,
            },
            "is_charge_refundable": False,
            "livemode": False,
            "metadata": {},
            "payment_intent": charge["payment_intent"],
            "payment_method_details": {
                "card": {
                    "brand": charge["payment_method_details"]["card"]["brand"],
                    "case_type": "chargeback",
                    "network_reason_code": NETWORK_REASON.get(reason),
                },
                "type": "card",
            },
            "reason": reason,
            "status": "needs_response",
        }
        self.insert(dispute)
        charge["disputed"] = True
        self.emit("charge.dispute.created", dispute)
        self.emit("charge.dispute.funds_withdrawn", dispute)
        return dispute

    def api_disputes_list(self, call) -> dict:
        return self.list_by_payment("dispute", call.params, "/v1/disputes")

    def api_disputes_retrieve(self, call) -> dict:
        return self.render(self.get("dispute", call.path["id"]), call.expand)

    def api_disputes_update(self, call) -> dict:
        dispute = self.get("dispute", call.path["id"])
        params = call.params
        p.check_known(params, ("evidence", "metadata", "submit"))
        if dispute["status"] in CLOSED:
            raise invalid(f"This dispute is already closed ({dispute['status']}).")
        evidence = p.dict_param(params, "evidence") or {}
        p.check_known(evidence, EVIDENCE_FIELDS, "evidence")
        submit = p.boolean(params, "submit", True)
        new_metadata = p.metadata(params, dispute["metadata"])
        previous: dict = {}
        if evidence:
            previous["evidence"] = dict(dispute["evidence"])
            for key in evidence:
                dispute["evidence"][key] = p.text(evidence, key, param=f"evidence[{key}]")
            dispute["evidence_details"]["has_evidence"] = True
        if new_metadata is not None and new_metadata != dispute["metadata"]:
            previous["metadata"] = dispute["metadata"]
            dispute["metadata"] = new_metadata
        if submit and evidence:
            previous["status"] = dispute["status"]
            dispute["status"] = "under_review"
            dispute["evidence_details"]["submission_count"] += 1
        if previous:
            self.emit("charge.dispute.updated", dispute, previous)
        return self.render(dispute, call.expand)

    def api_disputes_close(self, call) -> dict:
        dispute = self.get("dispute", call.path["id"])
        p.check_known(call.params, ())
        if dispute["status"] not in ("needs_response", "warning_needs_response"):
            raise invalid(
                f"This dispute has a status of {dispute['status']}; only a dispute that needs a "
                "response can be closed."
            )
        dispute["status"] = "lost" if dispute["status"] == "needs_response" else "warning_closed"
        dispute["is_charge_refundable"] = False
        self.emit("charge.dispute.closed", dispute)
        return self.render(dispute, call.expand)

    def resolve_dispute(self, dispute: dict, outcome: str) -> dict:
        """Test helper: the card network decides (``won`` reinstates the funds)."""
        if dispute["status"] in CLOSED:
            raise invalid(f"This dispute is already closed ({dispute['status']}).")
        if outcome not in ("won", "lost"):
            raise invalid("status must be won or lost", "status")
        if outcome == "won":
            txn = self._txn(
                type="adjustment",
                reporting_category="dispute_reversal",
                amount=dispute["amount"],
                currency=dispute["currency"],
                source=dispute["id"],
                description=f"Chargeback reversal for {dispute['charge']}",
                available_now=True,
                like=dispute["balance_transactions"][0]["id"],
            )
            dispute["balance_transactions"].append(self.render(txn))
            self.emit("charge.dispute.funds_reinstated", dispute)
        dispute["status"] = outcome
        self.emit("charge.dispute.closed", dispute)
        return dispute
