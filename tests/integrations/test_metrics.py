"""GET /metrics (issue 13, Deliver 5): Prometheus' text format, with counters and
histograms for webhook intake, jobs, attempts and API calls by connection (or flow)
and outcome, added up over every process of the machine; a scrape needs the token."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from integrations.choices import JobStatus
from integrations.services import jobs as job_services
from tests.conftest import make_flow, make_job, post_stripe, stripe_event
from tests.support.upstream import Reply

pytestmark = pytest.mark.django_db


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def debug(settings):
    settings.DEBUG = True


def test_webhook_intake_is_counted_by_system_and_outcome(client, debug, stripe_connection):
    before = scrape(client)
    event = stripe_event()

    post_stripe(client, stripe_connection, event)
    post_stripe(client, stripe_connection, event)  # the same event again
    post_stripe(client, stripe_connection, event, header="t=1,v1=forged")

    after = scrape(client)
    name = "integrations_webhook_duration_seconds_count"
    for outcome, n in (("accepted", 1), ("duplicate", 1), ("rejected_400", 1)):
        grew = value(after, name, kind="stripe", outcome=outcome) - value(
            before, name, kind="stripe", outcome=outcome
        )
        assert grew == n, outcome


def test_jobs_attempts_and_api_calls_are_counted_with_their_durations(
    client, debug, integration, upstream
):
    upstream.queue(Reply(status=200, body={"ok": True}), Reply(status=503, body={"down": 1}))
    ok = make_flow("metrics-ok", steps=[("write", "tests.call_upstream", {"reference": "'A'"})])
    before = scrape(client)

    assert job_services.job_run(job_id=make_job(ok, integration).pk) == JobStatus.SUCCEEDED
    assert job_services.job_run(job_id=make_job(ok, integration, reference="B").pk) == (
        JobStatus.RETRYING
    )

    after = scrape(client)

    def grew(name: str, **labels) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("integrations_jobs_finished_total", flow="metrics-ok", outcome="succeeded") == 1
    assert grew("integrations_jobs_finished_total", flow="metrics-ok", outcome="retrying") == 1
    assert (
        grew("integrations_attempt_duration_seconds_count", flow="metrics-ok", outcome="succeeded")
        == 1
    )
    assert (
        grew("integrations_attempt_duration_seconds_count", flow="metrics-ok", outcome="retry") == 1
    )
    erp = integration.erp.name
    assert grew("integrations_api_call_duration_seconds_count", connection=erp, outcome="2xx") == 1
    assert grew("integrations_api_call_duration_seconds_count", connection=erp, outcome="5xx") == 1
    assert (
        grew(
            "integrations_api_call_duration_seconds_bucket",
            connection=erp,
            outcome="2xx",
            le="+Inf",
        )
        == 1
    )


def test_a_scrape_needs_the_token_outside_debug(client, settings):
    settings.DEBUG = False
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 403

    settings.METRICS_TOKEN = "scrape-me"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert "integrations_jobs_finished_total" in str(
        scrape(client, HTTP_AUTHORIZATION="Bearer scrape-me")
    )


def test_an_intake_that_fails_is_counted_as_an_error(debug, stripe_connection, monkeypatch):
    """The database gone mid-intake: the webhook gets a bare 500, and the metric says so
    (the outage is what the counter is for)."""
    from django.db import OperationalError
    from django.test import Client

    import integrations.views as views

    client = Client(raise_request_exception=False)

    def down(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(views, "inbox_event_receive", down)
    before = scrape(client)

    assert post_stripe(client, stripe_connection, stripe_event()).status_code == 500

    name = "integrations_webhook_duration_seconds_count"
    after = scrape(client)
    grew = value(after, name, kind="stripe", outcome="error_500") - value(
        before, name, kind="stripe", outcome="error_500"
    )
    assert grew == 1
