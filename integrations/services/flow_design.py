"""Designing flows without code: what an action takes, what is wrong with a flow, and
what a mapping gives on a sample, row by row.

Everything here is pure reading: nothing is written, no system is called. The
designer (admin) and the bundle import ask :func:`flow_problems` before saving; the
mapping editor's preview asks :func:`mapping_preview`.
"""

from __future__ import annotations

import fnmatch
import inspect
import re
import typing
from dataclasses import dataclass
from typing import Any

from integrations import mapping
from integrations.choices import JobStatus, TriggerSource
from integrations.connectors import registry as connectors
from integrations.kernel.exceptions import DataError, IntegrationError, MappingError
from integrations.mapping import Rule
from integrations.models import (
    Flow,
    FlowStep,
    InboundEvent,
    Job,
    LookupTable,
    Mapping,
    MappingSample,
)
from integrations.registry import ActionSpec, all_actions, all_transforms
from integrations.services.flow_versions import definition_rules

STEP_NAME = re.compile(r"^[-a-zA-Z0-9_]+$")
STEP_REFERENCE = re.compile(r"\bsteps\.([-a-zA-Z0-9_]+)")


# --- actions as the designer shows them ---------------------------------------------------
@dataclass(frozen=True)
class InputSpec:
    name: str
    type: str
    """The parameter's annotation as written (``str``, ``int``, ``dict | None``)."""
    required: bool
    default: Any
    help: str


def action_inputs(spec: ActionSpec) -> list[InputSpec]:
    """The action's inputs, in its signature's order, with type, required flag,
    default and help (the action's ``inputs_help``)."""
    signature = inspect.signature(spec.func)
    try:
        hints = typing.get_type_hints(spec.func)
    except Exception:  # an annotation that cannot be resolved shows as written
        hints = {}
    out = []
    for name, param in signature.parameters.items():
        if name == "ctx":
            continue
        hint = hints.get(name, param.annotation)
        text = (
            getattr(hint, "__name__", None)
            if isinstance(hint, type)
            else str(hint).replace("typing.", "")
        )
        required = param.default is inspect.Parameter.empty
        out.append(
            InputSpec(
                name=name,
                type="" if hint is inspect.Parameter.empty else str(text),
                required=required,
                default=None if required else param.default,
                help=spec.inputs_help.get(name, ""),
            )
        )
    return out


def trigger_events(source: str) -> list[str]:
    """The event types a flow of ``source`` can be started by: what the source's
    connector says it emits; for schedule flows, the events the platform files."""
    if source == TriggerSource.SCHEDULE:
        from integrations.services.flows import default_flows

        return sorted(
            {s.trigger_event for s in default_flows().values() if s.trigger_source == source}
        )
    connector = connectors.find(source)
    return sorted(connector.supported_events) if connector is not None else []


# --- what is wrong with a flow -------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    where: str
    """``trigger``, ``condition``, ``step <name>``, ``step <name> · <target>``."""
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def _expression_problem(expression: str) -> str:
    try:
        mapping.compile_expression(expression)
    except MappingError as error:
        return error.message
    return ""


def _transform_problem(spec: str) -> str:
    name, _, arg = spec.partition(":")
    name, arg = name.strip(), arg.strip()
    if name not in all_transforms():
        known = ", ".join(sorted(all_transforms()))
        return f"no transform is registered under {name!r} (known: {known})"
    if name == "lookup":
        if not arg:
            return "lookup needs a table key: lookup:<table>"
        if not LookupTable.objects.filter(key=arg).exists():
            return f"lookup table {arg!r} does not exist"
    return ""


def rule_problems(rule: Rule) -> list[str]:
    problems = []
    if not rule.target or any(not part for part in rule.target.split(".")):
        problems.append(f"target {rule.target!r} is not a field name (dots nest)")
    if rule.source and (problem := _expression_problem(rule.source)):
        problems.append(problem)
    if rule.transform and (problem := _transform_problem(rule.transform)):
        problems.append(problem)
    if rule.required and not rule.source and rule.default is None:
        problems.append("required, but has neither a source nor a default")
    return problems


def flow_problems(definition: dict[str, Any]) -> list[Problem]:
    """Everything that would make the flow fail before any system is called, each
    said where it is: an unknown trigger event, a bad expression, an unknown action
    or transform, an input the action does not take, a required input left unmapped,
    a step read before it runs. An empty list: the flow can be saved."""
    problems: list[Problem] = []
    source, event = definition.get("trigger_source", ""), definition.get("trigger_event", "")
    if source not in TriggerSource.values:
        problems.append(
            Problem("trigger", f"source {source!r} is not one of {TriggerSource.values}")
        )
    elif not event:
        problems.append(Problem("trigger", "an event type is required"))
    else:
        emitted = trigger_events(source)
        if not any(fnmatch.fnmatchcase(e, event) for e in emitted):
            problems.append(
                Problem(
                    "trigger",
                    f"no {source} connector emits an event matching {event!r}"
                    + (f" (it emits {', '.join(emitted)})" if emitted else ""),
                )
            )
    if definition.get("condition") and (problem := _expression_problem(definition["condition"])):
        problems.append(Problem("condition", problem))
    names = [str(step.get("name") or "") for step in definition.get("steps") or []]
    for index, step in enumerate(definition.get("steps") or []):
        problems.extend(_step_problems(step, earlier=names[:index], all_names=names))
    return problems


def _step_problems(step: dict[str, Any], *, earlier: list[str], all_names: list[str]):
    name = str(step.get("name") or "")
    where = f"step {name or '(unnamed)'}"
    if not STEP_NAME.match(name):
        yield Problem(where, "a step needs a name of letters, digits, - and _")
    elif name in earlier:
        yield Problem(where, "two steps have this name")
    spec = all_actions().get(str(step.get("action") or ""))
    if spec is None:
        yield Problem(where, f"no action is registered under {step.get('action')!r}")
    rules = definition_rules(step)
    inputs = [rule.target.split(".")[0] for rule in rules]
    for rule, input_name in zip(rules, inputs, strict=True):
        row = f"{where} · {rule.target or '(no target)'}"
        for problem in rule_problems(rule):
            yield Problem(row, problem)
        for read in STEP_REFERENCE.findall(rule.source):
            if read == name:
                yield Problem(row, f"reads steps.{read}: the step's own output")
            elif read not in all_names:
                yield Problem(row, f"reads steps.{read}: no step has that name")
            elif read not in earlier:
                yield Problem(row, f"reads steps.{read}, which runs later")
        if spec is not None and input_name not in spec.params:
            yield Problem(row, f"action {spec.key} takes no input {input_name!r}")
    targets = [rule.target for rule in rules]
    if len(set(targets)) != len(targets):
        yield Problem(where, "two mapping rows set the same target")
    if spec is not None and step.get("enabled", True):
        for missing in sorted(set(spec.required) - set(inputs)):
            yield Problem(where, f"required input {missing!r} of {spec.key} is not mapped")


# --- the preview ------------------------------------------------------------------------------
@dataclass(frozen=True)
class RowResult:
    target: str
    value: Any = None
    error: str = ""
    used_default: bool = False
    skipped: bool = False
    """No value and not required: the input is left out."""


@dataclass(frozen=True)
class Preview:
    rows: tuple[RowResult, ...]
    inputs: dict[str, Any]
    """The action's input built from the rows that gave a value."""

    @property
    def ok(self) -> bool:
        return not any(row.error for row in self.rows)


def mapping_preview(rules: list[Rule], document: dict[str, Any]) -> Preview:
    """Each row evaluated on its own against ``document`` (the context a job's step
    reads: ``event``-facts, ``integration``, ``steps``): its value, or the exact
    error, so one bad row does not hide the others. Pure: nothing is written."""
    rows: list[RowResult] = []
    inputs: dict[str, Any] = {}
    for rule in rules:
        try:
            value = mapping.evaluate([rule], document)
        except (IntegrationError, ValueError, TypeError, ArithmeticError) as error:
            rows.append(RowResult(rule.target, error=getattr(error, "message", str(error))))
            continue
        if not value:
            rows.append(RowResult(rule.target, skipped=True))
            continue
        leaf = value
        for part in rule.target.split("."):
            leaf = leaf[part]
        found = mapping.search(rule.source, document) if rule.source else None
        rows.append(RowResult(rule.target, value=leaf, used_default=found is None))
        try:
            mapping.set_path(inputs, rule.target, leaf)
        except MappingError as error:
            rows[-1] = RowResult(rule.target, error=error.message)
    return Preview(rows=tuple(rows), inputs=inputs)


# --- samples the preview runs on ------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    key: str
    """``job:<id>`` or ``event:<id>``."""
    label: str


SAMPLES_EACH = 5


def mapping_samples(mapping: Mapping) -> list[Sample]:
    """What a mapping can be previewed on: the samples kept for it, the latest jobs of
    the flows whose steps use it (succeeded: real recent orders; quarantined: the
    records that failed) and, for a flow with no job yet, the latest events of its
    trigger."""
    out: list[Sample] = [
        Sample(f"sample:{pk}", f"kept sample: {name}")
        for pk, name in MappingSample.objects.filter(mapping=mapping).values_list("pk", "name")
    ]
    flows = Flow.objects.filter(steps__mapping=mapping).distinct()
    for flow in flows:
        for status, label in ((JobStatus.QUARANTINED, "quarantined"), (JobStatus.SUCCEEDED, "")):
            jobs = (
                Job.objects.filter(flow=flow, status=status)
                .order_by("-id")
                .values_list("pk", "reference", "created_at")[:SAMPLES_EACH]
            )
            for pk, reference, created in jobs:
                when = created.strftime("%Y-%m-%d %H:%M")
                text = f"{flow.key}: {label + ' ' if label else ''}job {pk} {reference} ({when})"
                out.append(Sample(f"job:{pk}", text))
        if not any(s.key.startswith("job:") for s in out):
            prefix = flow.trigger_event.split("*", 1)[0]
            events = (
                InboundEvent.objects.filter(
                    connection__kind=flow.trigger_source, event_type__startswith=prefix
                )
                .order_by("-id")
                .values_list("pk", "event_type", "reference")[:200]
            )
            matching = [e for e in events if fnmatch.fnmatchcase(e[1], flow.trigger_event)]
            for pk, event_type, reference in matching[:SAMPLES_EACH]:
                out.append(
                    Sample(f"event:{pk}", f"{flow.key}: event {pk} {event_type} {reference}")
                )
    return out


def sample_document(key: str, *, step_name: str = "") -> dict[str, Any]:
    """The document a step reads, for a sample: a job's context with the outputs of
    the steps before ``step_name`` (all it has when not given); an event's document
    as the inbox builds it (no step has run yet). Read only."""
    kind, _, pk = key.partition(":")
    if not pk.isdigit():
        raise DataError(f"no sample {key!r}")
    if kind == "job":
        job = Job.objects.filter(pk=int(pk)).first()
        if job is None:
            raise DataError(f"job {pk} does not exist")
        outputs = dict(job.step_outputs)
        if step_name:
            names = [
                s.name for s in FlowStep.objects.filter(flow_id=job.flow_id).order_by("position")
            ]
            before = names[: names.index(step_name)] if step_name in names else names
            outputs = {k: v for k, v in outputs.items() if k in before}
        return {**job.context, "steps": outputs}
    if kind == "event":
        from integrations.services.inbox import event_sample_document

        event = InboundEvent.objects.filter(pk=int(pk)).select_related("connection").first()
        if event is None:
            raise DataError(f"event {pk} does not exist")
        return {**event_sample_document(event), "steps": {}}
    if kind == "sample":
        document = MappingSample.objects.filter(pk=int(pk)).values_list("document", flat=True)
        found = list(document[:1])
        if not found or not isinstance(found[0], dict):
            raise DataError(f"sample {pk} does not exist or is not an object")
        return {"steps": {}, **found[0]}
    raise DataError(f"no sample {key!r}")
