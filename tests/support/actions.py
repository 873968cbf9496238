"""Actions registered only for the engine's tests.

``tests.call_upstream`` makes a real HTTP write (with an idempotency key) to the
Upstream test server through the recorded HTTP helper, like a connector would.
"""

from __future__ import annotations

from integrations.connectors.erp.connector import auth_headers
from integrations.http import http_request
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
    from integrations import exceptions

    raise {
        "transient": exceptions.ConnectorUnavailable("upstream down"),
        "bad_data": exceptions.DataError("order has no total"),
        "bug": KeyError("Total"),
    }[error]
