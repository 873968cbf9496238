"""Fixtures of the customer-sync tests: an integration wired to the sandbox's Znode
and Stripe, with webhook secrets so events can be posted, and the shipped flows."""

from __future__ import annotations

import pytest
import requests

from tests.support.wiring import wired_integration

STRIPE_KEY = "sk_test_customers"


class Customers:
    """The two systems as their own users change them: a shopper or Znode's admin, and
    support in the Stripe Dashboard."""

    def __init__(self, sandbox, integration) -> None:
        self.sandbox = sandbox
        self.integration = integration
        self.znode_test = sandbox.system_url("znode").rstrip("/") + "/_test"
        self.stripe_base = sandbox.system_url("stripe")

    def create_user(self, **fields) -> dict:
        body = {"first_name": "Ana", "last_name": "Lima", "phone": "+15550100", **fields}
        response = requests.post(self.znode_test + "/customers", json=body, timeout=10)
        response.raise_for_status()
        return response.json()["User"]

    def edit_user(self, user_id: int, **fields) -> dict:
        response = requests.post(
            f"{self.znode_test}/customers/{user_id}/update", json=fields, timeout=10
        )
        response.raise_for_status()
        return response.json()["User"]

    def znode(self):
        return self.integration.znode.client()

    def stripe(self, method: str, path: str, **params) -> dict:
        response = requests.request(
            method,
            self.stripe_base + path,
            data=params,
            headers={"Authorization": f"Bearer {STRIPE_KEY}"},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()

    def stripe_customers(self, email: str) -> list[dict]:
        return self.stripe("GET", "/v1/customers", email=email, limit=100)["data"]


@pytest.fixture
def synced(sandbox):
    with wired_integration(
        sandbox,
        name="customers",
        stripe_key=STRIPE_KEY,
        erp=False,
        webhooks=True,
        flows=True,
        rate=1000,
    ) as integration:
        yield Customers(sandbox, integration)
