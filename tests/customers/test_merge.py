"""The two-way merge's rules (issue 11, Deliver 4): one-sided changes flow across,
both-sided changes resolve by field ownership, then by the newest change."""

from __future__ import annotations

from datetime import UTC, datetime

from customers.merge import profile_merge
from customers.ownership import DEFAULT_OWNERS
from integrations.kernel.facts import CustomerProfile, PostalAddress, profile_values

HOME = PostalAddress(name="Ana Lima", line1="1 Main St", city="Austin", state="TX", country="US")
WORK = PostalAddress(name="Ana Lima", line1="9 Oak Ave", city="Dallas", state="TX", country="US")


def _values(**changes) -> dict:
    profile = CustomerProfile(email="ana@example.com", name="Ana Lima", phone="+15550100")
    return profile_values(CustomerProfile(**{**profile.__dict__, "billing": HOME, **changes}))


BASE = _values()


def test_the_same_value_on_both_sides_writes_nothing():
    merge = profile_merge(base=BASE, znode=BASE, stripe=BASE, owners=DEFAULT_OWNERS)
    assert (merge.values, merge.to_stripe, merge.to_znode, merge.conflicts) == (BASE, (), (), ())


def test_a_change_on_one_side_reaches_the_other_whoever_owns_the_field():
    on_znode = _values(billing=WORK)
    merge = profile_merge(base=BASE, znode=on_znode, stripe=BASE, owners=DEFAULT_OWNERS)
    assert merge.values == on_znode and merge.to_stripe == ("billing_address",)
    assert merge.to_znode == () and merge.conflicts == ()

    # Znode owns the name, yet a name changed in Stripe only goes to Znode.
    on_stripe = _values(name="Ana Souza")
    merge = profile_merge(base=BASE, znode=BASE, stripe=on_stripe, owners=DEFAULT_OWNERS)
    assert merge.values["name"] == "Ana Souza" and merge.to_znode == ("name",)
    assert merge.to_stripe == () and merge.conflicts == ()


def test_both_sides_changed_the_owner_wins_and_the_conflict_is_recorded():
    znode, stripe = _values(phone="+15550111"), _values(phone="+15550222")
    merge = profile_merge(base=BASE, znode=znode, stripe=stripe, owners=DEFAULT_OWNERS)
    assert merge.values["phone"] == "+15550111"
    assert merge.to_stripe == ("phone",) and merge.to_znode == ()
    [conflict] = merge.conflicts
    assert (conflict.field, conflict.base, conflict.znode, conflict.stripe) == (
        "phone",
        "+15550100",
        "+15550111",
        "+15550222",
    )
    assert (conflict.winner, conflict.rule) == ("znode", "owner")

    merge = profile_merge(
        base=BASE, znode=znode, stripe=stripe, owners={**DEFAULT_OWNERS, "phone": "stripe"}
    )
    assert merge.values["phone"] == "+15550222" and merge.to_znode == ("phone",)
    assert merge.conflicts[0].winner == "stripe"


def test_an_owner_of_newest_lets_the_later_change_win():
    znode, stripe = _values(name="Ana Z"), _values(name="Ana S")
    owners = {**DEFAULT_OWNERS, "name": "newest"}
    early, late = datetime(2026, 12, 1, 9, tzinfo=UTC), datetime(2026, 12, 1, 10, tzinfo=UTC)

    merge = profile_merge(
        base=BASE,
        znode=znode,
        stripe=stripe,
        owners=owners,
        znode_changed_at=early,
        stripe_changed_at=late,
    )
    assert merge.values["name"] == "Ana S" and merge.to_znode == ("name",)
    assert (merge.conflicts[0].winner, merge.conflicts[0].rule) == ("stripe", "newest")

    merge = profile_merge(
        base=BASE,
        znode=znode,
        stripe=stripe,
        owners=owners,
        znode_changed_at=late,
        stripe_changed_at=early,
    )
    assert merge.values["name"] == "Ana Z" and merge.conflicts[0].winner == "znode"


def test_a_first_sync_takes_what_one_side_lacks_and_records_two_values_as_a_conflict():
    znode = _values()
    stripe = profile_values(CustomerProfile(email="ana@example.com", name="A. Lima"))
    merge = profile_merge(base=None, znode=znode, stripe=stripe, owners=DEFAULT_OWNERS)
    assert merge.values == znode  # Znode owns the name; Stripe had no phone or address
    assert merge.to_stripe == ("name", "phone", "billing_address")
    # Two names met: a conflict like any other, recorded for an operator.
    [conflict] = merge.conflicts
    assert (conflict.field, conflict.base, conflict.znode, conflict.stripe) == (
        "name",
        None,
        "Ana Lima",
        "A. Lima",
    )
    assert (conflict.winner, conflict.rule) == ("znode", "owner")

    znode_bare = profile_values(CustomerProfile(email="ana@example.com"))
    merge = profile_merge(base=None, znode=znode_bare, stripe=znode, owners=DEFAULT_OWNERS)
    assert merge.values == znode and merge.to_znode == ("name", "phone", "billing_address")


def test_a_blank_never_clears_znodes_email_or_address():
    cleared = _values(billing=PostalAddress(), email="")
    merge = profile_merge(base=BASE, znode=BASE, stripe=cleared, owners=DEFAULT_OWNERS)
    assert merge.values == BASE and merge.to_znode == ()
    assert set(merge.to_stripe) == {"email", "billing_address"}  # Stripe gets them back
