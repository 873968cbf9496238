"""The ledger by the clearing-account method (reference stripe.md A7, "Accounting
pattern"): order-to-cash's entries kept as posted, each payout's journal posted to the
sandbox ERP once, the Stripe clearing account netting to zero per payout (the ERP's
trial balance shows it), and nothing posted that does not balance or would not clear."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import requests

from integrations.choices import JobStatus
from integrations.kernel import exceptions as exc
from integrations.models import Job
from integrations.services.inbox import inbox_drain
from integrations.services.jobs import job_run
from reconciliation import ledger
from reconciliation.choices import EntryKind, LedgerState, TieOut
from reconciliation.models import BalanceTransaction, GlAccount, JournalEntry, JournalLine, Payout
from tests.conftest import post_stripe, stripe_event
from tests.reconciliation.conftest import STRIPE_KEY
from tests.reconciliation.test_payouts import import_payout, paid, payout_run, sale_post, stripe
from tests.support.payments import collect, erp_entries, new_ctx, place, run

pytestmark = pytest.mark.django_db


def trial_balance(recon) -> dict[tuple[str, str], Decimal]:
    """The ERP's trial balance: (account, currency) → balance (debit positive)."""
    body = requests.get(
        f"{recon.sandbox.system_url('erp')}/api/trial-balance",
        headers={"Authorization": "Bearer sandbox-erp-token"},
        timeout=10,
    ).json()
    return {(row["account"], row["currency"]): Decimal(row["balance"]) for row in body["accounts"]}


def sold(recon, *, user_id: int, total: str, card: str = "pm_card_visa") -> dict:
    """An order paid through the platform and its sale posted to the ERP."""
    order = paid(recon, user_id=user_id, total=total, card=card)
    sale_post(recon, order, int(Decimal(total) * 100))
    return order


def entry_lines(reference: str) -> list[tuple]:
    return list(
        JournalLine.objects.filter(entry__external_reference=reference).values_list(
            "key", "account", "debit", "credit"
        )
    )


def test_a_payout_posts_its_journal_once_and_empties_the_clearing_account(recon):
    a = sold(recon, user_id=11, total="30.00")
    sold(recon, user_id=12, total="45.50")
    d = sold(recon, user_id=13, total="20.00", card="pm_card_createDispute")
    refund = stripe(recon, "POST", "/v1/refunds", charge=a["charge"], amount=1200)
    run(recon, "payments.record_refund", refund=refund["id"])
    run(recon, "payments.reflect_refund", refund=refund["id"])
    [dispute] = stripe(recon, "GET", "/v1/disputes", charge=d["charge"])["data"]
    run(recon, "payments.record_dispute", dispute=dispute["id"])
    payout = payout_run(recon)
    import_payout(recon, payout)

    out = run(recon, "reconciliation.post_payout", payout=payout)

    row = Payout.objects.get()
    assert (row.tie_out, row.ledger_state) == (TieOut.TIED_OUT, LedgerState.POSTED)
    assert out["posted"] == [f"payout:{payout}"]
    # 2.9% + 30 on 30.00, 45.50, 20.00: 1.17 + 1.62 + 0.88; the payout is 44.83.
    # One line per kind of money: the sales, the refund, the dispute's 20.00 and its
    # 15.00 fee (booked by the dispute's entry) leave clearing; fees; the bank.
    assert sorted(entry_lines(f"payout:{payout}")) == sorted(
        [
            ("payout", "1010", Decimal("44.83"), Decimal(0)),  # the map: payout → bank
            ("clearing", "1150", Decimal(0), Decimal("95.50")),
            ("clearing", "1150", Decimal("12.00"), Decimal(0)),
            ("clearing", "1150", Decimal("35.00"), Decimal(0)),
            ("fee:stripe_fee", "6100", Decimal("3.67"), Decimal(0)),
        ]
    )
    assert ledger.clearing_residual(row) == {"USD": 0}
    assert "nets to zero" in row.ledger_note
    assert trial_balance(recon)[("1150", "USD")] == 0  # the clearing account, in the ERP
    kinds = sorted(JournalEntry.objects.values_list("kind", flat=True))
    assert kinds == sorted(
        [EntryKind.SALE] * 3 + [EntryKind.CREDIT_MEMO, EntryKind.DISPUTE, EntryKind.PAYOUT]
    )
    assert all(JournalEntry.objects.values_list("erp_document_id", flat=True))

    again = run(recon, "reconciliation.post_payout", payout=payout)
    import_payout(recon, payout)  # a re-import leaves the posted journal alone
    run(recon, "reconciliation.post_payout", payout=payout)

    assert again["skipped"] == "posted already"
    assert len(erp_entries(recon, f"payout:{payout}")) == 1
    assert JournalEntry.objects.filter(kind=EntryKind.PAYOUT).count() == 1


def test_a_posted_payouts_reimport_keeps_what_its_transactions_were_booked_by(recon):
    """Once a payout's journal is posted, a re-import writes Stripe's facts of its
    transactions again but not how they were matched and booked: the exports keep
    naming what the ledger posted."""
    order = sold(recon, user_id=11, total="30.00")
    payout = payout_run(recon)
    import_payout(recon, payout)
    run(recon, "reconciliation.post_payout", payout=payout)
    charge = BalanceTransaction.objects.filter(source_id=order["charge"])
    booked = charge.values_list("order_id", "matched_as", "explained", "ledger_key").get()
    charge.update(unmatched_reason="as posted", fee_minor=1, order=None, explained=False)

    import_payout(recon, payout)

    row = charge.get()
    assert (row.unmatched_reason, row.order_id, row.explained) == ("as posted", None, False)
    assert row.fee_minor == 117  # Stripe's fact, read again
    Payout.objects.filter(stripe_payout_id=payout).update(ledger_state=LedgerState.WAITING)
    import_payout(recon, payout)  # not posted: matched again
    assert charge.values_list("order_id", "matched_as", "explained", "ledger_key").get() == (booked)


def test_a_payout_that_fails_before_its_journal_is_posted_is_posted_and_booked_back(recon, client):
    """payout.failed before the payout's journal was posted: the flow reads it again and
    posts its journal as a paid one's (the sale off clearing, the fee expensed, the net
    to the bank), and the payout that pays the money out again books the bank side back
    through its payout_reversal. The ERP ends with the sale, the fee and the one deposit
    that reached the bank, and nothing on clearing."""
    order = paid(recon, user_id=11, total="30.00")  # its sale is not posted yet
    payout = payout_run(recon)
    failed = stripe(recon, "POST", f"/_test/payouts/{payout}/fail", failure_code="no_account")
    post_stripe(client, recon.stripe, stripe_event("payout.failed", obj=failed))
    inbox_drain()
    job = Job.objects.get(flow__key="payout-failed")
    job_run(job_id=job.pk)  # waits for the sale's entry: retries
    job.refresh_from_db()
    row = Payout.objects.get(stripe_payout_id=payout)
    assert (job.status, row.tie_out, row.ledger_state) == (
        JobStatus.RETRYING,
        TieOut.NOT_PAID_OUT,
        LedgerState.WAITING,
    )
    # The payout paying the money out again waits while the failed one's deposit is
    # not booked: its payout_reversal would credit the bank for a debit never made.
    [again] = stripe(recon, "POST", "/_test/run_payouts")["created"]
    assert import_payout(recon, again)["tie_out"] == TieOut.TIED_OUT
    with pytest.raises(exc.ConflictRetry, match=f"the money back of payout {payout}"):
        run(recon, "reconciliation.post_payout", payout=again)
    assert erp_entries(recon, f"payout:{again}") == []
    sale_post(recon, order, 3000)
    Job.objects.filter(pk=job.pk).update(next_attempt_at=None)
    job_run(job_id=job.pk)

    job.refresh_from_db()
    row.refresh_from_db()
    assert (job.status, row.ledger_state) == (JobStatus.SUCCEEDED, LedgerState.POSTED)
    assert "once its transactions add up to it" in row.note
    run(recon, "reconciliation.post_payout", payout=again)

    balances = trial_balance(recon)
    # 30.00 less 2.9% + 30: fee 1.17, net 28.83 deposited once.
    assert (balances[("1150", "USD")], balances[("1010", "USD")]) == (0, Decimal("28.83"))
    assert balances[("6100", "USD")] == Decimal("1.17")
    assert balances[("4000", "USD")] == Decimal("-30.00")
    assert [len(erp_entries(recon, f"payout:{p}")) for p in (payout, again)] == [1, 1]


def test_the_money_back_of_a_payout_whose_journal_was_refused_is_refused_too(recon):
    order = sold(recon, user_id=11, total="30.00")
    payout = payout_run(recon)
    stripe(recon, "POST", f"/_test/payouts/{payout}/fail", failure_code="no_account")
    import_payout(recon, payout)
    Payout.objects.filter(stripe_payout_id=payout).update(ledger_state=LedgerState.REFUSED)
    [again] = stripe(recon, "POST", "/_test/run_payouts")["created"]
    import_payout(recon, again)

    out = run(recon, "reconciliation.post_payout", payout=again)

    row = Payout.objects.get(stripe_payout_id=again)
    assert row.ledger_state == LedgerState.REFUSED and out == {"refused": row.ledger_note}
    assert row.ledger_note.startswith(
        "Refused: it holds the money back of payouts whose journal was refused: txn_"
    )
    assert f"({payout}). Post those first" in row.ledger_note
    assert erp_entries(recon, f"payout:{again}") == [] and order


def test_a_failed_payout_whose_transactions_do_not_add_up_is_not_posted(recon):
    paid(recon, user_id=11, total="30.00")
    payout = payout_run(recon)
    stripe(recon, "POST", f"/_test/payouts/{payout}/fail", failure_code="no_account")
    import_payout(recon, payout)
    Payout.objects.filter(stripe_payout_id=payout).update(discrepancy_minor=100)

    out = run(recon, "reconciliation.post_payout", payout=payout)

    row = Payout.objects.get(stripe_payout_id=payout)
    assert out == {"skipped": "payout not_paid_out"}
    assert row.ledger_state == LedgerState.NOT_POSTED
    assert row.ledger_note == (
        "Not posted: the payout is not paid out and its transactions do not add up to it."
    )
    assert erp_entries(recon, f"payout:{payout}") == []


def test_a_payout_waits_for_the_sale_entries_it_clears(recon):
    order = paid(recon, user_id=11, total="30.00")  # its sale is not posted yet
    payout = payout_run(recon)
    import_payout(recon, payout)

    with pytest.raises(exc.ConflictRetry, match="not posted yet"):
        run(recon, "reconciliation.post_payout", payout=payout)

    row = Payout.objects.get()
    assert row.ledger_state == LedgerState.WAITING and order["charge"] in row.ledger_note
    assert erp_entries(recon, f"payout:{payout}") == []
    sale_post(recon, order, 3000)
    run(recon, "reconciliation.post_payout", payout=payout)
    row.refresh_from_db()
    assert row.ledger_state == LedgerState.POSTED
    assert trial_balance(recon)[("1150", "USD")] == 0


def test_a_sale_entry_that_differs_from_stripe_is_flagged_and_nothing_is_posted(recon):
    order = sold(recon, user_id=12, total="30.00")
    # As if the sale had been booked for 29.00: the payout would leave 1.00 on clearing.
    JournalLine.objects.filter(
        entry__external_reference=f"sale:{order['charge']}", key="clearing"
    ).update(signed_minor=2900)
    payout = payout_run(recon)
    import_payout(recon, payout)

    out = run(recon, "reconciliation.post_payout", payout=payout)

    row = Payout.objects.get()
    # The ledger refuses; the tie-out stays Stripe's (its nets do add up).
    assert (row.tie_out, row.ledger_state) == (TieOut.TIED_OUT, LedgerState.REFUSED)
    assert "would not net to zero" in out["refused"] and "-1.00 USD" in out["refused"]
    assert order["charge"] in row.ledger_note
    assert erp_entries(recon, f"payout:{payout}") == []
    assert not JournalEntry.objects.filter(kind=EntryKind.PAYOUT).exists()


def test_an_entry_that_does_not_balance_to_the_cent_is_never_kept_or_posted(recon):
    gl = ledger.gl_map(recon)
    entry = ledger.Entry(
        reference="manual:1",
        kind=EntryKind.SALE,
        day=date(2026, 12, 1),
        currency="USD",
        memo="off by a cent",
        postings=(
            gl.posting("clearing", 1000, "USD", ""),
            gl.posting("charge", -999, "USD", ""),
        ),
    )

    with pytest.raises(exc.DataError, match=r"does not balance.*0\.01"):
        ledger.entry_post(new_ctx(recon), entry)

    assert not JournalEntry.objects.exists()
    assert erp_entries(recon, "manual:1") == []


def test_the_gl_map_names_accounts_by_key_and_currency_with_fallbacks(recon, integration):
    GlAccount.objects.create(integration=None, key="clearing", currency="EUR", account="1151")
    GlAccount.objects.create(integration=recon, key="charge", currency="", account="4001")
    GlAccount.objects.create(integration=recon, key="fee:tax", currency="USD", account="6111")
    GlAccount.objects.filter(integration=None, key="other").delete()

    gl = ledger.gl_map(recon)
    assert gl.account("clearing", "eur") == "1151"  # for the currency
    assert gl.account("clearing", "USD") == "1150"  # the row for every currency
    assert gl.account("charge", "EUR") == "4001"  # the integration's own row
    assert ledger.gl_map(integration).account("charge", "EUR") == "4000"  # not another's
    assert gl.account("fee:application_fee", "USD") == "6100"  # a fee type → fee
    assert gl.account("tax", "USD") == "6111"  # tax on fees → fee:tax
    assert gl.account("dispute_reversal", "USD") == "4910"  # → dispute
    assert gl.account("topup", "USD") == "1190"  # → other: the shipped default
    row = GlAccount.objects.get(integration=None, key="charge", currency="")
    for account in ("4005", "4006"):
        row.account = account
        row.save()
    assert ledger.gl_map(integration).account("charge", "USD") == "4006"
    assert [h.account for h in row.history.all()] == ["4006", "4005"]  # who, when, what


def test_a_sale_follows_the_gl_map_of_its_currency(recon):
    GlAccount.objects.create(integration=recon, key="charge", currency="USD", account="4020")
    order = sold(recon, user_id=13, total="30.00")

    assert entry_lines(f"sale:{order['charge']}") == [
        ("clearing", "1150", Decimal("30.000"), Decimal(0)),
        ("charge", "4020", Decimal(0), Decimal("30.000")),
    ]
    [document] = erp_entries(recon, f"sale:{order['charge']}")
    assert [line["account"] for line in document["lines"]] == ["1150", "4020"]


def test_a_sale_settled_in_another_currency_clears_through_fx_in_both(recon):
    """Stripe settles a GBP charge in USD (stripe.md A7: the amount converted, the
    rate on the balance transaction): the sale is booked in GBP, the payout in USD
    through FX, and a conversion entry empties GBP's clearing."""
    requests.post(
        recon.sandbox.system_url("stripe") + "/_test/config",
        json={"settlement_currencies": ["usd"], "fx_rates": {"gbp": "1.2712"}},
        headers={"Authorization": f"Bearer {STRIPE_KEY}"},
        timeout=10,
    ).raise_for_status()
    placed = place(recon, user_id=11, total="35.00", currency="GBP")
    payment = collect(recon, placed)
    sale_post(recon, {**placed, "charge": payment["charge"]}, 3500)
    refund = stripe(recon, "POST", "/v1/refunds", charge=payment["charge"], amount=1000)
    run(recon, "payments.record_refund", refund=refund["id"])
    run(recon, "payments.reflect_refund", refund=refund["id"])
    payout = payout_run(recon)
    import_payout(recon, payout)

    out = run(recon, "reconciliation.post_payout", payout=payout)

    assert out["posted"] == [f"payout:{payout}:fx:GBP", f"payout:{payout}"]
    row = Payout.objects.get()
    # 35.00 GBP at 1.2712 is 44.49 USD (fee 1.59), the 10.00 back is 12.71 USD.
    assert (row.currency, row.amount_minor) == ("USD", 4449 - 159 - 1271)
    assert sorted(entry_lines(f"payout:{payout}:fx:GBP")) == [
        ("clearing", "1150", Decimal(0), Decimal("25.00")),  # the sale less the refund
        ("fx", "7950", Decimal("25.00"), Decimal(0)),
    ]
    assert ("fx", "7950", Decimal(0), Decimal("44.49")) in entry_lines(f"payout:{payout}")
    assert ledger.clearing_residual(row) == {"GBP": 0, "USD": 0}
    balances = trial_balance(recon)
    assert balances[("1150", "GBP")] == balances.get(("1150", "USD"), 0) == 0
    assert (balances[("7950", "GBP")], balances[("7950", "USD")]) == (
        Decimal("25.00"),
        Decimal("-31.78"),  # 44.49 - 12.71: what the 25.00 GBP became
    )


def test_a_refund_that_failed_before_it_was_credited_does_not_hold_up_the_payout(recon):
    """The bank returned the refund before any credit memo (so no reversal either):
    Stripe's refund and its failure are booked by the payout itself, against refunds,
    netting to nothing; the payout does not wait for entries that will never come."""
    order = sold(recon, user_id=11, total="30.00", card="pm_card_refundFail")
    refund = stripe(recon, "POST", "/v1/refunds", charge=order["charge"], amount=1000)
    stripe(recon, "POST", "/_test/settle")  # the bank returns it
    run(recon, "payments.record_refund", refund=refund["id"])
    payout = payout_run(recon)
    import_payout(recon, payout)

    out = run(recon, "reconciliation.post_payout", payout=payout)

    assert out["posted"] == [f"payout:{payout}"], out
    refunds = [
        line for line in entry_lines(f"payout:{payout}") if line[0] in ("refund", "refund_failure")
    ]
    assert sorted(refunds) == [
        ("refund", "4100", Decimal("10.00"), Decimal(0)),  # the refund
        ("refund_failure", "4100", Decimal(0), Decimal("10.00")),  # its money back
    ]
    assert trial_balance(recon)[("1150", "USD")] == 0
    # The export names the accounts the journal used: the refunds', not clearing.
    from reconciliation.exports import export_rows

    named = {
        row.reporting_category: row.gl_accounts
        for row in export_rows(payouts=Payout.objects.filter(stripe_payout_id=payout))
    }
    assert (named["refund"], named["refund_failure"]) == ("4100 (refund)", "4100 (refund_failure)")


def test_a_transaction_cleared_by_a_posted_payout_is_never_cleared_again(recon):
    sold(recon, user_id=11, total="30.00")
    payout = payout_run(recon)
    import_payout(recon, payout)
    run(recon, "reconciliation.post_payout", payout=payout)
    first = Payout.objects.get()
    # As if Stripe now listed the charge under another payout (moved on re-import).
    other = Payout.objects.create(
        integration=recon,
        stripe_payout_id="po_other",
        amount_minor=0,
        currency="USD",
        status="paid",
        tie_out=TieOut.TIED_OUT,
    )
    first.transactions.filter(type="charge").update(payout=other)

    out = run(recon, "reconciliation.post_payout", payout="po_other")

    other.refresh_from_db()
    assert other.ledger_state == LedgerState.REFUSED
    assert "cleared by another payout's posted journal" in out["refused"]
    assert erp_entries(recon, "payout:po_other") == []
