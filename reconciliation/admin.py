from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Max, Min, QuerySet, Subquery
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from integrations.admin import (
    AuditedAdmin,
    ChangeReasonForm,
    ReadOnlyAdmin,
    ReadOnlyInline,
    admin_link,
    permission_check,
)
from payments import money
from reconciliation import exports
from reconciliation.models import BalanceTransaction, GlAccount, JournalEntry, JournalLine, Payout

INLINE_ROWS = 200


_shown = money.shown_minor
_shown_major = money.shown_major


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
    readonly_fields = (
        "amount",
        "discrepancy",
        "transactions_net",
        "all_transactions",
        "journal_entry_links",
    )
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
        "ledger_state",
        "ledger_note",
        "journal_entry_links",
    )
    inlines = [BalanceTransactionInline]
    actions = ["export_csv", "export_xlsx"]
    has_export_permission = permission_check("reconciliation.export_payout")

    # --- exports: an action on the selected payouts (or all the list's, "select all"),
    # buttons for the list as filtered and for one payout. All need the export
    # permission and the view permission.
    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "export/<slug:export_format>/",
                view(self.export_listed_view),
                name="reconciliation_payout_export",
            ),
            path(
                "<path:object_id>/export/<slug:export_format>/",
                view(self.export_one_view),
                name="reconciliation_payout_export_one",
            ),
            *super().get_urls(),
        ]

    def _may_export(self, request, obj=None) -> bool:
        return self.has_view_permission(request, obj) and self.has_export_permission(request)

    def _export(self, request, payouts: QuerySet[Payout], export_format: str, filename: str):
        if export_format not in exports.FORMATS:
            raise Http404(f"no export format {export_format!r}: csv or xlsx")
        if not self._may_export(request):
            raise PermissionDenied
        return exports.export_response(
            payouts=payouts, export_format=export_format, filename=filename
        )

    @staticmethod
    def _listed_name(payouts: QuerySet[Payout]) -> str:
        """``payouts-<first>-to-<last>`` by arrival date, as the list selected them."""
        span = payouts.aggregate(first=Min("arrival_date"), last=Max("arrival_date"))
        if span["first"] is None:
            return f"payouts-{timezone.localdate().isoformat()}"
        first, last = (timezone.localdate(span[k]).isoformat() for k in ("first", "last"))
        return f"payouts-{first}" if first == last else f"payouts-{first}-to-{last}"

    def export_one_view(self, request, object_id, export_format):
        payout = self.get_object(request, unquote(object_id))
        if payout is None:
            raise Http404("no such payout")
        if not self._may_export(request, payout):
            raise PermissionDenied
        return self._export(
            request,
            Payout.objects.filter(pk=payout.pk),
            export_format,
            f"payout-{payout.stripe_payout_id}",
        )

    def export_listed_view(self, request, export_format):
        """The payouts the list shows with the same filters, search and date drill-down
        (all its pages)."""
        if not self._may_export(request):
            raise PermissionDenied
        try:
            listed = self.get_changelist_instance(request).get_queryset(request)
        except IncorrectLookupParameters:
            self.message_user(request, "Those filters select no payouts.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:reconciliation_payout_changelist"))
        return self._export(request, listed, export_format, self._listed_name(listed))

    @admin.action(
        description="Export the selected payouts' transactions (CSV)", permissions=["export"]
    )
    def export_csv(self, request, queryset):
        return self._export(request, queryset, "csv", self._listed_name(queryset))

    @admin.action(
        description="Export the selected payouts' transactions (XLSX)", permissions=["export"]
    )
    def export_xlsx(self, request, queryset):
        return self._export(request, queryset, "xlsx", self._listed_name(queryset))

    def changelist_view(self, request, extra_context=None):
        extra = {"can_export": self._may_export(request), **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {"can_export": self._may_export(request), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra_context=extra)

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

    @admin.display(description="Journal entries")
    def journal_entry_links(self, obj):
        entries = obj.journal_entries.order_by("id")
        if not entries:
            return "-"
        return format_html_join(
            mark_safe("<br>"),
            '<a href="{}">{}</a> ({}, {})',
            (
                (
                    reverse("admin:reconciliation_journalentry_change", args=[entry.pk]),
                    entry.external_reference,
                    entry.get_kind_display(),
                    f"ERP {entry.erp_document_id}" if entry.erp_document_id else "not posted",
                )
                for entry in entries
            ),
        )


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


# --- the ledger ------------------------------------------------------------------------------
class CurrencyCode(forms.CharField):
    """An ISO 4217 code the platform's currency table knows, upper-cased; empty: every
    currency."""

    def to_python(self, value):
        return super().to_python(value).strip().upper()

    def validate(self, value):
        super().validate(value)
        if value:
            try:
                money.currency(value)
            except money.UnknownCurrency as error:
                raise forms.ValidationError(str(error)) from error


class GlAccountForm(ChangeReasonForm):
    # The fields that name a row of the map: one row per integration, key and currency.
    IDENTITY = ("integration", "key", "currency")

    class Meta:
        field_classes = {"currency": CurrencyCode}

    def clean(self):
        cleaned = super().clean()
        integration, key, currency = (cleaned.get(name) for name in self.IDENTITY)
        if key and currency is not None:
            same = GlAccount.objects.filter(integration=integration, key=key, currency=currency)
            if same.exclude(pk=self.instance.pk).exists():
                # On the key: the database's own constraint message names no row.
                self.add_error(
                    "key",
                    f"The map already has a row for {key} in {currency or 'every currency'} "
                    f"for {integration or 'every integration'}: edit that one.",
                )
        return cleaned


@admin.register(GlAccount)
class GlAccountAdmin(AuditedAdmin):
    """The GL map, edited by finance (the model's change permission); every change is
    kept in its history with who made it and why."""

    form = GlAccountForm
    list_display = ("key", "currency_shown", "integration_shown", "account", "description")
    list_filter = ("key", "currency", "integration")
    search_fields = ("key", "account", "description")
    fields = ("integration", "key", "currency", "account", "description", "change_reason")
    history_list_display = ("history_change_reason", "account", "description")

    @admin.display(description="Currency", ordering="currency")
    def currency_shown(self, obj):
        return obj.currency or "every currency"

    @admin.display(description="Integration", ordering="integration")
    def integration_shown(self, obj):
        return obj.integration or "every integration"


class JournalLineInline(ReadOnlyInline):
    model = JournalLine
    fields = ("position", "key", "account", "debit_shown", "credit_shown", "description")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("entry")

    @admin.display(description="Debit")
    def debit_shown(self, obj):
        return _shown_major(obj.debit, obj.entry.currency) if obj.debit else ""

    @admin.display(description="Credit")
    def credit_shown(self, obj):
        return _shown_major(obj.credit, obj.entry.currency) if obj.credit else ""


class PostedFilter(admin.SimpleListFilter):
    title = "posted"
    parameter_name = "posted"

    def lookups(self, request, model_admin):
        return (("yes", "posted"), ("no", "not posted"))

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(posted_at__isnull=self.value() == "no")
        return queryset


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdmin):
    """The journal as posted: evidence, never edited here."""

    list_display = (
        "external_reference",
        "kind",
        "date",
        "currency",
        "total_shown",
        "posted",
        "erp_document_id",
    )
    list_filter = ("kind", PostedFilter, "integration")
    search_fields = (
        "=external_reference",
        "=erp_document_id",
        "=ledger_key",
        "=order__order_number",
        "=payout__stripe_payout_id",
    )
    date_hierarchy = "date"
    readonly_fields = ("total_shown",)
    fields = (
        "integration",
        "external_reference",
        "kind",
        "document",
        "ledger_key",
        "date",
        "currency",
        "total_shown",
        "memo",
        "order",
        "payout",
        "erp_document_id",
        "posted_at",
        "created_at",
    )
    inlines = [JournalLineInline]

    @admin.display(description="Total", ordering="total")
    def total_shown(self, obj):
        return _shown_major(obj.total, obj.currency)

    @admin.display(description="Posted", boolean=True, ordering="posted_at")
    def posted(self, obj):
        return obj.posted_at is not None
