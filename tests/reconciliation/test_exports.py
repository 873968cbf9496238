"""The finance exports (reconciliation/exports.py): columns, rows, totals, both formats
parsed back, and the look-ups batched per chunk."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from payments.models import Order
from reconciliation import exports, ledger
from reconciliation.models import BalanceTransaction, GlAccount, Payout
from tests.support.books import build_books, csv_of, parse_csv, xlsx_of, xlsx_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def books(stripe_connection, znode_connection):
    return build_books(stripe=stripe_connection, znode=znode_connection)


def _accounts(txn_id: str) -> str:
    txn = BalanceTransaction.objects.get(stripe_txn_id=txn_id)
    return "; ".join(ledger.transaction_accounts(ledger.gl_map(txn.integration), txn))


def test_a_payouts_csv_lists_its_transactions_and_totals_that_equal_the_payout(books):
    GlAccount.objects.create(integration=books.integration, key="clearing", account="1155")

    header, *lines, total = parse_csv(csv_of(Payout.objects.filter(pk=books.usd.pk)))

    assert tuple(header) == exports.COLUMNS
    by_txn = {line[2]: line for line in lines}
    assert list(by_txn) == ["txn_ch", "txn_re", "txn_dp", "txn_fx", "txn_fee", "txn_adj"]
    created = "2026-11-18T09:30:00+00:00"
    assert by_txn["txn_ch"] == [
        "po_usd",
        "2026-11-20",
        "txn_ch",
        created,
        "ORD-1",
        "ana@example.com",
        "charge",
        "charge",
        "100.00",
        "3.20",
        "96.80",
        "USD",
        "",
        _accounts("txn_ch"),
        "JE-100",
        "JE-200, JE-201",
        "matched",
        "",
    ]
    assert "1155" in by_txn["txn_ch"][13]  # the integration's own row of the GL map
    assert by_txn["txn_re"][8:11] == ["-25.00", "0.00", "-25.00"]
    assert by_txn["txn_re"][14] == "CM-7"
    assert by_txn["txn_dp"][5] == "Znode user 42"  # no email: the Znode user
    assert by_txn["txn_dp"][6:11] == ["adjustment", "dispute", "-50.00", "15.00", "-65.00"]
    assert by_txn["txn_dp"][14] == "JE-101"
    assert by_txn["txn_fx"][12] == "1.0834" and by_txn["txn_fx"][14] == "JE-102"
    assert by_txn["txn_fee"][4:6] == ["", ""]
    assert by_txn["txn_fee"][16:] == ["explained", "Stripe's fee of the account (Radar)"]
    assert by_txn["txn_adj"][16:] == ["unexplained", "unexplained: no payment"]
    assert all(line[13] for line in lines)  # every line names its accounts

    assert total[:3] == ["Total", "", "6 transactions"]
    sums = [sum(Decimal(line[i]) for line in lines) for i in (8, 9, 10)]
    assert (
        [Decimal(v) for v in total[8:11]]
        == sums
        == [
            Decimal("78.17"),
            Decimal("20.07"),
            Decimal("58.10"),
        ]
    )
    assert total[8:12] == ["78.17", "20.07", "58.10", "USD"]
    assert Decimal(total[10]) == Decimal(books.usd.amount_minor) / 100  # ties out


def test_a_payouts_xlsx_has_numbers_in_the_currencys_format_dates_and_the_same_totals(books):
    header, *lines, total = xlsx_rows(xlsx_of(Payout.objects.filter(pk=books.usd.pk)))

    assert tuple(cell.value for cell in header) == exports.COLUMNS
    charge = lines[0]
    assert [c.value for c in charge[:3]] == ["po_usd", datetime(2026, 11, 20), "txn_ch"]
    assert charge[3].value == datetime(2026, 11, 18, 9, 30)  # in TIME_ZONE (UTC)
    for cell, expected in zip(charge[8:11], ("100.00", "3.20", "96.80"), strict=True):
        assert cell.data_type == "n" and cell.number_format == "#,##0.00"
        assert Decimal(str(cell.value)) == Decimal(expected)
    assert [c.value for c in charge[13:17]] == [
        _accounts("txn_ch"),
        "JE-100",
        "JE-200, JE-201",
        "matched",
    ]
    assert lines[3][12].data_type == "n" and Decimal(str(lines[3][12].value)) == Decimal("1.0834")
    assert [c.value for c in total[:3]] == ["Total", None, "6 transactions"]
    assert [Decimal(str(c.value)) for c in total[8:11]] == [
        Decimal("78.17"),
        Decimal("20.07"),
        Decimal("58.10"),
    ]
    assert total[10].number_format == "#,##0.00" and total[11].value == "USD"


def test_a_range_exports_the_payouts_arriving_in_it_whole_with_totals_per_currency(books):
    payouts = exports.payouts_filter(arrival_from=date(2026, 11, 20), arrival_to=date(2026, 11, 25))

    _, *lines = parse_csv(csv_of(payouts))
    *rows, jpy_total, usd_total = lines
    assert sorted({row[0] for row in rows}) == ["po_jpy", "po_usd"]  # both ends included
    assert [row[0] for row in rows] == ["po_usd"] * 6 + ["po_jpy"]  # by arrival
    assert rows[-1][8:12] == ["5000", "180", "4820", "JPY"]
    assert rows[-1][14:16] == ["", ""]  # its sale is not posted, no payout entry
    assert jpy_total[:3] == ["Total", "", "1 transaction"]
    assert usd_total[:3] == ["Total", "", "6 transactions"]
    assert jpy_total[8:12] == ["5000", "180", "4820", "JPY"]
    assert usd_total[8:12] == ["78.17", "20.07", "58.10", "USD"]

    _, *xlsx_lines = xlsx_rows(xlsx_of(payouts))
    assert xlsx_lines[-3][8].number_format == "#,##0"  # JPY: no decimals
    assert [c.value for c in xlsx_lines[-2][8:12]] == [5000, 180, 4820, "JPY"]

    later = exports.payouts_filter(arrival_from=date(2026, 11, 21), arrival_to=date(2026, 11, 30))
    assert [row[0] for row in parse_csv(csv_of(later))[1:]] == ["po_jpy", "Total"]


def test_text_that_a_spreadsheet_would_run_as_a_formula_stays_text(books):
    Order.objects.filter(order_number="ORD-1").update(email='=HYPERLINK("http://x","y")')
    payout = Payout.objects.filter(pk=books.usd.pk)

    first = parse_csv(csv_of(payout))[1]
    assert first[5] == '\'=HYPERLINK("http://x","y")'
    assert first[8] == "100.00" and parse_csv(csv_of(payout))[2][8] == "-25.00"  # numbers as-is

    cell = xlsx_rows(xlsx_of(payout))[1][5]
    assert cell.data_type == "s" and cell.value == '=HYPERLINK("http://x","y")'


def test_the_look_ups_are_one_query_per_chunk_never_per_row(books, monkeypatch):
    monkeypatch.setattr(exports, "CHUNK", 2)
    with CaptureQueriesContext(connection) as queries:
        rows = list(exports.export_rows(payouts=Payout.objects.filter(pk=books.usd.pk)))
    assert len(rows) == 7  # six lines and the total
    journal = [q for q in queries if "reconciliation_journalentry" in q["sql"]]
    # Three chunks of two: each reads its payout documents, and the order documents of
    # its ledger keys (the last chunk, the account's fee and the adjustment, has none).
    assert len(journal) == 3 + 2
    # The rows, per chunk 3 look-ups, the GL map, and per payout its keys no order
    # entry will hold (3: booked to their own accounts, named so).
    assert len(queries) <= 1 + 3 * 3 + 3 + 3


def test_amounts_are_exact_decimals_even_where_the_table_cannot_hold_them():
    assert exports.amount_of(1999, "USD") == exports.Amount(Decimal("19.99"), 2)
    assert exports.amount_of(5125, "KWD") == exports.Amount(Decimal("5.125"), 3)
    assert exports.amount_of(500, "ISK") == exports.Amount(Decimal("5"), 0)
    assert exports.amount_of(550, "ISK") == exports.Amount(Decimal("5.50"), 2)  # legacy
    assert exports.amount_of(42, "ZZZ") == exports.Amount(42, None)  # minor units, as is
