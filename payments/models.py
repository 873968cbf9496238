"""Orders (mirrors of Znode orders) and their Stripe payments."""

from __future__ import annotations

from django.db import models
from simple_history.models import HistoricalRecords

from integrations.models import Integration
from payments.choices import (
    ORDER_RANK,
    PAYMENT_RANK,
    REFUND_RANK,
    RETURN_MOVES,
    CollectionMode,
    DisputeOutcome,
    OrderState,
    PaymentStatus,
    RefundOrigin,
    RefundStatus,
    ReturnState,
)


class Order(models.Model):
    integration = models.ForeignKey(
        Integration,
        on_delete=models.PROTECT,
        related_name="orders",
        help_text="The integration whose Znode store the order is in.",
    )
    znode_order_id = models.BigIntegerField(help_text="Znode OmsOrderId.")
    order_number = models.CharField(max_length=100, db_index=True, help_text="Znode OrderNumber.")
    znode_user_id = models.BigIntegerField(
        null=True, blank=True, help_text="Znode UserId of the customer."
    )
    email = models.EmailField(
        max_length=512, blank=True, help_text="The customer's email as last seen in Znode."
    )
    currency = models.CharField(max_length=3, help_text="Znode CurrencyCode of the order.")
    total = models.DecimalField(max_digits=18, decimal_places=6, help_text="Znode Total.")
    amount_minor = models.BigIntegerField(help_text="Total in the currency's minor units.")
    state = models.CharField(
        max_length=20,
        choices=OrderState.choices,
        default=OrderState.NEW,
        help_text="Our view of the order's payment; it only moves forward.",
    )
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
    failure_reason = models.CharField(
        max_length=500,
        blank=True,
        help_text="Why its money was not taken (decline code, underpaid, ...).",
    )
    created_at = models.DateTimeField(
        auto_now_add=True, help_text="When the platform first saw the order."
    )
    updated_at = models.DateTimeField(auto_now=True, help_text="When the row was last saved.")

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
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="payments", help_text="The order it pays."
    )
    payment_intent_id = models.CharField(
        max_length=255,
        unique=True,
        null=True,
        blank=True,
        help_text="Stripe PaymentIntent; empty for a charge adopted from Znode's payment app "
        "and for a hosted payment page the customer has not paid yet.",
    )
    charge_id = models.CharField(
        max_length=255,
        blank=True,
        db_index=True,
        help_text="Stripe charge (ch_...) of the payment, once known.",
    )
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
        help_text="Stripe's status of the PaymentIntent (or adopted charge); only moves forward.",
    )
    amount_minor = models.BigIntegerField(
        help_text="Amount asked for, in the currency's minor units."
    )
    amount_received_minor = models.BigIntegerField(
        default=0, help_text="Amount Stripe reports received (minor units)."
    )
    amount_refunded_minor = models.BigIntegerField(
        default=0, help_text="Refunded by the platform (minor units)."
    )
    refund_id = models.CharField(
        max_length=255,
        blank=True,
        help_text="Stripe refund that gave all of it back when the order was canceled "
        "(the payment is then never booked as paid).",
    )
    currency = models.CharField(max_length=3, help_text="The order's currency.")
    decline_code = models.CharField(
        max_length=100,
        blank=True,
        help_text="Stripe's decline (or error) code of the last declined try.",
    )
    failure_message = models.CharField(
        max_length=500, blank=True, help_text="Stripe's message of the last declined try."
    )
    created_at = models.DateTimeField(auto_now_add=True, help_text="When the row was made.")
    updated_at = models.DateTimeField(auto_now=True, help_text="When the row was last saved.")

    class Meta:
        ordering = ["-id"]
        permissions = [
            ("rebook_payment", "Can have a payment booked again in Znode and the ERP"),
        ]
        # Today's money in (the dashboard): a range read.
        indexes = [models.Index(fields=["paid_at"], name="payment_paid_at_idx")]
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

    order = models.ForeignKey(
        Order,
        on_delete=models.PROTECT,
        related_name="notifications",
        help_text="The order it is about.",
    )
    kind = models.CharField(
        max_length=50, help_text="What was sent (payment_failed, payment_link)."
    )
    key = models.CharField(
        max_length=255,
        unique=True,
        help_text="Kind and dedupe key: the same key is never sent twice.",
    )
    recipient = models.EmailField(
        max_length=512, help_text="The address it went to (the order's email)."
    )
    subject = models.CharField(max_length=200, help_text="The email's subject, as sent.")
    sent_at = models.DateTimeField(auto_now_add=True, help_text="When it was sent.")

    def __str__(self) -> str:
        return f"{self.kind} to {self.recipient}"


class Return(models.Model):
    """A Znode return (RMA, reference §5.1) the platform refunds."""

    integration = models.ForeignKey(
        Integration,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The integration whose Znode store has the return.",
    )
    order = models.ForeignKey(
        Order,
        on_delete=models.PROTECT,
        related_name="returns",
        help_text="The order it returns from.",
    )
    znode_return_id = models.BigIntegerField(help_text="Znode RmaReturnDetailsId.")
    return_number = models.CharField(max_length=100, help_text="Znode ReturnNumber.")
    znode_state = models.CharField(
        max_length=100, blank=True, help_text="Return state last seen in Znode."
    )
    state = models.CharField(
        max_length=20,
        choices=ReturnState.choices,
        default=ReturnState.OPEN,
        help_text="Our side of the return: open, refunding, refunded or refund failed.",
    )
    amount = models.DecimalField(
        max_digits=18, decimal_places=6, help_text="Znode TotalReturnAmount when last read."
    )
    amount_minor = models.BigIntegerField(help_text="The same, in the currency's minor units.")
    currency = models.CharField(
        max_length=3, help_text="Currency of the return (Znode's, or the order's)."
    )
    attempt = models.PositiveIntegerField(
        default=0,
        help_text="Refunds tried for this return; a new one only after the last one failed "
        "and a person approved the return again.",
    )
    created_at = models.DateTimeField(
        auto_now_add=True, help_text="When the platform first saw the return."
    )
    updated_at = models.DateTimeField(auto_now=True, help_text="When the row was last saved.")
    history = HistoricalRecords()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "return_number"], name="return_unique_number"
            )
        ]

    def __str__(self) -> str:
        return self.return_number

    def can_move_to(self, state: str) -> bool:
        return state in RETURN_MOVES[ReturnState(self.state)]


class Refund(models.Model):
    """Money given back through Stripe, whoever made it: one row per Stripe refund."""

    order = models.ForeignKey(
        Order,
        on_delete=models.PROTECT,
        related_name="refunds",
        help_text="The order it gives money back for.",
    )
    payment = models.ForeignKey(
        Payment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="refunds",
        help_text="The payment refunded.",
    )
    return_request = models.ForeignKey(
        Return,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="refunds",
        help_text="The Znode return it pays back, where there is one.",
    )
    stripe_refund_id = models.CharField(
        max_length=255,
        unique=True,
        null=True,
        blank=True,
        help_text="Empty only while the request is on its way to Stripe.",
    )
    origin = models.CharField(
        max_length=20,
        choices=RefundOrigin.choices,
        help_text="What made it: a Znode return, a cancellation or someone outside.",
    )
    attempt = models.PositiveIntegerField(
        default=1, help_text="Which refund attempt of its return this is."
    )
    status = models.CharField(
        max_length=20,
        choices=RefundStatus.choices,
        default=RefundStatus.REQUESTED,
        help_text="Stripe's status of the refund (requested: not answered yet).",
    )
    amount_minor = models.BigIntegerField(
        help_text="Amount given back, in the currency's minor units."
    )
    currency = models.CharField(max_length=3, help_text="Currency of the amount.")
    reason = models.CharField(max_length=100, blank=True, help_text="Stripe's reason.")
    failure_reason = models.CharField(
        max_length=100, blank=True, help_text="Stripe's failure_reason of a failed refund."
    )
    idempotency_key = models.CharField(
        max_length=255,
        unique=True,
        null=True,
        blank=True,
        help_text="The key the platform sent (none for refunds made elsewhere).",
    )
    znode_booked_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When Znode was shown the refund (history, return, payment status, note).",
    )
    erp_booked_at = models.DateTimeField(
        null=True, blank=True, help_text="When the ERP acknowledged the credit memo."
    )
    erp_reversed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the credit memo of a refund that later failed was reversed.",
    )
    failed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the platform first saw it failed or canceled."
    )
    reflect_job = models.BigIntegerField(
        null=True, blank=True, help_text="The job writing it into Znode and the ERP now."
    )
    failure_noted_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When Znode was told the refund failed (note, return reopened).",
    )
    created_at = models.DateTimeField(auto_now_add=True, help_text="When the row was made.")
    updated_at = models.DateTimeField(auto_now=True, help_text="When the row was last saved.")
    history = HistoricalRecords()

    class Meta:
        ordering = ["-id"]
        # Today's money back (the dashboard): a range read.
        indexes = [models.Index(fields=["created_at"], name="refund_created_at_idx")]
        constraints = [
            # One refund per return and attempt, whatever races: the database says no.
            models.UniqueConstraint(
                fields=["return_request", "attempt"],
                condition=models.Q(return_request__isnull=False),
                name="refund_one_per_return_attempt",
            )
        ]

    def __str__(self) -> str:
        return self.stripe_refund_id or f"refund #{self.pk} (requested)"

    def can_move_to(self, status: str) -> bool:
        return REFUND_RANK.get(status, -1) > REFUND_RANK[RefundStatus(self.status)]


class Dispute(models.Model):
    """A chargeback (or inquiry) on one of the platform's charges."""

    order = models.ForeignKey(
        Order,
        on_delete=models.PROTECT,
        related_name="disputes",
        help_text="The order whose charge is disputed.",
    )
    payment = models.ForeignKey(
        Payment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="disputes",
        help_text="The payment disputed.",
    )
    stripe_dispute_id = models.CharField(
        max_length=255, unique=True, help_text="Stripe's dispute id (dp_...)."
    )
    charge_id = models.CharField(max_length=255, blank=True, help_text="Stripe charge disputed.")
    status = models.CharField(max_length=40, help_text="Stripe's dispute status.")
    outcome = models.CharField(
        max_length=10,
        choices=DisputeOutcome.choices,
        default=DisputeOutcome.OPEN,
        blank=True,
        help_text="How it ended, from Stripe's status (empty: still open).",
    )
    reason = models.CharField(
        max_length=100, blank=True, help_text="Stripe's reason for the dispute."
    )
    amount_minor = models.BigIntegerField(
        help_text="Amount disputed, in the currency's minor units."
    )
    currency = models.CharField(max_length=3, help_text="Currency of the dispute.")
    fee_minor = models.BigIntegerField(default=0, help_text="Dispute fees Stripe took.")
    evidence_due_by = models.DateTimeField(
        null=True, blank=True, help_text="When Stripe needs the evidence by."
    )
    funds_withdrawn = models.BooleanField(
        default=False, help_text="The disputed amount has left the balance and not come back."
    )
    erp_posted = models.JSONField(
        default=list,
        blank=True,
        help_text="Stripe balance transactions of the dispute already posted to the ERP.",
    )
    znode_noted = models.JSONField(
        default=list, blank=True, help_text="Dispute statuses already noted in Znode."
    )
    reflect_job = models.BigIntegerField(
        null=True, blank=True, help_text="The job writing it into Znode and the ERP now."
    )
    created_at = models.DateTimeField(
        auto_now_add=True, help_text="When the platform first recorded it."
    )
    updated_at = models.DateTimeField(auto_now=True, help_text="When the row was last updated.")
    history = HistoricalRecords()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.stripe_dispute_id
