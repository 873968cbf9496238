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
    currency: str = "",
) -> dict:
    """A saved-card order placed in the sandbox store (in ``currency``, USD when not
    given), fetched and its customer found (``before_fetch(placed)``: what happens to
    it in Znode before the platform reads it)."""
    saved_card_customer(wired.sandbox, user_id=user_id, email=f"u{user_id}@example.com", card=card)
    extra: dict = {"lines": lines} if lines else {}
    if currency:
        extra["currency"] = currency
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


def erp_documents(sandbox, kind: str, reference: str) -> list[dict]:
    """The sandbox ERP's documents of ``kind`` (journal-entries, credit-memos) under
    ``reference``."""
    return requests.get(
        f"{sandbox.system_url('erp')}/api/{kind}",
        params={"external_reference": reference},
        headers={"Authorization": "Bearer sandbox-erp-token"},
        timeout=10,
    ).json()["results"]


def erp_entries(wired, reference: str) -> list[dict]:
    return erp_documents(wired.sandbox, "journal-entries", reference)


def credit_memos(sandbox, reference: str) -> list[dict]:
    return erp_documents(sandbox, "credit-memos", reference)


# --- what the sandbox's Znode holds, read from its state -------------------------------
def znode_state(sandbox) -> dict:
    return requests.get(f"{sandbox.system_url('znode')}/_test/state", timeout=10).json()


def _order_of(state: dict, order_number: str) -> dict:
    return next(o for o in state["orders"].values() if o["OrderNumber"] == order_number)


def _return_of(state: dict, return_number: str) -> dict:
    return next(r for r in state["returns"].values() if r["ReturnNumber"] == return_number)


def znode_return(sandbox, return_number: str) -> dict:
    return _return_of(znode_state(sandbox), return_number)


def order_history(sandbox, order_number: str) -> list[dict]:
    """The order's history rows (orders/createorderhistory, reference §5.1)."""
    state = znode_state(sandbox)
    details = _order_of(state, order_number)["OmsOrderDetailsId"]
    return [h for h in state["order_history"] if h["OmsOrderDetailsId"] == details]


def return_history(sandbox, return_number: str) -> list[dict]:
    state = znode_state(sandbox)
    return_id = _return_of(state, return_number)["RmaReturnDetailsId"]
    return [h for h in state["return_history"] if h["RmaReturnDetailsId"] == return_id]


def notes_with(sandbox, order_number: str, text: str) -> list[str]:
    state = znode_state(sandbox)
    details = _order_of(state, order_number)["OmsOrderDetailsId"]
    return [
        n["Notes"]
        for n in state["notes"]
        if n["OmsOrderDetailsId"] == details and text in n["Notes"]
    ]
