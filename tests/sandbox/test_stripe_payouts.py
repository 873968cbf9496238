"""The sandbox's Stripe as an account that pays out: fees per settlement currency and tax on
them, two settlement currencies and conversion, automatic payouts by a schedule, manual
payouts (create, cancel, fail), a payout's transactions paged from its index, and the bulk
seed of a large payout (stripe.md A6, A7)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
import stripe

from sandbox.server import Sandbox, SandboxServer
from tests.sandbox.localstripe_support import WebhookReceiver
from tests.sandbox.test_stripe import event_types, make_client
from tests.sandbox.test_stripe_ledger import balance
from tests.sandbox.test_stripe_payments import hook, pay
from tests.sandbox.test_stripe_webhooks import register, verify

# Tests of Stripe itself start from an empty account (no seeded Znode charges).
pytestmark = pytest.mark.usefixtures("empty_stripe")

DAY = 86400
PAYOUT_EVENTS = ["payout.created", "payout.reconciliation_completed", "payout.paid"]
SETTLED_IN_USD_AND_EUR = {"settlement_currencies": ["usd", "eur"], "fx_rates": {"gbp": "1.2712"}}


@pytest.fixture
def client(sandbox):
    return make_client(sandbox)


def refused(sandbox, path: str, body: dict) -> dict:
    """The error body of a test hook that answers 400."""
    with pytest.raises(urllib.error.HTTPError) as caught:
        hook(sandbox, path, body)
    assert caught.value.code == 400
    return json.loads(caught.value.read())["error"]


def charge_txn(client, pi):
    return client.v1.balance_transactions.retrieve(
        client.v1.charges.retrieve(pi.latest_charge).balance_transaction
    )


def rows_of(client, payout_id: str, **params) -> list:
    listed = client.v1.balance_transactions.list({"payout": payout_id, "limit": 3, **params})
    return list(listed.auto_paging_iter())


# --- fees ------------------------------------------------------------------------------------
def test_card_fees_are_set_per_settlement_currency(sandbox, client):
    """A7: ``fee`` is positive, itemised in ``fee_details`` (``stripe_fee``), in the
    transaction's currency, and ``net = amount - fee``."""
    config = hook(sandbox, "config", {"card_fees": {"eur": {"percent": "1.5", "fixed": 25}}})
    assert config["card_fees"] == {"eur": {"percent": "1.5", "fixed": 25}}

    eur = charge_txn(client, pay(client, amount=2000, currency="eur"))
    usd = charge_txn(client, pay(client, amount=2000))

    assert (eur.amount, eur.fee, eur.net, eur.currency) == (2000, 55, 1945, "eur")  # 30 + 25
    assert [d.to_dict() for d in eur.fee_details] == [
        {
            "amount": 55,
            "application": None,
            "currency": "eur",
            "description": "Stripe processing fees",
            "type": "stripe_fee",
        }
    ]
    assert (usd.fee, usd.net) == (88, 1912)  # the US list price: 2.9% + 30


def test_tax_on_fees_is_its_own_fee_detail_and_refunds_carry_no_fee(sandbox, client):
    """A7: ``fee_details[].type`` ``tax`` is tax on Stripe's fees, part of ``fee``."""
    hook(sandbox, "config", {"fee_tax_percent": "20"})
    pi = pay(client, amount=2000)
    txn = charge_txn(client, pi)
    refund = client.v1.refunds.create({"payment_intent": pi.id, "amount": 700})

    assert (txn.amount, txn.fee, txn.net) == (2000, 88 + 18, 2000 - 106)  # 20% of 88 = 17.6
    assert [(d.type, d.amount, d.currency, d.description) for d in txn.fee_details] == [
        ("stripe_fee", 88, "usd", "Stripe processing fees"),
        ("tax", 18, "usd", "Tax on Stripe fees"),
    ]
    refund_txn = client.v1.balance_transactions.retrieve(refund.balance_transaction)
    assert (refund_txn.amount, refund_txn.fee, refund_txn.net) == (-700, 0, -700)
    assert refund_txn.fee_details == []


def test_the_dispute_fee_is_a_stripe_fee_of_the_adjustment(sandbox, client):
    hook(sandbox, "config", {"dispute_fees": {"usd": 2000}, "fee_tax_percent": "10"})
    pi = pay(client, amount=4000, token="pm_card_createDispute")
    [dispute] = client.v1.disputes.list({"payment_intent": pi.id}).data
    txn = client.v1.balance_transactions.retrieve(dispute.balance_transactions[0].id)

    assert (txn.type, txn.reporting_category, txn.amount, txn.fee, txn.net) == (
        "adjustment",
        "dispute",
        -4000,
        2200,
        -6200,
    )
    assert [(d.type, d.amount, d.description) for d in txn.fee_details] == [
        ("stripe_fee", 2000, "Dispute fee"),
        ("tax", 200, "Tax on Stripe fees"),
    ]


@pytest.mark.parametrize(
    ("settings", "param"),
    [
        ({"fx_rates": {"gbp": 1.2712}}, "fx_rates[gbp]"),  # a float: rates are decimal strings
        ({"fx_rates": {"gbp": "0"}}, "fx_rates[gbp]"),
        ({"fx_rates": {"gbp": "1.23456789012345678"}}, "fx_rates[gbp]"),  # more than JSON keeps
        ({"fx_rates": {"zzz": "1.2"}}, "fx_rates[zzz]"),
        ({"card_fees": {"usd": {"percent": 2.9, "fixed": 30}}}, "card_fees[usd][percent]"),
        ({"card_fees": {"usd": {"percent": "2.9", "fixed": -1}}}, "card_fees[usd][fixed]"),
        ({"fee_tax_percent": "-1"}, "fee_tax_percent"),
        ({"settlement_currencies": ["usd"], "default_settlement_currency": "eur"}, None),
        ({"payout_interval_seconds": -5}, "payout_interval_seconds"),
        ({"payout_schedule": "hourly"}, "payout_schedule"),
    ],
)
def test_bad_settings_are_refused_and_change_nothing(sandbox, settings, param):
    before = hook(sandbox, "config")
    error = refused(sandbox, "config", settings)
    if param:
        assert error["param"] == param
    assert hook(sandbox, "config") == before


# --- two settlement currencies and conversion ------------------------------------------------
def test_a_charge_in_another_currency_settles_converted(sandbox, client):
    """A7: ``currency`` and ``exchange_rate`` are set when the presentment currency differed
    from the settlement currency; the amount is already converted (and the fee is charged
    on the converted amount, in the settlement currency)."""
    hook(sandbox, "config", SETTLED_IN_USD_AND_EUR)
    gbp = pay(client, amount=1000, currency="gbp")
    eur = pay(client, amount=1000, currency="eur")
    usd = pay(client, amount=1000)

    txn = charge_txn(client, gbp)
    # 10.00 GBP x 1.2712 = 12.712 USD -> 1271; 2.9% of 1271 + 30 = 66.859 -> 67
    assert (txn.amount, txn.fee, txn.net, txn.currency, txn.exchange_rate) == (
        1271,
        67,
        1204,
        "usd",
        1.2712,
    )
    assert [(d.type, d.amount, d.currency) for d in txn.fee_details] == [("stripe_fee", 67, "usd")]
    charge = client.v1.charges.retrieve(gbp.latest_charge)
    assert (charge.amount, charge.currency) == (1000, "gbp")  # the customer paid pounds
    for pi, currency in ((eur, "eur"), (usd, "usd")):
        settled = charge_txn(client, pi)
        assert (settled.amount, settled.currency, settled.exchange_rate) == (1000, currency, None)
    assert {b.currency for b in client.v1.balance.retrieve().pending} == {"eur", "usd"}


def test_refunds_and_disputes_of_a_converted_charge_convert_at_its_rate(sandbox, client):
    hook(sandbox, "config", SETTLED_IN_USD_AND_EUR)
    paid = pay(client, amount=1000, currency="gbp")
    refund = client.v1.refunds.create({"payment_intent": paid.id, "amount": 500})
    disputed = pay(client, amount=1000, currency="gbp", token="pm_card_createDispute")
    [dispute] = client.v1.disputes.list({"payment_intent": disputed.id}).data

    refund_txn = client.v1.balance_transactions.retrieve(refund.balance_transaction)
    # 5.00 GBP x 1.2712 = 6.356 USD -> 636, a negative amount rounded away from zero
    assert (refund_txn.amount, refund_txn.fee, refund_txn.currency) == (-636, 0, "usd")
    assert refund_txn.exchange_rate == 1.2712
    assert (refund.amount, refund.currency) == (500, "gbp")
    withdrawal = client.v1.balance_transactions.retrieve(dispute.balance_transactions[0].id)
    # The disputed 10.00 GBP converts as its charge did; the dispute fee is 15.00 USD.
    assert (withdrawal.amount, withdrawal.fee, withdrawal.net, withdrawal.currency) == (
        -1271,
        1500,
        -2771,
        "usd",
    )
    assert (dispute.amount, dispute.currency) == (1000, "gbp")


def test_conversion_follows_each_currency_minor_unit(sandbox, client):
    """A6: JPY is zero-decimal: 5000 is 5000 yen; at 0.0067 that is 33.50 USD."""
    hook(sandbox, "config", {"settlement_currencies": ["usd"], "fx_rates": {"jpy": "0.0067"}})
    txn = charge_txn(client, pay(client, amount=5000, currency="jpy"))
    assert (txn.amount, txn.fee, txn.currency, txn.exchange_rate) == (3350, 127, "usd", 0.0067)


def test_the_default_settlement_currency_receives_the_conversions(sandbox, client):
    hook(
        sandbox,
        "config",
        {
            "settlement_currencies": "usd,eur",
            "default_settlement_currency": "eur",
            "fx_rates": {"gbp": "1.165"},
        },
    )
    txn = charge_txn(client, pay(client, amount=1000, currency="gbp"))
    assert (txn.amount, txn.fee, txn.currency, txn.exchange_rate) == (1165, 64, "eur", 1.165)


def test_a_currency_the_account_cannot_settle_is_refused_before_anything_exists(sandbox, client):
    hook(sandbox, "config", SETTLED_IN_USD_AND_EUR)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        pay(client, amount=1000, currency="cad")
    assert (caught.value.http_status, caught.value.param) == (400, "currency")
    assert "no fx_rates entry for cad" in caught.value.user_message
    assert client.v1.payment_intents.list().data == []
    assert client.v1.charges.list().data == []


def test_each_settlement_currency_is_paid_out_on_its_own(sandbox, client):
    hook(sandbox, "config", SETTLED_IN_USD_AND_EUR)
    pay(client, amount=1000, currency="gbp", token="pm_card_bypassPending")  # net 1204 usd
    pay(client, amount=2000, currency="eur", token="pm_card_bypassPending")  # net 1912 eur
    run = hook(sandbox, "run_payouts")
    payouts = {client.v1.payouts.retrieve(po).currency: po for po in run["created"]}
    assert {c: client.v1.payouts.retrieve(po).amount for c, po in payouts.items()} == {
        "usd": 1204,
        "eur": 1912,
    }
    for payout_id in payouts.values():
        assert sum(t.net for t in rows_of(client, payout_id)) == 0


# --- manual payouts --------------------------------------------------------------------------
def test_a_manual_payout_moves_from_pending_to_paid_and_is_not_itemised(sandbox, client):
    """A7: ``payout=`` works for automatic payouts only; manual payouts cannot be tied to
    transactions by Stripe."""
    charge = pay(client, amount=2000, token="pm_card_bypassPending")  # net 1912, available
    payout = client.v1.payouts.create(
        {
            "amount": 1000,
            "currency": "usd",
            "description": "Weekly sweep",
            "metadata": {"batch": "7"},
            "statement_descriptor": "SWEEP 7",
            "method": "standard",
        }
    )
    assert payout.id.startswith("po_") and payout.object == "payout"
    assert (payout.status, payout.automatic, payout.reconciliation_status) == (
        "pending",
        False,
        "not_applicable",
    )
    assert (payout.amount, payout.currency, payout.description, payout.method) == (
        1000,
        "usd",
        "Weekly sweep",
        "standard",
    )
    assert (payout.metadata.to_dict(), payout.statement_descriptor) == ({"batch": "7"}, "SWEEP 7")
    own = client.v1.balance_transactions.retrieve(payout.balance_transaction)
    assert (own.type, own.reporting_category, own.amount, own.net, own.source) == (
        "payout",
        "payout",
        -1000,
        -1000,
        payout.id,
    )
    assert balance(client) == (912, 0)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.balance_transactions.list({"payout": payout.id})
    assert (caught.value.http_status, caught.value.param) == (400, "payout")

    first = hook(sandbox, "run_payouts")
    assert first["in_transit"] == [payout.id]
    assert client.v1.payouts.retrieve(payout.id).status == "in_transit"
    # The automatic payout pays out what is left, the manual payout's row included: its
    # rows still sum to zero.
    [automatic] = first["created"]
    assert client.v1.payouts.retrieve(automatic).amount == 912
    listed = rows_of(client, automatic)
    assert sorted((t.type, t.net) for t in listed) == [
        ("charge", 1912),
        ("payout", -1000),
        ("payout", -912),
    ]
    assert charge.latest_charge in {t.source for t in listed}

    second = hook(sandbox, "run_payouts")
    assert sorted(second["paid"]) == sorted([payout.id, automatic])
    assert client.v1.payouts.retrieve(payout.id).status == "paid"
    manual_events = [
        (e.type, e.data.to_dict().get("previous_attributes", {}).get("status"))
        for e in client.v1.events.list({"limit": 100}).data[::-1]
        if e.data.object.to_dict().get("id") == payout.id
    ]
    assert manual_events == [
        ("payout.created", None),
        ("payout.updated", "pending"),
        ("payout.paid", "in_transit"),
    ]


def test_the_account_says_its_payout_schedule_and_a_manual_one_makes_no_automatic_payouts(
    sandbox, client
):
    """``GET /v1/account``: ``settings.payouts.schedule.interval`` is daily (automatic
    payouts) by default, manual when set so; then a payout run only moves the payouts on
    and the balance leaves by ``POST /v1/payouts`` alone."""
    schedule = client.v1.accounts.retrieve_current().settings.payouts.schedule
    assert (schedule.interval, schedule.delay_days) == ("daily", 2)
    assert hook(sandbox, "config", {"payout_schedule": "manual"})["payout_schedule"] == "manual"
    assert client.v1.accounts.retrieve_current().settings.payouts.schedule.interval == "manual"
    pay(client, amount=2000, token="pm_card_bypassPending")  # net 1912, available
    payout = client.v1.payouts.create({"amount": 1912, "currency": "usd"})

    first = hook(sandbox, "run_payouts")
    second = hook(sandbox, "run_payouts")

    assert (first["created"], first["in_transit"]) == ([], [payout.id])
    assert (second["created"], second["paid"]) == ([], [payout.id])
    assert balance(client) == (0, 0)
    assert [p.id for p in client.v1.payouts.list().data] == [payout.id]


def test_a_manual_payout_beyond_the_available_balance_is_refused(sandbox, client):
    pay(client, amount=2000, token="pm_card_bypassPending")  # 1912 available
    pay(client, amount=5000)  # pending: not available for a payout
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payouts.create({"amount": 1913, "currency": "usd"})
    assert (caught.value.http_status, caught.value.code) == (400, "balance_insufficient")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payouts.create({"amount": 100, "currency": "eur"})  # no euros at all
    assert caught.value.code == "balance_insufficient"
    assert client.v1.payouts.list().data == []
    assert client.v1.balance_transactions.list({"type": "payout"}).data == []
    assert client.v1.payouts.create({"amount": 1912, "currency": "usd"}).status == "pending"
    assert balance(client) == (0, 4825)


@pytest.mark.parametrize(
    ("amount", "currency", "param"),
    [
        (12345, "huf", "amount"),  # A6: HUF payouts are whole forints (divisible by 100)
        (12345, "twd", "amount"),
        (1005, "kwd", "amount"),  # A6: three-decimal amounts end in 0
        (0, "usd", "amount"),
        (100, "zzz", "currency"),
    ],
)
def test_payout_amounts_stripe_refuses(client, amount, currency, param):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payouts.create({"amount": amount, "currency": currency})
    assert (caught.value.http_status, caught.value.param) == (400, param)


def test_a_pending_payout_can_be_canceled_and_the_money_returns(sandbox, client):
    pay(client, amount=2000, token="pm_card_bypassPending")
    payout = client.v1.payouts.create({"amount": 500, "currency": "usd"})
    canceled = client.v1.payouts.cancel(payout.id)
    assert canceled.status == "canceled"
    back = client.v1.balance_transactions.retrieve(canceled.failure_balance_transaction)
    assert (back.type, back.reporting_category, back.amount, back.net, back.source) == (
        "payout_cancel",
        "payout_reversal",
        500,
        500,
        payout.id,
    )
    assert balance(client) == (1912, 0)
    event = client.v1.events.list({"type": "payout.canceled"}).data[0]
    assert (event.data.object.id, event.data.previous_attributes.status) == (payout.id, "pending")
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payouts.cancel(payout.id)
    # The next automatic payout pays out the whole balance; its rows sum to zero.
    [automatic] = hook(sandbox, "run_payouts")["created"]
    assert client.v1.payouts.retrieve(automatic).amount == 1912
    assert sorted((t.type, t.net) for t in rows_of(client, automatic)) == [
        ("charge", 1912),
        ("payout", -1912),
        ("payout", -500),
        ("payout_cancel", 500),
    ]


def test_a_payout_in_transit_cannot_be_canceled_but_can_fail(sandbox, client):
    pay(client, amount=2000, token="pm_card_bypassPending")
    payout = client.v1.payouts.create({"amount": 1000, "currency": "usd"})
    hook(sandbox, "run_payouts")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payouts.cancel(payout.id)
    assert "only a pending payout can be canceled" in caught.value.user_message
    failed = hook(sandbox, f"payouts/{payout.id}/fail", {"failure_code": "no_account"})
    assert (failed["status"], failed["failure_code"]) == ("failed", "no_account")
    txn = client.v1.balance_transactions.retrieve(failed["failure_balance_transaction"])
    assert (txn.type, txn.reporting_category, txn.amount) == (
        "payout_failure",
        "payout_reversal",
        1000,
    )
    assert event_types(client)[-1] == "payout.failed"


# --- automatic payouts by the schedule --------------------------------------------------------
def test_automatic_payouts_follow_the_schedule_on_the_sandbox_clock(sandbox, client):
    hook(sandbox, "clock", {"frozen": True})
    pay(client, amount=2000, token="pm_card_bypassPending")
    config = hook(sandbox, "config", {"payout_interval_seconds": DAY})
    assert config["payout_interval_seconds"] == DAY
    hook(sandbox, "advance_time", {"seconds": DAY - 1})
    assert client.v1.payouts.list().data == []

    hook(sandbox, "advance_time", {"seconds": 1})
    [payout] = client.v1.payouts.list().data
    assert (payout.amount, payout.status, payout.automatic, payout.reconciliation_status) == (
        1912,
        "in_transit",
        True,
        "completed",
    )
    assert sum(t.net for t in rows_of(client, payout.id)) == 0

    hook(sandbox, "advance_time", {"seconds": DAY})
    assert client.v1.payouts.retrieve(payout.id).status == "paid"
    assert [t for t in event_types(client) if t.startswith("payout.")] == [
        "payout.created",
        "payout.reconciliation_completed",
        "payout.paid",
    ]
    hook(sandbox, "config", {"payout_interval_seconds": 0})
    pay(client, amount=1000, token="pm_card_bypassPending")
    hook(sandbox, "advance_time", {"seconds": 3 * DAY})
    assert len(client.v1.payouts.list().data) == 1  # off again


def test_the_server_pays_out_by_itself_and_sends_the_webhooks(sandbox, client):
    receiver = WebhookReceiver()
    try:
        register(sandbox, receiver.url, events=PAYOUT_EVENTS)
        pay(client, amount=2000, token="pm_card_bypassPending")
        hook(sandbox, "config", {"payout_interval_seconds": 1})
        deliveries = receiver.wait_for(lambda d: len(d) >= 3, timeout=10)
    finally:
        hook(sandbox, "config", {"payout_interval_seconds": 0})
        receiver.close()
    events = [verify(d) for d in deliveries[:3]]
    assert [e["type"] for e in events] == PAYOUT_EVENTS
    assert events[0]["data"]["object"]["amount"] == 1912
    assert events[0]["request"] == {"id": None, "idempotency_key": None}


def test_the_ticker_stops_with_the_server():
    server = SandboxServer(Sandbox(seed=5)).start()
    assert server._ticker.is_alive()
    server.stop()
    assert not server._ticker.is_alive()


# --- a payout's transactions, paged from its index ----------------------------------------------
class NoScan(dict):
    """A table that may be looked up by key but not walked."""

    def _refuse(self, *args, **kwargs):
        raise AssertionError("the balance transactions were scanned")

    values = items = keys = __iter__ = _refuse


def test_a_payouts_transactions_page_without_scanning_the_account(sandbox, client):
    seeded = hook(
        sandbox,
        "payouts/seed",
        {"count": 30, "refunds_every": 10, "metadata": {"integration": "bench"}},
    )
    everything = rows_of(client, seeded["payout"])
    assert len(everything) == 30 + 3 + 1
    assert everything[0].type == "payout"  # newest first: the payout's own row
    system = sandbox.sandbox.systems["stripe"]
    with system.lock:
        objects = system.state["objects"]
        objects["balance_transaction"] = NoScan(objects["balance_transaction"])
    ids = [t.id for t in everything]

    page = client.v1.balance_transactions.list(
        {
            "payout": seeded["payout"],
            "limit": 5,
            "starting_after": ids[9],
            "expand": ["data.source.payment_intent"],
        }
    )
    assert [t.id for t in page.data] == ids[10:15] and page.has_more
    charge = next(t.source for t in page.data if t.type == "charge")
    assert charge.object == "charge" and charge.payment_intent.metadata.integration == "bench"
    before = client.v1.balance_transactions.list(
        {"payout": seeded["payout"], "limit": 4, "ending_before": ids[9]}
    )
    assert [t.id for t in before.data] == ids[5:9] and before.has_more
    last = client.v1.balance_transactions.list(
        {"payout": seeded["payout"], "limit": 4, "starting_after": ids[-3]}
    )
    assert [t.id for t in last.data] == ids[-2:] and not last.has_more
    refunds = client.v1.balance_transactions.list(
        {"payout": seeded["payout"], "type": "refund", "limit": 2}
    )
    assert [t.id for t in refunds.data] == [t.id for t in everything if t.type == "refund"][:2]
    assert refunds.has_more


def test_a_cursor_from_another_payout_is_refused(sandbox, client):
    one = hook(sandbox, "payouts/seed", {"count": 2})
    other = hook(sandbox, "payouts/seed", {"count": 2})
    stranger = client.v1.balance_transactions.list({"payout": other["payout"]}).data[0].id
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.balance_transactions.list({"payout": one["payout"], "starting_after": stranger})
    assert (caught.value.http_status, caught.value.param) == (400, "starting_after")


# --- the bulk seed ---------------------------------------------------------------------------
def test_the_seed_books_paid_payments_in_one_paid_automatic_payout(sandbox, client):
    seeded = hook(
        sandbox,
        "payouts/seed",
        {
            "count": 12,
            "currency": "usd",
            "amount": 1000,
            "metadata": {"znode_order_number": "BENCH-{i}", "integration": "bench"},
            "refunds_every": 5,
        },
    )
    # 12 nets of 941 (1000 - 59) and two refunds of 500
    assert seeded == {
        "payout": seeded["payout"],
        "count": 12,
        "amount": 12 * 941 - 2 * 500,
        "currency": "usd",
    }
    payout = client.v1.payouts.retrieve(seeded["payout"])
    assert (payout.status, payout.automatic, payout.reconciliation_status, payout.amount) == (
        "paid",
        True,
        "completed",
        seeded["amount"],
    )
    rows = rows_of(client, payout.id, expand=["data.source"])
    assert sorted(t.type for t in rows) == ["charge"] * 12 + ["payout"] + ["refund"] * 2
    assert sum(t.net for t in rows) == 0
    assert all(t.status == "available" for t in rows)
    charges = {t.source.metadata.znode_order_number: t.source for t in rows if t.type == "charge"}
    assert sorted(charges) == sorted(f"BENCH-{i}" for i in range(1, 13))
    fifth = charges["BENCH-5"]
    assert (fifth.status, fifth.captured, fifth.amount_refunded) == ("succeeded", True, 500)
    pi = client.v1.payment_intents.retrieve(fifth.payment_intent)
    assert pi.status == "succeeded"
    assert pi.metadata.to_dict() == {"znode_order_number": "BENCH-5", "integration": "bench"}
    [refund] = client.v1.refunds.list({"charge": fifth.id}).data
    assert (refund.amount, refund.status) == (500, "succeeded")
    assert client.v1.events.list().data == []  # no events, no webhooks
    assert balance(client) == (0, 0)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"count": 0}, "count"),
        ({"count": 2, "amount": 10}, "amount"),  # below Stripe's minimum
        ({"count": 2, "currency": "zzz"}, "currency"),
        ({"count": 2, "metadata": {"k": 1}}, "metadata"),
        ({"count": 2, "colour": "red"}, "colour"),
        ({"count": 2, "refund_amount": 1000}, None),
    ],
)
def test_a_bad_seed_is_refused_and_books_nothing(sandbox, client, body, param):
    error = refused(sandbox, "payouts/seed", body)
    if param:
        assert error["param"] == param
    assert client.v1.payouts.list().data == []
    assert client.v1.charges.list().data == []


def test_a_seed_in_a_converted_currency_is_paid_out_in_the_settlement_currency(sandbox, client):
    hook(sandbox, "config", SETTLED_IN_USD_AND_EUR)
    seeded = hook(sandbox, "payouts/seed", {"count": 3, "currency": "gbp", "amount": 1000})
    assert (seeded["currency"], seeded["amount"]) == ("usd", 3 * 1204)
    rows = rows_of(client, seeded["payout"])
    assert {(t.currency, t.exchange_rate) for t in rows if t.type == "charge"} == {("usd", 1.2712)}


def test_a_seed_of_twenty_thousand_is_one_payout_of_them_all(sandbox, client):
    """How fast it seeds is measured by benchmarks/reconciliation.py, not asserted."""
    seeded = hook(sandbox, "payouts/seed", {"count": 20_000, "metadata": {"n": "B-{i}"}})
    assert seeded["amount"] == 20_000 * 941
    page = client.v1.balance_transactions.list(
        {"payout": seeded["payout"], "limit": 100, "expand": ["data.source"]}
    )
    assert len(page.data) == 100 and page.has_more
    assert page.data[1].source.metadata.n == "B-20000"
