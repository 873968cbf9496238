"""Settings of an Integration that the payments flows read (``Integration.settings``).

Registered with the engine at import (``PaymentsConfig.ready()``); read them with
``integrations.settings_schema.integration_setting(integration, name)``.
"""

from __future__ import annotations

from integrations.settings_schema import Setting, register_integration_settings
from payments.choices import CollectionMode

# What a payment setting may be mapped to; settings not mapped are not ours.
COLLECTION_MODES = tuple(m for m in CollectionMode.values if m != CollectionMode.NOT_OURS)
# Znode states an order can be in while it waits for its money.
BEFORE_PAYMENT_STATES = ["SUBMITTED", "PENDING PAYMENT", "PENDING APPROVAL", "IN REVIEW", "FAILED"]
# Znode states in which an order may be charged by the platform (reference §4.1).
COLLECTABLE_STATES = ["SUBMITTED", "PENDING PAYMENT", "PENDING APPROVAL", "IN REVIEW"]
# Znode payment statuses that say the order's money is already taken, held or settled
# (reference §4.2: names used by Znode's code and its gateway enum).
PAID_PAYMENT_STATUSES = ["Authorized", "Captured", "Received", "Refunded", "Voided"]
register_integration_settings(
    Setting(
        "collection_modes",
        "dict[int,str]",
        {},
        "Znode PaymentSettingId → how that payment setting's orders are collected; orders "
        "of settings not listed (purchase orders, ...) are not ours to collect.",
        choices=COLLECTION_MODES,
    ),
    Setting(
        "manual_capture_payment_settings",
        "list[int]",
        [],
        "Payment settings whose PaymentIntents authorize now and capture on shipment.",
    ),
    Setting(
        "saved_method_fallback",
        "choice",
        "none",
        "When a saved_method order's Stripe customer has no saved default payment method: "
        "none stops it for an operator (note in Znode), customer collects it as customer.",
        choices=("none", "customer"),
    ),
    Setting(
        "znode_states_before_payment",
        "list[str]",
        BEFORE_PAYMENT_STATES,
        "Znode order states in which a payment outcome may still change the order state.",
    ),
    Setting(
        "collectable_states",
        "list[str]",
        COLLECTABLE_STATES,
        "Znode order states in which the platform charges an order (saved card, payment "
        "page); an order first seen in another state (canceled, shipped, an old order the "
        "poller finds) is recorded and skipped with the reason.",
    ),
    Setting(
        "paid_payment_statuses",
        "list[str]",
        PAID_PAYMENT_STATUSES,
        "Znode payment statuses that mean the money is already taken or settled: such an "
        "order is never charged again (compared without case).",
    ),
    Setting(
        "canceled_order_payments",
        "choice",
        "refund",
        "Money that reaches a canceled order (a late payment, a cancel after capture): "
        "refund gives it back in full at once (one refund per order) and notes it in "
        "Znode; hold keeps it and quarantines the job for a person.",
        choices=("refund", "hold"),
    ),
    Setting(
        "stripe_description",
        "bool",
        True,
        "Set each PaymentIntent's description to 'Order' and the order number.",
    ),
    Setting(
        "znode_payment_setting_id",
        "int",
        None,
        "Payment setting of the Znode payment record when the order has none.",
        min=1,
    ),
    Setting(
        "customer_payment_page",
        "choice",
        "checkout",
        "How a customer-mode order is paid: checkout emails the customer a Stripe-hosted "
        "payment page (Checkout Session) and notes it on the order; storefront leaves the "
        "PaymentIntent's client secret in an order note for a storefront using Stripe.js.",
        choices=("checkout", "storefront"),
    ),
    Setting(
        "checkout_success_url",
        "url",
        None,
        "Where Stripe's hosted payment page sends the customer after paying (needed by "
        "customer_payment_page=checkout).",
    ),
    Setting(
        "checkout_cancel_url",
        "url",
        None,
        "Where Stripe's hosted payment page sends the customer who cancels.",
    ),
    Setting(
        "notify_customer",
        "bool",
        True,
        "Email the customer about declined payments and payment links.",
    ),
)
