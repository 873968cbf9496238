"""The finance API (reconciliation/api.py): who may call it, what it answers, bad
parameters, and its OpenAPI schema."""

from __future__ import annotations

import base64
import io
import re
from decimal import Decimal

import openpyxl
import pytest
import yaml
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import Client

from reconciliation import exports
from tests.support.books import build_books, parse_csv

pytestmark = pytest.mark.django_db


@pytest.fixture
def books(stripe_connection, znode_connection):
    return build_books(stripe=stripe_connection, znode=znode_connection)


API = "/api/reconciliation"
PASSWORD = "correct horse battery staple"


def basic(username: str, password: str = PASSWORD) -> dict:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


@pytest.fixture
def finance(django_user_model):
    """A script's user: the finance permission, no staff status."""
    user = django_user_model.objects.create_user("finance", password=PASSWORD)
    user.user_permissions.add(Permission.objects.get(codename="export_payout"))
    return user


@pytest.fixture
def staff(django_user_model):
    """Staff who may view payouts in the admin, but not export them."""
    user = django_user_model.objects.create_user("staff", password=PASSWORD, is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_payout"))
    return user


def test_the_api_needs_the_finance_role(client, books, finance, staff, admin_user):
    urls = [
        f"{API}/payouts/",
        f"{API}/payouts/po_usd/",
        f"{API}/payouts/po_usd/transactions/",
        f"{API}/payouts/po_usd/export/?format=csv",
        f"{API}/exports/?arrival_from=2026-11-01&arrival_to=2026-11-30",
    ]
    for url in urls:
        anonymous = client.get(url)
        assert anonymous.status_code == 401, url
        assert anonymous["WWW-Authenticate"].startswith("Basic"), url
        assert client.get(url, **basic("finance", "wrong")).status_code == 401, url
        refused = client.get(url, **basic("staff"))
        assert refused.status_code == 403, url
        assert "reconciliation.export_payout" in refused.json()["detail"], url
        assert client.get(url, **basic("finance")).status_code == 200, url

    client.force_login(staff)  # the admin's session: the same rule
    assert client.get(f"{API}/payouts/").status_code == 403
    client.force_login(admin_user)  # superusers hold every permission
    assert client.get(f"{API}/payouts/").status_code == 200


def test_payouts_are_listed_with_filters_and_money_as_exact_decimals(client, books, finance):
    listed = client.get(f"{API}/payouts/", **basic("finance")).json()
    assert listed["count"] == 3
    assert [p["stripe_payout_id"] for p in listed["results"]] == ["po_jpy", "po_usd", "po_old"]
    usd = listed["results"][1]
    assert usd["amount"] == "58.10" and usd["currency"] == "USD"
    assert usd["integration"] == "fin" and usd["tie_out"] == "tied_out"
    assert listed["results"][0]["amount"] == "4820"  # JPY: no decimals

    def ids(**params):
        found = client.get(f"{API}/payouts/", params, **basic("finance")).json()["results"]
        return [p["stripe_payout_id"] for p in found]

    assert ids(arrival_from="2026-11-20", arrival_to="2026-11-20") == ["po_usd"]
    assert ids(arrival_to="2026-11-19") == ["po_old"]
    assert ids(integration="fin", tie_out="tied_out") == ["po_jpy", "po_usd", "po_old"]
    assert ids(tie_out="discrepancy") == []
    assert len(ids(page_size=1)) == 1


def test_a_payout_comes_with_its_totals_and_journal_and_its_transactions_paginated(
    client, books, finance
):
    payout = client.get(f"{API}/payouts/po_usd/", **basic("finance")).json()
    assert payout["totals"] == {
        "transactions": 6,
        "net": "58.10",
        "explained_net": "57.10",
        "unexplained": 1,
        "unexplained_net": "1.00",
    }
    assert [(e["external_reference"], e["erp_document_id"]) for e in payout["journal_entries"]] == [
        ("payout-po_usd", "JE-200"),
        ("fx-po_usd", "JE-201"),
    ]

    first = client.get(f"{API}/payouts/po_usd/transactions/?page_size=4", **basic("finance"))
    page = first.json()
    assert page["count"] == 7  # the payout's own row too, as imported
    assert [t["stripe_txn_id"] for t in page["results"]][:2] == ["txn_ch", "txn_re"]
    charge = page["results"][0]
    assert (charge["gross"], charge["fee"], charge["net"]) == ("100.00", "3.20", "96.80")
    assert charge["order_number"] == "ORD-1" and charge["matched_as"] == "charge"
    second = client.get(page["next"], **basic("finance")).json()
    assert len(second["results"]) == 3 and second["next"] is None
    assert [t["order_number"] for t in second["results"]] == ["", "", ""]


def test_the_exports_download_as_csv_and_xlsx(client, books, finance):
    response = client.get(f"{API}/payouts/po_usd/export/?format=csv", **basic("finance"))
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == exports.CSV_TYPE
    assert response["Content-Disposition"] == 'attachment; filename="payout-po_usd.csv"'
    header, *lines, total = parse_csv(response.getvalue())
    assert tuple(header) == exports.COLUMNS and len(lines) == 6
    assert total[8:12] == ["78.17", "20.07", "58.10", "USD"]
    default = client.get(f"{API}/payouts/po_usd/export/", **basic("finance"))
    assert default["Content-Type"] == exports.CSV_TYPE  # csv unless told otherwise

    response = client.get(
        f"{API}/exports/?arrival_from=2026-11-01&arrival_to=2026-11-30&format=xlsx",
        **basic("finance"),
    )
    assert response.status_code == 200 and response["Content-Type"] == exports.XLSX_TYPE
    assert "payouts-2026-11-01-to-2026-11-30.xlsx" in response["Content-Disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(response.getvalue()))["Transactions"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == exports.COLUMNS
    assert [r[0] for r in rows[1:]] == ["po_usd"] * 6 + ["po_jpy", "Total", "Total"]
    assert [Decimal(str(v)) for v in rows[-1][8:11]] == [
        Decimal("78.17"),
        Decimal("20.07"),
        Decimal("58.10"),
    ]


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/payouts/?arrival_from=2026-13-01", "arrival_from"),
        ("/payouts/?arrival_from=2026-11-30&arrival_to=2026-11-01", "arrival_to"),
        ("/payouts/?tie_out=lost", "tie_out"),
        ("/payouts/?integration=nope", "integration"),
        ("/payouts/po_usd/?integration=nope", "integration"),
        ("/payouts/po_usd/export/?format=pdf", "format"),
        ("/exports/?arrival_from=2026-11-01&format=csv", "arrival_to"),
        ("/exports/?arrival_from=2026-11-01&arrival_to=yesterday", "arrival_to"),
        ("/exports/?arrival_from=2026-11-30&arrival_to=2026-11-01", "arrival_to"),
        ("/exports/?arrival_from=2026-11-01&arrival_to=2026-11-30&format=xls", "format"),
    ],
)
def test_a_bad_parameter_is_a_400_that_names_it(client, books, finance, url, field):
    response = client.get(API + url, **basic("finance"))
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()[field]  # the message, per parameter


def test_an_unknown_payout_is_a_404_and_a_shared_one_needs_its_integration(
    client, books, finance, stripe_connection, znode_connection
):
    for url in ("po_nope/", "po_nope/transactions/", "po_nope/export/?format=xlsx"):
        response = client.get(f"{API}/payouts/{url}", **basic("finance"))
        assert response.status_code == 404, url
        assert response.json() == {"detail": "There is no payout po_nope."}
    assert client.get(f"{API}/payouts/?page=9", **basic("finance")).status_code == 404

    from integrations.models import Integration
    from reconciliation.models import Payout

    # Two stores on one Stripe account: both import its payouts.
    other = Integration.objects.create(
        name="fin-2", znode=znode_connection, stripe=stripe_connection
    )
    Payout.objects.create(
        integration=other, stripe_payout_id="po_usd", amount_minor=5810, currency="USD"
    )
    ambiguous = client.get(f"{API}/payouts/po_usd/", **basic("finance"))
    assert ambiguous.status_code == 400 and "integration" in ambiguous.json()
    named = client.get(f"{API}/payouts/po_usd/?integration=fin-2", **basic("finance"))
    assert named.status_code == 200 and named.json()["totals"]["transactions"] == 0


def test_a_failure_answers_a_bare_json_500_without_its_secrets(
    books, finance, monkeypatch, settings
):
    client = Client(raise_request_exception=False)
    settings.DEBUG = True  # even then: never the debug page with its frames' locals

    def broken(**kwargs):
        secret = "sk_live_leaked_in_a_local"  # noqa: F841
        raise RuntimeError("the database said sk_live_leaked_in_a_local")

    monkeypatch.setattr(exports, "payouts_filter", broken)
    response = client.get(f"{API}/payouts/", **basic("finance"))
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal error."}
    assert b"sk_live" not in response.content


def test_the_schema_and_its_docs_are_served_and_the_schema_is_valid(
    client, finance, staff, django_user_model
):
    assert client.get("/api/schema/").status_code == 401
    nobody = django_user_model.objects.create_user("nobody", password=PASSWORD)
    assert nobody and client.get("/api/schema/", **basic("nobody")).status_code == 403

    response = client.get("/api/schema/", **basic("staff"))
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert sorted(schema["paths"]) == [
        "/api/reconciliation/exports/",
        "/api/reconciliation/payouts/",
        "/api/reconciliation/payouts/{stripe_payout_id}/",
        "/api/reconciliation/payouts/{stripe_payout_id}/export/",
        "/api/reconciliation/payouts/{stripe_payout_id}/transactions/",
    ]  # the API only: no webhook endpoint
    export = schema["paths"]["/api/reconciliation/exports/"]["get"]
    assert {p["name"] for p in export["parameters"]} == {
        "arrival_from",
        "arrival_to",
        "format",
        "integration",
    }
    assert set(export["responses"]["200"]["content"]) == {"text/csv", exports.XLSX_TYPE}
    assert export["responses"]["200"]["content"]["text/csv"]["schema"]["format"] == "binary"
    assert set(schema["components"]["securitySchemes"]) == {"basicAuth", "cookieAuth"}

    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)  # raises if not

    docs = client.get("/api/docs/", **basic("finance"))
    assert docs.status_code == 200
    page = docs.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page  # our own assets
    # Nothing loaded from elsewhere (a CSRF token may spell "cdn" by chance).
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    assert "/api/schema/" in page
    assert client.get("/api/redoc/", **basic("finance")).status_code == 200
