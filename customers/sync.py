"""Two-way customer sync: a Znode user and its Stripe customer brought in step.

One service serves every trigger (a Znode user or address event, the 9.x poller's,
a Stripe ``customer.updated``, the backfill): it re-reads both sides (events are
hints), merges them against what they last agreed on (:mod:`customers.merge`), checks
that what goes to Stripe is valid, writes only the side that differs, and keeps the
agreed profile on the link.

Before each write it tells the engine's change gate what the object will look like
(``change_expect``), so the webhook or poll that echoes our own write is dropped at
the inbox with no job and no API call. Znode's customer and address PUTs replace
whole rows (reference §6, §12): the connector's client reads, modifies and writes back.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from customers.merge import Merge, profile_merge
from customers.models import (
    CustomerConflict,
    CustomerLink,
    CustomerSyncLock,
    MatchedBy,
    SavedCard,
)
from customers.ownership import NEWEST, field_owners
from customers.services import (
    customer_link_create,
    params_digest,
    stripe_customer_create,
    stripe_customer_find,
)
from integrations.connectors.stripe import mapping as stripe_facts
from integrations.connectors.znode import mapping as znode_facts
from integrations.kernel import exceptions as exc
from integrations.kernel.facts import (
    CustomerProfile,
    PostalAddress,
    profile_fingerprint,
    profile_from_values,
    profile_values,
)
from integrations.models import Integration
from integrations.runtime import ActionContext, ServiceContext
from integrations.services.inbox import change_expect, change_last_routed_at
from integrations.services.jobs import job_running, row_claim

logger = logging.getLogger("customers.sync")

# A job finding another job syncing the same customer waits this long, then is retried.
SYNC_WAIT = 10.0


SyncCtx = ActionContext | ServiceContext
"""A job's context, or the backfill's (the engine's context of a run outside any job)."""


@dataclass(frozen=True)
class SyncResult:
    customer: str
    link_created: bool = False
    stripe_created: bool = False
    to_stripe: tuple[str, ...] = ()
    to_znode: tuple[str, ...] = ()
    conflicts: int = 0
    skipped: str = ""
    unconfirmed: bool = False
    """Linked by an email match no operator confirmed yet: nothing was synced."""

    @property
    def unchanged(self) -> bool:
        return not (self.link_created or self.to_stripe or self.to_znode or self.skipped)

    def as_output(self) -> dict[str, Any]:
        return {
            "customer": self.customer,
            "link_created": self.link_created,
            "stripe_created": self.stripe_created,
            "to_stripe": list(self.to_stripe),
            "to_znode": list(self.to_znode),
            "conflicts": self.conflicts,
            "skipped": self.skipped,
        }


def comparable(profile: CustomerProfile) -> CustomerProfile:
    """A profile in the form Stripe holds it (``profile_as_written``: the billing
    address has no name or phone of its own, a shipping address is named, states and
    postal codes normalized): both sides are compared in this form, or a difference
    Stripe cannot store ("Texas" against "TX") would be written again on every sync."""
    return stripe_facts.profile_as_written(profile)


def _problems_raise(user_id: int, profile: CustomerProfile) -> None:
    problems = stripe_facts.profile_problems(profile)
    if problems:
        raise exc.DataError(
            f"Znode user {user_id} cannot be written to Stripe: {'; '.join(problems)}. "
            "Correct it in Znode, then retry."
        )


def znode_customer_read(
    ctx: SyncCtx, *, user_id: int, portal_id: int | None
) -> znode_facts.ZnodeCustomer:
    # The client fills the user's addresses from their own list (§12).
    return znode_facts.customer_from_wire(
        ctx.client("znode").get_customer(user_id=user_id, portal_id=portal_id)
    )


def _znode_changed_at(ctx: SyncCtx, customer: znode_facts.ZnodeCustomer) -> datetime | None:
    tz = ctx.client("znode").timezone
    moments = [znode_facts.store_time(customer.modified, tz)]
    for address in (customer.billing_address, customer.shipping_address):
        if address is not None:
            moments.append(znode_facts.store_time(address.modified, tz))
    known = [m for m in moments if m]
    return max(known) if known else None


def _stripe_customer_locate(
    ctx: SyncCtx, *, user_id: int, email: str, link: CustomerLink | None
) -> tuple[stripe_facts.StripeCustomer, str]:
    """(the user's Stripe customer, how it was found): the link's, else one found by
    our metadata, then by email, else a new one (``created``)."""
    gateway = ctx.client("stripe")
    if link is not None:
        customer = stripe_facts.customer_from_wire(
            gateway.customer_retrieve(link.stripe_customer_id)
        )
        if customer.integration and customer.integration != ctx.integration.name:
            raise exc.DataError(
                f"Stripe customer {link.stripe_customer_id} linked to Znode user {user_id} "
                f"is integration {customer.integration}'s (two stores share the Stripe "
                "account); unlink it in the admin (Customer links → Unlink) and retry: the "
                "sync then finds or makes this store's own"
            )
        if customer.deleted:
            raise exc.DataError(
                f"Stripe customer {link.stripe_customer_id} linked to Znode user {user_id} "
                "was deleted in Stripe; unlink it in the admin (Customer links → Unlink) and "
                "retry: the sync then finds or makes another"
            )
        return customer, link.matched_by
    found, how = stripe_customer_find(ctx, znode_user_id=user_id, email=email)
    if found:
        return stripe_facts.customer_from_wire(gateway.customer_retrieve(found)), how
    # The same request, under the same key, as an order's first payment makes: the two
    # can race and still make one customer (customers.services.stripe_customer_ensure).
    return stripe_customer_create(ctx, znode_user_id=user_id, email=email), MatchedBy.CREATED


def _conflicts_record(ctx: SyncCtx, link: CustomerLink, merge: Merge) -> None:
    job = getattr(ctx, "job", None)
    for conflict in merge.conflicts:
        values = {
            "base_value": conflict.base,
            "znode_value": conflict.znode,
            "stripe_value": conflict.stripe,
            "winner": conflict.winner,
            "rule": conflict.rule,
        }
        if job is None:  # the backfill: a resumed run meets the same conflict again
            CustomerConflict.objects.get_or_create(
                link=link, field=conflict.field, job=None, **values
            )
        else:  # a retry of the job meets the same conflict again
            CustomerConflict.objects.get_or_create(
                link=link, field=conflict.field, job=job, defaults=values
            )
        logger.info(
            "customers.sync.conflict link=%s field=%s winner=%s rule=%s",
            link.pk,
            conflict.field,
            conflict.winner,
            conflict.rule,
        )


def _stripe_changed_at(
    ctx: SyncCtx, link: CustomerLink, customer_id: str, owners: dict[str, str]
) -> datetime | None:
    """When Stripe's newest change of the customer happened, for the "newest" rule:
    the later of what the link has seen and the newest ``customer.updated`` the inbox
    routed (a run started from Znode may come before that event's own job)."""
    seen = link.stripe_changed_at
    if NEWEST not in owners.values():
        return seen
    routed = change_last_routed_at(
        connection=ctx.connection("stripe"),
        object_key=stripe_facts.customer_change_key(customer_id),
    )
    return max(t for t in (seen, routed) if t) if (seen or routed) else None


def _run_key(ctx: SyncCtx) -> object:
    """What makes a write's idempotency key this run's: the job (its retries send the
    same key), or the backfill run. A key made of the target state alone would, within
    Stripe's 24 h, replay an earlier answer instead of writing a value changed back."""
    job = getattr(ctx, "job", None)
    return f"job-{job.pk}" if job is not None else ctx.run_key


def _stripe_write(
    ctx: SyncCtx,
    *,
    customer: stripe_facts.StripeCustomer,
    profile: CustomerProfile,
    user_id: int,
    fields: tuple[str, ...],
) -> None:
    # Only a trusted link gets here (a customer matched by email alone is synced only
    # once confirmed), so our metadata may name the Znode user. Only the fields that
    # differ are sent: one changed in the Dashboard since our read is not written over
    # (its own event then syncs it).
    params = stripe_facts.customer_profile_params(
        profile, znode_user_id=user_id, integration=ctx.integration.name, fields=fields
    )
    change_expect(
        connection=ctx.connection("stripe"),
        object_key=stripe_facts.customer_change_key(customer.id),
        fingerprint=stripe_facts.expected_customer_fingerprint(
            profile, default_payment_method=customer.default_payment_method
        ),
    )
    ctx.client("stripe").customer_update(
        customer.id,
        params=params,
        idempotency_key=ctx.idempotency_key(
            "customer-profile", customer.id, _run_key(ctx), params_digest(params)
        ),
    )


def _znode_address_write(
    ctx: SyncCtx,
    *,
    customer: znode_facts.ZnodeCustomer,
    current: znode_facts.ZnodeAddress | None,
    address: PostalAddress,
    billing: bool,
    shipping: bool,
    written: dict[int, dict[str, Any]],
) -> None:
    """Write one address of the customer. ``written``: what this run already wrote
    over each row as read (address id → fields), kept up to date here, so each
    announced state is the row as it will be after all of this run's writes."""
    client = ctx.client("znode")
    if not shipping:
        # Stripe's billing address has no name or phone of its own: the row keeps its
        # own (a new row takes the customer's name).
        keep = current.address if current else PostalAddress(name=customer.name)
        address = replace(address, name=keep.name, phone=keep.phone)
    if current is None:
        # Znode clears the flag the new row takes on the rows that held it: those
        # changes come back as events too, and are ours.
        for row in customer.addresses:
            if (billing and row.default_billing) or (shipping and row.default_shipping):
                cleared = znode_facts.default_flags_cleared(
                    billing=billing and row.default_billing,
                    shipping=shipping and row.default_shipping,
                )
                after = {**written.get(row.address_id, {}), **cleared}
                written[row.address_id] = after
                change_expect(
                    connection=ctx.connection("znode"),
                    object_key=znode_facts.address_change_key(row.address_id),
                    fingerprint=znode_facts.address_fingerprint_after(row, after),
                )
        created = client.create_address(
            user_id=customer.user_id,
            values=znode_facts.new_address_values(address, billing=billing, shipping=shipping),
        )
        row = znode_facts.address_row_from_wire(created)
        change_expect(  # after the call: the new row's id is known only now
            connection=ctx.connection("znode"),
            object_key=znode_facts.address_change_key(row.address_id),
            fingerprint=znode_facts.address_fingerprint(created),
        )
        return
    changes = znode_facts.address_changes(address)
    after = {**written.get(current.address_id, {}), **changes}
    written[current.address_id] = after
    change_expect(
        connection=ctx.connection("znode"),
        object_key=znode_facts.address_change_key(current.address_id),
        fingerprint=znode_facts.address_fingerprint_after(current, after),
    )
    client.update_address(user_id=customer.user_id, address_id=current.address_id, changes=changes)


def _same_place(billing: PostalAddress, shipping: PostalAddress) -> bool:
    """The two addresses are one place: Stripe's billing address carries no name or
    phone of its own (a shipping address does), so those are not compared."""
    return replace(billing, name="", phone="") == replace(shipping, name="", phone="")


def _znode_write(ctx: SyncCtx, *, customer: znode_facts.ZnodeCustomer, merge: Merge) -> None:
    profile = profile_from_values(merge.values)
    client = ctx.client("znode")
    fields = [f for f in znode_facts.USER_PROFILE_FIELDS if f in merge.to_znode]
    if fields:
        changes = znode_facts.user_changes(profile, fields)
        change_expect(
            connection=ctx.connection("znode"),
            object_key=znode_facts.user_change_key(customer.user_id),
            fingerprint=znode_facts.user_fingerprint_after(customer, changes),
        )
        client.update_customer(
            user_id=customer.user_id, portal_id=customer.portal_id, changes=changes
        )
    billing, shipping = customer.billing_address, customer.shipping_address
    new_billing = "billing_address" in merge.to_znode
    new_shipping = "shipping_address" in merge.to_znode
    shared = (
        billing is not None and shipping is not None and billing.address_id == shipping.address_id
    )
    written: dict[int, dict[str, Any]] = {}
    if shared and new_billing and new_shipping and _same_place(profile.billing, profile.shipping):
        # One row is the default for both, and both moved the same way: written once.
        _znode_address_write(
            ctx,
            customer=customer,
            current=billing,
            address=profile.shipping,
            billing=True,
            shipping=True,
            written=written,
        )
        return
    # Where the row is shared and only one side of it moved, the moved one becomes a
    # row of its own, the new default of its kind (Znode clears the old row's flag),
    # and the other keeps the shared row as it is.
    if new_billing:
        _znode_address_write(
            ctx,
            customer=customer,
            current=None if shared and not new_shipping else billing,
            address=profile.billing,
            billing=True,
            shipping=False,
            written=written,
        )
    if new_shipping:
        _znode_address_write(
            ctx,
            customer=customer,
            current=None if shared else shipping,
            address=profile.shipping,
            billing=False,
            shipping=True,
            written=written,
        )


def customer_sync(
    ctx: SyncCtx,
    *,
    user_id: int,
    portal_id: int | None = None,
    znode: znode_facts.ZnodeCustomer | None = None,
    stripe_changed_at: datetime | None = None,
) -> SyncResult:
    """Bring Znode user ``user_id`` and its Stripe customer in step (find before
    create: link, metadata, email). ``znode``: the user as just read (the backfill
    reads pages of users); otherwise it is re-read. ``stripe_changed_at``: when the
    Stripe change that triggered this run happened. One job at a time syncs a linked
    customer (a Znode save raises a user and an address event at once)."""
    job = getattr(ctx, "job", None)
    lock, _ = CustomerSyncLock.objects.get_or_create(
        integration=ctx.integration, znode_user_id=user_id
    )
    if job is not None:
        claim = row_claim(
            job_id=job.pk, row=lock, field="job", doing="being synced", wait_seconds=SYNC_WAIT
        )
    elif job_running(lock.job, timezone.now()):  # the backfill leaves the user to the job
        raise exc.ConflictRetry(f"Znode user {user_id} is being synced by job {lock.job}")
    else:
        claim = nullcontext()
    with claim:
        # Read after the claim: as the job that held it left it.
        link = CustomerLink.objects.filter(
            integration=ctx.integration, znode_user_id=user_id
        ).first()
        return _customer_sync(
            ctx,
            link=link,
            user_id=user_id,
            portal_id=portal_id,
            znode=znode,
            stripe_changed_at=stripe_changed_at,
        )


def _customer_sync(
    ctx: SyncCtx,
    *,
    link: CustomerLink | None,
    user_id: int,
    portal_id: int | None,
    znode: znode_facts.ZnodeCustomer | None,
    stripe_changed_at: datetime | None,
) -> SyncResult:
    integration = ctx.integration
    if znode is None:
        portal = portal_id or (link.znode_portal_id if link else None)
        try:
            znode = znode_customer_read(ctx, user_id=user_id, portal_id=portal)
        except exc.NotFound:
            return SyncResult(customer="", skipped=f"Znode user {user_id} does not exist")
    if link is None:
        _problems_raise(user_id, comparable(znode.profile))
    stripe, how = _stripe_customer_locate(
        ctx, user_id=user_id, email=znode.profile.email, link=link
    )
    link_created = link is None
    if link is None:
        link = customer_link_create(
            integration=integration,
            znode_user_id=user_id,
            stripe_customer_id=stripe.id,
            email=znode.profile.email,
            matched_by=how,
        )
    if not link.trusted:
        # Found by email only: anyone can type an email into a store. Nothing crosses
        # either way (the other person's phone, address or cards, or our name over
        # theirs) until an operator confirms the match, which files a sync job.
        return SyncResult(
            customer=stripe.id,
            link_created=link_created,
            unconfirmed=True,
            skipped=f"Stripe customer {stripe.id} was found by email only; it is synced "
            "once an operator confirms the match (Customer links → Confirm the email match)",
        )
    if stripe_changed_at and (
        not link.stripe_changed_at or stripe_changed_at > link.stripe_changed_at
    ):
        CustomerLink.objects.filter(pk=link.pk).update(stripe_changed_at=stripe_changed_at)
        link.stripe_changed_at = stripe_changed_at
    owners = field_owners()
    merge = profile_merge(
        base=link.synced_profile or None,
        znode=profile_values(comparable(znode.profile)),
        stripe=profile_values(comparable(stripe.profile)),
        owners=owners,
        znode_changed_at=_znode_changed_at(ctx, znode),
        stripe_changed_at=_stripe_changed_at(ctx, link, stripe.id, owners),
    )
    merged = profile_from_values(merge.values)
    _conflicts_record(ctx, link, merge)
    to_stripe = merge.to_stripe
    if to_stripe or not _names_us(stripe, user_id=user_id, integration=integration):
        if to_stripe:  # a write of our metadata alone sends no field to check
            _problems_raise(user_id, merged)
        _stripe_write(
            ctx,
            customer=stripe,
            profile=merged,
            user_id=user_id,
            fields=to_stripe,
        )
    if merge.to_znode:
        _znode_write(ctx, customer=znode, merge=merge)
    mark = profile_fingerprint(merged)
    now = timezone.now()
    changed = link_created or to_stripe or merge.to_znode or link.synced_profile != merge.values
    with transaction.atomic():
        link.synced_profile = merge.values
        link.znode_fingerprint = link.stripe_fingerprint = mark
        link.znode_portal_id = znode.portal_id or link.znode_portal_id
        link.email = merged.email[:512]
        link.znode_synced_at = link.stripe_synced_at = now
        if not CustomerLink.objects.select_for_update().filter(pk=link.pk).exists():
            raise exc.ConflictRetry(f"the link of Znode user {user_id} was removed meanwhile")
        if changed:  # a history row for each change of what both sides agree on
            link._change_reason = "synced"
            link.save(
                update_fields=[
                    "synced_profile",
                    "znode_fingerprint",
                    "stripe_fingerprint",
                    "znode_portal_id",
                    "email",
                    "znode_synced_at",
                    "stripe_synced_at",
                    "updated_at",
                ]
            )
        else:
            CustomerLink.objects.filter(pk=link.pk).update(
                znode_synced_at=now, stripe_synced_at=now
            )
        _default_card_mark(link, stripe.default_payment_method)
    if link.cards_synced_at is None:
        # Cards saved before the link (a customer found, or confirmed): read once;
        # payment_method events keep them from then on. A customer made now has none.
        if how == MatchedBy.CREATED and link_created:
            CustomerLink.objects.filter(pk=link.pk).update(cards_synced_at=now)
        else:
            _cards_store(ctx, link, stripe.default_payment_method)
    return SyncResult(
        customer=stripe.id,
        link_created=link_created,
        stripe_created=how == MatchedBy.CREATED and link_created,
        to_stripe=to_stripe,
        to_znode=merge.to_znode,
        conflicts=len(merge.conflicts),
    )


def _names_us(
    customer: stripe_facts.StripeCustomer, *, user_id: int, integration: Integration
) -> bool:
    """The customer's metadata names the user and the integration (store)."""
    return customer.znode_user_id == str(user_id) and customer.integration == integration.name


def customer_standing(*, integration: Integration, znode: znode_facts.ZnodeCustomer) -> str:
    """What the backfill can say of a user with no call: ``unchanged`` (linked and as
    both sides last agreed), ``unconfirmed`` (linked by an email match an operator has
    not confirmed: nothing is synced), or "" (to be synced)."""
    link = CustomerLink.objects.filter(integration=integration, znode_user_id=znode.user_id).first()
    if link is None:
        return ""
    if not link.trusted:
        return "unconfirmed"
    same = link.znode_fingerprint == profile_fingerprint(comparable(znode.profile))
    # A link whose cards were never read is synced once more, which reads them.
    return "unchanged" if same and link.cards_synced_at is not None else ""


def stripe_customer_sync(
    ctx: SyncCtx,
    *,
    stripe_customer_id: str,
    znode_user_id: str = "",
    integration: str = "",
    changed_at: datetime | None = None,
) -> SyncResult:
    """A Stripe customer changed: sync the Znode user it is linked to (or names in our
    metadata, ``integration`` being the integration it names). A customer of no Znode
    user, or of another store sharing the Stripe account, is left alone."""
    link = CustomerLink.objects.filter(
        integration=ctx.integration, stripe_customer_id=stripe_customer_id
    ).first()
    if link is None and integration and integration != ctx.integration.name:
        return SyncResult(
            customer=stripe_customer_id,
            skipped=f"Stripe customer {stripe_customer_id} is integration {integration}'s",
        )
    user_id = link.znode_user_id if link else int(znode_user_id) if znode_user_id.isdigit() else 0
    if not user_id:
        return SyncResult(
            customer=stripe_customer_id,
            skipped=f"Stripe customer {stripe_customer_id} belongs to no Znode user",
        )
    return customer_sync(ctx, user_id=user_id, stripe_changed_at=changed_at)


# --- saved cards -----------------------------------------------------------------------------
def _default_card_mark(link: CustomerLink, default_payment_method: str) -> None:
    SavedCard.objects.filter(link=link).exclude(
        stripe_payment_method_id=default_payment_method
    ).filter(is_default=True).update(is_default=False)
    if default_payment_method:
        SavedCard.objects.filter(
            link=link, stripe_payment_method_id=default_payment_method, is_default=False
        ).update(is_default=True)


def _cards_store(ctx: SyncCtx, link: CustomerLink, default_payment_method: str) -> int:
    """The link's saved cards as Stripe lists them now; a card detached is removed."""
    cards = [
        stripe_facts.card_from_wire(raw)
        for raw in ctx.client("stripe").customer_payment_methods(link.stripe_customer_id)
    ]
    with transaction.atomic():
        CustomerLink.objects.select_for_update().filter(pk=link.pk).first()
        SavedCard.objects.filter(link=link).exclude(
            stripe_payment_method_id__in=[c.id for c in cards]
        ).delete()
        for card in cards:
            SavedCard.objects.update_or_create(
                link=link,
                stripe_payment_method_id=card.id,
                defaults={
                    "brand": card.brand[:40],
                    "last4": card.last4[:4],
                    "exp_month": card.exp_month or None,
                    "exp_year": card.exp_year or None,
                    "is_default": card.id == default_payment_method,
                },
            )
        CustomerLink.objects.filter(pk=link.pk).update(cards_synced_at=timezone.now())
    return len(cards)


def customer_cards_sync(ctx: SyncCtx, *, stripe_customer_id: str) -> dict[str, Any]:
    """The linked customer's saved cards as Stripe lists them now (brand, last 4,
    expiry, default); a card detached in Stripe is removed."""
    link = CustomerLink.objects.filter(
        integration=ctx.integration, stripe_customer_id=stripe_customer_id
    ).first()
    if link is None:
        return {"cards": 0, "skipped": f"Stripe customer {stripe_customer_id} is not linked"}
    if not link.trusted:
        return {
            "cards": 0,
            "skipped": f"Stripe customer {stripe_customer_id} was found by email only; its "
            "cards are shown once an operator confirms the match",
        }
    customer = stripe_facts.customer_from_wire(
        ctx.client("stripe").customer_retrieve(stripe_customer_id)
    )
    count = _cards_store(ctx, link, customer.default_payment_method)
    return {"cards": count, "default": customer.default_payment_method}
