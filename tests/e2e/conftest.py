"""The whole platform wired to the sandbox over real HTTP: Znode and Stripe deliver
webhooks to the live server, the flows call the sandbox back."""

from __future__ import annotations

import time

import pytest

from integrations.connectors.znode.client import forget_cached
from integrations.models import Integration
from integrations.services.connections import connection_create
from integrations.services.flows import flows_install_defaults, lookups_install_defaults
from tests.support.shop import Shop, store_connection

WHSEC = "whsec_e2e_platform_secret"
STRIPE_KEY = "sk_test_e2e_platform_key"
# How the sandbox store's payment settings are collected (seed: 7 and 8 are the stock
# Stripe gateway of Znode's payment app, 10 a pay-by-link setting, 11 a saved card,
# 2 purchase orders).
E2E_SETTINGS = {
    "collection_modes": {"7": "adopt", "8": "adopt", "10": "customer", "11": "saved_method"},
    "checkout_success_url": "https://shop.example.com/checkout/thanks",
}
ZNODE_AUTH = "Bearer e2e-platform-znode-token"


def wait_for(predicate, timeout: float = 20.0, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {message}")


def _quiesce(sandbox_handle) -> None:
    """Stop the sandbox's webhooks and let in-flight work end before the test
    database is flushed (a delivery racing the flush deadlocks on PostgreSQL)."""
    from integrations.choices import JobStatus
    from integrations.models import Job

    for system in sandbox_handle.sandbox.systems.values():
        dispatcher = getattr(system, "webhooks", None)
        if dispatcher is not None:
            dispatcher.endpoints = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        busy = any(
            getattr(s, "webhooks", None) is not None and s.webhooks.pending()
            for s in sandbox_handle.sandbox.systems.values()
        )
        if not busy and not Job.objects.filter(status=JobStatus.RUNNING).exists():
            break
        time.sleep(0.1)
    time.sleep(0.5)  # a delivery already on the wire finishes its request


@pytest.fixture
def quiet_sandbox(sandbox):
    yield sandbox
    _quiesce(sandbox)


@pytest.fixture
def platform(live_server, sandbox, transactional_db):
    forget_cached()
    znode = store_connection(sandbox, webhook_secrets=[ZNODE_AUTH], timeout_seconds=5)
    stripe_conn = connection_create(
        name="stripe",
        kind="stripe",
        base_url=sandbox.system_url("stripe"),
        credentials={"api_key": STRIPE_KEY},
        webhook_secrets=[WHSEC],
        rate_limit_per_second=500,
    )
    erp = connection_create(
        name="erp",
        kind="erp",
        base_url=sandbox.system_url("erp"),
        credentials={"token": "sandbox-erp-token"},
        rate_limit_per_second=500,
    )
    integration = Integration.objects.create(
        name="demo",
        znode=znode,
        stripe=stripe_conn,
        erp=erp,
        settings=E2E_SETTINGS,
    )
    lookups_install_defaults()
    flows_install_defaults()
    sandbox.control(
        "POST",
        "webhooks/znode",
        {"url": live_server.url + znode.webhook_path, "secret": ZNODE_AUTH},
    )
    sandbox.control(
        "POST",
        "webhooks/stripe",
        {"url": live_server.url + stripe_conn.webhook_path, "secret": WHSEC},
    )
    integration.shop = Shop(sandbox.system_url("znode"))
    integration.url = live_server.url
    return integration


def stripe_client(sandbox):
    import stripe

    return stripe.StripeClient(STRIPE_KEY, base_addresses={"api": sandbox.system_url("stripe")})


def saved_card_customer(sandbox, *, user_id: int, email: str, card: str = "pm_card_visa") -> str:
    """A Stripe customer who saved a card before (linked to the Znode user by our
    metadata), as support or an earlier checkout would have left it."""
    customer = stripe_client(sandbox).v1.customers.create(
        params={
            "email": email,
            "metadata": {"znode_user_id": str(user_id)},
            "payment_method": card,
            "invoice_settings": {"default_payment_method": card},
        }
    )
    return customer.id


# --- the browser tests' fixtures (tests/support/browser.py) --------------------------------
@pytest.fixture
def browser(monkeypatch):
    """Debian's Chromium driven by Playwright. Its sync API runs an event loop in this
    thread; the test's own ORM calls stay synchronous and on this thread."""
    from playwright.sync_api import sync_playwright

    from tests.support.browser import CHROMIUM

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def shot(request):
    """``shot(page, name)``: a full-page screenshot kept under BROWSER_ARTIFACTS."""
    import shutil

    from tests.support.browser import ARTIFACTS

    folder = ARTIFACTS / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    taken = []

    def take(page, name: str) -> None:
        path = folder / f"{len(taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 0
        taken.append(path)

    return take
