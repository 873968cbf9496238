"""Moving flows between environments (Dev → QA → Prod) as bundles.

A bundle is JSON: the flows' definitions (trigger, condition, steps, mappings, as
:mod:`integrations.services.flow_versions` defines them) and the lookup tables they
use (status tables), with a hash of that content. It never holds a connection, an
integration, a credential or an id: what differs per environment (a connection, a URL,
a GL account) stays in that environment, and a mapping row names an environment value
(``{"$env": "NAME"}``) that each environment resolves from its own table.

``plan`` compares a bundle with this environment (what would be created, changed,
left alone, and anything that would fail); ``apply`` writes it in one transaction,
records each changed flow's new version and an audit row naming the bundle and its
hash. Exporting again after an import gives the same content (and hash).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from integrations.kernel.exceptions import DataError
from integrations.models import (
    BundleImport,
    EnvironmentValue,
    Flow,
    FlowStep,
    LookupTable,
    Mapping,
)
from integrations.services.flow_design import flow_problems
from integrations.services.flow_versions import (
    definition_rules,
    flow_definition,
    flow_version_save,
    mapping_rows_replace,
    mapping_rules,
    versions_diff,
)

FORMAT = 1
LOOKUP_REFERENCE = "lookup:"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(content: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(content).encode()).hexdigest()


def _lookups_used(definitions: list[dict[str, Any]]) -> set[str]:
    used = set()
    for definition in definitions:
        for step in definition["steps"]:
            for row in (step.get("mapping") or {}).get("fields") or []:
                transform = (row.get("transform") or "").strip()
                if transform.startswith(LOOKUP_REFERENCE):
                    used.add(transform[len(LOOKUP_REFERENCE) :].strip())
    return used


def env_names_used(definitions: list[dict[str, Any]]) -> set[str]:
    names = set()
    for definition in definitions:
        for step in definition["steps"]:
            for row in (step.get("mapping") or {}).get("fields") or []:
                default = row.get("default")
                if isinstance(default, dict) and set(default) == {"$env"}:
                    names.add(str(default["$env"]))
    return names


def bundle_export(flow_keys: list[str] | None = None, *, source: str = "") -> dict[str, Any]:
    """The bundle of the flows named (all when None) and the lookup tables they use
    (all tables when every flow is exported)."""
    flows = Flow.objects.order_by("key")
    if flow_keys:
        flows = flows.filter(key__in=flow_keys)
        missing = sorted(set(flow_keys) - set(flows.values_list("key", flat=True)))
        if missing:
            raise DataError(f"no flow has the key(s) {', '.join(missing)}")
    # Whether a flow is enabled is each environment's own (a flow paused in Prod stays
    # paused): it is not in the bundle.
    definitions = [{**flow_definition(flow), "retry": _retry(flow)} for flow in flows]
    tables = LookupTable.objects.order_by("key")
    if flow_keys:
        tables = tables.filter(key__in=_lookups_used(definitions))
    content = {
        "flows": definitions,
        "lookups": [
            {"key": t.key, "description": t.description, "entries": t.entries} for t in tables
        ],
    }
    return {
        "format": FORMAT,
        "exported_at": timezone.now().isoformat(timespec="seconds"),
        "source": source,
        "hash": content_hash(content),
        **content,
    }


def _retry(flow: Flow) -> dict[str, int | None]:
    return {
        "max_attempts": flow.max_attempts,
        "retry_base_seconds": flow.retry_base_seconds,
        "retry_max_seconds": flow.retry_max_seconds,
    }


# --- import -----------------------------------------------------------------------------------
@dataclass
class ItemPlan:
    kind: str  # "flow" or "lookup"
    key: str
    action: str  # "create", "change", "unchanged"
    changes: list[str] = field(default_factory=list)


@dataclass
class BundlePlan:
    hash: str
    items: list[ItemPlan]
    problems: list[str]

    @property
    def changed(self) -> list[ItemPlan]:
        return [i for i in self.items if i.action != "unchanged"]

    def lines(self) -> list[str]:
        out = [f"bundle {self.hash[:12]}"]
        for item in self.items:
            out.append(f"{item.action:<9} {item.kind} {item.key}")
            out.extend(f"          {change}" for change in item.changes)
        out.extend(f"PROBLEM   {problem}" for problem in self.problems)
        return out


def _checked(bundle: Any) -> dict[str, Any]:
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise DataError(f"not a flow bundle of format {FORMAT}")
    for part in ("flows", "lookups"):
        if not isinstance(bundle.get(part), list):
            raise DataError(f"the bundle has no list of {part}")
    content = {"flows": bundle["flows"], "lookups": bundle["lookups"]}
    if content_hash(content) != bundle.get("hash"):
        raise DataError("the bundle's hash does not match its content: it was altered or cut")
    for table in bundle["lookups"]:
        if not (
            isinstance(table, dict)
            and isinstance(table.get("key"), str)
            and isinstance(table.get("description", ""), str)
            and "entries" in table
        ):
            raise DataError("a lookup table of the bundle has no key, description or entries")
    for definition in bundle["flows"]:
        _flow_shape_check(definition)
    return bundle


_FLOW_TEXT = ("key", "name", "description", "trigger_source", "trigger_event", "condition")
_ROW_TEXT = ("target", "source", "transform")


def _flow_shape_check(definition: Any) -> None:
    """A bundle's flow has the shape a definition has (a hand-made file may not)."""
    if not isinstance(definition, dict) or not isinstance(definition.get("steps"), list):
        raise DataError("a flow of the bundle has no steps list")
    if not definition.get("key") or any(
        not isinstance(definition.get(k, ""), str) for k in _FLOW_TEXT
    ):
        raise DataError("a flow of the bundle has no key, or a field that is not text")
    where = f"flow {definition['key']}"
    for step in definition["steps"]:
        if not isinstance(step, dict) or not all(
            isinstance(step.get(k), str) and step.get(k) for k in ("name", "action")
        ):
            raise DataError(f"{where}: a step has no name or action")
        mapping = step.get("mapping")
        if mapping is None:
            continue
        if not isinstance(mapping, dict) or not isinstance(mapping.get("key"), str):
            raise DataError(f"{where}: step {step['name']}'s mapping has no key")
        if not MAPPING_KEY.match(mapping["key"]) or not isinstance(mapping.get("fields"), list):
            raise DataError(f"{where}: mapping {mapping['key']!r} has a bad key or no rows")
        for row in mapping["fields"]:
            if (
                not isinstance(row, dict)
                or not row.get("target")
                or any(not isinstance(row.get(k, ""), str) for k in _ROW_TEXT)
            ):
                raise DataError(f"{where}: mapping {mapping['key']} has a row without target")


MAPPING_KEY = re.compile(r"^[-a-zA-Z0-9_.]{1,120}$")


def _run_definition(definition: dict[str, Any]) -> dict[str, Any]:
    """The part of a bundle's flow that is its definition (what versions hold)."""
    keys = ("key", "name", "description", "trigger_source", "trigger_event", "condition", "steps")
    return {k: definition.get(k, "" if k != "steps" else []) for k in keys}


def bundle_plan(bundle: Any) -> BundlePlan:
    """What importing ``bundle`` would do here, and what would stop it."""
    bundle = _checked(bundle)
    items: list[ItemPlan] = []
    problems: list[str] = []
    lookups_here = set(LookupTable.objects.values_list("key", flat=True))
    lookups_in = {t["key"] for t in bundle["lookups"]}
    for table in bundle["lookups"]:
        current = LookupTable.objects.filter(key=table["key"]).first()
        if current is None:
            items.append(ItemPlan("lookup", table["key"], "create"))
        elif current.entries != table["entries"] or current.description != table["description"]:
            changes = _entries_diff(current.entries, table["entries"])
            items.append(ItemPlan("lookup", table["key"], "change", changes))
        else:
            items.append(ItemPlan("lookup", table["key"], "unchanged"))
    for definition in bundle["flows"]:
        wanted = _run_definition(definition)
        flow = Flow.objects.filter(key=wanted["key"]).first()
        current = flow_definition(flow) if flow else None
        changes = versions_diff(current, wanted)
        if flow is not None and "retry" in definition and definition["retry"] != _retry(flow):
            changes.append(f"retry: {_retry(flow)!r} → {definition['retry']!r}")
        action = "create" if flow is None else ("change" if changes else "unchanged")
        items.append(ItemPlan("flow", wanted["key"], action, changes if flow else []))
        for problem in _problems_here(wanted, lookups_here | lookups_in):
            problems.append(f"flow {wanted['key']}: {problem}")
    problems.extend(_mapping_conflicts(bundle["flows"]))
    missing_env = sorted(
        env_names_used(bundle["flows"])
        - set(EnvironmentValue.objects.values_list("name", flat=True))
    )
    problems.extend(
        f"environment value {name!r} is not set here (Environment values)" for name in missing_env
    )
    return BundlePlan(hash=bundle["hash"], items=items, problems=problems)


def _mapping_conflicts(definitions: list[dict[str, Any]]) -> list[str]:
    """A mapping the bundle writes that a flow outside the bundle uses here (importing
    would change that flow unseen), or that two of the bundle's flows give other rows."""
    rows: dict[str, Any] = {}
    problems = []
    keys_in = {d["key"] for d in definitions}
    for definition in definitions:
        for step in definition["steps"]:
            mapping = step.get("mapping")
            if not mapping:
                continue
            key = mapping["key"]
            if key in rows and rows[key] != mapping["fields"]:
                problems.append(f"mapping {key} has other rows in another flow of the bundle")
            rows[key] = mapping["fields"]
    if rows:
        outside = (
            FlowStep.objects.filter(mapping__key__in=rows)
            .exclude(flow__key__in=keys_in)
            .values_list("mapping__key", "flow__key")
        )
        for key, flow in outside:
            problems.append(
                f"mapping {key} is also used here by flow {flow}, which the bundle does not "
                "hold: export and import that flow too, or give the mappings their own keys"
            )
    return problems


def _problems_here(definition: dict[str, Any], lookups: set[str]) -> list[str]:
    """The flow's problems, a lookup table the bundle brings counting as present."""
    out = []
    for problem in flow_problems(definition):
        text = str(problem)
        if "lookup table" in text and any(f"'{key}'" in text for key in lookups):
            continue
        out.append(text)
    return out


def _entries_diff(before: Any, after: Any) -> list[str]:
    if not isinstance(before, dict) or not isinstance(after, dict):
        return [f"entries {_canonical(before)} → {_canonical(after)}"]
    lines = [f"{k}: removed" for k in sorted(before.keys() - after.keys())]
    for key in sorted(after):
        if key not in before:
            lines.append(f"{key} → {_canonical(after[key])}: added")
        elif before[key] != after[key]:
            lines.append(f"{key}: {_canonical(before[key])} → {_canonical(after[key])}")
    return lines


def bundle_apply(bundle: Any, *, name: str, user: str) -> BundlePlan:
    """Import ``bundle`` (named ``name``, e.g. its file name) all or nothing. Refused,
    with nothing written, when its plan has problems."""
    plan = bundle_plan(bundle)
    if plan.problems:
        raise DataError("the bundle cannot be imported: " + "; ".join(plan.problems))
    reason = f"import of bundle {name} ({plan.hash[:12]})"
    with transaction.atomic():
        for table in bundle["lookups"]:
            item = next(i for i in plan.items if i.kind == "lookup" and i.key == table["key"])
            if item.action == "unchanged":
                continue
            row = LookupTable.objects.filter(key=table["key"]).first() or LookupTable(
                key=table["key"]
            )
            row.description, row.entries = table["description"], table["entries"]
            row._change_reason = reason
            row.save()
        for definition in bundle["flows"]:
            item = next(i for i in plan.items if i.kind == "flow" and i.key == definition["key"])
            if item.action == "unchanged":
                continue
            flow = flow_definition_apply(definition, reason=reason)
            flow_version_save(flow, user=user, reason=reason)
        BundleImport.objects.create(
            name=name[:200],
            digest=plan.hash,
            imported_by=user[:150],
            summary=[line for line in plan.lines()],
        )
    return plan


def flow_definition_apply(definition: dict[str, Any], *, reason: str) -> Flow:
    """Make the flow's rows what ``definition`` says (its steps and their mappings
    replaced), inside the caller's transaction. The flow counts as changed by an
    operator: shipped upgrades no longer overwrite it."""
    wanted = _run_definition(definition)
    flow = Flow.objects.select_for_update().filter(key=wanted["key"]).first() or Flow(
        key=wanted["key"]
    )
    for key in ("name", "description", "trigger_source", "trigger_event", "condition"):
        setattr(flow, key, wanted[key])
    for key, value in (definition.get("retry") or {}).items():
        if key in ("max_attempts", "retry_base_seconds", "retry_max_seconds"):
            setattr(flow, key, value)
    flow.customized = True
    flow._change_reason = reason
    flow.save()
    old_mappings = set(
        FlowStep.objects.filter(flow=flow, mapping__isnull=False).values_list(
            "mapping_id", flat=True
        )
    )
    for step in FlowStep.objects.filter(flow=flow):
        step._change_reason = reason
        step.delete()
    kept: set[int] = set()
    for position, step in enumerate(wanted["steps"], start=1):
        step_mapping = None
        if step.get("mapping"):
            step_mapping = _mapping_apply(step["mapping"], reason=reason)
            kept.add(step_mapping.pk)
        FlowStep.objects.create(
            flow=flow,
            position=position,
            name=step["name"],
            action=step["action"],
            enabled=bool(step.get("enabled", True)),
            mapping=step_mapping,
        )
    for mapping_id in old_mappings - kept:
        if not FlowStep.objects.filter(mapping_id=mapping_id).exists():
            Mapping.objects.filter(pk=mapping_id).delete()
    return flow


def _mapping_apply(wanted: dict[str, Any], *, reason: str) -> Mapping:
    row = Mapping.objects.filter(key=wanted["key"]).first() or Mapping(key=wanted["key"])
    row.customized = True
    row._change_reason = reason
    row.save()
    rules = list(definition_rules({"mapping": wanted}))
    if mapping_rules(row) != rules:
        mapping_rows_replace(row, rules)
    return row
