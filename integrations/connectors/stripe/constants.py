"""Stripe event names the platform understands, and the pinned API version."""

# Pinned to the version the installed SDK speaks; webhook endpoints should be created
# with the same version so event payloads have the shape our code reads.
API_VERSION = "2026-10-28.endive"

PAYMENT_INTENT_EVENTS = frozenset(
    {
        "payment_intent.created",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.processing",
        "payment_intent.canceled",
        "payment_intent.requires_action",
        "payment_intent.amount_capturable_updated",
        "payment_intent.partially_funded",
    }
)
CHARGE_EVENTS = frozenset(
    {
        "charge.succeeded",
        "charge.failed",
        "charge.captured",
        "charge.refunded",
        "charge.updated",
        "charge.pending",
        "charge.expired",
        "charge.refund.updated",
    }
)
REFUND_EVENTS = frozenset({"refund.created", "refund.updated", "refund.failed"})
DISPUTE_EVENTS = frozenset(
    {
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
    }
)
CUSTOMER_CREATED = "customer.created"
CUSTOMER_UPDATED = "customer.updated"
CUSTOMER_EVENTS = frozenset({CUSTOMER_CREATED, CUSTOMER_UPDATED, "customer.deleted"})
PAYMENT_METHOD_EVENTS = frozenset(
    {"payment_method.attached", "payment_method.detached", "payment_method.updated"}
)
CHECKOUT_EVENTS = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.expired",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
    }
)
PAYOUT_EVENTS = frozenset(
    {
        "payout.created",
        "payout.paid",
        "payout.failed",
        "payout.canceled",
        "payout.updated",
        "payout.reconciliation_completed",
    }
)

SUPPORTED_EVENTS = (
    PAYMENT_INTENT_EVENTS
    | CHARGE_EVENTS
    | REFUND_EVENTS
    | DISPUTE_EVENTS
    | CUSTOMER_EVENTS
    | PAYMENT_METHOD_EVENTS
    | CHECKOUT_EVENTS
    | PAYOUT_EVENTS
)

# Metadata keys we put on Stripe objects, read back to find the Znode order.
METADATA_ORDER_NUMBER = "znode_order_number"
METADATA_ZNODE_USER = "znode_user_id"
METADATA_INTEGRATION = "integration"
METADATA_RETURN_NUMBER = "znode_return_number"
METADATA_REFUND_KEY = "znode_refund_key"
"""Every refund the platform makes carries its idempotency key, by which its own events
find its row (nothing echoes, even before the answer was stored)."""

# Expand the PaymentIntent's latest charge: what was captured, on emulators too.
EXPAND_LATEST_CHARGE = ("latest_charge",)
