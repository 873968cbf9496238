"""Znode sandbox: order reads (envelope, 204s, paging, filters, expands, GET cache)
and every order write with its documented side effects."""

from __future__ import annotations

import re
import time
from decimal import Decimal

import pytest

from tests.sandbox.test_znode_helpers import ALL_EXPANDS, BASE_FIELDS, MIN_DATE, Zn, body

SEEDED_ORDERS = 11


def numbers(data: dict) -> list[str]:
    return [o["OrderNumber"] for o in data["OrderList"]["Orders"]]


# --- envelope and list mechanics ---------------------------------------------------------
def test_order_envelope_decimals_and_dates(sandbox):
    zn = Zn(sandbox)
    response = zn.get("orders/101")
    assert response.status_code == 200
    data = body(response)
    assert set(data) >= BASE_FIELDS and data["HasError"] is False and data["ErrorCode"] is None
    assert set(data) - BASE_FIELDS == {"Order", "RefundPayment"}
    order = data["Order"]
    assert order["OmsOrderId"] == 101 and order["OrderNumber"] == "SBX-000001"
    assert order["OmsOrderDetailsId"] != order["OmsOrderId"]
    assert order["Total"] == Decimal("71.08") and order["SubTotal"] == Decimal("61")
    assert re.search(r'"Total": 71\.080000', response.text)  # numbers, scale 6
    assert order["CurrencyCode"] == "USD" and order["PaymentSettingId"] == 7
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?", order["OrderDate"])
    assert order["BillingAddress"]["PostalCode"] == "94103"
    assert order["ShippingAddress"]["CityName"] == "Oakland"
    history = order["PaymentHistoryList"]  # a PaymentHistoryListModel, not a bare list
    assert history["PaymentHistoryList"] == [] and history["TotalResults"] is None


def test_list_paging_is_one_based_and_duplicated(sandbox):
    zn = Zn(sandbox)
    everything = zn.ok("orders/list")
    assert everything["PageIndex"] == 1 and everything["PageSize"] == 2147483647
    assert everything["TotalResults"] == SEEDED_ORDERS and everything["TotalPages"] == 1
    first = zn.ok("orders/list?page=index~1,size~4")
    inner = first["OrderList"]
    for level in (first, inner):
        assert (level["PageIndex"], level["PageSize"]) == (1, 4)
        assert (level["TotalResults"], level["TotalPages"]) == (SEEDED_ORDERS, 3)
    assert len(inner["Orders"]) == 4
    third = zn.ok("orders/list?page=index~3,size~4")
    assert len(third["OrderList"]["Orders"]) == 3
    seen = numbers(first) + numbers(zn.ok("orders/list?page=index~2,size~4")) + numbers(third)
    assert sorted(seen) == sorted(numbers(everything))


@pytest.mark.parametrize(
    "query",
    [
        "page=index~4,size~4",
        "page=index~0,size~4",
        "filter=userid~eq~999",
        "filter=ordernumber~eq~nope",
    ],
)
def test_nothing_found_is_204_with_an_empty_body(sandbox, query):
    response = Zn(sandbox).get(f"orders/list?{query}")
    assert response.status_code == 204 and response.content == b""


def test_list_rows_carry_only_the_procedure_columns(sandbox):
    row = Zn(sandbox).ok("orders/list?filter=omsorderid~eq~102")["OrderList"]["Orders"][0]
    assert row["OrderState"] == "Shipped"  # the Description, not the name
    assert row["PaymentStatus"] == "Captured" and row["PaymentType"] == "Credit Card"
    assert row["OmsOrderStateId"] == 0 and row["TrackingNumber"] is None
    assert row["OrderLineItems"] is None and row["BillingAddress"] is None
    assert row["ModifiedDate"] == MIN_DATE and row["OrderModifiedDate"] != MIN_DATE
    assert row["UserName"] == "Bob Brown" and row["ItemCount"] == 1
    assert row["ExternalId"] == "ERP-SO-000102"


def test_default_sort_and_explicit_sorts(sandbox):
    zn = Zn(sandbox)
    rows = zn.ok("orders/list")["OrderList"]["Orders"]
    dates = [r["OrderDate"] for r in rows]
    assert dates == sorted(dates, reverse=True)
    by_total = zn.ok("orders/list?sort=total~asc")["OrderList"]["Orders"]
    totals = [r["Total"] for r in by_total]
    assert totals == sorted(totals)
    alias = zn.ok("orders/list?sort=OrderTotalWithCurrency~DESC")["OrderList"]["Orders"]
    assert [r["Total"] for r in alias] == sorted(totals, reverse=True)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("filter=userid~eq~11", ["SBX-000001", "SBX-000004", "SBX-000011"]),
        ("filter=OrderNumber~EQ~SBX-000002", ["SBX-000002"]),  # lower-cased, still matches
        ("filter=omsorderid~in~101^103^999", ["SBX-000001", "SBX-000003"]),
        ("filter=email~cn~carla", ["SBX-000003", "SBX-000008"]),
        ("filter=orderstate~eq~submitted", ["SBX-000001", "SBX-000005"]),
        ("filter=currencycode~ne~usd", ["SBX-000005", "SBX-000006"]),
        ("filter=total~gt~100,currencycode~eq~usd", ["SBX-000007", "SBX-000011"]),
        ("filter=paymentstatus~eq~captured,portalid~eq~1", ["SBX-000002"]),
        ("filter=omsorderstateid~eq~1001", ["SBX-000008"]),
        ("filter=ordernumber~sw~sbx-00000,username~ew~endo", ["SBX-000006"]),
        (
            "filter=externalid~eq~null,portalid~eq~2,orderstate~ne~failed",
            ["SBX-000005", "SBX-000006", "SBX-000010"],
        ),
    ],
)
def test_filters(sandbox, query, expected):
    data = Zn(sandbox).ok(f"orders/list?{query}")
    assert sorted(numbers(data)) == expected


@pytest.mark.parametrize(
    "query",
    [
        "filter=nosuchcolumn~eq~1",
        "sort=nosuchcolumn~asc",
        "filter=userid~xx~1",
        "filter=total~gt~abc",
    ],
)
def test_bad_filters_answer_500(sandbox, query):
    response = Zn(sandbox).get(f"orders/list?{query}")
    assert response.status_code == 500
    data = body(response)
    assert data["HasError"] is True and data["ErrorMessage"]


def test_order_date_filters_compare_at_minute_precision(sandbox):
    zn = Zn(sandbox)
    made = {
        stamp: zn.create_order(order_date=f"2030-01-15T{stamp}")["OrderNumber"]
        for stamp in ("10:29:59", "10:30:10", "10:30:50", "10:31:05")
    }
    gt = zn.ok("orders/list?filter=orderdate~gt~2030-01-15T10:30:45")
    assert numbers(gt) == [made["10:31:05"]]  # 10:30:50 is "not greater" at minute level
    ge = zn.ok("orders/list?filter=orderdate~ge~2030-01-15T10:30:45")
    assert sorted(numbers(ge)) == sorted([made["10:30:10"], made["10:30:50"], made["10:31:05"]])
    window = zn.ok(
        "orders/list?filter=DateTimeRange~bw~'01/15/2030 10:30 AM' AND '01/15/2030 10:30 AM'"
    )
    assert sorted(numbers(window)) == sorted([made["10:30:10"], made["10:30:50"]])
    iso = zn.ok("orders/list?filter=datetimerange~bw~'2030-01-15 10:00' and '2030-01-15 10:29'")
    assert numbers(iso) == [made["10:29:59"]]
    # With an offset the value is converted to the store's clock (America/Chicago, -06:00).
    aware = zn.ok(
        "orders/list?filter=orderdate~lt~2030-01-15T17:31:00%2B01:00,orderdate~ge~2030-01-01"
    )
    assert made["10:30:50"] in numbers(aware) and made["10:31:05"] not in numbers(aware)


# --- detail reads and expand ---------------------------------------------------------------
def test_detail_fields_depend_on_expand(sandbox):
    zn = Zn(sandbox)
    bare = zn.ok("orders/101")["Order"]
    assert bare["OmsOrderStateId"] == 10 and bare["OmsPaymentStateId"] == 2
    for field in ("OrderState", "PaymentStatus", "PaymentType", "OrderLineItems", "OrderNotes"):
        assert bare[field] is None, field
    full = zn.ok(f"orders/101?expand={ALL_EXPANDS.upper()}")["Order"]
    assert full["OrderState"] == "SUBMITTED"  # the name, not the description
    assert full["PaymentStatus"] == "Authorized" and full["PaymentType"] == "Credit Card"
    assert [x["Sku"] for x in full["OrderLineItems"]] == ["SBX-TEE-BLK-M", "SBX-MUG-11OZ"]
    line = full["OrderLineItems"][0]
    assert line["OrderLineItemState"] == "SUBMITTED" and line["Quantity"] == 2
    assert line["OmsOrderDetailsId"] == full["OmsOrderDetailsId"]
    assert line["OmsOrderLineItemsId"] not in (full["OmsOrderId"], full["OmsOrderDetailsId"])
    assert [n["Notes"] for n in full["OrderNotes"]] == ["Customer asked for gift wrap."]
    only_lines = zn.ok("orders/101?expand=orderlineitems")["Order"]
    assert only_lines["OrderLineItems"][0]["OrderLineItemState"] is None


def test_get_by_order_number_and_missing_orders(sandbox):
    zn = Zn(sandbox)
    found = zn.ok("orders/getbyordernumber/sbx-000006?expand=omsorderstate")["Order"]
    assert found["OmsOrderId"] == 106 and found["OrderState"] == "SHIPPED"
    assert found["CurrencyCode"] == "JPY" and found["Total"] == Decimal("8610")
    assert zn.get("orders/getbyordernumber/SBX-999999").status_code == 204
    assert zn.get("orders/999").status_code == 204
    zero = zn.get("orders/0")
    assert zero.status_code == 500 and body(zero)["ErrorCode"] == 8


# --- GET cache ---------------------------------------------------------------------------
def test_reads_after_writes_are_stale_until_cache_refresh(sandbox):
    zn = Zn(sandbox, cache=True)
    url = "orders/101?expand=omsorderstate"
    assert zn.ok(url)["Order"]["OrderState"] == "SUBMITTED"
    update = zn.put("orders/updateorderstatus", {"OmsOrderId": 101, "OmsOrderStateId": 20})
    assert update.json()["IsSuccess"] is True
    stale = zn.get(url)
    assert stale.headers["X-Sandbox-Cache"] == "hit"
    assert body(stale)["Order"]["OrderState"] == "SUBMITTED"  # the pitfall
    assert zn.ok(url + "&cache=refresh")["Order"]["OrderState"] == "SHIPPED"
    assert zn.ok(url)["Order"]["OrderState"] == "SHIPPED"  # refresh re-filled the key
    # "?cache=refresh&..." refreshes a different key: the plain URL stays stale.
    zn.put("orders/updateorderstatus", {"OmsOrderId": 101, "OmsOrderStateId": 40})
    assert zn.ok("orders/101?cache=refresh&expand=omsorderstate")["Order"]["OrderState"] == (
        "CANCELED"
    )
    assert zn.ok(url)["Order"]["OrderState"] == "SHIPPED"
    # Lists are cached too; an empty answer (204) is not.
    assert zn.get("orders/list?filter=orderstate~eq~canceled").status_code == 200


def test_cache_expires_and_can_be_disabled(sandbox):
    zn = Zn(sandbox, cache=True)
    zn.config(cache_seconds=0.3)
    zn.ok("orders/102")
    zn.get("orders/updatetrackingnumber/102/NEW-TRACK")  # a mutating GET is never cached
    assert zn.ok("orders/102")["Order"]["TrackingNumber"] == "1Z999AA10123456784"
    time.sleep(0.35)
    assert zn.ok("orders/102")["Order"]["TrackingNumber"] == "NEW-TRACK"
    zn.config(cache_seconds=0)
    zn.get("orders/updatetrackingnumber/102/NEWER")
    assert zn.ok("orders/102")["Order"]["TrackingNumber"] == "NEWER"


# --- vocabularies ------------------------------------------------------------------------
def test_order_and_payment_state_vocabularies(sandbox):
    zn = Zn(sandbox)
    states = {s["OrderStateName"]: s for s in zn.ok("orderstate/list")["OrderStates"]}
    for name, state_id in (
        ("SUBMITTED", 10),
        ("SHIPPED", 20),
        ("RETURNED", 30),
        ("CANCELED", 40),
        ("PENDING APPROVAL", 50),
        ("APPROVED", 60),
        ("EXPIRED", 200),
    ):
        assert states[name]["OmsOrderStateId"] == state_id
    assert states["IN REVIEW"]["OmsOrderStateId"] > 1000
    assert states["RETURNED"]["IsOrderState"] is False
    assert states["SUBMITTED"]["Description"] == "Submitted"
    only = zn.ok("orderstate/list?filter=isorderstate~eq~true,orderstatename~sw~p")
    assert {s["OrderStateName"] for s in only["OrderStates"]} == {
        "PENDING PAYMENT",
        "PARTIAL REFUND",
    }
    one = zn.ok("orders/getorderstatevaluebyid/20")
    assert one["orderState"]["OrderStateName"] == "SHIPPED"
    assert zn.get("orders/getorderstatevaluebyid/9999").status_code == 204
    payment = zn.ok("orders/getpaymentstatelist")["PaymentStateList"]
    names = {p["Name"]: p["OmsPaymentStateId"] for p in payment}
    assert {
        "Authorized",
        "Captured",
        "Pending",
        "Received",
        "Refunded",
        "Voided",
        "Declined",
    } <= set(names)
    assert all(p["Description"] for p in payment)


# --- writes ------------------------------------------------------------------------------
def test_update_order_status_overwrites_tracking_number(sandbox):
    zn = Zn(sandbox)
    before = zn.order(102)
    assert before["TrackingNumber"] == "1Z999AA10123456784"
    done = zn.put("orders/updateorderstatus", {"OmsOrderId": 102, "OmsOrderStateId": 10})
    assert done.status_code == 200 and done.json()["IsSuccess"] is True
    after = zn.order(102)
    assert after["OrderState"] == "SUBMITTED" and after["TrackingNumber"] is None  # cleared
    assert all(x["OrderLineItemState"] == "SUBMITTED" for x in after["OrderLineItems"])
    zn.put(
        "orders/updateorderstatus",
        {"OmsOrderId": 101, "OmsOrderStateId": 20, "TrackingNumber": "1ZKEEP"},
    )
    shipped = zn.order(101)
    assert shipped["OrderState"] == "SHIPPED" and shipped["TrackingNumber"] == "1ZKEEP"
    assert shipped["ShipDate"] and shipped["OrderLineItems"][0]["ShipDate"] == shipped["ShipDate"]
    assert shipped["OrderModifiedDate"] > before["OrderModifiedDate"]


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"OmsOrderId": 0, "OmsOrderStateId": 20}, 500),
        ({"OmsOrderId": 101, "OmsOrderStateId": 0}, 500),
        ({"OmsOrderId": 101, "OmsOrderStateId": 777}, 500),
        (None, 500),
    ],
)
def test_update_order_status_rejects_bad_ids_and_changes_nothing(sandbox, payload, status):
    zn = Zn(sandbox)
    response = zn.put("orders/updateorderstatus", payload)
    assert response.status_code == status and body(response)["HasError"] is True
    assert zn.order(101)["OrderState"] == "SUBMITTED"


def test_update_order_status_unknown_order_is_not_success(sandbox):
    response = Zn(sandbox).put(
        "orders/updateorderstatus", {"OmsOrderId": 999, "OmsOrderStateId": 20}
    )
    assert response.status_code == 200 and response.json()["IsSuccess"] is False


def test_update_details_by_order_number(sandbox):
    zn = Zn(sandbox)
    response = zn.put(
        "orders/updateorderdetailsbyordernumber",
        {
            "OmsOrderNumber": "sbx-000002",
            "OrderStateName": "canceled",
            "ExternalId": "ERP-42",
            "OrderNotes": "Cancelled in ERP",
        },
    )
    assert response.status_code == 200 and response.json()["IsSuccess"] is True
    order = zn.order(102)
    assert order["OrderState"] == "CANCELED" and order["ExternalId"] == "ERP-42"
    assert order["TrackingNumber"] is None  # cleared by the state change
    assert order["OrderNotes"][-1]["Notes"] == "Cancelled in ERP"
    by_id = zn.put(
        "orders/updateorderdetailsbyordernumber",
        {"OmsOrderNumber": "SBX-000001", "OmsOrderStateId": 1001},
    )
    assert by_id.json()["IsSuccess"] is True and zn.order(101)["OrderState"] == "IN REVIEW"


def test_unknown_state_name_is_ignored_silently(sandbox):
    zn = Zn(sandbox)
    with_note = zn.put(
        "orders/updateorderdetailsbyordernumber",
        {"OmsOrderNumber": "SBX-000002", "OrderStateName": "DISPATCHED", "OrderNotes": "hi"},
    )
    assert with_note.status_code == 200 and with_note.json()["IsSuccess"] is True
    order = zn.order(102)
    assert order["OrderState"] == "SHIPPED"  # unchanged despite IsSuccess
    assert order["TrackingNumber"] == "1Z999AA10123456784"
    assert order["OrderNotes"][-1]["Notes"] == "hi"
    alone = zn.put(
        "orders/updateorderdetailsbyordernumber",
        {"OmsOrderNumber": "SBX-000002", "OrderStateName": "DISPATCHED"},
    )
    assert alone.json()["IsSuccess"] is False
    # RETURNED exists but is not an order state (IsOrderState = 0): ignored as well.
    returned = zn.put(
        "orders/updateorderdetailsbyordernumber",
        {"OmsOrderNumber": "SBX-000002", "OrderStateName": "RETURNED"},
    )
    assert returned.json()["IsSuccess"] is False and zn.order(102)["OrderState"] == "SHIPPED"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"ExternalId": "X" * 51}, "model.ExternalId"),
        ({"OrderNotes": "n" * 501}, "model.OrderNotes"),
    ],
)
def test_length_limits_answer_400_and_change_nothing(sandbox, payload, field):
    zn = Zn(sandbox)
    request = {"OmsOrderNumber": "SBX-000001", "OrderStateName": "SHIPPED", **payload}
    response = zn.put("orders/updateorderdetailsbyordernumber", request)
    assert response.status_code == 400
    data = body(response)
    assert data["HasError"] is True and field in data["CustomModelState"]
    order = zn.order(101)
    assert order["OrderState"] == "SUBMITTED" and order["ExternalId"] is None
    assert len(order["OrderNotes"]) == 1
    limit = zn.put(
        "orders/updateorderdetailsbyordernumber",
        {"OmsOrderNumber": "SBX-000001", "ExternalId": "X" * 50},
    )
    assert limit.json()["IsSuccess"] is True


def test_update_details_unknown_order_number(sandbox):
    response = Zn(sandbox).put(
        "orders/updateorderdetailsbyordernumber",
        {"OmsOrderNumber": "SBX-424242", "ExternalId": "E"},
    )
    assert response.status_code == 500 and body(response)["ErrorCode"] == 5


def test_payment_status_by_name(sandbox):
    zn = Zn(sandbox)
    assert zn.get("orders/updateorderpaymentstatus/101/Captured").json()["IsSuccess"] is True
    assert zn.order(101)["PaymentStatus"] == "Captured"
    assert zn.get("orders/updateorderpaymentstatus/101/voided").json()["IsSuccess"] is True
    assert zn.order(101)["PaymentStatus"] == "Voided"
    spaced = zn.get("orders/updateorderpaymentstatus/101/Pending%20For%20Review")
    assert spaced.json()["IsSuccess"] is True
    bad = zn.get("orders/updateorderpaymentstatus/101/Settled")
    assert bad.status_code == 500 and body(bad)["ErrorMessage"] == "invalid payment state"
    assert zn.order(101)["PaymentStatus"] == "Pending For Review"


def test_tracking_number_and_transaction_id_updates(sandbox):
    zn = Zn(sandbox)
    assert zn.get("orders/updatetrackingnumber/101/1Z%20ONE").json()["IsSuccess"] is True
    assert zn.order(101)["TrackingNumber"] == "1Z ONE"
    assert zn.put("orders/updatetrackingnumber/101/1ZTWO").json()["IsSuccess"] is True
    assert zn.order(101)["TrackingNumber"] == "1ZTWO"
    assert zn.get("orders/updateordertransactionid/101/pi_123").json()["IsSuccess"] is True
    assert zn.order(101)["TransactionId"] == "pi_123"
    assert zn.get("orders/updatetrackingnumber/999/X").json()["IsSuccess"] is False


def test_order_notes_are_keyed_by_order_details_id(sandbox):
    zn = Zn(sandbox)
    detail_id = zn.order(101)["OmsOrderDetailsId"]
    ok = zn.post("orders/addordernote", {"OmsOrderDetailsId": detail_id, "Notes": "From ERP"})
    assert ok.json()["IsSuccess"] is True
    assert [n["Notes"] for n in zn.order(101)["OrderNotes"]][-1] == "From ERP"
    listed = zn.ok("orders/getordernoteslist/101/0")["OrderNotesList"]
    assert [n["Notes"] for n in listed] == ["Customer asked for gift wrap.", "From ERP"]
    # Without a detail id: "success", attached to nothing.
    orphan = zn.post("orders/addordernote", {"OmsOrderId": 101, "Notes": "lost"})
    assert orphan.status_code == 200 and orphan.json()["IsSuccess"] is True
    assert "lost" not in [n["Notes"] for n in zn.order(101)["OrderNotes"]]
    assert any(
        n["Notes"] == "lost" and n["OmsOrderDetailsId"] is None for n in zn.raw_state()["notes"]
    )
    # The order id is not a detail id: unknown detail -> 500.
    wrong = zn.post("orders/addordernote", {"OmsOrderDetailsId": 101, "Notes": "x"})
    assert wrong.status_code == 500 and body(wrong)["HasError"] is True
    empty = zn.post("orders/addordernote", {"OmsOrderDetailsId": detail_id, "Notes": ""})
    assert empty.json()["IsSuccess"] is False
    assert len(zn.order(101)["OrderNotes"]) == 2
    assert zn.get("orders/getordernoteslist/103/0").status_code == 204


def payment(order_id: int = 101, **fields) -> dict:
    data = {
        "OmsOrderId": order_id,
        "TransactionReference": "pi_abc",
        "Total": "71.08",
        "TransactionStatus": "Captured",
        "TransactionDate": "2030-01-01T10:00:00",
        "PaymentSettingId": 7,
        "RemainingOrderAmount": 0,
    }
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.parametrize("route", ["order/saveorderpaymentdetail", "orders/saveorderpaymentdetail"])
def test_payment_detail_is_not_idempotent(sandbox, route):
    zn = Zn(sandbox)
    assert zn.post(route, payment()).json()["IsSuccess"] is True
    assert zn.post(route, payment()).json()["IsSuccess"] is True  # a retry...
    history = zn.order(101)["PaymentHistoryList"]["PaymentHistoryList"]
    assert [h["TransactionReference"] for h in history] == ["pi_abc", "pi_abc"]  # ...twice
    assert history[0]["Amount"] == Decimal("71.08")
    assert history[0]["PaymentType"] == "Credit Card (Stripe)"


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"TransactionDate": None}, 500),  # SqlDateTime overflow
        ({"TransactionDate": "0001-01-01T00:00:00"}, 500),
        ({"TransactionReference": "r" * 51}, 400),
        ({"OmsOrderId": 999}, 500),
    ],
)
def test_payment_detail_validation_stores_nothing(sandbox, fields, status):
    zn = Zn(sandbox)
    args = dict(fields)
    order_id = args.pop("OmsOrderId", 101)
    response = zn.post("order/saveorderpaymentdetail", payment(order_id, **args))
    assert response.status_code == status and body(response)["HasError"] is True
    assert zn.raw_state()["order_payments"] == [
        p for p in zn.raw_state()["order_payments"] if p["OmsOrderId"] != 101
    ]
    assert zn.order(101)["PaymentHistoryList"]["PaymentHistoryList"] == []


def test_payment_detail_with_unknown_setting_is_stored_but_not_listed(sandbox):
    zn = Zn(sandbox)
    response = zn.post("order/saveorderpaymentdetail", payment(PaymentSettingId=12345))
    assert response.json()["IsSuccess"] is True
    assert zn.order(101)["PaymentHistoryList"]["PaymentHistoryList"] == []
    stored = [p for p in zn.raw_state()["order_payments"] if p["OmsOrderId"] == 101]
    assert len(stored) == 1 and stored[0]["PaymentSettingId"] == 12345


def test_payment_history_reference_knob(sandbox):
    zn = Zn(sandbox)
    captured = zn.order(102)["PaymentHistoryList"]["PaymentHistoryList"]
    assert captured[0]["TransactionReference"] == "ch_sbx_000002"
    zn.config(payment_history_has_reference=False)
    rows = zn.order(102)["PaymentHistoryList"]["PaymentHistoryList"]
    assert "TransactionReference" not in rows[0]


def test_create_order_history(sandbox):
    zn = Zn(sandbox)
    detail_id = zn.order(101)["OmsOrderDetailsId"]
    response = zn.post(
        "orders/createorderhistory",
        {
            "OmsOrderDetailsId": detail_id,
            "Message": "Refunded 10.00",
            "TransactionId": "re_1",
            "OrderAmount": -10,
        },
    )
    assert response.status_code == 200
    assert body(response)["OrderHistory"]["OrderAmount"] == Decimal("-10")
    history = zn.order(101, "znodeomshistories")["OrderHistory"]
    assert list(history.values()) == ["Refunded 10.00"]
    bad = zn.post("orders/createorderhistory", {"OmsOrderDetailsId": 101, "Message": "x"})
    assert bad.status_code == 500


def test_update_order_address(sandbox):
    zn = Zn(sandbox)
    response = zn.put(
        "orders/UpdateOrderAddress",
        {
            "omsOrderId": 101,
            "FromBillingShipping": "shipping",
            "Address1": "1 New Street",
            "PostalCode": "94110",
        },
    )
    assert response.json()["IsSuccess"] is True
    order = zn.order(101)
    assert order["ShippingAddress"]["Address1"] == "1 New Street"
    assert order["BillingAddress"]["Address1"] == "12 Market St"
