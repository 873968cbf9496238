"""Fixtures of the payments tests: an integration wired to the sandbox's Znode, Stripe
and ERP (saved cards are collected)."""

from __future__ import annotations

import pytest

from tests.support.payments import SETTINGS
from tests.support.wiring import wired_integration


@pytest.fixture
def wired(sandbox):
    with wired_integration(
        sandbox, name="booking", stripe_key="sk_test_booking", settings=SETTINGS
    ) as integration:
        yield integration
