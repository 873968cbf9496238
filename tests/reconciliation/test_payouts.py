"""Payout import, matching and tie-out, through the sandbox's Stripe over real HTTP
(reference stripe.md A7): orders paid with saved cards, refunds and disputes, the
sandbox's automatic payouts, a manual payout, the payout events and the command."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
import requests
from django.core.management import CommandError, call_command
from django.db import connection

from integrations.choices import JobStatus
from integrations.connectors.stripe.mapping import balance_transaction_from_wire
from integrations.kernel import exceptions as exc
from integrations.models import Job
from integrations.services.inbox import inbox_drain
from integrations.services.jobs import job_run
from payments.models import Order
from reconciliation.models import BalanceTransaction, Payout
from tests.conftest import post_stripe, stripe_event
from tests.reconciliation.conftest import STRIPE_KEY
from tests.support.payments import calls, collect, place, run

pytestmark = pytest.mark.django_db

DAY = 86400


# --- helpers -------------------------------------------------------------------------------
def stripe(recon, method: str, path: str, **params) -> dict:
    response = requests.request(
        method,
        recon.sandbox.system_url("stripe") + path,
        data=params,
        headers={"Authorization": f"Bearer {STRIPE_KEY}"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()


def paid(recon, *, user_id: int, total: str = "30.00", card: str = "pm_card_visa") -> dict:
    """A saved-card order placed in the sandbox store and paid through the platform."""
    placed = place(recon, user_id=user_id, total=total, card=card)
    payment = collect(recon, placed)
    assert payment["outcome"] == "paid", payment
    return {"order_number": placed["order_number"], "charge": payment["charge"]}


def sale_post(recon, order: dict, minor: int) -> dict:
    """Order-to-cash posts the order's sale (its money onto the clearing account)."""
    return run(
        recon,
        "payments.erp_post_sale",
        order_number=order["order_number"],
        charge=order["charge"],
        amount_received=minor,
    )


def paid_outside(recon, amount: int, **metadata: str) -> dict:
    """A payment made in Stripe without the platform (the Dashboard, another app)."""
    extra = {f"metadata[{k}]": v for k, v in metadata.items()}
    return stripe(
        recon,
        "POST",
        "/v1/payment_intents",
        amount=amount,
        currency="usd",
        payment_method="pm_card_visa",
        confirm="true",
        **extra,
    )


def payout_run(recon) -> str:
    """Charges settle (two days), then Stripe pays out the available balance."""
    stripe(recon, "POST", "/_test/advance_time", seconds=3 * DAY)
    [payout] = stripe(recon, "POST", "/_test/run_payouts")["created"]
    return payout


def import_payout(recon, payout: str) -> dict:
    return run(recon, "reconciliation.import_payout", payout=payout)


def lines(payout: str) -> list[tuple]:
    """The payout's stored transactions as (kind, gross, fee, net, order, matched_as,
    explained), sorted."""
    rows = BalanceTransaction.objects.filter(payout__stripe_payout_id=payout)
    return sorted(
        (
            row.reporting_category,
            row.gross_minor,
            row.fee_minor,
            row.net_minor,
            row.order.order_number if row.order else "",
            row.matched_as,
            row.explained,
        )
        for row in rows
    )


def stripe_txn_ids(recon, payout: str) -> set[str]:
    listed = stripe(recon, "GET", "/v1/balance_transactions", payout=payout, limit=100)
    return {t["id"] for t in listed["data"]}


def snapshot() -> list[tuple]:
    return list(
        BalanceTransaction.objects.order_by("stripe_txn_id").values_list(
            "stripe_txn_id",
            "payout_id",
            "net_minor",
            "fee_details",
            "order_id",
            "matched_as",
            "explained",
            "unmatched_reason",
        )
    )


# --- facts -------------------------------------------------------------------------------
def test_a_balance_transaction_fact_keeps_exact_money_and_what_matching_needs():
    txn = balance_transaction_from_wire(
        {
            "id": "txn_1",
            "type": "charge",
            "reporting_category": "charge",
            "amount": 10823,
            "fee": 344,
            "net": 10479,
            "currency": "usd",
            "exchange_rate": 1.0823,
            "fee_details": [
                {"type": "stripe_fee", "amount": 314, "currency": "usd"},
                {"type": "tax", "amount": 30, "currency": "usd"},
            ],
            "source": {
                "id": "ch_1",
                "object": "charge",
                "payment_intent": {"id": "pi_1", "metadata": {"znode_order_number": "A-7"}},
                "metadata": {"znode_order_number": "stale"},
            },
            "available_on": 1700172800,
            "created": 1700000000,
        }
    )

    assert (txn.amount, txn.fee, txn.net, txn.exchange_rate) == (
        10823,
        344,
        10479,
        Decimal("1.0823"),
    )
    assert txn.fee_details == (("stripe_fee", 314, "usd"), ("tax", 30, "usd"))
    assert (txn.source_id, txn.source_type, txn.charge_id, txn.payment_intent_id) == (
        "ch_1",
        "charge",
        "ch_1",
        "pi_1",
    )
    assert txn.reference.order_number == "A-7"  # the PaymentIntent's metadata first
    assert txn.reference_read  # everything that may name the order was expanded
    refunded = balance_transaction_from_wire(
        {
            "id": "txn_3",
            "source": {
                "id": "re_1",
                "object": "refund",
                "payment_intent": None,
                "charge": {"id": "ch_9", "metadata": {"znode_order_number": "A-9"}},
            },
        }
    )
    assert (refunded.charge_id, refunded.reference.order_number, refunded.reference_read) == (
        "ch_9",
        "A-9",  # a refund of a charge without PaymentIntent: the charge's metadata
        True,
    )
    shallow = balance_transaction_from_wire(
        {"id": "txn_4", "source": {"id": "re_2", "object": "refund", "payment_intent": "pi_2"}}
    )
    assert (shallow.payment_intent_id, shallow.reference_read) == ("pi_2", False)
    refund = balance_transaction_from_wire({"id": "txn_2", "source": "re_9", "amount": -5})
    assert (refund.source_type, refund.net, refund.exchange_rate, refund.fee_details) == (
        "refund",
        -5,
        None,
        (),
    )


# --- import, matching, tie-out -------------------------------------------------------------
def test_a_payout_of_orders_a_partial_refund_and_a_dispute_is_matched_and_ties_out(recon):
    a = paid(recon, user_id=11, total="30.00")
    b = paid(recon, user_id=12, total="45.50")
    d = paid(recon, user_id=13, total="20.00", card="pm_card_createDispute")
    refund = stripe(recon, "POST", "/v1/refunds", charge=a["charge"], amount=1200)
    run(recon, "payments.record_refund", refund=refund["id"])
    [dispute] = stripe(recon, "GET", "/v1/disputes", charge=d["charge"])["data"]
    run(recon, "payments.record_dispute", dispute=dispute["id"])
    payout = payout_run(recon)

    out = import_payout(recon, payout)

    # 2.9% + 30: 3000 → 117, 4550 → 162 (161.95), 2000 → 88; the dispute fee is 15.00.
    amount = 2883 + 4388 + 1912 - 1200 - 3500
    assert out == {
        "payout": payout,
        "tie_out": "tied_out",
        "discrepancy_minor": 0,
        "currency": "USD",
        "transactions": 6,
        "unexplained": 0,
        "new": 6,
        "known": 0,
        "skipped": 0,
        "moved": 0,
    }
    row = Payout.objects.get()
    assert (row.stripe_payout_id, row.amount_minor, row.currency, row.automatic) == (
        payout,
        4483,
        "USD",
        True,
    )
    assert (row.tie_out, row.discrepancy_minor, row.transactions_net_minor) == (
        "tied_out",
        0,
        amount,
    )
    assert row.integration == recon and row.status == "in_transit" and row.imported_at
    an, bn, dn = a["order_number"], b["order_number"], d["order_number"]
    assert lines(payout) == sorted(
        [
            ("charge", 3000, 117, 2883, an, "charge", True),
            ("charge", 4550, 162, 4388, bn, "charge", True),
            ("charge", 2000, 88, 1912, dn, "charge", True),
            ("refund", -1200, 0, -1200, an, "refund", True),
            ("dispute", -2000, 1500, -3500, dn, "dispute", True),
            ("payout", -4483, 0, -4483, "", "payout", True),
        ]
    )
    stored = BalanceTransaction.objects.filter(payout=row)
    assert set(stored.values_list("stripe_txn_id", flat=True)) == stripe_txn_ids(recon, payout)
    assert stored.get(source_id=refund["id"]).order.order_number == an
    withdrawal = stored.get(source_id=dispute["id"])
    assert (withdrawal.type, withdrawal.source_type, withdrawal.fee_details) == (
        "adjustment",
        "dispute",
        [{"type": "stripe_fee", "amount": 1500, "currency": "USD"}],
    )
    own = stored.get(matched_as="payout")
    assert (own.source_id, own.unmatched_reason) == (
        payout,
        "the payout itself: the balance moving to the bank",
    )
    assert "Tied out" in row.note and "5 transactions net 44.83 USD" in row.note


def test_importing_a_payout_again_changes_nothing(recon):
    a = paid(recon, user_id=11)
    stripe(recon, "POST", "/v1/refunds", charge=a["charge"], amount=500)
    payout = payout_run(recon)
    first = import_payout(recon, payout)
    before, history = snapshot(), Payout.history.count()

    again = import_payout(recon, payout)

    assert (first["new"], first["known"]) == (3, 0)
    assert (again["new"], again["known"], again["tie_out"]) == (0, 3, "tied_out")
    assert snapshot() == before and len(before) == 3
    assert Payout.objects.count() == 1 and Payout.history.count() == history


def test_refunds_disputes_and_payments_made_outside_are_matched_through_stripe(recon):
    """No Refund or Dispute row was recorded: the refund's and the dispute's charge find
    the order; a payment made outside the platform is found by its metadata (on the
    PaymentIntent when the charge's was removed), another integration's is explained."""
    a = paid(recon, user_id=11)
    d = paid(recon, user_id=12, total="20.00", card="pm_card_createDispute")
    stripe(recon, "POST", "/v1/refunds", charge=a["charge"], amount=700)
    outside = paid_outside(recon, 1000, znode_order_number=a["order_number"], integration="recon")
    stripe(recon, "POST", f"/v1/charges/{outside['latest_charge']}", **{"metadata": ""})
    paid_outside(recon, 5000, znode_order_number="OTHER-1", integration="another-store")
    payout = payout_run(recon)
    before = calls("payment_intent.retrieve"), calls("charge.retrieve")

    out = import_payout(recon, payout)

    an, dn = a["order_number"], d["order_number"]
    assert out["tie_out"] == "tied_out" and out["unexplained"] == 0
    # Only the line whose charge lost its metadata reads its PaymentIntent (none, once
    # the list expands data.source.payment_intent: BALANCE_TRANSACTION_EXPAND).
    after = calls("payment_intent.retrieve"), calls("charge.retrieve")
    assert after == (before[0] + 1, before[1])
    net = 2883 + 1912 - 700 - 3500 + 941 + 4825
    assert lines(payout) == sorted(
        [
            ("charge", 3000, 117, 2883, an, "charge", True),
            ("charge", 2000, 88, 1912, dn, "charge", True),
            ("refund", -700, 0, -700, an, "refund", True),
            ("dispute", -2000, 1500, -3500, dn, "dispute", True),
            ("charge", 1000, 59, 941, an, "charge", True),
            ("charge", 5000, 175, 4825, "", "charge", True),
            ("payout", -net, 0, -net, "", "payout", True),
        ]
    )
    other = BalanceTransaction.objects.get(gross_minor=5000)
    assert other.unmatched_reason == (
        "another integration's money: its metadata names integration another-store, order OTHER-1"
    )


def test_an_unexplained_line_makes_a_discrepancy_of_its_amount(recon):
    a = paid(recon, user_id=11)
    stranger = paid_outside(recon, 2500)  # no metadata, no payment of ours
    payout = payout_run(recon)

    out = import_payout(recon, payout)

    assert (out["tie_out"], out["discrepancy_minor"], out["unexplained"]) == (
        "discrepancy",
        2397,
        1,
    )
    row = Payout.objects.get()
    assert (row.amount_minor, row.transactions_net_minor) == (2883 + 2397, 2883 + 2397)
    line = BalanceTransaction.objects.get(explained=False)
    assert (line.source_id, line.net_minor, line.order, line.matched_as) == (
        stranger["latest_charge"],
        2397,
        None,
        "charge",
    )
    assert line.unmatched_reason == (
        f"unexplained: no payment, refund or dispute here and no order in the metadata of "
        f"charge {stranger['latest_charge']}, PaymentIntent {stranger['id']}"
    )
    assert "Discrepancy: 23.97 USD is not accounted for." in row.note
    assert f"1 unexplained, net 23.97 USD: {line.stripe_txn_id} net 23.97 USD" in row.note
    matched = BalanceTransaction.objects.get(source_id=a["charge"])
    assert matched.order.order_number == a["order_number"] and matched.explained


def test_a_payout_stripe_is_still_reconciling_stays_pending_and_one_that_failed_is_not_paid_out(
    recon,
):
    paid(recon, user_id=11)
    payout = payout_run(recon)
    system = recon.sandbox.sandbox.systems["stripe"]
    with system.lock:
        system.table("payout")[payout]["reconciliation_status"] = "in_progress"

    assert import_payout(recon, payout)["tie_out"] == "pending"
    row = Payout.objects.get()
    assert row.discrepancy_minor == 0 and "Stripe is still adding transactions" in row.note

    with system.lock:  # payout.paid may come before payout.reconciliation_completed
        system.table("payout")[payout]["status"] = "paid"
    assert import_payout(recon, payout)["tie_out"] == "pending"
    with system.lock:
        system.table("payout")[payout]["status"] = "in_transit"

    stripe(recon, "POST", f"/_test/payouts/{payout}/fail", failure_code="account_closed")
    assert import_payout(recon, payout)["tie_out"] == "not_paid_out"
    row.refresh_from_db()
    assert row.status == "failed" and (
        "Not paid out: Stripe says the payout failed (account_closed: The bank account has "
        "been closed.); nothing reached the bank." in row.note
    )
    assert [(h.status, h.tie_out) for h in row.history.order_by("history_id")] == [
        ("in_transit", "pending"),  # made
        ("in_transit", "pending"),  # its note
        ("paid", "pending"),  # paid, but Stripe still reconciling
        ("paid", "pending"),  # its note
        ("failed", "pending"),
        ("failed", "not_paid_out"),
    ]


def test_a_payout_that_fails_after_it_was_paid_is_not_paid_out_and_its_money_back_explained(
    recon, client
):
    """payout.failed after payout.paid: the event (a hint) files a job that reads the
    payout again; the failure's balance transaction that returns the money (reporting
    category payout_reversal) is explained in the payout that takes it to the bank. Its
    journal is posted (tests/reconciliation/test_ledger.py has the books)."""
    a = paid(recon, user_id=11)
    sale_post(recon, a, 3000)
    payout = payout_run(recon)
    stripe(recon, "POST", "/_test/run_payouts")  # in transit → paid
    assert import_payout(recon, payout)["tie_out"] == "tied_out"
    failed = stripe(recon, "POST", f"/_test/payouts/{payout}/fail", failure_code="no_account")
    back = failed["failure_balance_transaction"]

    post_stripe(client, recon.stripe, stripe_event("payout.failed", obj={**failed, "amount": 1}))
    inbox_drain()
    job = Job.objects.get(flow__key="payout-failed")
    job_run(job_id=job.pk)

    job.refresh_from_db()
    row = Payout.objects.get()
    assert job.status == JobStatus.SUCCEEDED
    assert (row.status, row.tie_out, row.amount_minor) == ("failed", "not_paid_out", 2883)
    assert row.note.splitlines()[-1] == (
        "Not paid out: Stripe says the payout failed (no_account: The bank account could not "
        f"be located.); nothing reached the bank. Its money came back to the balance by {back} "
        "(payout_reversal): it is explained in the payout that takes it to the bank again. "
        "Its journal is posted as a paid payout's (its orders' money off clearing, Stripe's "
        "fees expensed) once its transactions add up to it; the money's return is booked "
        "back from the bank by the payout that holds its payout_reversal."
    )
    assert row.ledger_state == "posted"
    [again] = stripe(recon, "POST", "/_test/run_payouts")["created"]

    assert import_payout(recon, again)["tie_out"] == "tied_out"
    assert lines(again) == [
        ("payout", -2883, 0, -2883, "", "payout", True),
        ("payout_reversal", 2883, 0, 2883, "", "payout", True),
    ]
    assert BalanceTransaction.objects.get(stripe_txn_id=back).unmatched_reason == (
        f"payout {payout} failed or was canceled: its money came back to the balance "
        "(reporting category payout_reversal), to be paid out again"
    )
    import_payout(recon, payout)  # read again: it names the payout that took the money
    row.refresh_from_db()
    assert (
        row.tie_out == "not_paid_out"
        and (
            f"by {back} (payout_reversal), explained in payout {again}, which took it to the bank "
            "again. Its journal is posted"
        )
        in row.note
    )
    assert BalanceTransaction.objects.get(source_id=a["charge"]).payout == row  # not moved


def test_a_canceled_manual_payout_is_not_paid_out(recon):
    """Stripe cancels a payout still pending: its money comes back by a payout_cancel
    (reporting category payout_reversal), which is no line of the payout itself."""
    manual_schedule(recon)
    paid(recon, user_id=11)
    stripe(recon, "POST", "/_test/advance_time", seconds=3 * DAY)
    manual = stripe(recon, "POST", "/v1/payouts", amount=2883, currency="usd")
    stripe(recon, "POST", "/_test/advance_time", seconds=60)
    canceled = stripe(recon, "POST", f"/v1/payouts/{manual['id']}/cancel")
    cancel = {"id": canceled["failure_balance_transaction"]}

    out = import_payout(recon, manual["id"])

    row = Payout.objects.get()
    assert (out["tie_out"], row.status, out["transactions"]) == ("not_paid_out", "canceled", 2)
    said = "Not paid out: Stripe says the payout was canceled; nothing reached the bank."
    assert said in row.note
    assert not BalanceTransaction.objects.filter(stripe_txn_id=cancel["id"]).exists()


def test_a_transaction_stripe_now_lists_under_another_payout_is_moved_and_both_notes_say_so(
    recon,
):
    a = paid(recon, user_id=11)
    b = paid(recon, user_id=12, total="45.50")
    first = payout_run(recon)
    assert import_payout(recon, first)["tie_out"] == "tied_out"
    moving = BalanceTransaction.objects.get(source_id=b["charge"]).stripe_txn_id
    system = recon.sandbox.sandbox.systems["stripe"]
    with system.lock:  # Stripe now lists b's charge under a second payout
        table = system.table("balance_transaction")
        held = system.ledger()["payouts"][first]
        held.remove(moving)
        for position, txn_id in enumerate(held):
            table[txn_id]["_payout_pos"] = position
        second = system._new_payout(4388, "usd", holds=[table[moving]])["id"]
        system.table("payout")[second]["reconciliation_status"] = "completed"

    out = import_payout(recon, second)

    assert (out["tie_out"], out["new"], out["known"], out["moved"]) == ("tied_out", 1, 1, 1)
    left, arrived = (
        Payout.objects.get(stripe_payout_id=first),
        Payout.objects.get(stripe_payout_id=second),
    )
    assert BalanceTransaction.objects.get(stripe_txn_id=moving).payout == arrived
    assert (left.tie_out, left.discrepancy_minor, left.transaction_count) == (
        "discrepancy",
        4388,
        2,
    )
    assert left.note.startswith("Automatic payout: itemised by Stripe.\n")
    assert (
        f"Moved: 1 transaction ({moving}) of this payout are listed by Stripe under payout "
        f"{second} now and were moved there (" in left.note
    )
    assert (
        f"Moved: 1 transaction ({moving}) came from payout {first}, where they were stored "
        "before: Stripe now lists them under this payout (" in arrived.note
    )
    notes = left.note, arrived.note

    again = import_payout(recon, second), import_payout(recon, first)

    assert [o["moved"] for o in again] == [0, 0]
    left.refresh_from_db()
    arrived.refresh_from_db()
    assert (left.note, arrived.note) == notes  # the moves stay said
    assert BalanceTransaction.objects.get(source_id=a["charge"]).payout == left


def test_metadata_naming_an_order_but_no_integration_is_not_taken_as_ours(recon):
    """Only metadata naming this integration is ours: order numbers are a store's, and
    another store on the same Stripe account may use the same ones."""
    a = paid(recon, user_id=11)
    an = a["order_number"]
    paid_outside(recon, 1000, znode_order_number=an)
    paid_outside(recon, 1500, znode_order_number="NOT-HERE")
    payout = payout_run(recon)

    out = import_payout(recon, payout)

    assert (out["tie_out"], out["unexplained"], out["discrepancy_minor"]) == (
        "discrepancy",
        2,
        941 + 1426,
    )
    reasons = dict(
        BalanceTransaction.objects.filter(explained=False).values_list(
            "gross_minor", "unmatched_reason"
        )
    )
    start = (
        "unexplained: its metadata names order {} but no integration, so it may be another "
        "integration's money (only metadata naming integration recon is ours); "
    )
    assert reasons == {
        1000: start.format(an) + f"order {an} is ours, but no payment, refund or dispute of "
        "ours is this money: if it is that order's, record its payment",
        1500: start.format("NOT-HERE") + "no order NOT-HERE is known here",
    }
    assert BalanceTransaction.objects.get(source_id=a["charge"]).order.order_number == an


def test_a_payout_stripe_does_not_know_is_refused_and_nothing_is_stored(recon):
    with pytest.raises(exc.NotFound):
        import_payout(recon, "po_unknown")
    assert not Payout.objects.exists() and not BalanceTransaction.objects.exists()


def manual_schedule(recon, schedule: str = "manual") -> None:
    """The sandbox account pays out manually: no automatic payouts, only POST /v1/payouts
    (``schedule="automatic"``: back to automatic payouts)."""
    requests.post(
        recon.sandbox.system_url("stripe") + "/_test/config",
        json={"payout_schedule": schedule},
        headers={"Authorization": f"Bearer {STRIPE_KEY}"},
        timeout=10,
    ).raise_for_status()


def manual_payout(recon, amount: int) -> dict:
    """A manual payout made through Stripe's API, moved on to paid by two payout runs."""
    payout = stripe(recon, "POST", "/v1/payouts", amount=amount, currency="usd")
    for _ in range(2):
        stripe(recon, "POST", "/_test/run_payouts")
    assert stripe(recon, "GET", f"/v1/payouts/{payout['id']}")["status"] == "paid"
    return payout


def test_a_manual_payout_is_reconciled_from_the_balance_history_since_the_previous(recon):
    """On an account that pays out manually Stripe itemises no payout (A7: ``payout=``
    is refused): a payout's lines are the transactions that became available after the
    previous payout, and its own row."""
    manual_schedule(recon)
    paid(recon, user_id=11)
    stripe(recon, "POST", "/_test/advance_time", seconds=3 * DAY)
    first = manual_payout(recon, 2883)
    stripe(recon, "POST", "/_test/advance_time", seconds=DAY)
    b = paid(recon, user_id=12, total="45.50")
    c = paid(recon, user_id=13, total="12.34")
    stripe(recon, "POST", "/_test/advance_time", seconds=3 * DAY)
    manual = manual_payout(recon, 4388 + 1168)
    with pytest.raises(requests.HTTPError):  # what Stripe says to payout=
        stripe(recon, "GET", "/v1/balance_transactions", payout=manual["id"])

    out = import_payout(recon, manual["id"])

    assert (out["tie_out"], out["discrepancy_minor"], out["transactions"]) == ("tied_out", 0, 3)
    assert lines(manual["id"]) == sorted(
        [
            ("charge", 4550, 162, 4388, b["order_number"], "charge", True),
            ("charge", 1234, 66, 1168, c["order_number"], "charge", True),
            ("payout", -5556, 0, -5556, "", "payout", True),
        ]
    )
    row = Payout.objects.get(stripe_payout_id=manual["id"])
    assert not row.automatic
    assert row.note.startswith(
        "Manual payout: Stripe cannot itemise it (reference stripe.md A7). Reconciled from "
        "the balance history: the USD transactions that became available after the "
        f"previous payout {first['id']} ("
    )
    assert not Payout.objects.filter(stripe_payout_id=first["id"]).exists()  # only read


def test_a_manual_payout_pays_out_what_became_available_not_what_was_created(recon):
    """Stripe pays a manual payout out of the available balance: a charge made before
    the previous payout but available only after it is in it; one made before it but
    not yet available is not."""
    manual_schedule(recon)
    paid(recon, user_id=11)
    stripe(recon, "POST", "/_test/advance_time", seconds=3 * DAY)
    early = paid(recon, user_id=12, total="45.50")  # available two days later
    stripe(recon, "POST", "/_test/advance_time", seconds=DAY)
    previous = manual_payout(recon, 2883)  # early is pending
    stripe(recon, "POST", "/_test/advance_time", seconds=2 * DAY)
    c = paid(recon, user_id=13, total="12.34")
    stripe(recon, "POST", "/_test/advance_time", seconds=3 * DAY)
    late = paid(recon, user_id=14, total="20.00")  # not available when the payout is made
    manual = manual_payout(recon, 4388 + 1168)

    out = import_payout(recon, manual["id"])

    assert (out["tie_out"], out["discrepancy_minor"], out["transactions"]) == ("tied_out", 0, 3)
    assert lines(manual["id"]) == sorted(
        [
            ("charge", 4550, 162, 4388, early["order_number"], "charge", True),
            ("charge", 1234, 66, 1168, c["order_number"], "charge", True),
            ("payout", -5556, 0, -5556, "", "payout", True),
        ]
    )
    assert not BalanceTransaction.objects.filter(source_id=late["charge"]).exists()
    assert f"after the previous payout {previous['id']} (" in Payout.objects.get().note


def test_a_manual_payout_on_an_automatic_schedule_is_tied_out_by_the_next_automatic_one(
    recon,
):
    """With automatic payouts on, a manual payout is drawn from the balance the next
    automatic payout reconciles: that payout lists its own row and the transactions it
    drew on. The manual one holds nothing and posts nothing; the automatic one ties out
    and its journal books both to the bank, leaving clearing at zero."""
    from tests.reconciliation.test_ledger import trial_balance

    a = paid(recon, user_id=11)
    sale_post(recon, a, 3000)
    stripe(recon, "POST", "/_test/advance_time", seconds=3 * DAY)
    manual = stripe(recon, "POST", "/v1/payouts", amount=2000, currency="usd")
    b = paid(recon, user_id=12, total="45.50")
    sale_post(recon, b, 4550)
    stripe(recon, "POST", "/_test/advance_time", seconds=3 * DAY)
    [automatic] = stripe(recon, "POST", "/_test/run_payouts")["created"]
    stripe(recon, "POST", "/_test/run_payouts")  # both paid

    out = import_payout(recon, manual["id"])
    posted = run(recon, "reconciliation.post_payout", payout=manual["id"])

    row = Payout.objects.get(stripe_payout_id=manual["id"])
    assert (out["tie_out"], out["transactions"], out["discrepancy_minor"]) == (
        "in_automatic",
        0,
        0,
    )
    assert row.note.startswith(
        "Manual payout on an automatic payout schedule (the account's schedule is daily): "
        "Stripe pays it out of the balance its next automatic payout reconciles. That payout "
        f"lists this one's own row ({manual['balance_transaction']})"
    )
    assert posted == {"skipped": "payout in_automatic"}
    assert row.ledger_note == (
        "Not posted: the payout is in an automatic payout: the journals of the automatic "
        "payouts that list its own row (and its money's return) book its money."
    )
    assert row.bundled

    assert import_payout(recon, automatic)["tie_out"] == "tied_out"
    assert lines(automatic) == sorted(
        [
            ("charge", 3000, 117, 2883, a["order_number"], "charge", True),
            ("charge", 4550, 162, 4388, b["order_number"], "charge", True),
            ("payout", -2000, 0, -2000, "", "payout", True),  # the manual payout's row
            ("payout", -5271, 0, -5271, "", "payout", True),
        ]
    )
    run(recon, "reconciliation.post_payout", payout=automatic)
    balances = trial_balance(recon)
    assert (balances[("1150", "USD")], balances[("1010", "USD")]) == (0, Decimal("72.71"))
    assert balances[("6100", "USD")] == Decimal("2.79")


def test_a_canceled_manual_payout_on_an_automatic_schedule_is_booked_by_the_next_one(recon):
    from tests.reconciliation.test_ledger import trial_balance

    a = paid(recon, user_id=11)
    sale_post(recon, a, 3000)
    stripe(recon, "POST", "/_test/advance_time", seconds=3 * DAY)
    manual = stripe(recon, "POST", "/v1/payouts", amount=2000, currency="usd")
    stripe(recon, "POST", f"/v1/payouts/{manual['id']}/cancel")

    out = import_payout(recon, manual["id"])
    posted = run(recon, "reconciliation.post_payout", payout=manual["id"])

    row = Payout.objects.get(stripe_payout_id=manual["id"])
    assert (out["tie_out"], out["transactions"]) == ("not_paid_out", 0)
    assert row.note.endswith(
        "Its own row and the money's return are booked by the automatic payouts that list "
        "them: nothing is posted for it here."
    )
    assert (posted, row.ledger_note) == (
        {"skipped": "payout not_paid_out"},
        "Not posted: the payout is not paid out: the journals of the automatic payouts that "
        "list its own row (and its money's return) book its money.",
    )
    [automatic] = stripe(recon, "POST", "/_test/run_payouts")["created"]
    assert import_payout(recon, automatic)["tie_out"] == "tied_out"
    run(recon, "reconciliation.post_payout", payout=automatic)
    balances = trial_balance(recon)
    assert (balances[("1150", "USD")], balances[("1010", "USD")]) == (0, Decimal("28.83"))


def test_a_manual_payout_found_bundled_later_keeps_its_old_rows_out_of_the_ledger(recon):
    """A manual payout reconciled from the balance history, then (the schedule turned
    automatic) found bundled into an automatic payout: its rows stored before are that
    payout's to take, and it posts nothing."""
    manual_schedule(recon)
    paid(recon, user_id=11)
    stripe(recon, "POST", "/_test/advance_time", seconds=3 * DAY)
    manual = manual_payout(recon, 2883)
    assert import_payout(recon, manual["id"])["transactions"] == 2
    manual_schedule(recon, "automatic")

    out = import_payout(recon, manual["id"])
    posted = run(recon, "reconciliation.post_payout", payout=manual["id"])

    row = Payout.objects.get(stripe_payout_id=manual["id"])
    assert (out["tie_out"], out["discrepancy_minor"], row.bundled) == ("in_automatic", 0, True)
    assert (
        "2 transactions stored under it before are the automatic payout's: they move there "
        "when it is imported."
    ) in row.note
    assert posted == {"skipped": "payout in_automatic"}
    manual_schedule(recon)  # once bundled, always: the schedule today is no old payout's
    assert import_payout(recon, manual["id"])["tie_out"] == "in_automatic"


def test_the_backfill_imports_oldest_first_so_a_canceled_payouts_money_back_is_booked(recon):
    """On a manual schedule a payout's lines follow the payouts before it: the backfill
    imports oldest first, so the canceled payout is booked before the one that pays its
    money out again, and the ERP ends with the one deposit and clearing at zero."""
    from tests.reconciliation.test_ledger import trial_balance

    manual_schedule(recon)
    a = paid(recon, user_id=11)
    sale_post(recon, a, 3000)
    stripe(recon, "POST", "/_test/advance_time", seconds=3 * DAY)
    canceled = stripe(recon, "POST", "/v1/payouts", amount=2883, currency="usd")
    stripe(recon, "POST", f"/v1/payouts/{canceled['id']}/cancel")
    b = paid(recon, user_id=12, total="45.50")
    sale_post(recon, b, 4550)
    stripe(recon, "POST", "/_test/advance_time", seconds=3 * DAY)
    again = manual_payout(recon, 2883 + 4388)

    call_command("import_payouts", integration="recon", stdout=StringIO(), stderr=StringIO())

    rows = {p.stripe_payout_id: p for p in Payout.objects.all()}
    assert (rows[canceled["id"]].tie_out, rows[canceled["id"]].ledger_state) == (
        "not_paid_out",
        "posted",
    )
    assert (rows[again["id"]].tie_out, rows[again["id"]].ledger_state) == ("tied_out", "posted")
    balances = trial_balance(recon)
    assert (balances[("1150", "USD")], balances[("1010", "USD")]) == (0, Decimal("72.71"))


class _Gateway:
    """The two reads the schedule is told by: the account, the earlier payouts."""

    def __init__(self, account, earlier: list[dict]) -> None:
        self.account, self.earlier = account, earlier

    def account_retrieve(self) -> dict:
        if isinstance(self.account, Exception):
            raise self.account
        return self.account

    def payouts_list(self, *, created_lt: int):
        return iter(self.earlier)


@pytest.mark.parametrize(
    ("account", "earlier", "said"),
    [
        ({"settings": {"payouts": {"schedule": {"interval": "manual"}}}}, [], None),
        (
            {"settings": {"payouts": {"schedule": {"interval": "weekly"}}}},
            [],
            "the account's schedule is weekly",
        ),
        # A key that may not read the account: the payout made before it tells (the
        # latest: an account that switched to manual made automatic ones before).
        (
            exc.Unauthorized("restricted key"),
            [{"id": "po_a", "automatic": True}, {"id": "po_m", "automatic": False}],
            "the payout before it, po_a, was automatic",
        ),
        (
            exc.Unauthorized("restricted key"),
            [{"id": "po_m", "automatic": False}, {"id": "po_a", "automatic": True}],
            None,
        ),
        ({}, [], None),
    ],
)
def test_the_payout_schedule_is_read_from_the_account_else_from_earlier_payouts(
    account, earlier, said
):
    from integrations.connectors.stripe.mapping import payout_from_wire
    from reconciliation.services import _automatic_schedule

    fact = payout_from_wire({"id": "po_new", "automatic": False, "created": 100})
    assert _automatic_schedule(_Gateway(account, earlier), fact) == said


def test_a_signed_payout_event_files_a_job_that_imports_the_payout(recon, client):
    order = paid(recon, user_id=11)
    sale_post(recon, order, 3000)  # on the clearing account: the payout's journal empties it
    payout = payout_run(recon)
    stripe(recon, "POST", "/_test/run_payouts")  # in transit → paid
    obj = {**stripe(recon, "GET", f"/v1/payouts/{payout}"), "amount": 1}  # a hint only

    response = post_stripe(client, recon.stripe, stripe_event("payout.paid", obj=obj))
    inbox_drain()
    job = Job.objects.get(flow__key="payout-paid")
    job_run(job_id=job.pk)

    assert response.status_code == 200
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    row = Payout.objects.get()
    assert (row.stripe_payout_id, row.amount_minor, row.status, row.tie_out) == (
        payout,
        2883,
        "paid",
        "tied_out",
    )
    assert BalanceTransaction.objects.count() == 2


def test_a_payout_event_without_a_payout_files_no_job(recon, client):
    event = stripe_event("payout.paid", obj={"object": "payout", "amount": 100})

    post_stripe(client, recon.stripe, event)
    inbox_drain()

    assert not Job.objects.filter(flow__key="payout-paid").exists()
    assert not Payout.objects.exists()


def _arrival_day(recon, payout: str) -> str:
    moment = datetime.fromtimestamp(stripe(recon, "GET", f"/v1/payouts/{payout}")["arrival_date"])
    return moment.astimezone(UTC).date().isoformat()


def test_the_command_imports_the_payouts_arriving_in_a_date_range(recon):
    orders = [paid(recon, user_id=11)]
    first = payout_run(recon)
    stripe(recon, "POST", "/_test/advance_time", seconds=2 * DAY)
    orders.append(paid(recon, user_id=12, total="12.34"))
    second = payout_run(recon)
    out, err = StringIO(), StringIO()

    call_command(
        "import_payouts",
        integration="recon",
        since=_arrival_day(recon, first),
        until=_arrival_day(recon, first),
        stdout=out,
        stderr=err,
    )
    assert out.getvalue() == (
        "payouts 1: pending 0, tied out 1, discrepancy 0, not paid out 0, in an automatic payout 0"
        "; "
        "transactions new 2, known 0, unexplained 0\n"
        # its sale is not in the ERP yet: the journal waits for it
        "ledger: not posted 0, waiting 1, posted 0, refused 0\n"
    )
    assert "1/1" in err.getvalue()  # the progress bar, of the payouts listed
    assert list(Payout.objects.values_list("stripe_payout_id", flat=True)) == [first]
    for order, minor in zip(orders, (3000, 1234), strict=True):
        sale_post(recon, order, minor)

    out = StringIO()
    call_command("import_payouts", integration="recon", stdout=out, stderr=StringIO())
    assert out.getvalue() == (
        "payouts 2: pending 0, tied out 2, discrepancy 0, not paid out 0, in an automatic payout 0"
        "; "
        "transactions new 2, known 2, unexplained 0\n"
        "ledger: not posted 0, waiting 0, posted 2, refused 0\n"
    )
    assert set(Payout.objects.values_list("stripe_payout_id", flat=True)) == {first, second}


def test_the_command_refuses_an_unknown_integration_or_range_and_imports_nothing(recon):
    with pytest.raises(CommandError, match="no integration named 'nope'"):
        call_command("import_payouts", integration="nope")
    with pytest.raises(CommandError, match="--until is before --since"):
        call_command("import_payouts", integration="recon", since="2030-01-02", until="2030-01-01")
    with pytest.raises(CommandError, match="is no date"):
        call_command("import_payouts", integration="recon", since="yesterday")
    assert not Payout.objects.exists()


# --- admin ---------------------------------------------------------------------------------
def test_the_admin_lists_payouts_with_money_and_shows_a_payouts_transactions(recon, admin_client):
    a = paid(recon, user_id=11)
    paid_outside(recon, 2500)
    payout = payout_run(recon)
    import_payout(recon, payout)
    row = Payout.objects.get()

    listing = admin_client.get("/admin/reconciliation/payout/?tie_out__exact=discrepancy")
    page = admin_client.get(f"/admin/reconciliation/payout/{row.pk}/change/")

    assert listing.status_code == 200 and page.status_code == 200
    listed = listing.content.decode()
    assert payout in listed and "52.80 USD" in listed and "23.97 USD" in listed
    shown = page.content.decode()
    assert a["order_number"] in shown and "unexplained: no payment" in shown
    assert "28.83 USD" in shown and 'name="_save"' not in shown  # read-only
    link = f"/admin/reconciliation/balancetransaction/?payout__id__exact={row.pk}"
    assert link in shown  # every transaction, however many: the page shows the first
    assert admin_client.get(link).context["cl"].result_count == row.transaction_count

    assert (
        admin_client.get("/admin/reconciliation/payout/?tie_out__exact=tied_out")
        .context["cl"]
        .result_count
        == 0
    )
    assert json.loads(json.dumps(row.transactions.get(source_id=a["charge"]).fee_details)) == [
        {"type": "stripe_fee", "amount": 117, "currency": "USD"}
    ]
    assert Order.objects.count() == 1


def test_a_payouts_page_shows_its_first_transactions_the_unexplained_first(
    recon, admin_client, monkeypatch
):
    import reconciliation.admin

    paid(recon, user_id=11)
    paid(recon, user_id=12)
    paid_outside(recon, 2500)
    payout = payout_run(recon)
    import_payout(recon, payout)
    row = Payout.objects.get()
    monkeypatch.setattr(reconciliation.admin, "INLINE_ROWS", 1)

    page = admin_client.get(f"/admin/reconciliation/payout/{row.pk}/change/")

    inline = page.context["inline_admin_formsets"][0]
    [shown] = [form.original for form in inline]
    assert shown.explained is False and row.transaction_count >= 3


def test_an_import_that_fails_midway_stops_reading_and_records_every_page_it_read(
    recon, monkeypatch
):
    """The list is read ahead on a thread of its own: an error while a batch is matched
    stops it there and then, and each request it made is an ApiCall."""
    import threading

    from integrations.models import ApiCall
    from integrations.runtime import ServiceContext
    from reconciliation import services

    seeded = requests.post(
        recon.sandbox.system_url("stripe") + "/_test/payouts/seed",
        json={"count": 1500, "currency": "usd", "amount": 1000},
        headers={"Authorization": f"Bearer {STRIPE_KEY}"},
        timeout=30,
    ).json()
    match = services.transactions_match
    batches = []

    def failing(**kwargs):
        batches.append(len(kwargs["txns"]))
        if len(batches) == 2:
            raise exc.ConnectorUnavailable("the database went away")
        return match(**kwargs)

    monkeypatch.setattr(services, "transactions_match", failing)
    with pytest.raises(exc.ConnectorUnavailable, match="went away"):
        services.payout_import(ctx=ServiceContext(integration=recon), payout_id=seeded["payout"])
    assert not [t for t in threading.enumerate() if t.name.startswith("stripe-list-")]
    pages = ApiCall.objects.filter(operation="balance_transaction.list")
    assert 10 <= pages.count() < 16  # two batches' pages and what was read ahead, recorded
    assert BalanceTransaction.objects.count() == 500  # the first batch, nothing after


@pytest.mark.django_db(transaction=True)
def test_an_import_outside_a_transaction_stores_its_batches_behind_and_counts_them_all(
    recon, monkeypatch
):
    """As a worker runs it (no transaction around the job's step): on PostgreSQL each
    batch is stored on the write-behind thread while the next is matched."""
    from reconciliation import services

    monkeypatch.setattr(services, "BATCH", 2)  # 6 lines: three batches
    threads = []
    store = services._store
    monkeypatch.setattr(
        services,
        "_store",
        lambda rows, update: threads.append(threading.get_ident()) or store(rows, update),
    )
    a = paid(recon, user_id=11, total="30.00")
    paid(recon, user_id=12, total="45.50")
    paid(recon, user_id=13, total="20.00")
    refund = stripe(recon, "POST", "/v1/refunds", charge=a["charge"], amount=1200)
    run(recon, "payments.record_refund", refund=refund["id"])
    payout = payout_run(recon)

    out = import_payout(recon, payout)
    again = import_payout(recon, payout)

    assert (out["tie_out"], out["transactions"], out["new"], out["known"]) == (
        "tied_out", 5, 5, 0,
    )  # fmt: skip
    assert (again["tie_out"], again["new"], again["known"]) == ("tied_out", 0, 5)
    assert len(threads) == 6  # three batches, twice
    behind = connection.vendor == "postgresql"
    assert (threading.get_ident() not in threads) is behind
    stored = BalanceTransaction.objects.filter(payout__stripe_payout_id=payout)
    assert set(stored.values_list("stripe_txn_id", flat=True)) == stripe_txn_ids(recon, payout)
