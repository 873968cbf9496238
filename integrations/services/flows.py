"""Flows, in one place: which flows an event triggers (match), how a job runs its
flow's steps (run), and the shipped default flows, which install adds and upgrades
without ever overwriting what an operator changed.

The inbox asks :func:`flows_matching` and :func:`flow_condition_holds` which jobs to
make; the job runner (``services/jobs.py``, which owns claims, leases, retries and
quarantine) calls :func:`flow_run_steps`.
"""

from __future__ import annotations

import fnmatch
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from integrations import mapping
from integrations.kernel.exceptions import DataError
from integrations.kernel.jsonutil import db_json
from integrations.mapping import Rule
from integrations.models import Attempt, Flow, FlowStep, Job, Mapping
from integrations.registry import get_action
from integrations.runtime import ActionContext
from integrations.services.flow_versions import StepDef, job_definition, mapping_rows_replace

logger = logging.getLogger("integrations.flows")


# --- match: the flows an event triggers -----------------------------------------------
def flows_matching(*, source: str, event_type: str, enabled_only: bool = True) -> list[Flow]:
    """Flows whose trigger (source, event type pattern) fits the event: the enabled
    ones, or (``enabled_only=False``, for routing, which pauses the jobs of a disabled
    flow) all of them."""
    candidates = Flow.objects.filter(trigger_source=source).prefetch_related("steps")
    if enabled_only:
        candidates = candidates.filter(enabled=True)
    return [f for f in candidates if fnmatch.fnmatchcase(event_type, f.trigger_event)]


def flow_set_enabled(*, flow: Flow, enabled: bool, operator=None, reason: str = "") -> Flow:
    """Disable or enable a flow (history keeps who and why). While it is disabled,
    events that trigger it make *paused* jobs; enabling it resumes them at once
    (the sweeper also resumes jobs of a flow enabled in the admin)."""
    from integrations.services.connections import change_reason
    from integrations.services.jobs import jobs_resume

    with transaction.atomic():
        row = Flow.objects.select_for_update().get(pk=flow.pk)
        was = row.enabled
        row.enabled = enabled
        who = getattr(operator, "get_username", lambda: operator)() or "system"
        row._change_reason = change_reason(reason or f"{'en' if enabled else 'dis'}abled by {who}")
        row.save()
        if enabled and not was:
            jobs_resume(flow=row)
    return row


def flow_condition_holds(flow: Flow, document: dict[str, Any]) -> bool:
    """The flow's condition (JMESPath over the event document) holds, or it has none.
    Raises ``MappingError`` for a condition that cannot be evaluated."""
    return not flow.condition or bool(mapping.search(flow.condition, document))


# --- run: a job's steps, in order -------------------------------------------------------
class StepHooks(Protocol):
    """What the job runner does around each step (its lease, its fenced writes)."""

    def starting(self, step: StepDef) -> None: ...

    def finished(self, step: StepDef, output: dict) -> None: ...


def flow_run_steps(*, job: Job, attempt: Attempt, hooks: StepHooks) -> None:
    """Run the steps of the job's flow that have not succeeded yet, in order.

    Each step's mapping builds its action's input from the job's document (the event
    document and the earlier steps' outputs, ``steps.<name>``); its output must be
    JSON-able. A step finished in an earlier attempt is never repeated. Errors
    propagate: retrying or quarantining is the runner's.
    """
    document = {**job.context, "steps": dict(job.step_outputs)}
    for step in job_definition(job):
        if not step.enabled or step.name in job.step_outputs:
            continue  # disabled, or finished in an earlier attempt: never repeated
        hooks.starting(step)
        spec = get_action(step.action)
        inputs = mapping.evaluate(step.rules, document) if step.mapping else {}
        ctx = ActionContext(job=job, step=step, attempt=attempt, document=document)
        output = _json_safe(spec.call(ctx, inputs))
        document["steps"][step.name] = output
        hooks.finished(step, output)


def _json_safe(value: object) -> dict:
    """The output as JSON the step outputs (jsonb) can store: NUL and lone surrogates
    in text, such as a name read back from Znode, become U+FFFD."""
    try:
        text = json.dumps(value if value is not None else {}, cls=DjangoJSONEncoder)
        return db_json(json.loads(text))
    except (TypeError, ValueError) as exc:
        raise DataError(f"action output is not JSON-able: {exc}") from exc


# --- install: the shipped defaults ------------------------------------------------------
@dataclass(frozen=True)
class StepSpec:
    name: str
    action: str
    fields: tuple[Rule, ...] = ()
    """Rules of the step's mapping, installed as mapping '<flow key>.<step name>'."""


@dataclass(frozen=True)
class FlowSpec:
    key: str
    name: str
    trigger_source: str
    trigger_event: str
    steps: tuple[StepSpec, ...]
    version: int = 1
    description: str = ""
    condition: str = ""
    settings: dict = field(default_factory=dict)


_defaults: dict[str, FlowSpec] = {}
_default_lookups: dict[str, tuple[str, dict]] = {}


def register_default_lookup(key: str, entries: dict, description: str = "") -> None:
    """A lookup table (e.g. a status table) shipped with a domain app. Installed when
    missing; an existing table is the operators' and is never overwritten."""
    _default_lookups[key] = (description, dict(entries))


def lookups_install_defaults() -> list[str]:
    from integrations.models import LookupTable

    created = []
    for key, (description, entries) in _default_lookups.items():
        _, made = LookupTable.objects.get_or_create(
            key=key, defaults={"description": description, "entries": entries}
        )
        if made:
            created.append(key)
    return created


def register_default_flow(spec: FlowSpec) -> FlowSpec:
    _defaults[spec.key] = spec
    return spec


def register_flow_per_event(
    events: tuple[str, ...],
    *,
    source: str,
    name: str,
    condition: str,
    steps: tuple,
    version: int = 1,
) -> None:
    """The same steps for each event of a kind (``{event}`` in ``name``); the flow's
    key is the event's name (``charge-refunded``, ``dispute-funds-withdrawn``,
    ``user-updated``). ``version``: raised when the shipped steps change, so that an
    installed flow nobody edited is upgraded."""
    for event in events:
        register_default_flow(
            FlowSpec(
                key=event.replace("charge.dispute.", "dispute.")
                .replace(".", "-")
                .replace("_", "-"),
                name=name.format(event=event),
                trigger_source=source,
                trigger_event=event,
                condition=condition,
                version=version,
                steps=steps,
            )
        )


def default_flows() -> dict[str, FlowSpec]:
    return dict(_defaults)


@dataclass
class InstallReport:
    created: list[str] = field(default_factory=list)
    upgraded: list[str] = field(default_factory=list)
    kept_customized: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def flows_install_defaults(specs: dict[str, FlowSpec] | None = None) -> InstallReport:
    report = InstallReport()
    for spec in (specs or _defaults).values():
        for step in spec.steps:
            get_action(step.action)  # fail loudly on a typo before writing anything
        with transaction.atomic():
            flow = Flow.objects.select_for_update().filter(key=spec.key).first()
            if flow is None:
                _build(spec, Flow(key=spec.key))
                report.created.append(spec.key)
            elif flow.shipped_version >= spec.version:
                report.unchanged.append(spec.key)
            elif flow.customized or _mappings_customized(flow):
                report.kept_customized.append(spec.key)
                logger.warning(
                    "integrations.flows.upgrade_skipped flow=%s shipped=%s available=%s "
                    "reason=edited by an operator",
                    spec.key,
                    flow.shipped_version,
                    spec.version,
                )
            else:
                _build(spec, flow)
                report.upgraded.append(spec.key)
    return report


def _mappings_customized(flow: Flow) -> bool:
    return Mapping.objects.filter(flowstep__flow=flow, customized=True).exists()


def _build(spec: FlowSpec, flow: Flow) -> None:
    flow.name = spec.name
    flow.description = spec.description
    flow.trigger_source = spec.trigger_source
    flow.trigger_event = spec.trigger_event
    flow.condition = spec.condition
    flow.shipped_version = spec.version
    flow._change_reason = f"shipped default v{spec.version}"
    flow.save()
    old_mappings = list(Mapping.objects.filter(flowstep__flow=flow).distinct())
    for step in flow.steps.all():
        step.delete()
    for old in old_mappings:
        if not old.flowstep_set.exists():
            old.delete()
    for position, step_spec in enumerate(spec.steps, start=1):
        step_mapping = None
        if step_spec.fields:
            step_mapping, _ = Mapping.objects.update_or_create(
                key=f"{spec.key}.{step_spec.name}",
                defaults={"description": f"Input of step {step_spec.name} of {spec.key}"},
            )
            mapping_rows_replace(step_mapping, step_spec.fields)
        FlowStep.objects.create(
            flow=flow,
            position=position,
            name=step_spec.name,
            action=step_spec.action,
            mapping=step_mapping,
        )
