"""Property: every payout Stripe could make of an integration's orders (charges in the
settlement currency or converted from another, partial refunds, disputes lost or won,
Stripe's fees by type, the account's own fees and adjustments) ties out to the cent,
its journal balances, and the Stripe clearing account nets to zero for it in every
currency (reference stripe.md A7: nets sum to the payout; the clearing-account method).

The payout and its order entries are built as the import and order-to-cash store them;
the journal is built by the code under test from those rows."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations.connectors.stripe.mapping import StripePayout
from payments.models import Order, Payment
from reconciliation import ledger
from reconciliation.choices import EntryKind, MatchedAs, TieOut
from reconciliation.models import BalanceTransaction, Payout
from reconciliation.services import payout_tie_out

pytestmark = pytest.mark.django_db

_ids = itertools.count(1)

charges = st.lists(
    st.fixed_dictionaries(
        {
            "amount": st.integers(min_value=50, max_value=500_000),
            "converted": st.booleans(),
            "rate": st.decimals(min_value="0.5", max_value="2.0", places=6),
            "refund_share": st.sampled_from([0, 0, 25, 50, 100]),
            "dispute": st.sampled_from(["", "", "", "lost", "won"]),
            "tax_on_fee": st.booleans(),
        }
    ),
    min_size=1,
    max_size=8,
)
account_movements = st.lists(
    st.tuples(st.sampled_from(["fee", "other_adjustment", "network_cost"]), st.integers(-900, 900)),
    max_size=2,
)


def _txn(payout, *, category, gross, fee=0, fee_details=(), **more) -> BalanceTransaction:
    return BalanceTransaction.objects.create(
        integration=payout.integration,
        payout=payout,
        stripe_txn_id=f"txn_p{next(_ids)}",
        type=more.pop("type", category),
        reporting_category=category,
        gross_minor=gross,
        fee_minor=fee,
        net_minor=gross - fee,
        currency=payout.currency,
        fee_details=[{"type": t, "amount": a, "currency": payout.currency} for t, a in fee_details],
        explained=True,
        **more,
    )


def _order_entry(integration, *, key: str, kind: str, currency: str, clearing: int, order):
    """An order-to-cash entry as posted: ``clearing`` on the clearing account (debit
    positive), its other side on the order's account."""
    gl = ledger.gl_map(integration)
    other = {"sale": "charge", "credit_memo": "refund", "dispute": "dispute"}[kind]
    entry = ledger.Entry(
        reference=f"{kind}:{key}",
        kind=kind,
        day=date(2026, 11, 30),
        currency=currency,
        memo="",
        postings=(
            gl.posting("clearing", clearing, currency, ""),
            gl.posting(other, -clearing, currency, ""),
        ),
        ledger_key=key,
        order=order,
    )
    row = ledger._record(integration, entry)
    row.posted_at = row.created_at
    row.save(update_fields=["posted_at"])


def _converted(minor: int, rate: Decimal) -> int:
    return int((Decimal(minor) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _build(integration, settlement: str, spec: list[dict], movements, off: int = 0) -> Payout:
    """The payout's rows as the import stores them; Stripe's amount is what their nets
    add up to, ``off`` by as many minor units (a payout that does not tie out). Its
    tie-out is the code's."""
    n = next(_ids)
    payout = Payout.objects.create(
        integration=integration,
        stripe_payout_id=f"po_p{n}",
        amount_minor=0,
        currency=settlement,
        status="paid",
    )
    for i, c in enumerate(spec):
        presentment = ("EUR" if settlement == "USD" else "USD") if c["converted"] else settlement
        order = Order.objects.create(
            integration=integration,
            znode_order_id=n * 100 + i,
            order_number=f"P{n}-{i}",
            currency=presentment,
            total=Decimal(c["amount"]) / 100,
            amount_minor=c["amount"],
        )
        charge = f"ch_p{n}_{i}"
        Payment.objects.create(
            order=order,
            payment_intent_id=f"pi_p{n}_{i}",
            charge_id=charge,
            amount_minor=c["amount"],
            amount_received_minor=c["amount"],
            currency=presentment,
        )
        rate = c["rate"] if c["converted"] else None
        gross = _converted(c["amount"], rate) if rate else c["amount"]
        stripe_fee = gross * 29 // 1000 + 30
        tax = stripe_fee // 5 if c["tax_on_fee"] else 0
        details = [("stripe_fee", stripe_fee)] + ([("tax", tax)] if tax else [])
        _order_entry(
            integration,
            key=charge,
            kind=EntryKind.SALE,
            currency=presentment,
            clearing=c["amount"],
            order=order,
        )
        _txn(
            payout,
            category="charge",
            gross=gross,
            fee=stripe_fee + tax,
            fee_details=details,
            source_id=charge,
            order=order,
            matched_as=MatchedAs.CHARGE,
            ledger_key=charge,
            exchange_rate=rate,
        )
        refunded = c["amount"] * c["refund_share"] // 100
        if refunded:
            refund = f"re_p{n}_{i}"
            _order_entry(
                integration,
                key=refund,
                kind=EntryKind.CREDIT_MEMO,
                currency=presentment,
                clearing=-refunded,
                order=order,
            )
            back = _converted(refunded, rate) if rate else refunded
            _txn(
                payout,
                category="refund",
                gross=-back,
                source_id=refund,
                order=order,
                matched_as=MatchedAs.REFUND,
                ledger_key=refund,
                exchange_rate=rate,
            )
        disputed = gross - (back if refunded else 0)
        if c["dispute"] and disputed > 0:
            # Stripe books a dispute in the settlement currency, its fee on the withdrawal;
            # a partly refunded charge is disputed for what is left of it.
            moves = [(-disputed, 1500)] + ([(disputed, 0)] if c["dispute"] == "won" else [])
            for amount, fee in moves:
                txn = _txn(
                    payout,
                    category="dispute" if amount < 0 else "dispute_reversal",
                    type="adjustment",
                    gross=amount,
                    fee=fee,
                    fee_details=[("stripe_fee", fee)] if fee else [],
                    source_id=f"dp_p{n}_{i}",
                    order=order,
                    matched_as=MatchedAs.DISPUTE,
                    exchange_rate=rate,
                )
                txn.ledger_key = txn.stripe_txn_id
                txn.save(update_fields=["ledger_key"])
                _order_entry(
                    integration,
                    key=txn.stripe_txn_id,
                    kind=EntryKind.DISPUTE,
                    currency=settlement,
                    clearing=amount - fee,
                    order=order,
                )
    for category, gross in movements:
        if gross:
            _txn(payout, category=category, gross=gross, matched_as=MatchedAs.FEE)
    total = sum(t.net_minor for t in payout.transactions.all())
    _txn(
        payout,
        category="payout",
        type="payout",
        gross=-total,
        source_id=payout.stripe_payout_id,
        matched_as=MatchedAs.PAYOUT,
    )
    Payout.objects.filter(pk=payout.pk).update(amount_minor=total + off)
    payout.refresh_from_db()
    fact = StripePayout(
        id=payout.stripe_payout_id,
        amount=total + off,
        currency=settlement.lower(),
        status="paid",
        automatic=True,
        arrival_date=0,
        created=0,
        reconciliation_status="completed",
    )
    return payout_tie_out(payout=payout, fact=fact)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    settlement=st.sampled_from(["USD", "EUR"]),
    spec=charges,
    movements=account_movements,
    off=st.sampled_from([0, 0, 0, 0, 1, -7]),
)
def test_every_payout_ties_out_balances_and_empties_clearing(
    integration, settlement, spec, movements, off
):
    payout = _build(integration, settlement, spec, movements, off)
    if off:  # Stripe paid out more or less than its transactions: flagged by that much
        assert (payout.tie_out, payout.discrepancy_minor) == (TieOut.DISCREPANCY, off)
        assert not ledger.payout_postable(payout)
        return
    assert (payout.tie_out, payout.discrepancy_minor) == (TieOut.TIED_OUT, 0)
    gl = ledger.gl_map(integration)

    journal = ledger.payout_journal(payout)
    entries = ledger.payout_entries(gl, payout, journal)

    assert (journal.waiting_count, journal.mismatch_count, journal.unexplained) == (0, 0, 0)
    for entry in entries:
        entry.check_balanced()  # to the cent, in minor units
    assert ledger._clearing_left(payout, entries) == {}  # checked before anything is sent
    for entry in entries:
        row = ledger._record(integration, entry)
        row.posted_at = row.created_at  # as the ERP accepted it
        row.save(update_fields=["posted_at"])
    [deposit] = [e for e in entries if e.kind == EntryKind.PAYOUT]
    bank = [p.signed_minor for p in deposit.lines() if p.key == "payout"]
    assert bank == ([payout.amount_minor] if payout.amount_minor else [])
    converted = {c for c, held in journal.conversions.items() if held}
    assert {e.currency for e in entries if e.kind == EntryKind.FX} == converted
    assert set(ledger.clearing_residual(payout).values()) <= {0}
    posted = {p.key for e in entries for p in e.lines()}
    # A key whose movements net to zero (a fee and its refund) posts no line.
    netted = {key for (key, _), total in journal.sums.items() if total == 0}
    for txn in payout.transactions.all():  # what the exports name is what was posted
        assert set(ledger.transaction_keys(txn)) <= posted | netted, txn.reporting_category
    fees = sum(t.fee_minor for t in payout.transactions.exclude(matched_as=MatchedAs.DISPUTE))
    assert sum(p.signed_minor for p in deposit.lines() if p.key.startswith("fee:")) == fees


def test_a_dispute_movement_netting_to_zero_does_not_hold_up_the_payout(integration):
    """A dispute's movement whose fee equals its amount moves nothing through clearing:
    order-to-cash's entry for it has no clearing line (a zero line is not kept), so
    there is none to wait for; the payout posts, clearing nets to zero."""
    payout = _build(integration, "USD", [{**_PLAIN_CHARGE, "dispute": "lost"}], [])
    order = payout.transactions.filter(matched_as=MatchedAs.CHARGE).get().order
    txn = _txn(
        payout,
        category="dispute_reversal",
        type="adjustment",
        gross=1500,
        fee=1500,
        fee_details=[("stripe_fee", 1500)],
        source_id="dp_zero",
        order=order,
        matched_as=MatchedAs.DISPUTE,
    )
    txn.ledger_key = txn.stripe_txn_id
    txn.save(update_fields=["ledger_key"])
    gl = ledger.gl_map(integration)
    entry = ledger.Entry(
        reference=f"dispute:dp_zero:{txn.stripe_txn_id}",
        kind=EntryKind.DISPUTE,
        day=date(2026, 11, 30),
        currency="USD",
        memo="",
        postings=(
            gl.posting("dispute", -1500, "USD", ""),
            gl.posting("dispute_fee", 1500, "USD", ""),
            gl.posting("clearing", 0, "USD", ""),  # net zero: not kept
        ),
        ledger_key=txn.stripe_txn_id,
        order=order,
    )
    row = ledger._record(integration, entry)
    row.posted_at = row.created_at
    row.save(update_fields=["posted_at"])
    assert not row.lines.filter(key="clearing").exists()

    journal = ledger.payout_journal(payout)
    entries = ledger.payout_entries(gl, payout, journal)

    assert (journal.waiting_count, journal.mismatch_count, journal.unexplained) == (0, 0, 0)
    for built in entries:
        built.check_balanced()
    assert ledger._clearing_left(payout, entries) == {}
    posted = {p.key for e in entries for p in e.lines()}
    assert "clearing" not in ledger.transaction_keys(txn)  # what the exports name
    for each in payout.transactions.all():
        assert set(ledger.transaction_keys(each)) <= posted, each.reporting_category


_PLAIN_CHARGE = {
    "amount": 10_000,
    "converted": False,
    "rate": Decimal(1),
    "refund_share": 0,
    "dispute": "",
    "tax_on_fee": False,
}


def test_a_dispute_movement_that_moves_money_waits_for_its_entry(integration):
    """Only a movement netting to zero has no clearing line to wait for: one that moves
    money, or a charge of no gross, waits until its order entry is posted."""
    payout = _build(integration, "USD", [_PLAIN_CHARGE], [])
    order = payout.transactions.filter(matched_as=MatchedAs.CHARGE).get().order
    for category, gross, fee, matched_as in (
        ("dispute", -1500, 1500, MatchedAs.DISPUTE),
        ("charge", 0, 0, MatchedAs.CHARGE),
    ):
        txn = _txn(
            payout,
            category=category,
            gross=gross,
            fee=fee,
            source_id=f"src_{category}",
            order=order,
            matched_as=matched_as,
        )
        txn.ledger_key = txn.stripe_txn_id
        txn.save(update_fields=["ledger_key"])

    journal = ledger.payout_journal(payout)

    assert journal.waiting_count == 2
