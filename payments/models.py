"""Orders (mirrors of Znode orders) and their Stripe payments."""

from __future__ import annotations

from django.db import models

from integrations.models import Integration
from payments.choices import (
    ORDER_RANK,
    PAYMENT_RANK,
    CollectionMode,
    OrderState,
    PaymentStatus,
)


class Order(models.Model):
    integration = models.ForeignKey(Integration, on_delete=models.PROTECT, related_name="orders")
    znode_order_id = models.BigIntegerField(help_text="Znode OmsOrderId.")
    order_number = models.CharField(max_length=100, db_index=True, help_text="Znode OrderNumber.")
    znode_user_id = models.BigIntegerField(null=True, blank=True)
    email = models.EmailField(max_length=512, blank=True)
    currency = models.CharField(max_length=3)
    total = models.DecimalField(max_digits=18, decimal_places=6, help_text="Znode Total.")
    amount_minor = models.BigIntegerField(help_text="Total in the currency's minor units.")
    state = models.CharField(max_length=20, choices=OrderState.choices, default=OrderState.NEW)
    collection_mode = models.CharField(
        max_length=20,
        choices=CollectionMode.choices,
        default=CollectionMode.NOT_OURS,
        help_text="How this order's money is collected, from its Znode payment setting.",
    )
    capture_on_shipment = models.BooleanField(
        default=False, help_text="Authorize now and capture the current total when it ships."
    )
    tracking_number = models.CharField(
        max_length=100,
        blank=True,
        help_text="Last tracking number seen in Znode; restored if a state write clears it.",
    )
    znode_state = models.CharField(max_length=100, blank=True, help_text="Last seen in Znode.")
    znode_payment_status = models.CharField(
        max_length=100, blank=True, help_text="Payment status last seen in Znode."
    )
    znode_payment_setting_id = models.IntegerField(
        null=True, blank=True, help_text="Znode PaymentSettingId of the order."
    )
    failure_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "order_number"], name="order_unique_number"
            )
        ]

    def __str__(self) -> str:
        return self.order_number

    def can_move_to(self, state: str) -> bool:
        if self.state == state:
            return False
        if self.state in (OrderState.PAID, OrderState.CANCELED):
            return False  # final
        return ORDER_RANK[state] >= ORDER_RANK[self.state]


class Payment(models.Model):
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    payment_intent_id = models.CharField(
        max_length=255,
        unique=True,
        null=True,
        blank=True,
        help_text="Stripe PaymentIntent; empty for a charge adopted from Znode's payment app "
        "and for a hosted payment page the customer has not paid yet.",
    )
    charge_id = models.CharField(max_length=255, blank=True, db_index=True)
    checkout_session_id = models.CharField(
        max_length=255,
        blank=True,
        db_index=True,
        help_text="Stripe Checkout Session: the hosted payment page sent to the customer "
        "(its PaymentIntent is created when the customer pays).",
    )
    link_sent_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the hosted page's link went out (order note, and email unless "
        "notify_customer is off).",
    )
    adopted = models.BooleanField(
        default=False, help_text="A charge Znode's payment app made, not one we created."
    )
    znode_history_baseline = models.IntegerField(
        null=True,
        blank=True,
        help_text="Znode payment-history rows of this amount and status before our record "
        "was first written (tells ours from a genuine second payment when rows carry no "
        "reference).",
    )
    znode_booking_started_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a job first began writing this payment into Znode; any later "
        "try reads the order's payment history fresh before writing.",
    )
    znode_booking_job = models.BigIntegerField(
        null=True, blank=True, help_text="The job writing this payment into Znode."
    )
    znode_booked_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When Znode was shown this payment (record, transaction id, status); "
        "later jobs for the payment skip it.",
    )
    erp_booked_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the ERP acknowledged this payment's sales journal entry.",
    )
    paid_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the platform first saw the money in (Stripe's answer): the date "
        "of the sales journal entry, whichever job posts it.",
    )
    status = models.CharField(
        max_length=30,
        choices=PaymentStatus.choices,
        default=PaymentStatus.REQUIRES_PAYMENT_METHOD,
    )
    amount_minor = models.BigIntegerField()
    amount_received_minor = models.BigIntegerField(default=0)
    amount_refunded_minor = models.BigIntegerField(
        default=0, help_text="Refunded by the platform (minor units)."
    )
    refund_id = models.CharField(
        max_length=255, blank=True, help_text="Stripe refund the platform made for it."
    )
    currency = models.CharField(max_length=3)
    decline_code = models.CharField(max_length=100, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        permissions = [
            ("rebook_payment", "Can have a payment booked again in Znode and the ERP"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["checkout_session_id"],
                condition=~models.Q(checkout_session_id=""),
                name="payment_one_row_per_checkout_session",
            )
        ]

    def __str__(self) -> str:
        return self.payment_intent_id or self.charge_id or self.checkout_session_id

    def can_move_to(self, status: str) -> bool:
        if self.status in (PaymentStatus.SUCCEEDED, PaymentStatus.CANCELED):
            return False
        return PAYMENT_RANK.get(status, 0) >= PAYMENT_RANK[self.status] and status != self.status


class Notification(models.Model):
    """A message sent to a customer, once per key (a retried job never re-sends it)."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="notifications")
    kind = models.CharField(max_length=50)
    key = models.CharField(max_length=255, unique=True)
    recipient = models.EmailField(max_length=512)
    subject = models.CharField(max_length=200)
    sent_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.kind} to {self.recipient}"
