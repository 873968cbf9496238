"""Ledger books for the finance exports' tests: payouts as imported and booked,
built in the database (no sandbox), and the exports parsed back."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import openpyxl

from integrations.models import Connection, Integration
from payments.models import Order
from reconciliation import exports
from reconciliation.choices import EntryKind, MatchedAs, TieOut
from reconciliation.models import BalanceTransaction, JournalEntry, Payout

CREATED = datetime(2026, 11, 18, 9, 30, tzinfo=UTC)


@dataclass
class Books:
    """Two payouts as imported and booked: ``usd`` (po_usd, arriving 2026-11-20: a
    charge, its partial refund, a dispute with its fee, a charge settled from EUR, a
    fee of the account and an unexplained adjustment) and ``jpy`` (po_jpy, 2026-11-25:
    one charge); and one outside every range (po_old, 2026-10-01)."""

    integration: Integration
    usd: Payout
    jpy: Payout
    old: Payout


def _order(integration, number, *, email="", user=None, currency="USD", minor=10000):
    return Order.objects.create(
        integration=integration,
        znode_order_id=int(number.rsplit("-", 1)[1]),
        order_number=number,
        znode_user_id=user,
        email=email,
        currency=currency,
        total=Decimal(minor) / 100,
        amount_minor=minor,
    )


def _payout(integration, po, amount, currency, arrival: date, tie_out=TieOut.TIED_OUT):
    return Payout.objects.create(
        integration=integration,
        stripe_payout_id=po,
        amount_minor=amount,
        currency=currency,
        status="paid",
        arrival_date=datetime(arrival.year, arrival.month, arrival.day, tzinfo=UTC),
        tie_out=tie_out,
    )


def _txn(payout, txn_id, kind, category, gross, fee, *, order=None, key="", **extra):
    extra.setdefault("matched_as", category if order else MatchedAs.OTHER)
    extra.setdefault("explained", order is not None)
    return BalanceTransaction.objects.create(
        integration=payout.integration,
        payout=payout,
        stripe_txn_id=txn_id,
        type=kind,
        reporting_category=category,
        gross_minor=gross,
        fee_minor=fee,
        net_minor=gross - fee,
        currency=payout.currency,
        created=extra.pop("created", CREATED),
        order=order,
        ledger_key=key,
        **extra,
    )


def _entry(integration, reference, kind, currency, document="", **extra):
    return JournalEntry.objects.create(
        integration=integration,
        external_reference=reference,
        kind=kind,
        date=date(2026, 11, 20),
        currency=currency,
        total=Decimal("1.00"),
        erp_document_id=document,
        posted_at=CREATED if document else None,
        **extra,
    )


def build_books(*, stripe: Connection, znode: Connection) -> Books:
    integration = Integration.objects.create(name="fin", znode=znode, stripe=stripe)
    ana = _order(integration, "ORD-1", email="ana@example.com")
    bob = _order(integration, "ORD-2", user=42)
    eve = _order(integration, "ORD-3", email="eve@example.com", currency="EUR", minor=5000)
    ken = _order(integration, "ORD-4", email="ken@example.com", currency="JPY", minor=5000)

    usd = _payout(integration, "po_usd", 5810, "USD", date(2026, 11, 20))
    _txn(usd, "txn_ch", "charge", "charge", 10000, 320, order=ana, key="ch_1", source_id="ch_1")
    _txn(usd, "txn_re", "refund", "refund", -2500, 0, order=ana, key="re_1", source_id="re_1")
    _txn(
        usd, "txn_dp", "adjustment", "dispute", -5000, 1500, order=bob, key="txn_dp", source_id="dp"
    )
    _txn(
        usd,
        "txn_fx",
        "charge",
        "charge",
        5417,
        187,
        order=eve,
        key="ch_3",
        source_id="ch_3",
        exchange_rate=Decimal("1.083400000000"),
    )
    _txn(
        usd,
        "txn_fee",
        "stripe_fee",
        "fee",
        -200,
        0,
        matched_as=MatchedAs.FEE,
        explained=True,
        unmatched_reason="Stripe's fee of the account (Radar)",
    )
    _txn(
        usd,
        "txn_adj",
        "adjustment",
        "other_adjustment",
        100,
        0,
        unmatched_reason="unexplained: no payment",
    )
    # The payout's own row: its money leaving for the bank. Not a line of the export.
    _txn(
        usd, "txn_po", "payout", "payout", -5810, 0, matched_as=MatchedAs.PAYOUT, source_id="po_usd"
    )

    jpy = _payout(integration, "po_jpy", 4820, "JPY", date(2026, 11, 25))
    _txn(jpy, "txn_jp", "charge", "charge", 5000, 180, order=ken, key="ch_4", source_id="ch_4")
    old = _payout(integration, "po_old", 100, "USD", date(2026, 10, 1))
    _txn(old, "txn_old", "adjustment", "other_adjustment", 100, 0, explained=True)

    _entry(integration, "sale-ch_1", EntryKind.SALE, "USD", "JE-100", ledger_key="ch_1", order=ana)
    _entry(integration, "cm-re_1", EntryKind.CREDIT_MEMO, "USD", "CM-7", ledger_key="re_1")
    _entry(integration, "dispute-txn_dp", EntryKind.DISPUTE, "USD", "JE-101", ledger_key="txn_dp")
    _entry(integration, "sale-ch_3", EntryKind.SALE, "EUR", "JE-102", ledger_key="ch_3")
    _entry(integration, "sale-ch_4", EntryKind.SALE, "JPY", "", ledger_key="ch_4")  # not posted
    _entry(integration, "payout-po_usd", EntryKind.PAYOUT, "USD", "JE-200", payout=usd)
    _entry(integration, "fx-po_usd", EntryKind.FX, "EUR", "JE-201", payout=usd)
    return Books(integration=integration, usd=usd, jpy=jpy, old=old)


def parse_csv(content: bytes) -> list[list[str]]:
    assert content.startswith("\ufeff".encode())  # so spreadsheets read UTF-8
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))


def csv_of(payouts) -> bytes:
    return "".join(exports.export_csv(payouts=payouts)).encode()


def xlsx_rows(content: bytes) -> list[tuple]:
    sheet = openpyxl.load_workbook(io.BytesIO(content))["Transactions"]
    return list(sheet.iter_rows())


def xlsx_of(payouts) -> bytes:
    target = io.BytesIO()
    exports.export_xlsx(payouts=payouts, target=target)
    return target.getvalue()
