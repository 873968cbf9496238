"""The drift check: do Znode, Stripe and the ERP still agree about the money of the
last N days, each read from its own state (never from the platform's rows)?

- **Stripe → Znode and the ERP**: every PaymentIntent of this integration (our
  metadata) that succeeded must show in its Znode order as a payment record of its
  charge, and have its sales journal in the ERP; every refund of that charge that
  succeeded must have its credit memo.
- **ERP → Stripe**: every sales journal in the ERP must name a charge Stripe holds
  as captured.

Each mismatch is filed where operators already work: a quarantined job of the
``drift-recheck`` flow with a readable reason. Retrying the job checks that one
mismatch again: it succeeds once the systems agree (the operator fixed it, or a late
job did), and is quarantined again with the reason while they do not. A mismatch
already filed and not yet resolved is not filed again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from integrations.choices import JobStatus
from integrations.connectors.erp import mapping as erp_facts
from integrations.connectors.stripe import mapping as stripe_facts
from integrations.connectors.znode import mapping as znode_facts
from integrations.kernel import exceptions as exc
from integrations.models import Flow, Integration, Job
from integrations.runtime import ServiceContext
from integrations.services.jobs import job_run
from reconciliation.references import charge_of_sale, credit_memo_reference, sale_reference

DRIFT_FLOW = "drift-recheck"
OPEN = (JobStatus.QUARANTINED, JobStatus.PENDING, JobStatus.RUNNING, JobStatus.RETRYING)

PAID_NOT_IN_ZNODE = "paid_not_in_znode"
PAID_NOT_IN_ERP = "paid_not_in_erp"
REFUND_NOT_IN_ERP = "refund_not_in_erp"
ERP_SALE_WITHOUT_PAYMENT = "erp_sale_without_payment"


@dataclass(frozen=True)
class Drift:
    kind: str
    key: str
    """The object it is about: a charge, a refund, an ERP reference."""
    order_number: str
    reason: str

    @property
    def reference(self) -> str:
        return f"drift:{self.kind}:{self.key}"


@dataclass(frozen=True)
class DriftReport:
    checked: int
    found: int
    filed: int


def _paid_drifts(ctx: Any, intent: stripe_facts.StripePayment) -> Iterator[Drift]:
    charge = intent.charge_id
    number = intent.order_number
    order = znode_facts.order_from_wire(ctx.client("znode").get_order_by_number(number))
    if not any(p.reference == charge for p in order.payments):
        yield Drift(
            PAID_NOT_IN_ZNODE,
            charge,
            number,
            f"Stripe shows order {number} paid ({intent.id}, charge {charge}, "
            f"{intent.amount_received} {intent.currency.upper()} in minor units) but Znode's "
            "order has no payment record of that charge",
        )
    erp = ctx.client("erp")
    if erp.journal_entry_find(sale_reference(charge)) is None:
        yield Drift(
            PAID_NOT_IN_ERP,
            charge,
            number,
            f"Stripe shows order {number} paid (charge {charge}) but the ERP has no sales "
            f"journal {sale_reference(charge)}",
        )
    for raw in ctx.client("stripe").refunds_for_charge(charge):
        refund = stripe_facts.refund_from_wire(raw)
        memo = credit_memo_reference(refund.id)
        if refund.status == "succeeded" and erp.credit_memo_find(memo) is None:
            yield Drift(
                REFUND_NOT_IN_ERP,
                refund.id,
                number,
                f"Stripe refunded {refund.amount} {refund.currency.upper()} (minor units) of "
                f"order {number} ({refund.id}) but the ERP has no credit memo {memo}",
            )


def _erp_drift(ctx: Any, document: erp_facts.ErpDocument) -> Drift | None:
    charge = charge_of_sale(document.external_reference)
    if not charge:
        return None
    try:
        found = stripe_facts.charge_from_wire(ctx.client("stripe").charge_retrieve(charge))
    except exc.NotFound:
        found = None
    if found is not None and found.captured:
        return None
    state = "does not exist" if found is None else f"is {found.status}, not captured"
    return Drift(
        ERP_SALE_WITHOUT_PAYMENT,
        document.external_reference,
        "",
        f"the ERP holds the sales journal {document.external_reference} (document "
        f"{document.id}) but Stripe's charge {charge} {state}",
    )


def drifts_find(
    ctx: Any, *, days: int, progress: Callable[[int], None] = lambda n: None
) -> Iterator[Drift]:
    """Every mismatch of the last ``days`` days, as the three systems show it now."""
    since = timezone.now() - timedelta(days=days)
    name = ctx.integration.name
    for raw in ctx.client("stripe").payment_intents_since(created_gte=int(since.timestamp())):
        intent = stripe_facts.payment_from_wire(raw)
        progress(1)
        if intent.integration != name or not intent.order_number:
            continue  # another integration's money, or no order of ours
        if intent.status == "succeeded" and intent.charge_id:
            yield from _paid_drifts(ctx, intent)
    for document in ctx.client("erp").journal_entries_since(since.date()):
        progress(1)
        drift = _erp_drift(ctx, document)
        if drift is not None:
            yield drift


def drift_still_there(ctx: Any, *, kind: str, key: str) -> Drift | None:
    """The one mismatch a drift job is about, checked again now (None: resolved)."""
    if kind == ERP_SALE_WITHOUT_PAYMENT:
        found = ctx.client("erp").journal_entry_find(key)
        return _erp_drift(ctx, erp_facts.document_from_wire(found)) if found else None
    stripe = ctx.client("stripe")
    charge_id = key
    if kind == REFUND_NOT_IN_ERP:
        charge_id = stripe_facts.refund_from_wire(stripe.refund_retrieve(key)).charge
    charge = stripe_facts.charge_from_wire(stripe.charge_retrieve(charge_id))
    intent = stripe_facts.payment_from_wire(stripe.payment_intent_retrieve(charge.payment_intent))
    for drift in _paid_drifts(ctx, intent):
        if drift.kind == kind and drift.key == key:
            return drift
    return None


def drift_recheck(ctx: Any, *, kind: str, key: str) -> dict[str, Any]:
    """A drift job's step: quarantined again with the reason while the systems still
    disagree, done once they agree."""
    drift = drift_still_there(ctx, kind=kind, key=key)
    if drift is not None:
        raise exc.DataError(f"drift: {drift.reason}")
    return {"resolved": kind, "key": key}


def _file(ctx: ServiceContext, flow: Flow, drift: Drift) -> bool:
    """A drift job for ``drift``, unless one is open for it already; run here once, so
    it is quarantined with the reason (or done, if the systems agreed meanwhile)."""
    integration = ctx.integration
    with transaction.atomic():
        if Job.objects.filter(
            integration=integration, reference=drift.reference, status__in=OPEN
        ).exists():
            return False
        job = Job.objects.create(
            flow=flow,
            integration=integration,
            context={"drift": {"kind": drift.kind, "key": drift.key}},
            max_attempts=1,
            reference=drift.reference,
        )
    job_run(job_id=job.pk)
    return True


def drift_check(
    *, integration: Integration, days: int = 7, progress: Callable[[int], None] = lambda n: None
) -> DriftReport:
    """Find the mismatches of the last ``days`` days and file each new one."""
    flow = Flow.objects.filter(key=DRIFT_FLOW).first()
    if flow is None:
        raise exc.ConnectorConfigurationError(
            f"flow {DRIFT_FLOW} is not installed: run manage.py install_flows"
        )
    ctx = ServiceContext(integration=integration)
    checked = found = filed = 0

    def counted(n: int) -> None:
        nonlocal checked
        checked += n
        progress(n)

    for drift in list(drifts_find(ctx, days=days, progress=counted)):
        found += 1
        filed += _file(ctx, flow, drift)
    return DriftReport(checked=checked, found=found, filed=filed)
