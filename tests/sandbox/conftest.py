"""The `sandbox` and `sandbox_server` fixtures live in tests/support/sandbox.py and are
registered for the whole suite by tests/conftest.py."""

from __future__ import annotations

import pytest


@pytest.fixture
def empty_stripe(sandbox):
    """The sandbox after a reset, with its Stripe account emptied as well: a reset seeds
    real authorized charges for Znode's open card orders (sandbox/znode/seed.py), which
    tests of Stripe itself do not want to count."""
    sandbox.control("POST", "reset/stripe")
    return sandbox
