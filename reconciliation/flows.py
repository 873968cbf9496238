"""Reconciliation's flows, shipped as data."""

from integrations.mapping import Rule
from integrations.services.flows import FlowSpec, StepSpec, register_default_flow
from reconciliation.drift import DRIFT_FLOW

# Filed by the drift check (never by an event): one job per mismatch, quarantined with
# its reason; a retry checks it again.
register_default_flow(
    FlowSpec(
        key=DRIFT_FLOW,
        name="Drift found by the daily check → checked again on retry",
        trigger_source="schedule",
        trigger_event="reconciliation.drift",
        condition="drift.kind",
        steps=(
            StepSpec(
                "recheck",
                "reconciliation.recheck_drift",
                (
                    Rule("kind", "drift.kind", required=True),
                    Rule("key", "drift.key", required=True),
                ),
            ),
        ),
    )
)
