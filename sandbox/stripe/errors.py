"""Stripe's error shape: ``{"error": {"type", "message", "code"?, "param"?, ...}}``."""

from __future__ import annotations

from typing import Any

LABELS = {
    "customer": "customer",
    "payment_method": "PaymentMethod",
    "payment_intent": "payment_intent",
    "charge": "charge",
    "refund": "refund",
    "dispute": "dispute",
    "balance_transaction": "balance transaction",
    "payout": "payout",
    "event": "event",
    "webhook_endpoint": "webhook endpoint",
}


class StripeError(Exception):
    """Raised by handlers; the app turns it into Stripe's JSON error body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.extra = extra or {}

    def body(self) -> dict:
        error: dict[str, Any] = {}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.decline_code:
            error["decline_code"] = self.decline_code
        error["message"] = self.message
        if self.param:
            error["param"] = self.param
        error.update(self.extra)
        error["type"] = self.type
        return {"error": error}


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeError:
    return StripeError(400, message, param=param, code=code)


def missing_param(param: str) -> StripeError:
    return invalid(f"Missing required param: {param}.", param, "parameter_missing")


def unknown_param(param: str) -> StripeError:
    return invalid(f"Received unknown parameter: {param}", param, "parameter_unknown")


def no_such(kind: str, object_id: str, param: str = "id", status: int = 404) -> StripeError:
    label = LABELS.get(kind, kind)
    return StripeError(
        status, f"No such {label}: '{object_id}'", param=param, code="resource_missing"
    )


def unexpected_state(message: str, code: str = "payment_intent_unexpected_state") -> StripeError:
    return invalid(message, code=code)
