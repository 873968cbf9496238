"""Order-to-cash, shipped as data: operators can edit these flows, their mappings and
the status tables in the admin; `manage.py install_flows` installs and upgrades them."""

from integrations.mapping import Rule
from integrations.services.flows import (
    FlowSpec,
    StepSpec,
    register_default_flow,
    register_default_lookup,
    register_flow_per_event,
)

# The event's business facts (the connectors' ``event_facts``): what a Stripe event's
# PaymentIntent or payment page says, what a Znode event's order is. The raw payload
# stays under ``event.data`` for an operator's own mappings.
OURS = "payment.order_number"

# A stock 9.x store accepts an order-state write only for states with IsOrderState=1
# and ignores the others silently (reference §3.1, §4.1): APPROVED is a quote/account
# state, and FAILED or PENDING PAYMENT have no known id or flags. Stock Znode shows a
# payment by its payment status, not the order state, so the shipped table leaves the
# state alone; `install_flows` and `connection test` check whatever an operator maps.
register_default_lookup(
    "znode-order-states",
    {"paid": "", "authorized": "", "payment_failed": ""},
    "Znode order state (by name, an IsOrderState state) for each payment outcome; "
    "empty leaves the state alone.",
)
register_default_lookup(
    "znode-payment-states",
    {
        "paid": "Captured",
        "authorized": "Authorized",
        "payment_failed": "Declined",
        "refunded": "Refunded",
        "partially_refunded": "",
        "voided": "Voided",
    },
    "Znode payment status (by name) for each payment outcome; empty leaves it alone "
    "(stock Znode has no partially refunded payment state, reference §4.2).",
)
register_default_lookup(
    "znode-return-refund-states",
    {"APPROVED": "refund"},
    "Znode return states (by name, upper case) in which the platform refunds the return's "
    "TotalReturnAmount through Stripe: refund. Other states are left alone.",
)
register_default_lookup(
    "znode-return-states",
    {"refunded": "Refund Processed", "refund_failed": "In Review"},
    "Znode return state (by name) written back when the return's refund succeeded, and "
    "when it failed (reopened for a person, who approves it again to retry); empty "
    "leaves the return alone.",
)
register_default_lookup(
    "znode-dispute-states",
    {"open": "Pending", "won": "Captured", "lost": "Refunded", "closed": "Captured"},
    "Znode payment status (by name) flagging an order whose charge is disputed (open), "
    "and after the dispute is won, lost or closed without a chargeback; empty leaves it "
    "alone.",
)


def _booking(step: str, order_step: str = "") -> tuple[Rule, ...]:
    """Inputs of the booking steps, from the step that re-read the payment (and the
    order as the fetch step read it, where the flow has one)."""
    number = f"steps.{order_step}.order_number" if order_step else OURS
    return (
        Rule("order_number", number, required=True),
        Rule("charge", f"steps.{step}.charge", default=""),
        Rule("amount_received", f"steps.{step}.amount_received", "int", default=0),
        Rule("outcome", f"steps.{step}.outcome", default=""),
    )


def _mark_paid(step: str, order_step: str) -> tuple[Rule, ...]:
    """The Znode booking step's inputs in a flow that read the order: the booking
    ones, and what Znode showed of the payment."""
    return (
        *_booking(step, order_step),
        Rule("znode_payment_status", f"steps.{order_step}.payment_status"),
        Rule("znode_transaction_id", f"steps.{order_step}.transaction_id"),
        Rule("znode_payments", f"steps.{order_step}.payments"),
    )


# Steps two flows share: the order re-read from Znode (events are hints), and the
# PaymentIntent re-read from Stripe.
FETCH_ORDER = StepSpec(
    "fetch",
    "payments.fetch_order",
    (Rule("order_id", "order.id", "int", required=True),),
)
RECORD_PAYMENT = StepSpec(
    "record",
    "payments.record_success",
    (
        Rule("order_number", OURS, required=True),
        Rule("payment_intent", "payment.id", required=True),
    ),
)


register_default_flow(
    FlowSpec(
        key="order-created-collect-payment",
        name="Znode order created → Stripe PaymentIntent",
        trigger_source="znode",
        trigger_event="order.created",
        version=4,
        steps=(
            FETCH_ORDER,
            StepSpec(
                "customer",
                "payments.ensure_customer",
                (
                    Rule("user_id", "steps.fetch.user_id", "int", required=True),
                    Rule("email", "steps.fetch.email"),
                    Rule("name", "steps.fetch.name"),
                    Rule("phone", "steps.fetch.phone"),
                    Rule("address", "steps.fetch.address"),
                    Rule("collection_mode", "steps.fetch.collection_mode"),
                ),
            ),
            StepSpec(
                "payment",
                "payments.collect_payment",
                (
                    Rule("order_number", "steps.fetch.order_number", required=True),
                    Rule("customer", "steps.customer.customer", default=""),
                    Rule("transaction_id", "steps.fetch.transaction_id", default=""),
                ),
            ),
            # An adopted charge that Stripe already shows captured is booked at once.
            StepSpec("znode", "payments.znode_mark_paid", _mark_paid("payment", "fetch")),
            StepSpec("erp", "payments.erp_post_sale", _booking("payment", "fetch")),
        ),
    )
)

register_default_flow(
    FlowSpec(
        key="payment-succeeded",
        name="Stripe payment succeeded → Znode paid → ERP journal",
        trigger_source="stripe",
        trigger_event="payment_intent.succeeded",
        condition=OURS,
        version=3,
        steps=(
            RECORD_PAYMENT,
            StepSpec("znode", "payments.znode_mark_paid", _booking("record")),
            StepSpec("erp", "payments.erp_post_sale", _booking("record")),
        ),
    )
)

register_default_flow(
    FlowSpec(
        key="payment-authorized",
        name="Stripe payment authorized (manual capture) → Znode Authorized",
        trigger_source="stripe",
        trigger_event="payment_intent.amount_capturable_updated",
        condition=OURS,
        version=3,
        steps=(
            RECORD_PAYMENT,
            StepSpec("znode", "payments.znode_mark_paid", _booking("record")),
        ),
    )
)

register_default_flow(
    FlowSpec(
        key="payment-failed",
        name="Stripe payment failed → Znode Payment Failed, note, customer email",
        trigger_source="stripe",
        trigger_event="payment_intent.payment_failed",
        condition=OURS,
        version=2,
        steps=(
            StepSpec(
                "failure",
                "payments.record_failure",
                (
                    Rule("order_number", OURS, required=True),
                    Rule("payment_intent", "payment.id", required=True),
                    Rule("decline_code", "payment.decline_code", default=""),
                    Rule("failure_code", "payment.failure_code", default=""),
                    Rule("message", "payment.failure_message", default=""),
                ),
            ),
        ),
    )
)

register_default_flow(
    FlowSpec(
        key="payment-page-expired",
        name="Stripe payment page expired unpaid → note in Znode",
        trigger_source="stripe",
        trigger_event="checkout.session.expired",
        condition="page.order_number",
        version=2,
        steps=(
            StepSpec(
                "page",
                "payments.hosted_page_expired",
                (
                    Rule("order_number", "page.order_number", required=True),
                    Rule("checkout_session", "page.id", required=True),
                    Rule("occurred_at", "event.occurred_at", default=""),
                ),
            ),
        ),
    )
)

register_default_flow(
    FlowSpec(
        key="order-updated-sync-payment",
        name="Znode order changed → cancel, re-amount or capture the PaymentIntent",
        trigger_source="znode",
        trigger_event="order.updated",
        version=4,
        steps=(
            FETCH_ORDER,
            StepSpec(
                "sync",
                "payments.sync_order_change",
                (
                    Rule("order_number", "steps.fetch.order_number", required=True),
                    Rule("state", "steps.fetch.state", default=""),
                    Rule("amount_minor", "steps.fetch.amount_minor", "int", required=True),
                ),
            ),
            # A charge adopted from Znode's payment app and captured here on shipment.
            StepSpec("znode", "payments.znode_mark_paid", _mark_paid("sync", "fetch")),
            StepSpec("erp", "payments.erp_post_sale", _booking("sync", "fetch")),
        ),
    )
)


# --- money given back -----------------------------------------------------------------------
REFLECT_REFUND = StepSpec(
    "reflect",
    "payments.reflect_refund",
    (Rule("refund", "steps.refund.refund", default=""),),
)


register_flow_per_event(
    ("return.created", "return.updated"),
    source="znode",
    name="Znode {event} in a refund state → Stripe refund → Znode, ERP credit memo",
    condition="return.number",
    steps=(
        StepSpec(
            "refund",
            "payments.refund_return",
            (Rule("return_number", "return.number", required=True),),
        ),
        REFLECT_REFUND,
    ),
)
register_flow_per_event(
    ("refund.created", "refund.updated", "refund.failed"),
    source="stripe",
    name="Stripe {event} → refund recorded → Znode, ERP credit memo",
    condition="refund.id",
    steps=(
        StepSpec("refund", "payments.record_refund", (Rule("refund", "refund.id", required=True),)),
        REFLECT_REFUND,
    ),
)
register_flow_per_event(
    ("charge.refunded",),
    source="stripe",
    name="Stripe {event} → its refunds recorded → Znode, ERP credit memos",
    condition="charge.id",
    steps=(
        StepSpec(
            "refunds",
            "payments.record_charge_refunds",
            (Rule("charge", "charge.id", required=True),),
        ),
    ),
)
register_flow_per_event(
    (
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
    ),
    source="stripe",
    name="Stripe {event} → dispute recorded → Znode note and flag, ERP",
    condition="dispute.id",
    steps=(
        StepSpec(
            "dispute", "payments.record_dispute", (Rule("dispute", "dispute.id", required=True),)
        ),
    ),
)
