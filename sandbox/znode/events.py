"""Znode 10-style webhook consumer events.

Each event is POSTed as::

    {"EventDataCode", "EventDataId", "EventId", "EventModule", "EventName",
     "EventPayload": "<the domain object, JSON-encoded as a string>",
     "EventTimeStamp", "TraceId", "UserId", "EventVersion"}

with the Authorization value configured for the endpoint (the registered ``secret``)
sent as-is in the ``Authorization`` header: no signature, no retries.
"""

from __future__ import annotations

import uuid
from typing import Any

from sandbox.webhooks import Endpoint
from sandbox.znode.wire import dumps, now_text

EVENT_VERSION = "1.0"


def sign(body: bytes, endpoint: Endpoint) -> dict[str, str]:
    return {"Authorization": endpoint.secret} if endpoint.secret else {}


class EventsMixin:
    state: dict[str, Any]

    def emit_event(
        self,
        module: str,
        name: str,
        data_id: int,
        data_code: str | None,
        payload: dict,
        user_id: int = 0,
    ) -> None:
        dispatcher = getattr(self, "webhooks", None)
        if dispatcher is None:
            return
        event = {
            "EventDataCode": data_code,
            "EventDataId": data_id,
            "EventId": str(uuid.uuid4()),
            "EventModule": module,
            "EventName": name,
            "EventPayload": dumps(payload),
            "EventTimeStamp": now_text(),
            "TraceId": uuid.uuid4().hex,
            "UserId": user_id or 0,
            "EventVersion": EVENT_VERSION,
        }
        dispatcher.emit(f"{module}.{name}", dumps(event).encode())

    def emit_order(self, order: dict, name: str, user_id: int = 0) -> None:
        self.emit_event(
            "Order",
            name,
            order["OmsOrderId"],
            order["OrderNumber"],
            self.full_order(order),
            user_id,
        )

    def emit_user(self, row: dict, name: str, user_id: int = 0) -> None:
        self.emit_event("User", name, row["UserId"], row["UserName"], self.user_model(row), user_id)

    def emit_address(self, row: dict, name: str, user_id: int = 0) -> None:
        self.emit_event(
            "Address",
            name,
            row["AddressId"],
            row.get("DisplayName"),
            self.address_model(row),
            user_id,
        )

    def emit_return(self, record: dict, name: str, user_id: int = 0) -> None:
        self.emit_event(
            "Return",
            name,
            record["RmaReturnDetailsId"],
            record["ReturnNumber"],
            self.return_model(record),
            user_id,
        )
