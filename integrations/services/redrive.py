"""Fix and re-drive: a draft of the failing step's mapping tried on the payloads of the
jobs that failed, old against new result per record, as a dry run (no call out, no
write); then the mapping saved (a flow version with who and why) and exactly those
jobs retried, each with a note naming the fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from integrations.choices import JobStatus
from integrations.kernel.exceptions import DataError
from integrations.mapping import Rule
from integrations.models import ErrorGroup, Flow, FlowStep, Job, Mapping
from integrations.services.flow_design import Preview, flow_problems, mapping_preview
from integrations.services.flow_versions import (
    flow_definition,
    flow_version_save,
    mapping_rows_replace,
    mapping_rules,
    rule_row,
)

REDRIVE_MOST = 200
RETRYABLE = (JobStatus.QUARANTINED, JobStatus.RETRYING)


@dataclass(frozen=True)
class RedriveRow:
    job_id: int
    reference: str
    old: Preview
    new: Preview

    @property
    def fixed(self) -> bool:
        return not self.old.ok and self.new.ok


@dataclass(frozen=True)
class RedrivePlan:
    group: ErrorGroup
    step: FlowStep | None
    rows: list[RedriveRow]
    problems: list[str]
    """What stops the draft from being saved (the flow would fail with it)."""


def redrive_step(group: ErrorGroup) -> FlowStep | None:
    """The group's failing step, as the flow has it now."""
    return (
        FlowStep.objects.filter(flow_id=group.flow_id, name=group.step)
        .select_related("mapping")
        .first()
    )


def redrive_jobs(group: ErrorGroup, job_ids: list[int] | None = None) -> list[Job]:
    jobs = Job.objects.filter(error_group=group, status__in=RETRYABLE).order_by("id")
    if job_ids is not None:
        jobs = jobs.filter(pk__in=job_ids)
    return list(jobs[:REDRIVE_MOST])


def _document(job: Job, step: str, order: list[str]) -> dict[str, Any]:
    before = order[: order.index(step)] if step in order else order
    return {**job.context, "steps": {k: v for k, v in job.step_outputs.items() if k in before}}


def redrive_plan(
    group: ErrorGroup, draft: list[Rule], job_ids: list[int] | None = None
) -> RedrivePlan:
    """The draft against the mapping as stored, on each failed job's document. Pure."""
    step = redrive_step(group)
    if step is None:
        return RedrivePlan(group, None, [], [f"flow {group.flow} has no step {group.step!r} now"])
    if step.mapping_id is None:
        return RedrivePlan(group, step, [], [f"step {step.name} has no mapping to fix"])
    order = list(
        FlowStep.objects.filter(flow_id=group.flow_id)
        .order_by("position")
        .values_list("name", flat=True)
    )
    stored = mapping_rules(step.mapping)
    rows = []
    for job in redrive_jobs(group, job_ids):
        document = _document(job, step.name, order)
        rows.append(
            RedriveRow(
                job.pk,
                job.reference,
                mapping_preview(stored, document),
                mapping_preview(draft, document),
            )
        )
    # Every flow whose steps use the mapping gets the draft: each is checked with it.
    problems = []
    fields = [rule_row(r) for r in draft]
    for flow in _flows_using(step.mapping):
        definition = flow_definition(flow)
        for item in definition["steps"]:
            if (item["mapping"] or {}).get("key") == step.mapping.key:
                item["mapping"] = {"key": step.mapping.key, "fields": fields}
        prefix = "" if flow.pk == group.flow_id else f"flow {flow.key}: "
        problems += [f"{prefix}{p}" for p in flow_problems(definition)]
    return RedrivePlan(group, step, rows, problems)


def _flows_using(mapping: Mapping) -> list[Flow]:
    return list(Flow.objects.filter(steps__mapping=mapping).distinct().order_by("key"))


def redrive_apply(
    group: ErrorGroup, draft: list[Rule], job_ids: list[int], *, operator: Any, reason: str
) -> tuple[RedrivePlan, list[int]]:
    """Save the draft as the step's mapping and retry exactly ``job_ids`` (those still
    failing in the group). Refused, nothing written, when the flow would fail."""
    from integrations.services.jobs import job_requeue

    who = getattr(operator, "get_username", lambda: str(operator or "system"))()
    plan = redrive_plan(group, draft, job_ids)
    if plan.problems:
        raise DataError("the fix is not saved: " + "; ".join(plan.problems))
    why = reason.strip() or f"fix for error group {group.pk}"
    retried = []
    with transaction.atomic():
        mapping = Mapping.objects.select_for_update().get(pk=plan.step.mapping_id)
        mapping.customized = True
        mapping._change_reason = why[:100]
        mapping.save()
        mapping_rows_replace(mapping, draft)
        for flow in _flows_using(mapping):
            flow_version_save(flow, user=who, reason=f"{why} (re-drive of group {group.pk})")
        for row in plan.rows:
            job = Job.objects.get(pk=row.job_id)
            job_requeue(job=job, operator=operator, note=f"re-driven after: {why}")
            retried.append(job.pk)
    return plan, retried
