"""The sandbox ERP's trial balance per account and currency (journal entries and the ledger
lines of credit memos) and its paged, date-filtered document lists."""

from __future__ import annotations

import pytest

from tests.sandbox.test_server import ERP_AUTH, call


def post(sandbox, kind: str, document: dict) -> dict:
    status, _, body = call(f"{sandbox.url}/erp/api/{kind}", "POST", document, ERP_AUTH)
    assert status == 201, body
    return body


def get(sandbox, path: str) -> tuple[int, dict]:
    status, _, body = call(f"{sandbox.url}/erp/api/{path}", headers=ERP_AUTH)
    return status, body


def entry(reference: str, amount: str, currency: str = "usd", day: str = "2026-11-30") -> dict:
    return {
        "external_reference": reference,
        "date": day,
        "currency": currency,
        "memo": "sale",
        "lines": [
            {"account": "1150", "debit": amount, "credit": "0"},
            {"account": "4000", "debit": "0", "credit": amount},
        ],
    }


def memo(reference: str, amount: str, currency: str = "usd", lines: bool = True) -> dict:
    document = {
        "external_reference": reference,
        "customer_reference": "znode-user-7",
        "date": "2026-12-01",
        "currency": currency,
        "amount": amount,
        "memo": "refund",
    }
    if lines:
        document["lines"] = [
            {"account": "4100", "debit": amount, "credit": "0"},
            {"account": "1150", "debit": "0", "credit": amount},
        ]
    return document


def row(account: str, currency: str, debit: str, credit: str, balance: str) -> dict:
    return {
        "account": account,
        "currency": currency,
        "debit": debit,
        "credit": credit,
        "balance": balance,
    }


# --- trial balance -----------------------------------------------------------------------------
def test_the_trial_balance_is_per_account_and_currency_and_counts_memo_lines(sandbox):
    post(sandbox, "journal-entries", entry("sale:1", "30.00"))
    post(sandbox, "journal-entries", entry("sale:2", "12.50"))
    post(sandbox, "journal-entries", entry("sale:3", "20.00", "eur"))
    post(sandbox, "credit-memos", memo("refund:1", "5.00"))
    post(sandbox, "credit-memos", memo("refund:2", "9.99", lines=False))  # no ledger lines

    status, balance = get(sandbox, "trial-balance")

    assert status == 200
    assert balance["accounts"] == [
        row("1150", "EUR", "20.00", "0", "20.00"),
        row("1150", "USD", "42.50", "5.00", "37.50"),
        row("4000", "EUR", "0", "20.00", "-20.00"),
        row("4000", "USD", "0", "42.50", "-42.50"),
        row("4100", "USD", "5.00", "0", "5.00"),
    ]
    assert balance["currencies"] == [
        {"currency": "EUR", "debit": "20.00", "credit": "20.00", "balanced": True},
        {"currency": "USD", "debit": "47.50", "credit": "47.50", "balanced": True},
    ]
    # Dollars and euros do not add up: no grand totals across currencies.
    assert (balance["total_debit"], balance["total_credit"], balance["balanced"]) == (
        None,
        None,
        True,
    )


def test_the_trial_balance_of_one_currency(sandbox):
    post(sandbox, "journal-entries", entry("sale:1", "30.00"))
    post(sandbox, "journal-entries", entry("sale:2", "20.00", "eur"))

    status, balance = get(sandbox, "trial-balance?currency=usd")

    assert status == 200
    assert [(r["account"], r["currency"]) for r in balance["accounts"]] == [
        ("1150", "USD"),
        ("4000", "USD"),
    ]
    assert (balance["total_debit"], balance["total_credit"], balance["balanced"]) == (
        "30.00",
        "30.00",
        True,
    )
    empty = get(sandbox, "trial-balance?currency=GBP")[1]
    assert (empty["accounts"], empty["currencies"], empty["total_debit"]) == ([], [], "0")
    assert empty["balanced"] is True


def test_balanced_is_judged_per_currency(sandbox):
    """Two entries that balance only if dollars and euros were the same money."""
    erp = sandbox.sandbox.systems["erp"]
    post(sandbox, "journal-entries", entry("sale:1", "30.00"))
    post(sandbox, "journal-entries", entry("sale:2", "30.00", "eur"))
    with erp.lock:  # books no ERP would accept through its API: one leg in each currency
        erp.state["journal_entries"]["JE-000001"]["lines"].pop()
        erp.state["journal_entries"]["JE-000002"]["lines"].pop(0)

    balance = get(sandbox, "trial-balance")[1]

    assert [(c["currency"], c["balanced"]) for c in balance["currencies"]] == [
        ("EUR", False),
        ("USD", False),
    ]
    assert balance["balanced"] is False


# --- lists -------------------------------------------------------------------------------------
def test_lists_page_oldest_first_with_a_link_to_the_next_page(sandbox):
    for number in range(1, 8):
        post(sandbox, "journal-entries", entry(f"sale:{number}", "1.00"))

    status, first = get(sandbox, "journal-entries?page_size=3")

    assert status == 200
    assert [d["external_reference"] for d in first["results"]] == ["sale:1", "sale:2", "sale:3"]
    assert first["count"] == 7
    assert first["next"] == f"{sandbox.url}/erp/api/journal-entries?page_size=3&page=2"
    third = get(sandbox, "journal-entries?page_size=3&page=3")[1]
    assert ([d["external_reference"] for d in third["results"]], third["next"]) == (
        ["sale:7"],
        None,
    )
    beyond = get(sandbox, "journal-entries?page_size=3&page=4")[1]
    assert (beyond["results"], beyond["count"], beyond["next"]) == ([], 7, None)
    default = get(sandbox, "journal-entries")[1]
    assert (len(default["results"]), default["next"]) == (7, None)  # 100 a page by default
    assert set(default["results"][0]) == {
        "id",
        "created_seq",
        "external_reference",
        "date",
        "currency",
        "memo",
        "lines",
    }


def test_a_page_follows_its_next_link_to_the_end(sandbox):
    for number in range(1, 6):
        post(sandbox, "credit-memos", memo(f"refund:{number}", "1.00"))
    seen, url = [], f"{sandbox.url}/erp/api/credit-memos?page_size=2"
    while url:
        status, _, page = call(url, headers=ERP_AUTH)
        assert status == 200
        seen += [d["external_reference"] for d in page["results"]]
        url = page["next"]
    assert seen == [f"refund:{n}" for n in range(1, 6)]


def test_date_from_keeps_the_documents_of_that_day_and_later(sandbox):
    post(sandbox, "journal-entries", entry("sale:1", "1.00", day="2026-11-29"))
    post(sandbox, "journal-entries", entry("sale:2", "1.00", day="2026-11-30"))
    post(sandbox, "journal-entries", entry("sale:3", "1.00", day="2026-12-01"))
    post(sandbox, "credit-memos", memo("refund:1", "1.00"))  # dated 2026-12-01

    listed = get(sandbox, "journal-entries?date_from=2026-11-30")[1]
    assert [d["external_reference"] for d in listed["results"]] == ["sale:2", "sale:3"]
    assert listed["count"] == 2
    memos = get(sandbox, "credit-memos?date_from=2026-12-02")[1]
    assert (memos["results"], memos["count"]) == ([], 0)
    both = get(sandbox, "journal-entries?date_from=2026-11-01&page_size=1")[1]
    assert both["next"].endswith("?date_from=2026-11-01&page_size=1&page=2")


def test_a_lookup_by_external_reference_still_finds_the_one_document(sandbox):
    post(sandbox, "journal-entries", entry("sale:1", "1.00"))
    post(sandbox, "journal-entries", entry("sale:2", "2.00"))
    found = get(sandbox, "journal-entries?external_reference=sale:2")[1]
    assert ([d["id"] for d in found["results"]], found["count"], found["next"]) == (
        ["JE-000002"],
        1,
        None,
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("page=0", "page must be a whole number from 1"),
        ("page=x", "page must be a whole number from 1"),
        ("page_size=501", "page_size must be a whole number from 1 to 500"),
        ("page_size=0", "page_size must be a whole number from 1 to 500"),
        ("date_from=30.11.2026", "date_from must be a date"),
    ],
)
def test_bad_list_parameters_are_refused(sandbox, query, message):
    for kind in ("journal-entries", "credit-memos"):
        status, body = get(sandbox, f"{kind}?{query}")
        assert status == 400 and message in body["error"]
