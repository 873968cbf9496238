"""One integration wired to the sandbox's systems over real HTTP, for the suites that
run actions against them (payments, customers, reconciliation)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from integrations.models import Integration
from tests.conftest import STRIPE_SECRET, ZNODE_TOKEN
from tests.support.shop import Shop, store_connection


@contextmanager
def wired_integration(
    sandbox,
    *,
    name: str,
    stripe_key: str,
    erp: bool = True,
    webhooks: bool = False,
    flows: bool = False,
    settings: dict | None = None,
    rate: int = 500,
) -> Iterator[Integration]:
    """An integration ``name`` of the sandbox store, a Stripe connection with
    ``stripe_key`` and (``erp``) the sandbox ERP; ``webhooks``: with the test webhook
    secrets, so signed events can be posted; ``flows``: the shipped flows installed.
    ``integration.shop`` plays the store's shoppers, ``integration.sandbox`` is the
    sandbox."""
    from integrations.connectors.znode.client import forget_cached
    from integrations.services.connections import connection_create
    from integrations.services.flows import flows_install_defaults, lookups_install_defaults

    forget_cached()
    lookups_install_defaults()
    if flows:
        flows_install_defaults()
    stripe_conn = connection_create(
        name=f"stripe-{name}",
        kind="stripe",
        base_url=sandbox.system_url("stripe"),
        credentials={"api_key": stripe_key},
        webhook_secrets=[STRIPE_SECRET] if webhooks else [],
        rate_limit_per_second=rate,
    )
    erp_conn = None
    if erp:
        erp_conn = connection_create(
            name=f"erp-{name}",
            kind="erp",
            base_url=sandbox.system_url("erp"),
            credentials={"token": "sandbox-erp-token"},
            rate_limit_per_second=rate,
        )
    znode = store_connection(sandbox, webhook_secrets=[ZNODE_TOKEN] if webhooks else [])
    integration = Integration.objects.create(
        name=name, znode=znode, stripe=stripe_conn, erp=erp_conn, settings=settings or {}
    )
    integration.shop = Shop(sandbox.system_url("znode"))
    integration.sandbox = sandbox
    try:
        yield integration
    finally:
        forget_cached()
