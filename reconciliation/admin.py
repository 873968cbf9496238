from django.contrib import admin
from django.db.models import Subquery
from django.urls import reverse
from django.utils.html import format_html

from integrations.admin import ReadOnlyAdmin, ReadOnlyInline, admin_link
from payments import money
from reconciliation.models import BalanceTransaction, Payout

INLINE_ROWS = 200


def _shown(minor: int, currency: str) -> str:
    try:
        return money.format_minor(minor, currency)
    except money.MoneyError:
        return f"{minor} {currency} (minor units)"


class BalanceTransactionInline(ReadOnlyInline):
    model = BalanceTransaction
    fields = (
        "stripe_txn_id",
        "type",
        "reporting_category",
        "gross",
        "fee",
        "net",
        "fee_details",
        "source_id",
        "order_link",
        "matched_as",
        "explained",
        "unmatched_reason",
        "available_on",
    )
    ordering = ("explained", "created", "id")  # the unexplained first
    verbose_name_plural = f"balance transactions (the unexplained first; at most {INLINE_ROWS})"

    def get_queryset(self, request):
        # A payout may hold tens of thousands: the page shows the first rows, the link
        # above lists them all.
        rows = super().get_queryset(request)
        first = rows.order_by(*self.ordering).values("pk")[:INLINE_ROWS]
        return rows.filter(pk__in=Subquery(first)).select_related("order")

    @admin.display(description="Gross")
    def gross(self, obj):
        return _shown(obj.gross_minor, obj.currency)

    @admin.display(description="Fee")
    def fee(self, obj):
        return _shown(obj.fee_minor, obj.currency)

    @admin.display(description="Net")
    def net(self, obj):
        return _shown(obj.net_minor, obj.currency)

    @admin.display(description="Order")
    def order_link(self, obj):
        return admin_link(obj.order, obj.order.order_number) if obj.order else "-"


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdmin):
    list_display = (
        "stripe_payout_id",
        "integration",
        "arrival_date",
        "amount",
        "status",
        "automatic",
        "tie_out",
        "discrepancy",
        "transaction_count",
        "unexplained_count",
    )
    list_filter = ("tie_out", "status", "automatic", "integration", "currency")
    list_select_related = ("integration",)
    search_fields = ("=stripe_payout_id", "=transactions__stripe_txn_id")
    date_hierarchy = "arrival_date"
    readonly_fields = ("amount", "discrepancy", "transactions_net", "all_transactions")
    fields = (
        "integration",
        "stripe_payout_id",
        "amount",
        "status",
        "automatic",
        "arrival_date",
        "stripe_created",
        "tie_out",
        "discrepancy",
        "transactions_net",
        "transaction_count",
        "unexplained_count",
        "all_transactions",
        "note",
        "imported_at",
    )
    inlines = [BalanceTransactionInline]

    @admin.display(description="Amount", ordering="amount_minor")
    def amount(self, obj):
        return _shown(obj.amount_minor, obj.currency)

    @admin.display(description="Discrepancy", ordering="discrepancy_minor")
    def discrepancy(self, obj):
        return _shown(obj.discrepancy_minor, obj.currency)

    @admin.display(description="All its transactions")
    def all_transactions(self, obj):
        url = reverse("admin:reconciliation_balancetransaction_changelist")
        return format_html(
            '<a href="{}?payout__id__exact={}">{} transactions</a>',
            url,
            obj.pk,
            obj.transaction_count,
        )

    @admin.display(description="Transactions' net (the payout's own row left out)")
    def transactions_net(self, obj):
        return _shown(obj.transactions_net_minor, obj.currency)


@admin.register(BalanceTransaction)
class BalanceTransactionAdmin(ReadOnlyAdmin):
    list_display = (
        "stripe_txn_id",
        "payout",
        "type",
        "reporting_category",
        "net",
        "order",
        "matched_as",
        "explained",
    )
    list_filter = ("explained", "matched_as", "reporting_category", "type", "currency")
    search_fields = ("=stripe_txn_id", "=source_id", "=payout__stripe_payout_id")
    list_select_related = ("payout", "order")

    @admin.display(description="Net", ordering="net_minor")
    def net(self, obj):
        return _shown(obj.net_minor, obj.currency)
