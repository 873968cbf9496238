import pytest

from integrations.mapping import Rule
from integrations.models import Flow, Mapping
from integrations.services.flows import (
    FlowSpec,
    StepSpec,
    flow_condition_holds,
    flow_run_steps,
    flows_install_defaults,
    flows_matching,
)
from tests.conftest import make_flow, make_job
from tests.support import actions as test_actions

pytestmark = pytest.mark.django_db


def spec(version=1, target="value"):
    return FlowSpec(
        key="demo-flow",
        name="Demo",
        trigger_source="stripe",
        trigger_event="payment_intent.succeeded",
        version=version,
        steps=(StepSpec("echo", "tests.echo", (Rule(target, "event.reference"),)),),
    )


def test_install_creates_flow_steps_and_mapping():
    report = flows_install_defaults({"demo-flow": spec()})
    assert report.created == ["demo-flow"]
    flow = Flow.objects.get(key="demo-flow")
    assert flow.shipped_version == 1
    step = flow.steps.get()
    assert (step.name, step.action, step.mapping.key) == ("echo", "tests.echo", "demo-flow.echo")
    assert list(step.mapping.fields.values_list("target", "source")) == [
        ("value", "event.reference")
    ]
    assert flows_install_defaults({"demo-flow": spec()}).unchanged == ["demo-flow"]


def test_upgrade_replaces_an_untouched_flow():
    flows_install_defaults({"demo-flow": spec()})
    report = flows_install_defaults({"demo-flow": spec(version=2, target="amount")})
    assert report.upgraded == ["demo-flow"]
    flow = Flow.objects.get()
    assert flow.shipped_version == 2
    assert list(flow.steps.get().mapping.fields.values_list("target", flat=True)) == ["amount"]
    assert Mapping.objects.count() == 1


@pytest.mark.parametrize("edited", ["flow", "mapping"])
def test_upgrade_never_overwrites_operator_changes(edited):
    flows_install_defaults({"demo-flow": spec()})
    flow = Flow.objects.get()
    if edited == "flow":
        flow.customized = True
        flow.trigger_event = "charge.succeeded"
        flow.save()
    else:
        Mapping.objects.update(customized=True)
    report = flows_install_defaults({"demo-flow": spec(version=2, target="amount")})
    assert report.kept_customized == ["demo-flow"]
    flow.refresh_from_db()
    assert flow.shipped_version == 1
    assert list(flow.steps.get().mapping.fields.values_list("target", flat=True)) == ["value"]


def test_unknown_action_fails_before_writing():
    from integrations.kernel.exceptions import ActionNotRegistered

    bad = FlowSpec("bad", "Bad", "stripe", "x", steps=(StepSpec("s", "no.such.action"),))
    with pytest.raises(ActionNotRegistered):
        flows_install_defaults({"bad": bad})
    assert Flow.objects.count() == 0


# --- match ---------------------------------------------------------------------------------
def test_flows_match_by_source_and_event_pattern_and_then_by_condition():
    any_intent = make_flow("any", event="payment_intent.*")
    exact = make_flow("exact", condition="event.data.amount > `100`")
    make_flow("znode", source="znode", event="payment_intent.succeeded")
    Flow.objects.filter(pk=make_flow("off", event="*").pk).update(enabled=False)
    matched = flows_matching(source="stripe", event_type="payment_intent.succeeded")
    assert sorted(f.key for f in matched) == ["any", "exact"]
    assert flows_matching(source="stripe", event_type="charge.succeeded") == []
    assert flow_condition_holds(any_intent, {}) is True  # no condition
    assert flow_condition_holds(exact, {"event": {"data": {"amount": 150}}}) is True
    assert flow_condition_holds(exact, {"event": {"data": {"amount": 50}}}) is False


# --- run -----------------------------------------------------------------------------------
class Hooks:
    def __init__(self):
        self.seen = []

    def starting(self, step):
        self.seen.append(("start", step.name))

    def finished(self, step, output):
        self.seen.append(("done", step.name, output["value"]))


def test_flow_run_steps_runs_what_is_unfinished_in_order_each_reading_the_last(integration):
    flow = make_flow(
        "chain",
        steps=[
            ("a", "tests.echo", {"value": "event.reference"}),
            ("b", "tests.echo", {"value": "steps.a.value"}),
            ("c", "tests.echo", {"value": "steps.b.value"}),
        ],
    )
    job = make_job(flow, integration, reference="ORD-7")
    job.step_outputs = {"a": {"value": "ORD-7 (earlier attempt)"}}
    hooks = Hooks()
    flow_run_steps(job=job, attempt=None, hooks=hooks)
    assert hooks.seen == [
        ("start", "b"),
        ("done", "b", "ORD-7 (earlier attempt)"),
        ("start", "c"),
        ("done", "c", "ORD-7 (earlier attempt)"),
    ]
    assert [call["step"] for call in test_actions.CALLS] == ["b", "c"]  # a is never repeated
