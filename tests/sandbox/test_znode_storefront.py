"""Znode sandbox: the test-only storefront routes and Znode 10-style webhooks."""

from __future__ import annotations

import json
import time
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from tests.sandbox.test_znode_helpers import Receiver, Zn, body

SECRET = "Bearer znode-webhook-token"


@pytest.fixture
def receiver(sandbox):
    hook = Receiver()
    yield hook
    hook.close()


def register(sandbox, receiver: Receiver, secret: str = SECRET) -> None:
    sandbox.control("POST", "webhooks/znode", {"url": receiver.url, "secret": secret})


def deliveries(sandbox) -> list[dict]:
    return sandbox.control("GET", "webhooks/znode/log")["deliveries"]


# --- storefront routes -------------------------------------------------------------------
def test_shopper_places_an_order(sandbox):
    zn = Zn(sandbox)
    order = zn.create_order(
        user_id=11,
        currency="usd",
        shipping="4.99",
        tax="1.25",
        lines=[
            {"sku": "SBX-CAP-NVY", "quantity": 2, "price": "15.00"},
            {"sku": "CUSTOM-1", "quantity": 1, "price": "3.50", "name": "Gift card box"},
        ],
    )
    assert order["OrderNumber"] == "SBX-000012" and order["OmsOrderId"] == 112
    assert order["OrderState"] == "SUBMITTED" and order["PaymentStatus"] == "Authorized"
    assert order["SubTotal"] == Decimal("33.5") and order["Total"] == Decimal("39.74")
    assert order["CurrencyCode"] == "USD" and order["TransactionId"].startswith("ch_")
    charge = sandbox.sandbox.systems["stripe"].table("charge")[order["TransactionId"]]
    assert (charge["amount"], charge["captured"]) == (3974, False)  # authorized at checkout
    local = datetime.now(ZoneInfo("America/Chicago")).replace(tzinfo=None)  # the store clock
    age = local - datetime.fromisoformat(order["OrderDate"])
    assert abs(age.total_seconds()) < 60
    newest = zn.ok("orders/list?page=index~1,size~1")["OrderList"]["Orders"][0]
    assert newest["OrderNumber"] == "SBX-000012"
    second = zn.create_order(
        user_id=15,
        currency="JPY",
        payment_state="Pending",
        transaction_id="pi_jp_1",
        lines=[{"sku": "SBX-MUG-11OZ", "quantity": 3, "price": 1800}],
    )
    assert second["OrderNumber"] == "SBX-000013" and second["Total"] == Decimal("5400")
    assert second["PaymentStatus"] == "Pending" and second["TransactionId"] == "pi_jp_1"


@pytest.mark.parametrize(
    "payload",
    [
        {"user_id": 999, "lines": [{"sku": "X", "quantity": 1, "price": 1}]},
        {"user_id": 11, "lines": []},
        {"user_id": 11, "lines": [{"sku": "X", "quantity": 0, "price": 1}]},
        {"user_id": 11, "payment_state": "Nope", "lines": [{"sku": "X", "price": 1}]},
        {"lines": [{"sku": "X", "price": 1}]},
    ],
)
def test_bad_storefront_orders_are_refused(sandbox, payload):
    zn = Zn(sandbox)
    response = zn.test("POST", "orders", payload)
    assert response.status_code == 400 and "error" in response.json()
    assert len(zn.raw_state()["orders"]) == 11


def test_cancel_ship_update_total_and_state(sandbox):
    zn = Zn(sandbox)
    number = zn.create_order()["OrderNumber"]
    shipped = body(zn.test("POST", f"orders/{number}/ship", {"tracking_number": "1ZSHIP"}))
    assert shipped["Order"]["OrderState"] == "SHIPPED"
    assert shipped["Order"]["TrackingNumber"] == "1ZSHIP" and shipped["Order"]["ShipDate"]
    changed = body(
        zn.test("POST", f"orders/{number}/update_total", {"shipping": "2.00", "tax": "0.80"})
    )["Order"]
    assert changed["Total"] == Decimal("12.80")
    override = body(zn.test("POST", f"orders/{number}/update_total", {"total": "9.00"}))
    assert override["Order"]["Total"] == Decimal("9.00")
    canceled = body(zn.test("POST", f"orders/{number}/cancel", {"payment_state": "Voided"}))
    assert canceled["Order"]["OrderState"] == "CANCELED"
    assert canceled["Order"]["PaymentStatus"] == "Voided"
    generic = body(
        zn.test(
            "POST", f"orders/{number}/state", {"state": "pending payment", "tracking_number": None}
        )
    )
    assert generic["Order"]["OrderState"] == "PENDING PAYMENT"
    assert generic["Order"]["TrackingNumber"] is None
    assert zn.test("POST", "orders/SBX-404/cancel").status_code == 400
    fresh = zn.test("GET", f"orders/{number}").json()["Order"]
    assert fresh["OrderState"] == "PENDING PAYMENT"


def test_storefront_returns_and_customers(sandbox):
    zn = Zn(sandbox)
    created = zn.test(
        "POST",
        "returns",
        {
            "order_number": "SBX-000002",
            "lines": [{"sku": "SBX-HOODIE-GRY-XL", "quantity": 1}],
            "reason": "Too big",
        },
    )
    assert created.status_code == 201
    ret = body(created)["Return"]
    assert ret["ReturnStatus"] == "Submitted" and ret["OrderNumber"] == "SBX-000002"
    approved = zn.test("POST", f"returns/{ret['ReturnNumber']}/state", {"state": "approved"})
    assert body(approved)["Return"]["ReturnStatus"] == "Approved"
    again = zn.test("POST", "returns", {"order_number": "SBX-000002"})  # nothing left
    assert again.status_code == 400
    canceled = zn.test("POST", "returns", {"order_number": "SBX-000003"})
    assert canceled.status_code == 400 and canceled.json()["code"] == 301
    person = zn.test(
        "POST",
        "customers",
        {
            "first_name": "Fay",
            "last_name": "Fox",
            "email": "fay@example.com",
            "address": {
                "address1": "3 Oak St",
                "city": "Reno",
                "state": "NV",
                "postal_code": "89501",
                "country": "US",
            },
        },
    )
    assert person.status_code == 201
    fay = body(person)["User"]
    assert fay["UserId"] == 16 and fay["UserName"] == "fay@example.com"
    assert zn.ok("useraccounts/16/1")["User"]["LastName"] == "Fox"
    assert len(zn.ok("customer/addresslist?filter=userid~eq~16")["AddressList"]) == 1
    duplicate = zn.test(
        "POST", "customers", {"first_name": "F", "last_name": "F", "email": "FAY@example.com"}
    )
    assert duplicate.status_code == 400
    order = zn.create_order(user_id=16)
    assert order["BillingAddress"]["CityName"] == "Reno"
    edited = zn.test("POST", "customers/16/update", {"PhoneNumber": "555-1616"})
    assert body(edited)["User"]["PhoneNumber"] == "555-1616"
    assert zn.test("POST", "customers/16/update", {"UserId": 1}).status_code == 400


def test_config_route(sandbox):
    zn = Zn(sandbox)
    assert zn.test("GET", "config").json()["cache_seconds"] == 0
    refused = zn.test("POST", "config", {"nope": 1})
    assert refused.status_code == 400 and "cache_seconds" in refused.json()["known"]
    assert zn.test("GET", "nowhere").status_code == 404
    sandbox.reset()
    assert zn.test("GET", "config").json()["cache_seconds"] == 60


# --- webhooks ----------------------------------------------------------------------------
def test_order_events_are_double_encoded_and_carry_the_authorization(sandbox, receiver):
    register(sandbox, receiver)
    zn = Zn(sandbox)
    order = zn.create_order(user_id=13)
    zn.put(
        "orders/updateorderstatus",
        {"OmsOrderId": order["OmsOrderId"], "OmsOrderStateId": 20, "TrackingNumber": "1Z"},
        headers={"Znode-UserId": "5"},
    )
    zn.get(f"orders/updateorderpaymentstatus/{order['OmsOrderId']}/Captured")
    zn.post(
        "orders/addordernote", {"OmsOrderDetailsId": order["OmsOrderDetailsId"], "Notes": "note"}
    )
    zn.test("POST", f"orders/{order['OrderNumber']}/update_total", {"shipping": 1})
    events = receiver.wait_for(5)
    assert [(e["EventModule"], e["EventName"]) for e in events] == [("Order", "Created")] + [
        ("Order", "Updated")
    ] * 4
    headers, _ = receiver.received[0]
    assert headers["Authorization"] == SECRET
    assert not any(k.lower().endswith("signature") for k in headers)
    first = events[0]
    assert set(first) == {
        "EventDataCode",
        "EventDataId",
        "EventId",
        "EventModule",
        "EventName",
        "EventPayload",
        "EventTimeStamp",
        "TraceId",
        "UserId",
        "EventVersion",
    }
    assert isinstance(first["EventPayload"], str)
    payload = json.loads(first["EventPayload"])
    assert payload["OrderNumber"] == order["OrderNumber"] == first["EventDataCode"]
    assert first["EventDataId"] == order["OmsOrderId"] and first["UserId"] == 13
    assert len({e["EventId"] for e in events}) == 5
    shipped = json.loads(events[1]["EventPayload"])
    assert shipped["OrderState"] == "SHIPPED" and events[1]["UserId"] == 5
    assert json.loads(events[2]["EventPayload"])["PaymentStatus"] == "Captured"
    assert json.loads(events[4]["EventPayload"])["ShippingCost"] == 1


def test_user_address_and_return_events(sandbox, receiver):
    register(sandbox, receiver)
    zn = Zn(sandbox)
    zn.test(
        "POST", "customers", {"first_name": "Gus", "last_name": "Gray", "email": "gus@example.com"}
    )
    current = zn.ok("useraccounts/12/1")["User"]
    zn.put("customeraccount/update", {**current, "PhoneNumber": "555-0000"})
    zn.put(
        "customer/updatecustomeraddress", {"AddressId": 203, "UserId": 12, "Address1": "78 Elm Ave"}
    )
    zn.test("POST", "returns", {"order_number": "SBX-000001"})
    events = receiver.wait_for(4)
    assert [(e["EventModule"], e["EventName"]) for e in events] == [
        ("User", "Created"),
        ("User", "Updated"),
        ("Address", "Updated"),
        ("Return", "Created"),
    ]
    assert json.loads(events[1]["EventPayload"])["PhoneNumber"] == "555-0000"
    assert json.loads(events[3]["EventPayload"])["OrderNumber"] == "SBX-000001"


def test_no_webhooks_without_an_endpoint_or_when_disabled(sandbox, receiver):
    zn = Zn(sandbox)
    zn.create_order()
    time.sleep(0.2)
    assert deliveries(sandbox) == [] and receiver.received == []
    register(sandbox, receiver)
    sandbox.set_faults("znode", webhooks_enabled=False)
    zn.create_order()
    zn.put("orders/updateorderstatus", {"OmsOrderId": 101, "OmsOrderStateId": 20})
    time.sleep(0.2)
    assert receiver.received == []
    sandbox.set_faults("znode", webhooks_enabled=True)
    zn.create_order()
    assert len(receiver.wait_for(1)) == 1


def test_failed_webhooks_are_not_retried(sandbox):
    failing = Receiver(status=500)
    try:
        register(sandbox, failing)
        Zn(sandbox).create_order()
        failing.wait_for(1)
        time.sleep(0.3)
        assert len(failing.received) == 1
        log = deliveries(sandbox)
        assert [(d["attempt"], d["status"]) for d in log] == [(1, 500)]
    finally:
        failing.close()


def test_failed_writes_emit_nothing(sandbox, receiver):
    register(sandbox, receiver)
    zn = Zn(sandbox)
    zn.put(
        "orders/updateorderdetailsbyordernumber",
        {"OmsOrderNumber": "SBX-000001", "ExternalId": "X" * 60},
    )
    zn.get("orders/updateorderpaymentstatus/101/Bogus")
    zn.put("orders/updateorderstatus", {"OmsOrderId": 101, "OmsOrderStateId": 777})
    zn.put(
        "orders/updateorderdetailsbyordernumber",
        {"OmsOrderNumber": "SBX-000001", "OrderStateName": "NOPE"},
    )
    time.sleep(0.3)
    assert receiver.received == []


def test_state_stays_json_and_reset_restores_the_seed(sandbox):
    zn = Zn(sandbox)
    zn.create_order(user_id=11)
    current = zn.ok("useraccounts/11/1")["User"]
    zn.put("customeraccount/update", {**current, "BudgetAmount": 12.5, "SalesRepId": 3.0})
    zn.put(
        "customer/updatecustomeraddress",
        {"AddressId": 201, "UserId": 11, "Address1": "1 A St", "Custom1": 1.5},
    )
    zn.post(
        "rmareturn/saveorderreturn",
        {
            "OrderNumber": "SBX-000012",
            "IsSubmitReturn": True,
            "ReturnLineItems": [
                {
                    "OmsOrderLineItemsId": zn.order(112)["OrderLineItems"][0][
                        "OmsOrderLineItemsId"
                    ],
                    "ExpectedReturnQuantity": 1.0,
                    "RmaReasonForReturn": 2.5,
                }
            ],
        },
    )
    system = sandbox.sandbox.systems["znode"]
    json.dumps(system.state)  # what --state persistence writes
    assert zn.ok("useraccounts/11/1?cache=refresh")["User"]["BudgetAmount"] == Decimal("12.5")
    sandbox.reset()
    assert len(zn.raw_state()["orders"]) == 11
    assert zn.ok("useraccounts/11/1")["User"]["Email"] == "alice@example.com"
