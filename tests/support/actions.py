"""Actions registered only for the engine's tests.

``tests.call_upstream`` makes a real HTTP write (with an idempotency key) to the
Upstream test server through the recorded HTTP helper, like a connector would.
"""

from __future__ import annotations

from integrations.connectors.erp.client import auth_headers
from integrations.kernel.http import http_request
from integrations.registry import action
from integrations.runtime import ActionContext

CALLS: list[dict] = []


@action("tests.echo", description="Returns its input; records the call.")
def echo(*, ctx: ActionContext, value: str = "", amount: str | None = None) -> dict:
    CALLS.append({"step": ctx.step.name, "value": value, "amount": amount})
    return {"value": value, "amount": amount}


@action("tests.call_upstream", description="POSTs to the ERP connection's base URL.")
def call_upstream(*, ctx: ActionContext, reference: str, path: str = "/write") -> dict:
    connection = ctx.connection("erp")
    response = http_request(
        connection,
        "POST",
        connection.base_url + path,
        operation="tests.write",
        headers=auth_headers(connection),
        json={"reference": reference},
        idempotency_key=ctx.idempotency_key("tests", reference, ctx.step.name),
    )
    return {"status": response.status_code, "body": response.json()}


@action("tests.fail", description="Always raises the named error.")
def fail(*, ctx: ActionContext, error: str = "transient") -> dict:
    from integrations.kernel import exceptions

    raise {
        "transient": exceptions.ConnectorUnavailable("upstream down"),
        "bad_data": exceptions.DataError("order has no total"),
        "bug": KeyError("Total"),
        "nul": exceptions.DataError("customer name Ann\u0000 Lee is refused"),
    }[error]


@action("tests.znode_write", description="One Znode write through the real client.")
def znode_write(*, ctx: ActionContext, op: str, order_id: int, order_number: str) -> dict:
    from decimal import Decimal

    from django.utils import timezone

    from integrations.connectors.znode.client import ZnodeClient

    client = ZnodeClient(ctx.connection("znode"))
    if op == "record_payment":
        written = client.record_payment(
            order_id=order_id,
            transaction_reference=f"ch_{order_number}",
            amount=Decimal("19.99"),
            status="Captured",
            payment_setting_id=7,
            transaction_date=timezone.now(),
        )
    elif op == "payment_status":
        client.update_payment_status(order_id=order_id, status_name="Captured")
        written = True
    elif op == "state":
        client.update_order_state(order_number=order_number, state_name="IN REVIEW")
        written = True
    else:
        written = client.add_order_note(
            order_id=order_id, note="Paid by Stripe", dedupe_key=f"paid:{order_number}"
        )
    return {"written": written}
