"""Customer links (issue 11, Deliver 1): one per Znode user and per Stripe customer in
an integration, history-tracked, with the field-ownership table."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from customers.models import CustomerLink
from customers.ownership import DEFAULT_OWNERS, OWNERS_TABLE, field_owners
from integrations.kernel import exceptions as exc
from integrations.models import LookupTable
from integrations.services.flows import lookups_install_defaults

pytestmark = pytest.mark.django_db


def test_a_link_is_unique_per_user_and_per_customer_and_keeps_its_history(integration):
    link = CustomerLink.objects.create(
        integration=integration, znode_user_id=11, stripe_customer_id="cus_1", email="a@x.io"
    )
    for duplicate in (
        {"znode_user_id": 11, "stripe_customer_id": "cus_2"},
        {"znode_user_id": 12, "stripe_customer_id": "cus_1"},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            CustomerLink.objects.create(integration=integration, **duplicate)
    link.email = "b@x.io"
    link.znode_fingerprint = "f" * 64
    link.save()
    assert [h.email for h in link.history.order_by("history_id")] == ["a@x.io", "b@x.io"]


def test_the_field_owners_default_is_installed_and_an_operators_edit_wins():
    lookups_install_defaults()
    assert LookupTable.objects.get(key=OWNERS_TABLE).entries == DEFAULT_OWNERS
    assert field_owners()["email"] == "znode" and field_owners()["payment_methods"] == "stripe"

    LookupTable.objects.filter(key=OWNERS_TABLE).update(entries={"phone": "Stripe"})

    owners = field_owners()
    assert owners["phone"] == "stripe" and owners["name"] == "znode"  # the rest default


def test_an_owner_that_is_neither_side_is_a_clear_error():
    LookupTable.objects.create(key=OWNERS_TABLE, entries={"email": "erp"})
    with pytest.raises(
        exc.DataError, match="'email' is owned by 'erp'; use znode, stripe or newest"
    ):
        field_owners()


def test_a_profile_fingerprint_ignores_case_and_spacing_not_values():
    from integrations.kernel.facts import CustomerProfile, PostalAddress, profile_fingerprint

    profile = CustomerProfile(
        email="Ana@Example.com",
        name="Ana  Lima",
        phone="+1 555 0100",
        billing=PostalAddress(line1="1 Main St", city="Austin", state="TX", country="us"),
    )
    same = CustomerProfile(
        email="ana@example.com ",
        name="Ana Lima",
        phone="+1 555 0100",
        billing=PostalAddress(line1="1  Main St", city="Austin", state="TX", country="US"),
    )
    assert profile_fingerprint(profile) == profile_fingerprint(same)
    assert len(profile_fingerprint(profile)) == 64
    moved = CustomerProfile(**{**profile.__dict__, "billing": PostalAddress(city="Dallas")})
    assert profile_fingerprint(moved) != profile_fingerprint(profile)
    renamed = CustomerProfile(**{**profile.__dict__, "name": "Ana Souza"})
    assert profile_fingerprint(renamed) != profile_fingerprint(profile)
