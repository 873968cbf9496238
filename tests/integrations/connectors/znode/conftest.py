"""Fixtures of the Znode connector tests: the sandbox store, a client of it, and no
token or vocabulary cached from another test."""

import pytest
import requests

from integrations.connectors.znode.client import ZnodeClient, forget_cached
from tests.support.shop import Shop, store_connection


@pytest.fixture(autouse=True)
def _fresh_caches():
    forget_cached()
    yield
    forget_cached()


@pytest.fixture
def shop(sandbox):
    return Shop(sandbox.system_url("znode"))


@pytest.fixture
def znode(sandbox):
    return ZnodeClient(store_connection(sandbox))


@pytest.fixture
def open_return(sandbox):
    """Open a return in the sandbox store as a shopper does: ``open_return(order_number,
    lines=[{"sku", "quantity"}])`` (no lines: the whole order) gives the return model."""

    def open_(order_number: str, **body) -> dict:
        response = requests.post(
            f"{sandbox.system_url('znode')}/_test/returns",
            json={"order_number": order_number, **body},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["Return"]

    return open_
