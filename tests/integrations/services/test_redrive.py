"""Fix and re-drive (issue 14, Deliver 3 and the second "Done when"): a quarantined
group's jobs are tried with a draft of the failing step's mapping (old against new
per record, nothing written, no call out), then the mapping is saved as a version
and exactly the chosen jobs are retried, from the admin, each step audited."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from integrations.choices import JobStatus
from integrations.kernel.exceptions import DataError
from integrations.mapping import Rule
from integrations.models import ApiCall, ErrorGroup, FlowVersion, Job, MappingField
from integrations.services.jobs import job_run
from integrations.services.redrive import redrive_apply, redrive_plan
from tests.conftest import make_flow, make_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def broken(integration):
    """A flow whose second step reads a field the events do not have: each job is
    quarantined at once (bad data is not retried) into one error group."""
    flow = make_flow(
        "needs-fix",
        steps=[
            ("first", "tests.echo", {"value": "event.reference"}),
            ("second", "tests.echo", {}),
        ],
    )
    step = flow.steps.get(name="second")
    from integrations.models import Mapping

    step.mapping = Mapping.objects.create(key="needs-fix-second")
    step.save()
    MappingField.objects.create(
        mapping=step.mapping, position=0, target="value", source="event.order_no", required=True
    )
    jobs = [make_job(flow, integration, reference=f"ORD-{i}") for i in range(3)]
    for job in jobs:
        job_run(job_id=job.pk)
    group = ErrorGroup.objects.get()
    assert Job.objects.filter(error_group=group, status=JobStatus.QUARANTINED).count() == 3
    return flow, group, jobs


FIX = [Rule("value", "steps.first.value", required=True)]


def test_a_draft_is_tried_on_every_failed_job_old_against_new_writing_nothing(broken):
    _, group, jobs = broken
    calls, fields = ApiCall.objects.count(), list(MappingField.objects.values_list())

    plan = redrive_plan(group, FIX)

    assert [row.job_id for row in plan.rows] == [j.pk for j in jobs]
    for row in plan.rows:
        assert not row.old.ok and "value is required but event.order_no" in row.old.rows[0].error
        assert row.new.ok and row.new.inputs == {"value": row.reference}
    assert plan.problems == []
    assert (ApiCall.objects.count(), list(MappingField.objects.values_list())) == (calls, fields)
    assert redrive_plan(group, [Rule("colour", "x")]).problems == [
        "step second · colour: action tests.echo takes no input 'colour'"
    ]


def test_the_fix_is_saved_and_exactly_the_chosen_jobs_succeed(broken):
    flow, group, jobs = broken
    chosen = [jobs[0].pk, jobs[2].pk]

    _, retried = redrive_apply(group, FIX, chosen, operator="ana", reason="read the first step")

    assert retried == chosen
    assert list(
        MappingField.objects.filter(mapping__key="needs-fix-second").values_list("target", "source")
    ) == [("value", "steps.first.value")]
    version = FlowVersion.objects.filter(flow=flow).order_by("-number").first()
    assert version.created_by == "ana" and "re-drive of group" in version.reason
    for pk in retried:
        job_run(job_id=pk)
    statuses = dict(Job.objects.filter(flow=flow).values_list("pk", "status"))
    assert statuses == {
        jobs[0].pk: JobStatus.SUCCEEDED,
        jobs[1].pk: JobStatus.QUARANTINED,  # not chosen: left for its own decision
        jobs[2].pk: JobStatus.SUCCEEDED,
    }
    notes = Job.objects.get(pk=jobs[0].pk).attempt_log.values_list("note", flat=True)
    assert any("re-driven after: read the first step" in note for note in notes)


def test_a_fix_that_would_break_the_flow_is_refused_and_nothing_moves(broken):
    _, group, jobs = broken
    with pytest.raises(DataError, match="takes no input 'colour'"):
        redrive_apply(group, [Rule("colour", "x")], [jobs[0].pk], operator="ana", reason="")
    assert MappingField.objects.get(mapping__key="needs-fix-second").source == "event.order_no"
    assert Job.objects.get(pk=jobs[0].pk).status == JobStatus.QUARANTINED


def test_the_admin_page_tries_then_saves_and_re_drives(broken, client, django_user_model):
    flow, group, jobs = broken
    user = django_user_model.objects.create_user("ops", password="x", is_staff=True)
    client.force_login(user)
    url = f"/admin/redrive/{group.pk}/"
    assert client.get(url).status_code == 403
    for codename in ("operate_job", "change_mapping", "view_errorgroup"):
        user.user_permissions.add(Permission.objects.get(codename=codename))

    page = client.get(url).content.decode()
    assert 'value="event.order_no"' in page and f'data-job="{jobs[0].pk}"' in page
    group_page = client.get(f"/admin/integrations/errorgroup/{group.pk}/change/").content.decode()
    assert url in group_page

    form = {
        "rows": "1",
        "row-0-target": "value",
        "row-0-source": "steps.first.value",
        "row-0-required": "on",
        "job": [str(j.pk) for j in jobs],
        "try": "1",
    }
    tried = client.post(url, form).content.decode()
    assert "3 of 3 would get a valid input" in tried
    assert MappingField.objects.get(mapping__key="needs-fix-second").source == "event.order_no"

    done = client.post(url, {**form, "apply": "1", "reason": "read the first step"})
    assert done.status_code == 302
    for job in jobs:
        job_run(job_id=job.pk)
    assert set(Job.objects.filter(flow=flow).values_list("status", flat=True)) == {
        JobStatus.SUCCEEDED
    }
    group.refresh_from_db()
    assert group.state == "resolved"
