"""The two-way merge of a customer profile: pure, so every rule is a plain test.

Three versions of each field are compared: what Znode holds, what Stripe holds, and
what both last agreed on (the link's ``synced_profile``, the *base*):

- both sides hold the same value: nothing to do;
- one side changed the field since the base: its value wins, and reaches the other
  side, whoever owns the field;
- both changed it, to different values: a conflict. The field's owner
  (``customer-field-owners``) wins; an owner of ``newest`` lets the later change win
  (Znode's modified date against the time of Stripe's newest change);
- no base yet (the first sync of a link): a side that holds nothing takes the other
  side's value; two different values are a conflict like any other (recorded, the
  rule decides).

A field is a whole value: an address is never assembled from two sides' parts.
A blank never wins over Znode's email or addresses: Znode requires an email, and
the sync never deletes from Znode's address book (a Stripe-side removal goes back).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from customers.ownership import NEWEST, STRIPE, ZNODE

PROFILE_FIELDS = ("email", "name", "phone", "billing_address", "shipping_address")
KEPT_ON_ZNODE = ("email", "billing_address", "shipping_address")


@dataclass(frozen=True)
class FieldConflict:
    field: str
    base: Any
    znode: Any
    stripe: Any
    winner: str
    rule: str
    """``owner`` or ``newest``."""


@dataclass(frozen=True)
class Merge:
    values: dict[str, Any]
    """The merged profile, normalized (``profile_values``)."""
    to_stripe: tuple[str, ...]
    """Fields Stripe must be given (it holds another value)."""
    to_znode: tuple[str, ...]
    conflicts: tuple[FieldConflict, ...]


def _blank(value: Any) -> bool:
    if isinstance(value, dict):
        return not any(value.values())
    return not value


def _newer(znode_changed_at: datetime | None, stripe_changed_at: datetime | None) -> str:
    """The side whose change is the later one; Znode (the shop's record) on a tie or
    when a time is unknown."""
    if znode_changed_at and stripe_changed_at and stripe_changed_at > znode_changed_at:
        return STRIPE
    return ZNODE


def profile_merge(
    *,
    base: dict[str, Any] | None,
    znode: dict[str, Any],
    stripe: dict[str, Any],
    owners: dict[str, str],
    znode_changed_at: datetime | None = None,
    stripe_changed_at: datetime | None = None,
) -> Merge:
    """Merge two normalized profiles (``profile_values``) against their ``base``."""
    values: dict[str, Any] = {}
    conflicts: list[FieldConflict] = []
    for name in PROFILE_FIELDS:
        z, s = znode.get(name), stripe.get(name)
        owner = owners.get(name, ZNODE)
        if z == s:
            values[name] = z
            continue
        before = base.get(name) if base else None
        if not base and (_blank(s) or _blank(z)):
            values[name] = s if _blank(z) else z  # a first sync fills what one side lacks
        elif base and (z != before) != (s != before):
            values[name] = z if z != before else s  # changed on one side only
        else:
            # Both changed it, or two values met at the first sync: the rule decides.
            winner, rule = owner, "owner"
            if owner == NEWEST:
                winner, rule = _newer(znode_changed_at, stripe_changed_at), "newest"
            elif owner not in (ZNODE, STRIPE):
                winner = ZNODE
            values[name] = s if winner == STRIPE else z
            if not base or (z != before and s != before):
                conflicts.append(FieldConflict(name, before, z, s, winner, rule))
        if name in KEPT_ON_ZNODE and _blank(values[name]) and not _blank(z):
            values[name] = z
    return Merge(
        values=values,
        to_stripe=tuple(n for n in PROFILE_FIELDS if stripe.get(n) != values[n]),
        to_znode=tuple(n for n in PROFILE_FIELDS if znode.get(n) != values[n]),
        conflicts=tuple(conflicts),
    )
