"""Shipped default flows: domain apps register them; install adds and upgrades them
without ever overwriting what an operator changed."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import transaction

from integrations.mapping import Rule
from integrations.models import Flow, FlowStep, Mapping, MappingField
from integrations.registry import get_action

logger = logging.getLogger("integrations.flows")


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
    for mapping in old_mappings:
        if not mapping.flowstep_set.exists():
            mapping.delete()
    for position, step_spec in enumerate(spec.steps, start=1):
        mapping = None
        if step_spec.fields:
            mapping, _ = Mapping.objects.update_or_create(
                key=f"{spec.key}.{step_spec.name}",
                defaults={"description": f"Input of step {step_spec.name} of {spec.key}"},
            )
            mapping.fields.all().delete()
            for index, f in enumerate(step_spec.fields):
                MappingField.objects.create(
                    mapping=mapping,
                    position=index,
                    target=f.target,
                    source=f.source,
                    transform=f.transform,
                    default=f.default,
                    required=f.required,
                )
        FlowStep.objects.create(
            flow=flow,
            position=position,
            name=step_spec.name,
            action=step_spec.action,
            mapping=mapping,
        )
