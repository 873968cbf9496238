"""Reconciliation's actions: thin adapters over its services."""

from __future__ import annotations

from integrations.registry import action
from integrations.runtime import ActionContext
from reconciliation.drift import drift_recheck
from reconciliation.ledger import payout_ledger_post
from reconciliation.selectors import payout_find
from reconciliation.services import payout_import


@action(
    "reconciliation.recheck_drift",
    description="A mismatch the drift check found: check it again (done once Znode, "
    "Stripe and the ERP agree).",
)
def recheck_drift(*, ctx: ActionContext, kind: str, key: str) -> dict:
    return drift_recheck(ctx, kind=kind, key=key)


@action(
    "reconciliation.import_payout",
    description="A payout was paid, reconciled, failed or canceled: read it again, "
    "import its balance transactions matched to their orders, and tie it out (not paid "
    "out, if it failed or was canceled).",
)
def import_payout(*, ctx: ActionContext, payout: str) -> dict:
    return payout_import(ctx=ctx, payout_id=payout).as_output()


@action(
    "reconciliation.post_payout",
    description="A tied-out payout's journal posted to the ERP by the clearing-account "
    "method (fees, FX and the bank), once; waits for the orders' entries it clears.",
)
def post_payout(*, ctx: ActionContext, payout: str) -> dict:
    row = payout_find(integration=ctx.integration, stripe_payout_id=payout)
    if row is None:
        return {"skipped": f"payout {payout} is not imported"}
    return payout_ledger_post(ctx=ctx, payout=row)
