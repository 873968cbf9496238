"""ERP facts ⇄ wire: a journal entry as the platform books it, and the generic REST
body it becomes (``client.py`` describes the contract; an ERP-specific client
subclass re-encodes it with ``encode_journal_entry``). Pure functions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from integrations.kernel import exceptions as exc


@dataclass(frozen=True)
class JournalLine:
    account: str
    debit: Decimal = Decimal(0)
    credit: Decimal = Decimal(0)
    description: str = ""


@dataclass(frozen=True)
class JournalEntry:
    """A balanced entry; ``external_reference`` is its idempotency key in the ERP."""

    external_reference: str
    date: date
    currency: str
    memo: str
    lines: tuple[JournalLine, ...]


@dataclass(frozen=True)
class CreditMemo:
    """Money given back to a customer; ``external_reference`` keys it in the ERP."""

    external_reference: str
    customer_reference: str
    date: date
    currency: str
    amount: Decimal
    memo: str
    lines: tuple[JournalLine, ...] = ()
    """Its ledger lines, where given (balanced, like a journal entry's)."""


def credit_memo_to_wire(memo: CreditMemo) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_reference": memo.external_reference,
        "customer_reference": memo.customer_reference,
        "date": memo.date.isoformat(),
        "currency": memo.currency,
        "amount": str(memo.amount),
        "memo": memo.memo,
    }
    if memo.lines:
        lines = [_line_to_wire(line) for line in memo.lines]
        check_balanced(lines)
        body["lines"] = lines
    return body


def journal_entry_to_wire(entry: JournalEntry) -> dict[str, Any]:
    return {
        "external_reference": entry.external_reference,
        "date": entry.date.isoformat(),
        "currency": entry.currency,
        "memo": entry.memo,
        "lines": [_line_to_wire(line) for line in entry.lines],
    }


def _line_to_wire(line: JournalLine) -> dict[str, str]:
    return {
        "account": line.account,
        "debit": str(line.debit),
        "credit": str(line.credit),
        "description": line.description,
    }


def check_balanced(lines: Sequence[Mapping[str, Any]]) -> None:
    """Refuse to send an entry that does not balance (Decimal, never float)."""
    if len(lines) < 2:
        raise exc.DataError("a journal entry needs at least two lines")
    debit = sum((Decimal(str(line.get("debit") or 0)) for line in lines), Decimal(0))
    credit = sum((Decimal(str(line.get("credit") or 0)) for line in lines), Decimal(0))
    if debit != credit:
        raise exc.DataError(f"journal entry does not balance: debit {debit} != credit {credit}")


@dataclass(frozen=True)
class ErpDocument:
    """What the ERP answered for a posted document."""

    id: str
    external_reference: str
    date: str = ""
    """The document's date as the ERP holds it (ISO, empty when it sent none)."""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


def document_from_wire(raw: Mapping[str, Any]) -> ErpDocument:
    return ErpDocument(
        id=str(raw.get("id") or ""),
        external_reference=str(raw.get("external_reference") or ""),
        date=str(raw.get("date") or ""),
        raw=raw,
    )
