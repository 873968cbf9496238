from django.db import models


class OrderState(models.TextChoices):
    """Our view of an order's payment, in the order it may move (see RANK)."""

    NEW = "new", "New"
    PAYMENT_PENDING = "payment_pending", "Waiting for payment"
    PAYMENT_FAILED = "payment_failed", "Payment failed (customer may pay again)"
    AUTHORIZED = "authorized", "Authorized, capture on shipping"
    PAID = "paid", "Paid"
    CANCELED = "canceled", "Canceled"


# Monotonic: an event may only move an order to a state of higher rank. A failed
# payment can be followed by a new attempt (same rank as pending) and a success;
# nothing moves a paid order back.
ORDER_RANK = {
    OrderState.NEW: 0,
    OrderState.PAYMENT_PENDING: 1,
    OrderState.PAYMENT_FAILED: 1,
    OrderState.AUTHORIZED: 2,
    OrderState.PAID: 3,
    OrderState.CANCELED: 3,
}


class CollectionMode(models.TextChoices):
    """How an order's money is collected, chosen per Znode payment setting (the
    integration setting ``collection_modes``), never guessed (reference §9.1)."""

    ADOPT = "adopt", "Adopt the charge Znode's payment app made; capture on shipment"
    CUSTOMER_COMPLETES = "customer", "The customer pays: Stripe-hosted page or the storefront"
    SAVED_METHOD = "saved_method", "Charge the Stripe customer's saved default method"
    NOT_OURS = "none", "Not collected by the platform (purchase order, COD...)"


class PaymentStatus(models.TextChoices):
    REQUIRES_PAYMENT_METHOD = "requires_payment_method", "Requires payment method"
    REQUIRES_CONFIRMATION = "requires_confirmation", "Requires confirmation"
    REQUIRES_ACTION = "requires_action", "Requires action"
    PROCESSING = "processing", "Processing"
    REQUIRES_CAPTURE = "requires_capture", "Requires capture"
    SUCCEEDED = "succeeded", "Succeeded"
    CANCELED = "canceled", "Canceled"


PAYMENT_RANK = {
    PaymentStatus.REQUIRES_PAYMENT_METHOD: 0,
    PaymentStatus.REQUIRES_CONFIRMATION: 1,
    PaymentStatus.REQUIRES_ACTION: 1,
    PaymentStatus.PROCESSING: 2,
    PaymentStatus.REQUIRES_CAPTURE: 3,
    PaymentStatus.SUCCEEDED: 4,
    PaymentStatus.CANCELED: 4,
}
