"""What reconciliation tells the ops team about (and the dashboard's payouts of
today) (the alert check asks, see
:mod:`integrations.services.alerts`): the drift check's mismatches, whose error groups
are alerted as discrepancies, and payouts that do not tie out or that the ledger
refused."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q
from django.urls import reverse

from integrations.choices import AlertKind
from integrations.registry import (
    AlertSignal,
    Figure,
    alert_source,
    dashboard_figures,
    flow_alert_kind,
)
from integrations.services.alerts import alert_link
from payments.money import shown_minor
from reconciliation.choices import LedgerState, TieOut
from reconciliation.drift import DRIFT_FLOW
from reconciliation.models import Payout

# Payouts imported within this time are looked at (older ones were alerted then).
RECENT = timedelta(days=7)
SHOWN = 50

flow_alert_kind(DRIFT_FLOW, AlertKind.RECONCILIATION)


@alert_source
def payout_discrepancies(*, now: datetime) -> list[AlertSignal]:
    """One alert per payout and state that does not tie out or was refused."""
    payouts = (
        Payout.objects.filter(imported_at__gte=now - RECENT)
        .filter(Q(tie_out=TieOut.DISCREPANCY) | Q(ledger_state=LedgerState.REFUSED))
        .select_related("integration")
        .order_by("-imported_at")[:SHOWN]
    )
    signals = []
    for payout in payouts:
        amount = shown_minor(payout.amount_minor, payout.currency)
        link = reverse("admin:reconciliation_payout_change", args=[payout.pk])
        if payout.tie_out == TieOut.DISCREPANCY:
            off = shown_minor(payout.discrepancy_minor, payout.currency)
            what = f"does not tie out: {off} unaccounted for"
            why = payout.note
        else:
            what = "was refused by the ledger"
            why = payout.ledger_note
        signals.append(
            AlertSignal(
                kind=AlertKind.RECONCILIATION,
                key=f"payout:{payout.pk}:{payout.tie_out}:{payout.ledger_state}",
                subject=f"Payout {payout.stripe_payout_id} ({amount}) {what}",
                text=f"Integration {payout.integration.name}, payout "
                f"{payout.stripe_payout_id} of {amount} {what}.\n{why[:1500]}" + alert_link(link),
            )
        )
    return signals


@dashboard_figures
def paid_out_today(*, since: datetime) -> list[Figure]:
    """Payouts arriving at the bank today (neither failed nor canceled)."""
    from payments.dashboard import money_figures

    until = since + timedelta(days=1)
    payouts = Payout.objects.filter(arrival_date__gte=since, arrival_date__lt=until).exclude(
        status__in=["failed", "canceled"]
    )
    return money_figures("Paid out today", payouts, "amount_minor")
