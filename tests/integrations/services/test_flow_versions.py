"""Flow versions (issue 14, Deliver 5): every definition a flow has had is kept,
numbered, with who and why; a job keeps the version it started with, so a mapping
changed meanwhile cannot break it; an operator's retry takes the flow as it is then."""

from __future__ import annotations

import pytest

from integrations.choices import JobStatus
from integrations.models import FlowStep, FlowVersion, Job, MappingField
from integrations.services.flow_versions import (
    flow_definition,
    flow_version_save,
    versions_diff,
)
from integrations.services.jobs import job_requeue, job_run
from tests.conftest import make_flow, make_job
from tests.support import actions as test_actions

pytestmark = pytest.mark.django_db


def chain():
    return make_flow(
        "versioned",
        steps=[
            ("first", "tests.echo", {"value": "event.reference"}),
            ("second", "tests.fail", {}),
        ],
    )


def test_a_running_job_keeps_the_version_it_started_with(integration):
    flow = chain()
    job = make_job(flow, integration, reference="ORD-1")
    job_run(job_id=job.pk)  # first step done; the second fails, to be retried
    job.refresh_from_db()
    assert job.status == JobStatus.RETRYING and job.flow_version is not None
    started = job.flow_version
    assert started.number == 1 and started.created_by == ""

    # Meanwhile someone changes the flow: the second step would now succeed.
    FlowStep.objects.filter(flow=flow, name="second").update(action="tests.echo")
    Job.objects.filter(pk=job.pk).update(next_attempt_at=None)
    job_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.flow_version_id == started.pk  # the in-flight job ran what it started with
    assert job.status == JobStatus.RETRYING and "upstream down" in job.last_error
    assert FlowVersion.objects.filter(flow=flow).count() == 1

    job_requeue(job=job, note="flow fixed")  # an operator's retry takes the flow as it is
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.flow_version.number == 2
    assert [c["step"] for c in test_actions.CALLS] == ["first", "second"]


def test_equal_definitions_are_one_version_and_a_save_names_its_author(integration):
    flow = chain()
    saved = flow_version_save(flow, user="dev", reason="first cut")
    assert (saved.number, saved.created_by, saved.reason) == (1, "dev", "first cut")
    assert flow_version_save(flow, user="other", reason="again").pk == saved.pk  # unchanged

    MappingField.objects.filter(mapping__key="versioned-first").update(source="event.id")
    changed = flow_version_save(flow, user="dev", reason="read the id")
    assert changed.number == 2
    assert versions_diff(saved.definition, changed.definition) == [
        "step first: value: event.reference → event.id"
    ]


def test_a_readable_diff_of_steps_added_moved_disabled_and_rows_changed(integration):
    flow = chain()
    before = flow_definition(flow)
    FlowStep.objects.filter(flow=flow, name="second").update(position=5, enabled=False)
    FlowStep.objects.filter(flow=flow, name="first").update(position=6)
    FlowStep.objects.create(flow=flow, position=1, name="zero", action="tests.echo")
    field = MappingField.objects.get(mapping__key="versioned-first")
    field.transform, field.required = "upper", True
    field.save()
    MappingField.objects.create(mapping=field.mapping, position=1, target="amount", default="1.00")

    assert versions_diff(before, flow_definition(flow)) == [
        "step zero: added at 1 (tests.echo)",
        "step second: enabled True → False",
        "step first: moved 1 → 3",
        'step first: amount ← default "1.00": added',
        "step first: value: event.reference → event.reference | upper (required)",
    ]


def test_a_version_is_reverted_to_from_the_admin_with_the_change_permission(
    integration, client, django_user_model
):
    from django.contrib.auth.models import Permission

    flow = chain()
    first = flow_version_save(flow, user="dev", reason="first cut")
    MappingField.objects.filter(mapping__key="versioned-first").update(source="event.id")
    FlowStep.objects.filter(flow=flow, name="second").update(enabled=False)
    flow_version_save(flow, user="dev", reason="second cut")
    user = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_flowversion"))
    client.force_login(user)
    url = "/admin/integrations/flowversion/"
    page = client.get(f"{url}{first.pk}/change/")
    assert page.status_code == 200 and "step first: added at 1" in page.content.decode()

    client.post(url, {"action": "revert", "_selected_action": [first.pk]})
    assert FlowVersion.objects.filter(flow=flow).count() == 2  # refused: no permission

    user.user_permissions.add(Permission.objects.get(codename="change_flow"))
    client.post(url, {"action": "revert", "_selected_action": [first.pk]})

    latest = FlowVersion.objects.filter(flow=flow).order_by("-number").first()
    assert (latest.number, latest.created_by, latest.reason) == (3, "viewer", "reverted to v1")
    assert latest.digest == first.digest
    assert flow_definition(flow) == first.definition
    page = client.get(f"{url}{latest.pk}/change/").content.decode()
    assert "step first: value: event.id → event.reference" in page
    assert "step second: enabled False → True" in page


def test_a_revert_after_the_flow_was_renamed_reverts_that_flow(integration):
    from integrations.models import Flow
    from integrations.services.flow_versions import flow_version_revert

    flow = chain()
    first = flow_version_save(flow, user="dev", reason="first cut")
    Flow.objects.filter(pk=flow.pk).update(key="renamed")
    MappingField.objects.filter(mapping__key="versioned-first").update(source="event.id")

    made = flow_version_revert(first, user="dev")

    assert made.flow_id == flow.pk
    assert not Flow.objects.filter(key="versioned").exists()  # no flow made under the old key
    assert MappingField.objects.get(mapping__key="versioned-first").source == "event.reference"
