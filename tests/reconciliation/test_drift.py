"""The drift check (issue 12, Deliver 6): Znode, Stripe and the ERP read from their own
state over the last days; each mismatch filed once as a quarantined job with a readable
reason, which a retry checks again."""

from __future__ import annotations

import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
import requests
from django.core.management import call_command

from integrations.choices import JobStatus
from integrations.connectors.erp.mapping import JournalEntry, JournalLine
from integrations.models import Integration, Job
from integrations.services.flows import flows_install_defaults
from integrations.services.jobs import job_discard, job_requeue, job_run
from reconciliation.drift import drift_check
from tests.payments.conftest import wired  # noqa: F401  (the fixture)
from tests.support.payments import collect, mark_paid, place, post_sale

pytestmark = pytest.mark.django_db

NOW = timedelta(0)  # no grace: what just happened is checked too


@pytest.fixture(autouse=True)
def _flows(db):
    flows_install_defaults()


def booked(wired, user_id: int, total: str = "30.00") -> tuple[dict, dict]:  # noqa: F811
    placed = place(wired, user_id=user_id, total=total)
    paid = collect(wired, placed)
    assert paid["outcome"] == "paid", paid
    mark_paid(wired, placed, paid)
    post_sale(wired, placed, paid)
    return placed, paid


def _sale(wired, reference: str) -> None:  # noqa: F811  (a sales journal posted by hand)
    wired.erp.client().journal_entry_post(
        entry=JournalEntry(
            external_reference=reference,
            date=date.today(),
            currency="USD",
            memo="typed in by hand",
            lines=(
                JournalLine(account="1150", debit=Decimal("10.00")),
                JournalLine(account="4000", credit=Decimal("10.00")),
            ),
        )
    )


def drift_jobs() -> dict[str, Job]:
    return {job.reference: job for job in Job.objects.filter(reference__startswith="drift:")}


def test_systems_that_agree_show_no_drift(wired):  # noqa: F811
    booked(wired, user_id=11)

    report = drift_check(integration=wired, days=2, grace=NOW)

    assert (report.found, report.filed) == (0, 0) and report.checked >= 2
    assert drift_jobs() == {}


def test_a_planted_erp_entry_without_a_payment_is_found_once(wired):  # noqa: F811
    booked(wired, user_id=11)
    _sale(wired, "sale:ch_planted")

    first = drift_check(integration=wired, days=2, grace=NOW)
    again = drift_check(integration=wired, days=2, grace=NOW)

    assert (first.found, first.filed) == (1, 1) and (again.found, again.filed) == (1, 0)
    [job] = drift_jobs().values()
    assert job.reference == "drift:erp_sale_without_payment:sale:ch_planted"
    assert job.status == JobStatus.QUARANTINED
    assert "drift: the ERP holds the sales journal sale:ch_planted" in job.last_error
    assert "Stripe's charge ch_planted does not exist" in job.last_error


def test_money_taken_in_stripe_but_not_booked_is_found_and_a_retry_after_the_fix_resolves_it(
    wired,  # noqa: F811
):
    placed = place(wired, user_id=12, total="42.00")
    paid = collect(wired, placed)  # Stripe has the money; Znode and the ERP do not yet

    report = drift_check(integration=wired, days=2, grace=NOW)

    jobs = drift_jobs()
    charge = paid["charge"]
    assert report.filed == 2 and set(jobs) == {
        f"drift:paid_not_in_znode:{charge}",
        f"drift:paid_not_in_erp:{charge}",
    }
    assert (
        f"order {placed['order_number']} paid"
        in jobs[f"drift:paid_not_in_znode:{charge}"].last_error
    )
    assert f"no sales journal sale:{charge}" in jobs[f"drift:paid_not_in_erp:{charge}"].last_error

    mark_paid(wired, placed, paid)
    post_sale(wired, placed, paid)
    for job in jobs.values():
        job_requeue(job=job, note="booked by hand")
        job_run(job_id=job.pk)
        job.refresh_from_db()
        assert job.status == JobStatus.SUCCEEDED


def test_a_refund_without_its_credit_memo_is_found(wired):  # noqa: F811
    _, paid = booked(wired, user_id=13, total="50.00")
    response = requests.post(
        wired.sandbox.system_url("stripe") + "/v1/refunds",
        data={"charge": paid["charge"], "amount": 1500},
        headers={"Authorization": "Bearer sk_test_booking"},
        timeout=10,
    )
    response.raise_for_status()
    refund = response.json()["id"]

    report = drift_check(integration=wired, days=2, grace=NOW)

    assert report.filed == 1
    [job] = drift_jobs().values()
    assert job.reference == f"drift:refund_not_in_erp:{refund}"
    assert f"no credit memo refund:{refund}" in job.last_error


def test_the_command_reports_what_it_checked_and_filed(wired):  # noqa: F811
    booked(wired, user_id=11)
    placed = place(wired, user_id=12, total="9.00")
    collect(wired, placed)  # paid, not booked: two mismatches
    args = ("drift_check", "--integration", wired.name, "--days", "2", "--no-progress")

    out = io.StringIO()
    call_command(*args, "--grace-minutes", "0", stdout=out)
    again = io.StringIO()
    call_command(*args, "--grace-minutes", "0", stdout=again)
    recent = io.StringIO()
    call_command(*args, stdout=recent)  # 15 minutes of grace: all of it is too recent

    # Two PaymentIntents and one ERP sales journal were read.
    assert out.getvalue().strip() == "checked 3, mismatches 2, filed 2 (already filed 0)"
    assert again.getvalue().strip() == "checked 3, mismatches 2, filed 0 (already filed 2)"
    assert recent.getvalue().strip() == "checked 3, mismatches 0, filed 0 (already filed 0)"


def test_an_order_canceled_after_payment_and_refunded_in_full_is_no_drift(wired):  # noqa: F811
    placed = place(wired, user_id=11, total="20.00")
    paid = collect(wired, placed)
    response = requests.post(  # the platform refunds a canceled order in full, books nothing
        wired.sandbox.system_url("stripe") + "/v1/refunds",
        data={"charge": paid["charge"]},
        headers={"Authorization": "Bearer sk_test_booking"},
        timeout=10,
    )
    response.raise_for_status()

    report = drift_check(integration=wired, days=2, grace=NOW)

    assert (report.found, report.filed) == (0, 0) and drift_jobs() == {}


def test_a_payment_for_an_order_znode_does_not_have_is_its_own_drift_and_the_rest_go_on(
    wired,  # noqa: F811
):
    placed = place(wired, user_id=11, total="12.00")
    paid = collect(wired, placed)
    requests.post(  # an order number typed wrong in the metadata
        wired.sandbox.system_url("stripe") + f"/v1/payment_intents/{paid['payment_intent']}",
        data={"metadata[znode_order_number]": "NO-SUCH-ORDER"},
        headers={"Authorization": "Bearer sk_test_booking"},
        timeout=10,
    ).raise_for_status()
    other = place(wired, user_id=12, total="13.00")
    collect(wired, other)

    report = drift_check(integration=wired, days=2, grace=NOW)

    kinds = sorted(job.reference.split(":")[1] for job in drift_jobs().values())
    assert report.unchecked == 0
    # The unknown order is one mismatch (nothing more can be said of it); the other
    # order's two are filed all the same.
    assert kinds == ["paid_for_unknown_order", "paid_not_in_erp", "paid_not_in_znode"]


def test_a_drift_an_operator_discarded_is_not_filed_again(wired):  # noqa: F811
    placed = place(wired, user_id=12, total="8.00")
    collect(wired, placed)
    drift_check(integration=wired, days=2, grace=NOW)
    for job in drift_jobs().values():
        job_discard(job=job, note="known: booked by hand elsewhere")

    again = drift_check(integration=wired, days=2, grace=NOW)

    assert (again.found, again.filed) == (2, 0)


def test_two_integrations_sharing_one_erp_do_not_report_each_others_sales(wired):  # noqa: F811
    """An ERP entry is this integration's when its charge is a payment of ours, or is in
    this integration's Stripe account without metadata naming another integration."""
    from integrations.services.connections import connection_create

    booked(wired, user_id=11)
    other = Integration.objects.create(
        name="other",
        znode=wired.znode,
        erp=wired.erp,  # the same ERP
        stripe=connection_create(
            name="stripe-other",
            kind="stripe",
            base_url=wired.sandbox.system_url("stripe"),
            credentials={"api_key": "sk_test_other"},
            rate_limit_per_second=500,
        ),
    )
    response = requests.post(  # the other integration's money, authorized only
        wired.sandbox.system_url("stripe") + "/v1/payment_intents",
        data={
            "amount": 1000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": "true",
            "capture_method": "manual",
            "metadata[znode_order_number]": "O-1",
            "metadata[integration]": "other",
        },
        headers={"Authorization": "Bearer sk_test_other"},
        timeout=10,
    )
    response.raise_for_status()
    held = response.json()["latest_charge"]
    _sale(wired, f"sale:{held}")
    _sale(wired, "sale:ch_of_another_stripe_account")

    ours = drift_check(integration=wired, days=2, grace=NOW)
    theirs = drift_check(integration=other, days=2, grace=NOW)

    assert (ours.found, ours.filed) == (0, 0)
    # The other integration finds its own (and not ours, nor the unknown account's).
    assert (theirs.found, theirs.filed) == (1, 1)
    [job] = drift_jobs().values()
    assert job.integration == other
    assert job.reference == f"drift:erp_sale_without_payment:sale:{held}"
    assert f"Stripe's charge {held} is succeeded, not captured" in job.last_error


def test_the_erp_list_is_read_page_after_page_as_a_stream(wired, monkeypatch):  # noqa: F811
    import integrations.connectors.erp.client as erp_client
    from tests.support.payments import calls

    for number in range(5):
        _sale(wired, f"sale:ch_paged{number}")
    monkeypatch.setattr(erp_client, "LIST_PAGE_SIZE", 2)
    before = calls("erp.journal_entry.list")

    listed = wired.erp.client().journal_entries_since(date.today())

    assert calls("erp.journal_entry.list") == before  # a stream: nothing read yet
    assert [d.external_reference for d in listed] == [f"sale:ch_paged{n}" for n in range(5)]
    assert calls("erp.journal_entry.list") == before + 3  # 2 + 2 + 1, following next


def test_a_znode_build_without_transaction_references_is_matched_by_amount():
    from integrations.connectors.znode.mapping import PaymentRecord
    from reconciliation.drift import _recorded

    without = (PaymentRecord(reference=None, amount=Decimal("42.00"), status="CAPTURED"),)
    with_refs = (PaymentRecord(reference="ch_other", amount=Decimal("42.00"), status="CAPTURED"),)

    class Order:
        def __init__(self, payments):
            self.payments = payments

    assert _recorded(Order(without), "ch_1", Decimal("42.00"))
    assert not _recorded(Order(without), "ch_1", Decimal("41.00"))
    assert not _recorded(Order(with_refs), "ch_1", Decimal("42.00"))  # references: by id


def test_a_drift_gone_by_the_time_it_is_filed_is_not_counted_as_filed(wired):  # noqa: F811
    """The systems came to agree between finding and filing: its job is done at once,
    and the report does not count it as filed."""
    from integrations.models import Flow
    from integrations.runtime import ServiceContext
    from reconciliation.drift import DRIFT_FLOW, ERP_SALE_WITHOUT_PAYMENT, Drift, _file

    drift = Drift(ERP_SALE_WITHOUT_PAYMENT, "sale:ch_gone", "", "no payment for it")

    filed = _file(ServiceContext(integration=wired), Flow.objects.get(key=DRIFT_FLOW), drift)

    assert filed is False
    assert drift_jobs()[drift.reference].status == JobStatus.SUCCEEDED


def test_the_daily_schedule_checks_every_integration_and_one_outage_stops_none(
    wired,  # noqa: F811
):
    """django-q2 runs reconciliation.tasks.check_drift daily (installed on migrate): an
    integration whose ERP is down, or whose ERP connection lacks its credentials, is
    logged; the others are still checked."""
    from django_q.models import Schedule

    from integrations.models import Connection
    from reconciliation.tasks import check_drift

    schedule = Schedule.objects.get(name="reconciliation.drift")
    assert (schedule.func, schedule.schedule_type, schedule.repeats) == (
        "reconciliation.tasks.check_drift",
        Schedule.DAILY,
        -1,
    )
    booked(wired, user_id=11)
    _sale(wired, "sale:ch_planted")
    erp = Connection.objects.get(pk=wired.erp_id)
    down = Connection.objects.create(
        name="erp-down", kind=erp.kind, base_url="http://127.0.0.1:9/", settings=erp.settings
    )
    down.credentials = erp.credentials
    down.save()
    unset = Connection.objects.create(
        name="erp-unset", kind=erp.kind, base_url=erp.base_url, settings=erp.settings
    )
    for name, connection in (("a-down", down), ("b-unset", unset)):  # checked before it
        Integration.objects.create(
            name=name, znode=wired.znode, stripe=wired.stripe, erp=connection
        )

    assert check_drift() == {"filed": 1}
    assert list(drift_jobs()) == ["drift:erp_sale_without_payment:sale:ch_planted"]


def test_mismatches_of_one_kind_file_into_one_error_group_alerted_as_a_discrepancy(
    wired,  # noqa: F811
):
    from integrations.choices import AlertKind
    from integrations.models import Alert, ErrorGroup
    from integrations.services.alerts import alerts_check

    _sale(wired, "sale:ch_planted1")
    _sale(wired, "sale:ch_planted2")

    assert drift_check(integration=wired, days=2, grace=NOW).filed == 2
    group = ErrorGroup.objects.get()
    assert group.flow.key == "drift-recheck" and group.step == "recheck"
    assert set(Job.objects.filter(error_group=group).values_list("reference", flat=True)) == {
        "drift:erp_sale_without_payment:sale:ch_planted1",
        "drift:erp_sale_without_payment:sale:ch_planted2",
    }

    alerts_check()
    [alert] = Alert.objects.all()
    assert (alert.kind, alert.error_group) == (AlertKind.RECONCILIATION, group)
    assert alert.subject.startswith("Discrepancy: drift-recheck [recheck] drift: the ERP holds")
    assert "2 job(s) out of retries" in alert.text
