"""The finance API, under ``/api/`` (reconciliation.api says who may call it)."""

from django.urls import path

from reconciliation import api

app_name = "reconciliation_api"

urlpatterns = [
    path("reconciliation/payouts/", api.PayoutList.as_view(), name="payouts"),
    path(
        "reconciliation/payouts/<str:stripe_payout_id>/",
        api.PayoutDetail.as_view(),
        name="payout",
    ),
    path(
        "reconciliation/payouts/<str:stripe_payout_id>/transactions/",
        api.PayoutTransactions.as_view(),
        name="payout-transactions",
    ),
    path(
        "reconciliation/payouts/<str:stripe_payout_id>/export/",
        api.PayoutExport.as_view(),
        name="payout-export",
    ),
    path("reconciliation/exports/", api.RangeExport.as_view(), name="export"),
]
