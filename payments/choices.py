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


class RefundStatus(models.TextChoices):
    """Stripe's refund statuses (reference stripe.md A3), and ``requested``: our row,
    written before the call, so a lost answer is found again by its key."""

    REQUESTED = "requested", "Requested (being sent to Stripe)"
    PENDING = "pending", "Pending"
    REQUIRES_ACTION = "requires_action", "Requires action"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


# Monotonic like payments: a succeeded card refund can still fail later (the money
# comes back to the merchant), never the other way.
REFUND_RANK = {
    RefundStatus.REQUESTED: 0,
    RefundStatus.PENDING: 1,
    RefundStatus.REQUIRES_ACTION: 1,
    RefundStatus.SUCCEEDED: 2,
    RefundStatus.FAILED: 3,
    RefundStatus.CANCELED: 3,
}
REFUND_FINAL = frozenset({RefundStatus.FAILED, RefundStatus.CANCELED})
REFUND_IN_FLIGHT = frozenset(
    {RefundStatus.REQUESTED, RefundStatus.PENDING, RefundStatus.REQUIRES_ACTION}
)


class RefundOrigin(models.TextChoices):
    RETURN = "return", "A Znode return (RMA)"
    CANCELLATION = "cancellation", "The order canceled in Znode after the money was taken"
    OUTSIDE = "outside", "Made outside the platform (Stripe Dashboard, support tools)"


class ReturnState(models.TextChoices):
    """Our side of a Znode return: seen, being refunded, refunded; a failed refund
    waits for a person, who approves it again (a new attempt) in Znode."""

    OPEN = "open", "Open (not in a refund state in Znode)"
    REFUNDING = "refunding", "Refund requested"
    REFUNDED = "refunded", "Refunded"
    REFUND_FAILED = "refund_failed", "Refund failed (reopened in Znode for a person)"


RETURN_MOVES = {
    ReturnState.OPEN: {ReturnState.REFUNDING, ReturnState.REFUNDED},
    ReturnState.REFUNDING: {ReturnState.REFUNDED, ReturnState.REFUND_FAILED},
    ReturnState.REFUND_FAILED: {ReturnState.REFUNDING},
    # A card refund can fail after it succeeded (the money comes back).
    ReturnState.REFUNDED: {ReturnState.REFUND_FAILED},
}


class DisputeOutcome(models.TextChoices):
    OPEN = "", "Open"
    WON = "won", "Won (funds reinstated)"
    LOST = "lost", "Lost"
    CLOSED = "closed", "Closed without a chargeback (inquiry)"
