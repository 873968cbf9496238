"""Customer emails (Django's mail backend), each sent at most once per key."""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction

from integrations.kernel.exceptions import TransientError
from payments.models import Notification, Order
from payments.money import format_minor

DECLINE_TEXT = {
    "insufficient_funds": "your card has insufficient funds",
    "expired_card": "your card has expired",
    "incorrect_cvc": "the card's security code was incorrect",
    "processing_error": "an error occurred while processing your card",
    "generic_decline": "your card was declined",
}


def _send_once(*, order: Order, kind: str, dedupe_key: str, subject: str, body: str) -> bool:
    """Send and record in one transaction: False when already sent (or no address)."""
    if not order.email:
        return False
    try:
        with transaction.atomic():
            Notification.objects.create(
                order=order,
                kind=kind,
                key=f"{kind}:{dedupe_key}",
                recipient=order.email,
                subject=subject,
            )
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [order.email])
    except IntegrityError:
        return False  # already told
    except OSError as error:  # SMTP down, refused, timed out: nothing was recorded
        raise TransientError(f"could not send the email to {order.email}: {error}") from error
    return True


def payment_failed_email(
    *, order: Order, reason: str, dedupe_key: str, retry_url: str = ""
) -> bool:
    """Tell the customer; fraud-type declines arrive here already as generic.
    ``retry_url``: the hosted payment page, still open, where they can pay again."""
    explanation = DECLINE_TEXT.get(reason, DECLINE_TEXT["generic_decline"])
    again = (
        f"please pay again with another card here:\n\n{retry_url}\n"
        if retry_url
        else "please pay again with another card from your account.\n"
    )
    return _send_once(
        order=order,
        kind="payment_failed",
        dedupe_key=dedupe_key,
        subject=f"Payment for order {order.order_number} did not go through",
        body=f"Hello,\n\nwe could not collect the payment for your order "
        f"{order.order_number} because {explanation}. Your order is kept; {again}",
    )


def payment_link_email(
    *, order: Order, url: str, amount_minor: int, expires_at: int | None, dedupe_key: str
) -> bool:
    """The Stripe-hosted page where the customer pays the order (one email per page)."""
    amount = format_minor(amount_minor, order.currency)
    until = (
        "The link is valid until "
        f"{datetime.fromtimestamp(expires_at, tz=UTC):%Y-%m-%d %H:%M} UTC.\n"
        if expires_at
        else ""
    )
    return _send_once(
        order=order,
        kind="payment_link",
        dedupe_key=dedupe_key,
        subject=f"Pay for your order {order.order_number}",
        body=f"Hello,\n\nyour order {order.order_number} of {amount} is waiting for its "
        f"payment. Please pay securely with Stripe here:\n\n{url}\n\n{until}",
    )
