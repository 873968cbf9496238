"""Reconciliation's flows, shipped as data (editable in the admin like every flow)."""

from integrations.mapping import Rule
from integrations.services.flows import (
    FlowSpec,
    StepSpec,
    register_default_flow,
    register_flow_per_event,
)
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

# Payout reconciliation. Both events import the payout (Stripe's reference, stripe.md
# A7: fetch on payout.paid or payout.reconciliation_completed); the import is
# idempotent, so whichever comes second only confirms the first.
IMPORT_PAYOUT = (
    StepSpec(
        "import",
        "reconciliation.import_payout",
        (Rule("payout", "payout.id", required=True),),
    ),
)
POST_PAYOUT = StepSpec(
    "post",
    "reconciliation.post_payout",
    (Rule("payout", "payout.id", required=True),),
)
register_flow_per_event(
    ("payout.paid", "payout.reconciliation_completed"),
    source="stripe",
    name="Stripe {event} → payout imported, matched, tied out and posted to the ledger",
    condition="payout.id",
    steps=(*IMPORT_PAYOUT, POST_PAYOUT),
)
# A payout can fail (the bank returns it) or be canceled, before or after it was paid:
# the import reads it again (the event is a hint) and ties it out as not paid out. Its
# journal is posted as a paid one's if it was not yet (its transactions add up to it),
# and the payout holding its payout_reversal books the bank side back.
register_flow_per_event(
    ("payout.failed", "payout.canceled"),
    source="stripe",
    name="Stripe {event} → payout read again, tied out as not paid out, its journal posted",
    condition="payout.id",
    steps=(*IMPORT_PAYOUT, POST_PAYOUT),
    version=2,  # v1 only imported: a payout failing before its journal was posted kept
    # its orders' money on clearing.
)
