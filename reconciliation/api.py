"""The finance API (``/api/reconciliation/...``): payouts, their transactions and the
finance exports, read-only, for the finance role.

Who may call it: a user authenticated by HTTP Basic (scripts; the platform is served
over HTTPS only) or by the admin's session, holding ``reconciliation.export_payout``
(:class:`FinanceRole`; superusers hold every permission). Everything answers JSON but
the exports; a bad parameter is a 400 that names it, an unknown payout a 404, and an
unexpected failure a bare JSON 500 (the traceback goes to the redacting log, never to
the caller). The OpenAPI schema is at ``/api/schema/``, its pages at ``/api/docs/``.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.core.signals import got_request_exception
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.generics import ListAPIView, RetrieveAPIView
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations.authentication import ThrottledBasicAuthentication
from reconciliation import exports
from reconciliation.choices import TieOut
from reconciliation.models import BalanceTransaction, JournalEntry, Payout
from reconciliation.selectors import payout_totals

logger = logging.getLogger("reconciliation.api")

EXPORT_PERMISSION = "reconciliation.export_payout"


# --- who may call it -----------------------------------------------------------------------
class FinanceRole(BasePermission):
    """The finance role: an authenticated user holding ``reconciliation.export_payout``.
    Staff without it are refused (403) like anyone else."""

    message = f"This needs the finance role (the permission {EXPORT_PERMISSION})."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm(EXPORT_PERMISSION))


class ReadsTheDocs(BasePermission):
    """The schema and its pages: the finance role, and staff (who build on the API)."""

    message = "The API's documentation is for staff and the finance role."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(
            user and user.is_authenticated and (user.is_staff or user.has_perm(EXPORT_PERMISSION))
        )


def api_paths_only(endpoints, **kwargs):
    """drf-spectacular preprocessing hook: the schema documents ``/api/`` only (the
    webhook endpoints are DRF views too, but for machines with signatures, not users)."""
    return [endpoint for endpoint in endpoints if endpoint[0].startswith("/api/")]


class _Json(BaseContentNegotiation):
    """Answers are JSON, the exports' errors included: ``format`` is a parameter of the
    exports here, not DRF's renderer switch."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class FinanceView(APIView):
    authentication_classes = (ThrottledBasicAuthentication, SessionAuthentication)
    permission_classes = (FinanceRole,)
    renderer_classes = (JSONRenderer,)
    content_negotiation_class = _Json
    http_method_names = ["get", "head", "options"]

    def handle_exception(self, exc: Exception):
        if isinstance(exc, APIException | Http404 | PermissionDenied):
            return super().handle_exception(exc)
        # Never Django's debug page, whatever DEBUG says: its frames hold secrets.
        logger.error("reconciliation.api.error %s", self.request.path, exc_info=exc)
        got_request_exception.send(sender=type(self), request=self.request._request)
        response = Response({"detail": "Internal error."}, status=500)
        response._has_been_logged = True
        return response


class Pages(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


# --- parameters ----------------------------------------------------------------------------
def _validated(serializer_class: type[serializers.Serializer], request) -> dict:
    params = serializer_class(data=request.query_params)
    params.is_valid(raise_exception=True)
    return params.validated_data


class IntegrationParam(serializers.Serializer):
    integration = serializers.SlugField(
        required=False,
        help_text="Only this integration's payouts: its name (as in the admin).",
    )

    def validate_integration(self, name: str):
        integration = exports.integration_named(name=name)
        if integration is None:
            raise ValidationError(f"There is no integration named {name!r}.")
        return integration


class PayoutFilters(IntegrationParam):
    arrival_from = serializers.DateField(
        required=False, help_text="Payouts arriving on this day or later (YYYY-MM-DD)."
    )
    arrival_to = serializers.DateField(
        required=False, help_text="Payouts arriving on this day or earlier (YYYY-MM-DD)."
    )
    tie_out = serializers.ChoiceField(
        choices=TieOut.choices, required=False, help_text="Only payouts in this tie-out state."
    )

    def validate(self, attrs):
        start, end = attrs.get("arrival_from"), attrs.get("arrival_to")
        if start and end and end < start:
            raise ValidationError({"arrival_to": "arrival_to is before arrival_from."})
        return attrs


class ExportFormat(serializers.Serializer):
    format = serializers.ChoiceField(
        choices=sorted(exports.FORMATS),
        default="csv",
        help_text="csv (UTF-8, streamed) or xlsx (Excel workbook).",
    )


class RangeExportParams(ExportFormat, IntegrationParam):
    arrival_from = serializers.DateField(help_text="First arrival day (YYYY-MM-DD), included.")
    arrival_to = serializers.DateField(help_text="Last arrival day (YYYY-MM-DD), included.")

    validate = PayoutFilters.validate


# --- answers -------------------------------------------------------------------------------
def _money(minor: int, currency: str) -> str:
    return format(exports.amount_of(minor, currency).value, "f")


@extend_schema_field(OpenApiTypes.DECIMAL)
class Money(serializers.Field):
    """An amount stored in minor units, as decimal text in the currency's major units
    (``"19.99"``; exact, never a float)."""

    def __init__(self, minor: str, **kwargs) -> None:
        self.minor = minor
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, value) -> str:
        return _money(getattr(value, self.minor), value.currency)


class PayoutSerializer(serializers.ModelSerializer):
    integration = serializers.SlugRelatedField(slug_field="name", read_only=True)
    amount = Money("amount_minor", help_text="What Stripe paid to the bank.")
    discrepancy = Money("discrepancy_minor", help_text="The amount less the explained nets.")

    class Meta:
        model = Payout
        fields = (
            "stripe_payout_id",
            "integration",
            "amount",
            "currency",
            "status",
            "automatic",
            "arrival_date",
            "stripe_created",
            "tie_out",
            "discrepancy",
            "transaction_count",
            "unexplained_count",
            "ledger_state",
            "imported_at",
        )


@extend_schema_field(OpenApiTypes.DECIMAL)
class DecimalText(serializers.CharField):
    """Decimal text in the currency's major units."""


class TotalsSerializer(serializers.Serializer):
    transactions = serializers.IntegerField(help_text="Its transactions, its own row left out.")
    net = DecimalText(help_text="Their nets: the payout's amount when it ties out.")
    explained_net = DecimalText(help_text="The nets of those matched or explained.")
    unexplained = serializers.IntegerField(help_text="Transactions neither matched nor explained.")
    unexplained_net = DecimalText()


class JournalEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = JournalEntry
        fields = ("external_reference", "kind", "date", "currency", "erp_document_id", "posted_at")


class PayoutDetailSerializer(PayoutSerializer):
    totals = serializers.SerializerMethodField()
    journal_entries = serializers.SerializerMethodField()

    class Meta(PayoutSerializer.Meta):
        fields = (*PayoutSerializer.Meta.fields, "note", "ledger_note", "totals", "journal_entries")

    @extend_schema_field(JournalEntrySerializer(many=True))
    def get_journal_entries(self, payout: Payout) -> list:
        """Its own entries (the deposit, a currency conversion), in the order booked."""
        entries = payout.journal_entries.order_by("date", "id")
        return JournalEntrySerializer(entries, many=True).data

    @extend_schema_field(TotalsSerializer)
    def get_totals(self, payout: Payout) -> dict:
        totals = payout_totals(payout=payout)
        return {
            "transactions": totals.lines,
            "net": _money(totals.net, payout.currency),
            "explained_net": _money(totals.explained_net, payout.currency),
            "unexplained": totals.unexplained,
            "unexplained_net": _money(totals.unexplained_net, payout.currency),
        }


class TransactionSerializer(serializers.ModelSerializer):
    gross = Money("gross_minor")
    fee = Money("fee_minor")
    net = Money("net_minor")
    order_number = serializers.CharField(source="order.order_number", default="", read_only=True)
    exchange_rate = serializers.DecimalField(
        max_digits=24, decimal_places=12, read_only=True, allow_null=True
    )

    class Meta:
        model = BalanceTransaction
        fields = (
            "stripe_txn_id",
            "created",
            "available_on",
            "type",
            "reporting_category",
            "gross",
            "fee",
            "net",
            "currency",
            "exchange_rate",
            "fee_details",
            "source_id",
            "order_number",
            "matched_as",
            "explained",
            "unmatched_reason",
        )


# --- views ---------------------------------------------------------------------------------
_BAD = OpenApiResponse(description="A parameter is wrong: the answer names it and says why.")
_UNKNOWN = OpenApiResponse(description="No such payout (or not of the integration named).")
_REFUSED = OpenApiResponse(description="Not the finance role.")
_ANONYMOUS = OpenApiResponse(description="Not authenticated (HTTP Basic or the admin's session).")
_FILE = "The export as an attachment: CSV (UTF-8, streamed) or XLSX, as format says."
_FILES = {
    (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description=_FILE),
    (200, exports.XLSX_TYPE): OpenApiResponse(OpenApiTypes.BINARY, description=_FILE),
}


def _payout(request, stripe_payout_id: str) -> Payout:
    integration = _validated(IntegrationParam, request).get("integration")
    found = exports.payouts_by_stripe_id(stripe_payout_id=stripe_payout_id, integration=integration)
    if not found:
        raise NotFound(f"There is no payout {stripe_payout_id}.")
    if len(found) > 1:
        raise ValidationError(
            {"integration": f"{stripe_payout_id} is a payout of several integrations: name one."}
        )
    return found[0]


class PayoutList(FinanceView, ListAPIView):
    """Payouts, the latest arrival first."""

    serializer_class = PayoutSerializer
    pagination_class = Pages

    @extend_schema(
        parameters=[PayoutFilters],
        responses={200: PayoutSerializer, 400: _BAD, 401: _ANONYMOUS, 403: _REFUSED},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = _validated(PayoutFilters, self.request)
        return exports.payouts_filter(**filters).select_related("integration")


class PayoutDetail(FinanceView, RetrieveAPIView):
    """One payout, with the totals of its transactions and its journal entries."""

    serializer_class = PayoutDetailSerializer

    @extend_schema(
        parameters=[IntegrationParam],
        responses={
            200: PayoutDetailSerializer,
            400: _BAD,
            401: _ANONYMOUS,
            403: _REFUSED,
            404: _UNKNOWN,
        },
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_object(self):
        return _payout(self.request, self.kwargs["stripe_payout_id"])


class PayoutTransactions(FinanceView, ListAPIView):
    """A payout's balance transactions as imported (its own payout row included), in
    booking order."""

    serializer_class = TransactionSerializer
    pagination_class = Pages

    @extend_schema(
        parameters=[IntegrationParam],
        responses={
            200: TransactionSerializer(many=True),
            400: _BAD,
            401: _ANONYMOUS,
            403: _REFUSED,
            404: _UNKNOWN,
        },
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        payout = _payout(self.request, self.kwargs["stripe_payout_id"])
        return payout.transactions.select_related("order").order_by("created", "id")


class PayoutExport(FinanceView):
    """One payout's transactions as a finance export (the columns and the totals rows
    are in the README, "Finance exports")."""

    @extend_schema(
        operation_id="reconciliation_payout_export",
        parameters=[ExportFormat, IntegrationParam],
        responses={**_FILES, 400: _BAD, 401: _ANONYMOUS, 403: _REFUSED, 404: _UNKNOWN},
    )
    def get(self, request, stripe_payout_id: str):
        export_format = _validated(ExportFormat, request)["format"]
        payout = _payout(request, stripe_payout_id)
        return exports.export_response(
            payouts=Payout.objects.filter(pk=payout.pk),
            export_format=export_format,
            filename=f"payout-{payout.stripe_payout_id}",
        )


class RangeExport(FinanceView):
    """The transactions of every payout arriving from ``arrival_from`` to ``arrival_to``
    (both included, in the platform's TIME_ZONE), payout by payout, as one export."""

    @extend_schema(
        operation_id="reconciliation_range_export",
        parameters=[RangeExportParams],
        responses={**_FILES, 400: _BAD, 401: _ANONYMOUS, 403: _REFUSED},
    )
    def get(self, request):
        params = _validated(RangeExportParams, request)
        start, end = params["arrival_from"], params["arrival_to"]
        return exports.export_response(
            payouts=exports.payouts_filter(
                arrival_from=start, arrival_to=end, integration=params.get("integration")
            ),
            export_format=params["format"],
            filename=f"payouts-{start.isoformat()}-to-{end.isoformat()}",
        )
