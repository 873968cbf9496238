"""Alerts: raised by the rules, none while retries are pending, one per outage and a
digest for the rest, every one recorded with its deliveries."""

import json

import pytest
from django.core import mail

from integrations.choices import AlertKind, AlertStatus, JobStatus
from integrations.models import (
    Alert,
    AlertChannel,
    AlertRule,
    ApiCall,
    ErrorGroup,
    Flow,
    Job,
)
from integrations.services import jobs
from integrations.services.alerts import (
    alert_rules_install,
    alerts_check,
    alerts_digest,
    connection_failing,
)
from tests.conftest import make_flow, make_job
from tests.support.upstream import Reply

pytestmark = pytest.mark.django_db

HOOK_PATH = "/hooks/T000/B000/secret-chat-token"


@pytest.fixture
def rules(db):
    alert_rules_install()
    return {rule.kind: rule for rule in AlertRule.objects.all()}


@pytest.fixture
def channels(upstream, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    hook = AlertChannel.objects.create(
        name="ops-chat", kind="webhook", webhook_url=upstream.url + HOOK_PATH
    )
    email = AlertChannel.objects.create(
        name="ops-mail", kind="email", recipients="ops@example.com, lead@example.com"
    )
    return hook, email


def hook_requests(upstream):
    return [r for r in upstream.requests if r.path == HOOK_PATH]


def failing_flow(**kwargs):
    return make_flow(
        "write-order",
        steps=[("write", "tests.call_upstream", {"reference": "event.reference"})],
        **kwargs,
    )


def fail_jobs(integration, upstream, count: int, *, max_attempts: int, start: int = 1):
    upstream.default = Reply(status=503, body={"error": "maintenance"})
    flow = Flow.objects.filter(key="write-order").first() or failing_flow()
    made = []
    for n in range(start, start + count):
        job = make_job(flow, integration, reference=f"ORD-{n}")
        Job.objects.filter(pk=job.pk).update(max_attempts=max_attempts)
        jobs.job_run(job_id=job.pk)
        made.append(job)
    upstream.default = Reply()
    return made


def test_nothing_is_raised_while_retries_are_pending(integration, upstream, rules, channels):
    fail_jobs(integration, upstream, 5, max_attempts=3)
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.RETRYING}
    rules[AlertKind.CONNECTION_FAILING].enabled = False
    rules[AlertKind.CONNECTION_FAILING].save()

    assert alerts_check()["raised"] == 0
    assert not Alert.objects.exists()
    assert hook_requests(upstream) == [] and mail.outbox == []


def test_a_group_out_of_retries_is_one_alert_by_chat_and_email(
    integration, upstream, rules, channels
):
    rules[AlertKind.CONNECTION_FAILING].enabled = False
    rules[AlertKind.CONNECTION_FAILING].save()
    fail_jobs(integration, upstream, 12, max_attempts=1)
    group = ErrorGroup.objects.get()

    result = alerts_check()
    assert (result["raised"], result["sent"]) == (1, 1)
    alert = Alert.objects.get()
    assert (alert.kind, alert.status, alert.error_group) == (
        AlertKind.GROUP_OPENED,
        AlertStatus.SENT,
        group,
    )
    assert alert.subject.startswith("Error group: write-order [write] tests.write: HTTP <n>")
    assert "12 job(s) out of retries, 0 waiting for a retry" in alert.text
    assert "ORD-1, ORD-10, ORD-11" in alert.text
    [posted] = hook_requests(upstream)
    assert json.loads(posted.body) == {"text": f"*{alert.subject}*\n{alert.text}"}
    assert posted.headers["Idempotency-Key"] == f"alert-{alert.pk}"
    [message] = mail.outbox
    assert message.to == ["ops@example.com", "lead@example.com"]
    assert message.subject == f"[integrations] {alert.subject}"
    assert [d["channel"] for d in alert.deliveries] == ["ops-chat", "ops-mail"]
    assert all(d["ok"] for d in alert.deliveries)
    assert "secret-chat-token" not in json.dumps(alert.deliveries)

    # The next check: the group was alerted, more of the same is no new alert.
    fail_jobs(integration, upstream, 3, max_attempts=1, start=100)
    assert alerts_check()["raised"] == 0
    assert Alert.objects.count() == 1 and len(hook_requests(upstream)) == 1


def test_a_group_that_grows_is_alerted_at_the_threshold_and_each_doubling(
    integration, upstream, rules, channels
):
    rules[AlertKind.CONNECTION_FAILING].enabled = False
    rules[AlertKind.CONNECTION_FAILING].save()
    AlertRule.objects.filter(kind=AlertKind.GROUP_GREW).update(threshold=4, repeat_minutes=0)
    fail_jobs(integration, upstream, 2, max_attempts=1)
    alerts_check()
    fail_jobs(integration, upstream, 1, max_attempts=1, start=10)
    assert alerts_check()["raised"] == 0  # 3 < 4
    fail_jobs(integration, upstream, 1, max_attempts=1, start=20)
    assert alerts_check()["raised"] == 1  # 4
    fail_jobs(integration, upstream, 3, max_attempts=1, start=30)
    assert alerts_check()["raised"] == 0  # 7 < 8
    fail_jobs(integration, upstream, 1, max_attempts=1, start=40)
    assert alerts_check()["raised"] == 1  # 8
    kinds = list(Alert.objects.order_by("id").values_list("kind", "subject"))
    assert [k for k, _ in kinds] == [
        AlertKind.GROUP_OPENED,
        AlertKind.GROUP_GREW,
        AlertKind.GROUP_GREW,
    ]
    assert kinds[1][1].startswith("Error group grew to 4 jobs")
    assert kinds[2][1].startswith("Error group grew to 8 jobs")


def test_acknowledged_and_ignored_groups_raise_nothing(integration, upstream, rules, channels):
    rules[AlertKind.CONNECTION_FAILING].enabled = False
    rules[AlertKind.CONNECTION_FAILING].save()
    fail_jobs(integration, upstream, 2, max_attempts=1)
    ErrorGroup.objects.update(state="acknowledged")
    assert alerts_check()["raised"] == 0
    ErrorGroup.objects.update(state="ignored")
    assert alerts_check()["raised"] == 0


def test_a_connection_down_for_a_minute_is_one_alert_not_one_per_job(
    integration, upstream, rules, channels, clock
):
    """Each job fails once, spread over a minute: one connection alert, and no group
    alert while the jobs wait for their retries."""
    upstream.default = Reply(status=503)
    flow = failing_flow(max_attempts=5)
    for n in range(12):
        jobs.job_run(job_id=make_job(flow, integration, reference=f"ORD-{n}").pk)
        clock.advance(seconds=10)
        if n == 3:
            # 4 failed calls over 30 s: fewer than 5, and a short blip raises nothing.
            assert alerts_check(now=clock.now)["raised"] == 0
    upstream.default = Reply()
    for _ in range(3):
        alerts_check(now=clock.now)
        clock.advance(seconds=60)

    [alert] = Alert.objects.exclude(kind=AlertKind.DIGEST)
    assert alert.kind == AlertKind.CONNECTION_FAILING
    assert alert.subject == "Connection erp-test keeps failing"
    assert "its last 5 calls failed over 40 s" in alert.text and "HTTP 503" in alert.text
    assert alert.repeats == 2  # raised again by the next two checks, counted on it
    assert ErrorGroup.objects.count() == 1
    assert len(hook_requests(upstream)) == 1

    # A success ends the run of failures.
    rule = rules[AlertKind.CONNECTION_FAILING]
    assert connection_failing(integration.erp, rule=rule, now=clock.now)
    ApiCall.objects.create(connection=integration.erp, method="GET", url="x", status_code=200)
    assert connection_failing(integration.erp, rule=rule, now=clock.now) == ""


def test_client_errors_are_not_the_connections_failure(integration, upstream, rules, clock):
    for n in range(6):
        code = 401 if n == 5 else 422
        ApiCall.objects.create(connection=integration.erp, method="POST", url="x", status_code=code)
        clock.advance(seconds=10)
    assert alerts_check(now=clock.now)["raised"] == 0
    for _ in range(5):
        ApiCall.objects.create(connection=integration.erp, method="POST", url="x", status_code=403)
        clock.advance(seconds=10)
    assert alerts_check(now=clock.now)["raised"] == 1


def test_a_storm_is_capped_and_the_rest_goes_into_one_digest(
    integration, upstream, rules, channels, settings, clock
):
    settings.INTEGRATIONS = {**settings.INTEGRATIONS, "ALERTS_MAX_AT_ONCE": 2}
    rules[AlertKind.CONNECTION_FAILING].enabled = False
    rules[AlertKind.CONNECTION_FAILING].save()
    for n in range(5):
        make_job(
            make_flow(f"flow-{n}", steps=[("fail", "tests.fail", {})]),
            integration,
        )
    for job in Job.objects.all():
        Job.objects.filter(pk=job.pk).update(max_attempts=1)
        jobs.job_run(job_id=job.pk)
    assert ErrorGroup.objects.count() == 5

    result = alerts_check(now=clock.now)
    assert (result["raised"], result["held"], result["sent"]) == (5, 3, 3)  # 2 + a digest
    digest = Alert.objects.get(kind=AlertKind.DIGEST)
    assert digest.subject == "Digest: 3 alert(s) held back, 0 repeating"
    assert digest.status == AlertStatus.SENT
    assert Alert.objects.filter(status=AlertStatus.DIGESTED, digest=digest).count() == 3
    assert len(hook_requests(upstream)) == 3

    # Another digest waits ALERTS_DIGEST_MINUTES, whatever piles up.
    Alert.objects.filter(kind=AlertKind.GROUP_OPENED).update(repeats=4)
    clock.advance(minutes=5)
    assert alerts_digest(now=clock.now) is None
    clock.advance(minutes=11)
    later = alerts_digest(now=clock.now)
    assert later.subject == "Digest: 0 alert(s) held back, 5 repeating"
    assert "again 4 time(s)" in later.text
    clock.advance(minutes=16)
    assert alerts_digest(now=clock.now) is None  # every repeat was reported


def test_backlog_and_latency_alerts(integration, rules, channels, clock):
    AlertRule.objects.filter(kind=AlertKind.BACKLOG).update(threshold=3)
    AlertRule.objects.filter(kind=AlertKind.LATENCY).update(threshold=600)
    flow = failing_flow()
    for n in range(3):
        make_job(flow, integration, reference=f"ORD-{n}")
    clock.advance(seconds=601)
    alerts_check(now=clock.now)
    kinds = dict(Alert.objects.values_list("kind", "subject"))
    assert kinds[AlertKind.BACKLOG] == "Backlog: 3 waiting to run"
    assert kinds[AlertKind.LATENCY] == "Latency: the oldest job has waited 601 s"


def test_a_failed_delivery_is_tried_again_then_left_failed(integration, upstream, rules, clock):
    AlertChannel.objects.create(name="chat", kind="webhook", webhook_url=upstream.url + HOOK_PATH)
    AlertRule.objects.filter(kind=AlertKind.BACKLOG).update(threshold=1)
    make_job(failing_flow(), integration)
    upstream.default = Reply(status=500)

    alerts_check(now=clock.now)
    alert = Alert.objects.get()
    assert alert.status == AlertStatus.PENDING
    for _ in range(2):
        clock.advance(minutes=1)
        alerts_check(now=clock.now)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.FAILED
    assert [d["answer"] for d in alert.deliveries] == ["HTTP 500"] * 3
    assert len(hook_requests(upstream)) == 3

    # An unreachable webhook: the error is recorded without its URL (the chat's token).
    upstream.default = Reply()
    AlertChannel.objects.update(webhook_url="http://127.0.0.1:9" + HOOK_PATH)
    Alert.objects.update(status=AlertStatus.PENDING, deliveries=[])
    alerts_check(now=clock.now)
    alert.refresh_from_db()
    assert "ConnectionError" in alert.deliveries[0]["answer"]
    assert "secret-chat-token" not in json.dumps(alert.deliveries)


def test_channels_take_their_kinds_and_an_alert_no_channel_takes_is_kept(
    integration, upstream, rules, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    AlertChannel.objects.create(
        name="finance", kind="email", recipients="books@example.com", kinds=["reconciliation"]
    )
    AlertChannel.objects.create(name="off", kind="email", recipients="x@example.com", enabled=False)
    AlertRule.objects.filter(kind=AlertKind.BACKLOG).update(threshold=1)
    make_job(failing_flow(), integration)

    alerts_check()
    assert Alert.objects.get().status == AlertStatus.NO_CHANNEL
    assert mail.outbox == []


def test_a_disabled_rule_raises_nothing(integration, rules):
    AlertRule.objects.filter(kind=AlertKind.BACKLOG).update(threshold=1, enabled=False)
    make_job(failing_flow(), integration)
    assert alerts_check()["raised"] == 0


def test_every_kind_gets_its_rule_once(db):
    AlertRule.objects.all().delete()  # migrate installed them
    assert alert_rules_install() == 6
    AlertRule.objects.filter(kind=AlertKind.BACKLOG).update(threshold=7)
    assert alert_rules_install() == 0
    assert AlertRule.objects.get(kind=AlertKind.BACKLOG).threshold == 7


def test_a_check_without_rule_rows_uses_the_shipped_rules(integration, upstream):
    AlertRule.objects.all().delete()
    fail_jobs(integration, upstream, 1, max_attempts=1)
    assert alerts_check()["raised"] == 1
    assert Alert.objects.get().kind == AlertKind.GROUP_OPENED


def test_a_channel_that_failed_is_tried_again_without_the_others(
    integration, upstream, rules, channels, clock
):
    AlertRule.objects.filter(kind=AlertKind.BACKLOG).update(threshold=1)
    make_job(failing_flow(), integration)
    upstream.default = Reply(status=500)  # the chat is down, the mail goes out
    alerts_check(now=clock.now)
    alert = Alert.objects.get()
    assert alert.status == AlertStatus.PENDING and len(mail.outbox) == 1
    upstream.default = Reply()
    clock.advance(minutes=1)
    alerts_check(now=clock.now)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.SENT
    assert len(mail.outbox) == 1  # not mailed twice
    assert [(d["channel"], d["ok"]) for d in alert.deliveries] == [
        ("ops-chat", False),
        ("ops-mail", True),
        ("ops-chat", True),
    ]


def test_a_failing_alert_source_stops_no_other_alert(integration, upstream, rules, monkeypatch):
    from integrations import registry

    def broken(*, now):
        raise ValueError("a row it cannot read")

    monkeypatch.setattr(registry, "_alert_sources", [broken, *registry._alert_sources])
    AlertRule.objects.filter(kind=AlertKind.BACKLOG).update(threshold=1)
    make_job(failing_flow(), integration)
    assert alerts_check()["raised"] == 1
    assert Alert.objects.get().kind == AlertKind.BACKLOG


def test_a_test_alert_that_fails_is_not_sent_anywhere_else(upstream, channels):
    from django.utils import timezone

    from integrations.services.alerts import alert_send

    hook, _ = channels
    upstream.default = Reply(status=500)
    alert = Alert.objects.create(
        kind=AlertKind.TEST,
        key="test:1",
        subject="Test",
        text="t",
        status=AlertStatus.SENDING,
        tried_at=timezone.now(),
    )
    assert alert_send(alert, channels=[hook]) == AlertStatus.FAILED
    alerts_check()
    assert mail.outbox == []  # the mail channel never got it
