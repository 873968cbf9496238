"""The flow designer and the mapping editor in the admin (issue 14, Deliver 1-4): the
flow drawn, an invalid flow refused with its reasons, every save a version with its
author; the mapping preview on a real job (an error row too) and the suggestions,
each behind its permission, writing nothing."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission

from integrations.choices import JobStatus
from integrations.models import FlowStep, FlowVersion, Job, Mapping, MappingField
from tests.conftest import make_flow, make_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def flow():
    return make_flow(
        "designed",
        event="payment_intent.succeeded",
        condition="event.reference",
        steps=[
            ("first", "tests.echo", {"value": "event.reference"}),
            ("second", "tests.echo", {"value": "steps.first.value"}),
        ],
    )


def flow_form(flow, steps, **changes) -> dict:
    data = {
        "key": flow.key,
        "name": flow.name,
        "description": flow.description,
        "trigger_source": flow.trigger_source,
        "trigger_event": flow.trigger_event,
        "condition": flow.condition,
        "enabled": "on",
        "max_attempts": "",
        "retry_base_seconds": "",
        "retry_max_seconds": "",
        "change_reason": "designer test",
        "steps-TOTAL_FORMS": str(len(steps)),
        "steps-INITIAL_FORMS": str(sum(1 for s in steps if s.get("id"))),
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
        **changes,
    }
    for i, step in enumerate(steps):
        for key, value in step.items():
            data[f"steps-{i}-{key}"] = value
        data[f"steps-{i}-flow"] = str(flow.pk)
    return data


def stored_steps(flow) -> list[dict]:
    return [
        {
            "id": str(s.pk),
            "position": str(s.position),
            "name": s.name,
            "action": s.action,
            "enabled": "on" if s.enabled else "",
            "mapping": str(s.mapping_id or ""),
        }
        for s in FlowStep.objects.filter(flow=flow).order_by("position")
    ]


def test_the_flow_page_draws_the_flow_and_its_actions(admin_client, flow):
    page = admin_client.get(f"/admin/integrations/flow/{flow.pk}/change/").content.decode()
    assert 'id="flow-designer"' in page
    assert "payment_intent.succeeded" in page and "event.reference" in page
    assert page.index('data-step="first"') < page.index('data-step="second"')
    assert "No problem found" in page
    assert f"/admin/integrations/mapping/{flow.steps.get(name='first').mapping_id}/change/" in page
    assert "payments.collect_payment" in page and "Extra keys for the PaymentIntent" in page


def test_an_invalid_flow_is_not_saved_and_says_why(admin_client, flow):
    steps = stored_steps(flow)
    steps[0]["action"] = "payments.fetch_order"  # needs order_id, which no row maps
    url = f"/admin/integrations/flow/{flow.pk}/change/"

    response = admin_client.post(url, flow_form(flow, steps, trigger_event="payment_intent.x*"))

    page = response.content.decode()
    assert response.status_code == 200 and "This flow would fail, so it is not saved" in page
    assert "no stripe connector emits an event matching" in page
    assert "required input &#x27;order_id&#x27; of payments.fetch_order is not mapped" in page
    assert FlowStep.objects.get(flow=flow, name="first").action == "tests.echo"
    flow.refresh_from_db()
    assert flow.trigger_event == "payment_intent.succeeded" and not FlowVersion.objects.exists()


def test_a_valid_change_is_saved_as_a_version_with_its_author(admin_client, flow):
    steps = stored_steps(flow)
    steps[1]["enabled"] = ""  # disable the second step
    url = f"/admin/integrations/flow/{flow.pk}/change/"

    response = admin_client.post(url, flow_form(flow, steps))

    assert response.status_code == 302, response.content.decode()[-3000:]
    assert FlowStep.objects.get(flow=flow, name="second").enabled is False
    version = FlowVersion.objects.get(flow=flow)
    assert (version.created_by, version.reason) == ("admin", "designer test")


def test_a_mapping_row_that_would_break_its_flow_is_refused(admin_client, flow):
    mapping = Mapping.objects.get(key="designed-first")
    row = MappingField.objects.get(mapping=mapping)
    data = {
        "key": mapping.key,
        "description": "",
        "change_reason": "",
        "fields-TOTAL_FORMS": "2",
        "fields-INITIAL_FORMS": "1",
        "fields-MIN_NUM_FORMS": "0",
        "fields-MAX_NUM_FORMS": "1000",
        "fields-0-id": str(row.pk),
        "fields-0-mapping": str(mapping.pk),
        "fields-0-position": "0",
        "fields-0-target": "value",
        "fields-0-source": "event.reference",
        "fields-0-transform": "rot13",
        "fields-0-default": "",
        "fields-1-mapping": str(mapping.pk),
        "fields-1-position": "1",
        "fields-1-target": "colour",
        "fields-1-source": "event.id",
        "fields-1-transform": "",
        "fields-1-default": "",
    }

    page = admin_client.post(f"/admin/integrations/mapping/{mapping.pk}/change/", data)

    text = page.content.decode()
    assert "These rows would make a flow fail" in text
    assert "no transform is registered under &#x27;rot13&#x27;" in text
    assert "action tests.echo takes no input &#x27;colour&#x27;" in text
    assert MappingField.objects.filter(mapping=mapping).count() == 1


def preview_post(client, mapping, rows, sample):
    data = {
        "fields-TOTAL_FORMS": str(len(rows)),
        "_preview_sample": sample,
        "_preview_document": "",
    }
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"fields-{i}-{key}"] = value
    return client.post(f"/admin/mapping-preview/{mapping.pk}/", data)


def test_the_preview_runs_the_rows_as_typed_on_a_real_job_and_writes_nothing(
    admin_client, flow, integration
):
    job = make_job(flow, integration, reference="ORD-7")
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.QUARANTINED,
        step_outputs={"first": {"value": "ORD-7"}},
    )
    mapping = Mapping.objects.get(key="designed-second")
    page = admin_client.get(f"/admin/integrations/mapping/{mapping.pk}/change/").content.decode()
    assert f'value="job:{job.pk}"' in page and "quarantined job" in page

    before = (Job.objects.get(pk=job.pk).updated_at, MappingField.objects.count())
    response = preview_post(
        admin_client,
        mapping,
        [
            {
                "position": "0",
                "target": "value",
                "source": "steps.first.value",
                "transform": "lower",
            },
            {"position": "1", "target": "amount", "source": "event.nothing", "required": "on"},
            {"position": "2", "target": "ghost", "source": "x", "DELETE": "on"},
        ],
        f"job:{job.pk}",
    )

    text = response.content.decode()
    assert response.status_code == 200
    assert (
        '<tr data-target="value"><td><code>value</code></td>' in text
        and "&quot;ord-7&quot;" in text
    )
    assert "amount is required but event.nothing gave no value" in text
    assert "ghost" not in text
    assert json.loads(
        text.split('id="preview-inputs">')[1].split("</code>")[0].replace("&quot;", '"')
    ) == {"value": "ord-7"}
    assert (Job.objects.get(pk=job.pk).updated_at, MappingField.objects.count()) == before


def test_a_pasted_sample_and_its_mistakes_are_said(admin_client, flow):
    mapping = Mapping.objects.get(key="designed-first")
    url = f"/admin/mapping-preview/{mapping.pk}/"
    rows = {"fields-TOTAL_FORMS": "1", "fields-0-target": "value", "fields-0-source": "a.b"}
    answer = admin_client.post(url, {**rows, "_preview_sample": "paste", "_preview_document": "{"})
    assert "The pasted document is not JSON" in answer.content.decode()
    answer = admin_client.post(
        url, {**rows, "_preview_sample": "paste", "_preview_document": '{"a": {"b": 5}}'}
    )
    assert "<code>5</code>" in answer.content.decode()


def test_the_preview_and_suggestions_need_the_view_permission(client, django_user_model, flow):
    mapping = Mapping.objects.get(key="designed-first")
    user = django_user_model.objects.create_user("nobody", password="x", is_staff=True)
    client.force_login(user)
    for path in ("mapping-preview", "mapping-suggest"):
        assert client.post(f"/admin/{path}/{mapping.pk}/", {}).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_mapping"))
    assert client.get(f"/admin/mapping-preview/{mapping.pk}/").status_code == 403  # POST only
    assert client.post(f"/admin/mapping-preview/{mapping.pk}/", {}).status_code == 200
    job = Job.objects.create(flow=flow, max_attempts=1, context={"secretish": "payload"})
    shown = client.post(
        f"/admin/mapping-preview/{mapping.pk}/",
        {"fields-TOTAL_FORMS": "0", "_preview_sample": f"job:{job.pk}"},
    ).content.decode()
    assert "You may not view jobs" in shown and "payload" not in shown


def test_suggestions_for_the_inputs_no_row_maps(admin_client, flow):
    mapping = Mapping.objects.get(key="designed-first")
    answer = admin_client.post(
        f"/admin/mapping-suggest/{mapping.pk}/",
        {
            "fields-TOTAL_FORMS": "1",
            "fields-0-target": "value",
            "fields-0-source": "event.reference",
            "_preview_sample": "paste",
            "_preview_document": json.dumps({"payment": {"amount": "19.99", "value": "x"}}),
        },
    )
    text = answer.content.decode()
    assert 'data-suggest="amount"' in text and "<code>payment.amount</code>" in text
    assert 'data-suggest="value"' not in text  # mapped already


def test_a_kept_sample_is_offered_and_previewed(admin_client, flow):
    from integrations.models import MappingSample

    mapping = Mapping.objects.get(key="designed-first")
    kept = MappingSample.objects.create(
        mapping=mapping, name="an order with no reference", document={"event": {"id": "e1"}}
    )
    page = admin_client.get(f"/admin/integrations/mapping/{mapping.pk}/change/").content.decode()
    assert f'value="sample:{kept.pk}"' in page and "kept sample: an order with no reference" in page
    answer = preview_post(
        admin_client,
        mapping,
        [{"position": "0", "target": "value", "source": "event.reference", "required": "on"}],
        f"sample:{kept.pk}",
    )
    assert "value is required but event.reference gave no value" in answer.content.decode()


def test_no_secret_of_a_sample_is_shown_by_the_preview_or_the_suggestions(admin_client, flow):
    mapping = Mapping.objects.get(key="designed-first")
    secret = "pi_3Abc_secret_Zyx987"
    document = json.dumps(
        {"payment": {"id": "pi_3Abc", "client_secret": secret, "note": f"see {secret}"}}
    )
    rows = {
        "fields-TOTAL_FORMS": "2",
        "fields-0-target": "value",
        "fields-0-source": "payment",
        "fields-1-target": "amount",
        "fields-1-source": "payment.note",
        "_preview_sample": "paste",
        "_preview_document": document,
    }
    for path in ("mapping-preview", "mapping-suggest"):
        text = admin_client.post(f"/admin/{path}/{mapping.pk}/", rows).content.decode()
        assert secret not in text and "Zyx987" not in text, path
    preview = admin_client.post(f"/admin/mapping-preview/{mapping.pk}/", rows).content.decode()
    assert "[redacted]" in preview
