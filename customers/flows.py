"""The customer sync, shipped as data (editable in the admin like every flow)."""

from integrations.mapping import Rule
from integrations.services.flows import StepSpec, register_flow_per_event

register_flow_per_event(
    ("user.created", "user.updated", "address.created", "address.updated"),
    source="znode",
    name="Znode {event} → Stripe customer in step",
    condition="customer.user_id",
    steps=(
        StepSpec(
            "sync",
            "customers.sync_znode_customer",
            (
                Rule("user_id", "customer.user_id", "int", required=True),
                Rule("portal_id", "customer.portal_id", default=None),
            ),
        ),
    ),
)
register_flow_per_event(
    ("customer.updated",),
    source="stripe",
    name="Stripe {event} → Znode user in step",
    condition="customer.id",
    steps=(
        StepSpec(
            "sync",
            "customers.sync_stripe_customer",
            (
                Rule("customer", "customer.id", required=True),
                Rule("znode_user_id", "customer.znode_user_id", default=""),
                Rule("integration", "customer.integration", default=""),
            ),
        ),
    ),
    version=2,  # v2: the integration our metadata names (two stores on one account)
)
register_flow_per_event(
    ("payment_method.attached", "payment_method.detached", "payment_method.updated"),
    source="stripe",
    name="Stripe {event} → saved cards on the customer link",
    condition="card.customer",
    steps=(
        StepSpec(
            "cards", "customers.sync_cards", (Rule("customer", "card.customer", required=True),)
        ),
    ),
)
