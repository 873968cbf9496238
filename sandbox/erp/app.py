"""A generic REST ERP: journal entries and credit memos keyed by external reference,
and a trial balance. This is the contract integrations/connectors/erp speaks.

    Authorization: Bearer <token>                (default token: sandbox-erp-token)
    POST /erp/api/journal-entries                 {external_reference, date, currency, memo,
                                                   lines: [{account, debit, credit, description}]}
    GET  /erp/api/journal-entries[?external_reference=REF][&date_from=YYYY-MM-DD]
                                  [&page=1][&page_size=100]
    GET  /erp/api/journal-entries/{id}
    POST /erp/api/credit-memos                    {external_reference, customer_reference, date,
                                                   currency, amount, memo, lines?}
    GET  /erp/api/credit-memos[?external_reference=REF][&date_from=...][&page=..][&page_size=..]
    GET  /erp/api/credit-memos/{id}
    GET  /erp/api/trial-balance[?currency=USD]
    GET  /erp/api/health

A repeated POST with the same external reference and the same content answers 200
with the stored document (idempotent replay); the same reference with different
content answers 422. Amounts are decimal strings; entries (and a memo's optional ledger
lines) must balance.

Lists answer ``{"results": [...], "count": <all that match>, "next": <URL of the next page
or null>}``, oldest first: ``page`` counts from 1, ``page_size`` is 100 by default and 500
at most; ``date_from`` keeps the documents dated that day or later.

The trial balance sums the lines of the journal entries and of the credit memos that carry
lines, per account and currency (a document's lines are in its currency): ``{"accounts":
[{"account", "currency", "debit", "credit", "balance"}], "currencies": [{"currency",
"debit", "credit", "balanced"}], "total_debit", "total_credit", "balanced"}``. Debits and
credits only add up within a currency: ``balanced`` is every currency's, and the totals
are the one currency's (null when the balance holds several; filter with ``currency``).
"""

from __future__ import annotations

import hmac
import re
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode

from sandbox.http import Request, Response, json_response
from sandbox.system import System

DEFAULT_TOKEN = "sandbox-erp-token"
PAGE_SIZE = 100
PAGE_SIZE_MAX = 500
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _money(value, field: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValueError(f"{field} is not a decimal amount") from None
    if amount < 0 or amount != amount.quantize(Decimal("0.001")):
        raise ValueError(f"{field} must be a non-negative amount with at most 3 decimals")
    return amount


class Erp(System):
    name = "erp"

    def reset(self) -> None:
        self.state = {
            "tokens": [DEFAULT_TOKEN],
            "journal_entries": {},
            "credit_memos": {},
            "counters": {"JE": 0, "CM": 0},
        }

    def authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        if any(hmac.compare_digest(token, t) for t in self.state["tokens"]):
            return None
        return json_response({"error": "invalid or missing bearer token"}, 401)

    def register_routes(self) -> None:
        r = self.router
        r.add("GET", "/api/health", lambda req: json_response({"ok": True}))
        r.add("POST", "/api/journal-entries", self.create_journal_entry)
        r.add("GET", "/api/journal-entries", lambda req: self.list_docs(req, "journal_entries"))
        r.add("GET", "/api/journal-entries/{id}", lambda req: self.get_doc(req, "journal_entries"))
        r.add("POST", "/api/credit-memos", self.create_credit_memo)
        r.add("GET", "/api/credit-memos", lambda req: self.list_docs(req, "credit_memos"))
        r.add("GET", "/api/credit-memos/{id}", lambda req: self.get_doc(req, "credit_memos"))
        r.add("GET", "/api/trial-balance", self.trial_balance)

    # --- documents ---------------------------------------------------------------------
    def _store(self, kind: str, prefix: str, content: dict) -> Response:
        reference = content["external_reference"]
        docs = self.state[kind]
        for doc in docs.values():
            if doc["external_reference"] == reference:
                stored = {k: v for k, v in doc.items() if k not in ("id", "created_seq")}
                if stored == content:
                    return json_response(doc, 200)
                return json_response(
                    {
                        "error": f"external_reference {reference} already used "
                        "with different content",
                        "existing_id": doc["id"],
                    },
                    422,
                )
        self.state["counters"][prefix] += 1
        number = self.state["counters"][prefix]
        doc = {"id": f"{prefix}-{number:06d}", "created_seq": number, **content}
        docs[doc["id"]] = doc
        self.mark(f"{prefix}:{reference}")  # e.g. JE:sale:ch_… (System.mark)
        return json_response(doc, 201)

    def _validate_lines(self, lines) -> list[dict]:
        if not isinstance(lines, list) or len(lines) < 2:
            raise ValueError("lines must hold at least two entries")
        clean, debit, credit = [], Decimal(0), Decimal(0)
        for index, line in enumerate(lines):
            if not isinstance(line, dict) or not line.get("account"):
                raise ValueError(f"lines[{index}].account is required")
            d = _money(line.get("debit", "0"), f"lines[{index}].debit")
            c = _money(line.get("credit", "0"), f"lines[{index}].credit")
            if (d == 0) == (c == 0):
                raise ValueError(f"lines[{index}] needs exactly one of debit or credit")
            debit, credit = debit + d, credit + c
            clean.append(
                {
                    "account": str(line["account"]),
                    "debit": str(d),
                    "credit": str(c),
                    "description": str(line.get("description", "")),
                }
            )
        if debit != credit:
            raise ValueError(f"entry does not balance: debit {debit} != credit {credit}")
        return clean

    def create_journal_entry(self, request: Request) -> Response:
        try:
            data = request.json() or {}
            if not data.get("external_reference"):
                raise ValueError("external_reference is required")
            content = {
                "external_reference": str(data["external_reference"]),
                "date": str(data.get("date", "")),
                "currency": str(data.get("currency", "")).upper(),
                "memo": str(data.get("memo", "")),
                "lines": self._validate_lines(data.get("lines")),
            }
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
        return self._store("journal_entries", "JE", content)

    def create_credit_memo(self, request: Request) -> Response:
        try:
            data = request.json() or {}
            if not data.get("external_reference"):
                raise ValueError("external_reference is required")
            content = {
                "external_reference": str(data["external_reference"]),
                "customer_reference": str(data.get("customer_reference", "")),
                "date": str(data.get("date", "")),
                "currency": str(data.get("currency", "")).upper(),
                "amount": str(_money(data.get("amount"), "amount")),
                "memo": str(data.get("memo", "")),
            }
            if data.get("lines"):
                content["lines"] = self._validate_lines(data["lines"])
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
        return self._store("credit_memos", "CM", content)

    def list_docs(self, request: Request, kind: str) -> Response:
        query = request.query
        try:
            page = _whole(query.get("page", "1"), "page", 1, None)
            size = _whole(query.get("page_size", str(PAGE_SIZE)), "page_size", 1, PAGE_SIZE_MAX)
            date_from = query.get("date_from")
            if date_from is not None and not DAY.match(date_from):
                raise ValueError("date_from must be a date, YYYY-MM-DD")
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
        reference = query.get("external_reference")
        docs = sorted(self.state[kind].values(), key=lambda d: d["created_seq"])
        if reference is not None:
            docs = [d for d in docs if d["external_reference"] == reference]
        if date_from is not None:
            # Dates are YYYY-MM-DD (or start so): as text they sort as the days do.
            docs = [d for d in docs if DAY.match(d["date"][:10]) and d["date"][:10] >= date_from]
        start = (page - 1) * size
        more = start + size < len(docs)
        return json_response(
            {
                "results": docs[start : start + size],
                "count": len(docs),
                "next": _page_url(request, {**query, "page": str(page + 1)}) if more else None,
            }
        )

    def get_doc(self, request: Request, kind: str) -> Response:
        doc = self.state[kind].get(request.params["id"])
        if doc is None:
            return json_response({"error": "not found"}, 404)
        return json_response(doc)

    def trial_balance(self, request: Request) -> Response:
        wanted = request.query.get("currency")
        wanted = wanted.upper() if wanted else None
        totals: dict[tuple[str, str], list[Decimal]] = {}
        documents = [*self.state["journal_entries"].values(), *self.state["credit_memos"].values()]
        for doc in documents:
            if wanted is not None and doc["currency"] != wanted:
                continue
            for line in doc.get("lines", ()):
                pair = totals.setdefault((line["account"], doc["currency"]), [Decimal(0)] * 2)
                pair[0] += Decimal(line["debit"])
                pair[1] += Decimal(line["credit"])
        accounts = [
            {
                "account": account,
                "currency": currency,
                "debit": str(d),
                "credit": str(c),
                "balance": str(d - c),
            }
            for (account, currency), (d, c) in sorted(totals.items())
        ]
        per_currency: dict[str, list[Decimal]] = {}
        for (_, currency), (d, c) in totals.items():
            pair = per_currency.setdefault(currency, [Decimal(0)] * 2)
            pair[0] += d
            pair[1] += c
        currencies = [
            {"currency": cur, "debit": str(d), "credit": str(c), "balanced": d == c}
            for cur, (d, c) in sorted(per_currency.items())
        ]
        total_debit = total_credit = "0"
        if len(currencies) == 1:
            total_debit, total_credit = currencies[0]["debit"], currencies[0]["credit"]
        elif currencies:  # debits in USD and EUR add up to nothing
            total_debit = total_credit = None
        return json_response(
            {
                "accounts": accounts,
                "currencies": currencies,
                "total_debit": total_debit,
                "total_credit": total_credit,
                "balanced": all(c["balanced"] for c in currencies),
            }
        )


def _whole(value: str, name: str, low: int, high: int | None) -> int:
    if not value.isdigit() or int(value) < low or (high is not None and int(value) > high):
        bounds = f"from {low}" + (f" to {high}" if high is not None else "")
        raise ValueError(f"{name} must be a whole number {bounds}")
    return int(value)


def _page_url(request: Request, query: dict[str, str]) -> str:
    """The same list's URL with ``query``: absolute when the request names its host."""
    path = f"{request.path}?{urlencode(query)}"
    host = request.headers.get("Host")
    return f"http://{host}{path}" if host else path
