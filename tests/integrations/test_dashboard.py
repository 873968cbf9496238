"""The admin dashboard: per-minute counts written as increments by every process, read
by window, flow and connection; the panel htmx refreshes, for whoever may view jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from integrations.kernel import stats
from integrations.models import Tally
from integrations.roles import FINANCE, OPERATORS
from integrations.services import jobs
from integrations.services.dashboard import dashboard_read, percentiles
from integrations.services.stats import tallies_prune, tallies_read
from tests.conftest import make_flow, make_job
from tests.support.upstream import Reply

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 3, 10, 15, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_counts():
    stats.take()  # what earlier tests counted
    yield
    stats.take()


def test_counts_become_minute_and_hour_rows_that_later_writes_add_to():
    stats.count("events", connection="znode", at=T0)
    stats.count("events", connection="znode", at=T0 + timedelta(seconds=20))
    stats.count("events", connection="znode", at=T0 + timedelta(minutes=1))
    stats.count("job_succeeded", flow="order", total=40, at=T0)
    assert stats.flush() == 3
    stats.count("events", connection="znode", at=T0)
    stats.flush()

    minutes = {
        (t.start, t.metric): t.count for t in Tally.objects.filter(period="m", metric="events")
    }
    assert minutes == {
        (datetime(2026, 12, 3, 10, 15, tzinfo=UTC), "events"): 3,
        (datetime(2026, 12, 3, 10, 16, tzinfo=UTC), "events"): 1,
    }
    hour = Tally.objects.get(period="h", metric="events")
    assert (hour.start, hour.count) == (datetime(2026, 12, 3, 10, 0, tzinfo=UTC), 4)
    job = Tally.objects.get(period="m", metric="job_succeeded")
    assert (job.flow, job.count, job.total) == ("order", 1, 40)
    assert stats.flush() == 0  # nothing new


def test_a_window_reads_its_buckets_of_one_flow_or_connection():
    for minute, flow in ((0, "a"), (0, "b"), (2, "a"), (70, "a")):
        stats.count("job_succeeded", flow=flow, at=T0 + timedelta(minutes=minute))
    stats.flush()
    since = datetime(2026, 12, 3, 10, 15, tzinfo=UTC)
    series = tallies_read(period="m", since=since, buckets=5, step=timedelta(minutes=1))
    assert series.values("job_succeeded") == [2, 0, 1, 0, 0]
    assert series.values("job_succeeded", flow="a") == [1, 0, 1, 0, 0]
    only_b = tallies_read(period="m", since=since, buckets=5, step=timedelta(minutes=1), flow="b")
    assert only_b.values("job_succeeded") == [1, 0, 0, 0, 0]


def test_old_rows_are_pruned():
    stats.count("events", at=T0 - timedelta(days=3))
    stats.count("events", at=T0)
    stats.flush()
    assert tallies_prune(now=T0) == 1  # the old minute; its hour stays (35 days)
    assert Tally.objects.filter(period="m").count() == 1
    assert Tally.objects.filter(period="h").count() == 2


def test_latency_percentiles_are_read_from_the_histogram():
    assert percentiles({}) == {}
    histogram = {"0.5": 50, "1": 45, "5": 4, "inf": 1}
    assert percentiles(histogram) == {"p50": "≤ 0.5 s", "p95": "≤ 1 s", "p99": "≤ 5 s"}
    assert stats.latency_label(0.7) == "1" and stats.latency_label(5000) == "inf"


def member(django_user_model, role: str, name: str):
    user = django_user_model.objects.create_user(name, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return django_user_model.objects.get(pk=user.pk)


def test_the_dashboard_counts_what_ran(integration, upstream, client, django_user_model):
    flow = make_flow(
        "write", steps=[("write", "tests.call_upstream", {"reference": "event.reference"})]
    )
    for n in range(3):
        jobs.job_run(job_id=make_job(flow, integration, reference=f"ORD-{n}").pk)
    upstream.default = Reply(status=503)
    failed = make_job(flow, integration, reference="ORD-9")
    jobs.job_run(job_id=failed.pk)
    stats.flush()

    data = dashboard_read()
    assert (data["total"].done, data["total"].succeeded, data["total"].failed) == (4, 3, 1)
    assert data["total"].success_rate == "75.0 %"
    [row] = data["per_flow"]
    assert (row.name, row.done) == ("write", 4)
    [erp] = data["per_connection"]
    assert (erp.name, erp.calls, erp.call_errors) == ("erp-test", 4, 1)
    assert len(data["chart"]["lines"][1]["points"].split()) == 60  # a point a minute

    client.force_login(member(django_user_model, OPERATORS, "op"))
    index = client.get(reverse("admin:index"))
    assert b'hx-get="/admin/dashboard/"' in index.content
    assert b"htmx" in index.content
    panel = client.get(reverse("integrations-dashboard"), {"window": "day", "flow": "write"})
    assert panel.status_code == 200
    assert b'data-testid="jobs-done">4<' in panel.content
    assert b"window=day" in panel.content and b"flow=write" in panel.content  # it refreshes so


def test_the_dashboard_reads_a_bounded_number_of_rows(
    integration, client, django_user_model, django_assert_max_num_queries
):
    for minute in range(60 * 24):
        stats.count("events", connection="znode", at=timezone.now() - timedelta(minutes=minute))
    stats.flush()
    client.force_login(member(django_user_model, FINANCE, "fin"))
    for window in ("hour", "day", "week"):  # a week of hours, a day of minutes: as few reads
        with django_assert_max_num_queries(20):
            assert (
                client.get(reverse("integrations-dashboard"), {"window": window}).status_code == 200
            )


def test_the_dashboard_needs_the_view_permission_on_jobs(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("nobody", is_staff=True))
    assert client.get(reverse("integrations-dashboard")).status_code == 403
    client.logout()
    assert client.get(reverse("integrations-dashboard")).status_code == 302  # to the login


def test_the_money_view_shows_todays_captures_by_currency(integration, client, django_user_model):
    from payments.models import Order, Payment

    order = Order.objects.create(
        integration=integration,
        order_number="ORD-7",
        znode_order_id=7,
        total="171.35",
        amount_minor=171_35,
        currency="usd",
    )
    Payment.objects.create(
        order=order,
        amount_minor=171_35,
        amount_received_minor=171_35,
        currency="usd",
        status="succeeded",
        paid_at=timezone.now(),
    )
    figures = {f.title: f.value for f in dashboard_read()["money"]}
    assert figures["Captured today"] == "171.35 USD"
    assert figures["Refunded today"] == "none yet"
    assert figures["Paid out today"] == "none yet"
