"""The ledger's admin pages: payout exports (buttons, actions, the filtered list), the
GL map (edited with history) and the journal as posted; and the Finance group."""

from __future__ import annotations

import io

import openpyxl
import pytest
from django.contrib.admin import helpers
from django.contrib.auth.models import Group, Permission

from reconciliation import exports
from reconciliation.models import GlAccount, JournalEntry, Payout
from tests.support.books import build_books, parse_csv

pytestmark = pytest.mark.django_db


@pytest.fixture
def books(stripe_connection, znode_connection):
    return build_books(stripe=stripe_connection, znode=znode_connection)


PAYOUTS = "/admin/reconciliation/payout/"


def _user(django_user_model, name, *codenames):
    user = django_user_model.objects.create_user(name, password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def viewer(django_user_model):
    return _user(django_user_model, "viewer", "view_payout", "view_balancetransaction")


@pytest.fixture
def exporter(django_user_model):
    return _user(django_user_model, "exporter", "view_payout", "export_payout")


def _action(client, name, *payouts, **extra):
    data = {"action": name, helpers.ACTION_CHECKBOX_NAME: [p.pk for p in payouts], **extra}
    return client.post(PAYOUTS, data)


def test_a_payouts_page_shows_its_ledger_state_journal_and_export_buttons(admin_client, books):
    Payout.objects.filter(pk=books.usd.pk).update(
        ledger_state="posted", ledger_note="clearing nets to 0.00 USD"
    )
    page = admin_client.get(f"{PAYOUTS}{books.usd.pk}/change/").content.decode()

    assert f"{PAYOUTS}{books.usd.pk}/export/csv/" in page
    assert f"{PAYOUTS}{books.usd.pk}/export/xlsx/" in page
    assert "clearing nets to 0.00 USD" in page and ">posted<" in page
    for reference in ("payout-po_usd", "fx-po_usd"):
        entry = JournalEntry.objects.get(external_reference=reference)
        assert f"/admin/reconciliation/journalentry/{entry.pk}/change/" in page
    assert "ERP JE-200" in page

    listing = admin_client.get(PAYOUTS).content.decode()
    assert f"{PAYOUTS}export/csv/?" in listing and 'value="export_xlsx"' in listing


def test_who_may_only_view_payouts_is_offered_no_export_and_gets_none(client, books, viewer):
    client.force_login(viewer)
    page = client.get(f"{PAYOUTS}{books.usd.pk}/change/")
    assert page.status_code == 200
    assert "/export/" not in page.content.decode()
    listing = client.get(PAYOUTS)
    assert "/export/" not in listing.content.decode()
    assert "export_csv" not in listing.content.decode()  # no such action offered

    assert client.get(f"{PAYOUTS}{books.usd.pk}/export/csv/").status_code == 403
    assert client.get(f"{PAYOUTS}export/xlsx/").status_code == 403
    posted = _action(client, "export_csv", books.usd)
    assert "Content-Disposition" not in posted  # refused: back to the list, no file
    assert posted.status_code in (200, 302)


def test_who_may_export_gets_a_payout_the_selection_and_the_filtered_list(client, books, exporter):
    client.force_login(exporter)
    page = client.get(f"{PAYOUTS}{books.usd.pk}/change/").content.decode()
    assert "Export CSV" in page and "Export XLSX" in page

    one = client.get(f"{PAYOUTS}{books.usd.pk}/export/csv/")
    assert one["Content-Disposition"] == 'attachment; filename="payout-po_usd.csv"'
    header, *lines, total = parse_csv(one.getvalue())
    assert tuple(header) == exports.COLUMNS and {line[0] for line in lines} == {"po_usd"}
    assert total[8:12] == ["78.17", "20.07", "58.10", "USD"]

    chosen = _action(client, "export_xlsx", books.usd, books.jpy)
    assert chosen["Content-Type"] == exports.XLSX_TYPE
    assert "payouts-2026-11-20-to-2026-11-25.xlsx" in chosen["Content-Disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(chosen.getvalue()))["Transactions"]
    assert [r[0] for r in sheet.iter_rows(min_row=2, values_only=True)] == [
        *["po_usd"] * 6,
        "po_jpy",
        "Total",
        "Total",
    ]

    # The list's buttons export what the list shows: these filters, every page.
    filtered = client.get(f"{PAYOUTS}export/csv/?currency__exact=USD&arrival_date__month=11")
    assert {line[0] for line in parse_csv(filtered.getvalue())[1:]} == {"po_usd", "Total"}
    everything = client.get(f"{PAYOUTS}export/csv/")
    assert {line[0] for line in parse_csv(everything.getvalue())[1:]} == {
        "po_usd",
        "po_jpy",
        "po_old",
        "Total",
    }
    bad = client.get(f"{PAYOUTS}export/csv/?nonsense__exact=1")
    assert bad.status_code == 302 and "Content-Disposition" not in bad
    assert client.get(f"{PAYOUTS}export/pdf/").status_code == 404
    assert client.get(f"{PAYOUTS}999999/export/csv/").status_code == 404


def test_the_gl_map_is_edited_with_the_change_permission_and_keeps_its_history(
    client, django_user_model, books
):
    row = GlAccount.objects.get(integration=None, key="clearing", currency="")
    form = {
        "integration": "",
        "key": "clearing",
        "currency": "",
        "account": "1151",
        "description": row.description,
        "change_reason": "new chart of accounts",
    }
    url = f"/admin/reconciliation/glaccount/{row.pk}/change/"
    looker = _user(django_user_model, "looker", "view_glaccount")
    client.force_login(looker)
    page = client.get(url).content.decode()
    assert "What posts to it" in page  # the fields' help texts are shown
    assert client.post(url, form).status_code == 403
    row.refresh_from_db()
    assert row.account == "1150"

    keeper = _user(django_user_model, "keeper", "view_glaccount", "change_glaccount")
    client.force_login(keeper)
    assert client.post(url, form).status_code == 302
    row.refresh_from_db()
    assert row.account == "1151"
    latest = row.history.first()
    assert (latest.history_user, latest.history_change_reason) == (keeper, "new chart of accounts")
    assert latest.account == "1151" and latest.prev_record is None  # shipped by migration
    history = client.get(f"/admin/reconciliation/glaccount/{row.pk}/history/")
    assert history.status_code == 200 and "new chart of accounts" in history.content.decode()

    eur = {**form, "currency": "eur", "account": "1152", "change_reason": ""}
    assert client.post("/admin/reconciliation/glaccount/add/", eur).status_code == 403  # no add
    keeper.user_permissions.add(Permission.objects.get(codename="add_glaccount"))
    assert client.post("/admin/reconciliation/glaccount/add/", eur).status_code == 302
    assert GlAccount.objects.get(key="clearing", currency="EUR").account == "1152"
    again = client.post("/admin/reconciliation/glaccount/add/", eur)
    assert again.status_code == 200
    assert "already has a row for clearing in EUR for every integration" in again.content.decode()
    unknown = client.post("/admin/reconciliation/glaccount/add/", {**eur, "currency": "ZZZ"})
    assert unknown.status_code == 200
    assert "Unknown or unsupported currency" in unknown.content.decode()

    listed = client.get("/admin/reconciliation/glaccount/?currency__exact=EUR")
    assert listed.context["cl"].result_count == 1


def test_the_journal_is_listed_and_shown_as_posted_and_read_only(admin_client, books):
    entry = JournalEntry.objects.get(external_reference="sale-ch_1")
    entry.total = "100.000"
    entry.save()
    entry.lines.create(position=1, key="clearing", account="1150", debit="100", signed_minor=10000)
    entry.lines.create(position=2, key="charge", account="4000", credit="100", signed_minor=-10000)

    listing = admin_client.get("/admin/reconciliation/journalentry/")
    assert listing.status_code == 200
    shown = listing.content.decode()
    assert "sale-ch_1" in shown and "100.00 USD" in shown and "JE-100" in shown
    unposted = admin_client.get("/admin/reconciliation/journalentry/?posted=no")
    assert [e.external_reference for e in unposted.context["cl"].result_list] == ["sale-ch_4"]
    disputes = admin_client.get("/admin/reconciliation/journalentry/?kind__exact=dispute")
    assert disputes.context["cl"].result_count == 1

    page = admin_client.get(f"/admin/reconciliation/journalentry/{entry.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "1150" in html and "4000" in html and 'name="_save"' not in html
    assert admin_client.get("/admin/reconciliation/journalentry/add/").status_code == 403


def test_the_finance_group_may_see_the_ledger_keep_the_gl_map_and_export(
    client, django_user_model, books
):
    user = django_user_model.objects.create_user("fin", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))

    assert user.has_perms(
        [
            "reconciliation.view_payout",
            "reconciliation.view_balancetransaction",
            "reconciliation.view_journalentry",
            "reconciliation.view_glaccount",
            "reconciliation.change_glaccount",
            "reconciliation.export_payout",
        ]
    )
    assert not user.has_perm("reconciliation.delete_glaccount")
    assert user.has_perm("integrations.view_job")  # read-only elsewhere
    assert not user.has_perm("integrations.operate_job")
    client.force_login(user)
    assert client.get(f"{PAYOUTS}{books.usd.pk}/export/xlsx/").status_code == 200
    assert client.get("/api/reconciliation/payouts/").status_code == 200
