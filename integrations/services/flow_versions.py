"""Flow versions: what a flow is, as one definition, and the job that keeps its own.

A flow's *definition* is everything that decides what its jobs do: the trigger, the
condition and the steps in order, each with its action, whether it is enabled and its
mapping's rows. It is plain JSON in one canonical form, so two equal definitions have
one digest. A :class:`~integrations.models.FlowVersion` keeps each definition a flow
has had, numbered, with who saved it and why.

A job pins the version it starts with (:func:`job_definition`): its retries run the
same steps and mappings even if an operator changes the flow meanwhile. An operator's
retry of a failed job un-pins it (``jobs_requeue``), so a fixed mapping applies.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Prefetch

from integrations.mapping import Rule
from integrations.models import Flow, FlowStep, FlowVersion, Job, Mapping, MappingField

RULE_FIELDS = ("target", "source", "transform", "default", "required")


@dataclass(frozen=True)
class StepDef:
    """One step of a definition, as the runner needs it."""

    position: int
    name: str
    action: str
    enabled: bool
    mapping: str
    """The mapping's key ("" for none)."""
    rules: tuple[Rule, ...]


def rule_row(rule: Rule | MappingField) -> dict[str, Any]:
    """A mapping row (a stored field or a rule) as a definition holds it."""
    return {name: getattr(rule, name) for name in RULE_FIELDS}


def mapping_rules(mapping: Mapping | None) -> list[Rule]:
    """A stored mapping's rows as rules, in evaluation order."""
    if mapping is None:
        return []
    return [Rule(**rule_row(f)) for f in mapping.fields.order_by("position", "id")]


def mapping_rows_replace(mapping: Mapping, rules: list[Rule] | tuple[Rule, ...]) -> None:
    """Make the mapping's rows ``rules``, in this order (inside the caller's transaction)."""
    mapping.fields.all().delete()
    for position, rule in enumerate(rules):  # one by one: each row's history is kept
        MappingField.objects.create(mapping=mapping, position=position, **rule_row(rule))


def mapping_definition(mapping: Mapping) -> dict[str, Any]:
    """A mapping as a definition holds it: its key and its rows in evaluation order."""
    return {
        "key": mapping.key,
        "fields": [rule_row(f) for f in mapping.fields.all()],
    }


def flow_definition(flow: Flow) -> dict[str, Any]:
    """The flow as it is now in the database, in canonical form (two queries)."""
    steps = (
        FlowStep.objects.filter(flow=flow)
        .select_related("mapping")
        .prefetch_related(
            Prefetch("mapping__fields", queryset=MappingField.objects.order_by("position", "id"))
        )
        .order_by("position")
    )
    return {
        "key": flow.key,
        "name": flow.name,
        "description": flow.description,
        "trigger_source": flow.trigger_source,
        "trigger_event": flow.trigger_event,
        "condition": flow.condition,
        "steps": [
            {
                "name": step.name,
                "action": step.action,
                "enabled": step.enabled,
                "mapping": mapping_definition(step.mapping) if step.mapping_id else None,
            }
            for step in steps
        ],
    }


def definition_digest(definition: dict[str, Any]) -> str:
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def definition_rules(step: dict[str, Any]) -> tuple[Rule, ...]:
    """A definition step's mapping rows as rules."""
    return tuple(
        Rule(**{k: row.get(k, Rule.__dataclass_fields__[k].default) for k in RULE_FIELDS})
        for row in (step.get("mapping") or {}).get("fields") or []
    )


def definition_steps(definition: dict[str, Any]) -> list[StepDef]:
    return [
        StepDef(
            position=position,
            name=step["name"],
            action=step["action"],
            enabled=bool(step.get("enabled", True)),
            mapping=(step.get("mapping") or {}).get("key", ""),
            rules=definition_rules(step),
        )
        for position, step in enumerate(definition.get("steps") or [], start=1)
    ]


def flow_version_id(
    flow: Flow, definition: dict[str, Any], *, user: str = "", reason: str = ""
) -> int:
    """The id of the flow's current version when it holds ``definition``, else of a
    new version (numbered next) that does: the versions are the flow's history, so a
    revert to v1 is v3 with v1's definition. One first seen by a job has no author; one
    saved by the designer, a revert or an import names its user and reason."""
    digest = definition_digest(definition)
    for _ in range(5):  # two processes numbering a new version at once: one wins
        latest = (
            FlowVersion.objects.filter(flow=flow)
            .order_by("-number")
            .values_list("pk", "number", "digest")
            .first()
        )
        if latest is not None and latest[2] == digest:
            return latest[0]
        try:
            with transaction.atomic():
                made = FlowVersion.objects.create(
                    flow=flow,
                    number=(latest[1] if latest else 0) + 1,
                    digest=digest,
                    definition=definition,
                    created_by=user[:150],
                    reason=reason[:500],
                )
        except IntegrityError:
            continue
        return made.pk
    raise RuntimeError(f"flow {flow.key}: could not number a new version")  # pragma: no cover


def flow_version_save(flow: Flow, *, user: str, reason: str) -> FlowVersion:
    """Record the flow as it is now, with who changed it and why (the designer's save,
    a revert, an import). An unchanged flow keeps its current version."""
    return FlowVersion.objects.get(
        pk=flow_version_id(flow, flow_definition(flow), user=user, reason=reason)
    )


def job_definition(job: Job) -> list[StepDef]:
    """The steps the job runs: its pinned version's, else the flow's as it is now,
    pinned from here on (so a retry runs what the first attempt ran)."""
    if job.flow_version_id:
        definition = (
            FlowVersion.objects.filter(pk=job.flow_version_id)
            .values_list("definition", flat=True)
            .first()
        )
        if definition is not None:
            return definition_steps(definition)
    definition = flow_definition(job.flow)
    version_id = flow_version_id(job.flow, definition)
    Job.objects.filter(pk=job.pk).update(flow_version_id=version_id)
    job.flow_version_id = version_id
    return definition_steps(definition)


def versions_diff(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """What changed from ``before`` to ``after``, one readable line each."""
    before = before or {}
    lines: list[str] = []
    for key in ("name", "description", "trigger_source", "trigger_event", "condition"):
        if before.get(key) != after.get(key):
            lines.append(f"{key}: {before.get(key)!r} → {after.get(key)!r}")
    old_steps = {s["name"]: (i, s) for i, s in enumerate(before.get("steps") or [], 1)}
    new_steps = {s["name"]: (i, s) for i, s in enumerate(after.get("steps") or [], 1)}
    for name in old_steps.keys() - new_steps.keys():
        lines.append(f"step {name}: removed")
    for name, (position, step) in new_steps.items():
        if name not in old_steps:
            lines.append(f"step {name}: added at {position} ({step['action']})")
            continue
        old_position, old = old_steps[name]
        if old_position != position:
            lines.append(f"step {name}: moved {old_position} → {position}")
        for key in ("action", "enabled"):
            if old.get(key) != step.get(key):
                lines.append(f"step {name}: {key} {old.get(key)!r} → {step.get(key)!r}")
        lines.extend(
            f"step {name}: {line}"
            for line in _mapping_diff(old.get("mapping"), step.get("mapping"))
        )
    return lines


def _mapping_diff(before: dict | None, after: dict | None) -> list[str]:
    if (before or {}).get("key") != (after or {}).get("key"):
        return [f"mapping {(before or {}).get('key')!r} → {(after or {}).get('key')!r}"]
    old = {f["target"]: f for f in (before or {}).get("fields") or []}
    new = {f["target"]: f for f in (after or {}).get("fields") or []}
    lines = [f"{target}: removed" for target in old.keys() - new.keys()]
    for target, row in new.items():
        if target not in old:
            lines.append(f"{target} ← {_row_text(row)}: added")
        elif old[target] != row:
            lines.append(f"{target}: {_row_text(old[target])} → {_row_text(row)}")
    return sorted(lines)


def _row_text(row: dict) -> str:
    text = row.get("source") or f"default {json.dumps(row.get('default'))}"
    if row.get("transform"):
        text += f" | {row['transform']}"
    return text + (" (required)" if row.get("required") else "")


def flow_version_revert(version: FlowVersion, *, user: str) -> FlowVersion:
    """Make the flow what ``version`` says again (a new version, its reason naming the
    one reverted to). Refused, with nothing written, when that definition would no
    longer be valid here (an action or a lookup table gone)."""
    from integrations.kernel.exceptions import DataError
    from integrations.services.bundles import flow_definition_apply
    from integrations.services.flow_design import flow_problems

    # The flow the version is of, whatever its key is now (it may have been renamed).
    definition = {**version.definition, "key": version.flow.key}
    problems = flow_problems(definition)
    if problems:
        raise DataError("; ".join(str(p) for p in problems))
    reason = f"reverted to v{version.number}"
    with transaction.atomic():
        flow = flow_definition_apply(definition, reason=reason)
        return flow_version_save(flow, user=user, reason=reason)
