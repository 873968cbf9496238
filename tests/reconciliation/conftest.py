"""Fixtures of the reconciliation tests: an integration wired to the sandbox's Znode,
Stripe and ERP (orders are paid with saved cards), with a webhook secret so payout
events can be posted, and the shipped flows installed."""

from __future__ import annotations

import pytest

from integrations.models import Integration
from tests.conftest import STRIPE_SECRET
from tests.support.payments import SETTINGS
from tests.support.shop import Shop, store_connection

STRIPE_KEY = "sk_test_recon"


@pytest.fixture
def recon(sandbox):
    from integrations.connectors.znode.client import forget_cached
    from integrations.services.connections import connection_create
    from integrations.services.flows import flows_install_defaults, lookups_install_defaults

    forget_cached()
    # Payouts count every captured charge of the account: none of the reset's seeds.
    sandbox.control("POST", "reset/stripe")
    lookups_install_defaults()
    flows_install_defaults()
    stripe_conn = connection_create(
        name="stripe-recon",
        kind="stripe",
        base_url=sandbox.system_url("stripe"),
        credentials={"api_key": STRIPE_KEY},
        webhook_secrets=[STRIPE_SECRET],
        rate_limit_per_second=1000,
    )
    erp = connection_create(
        name="erp-recon",
        kind="erp",
        base_url=sandbox.system_url("erp"),
        credentials={"token": "sandbox-erp-token"},
        rate_limit_per_second=1000,
    )
    integration = Integration.objects.create(
        name="recon",
        znode=store_connection(sandbox),
        stripe=stripe_conn,
        erp=erp,
        settings=SETTINGS,
    )
    integration.shop = Shop(sandbox.system_url("znode"))
    integration.sandbox = sandbox
    yield integration
    forget_cached()
