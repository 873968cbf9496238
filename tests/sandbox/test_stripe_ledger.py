"""Balance transactions, fees, the balance, the sandbox clock and automatic payouts."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
import stripe

from tests.sandbox.test_stripe import event_types, make_client
from tests.sandbox.test_stripe_payments import hook, pay

# Tests of Stripe itself start from an empty account (no seeded Znode charges).
pytestmark = pytest.mark.usefixtures("empty_stripe")

DAY = 86400


@pytest.fixture
def client(sandbox):
    return make_client(sandbox)


def balance(client, currency="usd") -> tuple[int, int]:
    body = client.v1.balance.retrieve()
    available = {b.currency: b.amount for b in body.available}
    pending = {b.currency: b.amount for b in body.pending}
    return available.get(currency, 0), pending.get(currency, 0)


@pytest.mark.parametrize(
    ("amount", "fee"),
    [
        (1000, 59),  # 29 + 30
        (2500, 103),  # 72.5 + 30 = 102.5 → 103 (half-up)
        (1234, 66),  # 35.786 + 30 → 66
        (50, 31),  # 1.45 + 30 → 31
        (99_999_999, 2_900_030),  # 2899999.971 + 30 → 2900030
    ],
)
def test_card_fees(client, amount, fee):
    pi = pay(client, amount=amount, expand=["latest_charge.balance_transaction"])
    txn = pi.latest_charge.balance_transaction
    assert (txn.amount, txn.fee, txn.net) == (amount, fee, amount - fee)
    assert [d.to_dict() for d in txn.fee_details] == [
        {
            "amount": fee,
            "application": None,
            "currency": "usd",
            "description": "Stripe processing fees",
            "type": "stripe_fee",
        }
    ]


def test_charge_balance_transaction(client):
    pi = pay(client, amount=2000, description="Order 7")
    txn = client.v1.balance_transactions.retrieve(
        client.v1.charges.retrieve(pi.latest_charge).balance_transaction
    )
    assert txn.id.startswith("txn_") and txn.object == "balance_transaction"
    assert (txn.type, txn.reporting_category, txn.status, txn.currency) == (
        "charge",
        "charge",
        "pending",
        "usd",
    )
    assert (txn.source, txn.description, txn.exchange_rate) == (pi.latest_charge, "Order 7", None)
    assert txn.available_on == txn.created + 2 * DAY
    listed = client.v1.balance_transactions.list({"expand": ["data.source.payment_intent"]})
    assert listed.data[0].source.payment_intent.id == pi.id
    assert [t.id for t in client.v1.balance_transactions.list({"type": "charge"}).data] == [txn.id]
    assert client.v1.balance_transactions.list({"type": "refund"}).data == []
    assert [
        t.id for t in client.v1.balance_transactions.list({"source": pi.latest_charge}).data
    ] == [txn.id]
    assert client.v1.balance_transactions.list({"created": {"gt": txn.created}}).data == []
    assert len(client.v1.balance_transactions.list({"created": {"gte": txn.created}}).data) == 1
    assert balance(client) == (0, 1912)


def test_funds_become_available_with_the_clock(sandbox, client):
    pay(client, amount=2000)
    assert balance(client) == (0, 1912)
    hook(sandbox, "advance_time", {"seconds": 2 * DAY - 10})
    assert balance(client) == (0, 1912)
    clock = hook(sandbox, "advance_time", {"seconds": 10})
    assert clock["offset"] == 2 * DAY
    assert balance(client) == (1912, 0)
    assert event_types(client)[-1] == "balance.available"
    available_event = client.v1.events.list({"type": "balance.available"}).data[0]
    assert available_event.data.object.available[0].amount == 1912
    # The 4000000000000077 card skips the pending period.
    pay(client, amount=1000, token="pm_card_bypassPending")
    assert balance(client) == (1912 + 941, 0)


def test_sandbox_clock_hooks(sandbox):
    url = f"{sandbox.system_url('stripe')}/_test/clock"
    with urllib.request.urlopen(url, timeout=10) as response:
        clock = json.loads(response.read())
    assert clock["offset"] == 0
    with pytest.raises(urllib.error.HTTPError) as caught:
        hook(sandbox, "advance_time", {"seconds": -1})
    assert json.loads(caught.value.read())["error"]["param"] == "seconds"
    assert hook(sandbox, "config", {"settlement_days": 7})["settlement_days"] == 7


def test_payouts_group_available_funds(sandbox, client):
    usd1 = pay(client, amount=2000)  # fee 88, net 1912
    usd2 = pay(client, amount=3000)  # fee 117, net 2883
    eur = pay(client, amount=1500, currency="eur")  # fee 74, net 1426
    refund = client.v1.refunds.create({"payment_intent": usd1.id, "amount": 500})
    # Before settlement only the refund (taken at once) is available: nothing to pay out.
    assert hook(sandbox, "run_payouts")["created"] == []
    assert balance(client) == (-500, 1912 + 2883)

    hook(sandbox, "advance_time", {"seconds": 2 * DAY})
    run = hook(sandbox, "run_payouts")
    assert len(run["created"]) == 2
    payouts = {p.currency: p for p in client.v1.payouts.list().data}
    usd = payouts["usd"]
    assert usd.id.startswith("po_") and usd.object == "payout"
    assert (usd.amount, usd.status, usd.automatic, usd.reconciliation_status, usd.method) == (
        1912 + 2883 - 500,
        "in_transit",
        True,
        "completed",
        "standard",
    )
    assert usd.arrival_date > usd.created
    assert payouts["eur"].amount == 1426
    payout_txn = client.v1.balance_transactions.retrieve(usd.balance_transaction)
    assert (payout_txn.type, payout_txn.amount, payout_txn.fee, payout_txn.source) == (
        "payout",
        -4295,
        0,
        usd.id,
    )
    rows = list(
        client.v1.balance_transactions.list({"payout": usd.id, "limit": 2}).auto_paging_iter()
    )
    charge_ids = {usd1.latest_charge, usd2.latest_charge}
    assert {t.source for t in rows} == charge_ids | {refund.id, usd.id}
    assert sorted(t.type for t in rows) == ["charge", "charge", "payout", "refund"]
    assert sum(t.net for t in rows) == 0
    assert rows[0].id == usd.balance_transaction  # newest first: the payout's own row
    eur_rows = client.v1.balance_transactions.list({"payout": payouts["eur"].id}).data
    assert {t.source for t in eur_rows} == {eur.latest_charge, payouts["eur"].id}
    assert balance(client) == (0, 0)
    assert balance(client, "eur") == (0, 0)
    assert event_types(client).count("payout.created") == 2
    assert event_types(client).count("payout.reconciliation_completed") == 2

    # The next run marks them paid, and pays out only what is new.
    later = pay(client, amount=1000, token="pm_card_bypassPending")
    run = hook(sandbox, "run_payouts")
    assert sorted(run["paid"]) == sorted(p.id for p in payouts.values())
    assert client.v1.payouts.retrieve(usd.id).status == "paid"
    assert len(run["created"]) == 1
    newest = client.v1.payouts.retrieve(run["created"][0])
    assert newest.amount == 941
    assert [t.source for t in client.v1.balance_transactions.list({"payout": newest.id}).data] == [
        newest.id,
        later.latest_charge,
    ]
    assert [p.id for p in client.v1.payouts.list({"status": "paid"}).data] == [
        p.id for p in client.v1.payouts.list().data if p.id != newest.id
    ]
    assert event_types(client).count("payout.paid") == 2


def test_disputes_and_refund_failures_are_in_the_payout(sandbox, client):
    disputed = pay(client, amount=4000, token="pm_card_createDispute")  # net 4000 - 146
    failing = pay(client, amount=2000, token="pm_card_refundFail")  # net 1912
    client.v1.refunds.create({"payment_intent": failing.id})
    hook(sandbox, "settle")  # the refund fails and the money comes back
    hook(sandbox, "advance_time", {"seconds": 2 * DAY})
    payout = client.v1.payouts.retrieve(hook(sandbox, "run_payouts")["created"][0])
    rows = client.v1.balance_transactions.list({"payout": payout.id}).data
    assert sorted((t.reporting_category, t.net) for t in rows) == sorted(
        [
            ("charge", 3854),
            ("dispute", -5500),
            ("charge", 1912),
            ("refund", -2000),
            ("refund_failure", 2000),
            ("payout", -payout.amount),
        ]
    )
    assert payout.amount == 3854 - 5500 + 1912
    assert {t.source for t in rows} >= {disputed.latest_charge, failing.latest_charge}


def test_failed_payout_returns_the_money(sandbox, client):
    pay(client, amount=2000, token="pm_card_bypassPending")
    payout_id = hook(sandbox, "run_payouts")["created"][0]
    failed = hook(sandbox, f"payouts/{payout_id}/fail", {"failure_code": "account_closed"})
    assert (failed["status"], failed["failure_code"]) == ("failed", "account_closed")
    assert failed["failure_message"] == "The bank account has been closed."
    txn = client.v1.balance_transactions.retrieve(failed["failure_balance_transaction"])
    assert (txn.type, txn.amount, txn.reporting_category) == (
        "payout_failure",
        1912,
        "payout_reversal",
    )
    assert balance(client) == (1912, 0)
    assert event_types(client)[-1] == "payout.failed"
    again = hook(sandbox, "run_payouts")
    assert client.v1.payouts.retrieve(again["created"][0]).amount == 1912


def test_payout_filter_errors(client):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.balance_transactions.list({"payout": "po_missing"})
    assert (caught.value.http_status, caught.value.param) == (400, "payout")
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.balance_transactions.list({"type": "bogus"})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payouts.retrieve("po_missing")
    assert client.v1.payouts.list().data == []
    assert client.v1.balance.retrieve().available[0].to_dict() == {
        "amount": 0,
        "currency": "usd",
        "source_types": {"card": 0},
    }
