"""Stripe's test cards (docs.stripe.com/testing): numbers, PaymentMethod test IDs and what
each one does when attached, charged, refunded."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Decline:
    code: str
    decline_code: str
    message: str
    advice_code: str | None = None
    param: str | None = None
    outcome_type: str = "issuer_declined"
    network_status: str = "declined_by_network"
    risk_level: str = "normal"
    seller_message: str = "The bank did not return any further details with this decline."


DECLINES = {
    "generic_decline": Decline(
        "card_declined", "generic_decline", "Your card was declined.", "try_again_later"
    ),
    "insufficient_funds": Decline(
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
        "try_again_later",
        seller_message="The bank returned the decline code `insufficient_funds`.",
    ),
    "lost_card": Decline(
        "card_declined",
        "lost_card",
        "Your card was declined.",
        "do_not_try_again",
        seller_message="The bank returned the decline code `lost_card`.",
    ),
    "stolen_card": Decline(
        "card_declined",
        "stolen_card",
        "Your card was declined.",
        "do_not_try_again",
        seller_message="The bank returned the decline code `stolen_card`.",
    ),
    "expired_card": Decline(
        "expired_card",
        "expired_card",
        "Your card has expired.",
        "confirm_card_data",
        param="exp_month",
        seller_message="The bank returned the decline code `expired_card`.",
    ),
    "incorrect_cvc": Decline(
        "incorrect_cvc",
        "incorrect_cvc",
        "Your card's security code is incorrect.",
        "confirm_card_data",
        param="cvc",
        seller_message="The bank returned the decline code `incorrect_cvc`.",
    ),
    "processing_error": Decline(
        "processing_error",
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
        "try_again_later",
        seller_message="The bank returned the decline code `processing_error`.",
    ),
    "card_velocity_exceeded": Decline(
        "card_declined",
        "card_velocity_exceeded",
        "Your card was declined for making repeated attempts too frequently or exceeding its "
        "amount limit.",
        "try_again_later",
        seller_message="The bank returned the decline code `card_velocity_exceeded`.",
    ),
    "fraudulent": Decline(
        "card_declined",
        "fraudulent",
        "Your card was declined.",
        None,
        outcome_type="blocked",
        network_status="not_sent_to_network",
        risk_level="highest",
        seller_message="Stripe blocked this payment as too risky.",
    ),
}


@dataclass(frozen=True)
class CardProfile:
    number: str
    brand: str
    funding: str = "credit"
    country: str = "US"
    decline: str | None = None
    """Key of DECLINES: the charge is declined with it."""
    attach_declines: bool = False
    """Attaching the card to a customer is declined too (Stripe checks the card then)."""
    dispute: str | None = None
    """A dispute with this reason is opened once the charge is captured."""
    refund: str = "succeeded"
    """``succeeded``; ``pending`` (settles later); ``fail`` (succeeds, then fails later)."""
    settle: str | None = None
    """Sandbox-only: the payment stays ``processing`` and later ``succeeded`` or ``failed``."""
    bypass_pending: bool = False
    """The funds are available at once instead of after the settlement delay."""

    @property
    def last4(self) -> str:
        return self.number[-4:]

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.number.encode()).hexdigest()[:16]


def _card(number: str, brand: str | None = None, **kwargs) -> CardProfile:
    return CardProfile(number, brand or brand_for(number), **kwargs)


def brand_for(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"34", "37"}:
        return "amex"
    if number[:2] in {"51", "52", "53", "54", "55"} or 2221 <= int(number[:4] or 0) <= 2720:
        return "mastercard"
    if number.startswith(("6011", "65")) or 644 <= int(number[:3] or 0) <= 649:
        return "discover"
    if number.startswith("35"):
        return "jcb"
    if number[:2] in {"30", "36", "38"}:
        return "diners"
    if number.startswith("62"):
        return "unionpay"
    return "unknown"


def luhn_ok(number: str) -> bool:
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


CARDS = {
    c.number: c
    for c in (
        _card("4242424242424242"),
        _card("4000056655665556", funding="debit"),
        _card("5555555555554444"),
        _card("2223003122003222"),
        _card("5200828282828210", funding="debit"),
        _card("378282246310005"),
        _card("371449635398431"),
        _card("6011111111111117"),
        _card("3566002020360505"),
        _card("4000000000000077", bypass_pending=True),
        _card("4000000000000002", decline="generic_decline", attach_declines=True),
        _card("4000000000009995", decline="insufficient_funds", attach_declines=True),
        _card("4000000000009987", decline="lost_card", attach_declines=True),
        _card("4000000000009979", decline="stolen_card", attach_declines=True),
        _card("4000000000000069", decline="expired_card", attach_declines=True),
        _card("4000000000000127", decline="incorrect_cvc", attach_declines=True),
        _card("4000000000000119", decline="processing_error", attach_declines=True),
        _card("4000000000006975", decline="card_velocity_exceeded", attach_declines=True),
        _card("4000000000000341", decline="generic_decline"),
        _card("4100000000000019", decline="fraudulent"),
        _card("4000000000000259", dispute="fraudulent"),
        _card("4000000000002685", dispute="product_not_received"),
        _card("4000000000007726", refund="pending"),
        _card("4000000000005126", refund="fail"),
        # Sandbox-only numbers (Stripe has no card that settles asynchronously).
        _card("4000009900000012", settle="succeeded"),
        _card("4000009900000020", settle="failed"),
    )
}

TEST_PAYMENT_METHODS = {
    "visa": "4242424242424242",
    "visa_debit": "4000056655665556",
    "mastercard": "5555555555554444",
    "mastercard_debit": "5200828282828210",
    "amex": "378282246310005",
    "discover": "6011111111111117",
    "jcb": "3566002020360505",
    "bypassPending": "4000000000000077",
    "chargeDeclined": "4000000000000002",
    "visa_chargeDeclined": "4000000000000002",
    "chargeDeclinedInsufficientFunds": "4000000000009995",
    "visa_chargeDeclinedInsufficientFunds": "4000000000009995",
    "chargeDeclinedLostCard": "4000000000009987",
    "visa_chargeDeclinedLostCard": "4000000000009987",
    "chargeDeclinedStolenCard": "4000000000009979",
    "visa_chargeDeclinedStolenCard": "4000000000009979",
    "chargeDeclinedExpiredCard": "4000000000000069",
    "chargeDeclinedIncorrectCvc": "4000000000000127",
    "chargeDeclinedProcessingError": "4000000000000119",
    "visa_chargeDeclinedVelocityLimitExceeded": "4000000000006975",
    "chargeDeclinedFraudulent": "4100000000000019",
    "radarBlock": "4100000000000019",
    "chargeCustomerFail": "4000000000000341",
    "createDispute": "4000000000000259",
    "createDisputeProductNotReceived": "4000000000002685",
    "pendingRefund": "4000000000007726",
    "refundFail": "4000000000005126",
    "sandboxProcessingSucceeds": "4000009900000012",
    "sandboxProcessingFails": "4000009900000020",
}


def test_token_number(value: str) -> str | None:
    """``pm_card_<name>`` or ``tok_<name>`` (also ``tok_visa``-style) → the card number."""
    for prefix in ("pm_card_", "tok_"):
        if value.startswith(prefix):
            return TEST_PAYMENT_METHODS.get(value[len(prefix) :])
    return None


def profile_for(number: str) -> CardProfile | None:
    """The profile of a card number, or None if it is not a valid card number."""
    if number in CARDS:
        return CARDS[number]
    if not luhn_ok(number):
        return None
    return _card(number)
