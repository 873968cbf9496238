"""The customer sync's actions: thin adapters over :mod:`customers.sync`."""

from __future__ import annotations

from customers.sync import customer_cards_sync, customer_sync, stripe_customer_sync
from integrations.registry import action
from integrations.runtime import ActionContext


@action(
    "customers.sync_znode_customer",
    description="A Znode user changed: bring its Stripe customer in step (and back).",
)
def sync_znode_customer(*, ctx: ActionContext, user_id: int, portal_id: int | None = None) -> dict:
    return customer_sync(ctx, user_id=int(user_id), portal_id=portal_id).as_output()


@action(
    "customers.sync_stripe_customer",
    description="A Stripe customer changed: bring its Znode user in step (and back).",
)
def sync_stripe_customer(
    *, ctx: ActionContext, customer: str, znode_user_id: str = "", integration: str = ""
) -> dict:
    event = ctx.event
    changed_at = (event.occurred_at or event.received_at) if event else None
    return stripe_customer_sync(
        ctx,
        stripe_customer_id=customer,
        znode_user_id=znode_user_id,
        integration=integration,
        changed_at=changed_at,
    ).as_output()


@action(
    "customers.sync_cards",
    description="A card was attached, detached or updated: keep the saved cards in step.",
)
def sync_cards(*, ctx: ActionContext, customer: str) -> dict:
    return customer_cards_sync(ctx, stripe_customer_id=customer)
