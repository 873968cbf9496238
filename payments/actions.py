"""Order-to-cash actions: the flows' adapters over the payments services.

Each is registered with the engine and used by the default flows in
``payments/flows.py``. An action turns its mapped inputs into facts and the order,
calls one service, and returns JSON for the steps after it. The logic lives in
``services.py`` (state machine, order, bookings), ``collection.py`` (the collection
modes), ``checkout.py`` (the hosted page), ``outcomes.py`` (what Stripe says) and
``changes.py`` (what Znode changes); customer links in ``customers/services.py``.
Every external write carries a deterministic idempotency key derived from the
business object (order number, charge id).

Stripe and Znode events are hints: the object is re-read before money or state moves.
"""

from __future__ import annotations

from datetime import datetime

from customers.services import stripe_customer_ensure
from integrations.connectors.stripe.mapping import dispute_from_wire, refund_from_wire
from integrations.connectors.znode.mapping import (
    PaymentView,
    order_from_wire,
    payment_records_from_json,
)
from integrations.kernel import exceptions as exc
from integrations.kernel.facts import PostalAddress, fact_json
from integrations.registry import action
from integrations.runtime import ActionContext
from payments import money
from payments.changes import order_change_sync
from payments.checkout import hosted_page_expired as page_expired
from payments.choices import CollectionMode, OrderState
from payments.collection import payment_collect
from payments.disputes import dispute_record
from payments.outcomes import payment_failure_record, payment_success_record
from payments.refunds import charge_refunds_record, refund_record, refund_reflect, return_refund
from payments.selectors import order_find, order_get, refund_by_stripe_id
from payments.services import (
    AUTHORIZED,
    PAID,
    extra_metadata,
    order_book_in_znode,
    order_upsert,
)
from reconciliation import ledger


@action("payments.fetch_order", description="Re-read the order from Znode (events are hints).")
def fetch_order(*, ctx: ActionContext, order_id: int) -> dict:
    znode_order = order_from_wire(ctx.client("znode").get_order(int(order_id)))
    order = order_upsert(ctx, znode_order)
    return {
        "order_id": znode_order.id,
        "order_number": znode_order.number,
        "user_id": znode_order.user_id,
        "email": order.email,
        "name": znode_order.name,
        "phone": znode_order.phone,
        "address": fact_json(znode_order.billing),
        "currency": znode_order.currency,
        "total": str(znode_order.total),
        "amount_minor": money.to_minor_units(znode_order.total, znode_order.currency),
        "state": znode_order.state,
        "payment_status": znode_order.payment_status,
        "transaction_id": znode_order.transaction_id,
        "payments": [fact_json(record) for record in znode_order.payments],
        "tracking_number": order.tracking_number,
        "collection_mode": order.collection_mode,
        "known_state": order.state,
        "known_amount_minor": order.amount_minor,
        "payment_setting_id": znode_order.payment_setting_id,
    }


@action("payments.ensure_customer", description="Find or create the Stripe customer.")
def ensure_customer(
    *,
    ctx: ActionContext,
    user_id: int,
    email: str = "",
    name: str = "",
    phone: str = "",
    address: dict | None = None,
    collection_mode: str = "",
) -> dict:
    if collection_mode in (CollectionMode.NOT_OURS, CollectionMode.ADOPT):
        # Znode's payment app keeps its own Stripe customer for adopted charges, and
        # orders we do not collect need none.
        return {"customer": "", "created": False, "skipped": collection_mode}
    customer, created = stripe_customer_ensure(
        ctx=ctx,
        znode_user_id=user_id,
        email=email,
        name=name,
        phone=phone,
        address=PostalAddress.from_json(address),
        # A saved card is charged for a customer found by our metadata only: anyone
        # can type an email into a checkout.
        by_email=collection_mode != CollectionMode.SAVED_METHOD,
    )
    return {"customer": customer, "created": created}


@action(
    "payments.collect_payment",
    description="Collect the order's money by its mode.",
    inputs_help={
        "order_number": "The Znode order number (fetch's output).",
        "customer": "The Stripe customer (ensure_customer's output); blank for none.",
        "transaction_id": "Znode's payment transaction id, for adopted charges.",
        "metadata": "Extra keys for the PaymentIntent's metadata (e.g. metadata.channel "
        "← a Znode field); the platform's own keys win.",
    },
)
def collect_payment(
    *,
    ctx: ActionContext,
    order_number: str,
    customer: str = "",
    transaction_id: str = "",
    payment_method: str = "",
    payment_setting_id: int | None = None,
    metadata: dict | None = None,
) -> dict:
    """``metadata``: keys a mapping adds to the PaymentIntent's (or payment page's)
    metadata; ours win. ``payment_method`` and ``payment_setting_id`` are accepted for
    flows edited before collection modes existed; Znode's payment token is never sent
    to Stripe (it is the payment app's GUID, reference §9.1)."""
    order = order_get(integration=ctx.integration, order_number=order_number)
    if not isinstance(metadata, dict | type(None)):
        raise exc.MappingError(f"metadata must be an object, not {type(metadata).__name__}")
    token = extra_metadata.set(dict(metadata or {}))
    try:
        return payment_collect(ctx, order, customer=customer, transaction_id=transaction_id)
    finally:
        extra_metadata.reset(token)


# Flows installed before collection modes name the old key.
action("payments.create_payment_intent", description="Alias of payments.collect_payment.")(
    collect_payment
)


@action("payments.record_success", description="Re-read the payment; mark the order paid.")
def record_success(
    *,
    ctx: ActionContext,
    order_number: str,
    payment_intent: str,
    charge: str = "",
    amount_received: int = 0,
    status: str = "succeeded",
) -> dict:
    """``charge``, ``amount_received`` and ``status`` are hints only (kept for edited
    flows): what counts is read from Stripe."""
    order = order_get(integration=ctx.integration, order_number=order_number)
    return payment_success_record(ctx, order, payment_intent=payment_intent)


@action("payments.znode_mark_paid", description="Payment record, status and state in Znode.")
def znode_mark_paid(
    *,
    ctx: ActionContext,
    order_number: str,
    charge: str = "",
    amount_received: int = 0,
    outcome: str = PAID,
    znode_payment_status: str | None = None,
    znode_transaction_id: str | None = None,
    znode_payments: list | None = None,
) -> dict:
    """``znode_*``: the order as the flow's fetch step read it (spares a read where it
    can decide; see ``order_book_in_znode``)."""
    if outcome not in (PAID, AUTHORIZED):
        return {"skipped": f"outcome {outcome or 'none'}"}
    order = order_get(integration=ctx.integration, order_number=order_number)
    if outcome == AUTHORIZED and order.state != OrderState.AUTHORIZED:
        # A late "capturable" event after the capture (or a cancel): Znode already
        # shows the newer truth; never write the older one over it.
        return {"skipped": f"order is {order.state}"}
    seen = None
    if znode_payment_status is not None:
        seen = PaymentView(
            payment_status=znode_payment_status,
            transaction_id=znode_transaction_id or "",
            payments=payment_records_from_json(znode_payments)
            if znode_payments is not None
            else None,
        )
    return order_book_in_znode(
        ctx, order, charge=charge, amount_received=amount_received, outcome=outcome, seen=seen
    )


@action("payments.erp_post_sale", description="Sales journal entry, idempotent by charge id.")
def erp_post_sale(
    *, ctx: ActionContext, order_number: str, charge: str, amount_received: int, outcome: str = PAID
) -> dict:
    if outcome != PAID or not charge:
        return {"skipped": f"outcome {outcome or 'none'}"}
    if ctx.integration.erp_id is None:
        return {"skipped": "no ERP connection"}
    order = order_get(integration=ctx.integration, order_number=order_number)
    return ledger.sale_post(ctx, order, charge=charge, amount_received=amount_received)


@action("payments.record_failure", description="Declined: Znode status, note, customer email.")
def record_failure(
    *,
    ctx: ActionContext,
    order_number: str,
    payment_intent: str,
    decline_code: str = "",
    failure_code: str = "",
    message: str = "",
) -> dict:
    order = order_get(integration=ctx.integration, order_number=order_number)
    return payment_failure_record(
        ctx,
        order,
        payment_intent=payment_intent,
        decline_code=decline_code,
        failure_code=failure_code,
        message=message,
    )


def _epoch(value: int | str | None) -> int:
    """The event's time as a Unix timestamp: an int, or ISO 8601 (``event.occurred_at``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.isdigit():
            return int(text)
        try:
            return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
        except ValueError:
            return 0
    return 0


@action(
    "payments.hosted_page_expired",
    description="A payment page expired unpaid: close it here, note it in Znode.",
)
def hosted_page_expired(
    *, ctx: ActionContext, order_number: str, checkout_session: str, occurred_at: int | str = ""
) -> dict:
    order = order_get(integration=ctx.integration, order_number=order_number)
    return page_expired(
        ctx, order, checkout_session=checkout_session, occurred_at=_epoch(occurred_at)
    )


@action(
    "payments.sync_order_change",
    description="Cancel, re-amount or capture after a Znode change.",
)
def sync_order_change(
    *, ctx: ActionContext, order_number: str, state: str, amount_minor: int
) -> dict:
    order = order_find(integration=ctx.integration, order_number=order_number)
    if order is None:
        return {"ignored": "order not handled here"}
    return order_change_sync(ctx, order, state=state, amount_minor=amount_minor)


# --- money given back ------------------------------------------------------------------------
@action(
    "payments.refund_return",
    description="Refund a Znode return in a refund state (re-read), never above what the "
    "order still holds.",
)
def refund_return(*, ctx: ActionContext, return_number: str) -> dict:
    return return_refund(ctx, return_number)


@action("payments.record_refund", description="Re-read a Stripe refund and record it.")
def record_refund(*, ctx: ActionContext, refund: str) -> dict:
    row = refund_record(ctx, refund_from_wire(ctx.client("stripe").refund_retrieve(refund)))
    if row is None:
        return {"refund": "", "skipped": f"{refund} is not a refund of our payments"}
    return {"refund": row.stripe_refund_id, "status": row.status, "order": row.order.order_number}


@action(
    "payments.reflect_refund",
    description="Show Znode and the ERP what a refund's status says (each write once).",
)
def reflect_refund(*, ctx: ActionContext, refund: str = "") -> dict:
    row = refund_by_stripe_id(refund) if refund else None
    if row is None:
        return {"skipped": "no refund of ours to reflect"}
    return refund_reflect(ctx, row)


@action(
    "payments.record_charge_refunds",
    description="Read every refund of a charge, record them, reflect the ones that went through.",
)
def record_charge_refunds(*, ctx: ActionContext, charge: str) -> dict:
    reflected = {}
    for row in charge_refunds_record(ctx, charge):
        if row.status == "succeeded":
            reflected[row.stripe_refund_id] = refund_reflect(ctx, row)
        else:  # pending ones wait; failures are reflected by refund.failed
            reflected[row.stripe_refund_id] = {"status": row.status}
    return {"charge": charge, "refunds": reflected}


@action(
    "payments.record_dispute",
    description="Re-read a Stripe dispute; record it, note and flag it in Znode, post its "
    "money movements to the ERP.",
)
def record_dispute(*, ctx: ActionContext, dispute: str) -> dict:
    return dispute_record(ctx, dispute_from_wire(ctx.client("stripe").dispute_retrieve(dispute)))
