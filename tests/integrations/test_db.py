"""The bulk helpers of integrations/db.py, on whichever database the suite runs (CI runs
it on PostgreSQL, where they take their own path, and on SQLite)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from integrations.db import bulk_insert, bulk_upsert
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
