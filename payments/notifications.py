"""Customer emails (Django's mail backend), each sent at most once per key."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction

from integrations.exceptions import TransientError
from payments.models import Notification, Order

DECLINE_TEXT = {
    "insufficient_funds": "your card has insufficient funds",
    "expired_card": "your card has expired",
    "incorrect_cvc": "the card's security code was incorrect",
    "processing_error": "an error occurred while processing your card",
    "generic_decline": "your card was declined",
}


def payment_failed_email(*, order: Order, reason: str, dedupe_key: str) -> bool:
    """Tell the customer; fraud-type declines arrive here already as generic."""
    if not order.email:
        return False
    subject = f"Payment for order {order.order_number} did not go through"
    try:
        with transaction.atomic():
            Notification.objects.create(
                order=order,
                kind="payment_failed",
                key=f"payment_failed:{dedupe_key}",
                recipient=order.email,
                subject=subject,
            )
            explanation = DECLINE_TEXT.get(reason, DECLINE_TEXT["generic_decline"])
            send_mail(
                subject,
                f"Hello,\n\nwe could not collect the payment for your order "
                f"{order.order_number} because {explanation}. Your order is kept; please pay "
                f"again with another card from your account.\n",
                settings.DEFAULT_FROM_EMAIL,
                [order.email],
            )
    except IntegrityError:
        return False  # already told
    except OSError as error:  # SMTP down, refused, timed out: nothing was recorded
        raise TransientError(f"could not send the email to {order.email}: {error}") from error
    return True
