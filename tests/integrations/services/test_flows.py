import pytest

from integrations.mapping import Rule
from integrations.models import Flow, Mapping
from integrations.services.flows import FlowSpec, StepSpec, flows_install_defaults

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
