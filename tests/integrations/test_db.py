"""The bulk helpers of integrations/db.py, on whichever database the suite runs (CI runs
it on PostgreSQL, where they take their own path, and on SQLite)."""

import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection, connections

from integrations.db import WriteBehind, bulk_insert, bulk_upsert
from integrations.models import ApiCall
from reconciliation.models import BalanceTransaction, JournalEntry, Payout

pytestmark = pytest.mark.django_db

FIELDS = (
    "integration",
    "stripe_txn_id",
    "payout",
    "type",
    "gross_minor",
    "fee_minor",
    "net_minor",
    "currency",
    "exchange_rate",
    "fee_details",
    "created",
    "order",
    "explained",
    "unmatched_reason",
)
UPDATE = FIELDS[2:]
WHEN = datetime(2026, 11, 30, 12, 0, 1, tzinfo=UTC)


def row(integration, payout, txn: str, *, gross: int, reason: str = "") -> tuple:
    fee = 59
    return (
        integration.pk,
        txn,
        payout.pk,
        "charge",
        gross,
        fee,
        gross - fee,
        "EUR",
        Decimal("1.084712345678"),
        [{"type": "stripe_fee", "amount": fee, "currency": "EUR"}],
        WHEN,
        None,
        True,
        reason,
    )


@pytest.fixture
def payouts(integration):
    made = [
        Payout.objects.create(
            integration=integration, stripe_payout_id=f"po_{n}", amount_minor=0, currency="EUR"
        )
        for n in (1, 2)
    ]
    return made


def test_rows_are_inserted_with_every_value_exact(integration, payouts):
    bulk_upsert(
        BalanceTransaction,
        [row(integration, payouts[0], f"txn_{n}", gross=1000 + n) for n in range(3)],
        fields=FIELDS,
        unique=("integration", "stripe_txn_id"),
        update=UPDATE,
    )
    stored = BalanceTransaction.objects.order_by("stripe_txn_id")
    assert [(t.stripe_txn_id, t.gross_minor, t.net_minor) for t in stored] == [
        ("txn_0", 1000, 941),
        ("txn_1", 1001, 942),
        ("txn_2", 1002, 943),
    ]
    first = stored[0]
    assert first.exchange_rate == Decimal("1.084712345678")
    assert first.fee_details == [{"type": "stripe_fee", "amount": 59, "currency": "EUR"}]
    assert first.created == WHEN and first.order_id is None and first.explained is True


def test_a_row_stored_before_is_written_over_only_in_the_fields_named(integration, payouts):
    def upsert(rows):
        return bulk_upsert(
            BalanceTransaction,
            rows,
            fields=FIELDS,
            unique=("integration", "stripe_txn_id"),
            update=UPDATE,
            previous=("stripe_txn_id", "payout"),
        )

    assert upsert([row(integration, payouts[0], "txn_a", gross=1000)]) == {}  # none before
    entry = JournalEntry.objects.create(
        integration=integration,
        external_reference="payout:po_1",
        kind="payout",
        ledger_key="payout:po_1",
        date=WHEN.date(),
        currency="EUR",
        total=Decimal("9.41"),
    )
    BalanceTransaction.objects.filter(stripe_txn_id="txn_a").update(cleared_by=entry)
    before = BalanceTransaction.objects.get(stripe_txn_id="txn_a").pk

    before_write = upsert(
        [
            row(integration, payouts[1], "txn_a", gross=1200, reason="moved"),
            row(integration, payouts[1], "txn_b", gross=500),
        ]
    )
    assert before_write == {"txn_a": payouts[0].pk}  # its payout before; txn_b was new
    again = BalanceTransaction.objects.get(stripe_txn_id="txn_a")
    assert again.pk == before  # the same row, not a second one
    assert (again.payout_id, again.gross_minor, again.unmatched_reason) == (
        payouts[1].pk,
        1200,
        "moved",
    )
    assert again.cleared_by_id == entry.pk  # not among the fields named: kept
    assert BalanceTransaction.objects.count() == 2


def test_nothing_is_written_for_no_rows(integration):
    bulk_upsert(BalanceTransaction, [], fields=FIELDS, unique=("id",), update=UPDATE)
    assert not BalanceTransaction.objects.exists()


def test_any_of_finds_each_value_exactly_whatever_it_holds(integration):
    """On PostgreSQL the values travel as one array literal: each is quoted, its quotes
    and backslashes escaped, so no value is read as two, as NULL or as another."""
    odd = ['a"b', "a\\b", "a,b", "{a}", "NULL", "", " spaced ", "\\", '"', "é ✓"]
    made = {
        value: Payout.objects.create(
            integration=integration, stripe_payout_id=value, amount_minor=0, currency="EUR"
        )
        for value in [*odd, "a", "b"]
    }
    for value in odd:
        assert list(Payout.objects.filter(stripe_payout_id__any_of=[value])) == [made[value]]
    found = Payout.objects.filter(stripe_payout_id__any_of=odd).order_by("pk")
    assert list(found) == [made[value] for value in odd]


def test_bulk_insert_writes_every_row_with_defaults_and_the_moment(integration):
    before = datetime.now(UTC)
    fields = ("connection", "method", "url", "request_headers", "status_code", "response_body")
    rows = [
        (integration.stripe_id, "GET", f"https://api.example/{n}", {"n": n}, 200, f"body {n}")
        for n in range(3)
    ]
    assert bulk_insert(ApiCall, rows, fields=fields) == 3
    assert bulk_insert(ApiCall, [], fields=fields) == 0
    stored = list(ApiCall.objects.order_by("url"))
    assert [
        (c.connection_id, c.method, c.url, c.request_headers, c.status_code, c.response_body)
        for c in stored
    ] == [tuple(r) for r in rows]
    # Not named: the field's default ("" / None), auto_now_add the moment of the write.
    unnamed = {(c.operation, c.error, c.job_id, c.duration_ms) for c in stored}
    assert unnamed == {("", "", None, None)}
    assert all(before <= c.created_at <= datetime.now(UTC) for c in stored)


def test_any_of_finds_what_in_finds(integration, payouts):
    ids = {"po_1", "po_9", 'it\'s "quoted" {braced}, commaed'}
    found = Payout.objects.filter(stripe_payout_id__any_of=ids)
    assert list(found) == list(Payout.objects.filter(stripe_payout_id__in=ids)) == [payouts[0]]
    assert not Payout.objects.filter(stripe_payout_id__any_of=set()).exists()
    assert Payout.objects.exclude(stripe_payout_id__any_of=set()).count() == 2
    # None is left out, as IN leaves it out: under exclude too.
    assert list(Payout.objects.exclude(stripe_payout_id__any_of={"po_1", None})) == [payouts[1]]
    assert not Payout.objects.filter(stripe_payout_id__any_of={None}).exists()
    sql = str(Payout.objects.filter(stripe_payout_id__any_of={"po_1"}).query)
    assert ("= ANY(" in sql) == (connection.vendor == "postgresql")


# --- WriteBehind -----------------------------------------------------------------------
def _payout_write(integration, name: str, log: list):
    """A write that stores a payout and says on which thread and connection it ran,
    and when it began and ended."""

    def write():
        log.append(("begin", name))
        Payout.objects.create(
            integration_id=integration.pk, stripe_payout_id=name, amount_minor=0, currency="EUR"
        )
        log.append(("end", name))
        return name, threading.get_ident(), connections["default"]

    return write


def test_inside_a_transaction_each_write_runs_at_once_on_the_callers_thread(integration):
    done, log = [], []
    with WriteBehind(done.append) as writer:
        assert writer.threaded is False  # a test's transaction: a second one would not see it
        writer.submit(_payout_write(integration, "po_a", log))
        assert [name for name, *_ in done] == ["po_a"]  # at once
        writer.submit(_payout_write(integration, "po_b", log))
    assert [name for name, *_ in done] == ["po_a", "po_b"]
    assert {thread for _, thread, _ in done} == {threading.get_ident()}


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_on_postgresql_writes_run_behind_one_at_a_time_in_order(
    integration,
):
    done, log = [], []
    caller = threading.get_ident()
    with WriteBehind(lambda result: done.append((result, threading.get_ident()))) as writer:
        assert writer.threaded is (connection.vendor == "postgresql")
        for name in ("po_a", "po_b", "po_c"):
            writer.submit(_payout_write(integration, name, log))
    # Every result reached the caller's thread, in order; one write at a time.
    assert [result[0] for result, _ in done] == ["po_a", "po_b", "po_c"]
    assert {thread for _, thread in done} == {caller}
    assert log == [(step, name) for name in ("po_a", "po_b", "po_c") for step in ("begin", "end")]
    assert Payout.objects.filter(stripe_payout_id__in=["po_a", "po_b", "po_c"]).count() == 3
    if writer.threaded:
        # On a thread of its own, with its own connection, closed on the way out.
        assert {result[1] for result, _ in done} != {caller}
        assert len({result[1] for result, _ in done}) == 1
        assert not [t for t in threading.enumerate() if t.name.startswith("write-behind")]
        [own] = {result[2] for result, _ in done}
        assert own is not connections["default"] and own.connection is None  # closed


@pytest.mark.django_db(transaction=True)
def test_a_failed_write_raises_at_the_next_hand_over_and_nothing_after_it_runs(integration):
    done, log = [], []

    def failing():
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"), WriteBehind(done.append) as writer:
        writer.submit(failing)
        writer.submit(_payout_write(integration, "po_after", log))
    assert done == [] and log == []
    assert not Payout.objects.filter(stripe_payout_id="po_after").exists()


@pytest.mark.django_db(transaction=True)
def test_leaving_with_an_error_waits_for_the_pending_write_and_raises_the_callers(
    integration,
):
    done, log = [], []
    with pytest.raises(KeyError), WriteBehind(done.append) as writer:
        writer.submit(_payout_write(integration, "po_pending", log))
        raise KeyError("the caller's")
    # The pending write finished (stored, committed) before the writer let go.
    assert log == [("begin", "po_pending"), ("end", "po_pending")]
    assert Payout.objects.filter(stripe_payout_id="po_pending").exists()
