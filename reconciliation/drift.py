"""The drift check: do Znode, Stripe and the ERP still agree about the money of the
last N days, each read from its own state (the platform's rows only tell which ERP
entries are this integration's, never what the systems hold)?

- **Stripe → Znode and the ERP**: every PaymentIntent of this integration (our
  metadata) that succeeded must show in its Znode order as a payment record of its
  charge, and have its sales journal in the ERP; every refund of that charge that
  succeeded must have its credit memo.
- **ERP → Stripe**: every sales journal in the ERP of this integration must name a
  charge Stripe holds as captured. Several integrations may share one ERP, so a sales
  journal is this integration's when its charge is one of our own rows (a payment of
  our orders) or is in this integration's Stripe account without metadata naming
  another integration. A charge neither holds is another Stripe account's: reported
  only where the ERP serves this integration alone (then every entry is ours).

Each mismatch is filed where operators already work: a quarantined job of the
``drift-recheck`` flow with a readable reason. Retrying the job checks that one
mismatch again: it succeeds once the systems agree (the operator fixed it, or a late
job did), and is quarantined again with the reason while they do not. A mismatch
already filed and not yet resolved is not filed again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
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
from payments import money
from reconciliation import selectors
from reconciliation.references import charge_of_sale, credit_memo_reference, sale_reference

logger = logging.getLogger("reconciliation.drift")

DRIFT_FLOW = "drift-recheck"
# A mismatch filed before stays filed until its job succeeds (the systems agreed): a job
# an operator discarded is an acknowledged mismatch, not a new one.
RESOLVED = (JobStatus.SUCCEEDED,)
# What happened in the last minutes may still be on its way (a booking job running, a
# retry due): the check leaves it to them.
GRACE = timedelta(minutes=15)

PAID_NOT_IN_ZNODE = "paid_not_in_znode"
PAID_FOR_UNKNOWN_ORDER = "paid_for_unknown_order"
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
    unchecked: int = 0
    """Objects that could not be read this time (logged; the next run tries again)."""


def _recorded(order: znode_facts.ZnodeOrder, charge: str, amount: Decimal) -> bool:
    """Znode's order holds a payment record of ``charge``: by its reference, or, on a
    build that leaves ``TransactionReference`` out of the model (§9, pitfalls §12), by a
    row of the amount."""
    if znode_facts.history_has_references(order.payments):
        return any(p.reference == charge for p in order.payments)
    return any(p.amount == amount for p in order.payments)


def _paid_drifts(ctx: Any, intent: stripe_facts.StripePayment) -> Iterator[Drift]:
    charge_id = intent.charge_id
    number = intent.order_number
    stripe, erp = ctx.client("stripe"), ctx.client("erp")
    charge = stripe_facts.charge_from_wire(stripe.charge_retrieve(charge_id))
    sale = erp.journal_entry_find(sale_reference(charge_id))
    if sale is None and charge.amount_refunded >= charge.amount_captured:
        # All of it went back before any sale was booked (an order canceled after it
        # was paid is refunded in full, reference §4): nothing is owed to any ledger.
        return
    try:
        order = znode_facts.order_from_wire(ctx.client("znode").get_order_by_number(number))
    except exc.NotFound:
        yield Drift(
            PAID_FOR_UNKNOWN_ORDER,
            charge_id,
            number,
            f"Stripe shows order {number} paid ({intent.id}, charge {charge_id}) but Znode "
            "has no such order",
        )
        return
    amount = money.from_minor_units(charge.amount_captured, charge.currency)
    shown = f"{money.format_money(amount, charge.currency)}"
    if not _recorded(order, charge_id, amount):
        yield Drift(
            PAID_NOT_IN_ZNODE,
            charge_id,
            number,
            f"Stripe shows order {number} paid ({intent.id}, charge {charge_id}, {shown}) but "
            "Znode's order has no payment record of that charge",
        )
    if sale is None:
        yield Drift(
            PAID_NOT_IN_ERP,
            charge_id,
            number,
            f"Stripe shows order {number} paid (charge {charge_id}, {shown}) but the ERP has "
            f"no sales journal {sale_reference(charge_id)}",
        )
        return  # a credit memo is owed only against a sale the ERP holds
    for raw in stripe.refunds_for_charge(charge_id):
        refund = stripe_facts.refund_from_wire(raw)
        memo = credit_memo_reference(refund.id)
        if refund.status == "succeeded" and erp.credit_memo_find(memo) is None:
            back = money.format_money(
                money.from_minor_units(refund.amount, refund.currency), refund.currency
            )
            yield Drift(
                REFUND_NOT_IN_ERP,
                refund.id,
                number,
                f"Stripe refunded {back} of order {number} ({refund.id}) but the ERP has no "
                f"credit memo {memo}",
            )


def _erp_drift(ctx: Any, document: erp_facts.ErpDocument, *, shared: bool) -> Drift | None:
    """The mismatch of a sales journal of the ERP (None: it agrees with Stripe, or it is
    another integration's: ``shared``, the ERP serves other integrations too)."""
    charge = charge_of_sale(document.external_reference)
    if not charge:
        return None
    integration = ctx.integration
    ours = selectors.sale_is_ours(
        integration=integration, charge_id=charge, reference=document.external_reference
    )
    try:
        raw = ctx.client("stripe").charge_retrieve(charge, expand=["payment_intent"])
    except exc.NotFound:
        raw = None
    if raw is None:
        if shared and not ours:
            return None  # a charge of another integration's Stripe account
        found = None
    else:
        named = stripe_facts.charge_reference(raw).integration
        if not ours and named and named != integration.name:
            return None  # another integration's money on the same Stripe account
        found = stripe_facts.charge_from_wire(raw)
        if found.captured:
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
    ctx: Any,
    *,
    days: int,
    grace: timedelta = GRACE,
    progress: Callable[[int], None] = lambda n: None,
    unchecked: Callable[[str], None] = lambda why: None,
) -> Iterator[Drift]:
    """Every mismatch of the last ``days`` days (less the last ``grace``), as the three
    systems show it now. An object that cannot be read now is reported to
    ``unchecked`` and the check goes on."""
    now = timezone.now()
    since, until = now - timedelta(days=days), now - grace
    name = ctx.integration.name
    for raw in ctx.client("stripe").payment_intents_since(created_gte=int(since.timestamp())):
        intent = stripe_facts.payment_from_wire(raw)
        progress(1)
        if intent.integration != name or not intent.order_number:
            continue  # another integration's money, or no order of ours
        if intent.created > until.timestamp():
            continue
        if intent.status == "succeeded" and intent.charge_id:
            try:
                yield from _paid_drifts(ctx, intent)
            except exc.IntegrationError as error:
                unchecked(f"{intent.id}: {error}")
    shared = selectors.erp_shared(integration=ctx.integration)
    for document in ctx.client("erp").journal_entries_since(since.date()):
        progress(1)
        try:
            drift = _erp_drift(ctx, document, shared=shared)
        except exc.IntegrationError as error:
            unchecked(f"{document.external_reference}: {error}")
            continue
        if drift is not None:
            yield drift


def drift_still_there(ctx: Any, *, kind: str, key: str) -> Drift | None:
    """The one mismatch a drift job is about, checked again now (None: resolved)."""
    if kind == ERP_SALE_WITHOUT_PAYMENT:
        found = ctx.client("erp").journal_entry_find(key)
        if not found:
            return None
        shared = selectors.erp_shared(integration=ctx.integration)
        return _erp_drift(ctx, erp_facts.document_from_wire(found), shared=shared)
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
    """A drift job for ``drift``, unless one was filed and not yet resolved; run here
    once, so it is quarantined with the reason (or done, if the systems agreed
    meanwhile). True: it was filed and is quarantined (what the report counts)."""
    integration = ctx.integration
    with transaction.atomic():
        # One check at a time files (the schedule and the command may meet).
        Integration.objects.select_for_update().filter(pk=integration.pk).first()
        filed = Job.objects.filter(integration=integration, reference=drift.reference)
        if filed.exclude(status__in=RESOLVED).exists():
            return False
        job = Job.objects.create(
            flow=flow,
            integration=integration,
            context={"drift": {"kind": drift.kind, "key": drift.key}},
            max_attempts=1,
            reference=drift.reference,
        )
    job_run(job_id=job.pk)
    return Job.objects.filter(pk=job.pk, status=JobStatus.QUARANTINED).exists()


def drift_check(
    *,
    integration: Integration,
    days: int = 7,
    grace: timedelta = GRACE,
    progress: Callable[[int], None] = lambda n: None,
) -> DriftReport:
    """Find the mismatches of the last ``days`` days and file each new one as it is
    found."""
    flow = Flow.objects.filter(key=DRIFT_FLOW).first()
    if flow is None:
        raise exc.ConnectorConfigurationError(
            f"flow {DRIFT_FLOW} is not installed: run manage.py install_flows"
        )
    ctx = ServiceContext(integration=integration)
    checked = found = filed = 0
    skipped: list[str] = []

    def counted(n: int) -> None:
        nonlocal checked
        checked += n
        progress(n)

    for drift in drifts_find(
        ctx, days=days, grace=grace, progress=counted, unchecked=skipped.append
    ):
        found += 1
        filed += _file(ctx, flow, drift)
    for why in skipped:
        logger.warning("reconciliation.drift.unchecked integration=%s %s", integration.pk, why)
    return DriftReport(checked=checked, found=found, filed=filed, unchecked=len(skipped))
