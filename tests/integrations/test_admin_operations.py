"""The admin pages of error groups and alerts: triage and bulk actions by permission,
the webhook URL never shown."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.urls import reverse

from integrations.choices import ErrorGroupState, JobStatus
from integrations.models import Alert, AlertChannel, ErrorGroup, Job
from integrations.roles import DEVELOPERS, FINANCE, OPERATORS
from integrations.services import jobs
from tests.conftest import make_flow, make_job
from tests.support.upstream import Reply

pytestmark = pytest.mark.django_db

CHAT_URL_PATH = "/hooks/T000/B000/very-secret-chat-token"


def member(django_user_model, role: str, name: str):
    user = django_user_model.objects.create_user(name, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return django_user_model.objects.get(pk=user.pk)


@pytest.fixture
def group(integration, upstream):
    upstream.default = Reply(status=503)
    flow = make_flow(
        "write", steps=[("write", "tests.call_upstream", {"reference": "event.reference"})]
    )
    for n in (1, 2):
        job = make_job(flow, integration, reference=f"ORD-{n}")
        Job.objects.filter(pk=job.pk).update(max_attempts=1)
        jobs.job_run(job_id=job.pk)
    upstream.default = Reply()
    return ErrorGroup.objects.get()


def test_an_operator_finds_the_group_and_retries_its_jobs(client, django_user_model, group):
    operator = member(django_user_model, OPERATORS, "op")
    client.force_login(operator)

    page = client.get(reverse("admin:integrations_errorgroup_changelist"))
    assert page.status_code == 200
    assert b"tests.write: HTTP &lt;n&gt;" in page.content
    detail = client.get(reverse("admin:integrations_errorgroup_change", args=[group.pk]))
    assert detail.status_code == 200
    assert b"ORD-1" in detail.content and b"Quarantined: 2" in detail.content
    assert f"error_group__id__exact={group.pk}".encode() in detail.content

    response = client.post(
        reverse("admin:integrations_errorgroup_changelist"),
        {"action": "retry_groups", "_selected_action": [group.pk]},
    )
    assert response.status_code == 302
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.PENDING}
    assert group.history.latest().history_user == operator

    jobs_page = client.get(
        reverse("admin:integrations_job_changelist"), {"error_group__id__exact": group.pk}
    )
    assert jobs_page.status_code == 200 and b"ORD-2" in jobs_page.content


def test_triage_in_the_change_form_is_kept_in_the_history(client, django_user_model, group):
    operator = member(django_user_model, OPERATORS, "op")
    client.force_login(operator)
    url = reverse("admin:integrations_errorgroup_change", args=[group.pk])
    response = client.post(
        url,
        {
            "state": ErrorGroupState.ACKNOWLEDGED,
            "assignee": operator.pk,
            "note": "on it",
            "shown_state": ErrorGroupState.OPEN,
            "shown_assignee": "",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    group.refresh_from_db()
    assert (group.state, group.assignee) == (ErrorGroupState.ACKNOWLEDGED, operator)
    assert group.occurrences == 2  # only triage is edited
    assert group.history.latest().history_change_reason.endswith("by op: on it")


def test_finance_may_view_a_group_but_neither_triage_nor_retry_it(client, django_user_model, group):
    client.force_login(member(django_user_model, FINANCE, "fin"))
    url = reverse("admin:integrations_errorgroup_change", args=[group.pk])
    assert client.get(url).status_code == 200
    client.post(url, {"state": ErrorGroupState.IGNORED, "note": "x"})
    client.post(
        reverse("admin:integrations_errorgroup_changelist"),
        {"action": "discard_groups", "_selected_action": [group.pk]},
    )
    group.refresh_from_db()
    assert group.state == ErrorGroupState.OPEN
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.QUARANTINED}


def test_a_past_version_of_a_group_is_never_restored(client, django_user_model, group):
    client.force_login(django_user_model.objects.create_superuser("root"))
    version = group.history.earliest()
    url = reverse(
        "admin:integrations_errorgroup_simple_history", args=[group.pk, version.history_id]
    )
    assert client.get(url).status_code == 200
    assert client.post(url, {"state": "ignored"}).status_code == 403


def test_a_chat_webhook_url_is_write_only(client, django_user_model, upstream):
    developer = member(django_user_model, DEVELOPERS, "dev")
    client.force_login(developer)
    add = reverse("admin:integrations_alertchannel_add")
    response = client.post(
        add,
        {
            "name": "ops-chat",
            "kind": "webhook",
            "new_webhook_url": upstream.url + CHAT_URL_PATH,
            "kinds": ["group_opened", "connection_failing"],
            "enabled": "on",
        },
    )
    assert response.status_code == 302, response.content[:3000]
    channel = AlertChannel.objects.get()
    assert channel.kinds == ["group_opened", "connection_failing"]
    page = client.get(reverse("admin:integrations_alertchannel_change", args=[channel.pk]))
    assert b"very-secret-chat-token" not in page.content
    assert b"set (https://127.0.0.1/" in page.content
    history = client.get(reverse("admin:integrations_alertchannel_history", args=[channel.pk]))
    assert b"very-secret-chat-token" not in history.content

    # Saving without a new URL keeps the stored one.
    client.post(
        reverse("admin:integrations_alertchannel_change", args=[channel.pk]),
        {"name": "ops-chat", "kind": "webhook", "enabled": "on"},
    )
    channel.refresh_from_db()
    assert channel.webhook_url == upstream.url + CHAT_URL_PATH

    response = client.post(
        reverse("admin:integrations_alertchannel_changelist"),
        {"action": "send_test", "_selected_action": [channel.pk]},
        follow=True,
    )
    messages = [str(m) for m in response.context["messages"]]
    assert messages[-1] == "ops-chat: sent", messages
    assert [r.path for r in upstream.requests] == [CHAT_URL_PATH]


def test_a_channel_needs_what_its_kind_sends_to(client, django_user_model):
    client.force_login(member(django_user_model, DEVELOPERS, "dev"))
    add = reverse("admin:integrations_alertchannel_add")
    for data, error in (
        ({"name": "m", "kind": "email", "recipients": ""}, b"needs at least one address"),
        ({"name": "m", "kind": "email", "recipients": "ops, x@y.z"}, b"is not an email address"),
        ({"name": "w", "kind": "webhook"}, b"needs its URL"),
    ):
        response = client.post(add, data)
        assert response.status_code == 200 and error in response.content
    assert not AlertChannel.objects.exists()


def test_an_operator_may_not_change_alert_channels_or_send_tests(client, django_user_model):
    channel = AlertChannel.objects.create(name="m", kind="email", recipients="a@b.c")
    client.force_login(member(django_user_model, OPERATORS, "op"))
    url = reverse("admin:integrations_alertchannel_change", args=[channel.pk])
    client.post(url, {"name": "m", "kind": "email", "recipients": "me@evil.test"})
    client.post(
        reverse("admin:integrations_alertchannel_changelist"),
        {"action": "send_test", "_selected_action": [channel.pk]},
    )
    channel.refresh_from_db()
    assert channel.recipients == "a@b.c"
    assert not channel.history.filter(history_type="~").exists()
    assert not Alert.objects.exists() and mail.outbox == []  # no test was sent


def test_a_page_opened_before_the_group_reopened_does_not_resolve_it_again(
    client, django_user_model, group
):
    from integrations.services.error_groups import error_group_triage

    operator = member(django_user_model, OPERATORS, "op")
    error_group_triage(group=group, operator=None, state=ErrorGroupState.RESOLVED)
    client.force_login(operator)
    url = reverse("admin:integrations_errorgroup_change", args=[group.pk])
    shown = client.get(url).context["adminform"].form
    assert shown["shown_state"].value() == ErrorGroupState.RESOLVED
    ErrorGroup.objects.filter(pk=group.pk).update(state=ErrorGroupState.OPEN)  # it came back

    # The operator only assigns it; the page still says resolved.
    client.post(
        url,
        {
            "state": ErrorGroupState.RESOLVED,
            "assignee": operator.pk,
            "shown_state": ErrorGroupState.RESOLVED,
            "shown_assignee": "",
        },
    )
    group.refresh_from_db()
    assert (group.state, group.assignee) == (ErrorGroupState.OPEN, operator)
