"""Structured logs (issue 13, Deliver 5): with LOG_FORMAT=json each record is one JSON
object, secrets masked, with a correlation id that follows an order from the webhook
that brings its event, through routing and its jobs, to the API calls they make."""

from __future__ import annotations

import io
import json
import logging

import pytest

from integrations.choices import JobStatus
from integrations.kernel.context import correlated
from integrations.logging import CorrelationFilter, JsonFormatter, RedactSecretsFilter
from integrations.services import jobs as job_services
from tests.conftest import make_flow, make_job, post_stripe, stripe_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_lines():
    """What the console handler prints with LOG_FORMAT=json, for every logger."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecretsFilter())
    handler.addFilter(CorrelationFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_a_record_is_one_json_object_with_its_fields_and_secrets_masked(json_lines):
    log = logging.getLogger("integrations.test.json")
    with correlated("ORD-7"):
        log.warning("calling with %s", "sk_live_51abcdefSECRET")
    try:
        raise ValueError("whsec_abcdefSECRET in a traceback")
    except ValueError:
        log.exception("failed")

    first, second = json_lines()
    assert first["level"] == "WARNING" and first["logger"] == "integrations.test.json"
    assert first["message"] == "calling with [redacted]"
    assert first["correlation_id"] == "ORD-7" and first["time"].endswith("+00:00")
    assert "correlation_id" not in second  # outside any order's work
    assert "ValueError" in second["exception"] and "SECRET" not in second["exception"]


def test_the_correlation_id_follows_a_job_and_its_api_calls(json_lines, integration, upstream):
    from tests.support.upstream import Reply

    upstream.queue(Reply(status=503, body={"down": 1}))
    flow = make_flow("json-logs", steps=[("write", "tests.call_upstream", {"reference": "'A'"})])
    job = make_job(flow, integration, reference="ORD-1001")

    assert job_services.job_run(job_id=job.pk) == JobStatus.RETRYING

    lines = [line for line in json_lines() if line["logger"].startswith("integrations")]
    failed = [line for line in lines if "integrations.jobs.failed" in line["message"]]
    assert failed and all(line["correlation_id"] == "ORD-1001" for line in failed)
    assert all(line["job_id"] == job.pk for line in failed)


def test_intake_and_routing_work_under_the_events_reference(client, stripe_connection, monkeypatch):
    """What intake and routing log is correlated by the event's reference (the order
    number in stripe_event()'s metadata)."""
    import integrations.services.inbox as inbox
    import integrations.views as views
    from integrations.kernel.context import current_run

    seen = []
    receive, route = views.inbox_event_receive, inbox._event_route

    def spy(real):
        def wrapped(*args, **kwargs):
            seen.append(current_run.get().reference)
            return real(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(views, "inbox_event_receive", spy(receive))
    monkeypatch.setattr(inbox, "_event_route", spy(route))
    post_stripe(client, stripe_connection, stripe_event())
    from integrations.models import InboundEvent

    inbox.event_route(InboundEvent.objects.get())

    assert seen == ["ORD-1001", "ORD-1001"]
    assert current_run.get().reference == ""  # and nothing after


def test_log_format_is_chosen_by_the_environment_and_checked():
    import os
    import subprocess
    import sys

    code = (
        "import django, logging; django.setup(); "
        "print(type(logging.getLogger().handlers[0].formatter).__name__)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}

    def start(log_format: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", code],
            env={**env, "LOG_FORMAT": log_format},
            capture_output=True,
            text=True,
            timeout=60,
        )

    chosen, wrong = start("json"), start("xml")

    assert chosen.stdout.strip() == "JsonFormatter", chosen.stderr
    assert wrong.returncode != 0 and "LOG_FORMAT must be plain or json" in wrong.stderr
