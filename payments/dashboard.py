"""The dashboard's money in and back: captured and refunded today, by currency, each
one range read on an index."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, QuerySet, Sum

from integrations.registry import Figure, dashboard_figures
from payments.choices import RefundStatus
from payments.models import Payment, Refund
from payments.money import shown_minor


def money_figures(title: str, rows: QuerySet, amount: str) -> list[Figure]:
    """One figure per currency: the sum of ``amount`` (minor units) and how many."""
    totals = (
        rows.order_by("currency")
        .values("currency")
        .annotate(minor=Sum(amount), n=Count("id"))
        .values_list("currency", "minor", "n")
    )
    out = [Figure(title, shown_minor(minor or 0, code), f"{n} in all") for code, minor, n in totals]
    return out or [Figure(title, "none yet")]


@dashboard_figures
def money_today(*, since: datetime) -> list[Figure]:
    captured = Payment.objects.filter(paid_at__gte=since)
    refunded = Refund.objects.filter(created_at__gte=since, status=RefundStatus.SUCCEEDED)
    return [
        *money_figures("Captured today", captured, "amount_received_minor"),
        *money_figures("Refunded today", refunded, "amount_minor"),
    ]
