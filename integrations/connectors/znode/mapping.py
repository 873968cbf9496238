"""Znode wire ⇄ facts."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from integrations.connectors.base import ChangeFingerprint
from integrations.connectors.znode.constants import ORDER_CREATED, ORDER_UPDATED


# --- what an order event changes (the inbox's duplicate and echo check) ----------------
def _order_state(order: Mapping[str, Any]) -> str:
    # List rows carry the state's Description ("Pending Approval"); details with the
    # omsorderstate expand and webhook payloads carry its name ("PENDING APPROVAL").
    # Both agree upper-cased (reference §3.2, §3.3). Only an id: use it, so a payload
    # without names still tells states apart (at worst one extra job, never a lost one).
    name = order.get("OrderState")
    if isinstance(name, str) and name.strip():
        return " ".join(name.split()).upper()
    state_id = order.get("OmsOrderStateId")
    if isinstance(state_id, int | str) and str(state_id).strip() not in ("", "0"):
        return f"#{str(state_id).strip()}"
    return ""


def _amount(value: object) -> str:
    # "42.5", 42.5 and "42.500000" are one amount; a value that is no number is kept
    # as it came rather than failing the whole inbox.
    if value is None or value == "":
        return ""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    if not number.is_finite():
        return str(value)
    return format(number.normalize(), "f")


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def order_change_fingerprint(
    event_type: str, payload: Mapping[str, Any]
) -> ChangeFingerprint | None:
    """The order an ``order.created``/``order.updated`` event is about, and a hash of
    what the order flows act on: the order state, ``Total``, ``CurrencyCode`` and
    ``PaymentSettingId``.

    Left out on purpose, because our own actions write them back to Znode and every
    write bumps the modified date and comes back as an "Order Updated" webhook or a
    polled change: the payment status, payment history, notes, ``ExternalId``,
    ``TransactionId``, the tracking number and the modified dates.

    ``payload`` is what :func:`integrations.connectors.znode.webhooks.parse` returns
    for a Znode 10 webhook and for the poller's event alike
    (``{"envelope": ..., "object": <order>}``), so both give the same fingerprint
    for the same order state.
    """
    if event_type not in (ORDER_CREATED, ORDER_UPDATED):
        return None
    order = payload.get("object")
    order = order if isinstance(order, Mapping) else {}
    envelope = payload.get("envelope")
    envelope = envelope if isinstance(envelope, Mapping) else {}
    try:
        order_id = int(order.get("OmsOrderId") or envelope.get("EventDataId") or 0)
    except (TypeError, ValueError):
        return None
    if order_id <= 0:
        return None
    facts = [
        _order_state(order),
        _amount(order.get("Total")),
        _text(order.get("CurrencyCode")).upper(),
        _text(order.get("PaymentSettingId")),
    ]
    digest = hashlib.sha256(json.dumps(facts, separators=(",", ":")).encode()).hexdigest()
    creates = event_type == ORDER_CREATED
    return ChangeFingerprint(
        object_key=f"order:{order_id}",
        fingerprint=digest,
        creates=creates,
        update_event_type=ORDER_UPDATED if creates else "",
    )


def history_rows(order: dict) -> list[dict]:
    """The rows of an order's ``PaymentHistoryList``.

    It is a list model (§3.3, §9): ``{"PaymentHistoryList": [...], paging}``, not a
    bare list; null when the order has none."""
    history = order.get("PaymentHistoryList")
    if isinstance(history, dict):
        history = history.get("PaymentHistoryList")
    if not isinstance(history, list):
        return []
    return [row for row in history if isinstance(row, dict)]
