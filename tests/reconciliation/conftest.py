"""Fixtures of the reconciliation tests: an integration wired to the sandbox's Znode,
Stripe and ERP (orders are paid with saved cards), with a webhook secret so payout
events can be posted, and the shipped flows installed."""

from __future__ import annotations

import pytest

from tests.support.payments import SETTINGS
from tests.support.wiring import wired_integration

STRIPE_KEY = "sk_test_recon"


@pytest.fixture
def recon(sandbox):
    # Payouts count every captured charge of the account: none of the reset's seeds.
    sandbox.control("POST", "reset/stripe")
    with wired_integration(
        sandbox,
        name="recon",
        stripe_key=STRIPE_KEY,
        webhooks=True,
        flows=True,
        settings=SETTINGS,
        rate=1000,
    ) as integration:
        yield integration
