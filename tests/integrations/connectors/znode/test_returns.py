"""Znode returns (RMA, reference znode-api.md §5.1) as facts and as events, read from
the sandbox store over real HTTP."""

import json
from decimal import Decimal

import pytest

from integrations.connectors import registry as connectors
from integrations.connectors.znode.mapping import (
    ReturnHistoryRow,
    ZnodeReturn,
    return_change_fingerprint,
    return_from_wire,
)
from integrations.connectors.znode.webhooks import parse
from integrations.kernel.jsonutil import dumps_exact
from tests.conftest import znode_event

pytestmark = pytest.mark.django_db

REFUNDED_RETURN = "SBX-RMA-000001"  # seeded: order SBX-000004, Refund Processed, one refund
OPEN_RETURN = "SBX-RMA-000002"  # seeded: order SBX-000011, Submitted


# --- facts -------------------------------------------------------------------------------
def test_a_refunded_return_read_from_the_store_as_facts(znode):
    raw = znode.get_return(REFUNDED_RETURN)
    found = return_from_wire(raw)
    assert found == ZnodeReturn(
        id=501,
        number=REFUNDED_RETURN,
        order_number="SBX-000004",
        order_id=104,
        order_details_id=40004,
        user_id=11,
        state_id=80,
        state="REFUND PROCESSED",
        total=Decimal("38.97"),
        currency="USD",
        modified=raw["ModifiedDate"],
        has_line_items=True,
        # The return's note ("Arrived damaged") is a row without a TransactionId.
        history=(ReturnHistoryRow("re_sbx_000004", Decimal("-43.97"), "Refund processed"),),
    )
    assert found.raw is raw
    assert found.modified.startswith("20")


def test_a_new_partial_return_and_its_list_row_as_facts(znode, shop, open_return):
    placed = shop.place_order(
        lines=[
            {"sku": "SBX-MUG-11OZ", "quantity": 2, "price": "12.50"},
            {"sku": "SBX-STICKER-PACK", "quantity": 1, "price": "4.50"},
        ],
        tax="0.00",
    )
    opened = open_return(placed["OrderNumber"], lines=[{"sku": "SBX-MUG-11OZ"}])
    details = return_from_wire(znode.get_return(opened["ReturnNumber"]))
    assert (details.state_id, details.state, details.total) == (10, "SUBMITTED", Decimal("12.50"))
    assert (details.order_id, details.order_details_id) == (
        placed["OmsOrderId"],
        placed["OmsOrderDetailsId"],
    )
    assert (details.has_line_items, details.history) == (True, ())
    row = next(
        r
        for r in znode.list_returns(filters=[("returnnumber", "eq", opened["ReturnNumber"])])
        if r["ReturnNumber"] == opened["ReturnNumber"]
    )
    listed = return_from_wire(row)
    # A list row carries no collections; everything else agrees with the details.
    assert (listed.has_line_items, listed.history) == (False, ())
    assert listed.id == details.id and listed.number == details.number
    assert (listed.state_id, listed.total) == (10, Decimal("12.50"))
    assert listed.modified == details.modified


def test_odd_values_are_read_as_what_can_be_read():
    found = return_from_wire(
        {
            "RmaReturnDetailsId": "not-a-number",
            "ReturnNumber": 77,
            "OmsOrderId": None,
            "OmsOrderDetailsId": "",
            "RmaReturnStateId": "50",
            "ReturnStatus": "  refund   processed ",
            "TotalReturnAmount": "n/a",
            "CurrencyCode": "usd",
            "ReturnLineItems": [],
            "ReturnHistoryAndNotesList": [
                None,
                "text",
                {"TransactionId": "", "Notes": "a note"},
                {"TransactionId": " re_1 ", "ReturnAmount": "abc", "Message": None},
                {"TransactionId": "re_2", "ReturnAmount": -5},
            ],
        }
    )
    assert found == ZnodeReturn(
        id=0,
        number="77",
        order_number="",
        order_id=None,
        order_details_id=None,
        user_id=None,
        state_id=50,
        state="REFUND PROCESSED",
        total=Decimal(0),
        currency="USD",
        modified="",
        has_line_items=False,
        history=(ReturnHistoryRow("re_1", None, ""), ReturnHistoryRow("re_2", Decimal(-5), "")),
    )
    empty = return_from_wire({"ReturnLineItems": "x", "ReturnHistoryAndNotesList": {"a": 1}})
    assert (empty.id, empty.state, empty.total, empty.has_line_items, empty.history) == (
        0,
        "",
        Decimal(0),
        False,
        (),
    )


# --- events ------------------------------------------------------------------------------
def return_webhook(model: dict, name: str = "Updated", event_id: str = "evt-r1") -> bytes:
    """What a store sending Return events posts (the sandbox's ``emit_return``): the
    return double-encoded, its amounts JSON numbers."""
    payload = znode_event(module="Return", name=name, event_id=event_id, payload={})
    payload["EventPayload"] = dumps_exact(model)
    payload["EventDataId"] = model.get("RmaReturnDetailsId")
    payload["EventDataCode"] = model.get("ReturnNumber")
    return json.dumps(payload).encode()


def test_a_return_event_parses_to_the_return_and_its_order(znode):
    model = znode.get_return(OPEN_RETURN)
    parsed = parse(return_webhook(model))
    assert (parsed.external_id, parsed.event_type) == ("evt-r1", "return.updated")
    assert parsed.object_id == "502"  # RmaReturnDetailsId
    assert parsed.reference == "SBX-000011"  # the order's number: its timeline finds it
    connector = connectors.get("znode")
    assert connector.is_known_event("return.created")
    assert connector.is_known_event("return.updated")
    # Without an OrderNumber the reference is the return's number (EventDataCode).
    bare = parse(return_webhook({"RmaReturnDetailsId": 9, "ReturnNumber": "RMA-9"}))
    assert (bare.object_id, bare.reference) == ("9", "RMA-9")


def test_return_events_carry_the_return_as_facts(znode):
    model = znode.get_return(REFUNDED_RETURN)
    parsed = parse(return_webhook(model, name="Created"))
    facts = connectors.get("znode").event_facts(parsed.event_type, parsed.payload)
    assert facts == {
        "return": {
            "id": 501,
            "number": REFUNDED_RETURN,
            "order_number": "SBX-000004",
            "order_id": 104,
            "order_details_id": 40004,
            "user_id": 11,
            "state_id": 80,
            "state": "REFUND PROCESSED",
            "total": "38.97",
            "currency": "USD",
            "modified": model["ModifiedDate"],
            "has_line_items": True,
            "history": [
                {
                    "transaction_id": "re_sbx_000004",
                    "amount": "-43.97",
                    "message": "Refund processed",
                }
            ],
        }
    }
    connector = connectors.get("znode")
    assert connector.event_facts("return.deleted", parsed.payload) == {}
    # An empty object: the envelope still names the return.
    thin = connector.event_facts(
        "return.updated",
        {"envelope": {"EventDataId": 7, "EventDataCode": "RMA-7"}, "object": {"ReturnNumber": ""}},
    )
    assert (thin["return"]["id"], thin["return"]["number"], thin["return"]["total"]) == (
        7,
        "RMA-7",
        "0",
    )
    # Order events keep their facts.
    order = connector.event_facts("order.created", {"object": {"OmsOrderId": 5}})
    assert order == {"order": {"id": 5, "number": ""}}


def fingerprint_of(ret: dict, event_type: str = "return.updated", envelope=None):
    return return_change_fingerprint(event_type, {"envelope": envelope or {}, "object": ret})


def test_a_return_fingerprint_is_its_state_total_and_modified_date():
    details = {
        "RmaReturnDetailsId": 42,
        "RmaReturnStateId": 50,
        "ReturnStatus": "Approved",
        "TotalReturnAmount": Decimal("12.500000"),
        "ReturnLineItems": [{"Sku": "A"}],
        "Notes": "",
        "ModifiedDate": "2026-11-30T10:00:00",
    }
    row = {
        "RmaReturnDetailsId": "42",
        "RmaReturnStateId": 50,
        "ReturnStatus": "Approved",
        "TotalReturnAmount": 12.5,
        "ReturnLineItems": None,
        "ModifiedDate": "2026-11-30T10:00:00",
    }
    change = fingerprint_of(details)
    assert change.object_key == fingerprint_of(row).object_key == "return:42"
    assert change.fingerprint == fingerprint_of(row).fingerprint and len(change.fingerprint) == 64
    assert (change.creates, change.update_event_type) == (False, "")
    created = fingerprint_of(details, "return.created")
    assert (created.creates, created.update_event_type) == (True, "return.updated")
    assert created.fingerprint == change.fingerprint
    # Our history rows and notes change nothing...
    echo = {
        **details,
        "Notes": "Refunded: re_1",
        "ReturnHistoryAndNotesList": [{"TransactionId": "re_1", "ReturnAmount": -12.5}],
    }
    assert fingerprint_of(echo).fingerprint == change.fingerprint
    # ...the state, the amount and a new save (approved again after a failed refund) do.
    again = {**details, "ModifiedDate": "2026-11-30T10:05:00"}
    assert fingerprint_of(again).fingerprint != change.fingerprint
    assert fingerprint_of({**details, "RmaReturnStateId": 80}).fingerprint != change.fingerprint
    assert fingerprint_of({**details, "TotalReturnAmount": "10"}).fingerprint != change.fingerprint
    # A name stands in only where no id came; it never matches an id by guess.
    named = {**details, "RmaReturnStateId": None}
    assert fingerprint_of(named).fingerprint != change.fingerprint
    assert (
        fingerprint_of(named).fingerprint
        == fingerprint_of({**named, "ReturnStatus": " approved "}).fingerprint
    )


@pytest.mark.parametrize(
    ("event_type", "payload"),
    [
        ("return.deleted", {"object": {"RmaReturnDetailsId": 42}}),
        ("return.updated", {"object": {"ReturnNumber": "RMA-42"}}),
        ("return.updated", {"object": {"RmaReturnDetailsId": "x"}}),
        ("return.updated", {"object": "not an object"}),
    ],
)
def test_return_events_without_a_return_are_always_routed(event_type, payload):
    assert return_change_fingerprint(event_type, payload) is None


def test_the_connector_fingerprints_returns_and_orders():
    connector = connectors.get("znode")
    by_envelope = connector.change_fingerprint(
        "return.updated", {"envelope": {"EventDataId": 42}, "object": {"TotalReturnAmount": "n/a"}}
    )
    assert by_envelope.object_key == "return:42"
    order = connector.change_fingerprint("order.updated", {"object": {"OmsOrderId": 7}})
    assert order.object_key == "order:7"
    # Users and addresses have theirs too (test_customers.py); other modules none.
    user = connector.change_fingerprint("user.updated", {"object": {"UserId": 7}})
    assert user.object_key == "user:7"
    assert connector.change_fingerprint("portal.updated", {"object": {"PortalId": 7}}) is None
