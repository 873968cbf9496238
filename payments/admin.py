from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from integrations.admin import ReadOnlyAdmin, ReadOnlyInline
from integrations.models import ApiCall, InboundEvent, Job
from payments import money
from payments.models import Dispute, Notification, Order, Payment, Refund, Return
from payments.selectors import order_money
from payments.services import payment_rebook


def money_display(field: str, description: str, *, minor: bool = True):
    """An admin column (and read-only field) showing ``field`` as money in the row's
    currency: ``171.35 USD``, never ``171.350000`` or ``17135``."""

    @admin.display(description=description, ordering=field)
    def shown(self, obj) -> str:
        show = money.shown_minor if minor else money.shown_major
        return show(getattr(obj, field), obj.currency)

    shown.__name__ = f"{field}_shown"
    return shown


AMOUNT = money_display("amount_minor", "Amount")


class PaymentInline(ReadOnlyInline):
    model = Payment
    fields = ("payment_intent_id", "charge_id", "status", "amount", "decline_code")
    amount = AMOUNT


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = ("stripe_refund_id", "origin", "status", "amount", "failure_reason")
    amount = AMOUNT


class DisputeInline(ReadOnlyInline):
    model = Dispute
    fields = ("stripe_dispute_id", "status", "outcome", "reason", "amount", "evidence_due_by")
    amount = AMOUNT


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = ("order_number", "integration", "state", "total_shown", "znode_state")
    list_filter = ("state", "integration", "currency", "collection_mode")
    search_fields = ("=order_number", "=email", "=payments__payment_intent_id")
    inlines = [PaymentInline, RefundInline, DisputeInline]
    exclude = ("total", "amount_minor")
    readonly_fields = ("total_shown", "money", "timeline")
    total_shown = money_display("total", "Total", minor=False)

    @admin.display(description="Money: captured, refunded, disputed, still refundable")
    def money(self, obj):
        held = order_money(obj)

        def shown(minor: int) -> str:
            return money.format_minor(minor, obj.currency)

        return (
            f"captured {shown(held.captured)} · refunded {shown(held.refunded)} · refunding "
            f"{shown(held.refunding)} · disputed {shown(held.disputed)} · refundable "
            f"{shown(held.refundable)}"
        )

    @admin.display(description="Timeline: events, jobs and API calls in order")
    def timeline(self, obj):
        rows = []
        for event in InboundEvent.objects.filter(reference=obj.order_number).defer("body"):
            rows.append((event.received_at, "event", event, f"{event.event_type} ({event.status})"))
        for job in Job.objects.filter(reference=obj.order_number).select_related("flow"):
            rows.append((job.created_at, "job", job, f"{job.flow.key}: {job.status}"))
            for attempt in job.attempt_log.all():
                rows.append(
                    (attempt.started_at, "attempt", job, f"#{attempt.number} {attempt.outcome}")
                )
        for ret in obj.returns.all():
            rows.append((ret.created_at, "return", ret, f"{ret.return_number}: {ret.state}"))
        for refund in obj.refunds.all():
            shown = money.format_minor(refund.amount_minor, refund.currency)
            rows.append((refund.created_at, "refund", refund, f"{refund}: {shown} {refund.status}"))
        for dispute in obj.disputes.all():
            rows.append(
                (
                    dispute.created_at,
                    "dispute",
                    dispute,
                    f"{dispute}: {dispute.reason} {dispute.status}",
                )
            )
        for call in ApiCall.objects.filter(job__reference=obj.order_number):
            rows.append(
                (
                    call.created_at,
                    "api call",
                    call,
                    f"{call.method} {call.operation} → {call.status_code or call.error[:40]}",
                )
            )
        rows.sort(key=lambda r: r[0])
        items = [
            format_html(
                "<tr><td>{}</td><td>{}</td><td><a href='{}'>{}</a></td></tr>",
                when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
                kind,
                reverse(
                    f"admin:{target._meta.app_label}_{target._meta.model_name}_change",
                    args=[target.pk],
                ),
                text,
            )
            for when, kind, target, text in rows
        ]
        return format_html("<table>{}</table>", mark_safe("".join(items))) if items else "-"  # noqa: S308 - items are format_html output


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = (
        "payment_intent_id",
        "order",
        "status",
        "amount",
        "decline_code",
        "znode_booked_at",
        "erp_booked_at",
    )
    list_filter = ("status", "currency")
    exclude = ("amount_minor", "amount_received_minor", "amount_refunded_minor")
    readonly_fields = ("amount", "received", "refunded")
    amount = AMOUNT
    received = money_display("amount_received_minor", "Received")
    refunded = money_display("amount_refunded_minor", "Refunded by the platform")
    search_fields = ("=payment_intent_id", "=charge_id", "=order__order_number")
    actions = ("rebook",)

    def has_rebook_permission(self, request) -> bool:
        return request.user.has_perm("payments.rebook_payment")

    @admin.action(
        description="Book again: the next job for it re-checks Znode and the ERP",
        permissions=["rebook"],
    )
    def rebook(self, request, queryset):
        """For a booking lost on the other side (a restore, a manual cleanup): clears
        the payment's booking marks, audited; replay its event to write what is
        missing (what is there already is found and not written twice)."""
        count = 0
        for payment in queryset.exclude(znode_booked_at=None, erp_booked_at=None):
            payment_rebook(payment=payment)
            self.log_change(request, payment, "Booking marks cleared: book again")
            count += 1
        self.message_user(
            request, f"{count} payment(s) will be booked again by their next job (replay it)"
        )


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("sent_at", "order", "kind", "recipient", "subject")
    list_filter = ("kind",)


@admin.register(Return)
class ReturnAdmin(ReadOnlyAdmin):
    list_display = ("return_number", "order", "state", "znode_state", "amount_shown")
    list_filter = ("state", "integration")
    exclude = ("amount", "amount_minor")
    readonly_fields = ("amount_shown",)
    amount_shown = money_display("amount", "Amount", minor=False)
    search_fields = ("=return_number", "=order__order_number")


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = (
        "stripe_refund_id",
        "order",
        "origin",
        "status",
        "amount",
        "failure_reason",
        "znode_booked_at",
        "erp_booked_at",
    )
    list_filter = ("status", "origin", "currency")
    search_fields = ("=stripe_refund_id", "=order__order_number", "=return_request__return_number")
    exclude = ("amount_minor",)
    readonly_fields = ("amount",)
    amount = AMOUNT


@admin.register(Dispute)
class DisputeAdmin(ReadOnlyAdmin):
    list_display = (
        "stripe_dispute_id",
        "order",
        "status",
        "outcome",
        "reason",
        "amount",
        "evidence_due_by",
    )
    list_filter = ("status", "outcome", "reason")
    search_fields = ("=stripe_dispute_id", "=charge_id", "=order__order_number")
    exclude = ("amount_minor", "fee_minor")
    readonly_fields = ("amount", "fee")
    amount = AMOUNT
    fee = money_display("fee_minor", "Dispute fees Stripe took")
