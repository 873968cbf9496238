"""Customer links: the Stripe customer of a Znode user, found before it is created,
so re-running never makes a second one."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from customers.models import TRUSTED_MATCHES, CustomerLink, MatchedBy, RejectedCustomer
from integrations.connectors.stripe import mapping as stripe_facts
from integrations.kernel import exceptions as exc
from integrations.kernel.facts import PostalAddress
from integrations.models import Integration


def params_digest(params: dict[str, Any]) -> str:
    """A short hash of a write's parameters, for its idempotency key: another value is
    another write."""
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


def customer_link_create(
    *,
    integration: Integration,
    znode_user_id: int,
    stripe_customer_id: str,
    email: str,
    matched_by: str = MatchedBy.CREATED,
) -> CustomerLink:
    """Link the user to the customer; an existing link for the user is kept."""
    try:
        with transaction.atomic():
            link, _ = CustomerLink.objects.get_or_create(
                integration=integration,
                znode_user_id=znode_user_id,
                defaults={
                    "stripe_customer_id": stripe_customer_id,
                    "email": email[:512],
                    "matched_by": matched_by,
                    # A customer made now has no card saved before the link.
                    "cards_synced_at": timezone.now() if matched_by == MatchedBy.CREATED else None,
                },
            )
    except IntegrityError as error:
        # Another user of the same email linked that customer a moment ago: the retry's
        # lookup sees that link and finds or makes another customer.
        raise exc.ConflictRetry(
            f"Stripe customer {stripe_customer_id} was linked to another Znode user meanwhile"
        ) from error
    return link


def stripe_customer_create(ctx: Any, *, znode_user_id: int, email: str):
    """Make the user's Stripe customer, under the key every flow that may make it uses
    (:func:`customer_create_key`). A key an earlier create used with other parameters
    (a create of an earlier release, or one racing with another email) is retried:
    the retry's lookup finds the customer that create made."""
    try:
        return stripe_facts.customer_from_wire(
            ctx.client("stripe").customer_create(
                params=stripe_facts.customer_create_params(
                    email=email, znode_user_id=znode_user_id, integration=ctx.integration.name
                ),
                idempotency_key=customer_create_key(ctx, znode_user_id=znode_user_id),
            )
        )
    except exc.IdempotencyMismatch as error:
        raise exc.ConflictRetry(
            f"the customer of Znode user {znode_user_id} was being made with other "
            "details; retried, the lookup finds it"
        ) from error


def _shares_stripe_account(integration: Integration) -> bool:
    """Another integration uses the same Stripe connection (two stores, one account)."""
    return (
        Integration.objects.filter(stripe_id=integration.stripe_id)
        .exclude(pk=integration.pk)
        .exists()
    )


def stripe_customer_find(ctx: Any, *, znode_user_id: int, email: str) -> tuple[str, str]:
    """(an existing Stripe customer for this Znode user, how it was found): by our
    metadata, then by email (only a customer that names no other Znode user). ("", "")
    when none.

    A candidate is never one that names another integration in our metadata (two
    stores on one Stripe account each have a user 42), nor, where the account is
    shared, one that names none; nor a customer already linked to another user of
    this integration (two Znode users may share an email: a guest and an account).

    Callers that charge a saved card pass no email: anyone can type an email into a
    checkout, so only our metadata may lead to someone's saved payment method. A
    customer an operator unlinked from this user is never found again."""
    integration = ctx.integration
    gateway = ctx.client("stripe")
    rejected = set(
        RejectedCustomer.objects.filter(
            integration=integration, znode_user_id=znode_user_id
        ).values_list("stripe_customer_id", flat=True)
    )
    shared = None

    def ours(candidate: stripe_facts.StripeCustomer) -> bool:
        nonlocal shared
        if candidate.id in rejected:
            return False
        if candidate.integration:
            return candidate.integration == integration.name
        if shared is None:
            shared = _shares_stripe_account(integration)
        return not shared

    def linked_elsewhere(ids: list[str]) -> set[str]:
        return set(
            CustomerLink.objects.filter(integration=integration, stripe_customer_id__in=ids)
            .exclude(znode_user_id=znode_user_id)
            .values_list("stripe_customer_id", flat=True)
        )

    try:
        found = gateway.customer_search(query=stripe_facts.customer_search_query(znode_user_id))
    except exc.NotFound:
        found = []  # an account or emulator without search: fall back to the email
    candidates = [c for c in map(stripe_facts.customer_from_wire, found) if ours(c)]
    taken = linked_elsewhere([c.id for c in candidates])
    for candidate in candidates:
        if candidate.id not in taken:
            return candidate.id, MatchedBy.METADATA
    if not email:
        return "", ""
    candidates = [
        c
        for c in map(stripe_facts.customer_from_wire, gateway.customer_list(email=email))
        if c.znode_user_id in ("", str(znode_user_id))
        and (not c.znode_user_id or ours(c))
        and c.id not in rejected
    ]
    taken = linked_elsewhere([c.id for c in candidates])
    for candidate in candidates:
        if candidate.id not in taken:
            how = MatchedBy.METADATA if candidate.znode_user_id else MatchedBy.EMAIL
            return candidate.id, how
    return "", ""


def customer_create_key(ctx: Any, *, znode_user_id: int) -> str:
    """The idempotency key of the user's Stripe customer creation: the same for every
    flow that may make it (an order's first payment, the sync), so two racing make one
    customer; a new one once an operator unlinked the last (its customer deleted)."""
    unlinked = CustomerLink.history.filter(
        integration_id=ctx.integration.pk, znode_user_id=znode_user_id, history_type="-"
    ).count()
    parts: tuple = ("customer", ctx.integration.name, znode_user_id)
    return ctx.idempotency_key(*parts, *((f"relink-{unlinked}",) if unlinked else ()))


def stripe_customer_ensure(
    *,
    ctx: Any,
    znode_user_id: int,
    email: str,
    name: str = "",
    phone: str = "",
    address: PostalAddress | None = None,
    by_email: bool = True,
) -> tuple[str, bool]:
    """(the user's Stripe customer, whether it was created now): the link, else one
    found (``by_email``: an email match counts too), else a new one with the details.

    A customer found by email only, and not yet confirmed by an operator, is linked
    (so no second one is ever made) but given to no payment: ("", False). The payment
    then goes ahead without a customer (a Checkout page takes the email), because a
    customer attached to a payment shows, and may charge, its saved cards."""
    link = CustomerLink.objects.filter(
        integration=ctx.integration, znode_user_id=znode_user_id
    ).first()
    if link is not None:
        return (link.stripe_customer_id if link.matched_by in TRUSTED_MATCHES else ""), False
    existing, how = stripe_customer_find(
        ctx, znode_user_id=znode_user_id, email=email if by_email else ""
    )
    if existing:
        customer_link_create(
            integration=ctx.integration,
            znode_user_id=znode_user_id,
            stripe_customer_id=existing,
            email=email,
            matched_by=how,
        )
        return (existing if how in TRUSTED_MATCHES else ""), False
    gateway = ctx.client("stripe")
    # The create carries only what is the same for every order of this user (two
    # concurrent first orders send identical requests under the same key); the
    # order-specific details follow in an update with its own key.
    customer = stripe_customer_create(ctx, znode_user_id=znode_user_id, email=email)
    details = stripe_facts.customer_details_params(
        name=name, phone=phone, address=address or PostalAddress()
    )
    if details:
        gateway.customer_update(
            customer.id,
            params=details,
            idempotency_key=ctx.idempotency_key(
                "customer-details", customer.id, params_digest(details)
            ),
        )
    customer_link_create(
        integration=ctx.integration,
        znode_user_id=znode_user_id,
        stripe_customer_id=customer.id,
        email=email,
    )
    return customer.id, True
