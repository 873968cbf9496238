"""Finance exports: the balance transactions of one payout, or of every payout that
arrived in a date range (by the payout's arrival date, so each payout comes whole), as
CSV or XLSX, with a totals row per currency.

Bounded memory whatever the payout's size: the transactions are read with
``.iterator(chunk_size=CHUNK)``; what a row needs from other tables (its payout, the
journal entries' ERP documents, the GL map) is read once per chunk, in one query per
table; the CSV is written by the standard library's ``csv`` writer as it is read (a
streamed response; tablib and django-import-export build the whole dataset in memory
first, which a 50,000-line payout cannot afford), the XLSX by openpyxl's write-only
workbook (rows go to a temporary file, never a sheet in memory). Neither format is
written by hand: quoting and escaping are the libraries'. Money is exact: minor units
are summed as integers and shown in the currency's major units with
:func:`payments.money.from_minor_units` (``Decimal``).
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import islice
from typing import IO

from django.db.models import F, Q, QuerySet
from django.http import FileResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.http import content_disposition_header
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font

from integrations.models import Integration
from payments import money
from reconciliation import ledger
from reconciliation.choices import EntryKind
from reconciliation.models import BalanceTransaction, JournalEntry, Payout

CHUNK = 500
"""Transactions read per database round trip, and per batch of look-ups."""

COLUMNS: tuple[str, ...] = (
    "payout",
    "payout date",
    "transaction",
    "created",
    "order number",
    "customer",
    "type",
    "reporting category",
    "gross",
    "fee",
    "net",
    "currency",
    "exchange rate",
    "GL accounts",
    "order ERP document",
    "payout ERP document",
    "matched/explained",
    "reason",
)

TOTAL = "Total"
"""The payout cell of a totals row (one per currency, after the transactions)."""

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMATS = {"csv": CSV_TYPE, "xlsx": XLSX_TYPE}

# The journal entries an order's money was booked by (the "order ERP document"); the
# payout's own entries are the others.
_ORDER_KINDS = (EntryKind.SALE, EntryKind.CREDIT_MEMO, EntryKind.REFUND_FAILURE, EntryKind.DISPUTE)


@dataclass(frozen=True, slots=True)
class Amount:
    """An exact amount to show: ``value`` in major units with ``decimals`` decimals, or,
    for a currency the platform's table does not know, the minor units themselves
    (``decimals`` None)."""

    value: Decimal | int
    decimals: int | None


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One line of an export: a balance transaction, or a currency's totals
    (``payout`` is :data:`TOTAL`, ``transaction`` the number of transactions summed)."""

    payout: str
    payout_date: date | None
    transaction: str
    created: datetime | None
    order_number: str
    customer: str
    type: str
    reporting_category: str
    gross: Amount
    fee: Amount
    net: Amount
    currency: str
    exchange_rate: Decimal | None
    gl_accounts: str
    order_erp_document: str
    payout_erp_document: str
    status: str
    reason: str


# --- what is exported ----------------------------------------------------------------------
def integration_named(*, name: str) -> Integration | None:
    return Integration.objects.filter(name=name).first()


def payouts_filter(
    *,
    integration: Integration | None = None,
    arrival_from: date | None = None,
    arrival_to: date | None = None,
    tie_out: str | None = None,
) -> QuerySet[Payout]:
    """Payouts, the latest arrival first; ``arrival_from`` and ``arrival_to`` are days
    in ``TIME_ZONE``, both included."""
    rows = Payout.objects.all()
    zone = timezone.get_current_timezone()
    if arrival_from is not None:
        rows = rows.filter(arrival_date__gte=datetime.combine(arrival_from, time.min, zone))
    if arrival_to is not None:
        after = arrival_to + timedelta(days=1)
        rows = rows.filter(arrival_date__lt=datetime.combine(after, time.min, zone))
    if integration is not None:
        rows = rows.filter(integration=integration)
    if tie_out:
        rows = rows.filter(tie_out=tie_out)
    return rows


def payouts_by_stripe_id(
    *, stripe_payout_id: str, integration: Integration | None = None
) -> list[Payout]:
    """The payouts of that Stripe id (one per integration that imported it: two
    integrations may share a Stripe account), at most two."""
    rows = Payout.objects.filter(stripe_payout_id=stripe_payout_id)
    if integration is not None:
        rows = rows.filter(integration=integration)
    return list(rows.select_related("integration")[:2])


def export_transactions(*, payouts: QuerySet[Payout]) -> QuerySet[BalanceTransaction]:
    """The transactions that make up the payouts, in payout and booking order; each
    payout's own row (its money leaving for the bank) is left out, as in Stripe's
    payout reconciliation report, so a payout's nets add up to its amount."""
    return (
        BalanceTransaction.objects.filter(payout__in=payouts.values("pk"))
        .exclude(type="payout", source_id=F("payout__stripe_payout_id"))
        .select_related("order")
        .order_by("payout__arrival_date", "payout_id", "created", "id")
    )


# --- the rows ------------------------------------------------------------------------------
def amount_of(minor: int, code: str) -> Amount:
    """Minor units as an exact amount to show (see :class:`Amount`)."""
    try:
        return Amount(money.from_minor_units(minor, code), money.currency(code).exponent)
    except money.UnknownCurrency:
        return Amount(minor, None)
    except money.InvalidAmount:
        # A legacy fraction the platform's precision cannot hold (ISK 550): shown exactly
        # at Stripe's precision rather than refused mid-file.
        decimals = money.currency(code).stripe_exponent
        return Amount(Decimal(minor).scaleb(-decimals), decimals)


def _status(txn: BalanceTransaction) -> str:
    if txn.order_id:
        return "matched"
    return "explained" if txn.explained else "unexplained"


def _customer(txn: BalanceTransaction) -> str:
    order = txn.order
    if order is None:
        return ""
    if order.email:
        return order.email
    return f"Znode user {order.znode_user_id}" if order.znode_user_id is not None else ""


@dataclass
class _Lookups:
    """What the rows of one chunk need from other tables, read in one query each."""

    payouts: dict[int, Payout]
    payout_documents: dict[int, str]
    order_documents: dict[tuple[int, str], str]


def _joined(pairs: Iterable[tuple[object, str]]) -> dict:
    joined: dict = {}
    for key, document in pairs:
        joined[key] = f"{joined[key]}, {document}" if key in joined else document
    return joined


def _lookups(chunk: list[BalanceTransaction]) -> _Lookups:
    payout_ids = {txn.payout_id for txn in chunk}
    payouts = Payout.objects.filter(pk__in=payout_ids).only(
        "id", "stripe_payout_id", "arrival_date", "integration_id"
    )
    posted = JournalEntry.objects.exclude(erp_document_id="").order_by("id")
    payout_documents = posted.filter(payout_id__in=payout_ids).values_list(
        "payout_id", "erp_document_id"
    )
    keys: dict[int, set[str]] = {}
    for txn in chunk:
        if txn.ledger_key:
            keys.setdefault(txn.integration_id, set()).add(txn.ledger_key)
    order_documents: Iterable[tuple[tuple[int, str], str]] = ()
    if keys:
        wanted = Q()
        for integration_id, ledger_keys in keys.items():
            wanted |= Q(integration_id=integration_id, ledger_key__in=ledger_keys)
        found = posted.filter(wanted, kind__in=_ORDER_KINDS).values_list(
            "integration_id", "ledger_key", "erp_document_id"
        )
        order_documents = (((i, k), d) for i, k, d in found)
    return _Lookups(
        payouts={p.pk: p for p in payouts},
        payout_documents=_joined(payout_documents),
        order_documents=_joined(order_documents),
    )


PAYOUTS_KEPT = 16
"""Payouts whose never-booked keys an export keeps at once."""


@dataclass
class _Totals:
    count: int = 0
    gross: int = 0
    fee: int = 0
    net: int = 0


@dataclass
class _GlMaps:
    """Each integration's GL map, read the first time one of its rows comes, and each
    payout's keys no order entry will hold (:func:`ledger.unbooked_keys`: booked to
    their own account, not clearing), read when its first row comes (a few payouts
    kept: an export streams payout after payout)."""

    maps: dict[int, ledger.GlMap] = field(default_factory=dict)
    unbooked: dict[int, dict[str, str]] = field(default_factory=dict)

    def accounts(self, txn: BalanceTransaction, payout: Payout) -> str:
        gl = self.maps.get(txn.integration_id)
        if gl is None:
            integration = Integration.objects.get(pk=txn.integration_id)
            gl = self.maps[txn.integration_id] = ledger.gl_map(integration)
        unbooked = self.unbooked.get(payout.pk)
        if unbooked is None:
            if len(self.unbooked) >= PAYOUTS_KEPT:
                self.unbooked.clear()
            unbooked = self.unbooked[payout.pk] = ledger.unbooked_keys(payout)
        return "; ".join(ledger.transaction_accounts(gl, txn, unbooked))


def export_rows(*, payouts: QuerySet[Payout]) -> Iterator[ExportRow]:
    """The rows of an export of ``payouts``: their transactions (see
    :func:`export_transactions`), then a totals row per currency (sums of gross, fee
    and net, exact)."""
    rows = export_transactions(payouts=payouts).iterator(chunk_size=CHUNK)
    totals: dict[str, _Totals] = {}
    gl = _GlMaps()
    while chunk := list(islice(rows, CHUNK)):
        found = _lookups(chunk)
        for txn in chunk:
            payout = found.payouts[txn.payout_id]
            sums = totals.setdefault(txn.currency, _Totals())
            sums.count += 1
            sums.gross += txn.gross_minor
            sums.fee += txn.fee_minor
            sums.net += txn.net_minor
            yield ExportRow(
                payout=payout.stripe_payout_id,
                payout_date=timezone.localdate(payout.arrival_date)
                if payout.arrival_date
                else None,
                transaction=txn.stripe_txn_id,
                created=txn.created,
                order_number=txn.order.order_number if txn.order else "",
                customer=_customer(txn),
                type=txn.type,
                reporting_category=txn.reporting_category,
                gross=amount_of(txn.gross_minor, txn.currency),
                fee=amount_of(txn.fee_minor, txn.currency),
                net=amount_of(txn.net_minor, txn.currency),
                currency=txn.currency,
                exchange_rate=txn.exchange_rate,
                gl_accounts=gl.accounts(txn, payout),
                order_erp_document=found.order_documents.get(
                    (txn.integration_id, txn.ledger_key), ""
                )
                if txn.ledger_key
                else "",
                payout_erp_document=found.payout_documents.get(txn.payout_id, ""),
                status=_status(txn),
                reason=txn.unmatched_reason,
            )
    for code in sorted(totals):
        sums = totals[code]
        yield ExportRow(
            payout=TOTAL,
            payout_date=None,
            transaction=f"{sums.count} transaction{'' if sums.count == 1 else 's'}",
            created=None,
            order_number="",
            customer="",
            type="",
            reporting_category="",
            gross=amount_of(sums.gross, code),
            fee=amount_of(sums.fee, code),
            net=amount_of(sums.net, code),
            currency=code,
            exchange_rate=None,
            gl_accounts="",
            order_erp_document="",
            payout_erp_document="",
            status="",
            reason="",
        )


# --- CSV -----------------------------------------------------------------------------------
class _Lines:
    """What ``csv.writer`` writes to: each ``writerow`` returns its line."""

    def write(self, line: str) -> str:
        return line


# A spreadsheet runs a cell that starts with one of these as a formula: text (an email,
# a reason) is prefixed with "'" so it stays text; numbers are never text cells.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text(value: str) -> str:
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def _currency(row: ExportRow) -> str:
    return row.currency if row.gross.decimals is not None else f"{row.currency} (minor units)"


def _csv_amount(amount: Amount) -> str:
    return format(amount.value, "f")


def _csv_cells(row: ExportRow) -> list[str]:
    return [
        _text(row.payout),
        row.payout_date.isoformat() if row.payout_date else "",
        _text(row.transaction),
        timezone.localtime(row.created).isoformat() if row.created else "",
        _text(row.order_number),
        _text(row.customer),
        _text(row.type),
        _text(row.reporting_category),
        _csv_amount(row.gross),
        _csv_amount(row.fee),
        _csv_amount(row.net),
        _currency(row),
        format(row.exchange_rate.normalize(), "f") if row.exchange_rate is not None else "",
        _text(row.gl_accounts),
        _text(row.order_erp_document),
        _text(row.payout_erp_document),
        row.status,
        _text(row.reason),
    ]


def export_csv(*, payouts: QuerySet[Payout], lines_per_chunk: int = 500) -> Iterator[str]:
    """The export as CSV text, a few hundred lines per piece (for a streamed
    response). UTF-8 with a byte order mark, so spreadsheets read the names right; times
    are ISO 8601 in ``TIME_ZONE``, amounts plain decimals in major units."""
    writer = csv.writer(_Lines())
    lines = ["\ufeff" + writer.writerow(COLUMNS)]
    for row in export_rows(payouts=payouts):
        lines.append(writer.writerow(_csv_cells(row)))
        if len(lines) >= lines_per_chunk:
            yield "".join(lines)
            lines = []
    yield "".join(lines)


# --- XLSX ----------------------------------------------------------------------------------
_WIDTHS = (30, 12, 30, 20, 16, 28, 14, 18, 14, 12, 14, 9, 14, 36, 22, 22, 16, 40)


def _number_format(decimals: int | None) -> str:
    return "#,##0" if not decimals else "#,##0." + "0" * decimals


class _Sheet:
    """Cells of a write-only sheet: money as numbers with the currency's decimals as
    their format, times as dates, text always as text (never a formula)."""

    def __init__(self, sheet) -> None:
        self.sheet = sheet

    def text(self, value: str) -> WriteOnlyCell | str:
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
        if not value.startswith("="):
            return value
        cell = WriteOnlyCell(self.sheet, value=value)
        cell.data_type = "s"
        return cell

    def number(self, value: Decimal | int | None, number_format: str) -> WriteOnlyCell | None:
        if value is None:
            return None
        cell = WriteOnlyCell(self.sheet, value=value)
        cell.number_format = number_format
        return cell

    def money(self, amount: Amount) -> WriteOnlyCell:
        return self.number(amount.value, _number_format(amount.decimals))

    def moment(self, value: date | datetime | None) -> WriteOnlyCell | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            # Excel has no time zones: the time as read in TIME_ZONE.
            value = timezone.localtime(value).replace(tzinfo=None)
            return self.number(value, "yyyy-mm-dd hh:mm:ss")
        return self.number(value, "yyyy-mm-dd")


def export_xlsx(*, payouts: QuerySet[Payout], target: str | IO[bytes]) -> None:
    """Write the export as an XLSX workbook (one sheet, "Transactions") to ``target``
    (a path or a binary file)."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Transactions")
    for index, width in enumerate(_WIDTHS):
        sheet.column_dimensions[chr(ord("A") + index)].width = width
    sheet.freeze_panes = "A2"
    cells = _Sheet(sheet)
    bold = Font(bold=True)
    header = []
    for name in COLUMNS:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for row in export_rows(payouts=payouts):
        sheet.append(
            [
                cells.text(row.payout),
                cells.moment(row.payout_date),
                cells.text(row.transaction),
                cells.moment(row.created),
                cells.text(row.order_number),
                cells.text(row.customer),
                cells.text(row.type),
                cells.text(row.reporting_category),
                cells.money(row.gross),
                cells.money(row.fee),
                cells.money(row.net),
                cells.text(_currency(row)),
                cells.number(row.exchange_rate, "0.0#########"),
                cells.text(row.gl_accounts),
                cells.text(row.order_erp_document),
                cells.text(row.payout_erp_document),
                cells.text(row.status),
                cells.text(row.reason),
            ]
        )
    workbook.save(target)


# --- as a download -------------------------------------------------------------------------
def export_response(
    *, payouts: QuerySet[Payout], export_format: str, filename: str
) -> StreamingHttpResponse | FileResponse:
    """The export as an attachment ``<filename>.<format>``: the CSV streamed as it is
    read, the XLSX from a temporary file once openpyxl has closed the workbook."""
    if export_format == "csv":
        response = StreamingHttpResponse(export_csv(payouts=payouts), content_type=CSV_TYPE)
        response["Content-Disposition"] = content_disposition_header(
            as_attachment=True, filename=f"{filename}.csv"
        )
        return response
    if export_format != "xlsx":
        raise ValueError(f"no export format {export_format!r}: csv or xlsx")
    # The response closes (and so deletes) the file when it has been sent.
    spool = tempfile.TemporaryFile()  # noqa: SIM115
    export_xlsx(payouts=payouts, target=spool)
    spool.seek(0)
    return FileResponse(
        spool, as_attachment=True, filename=f"{filename}.xlsx", content_type=XLSX_TYPE
    )
