"""Order-to-cash, shipped as data: operators can edit these flows, their mappings and
the status tables in the admin; `manage.py install_flows` installs and upgrades them."""

from integrations.mapping import Rule
from integrations.services.flows import (
    FlowSpec,
    StepSpec,
    register_default_flow,
    register_default_lookup,
)

PI = "event.data.data.object"
OURS = f"{PI}.metadata.znode_order_number"
# latest_charge is an id, or an object where the sender expanded it (localstripe does).
CHARGE = f"{PI}.latest_charge.id || {PI}.latest_charge"

register_default_lookup(
    "znode-order-states",
    {"paid": "APPROVED", "authorized": "", "payment_failed": "FAILED"},
    "Znode order state (by name) for each payment outcome; empty leaves the state alone.",
)
register_default_lookup(
    "znode-payment-states",
    {"paid": "Captured", "authorized": "Authorized", "payment_failed": "Declined"},
    "Znode payment status (by name) for each payment outcome.",
)

register_default_flow(
    FlowSpec(
        key="order-created-collect-payment",
        name="Znode order created → Stripe PaymentIntent",
        trigger_source="znode",
        trigger_event="order.created",
        version=1,
        steps=(
            StepSpec(
                "fetch",
                "payments.fetch_order",
                (Rule("order_id", "event.data.object.OmsOrderId", "int", required=True),),
            ),
            StepSpec(
                "customer",
                "payments.ensure_customer",
                (
                    Rule("user_id", "steps.fetch.user_id", "int", required=True),
                    Rule("email", "steps.fetch.email"),
                    Rule("name", "steps.fetch.name"),
                    Rule("phone", "steps.fetch.phone"),
                    Rule("address", "steps.fetch.address"),
                ),
            ),
            StepSpec(
                "payment",
                "payments.create_payment_intent",
                (
                    Rule("order_number", "steps.fetch.order_number", required=True),
                    Rule("customer", "steps.customer.customer", required=True),
                    Rule("payment_method", "steps.fetch.payment_token"),
                    Rule("payment_setting_id", "steps.fetch.payment_setting_id"),
                ),
            ),
        ),
    )
)

_SUCCESS_FIELDS = (
    Rule("order_number", OURS, required=True),
    Rule("charge", CHARGE, required=True),
    Rule("amount_received", f"{PI}.amount_received", "int", default=0),
)

register_default_flow(
    FlowSpec(
        key="payment-succeeded",
        name="Stripe payment succeeded → Znode paid → ERP journal",
        trigger_source="stripe",
        trigger_event="payment_intent.succeeded",
        condition=OURS,
        version=1,
        steps=(
            StepSpec(
                "record",
                "payments.record_success",
                (
                    Rule("order_number", OURS, required=True),
                    Rule("payment_intent", "event.object_id", required=True),
                    Rule("charge", CHARGE),
                    Rule("amount_received", f"{PI}.amount_received", "int", default=0),
                ),
            ),
            StepSpec("znode", "payments.znode_mark_paid", _SUCCESS_FIELDS),
            StepSpec("erp", "payments.erp_post_sale", _SUCCESS_FIELDS),
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
        version=1,
        steps=(
            StepSpec(
                "record",
                "payments.record_success",
                (
                    Rule("order_number", OURS, required=True),
                    Rule("payment_intent", "event.object_id", required=True),
                    Rule("status", "'requires_capture'"),
                ),
            ),
            StepSpec(
                "znode",
                "payments.znode_mark_paid",
                (
                    Rule("order_number", OURS, required=True),
                    Rule("charge", CHARGE, default=""),
                    Rule("amount_received", f"{PI}.amount_capturable", "int", default=0),
                    Rule("outcome", "'authorized'"),
                ),
            ),
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
        version=1,
        steps=(
            StepSpec(
                "failure",
                "payments.record_failure",
                (
                    Rule("order_number", OURS, required=True),
                    Rule("payment_intent", "event.object_id", required=True),
                    Rule("decline_code", f"{PI}.last_payment_error.decline_code", default=""),
                    Rule("failure_code", f"{PI}.last_payment_error.code", default=""),
                    Rule("message", f"{PI}.last_payment_error.message", default=""),
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
        version=1,
        steps=(
            StepSpec(
                "fetch",
                "payments.fetch_order",
                (Rule("order_id", "event.data.object.OmsOrderId", "int", required=True),),
            ),
            StepSpec(
                "sync",
                "payments.sync_order_change",
                (
                    Rule("order_number", "steps.fetch.order_number", required=True),
                    Rule("state", "steps.fetch.state", default=""),
                    Rule("amount_minor", "steps.fetch.amount_minor", "int", required=True),
                ),
            ),
        ),
    )
)
