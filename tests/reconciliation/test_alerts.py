"""Payouts that do not tie out, or that the ledger refused, are alerted once each."""

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.choices import AlertKind
from integrations.models import Alert
from integrations.services.alerts import alerts_check
from reconciliation.choices import LedgerState, TieOut
from reconciliation.models import Payout

pytestmark = pytest.mark.django_db


def payout(integration, stripe_id: str, **fields) -> Payout:
    return Payout.objects.create(
        integration=integration,
        stripe_payout_id=stripe_id,
        amount_minor=171_35,
        currency="usd",
        status="paid",
        imported_at=timezone.now(),
        **fields,
    )


def test_a_payout_that_does_not_tie_out_is_alerted_once(integration):
    off = payout(
        integration,
        "po_off",
        tie_out=TieOut.DISCREPANCY,
        discrepancy_minor=5_00,
        note="1 transaction unexplained",
    )
    payout(integration, "po_fine", tie_out=TieOut.TIED_OUT, ledger_state=LedgerState.POSTED)

    alerts_check()
    alerts_check()
    [alert] = Alert.objects.all()
    assert alert.kind == AlertKind.RECONCILIATION
    assert alert.key == f"payout:{off.pk}:discrepancy:not_posted"
    assert alert.subject == "Payout po_off (171.35 USD) does not tie out: 5.00 USD unaccounted for"
    assert "1 transaction unexplained" in alert.text
    assert alert.repeats == 0  # alerted once: not a repeat for the digest either

    # Refused by the ledger later: a new state, a new alert.
    Payout.objects.filter(pk=off.pk).update(
        tie_out=TieOut.TIED_OUT, ledger_state=LedgerState.REFUSED, ledger_note="would not clear"
    )
    alerts_check()
    latest = Alert.objects.order_by("-id").first()
    assert latest.subject == "Payout po_off (171.35 USD) was refused by the ledger"
    assert "would not clear" in latest.text


def test_old_payouts_are_not_looked_at(integration):
    old = payout(integration, "po_old", tie_out=TieOut.DISCREPANCY)
    Payout.objects.filter(pk=old.pk).update(imported_at=timezone.now() - timedelta(days=8))
    alerts_check()
    assert not Alert.objects.exists()


def test_a_payout_alerted_once_fills_no_digest(integration):
    from integrations.services.alerts import alerts_digest

    payout(integration, "po_off", tie_out=TieOut.DISCREPANCY)
    alerts_check()
    later = timezone.now() + timedelta(minutes=20)
    alerts_check(now=later)
    assert alerts_digest(now=later + timedelta(minutes=20), force=True) is None
