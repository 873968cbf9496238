"""Order-to-cash actions run one by one against the sandbox, as separate jobs would run
them (tests/payments): a saved-card order placed, fetched and collected, and its
booking steps."""

from __future__ import annotations

import requests

from integrations.models import ApiCall, Job
from integrations.registry import get_action
from integrations.runtime import ActionContext
from tests.conftest import make_flow
from tests.e2e.conftest import saved_card_customer
from tests.support.shop import SAVED_PAYMENT_SETTING_ID

SETTINGS = {"collection_modes": {str(SAVED_PAYMENT_SETTING_ID): "saved_method"}}


def new_ctx(integration) -> ActionContext:
    """A context of a job of its own (each call stands for a separate job)."""
    flow = make_flow(f"booking-{Job.objects.count()}", steps=[("a", "tests.echo", {})])
    job = Job.objects.create(flow=flow, integration=integration, max_attempts=1)
    return ActionContext(job=job, step=flow.steps.get(), attempt=None, document={})


def run(integration, key: str, **inputs) -> dict:
    return get_action(key).call(new_ctx(integration), inputs)


def calls(operation: str = "") -> int:
    rows = ApiCall.objects.all()
    return (rows.filter(operation=operation) if operation else rows).count()


def place(
    wired,
    *,
    user_id: int,
    total: str = "30.00",
    before_fetch=None,
    card: str = "pm_card_visa",
    lines: list[dict] | None = None,
) -> dict:
    """A saved-card order placed in the sandbox store, fetched and its customer found
    (``before_fetch(placed)``: what happens to it in Znode before the platform reads
    it)."""
    saved_card_customer(wired.sandbox, user_id=user_id, email=f"u{user_id}@example.com", card=card)
    extra = {"lines": lines} if lines else {}
    placed = wired.shop.place_order(
        user_id=user_id, total=total, payment_setting_id=SAVED_PAYMENT_SETTING_ID, **extra
    )
    if before_fetch is not None:
        before_fetch(placed)
    fetched = run(wired, "payments.fetch_order", order_id=placed["OmsOrderId"])
    customer = run(
        wired,
        "payments.ensure_customer",
        user_id=user_id,
        email=fetched["email"],
        collection_mode=fetched["collection_mode"],
    )
    return {**fetched, "customer": customer["customer"]}


def mark_paid(wired, fetched: dict, paid: dict) -> dict:
    return run(
        wired,
        "payments.znode_mark_paid",
        order_number=fetched["order_number"],
        charge=paid["charge"],
        amount_received=paid["amount_received"],
        outcome=paid["outcome"],
        znode_payment_status=fetched["payment_status"],
        znode_transaction_id=fetched["transaction_id"],
        znode_payments=fetched["payments"],
    )


def post_sale(wired, fetched: dict, paid: dict) -> dict:
    return run(
        wired,
        "payments.erp_post_sale",
        order_number=fetched["order_number"],
        charge=paid["charge"],
        amount_received=paid["amount_received"],
        outcome=paid["outcome"],
    )


def collect(wired, fetched: dict) -> dict:
    return run(
        wired,
        "payments.collect_payment",
        order_number=fetched["order_number"],
        customer=fetched["customer"],
    )


def erp_entries(wired, reference: str) -> list[dict]:
    return requests.get(
        wired.sandbox.system_url("erp") + "/api/journal-entries",
        params={"external_reference": reference},
        headers={"Authorization": "Bearer sandbox-erp-token"},
        timeout=10,
    ).json()["results"]
