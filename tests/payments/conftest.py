"""Fixtures of the payments tests: an integration wired to the sandbox's Znode, Stripe
and ERP (saved cards are collected)."""

from __future__ import annotations

import pytest

from integrations.models import Integration
from tests.support.payments import SETTINGS
from tests.support.shop import Shop, store_connection


@pytest.fixture
def wired(sandbox):
    from integrations.connectors.znode.client import forget_cached
    from integrations.services.connections import connection_create
    from integrations.services.flows import lookups_install_defaults

    forget_cached()
    lookups_install_defaults()
    stripe_conn = connection_create(
        name="stripe-booking",
        kind="stripe",
        base_url=sandbox.system_url("stripe"),
        credentials={"api_key": "sk_test_booking"},
        rate_limit_per_second=500,
    )
    erp = connection_create(
        name="erp-booking",
        kind="erp",
        base_url=sandbox.system_url("erp"),
        credentials={"token": "sandbox-erp-token"},
        rate_limit_per_second=500,
    )
    integration = Integration.objects.create(
        name="booking",
        znode=store_connection(sandbox),
        stripe=stripe_conn,
        erp=erp,
        settings=SETTINGS,
    )
    integration.shop = Shop(sandbox.system_url("znode"))
    integration.sandbox = sandbox
    yield integration
    forget_cached()
