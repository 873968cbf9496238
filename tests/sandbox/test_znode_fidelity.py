"""The sandbox Znode against /work/shared/reference/znode-api.md, over real HTTP: one test
per fact where the sandbox once departed from the reference (an independent Znode built
from the reference broke the platform exactly there). Each docstring cites the section.
Where the reference is silent and the sandbox takes the stricter reading, the docstring
says so; where the fact comes from the reference's source (ZLB) rather than its text, the
docstring names the file."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import requests
import stripe

from tests.sandbox.test_stripe import make_client
from tests.sandbox.test_znode_helpers import ALL_EXPANDS, BASE_FIELDS, MODEL_BASE, Zn, body
from tests.support.shop import (
    LINK_PAYMENT_SETTING_ID,
    SAVED_PAYMENT_SETTING_ID,
    STORE_TIMEZONE,
    STRIPE_AUTHORIZE_SETTING_ID,
    STRIPE_PAYMENT_SETTING_ID,
    Shop,
)

HISTORY_ROW = {
    "OrderPaymentId",
    "OmsOrderId",
    "OmsOrderDetailsId",
    "OmsNotesId",
    "Amount",
    "TransactionStatus",
    "PaymentType",
    "RemainingOrderAmount",
}
HISTORY_REFERENCE = {"TransactionReference", "TransactionDate", "PaymentSettingId"}
SEEDED_ORDERS = 11


@pytest.fixture
def zn(sandbox) -> Zn:
    return Zn(sandbox)


@pytest.fixture
def shop(sandbox) -> Shop:
    return Shop(sandbox.system_url("znode"))


@pytest.fixture
def stripe_client(sandbox) -> stripe.StripeClient:
    return make_client(sandbox, key="sk_test_fidelity_reader")


def numbers(data: dict | None) -> set[str]:
    return {o["OrderNumber"] for o in (data or {}).get("OrderList", {}).get("Orders", [])}


def checkout(zn: Zn, **fields) -> requests.Response:
    payload = {"user_id": 12, "lines": [{"sku": "SBX-MUG-11OZ", "quantity": 1, "price": 10}]}
    return zn.test("POST", "orders", {**payload, **fields})


# --- 1. PaymentHistoryList ----------------------------------------------------------------
def test_payment_history_list_is_a_list_model(zn):
    """znode-api.md §3.3 names ``PaymentHistoryList`` on OrderModel, §3.1 says it is read
    back from ``Znode_GetPaymentHistory`` as PaymentHistoryModel rows, §2.4 describes list
    models (BaseListModel with PageIndex/PageSize/TotalPages/TotalResults). Its type is the
    list model ``PaymentHistoryListModel`` (ZLB ``Models/OMSModel/Order/
    PaymentHistoryListModel.cs``; the OrderModel constructor creates an empty one): an
    object ``{"PaymentHistoryList": [rows], paging..., BaseModel...}``, never a bare list,
    also for an order without payments. The service fills only the rows: the paging
    properties stay null (the reference is silent; null is the model's default)."""
    empty = zn.order(101)["PaymentHistoryList"]
    assert isinstance(empty, dict)
    assert (
        set(empty)
        == {"PaymentHistoryList", "PageIndex", "PageSize", "TotalPages"}
        | {"TotalResults"}
        | MODEL_BASE
    )
    assert empty["PaymentHistoryList"] == []
    assert (empty["PageIndex"], empty["PageSize"], empty["TotalResults"]) == (None, None, None)
    row_of_list = zn.ok("orders/list?filter=omsorderid~eq~101")["OrderList"]["Orders"][0]
    assert row_of_list["PaymentHistoryList"]["PaymentHistoryList"] == []

    payment = {
        "OmsOrderId": 101,
        "TransactionReference": "ch_fidelity_1",
        "Total": "71.08",
        "TransactionStatus": "Captured",
        "TransactionDate": "2030-01-01T10:00:00",
        "PaymentSettingId": STRIPE_PAYMENT_SETTING_ID,
        "RemainingOrderAmount": 0,
    }
    assert zn.post("order/saveorderpaymentdetail", payment).json()["IsSuccess"] is True
    rows = zn.order(101)["PaymentHistoryList"]["PaymentHistoryList"]
    assert len(rows) == 1
    assert set(rows[0]) == HISTORY_ROW | HISTORY_REFERENCE | MODEL_BASE
    assert rows[0]["TransactionReference"] == "ch_fidelity_1"
    assert rows[0]["Amount"] == Decimal("71.08")
    assert rows[0]["PaymentType"] == "Credit Card (Stripe)"  # the setting's display name
    zn.config(payment_history_has_reference=False)
    bare = zn.order(101)["PaymentHistoryList"]["PaymentHistoryList"]
    assert set(bare[0]) == HISTORY_ROW | MODEL_BASE


# --- 2. IsOrderState ----------------------------------------------------------------------
NOT_ORDER_STATES = ("RETURNED", "PENDING APPROVAL", "APPROVED", "EXPIRED", "REJECTED")
NOT_ORDER_STATES += ("DRAFT", "ORDERED")
ORDER_STATES = ("SUBMITTED", "SHIPPED", "CANCELED", "IN REVIEW", "FAILED", "PENDING PAYMENT")
ORDER_STATES += ("PARTIAL REFUND",)


def test_only_order_states_carry_is_order_state(zn):
    """znode-api.md §4.1: 30 RETURNED is not an order state (IsOrderState=0); 50 PENDING
    APPROVAL and 60 APPROVED are account/approval (quote) states and 200 EXPIRED a quote
    state; REJECTED, DRAFT and ORDERED are quote states too. The stricter reading is taken
    for 50 (the reference calls it an account/approval state; ZLB's post-deploy script sets
    its IsOrderState to 1). IN REVIEW, FAILED, PENDING PAYMENT and PARTIAL REFUND have no
    known id: the sandbox stands for a customised store that uses them as order states."""
    states = {s["OrderStateName"]: s for s in zn.ok("orderstate/list")["OrderStates"]}
    assert {n: states[n]["OmsOrderStateId"] for n in ("RETURNED", "PENDING APPROVAL")} == {
        "RETURNED": 30,
        "PENDING APPROVAL": 50,
    }
    assert (states["APPROVED"]["OmsOrderStateId"], states["EXPIRED"]["OmsOrderStateId"]) == (
        60,
        200,
    )
    for name in NOT_ORDER_STATES:
        assert states[name]["IsOrderState"] is False, name
    for name in ORDER_STATES:
        assert states[name]["IsOrderState"] is True, name
    assert states["RETURNED"]["IsOrderLineItemState"] is False
    assert states["PARTIAL REFUND"]["IsOrderLineItemState"] is False
    listed = zn.ok("orderstate/list?filter=isorderstate~eq~true")["OrderStates"]
    assert {s["OrderStateName"] for s in listed} == set(ORDER_STATES)


@pytest.mark.parametrize("name", NOT_ORDER_STATES)
def test_details_by_number_ignore_states_that_are_not_order_states(zn, name):
    """znode-api.md §3.1 (``updateorderdetailsbyordernumber``) and §12: the state name is
    resolved case-insensitively among IsOrderState=1 rows only; any other name is ignored
    silently (IsSuccess false when nothing else was written) and the order, its tracking
    number included, is unchanged."""
    response = zn.put(
        "orders/updateorderdetailsbyordernumber",
        {"OmsOrderNumber": "SBX-000002", "OrderStateName": name.lower()},
    )
    assert response.status_code == 200 and response.json()["IsSuccess"] is False
    order = zn.order(102)
    assert order["OrderState"] == "SHIPPED" and order["TrackingNumber"] == "1Z999AA10123456784"


@pytest.mark.parametrize("name", ORDER_STATES)
def test_details_by_number_set_order_states_by_name(zn, name):
    """znode-api.md §3.1 and §12: an IsOrderState name is applied (any case) and the state
    change clears TrackingNumber."""
    response = zn.put(
        "orders/updateorderdetailsbyordernumber",
        {"OmsOrderNumber": "sbx-000002", "OrderStateName": name.title()},
    )
    assert response.json()["IsSuccess"] is True
    order = zn.order(102)
    assert order["OrderState"] == name and order["TrackingNumber"] is None


@pytest.mark.parametrize(("state_id", "tracking"), [(30, "1ZRETURN"), (50, None), (200, None)])
def test_update_order_status_takes_any_state_id_and_overwrites_tracking(zn, state_id, tracking):
    """znode-api.md §3.1 (``OrderService.UpdateOrderStatus``) and §12: ``updateorderstatus``
    takes a state *id* (any existing state row, IsOrderState or not) and writes the body's
    TrackingNumber over the order's (absent: cleared)."""
    payload = {"OmsOrderId": 102, "OmsOrderStateId": state_id}
    if tracking:
        payload["TrackingNumber"] = tracking
    response = zn.put("orders/updateorderstatus", payload)
    assert response.status_code == 200 and response.json()["IsSuccess"] is True
    order = zn.order(102)
    assert order["OmsOrderStateId"] == state_id and order["TrackingNumber"] == tracking


# --- 3. line items ------------------------------------------------------------------------
@pytest.mark.parametrize("expand", ["orderlineitems", "znodeomsorderlineitems", "ORDERLINEITEMS"])
def test_line_items_only_with_their_expand(zn, expand):
    """znode-api.md §3.3 (expands) and §12: ``OrderLineItems`` is null unless
    ``orderlineitems`` (or the entity name ``znodeomsorderlineitems``) is expanded; the
    query string is lower-cased (§2.3). List rows never carry line items (§3.2)."""
    others = "omsorderstate,omspaymentstate,paymenttype,ordernotes"
    assert zn.order(101, others)["OrderLineItems"] is None
    assert zn.ok("orders/101")["Order"]["OrderLineItems"] is None
    lines = zn.order(101, expand)["OrderLineItems"]
    assert [x["Sku"] for x in lines] == ["SBX-TEE-BLK-M", "SBX-MUG-11OZ"]
    row = zn.ok(f"orders/list?expand={expand}&filter=omsorderid~eq~101")["OrderList"]["Orders"][0]
    assert row["OrderLineItems"] is None


# --- 4. the payment app and Stripe charges ------------------------------------------------
def test_card_checkout_authorizes_a_legacy_stripe_charge(shop, zn, stripe_client):
    """znode-api.md §9.1 and §3.3: on the stock Stripe gateway the payment application
    authorizes the order total with a Stripe *charge* (legacy Charges API, capture=false)
    at checkout; the order's TransactionId is the charge id and PaymentTransactionToken
    the payment app's transaction GUID (never a Stripe object). What the provider sends
    besides amount, currency and card is unknown (the sandbox: description and metadata
    with the order number)."""
    placed = shop.place_order(total="42.50", card="pm_card_visa")
    number = placed["OrderNumber"]
    order = zn.ok(f"orders/getbyordernumber/{number}?expand={ALL_EXPANDS}")["Order"]
    assert order["PaymentSettingId"] == STRIPE_PAYMENT_SETTING_ID
    assert order["PaymentStatus"] == "Authorized"
    assert order["TransactionId"].startswith("ch_")
    token = order["PaymentTransactionToken"]
    assert uuid.UUID(token).version == 4 and str(uuid.UUID(token)) == token
    assert (order["CreditCardNumber"], order["CardType"]) == ("4242", "Visa")
    charge = stripe_client.v1.charges.retrieve(order["TransactionId"])
    assert (charge.status, charge.captured, charge.paid) == ("succeeded", False, True)
    assert (charge.amount, charge.currency, charge.payment_intent) == (4250, "usd", None)
    assert charge.description == f"Order {number}"
    assert charge.metadata.to_dict() == {"OrderNumber": number}
    events = stripe_client.v1.events.list({"type": "charge.succeeded"}).data
    assert charge.id in [e.data.object.id for e in events]
    # The authorization is real: the platform (or the payment app) can capture it.
    captured = stripe_client.v1.charges.capture(charge.id)
    assert (captured.captured, captured.amount_captured) == (True, 4250)
    assert stripe_client.v1.events.list({"type": "charge.captured"}).data[0].data.object.id == (
        charge.id
    )


def test_both_gateway_settings_authorize_and_the_default_card_is_visa(shop, stripe_client):
    """znode-api.md §9.1: settings 7 (STRIPE_CC) and 8 (STRIPE_CC_AUTH) are both the stock
    Stripe gateway: both authorize at checkout (capture=false), with the card the shopper
    typed (a token too) or, in the sandbox, pm_card_visa when a test names none."""
    default = shop.place_order(total="12.00")
    assert default["PaymentSettingId"] == STRIPE_PAYMENT_SETTING_ID
    assert default["CreditCardNumber"] == "4242"
    assert stripe_client.v1.charges.retrieve(default["TransactionId"]).captured is False
    token = shop.place_order(
        total="30.00", card="tok_mastercard", payment_setting_id=STRIPE_AUTHORIZE_SETTING_ID
    )
    assert (token["CreditCardNumber"], token["CardType"]) == ("4444", "MasterCard")
    charge = stripe_client.v1.charges.retrieve(token["TransactionId"])
    assert (charge.amount, charge.captured, charge.source.object) == (3000, False, "card")


def test_a_declined_card_places_no_order(zn, stripe_client):
    """znode-api.md §9.1: the order is saved only after the payment app's authorization
    succeeded; a declined card leaves no order (the storefront shows the decline; the
    sandbox answers 402 with the decline) and a failed charge in Stripe."""
    response = checkout(zn, card="pm_card_chargeDeclinedInsufficientFunds")
    assert response.status_code == 402
    data = response.json()
    assert data["decline_code"] == "insufficient_funds" and data["error"]
    assert len(zn.raw_state()["orders"]) == SEEDED_ORDERS
    assert len(zn.ok("orders/list")["OrderList"]["Orders"]) == SEEDED_ORDERS
    failed = stripe_client.v1.charges.retrieve(data["charge"])
    assert (failed.status, failed.failure_code) == ("failed", "card_declined")
    assert [e.data.object.id for e in stripe_client.v1.events.list({"type": "charge.failed"})] == [
        failed.id
    ]


@pytest.mark.parametrize(
    ("setting", "display"),
    [
        (LINK_PAYMENT_SETTING_ID, "Pay by Stripe link"),
        (SAVED_PAYMENT_SETTING_ID, "Stripe saved card"),
    ],
)
def test_settings_without_a_gateway_charge_nothing(zn, stripe_client, setting, display):
    """znode-api.md §9.1: only a setting with a gateway is collected by the payment app.
    Settings 10 STRIPE_LINK and 11 STRIPE_SAVED (credit card type, no gateway) place the
    order "Pending" with no TransactionId and no PaymentTransactionToken: the platform
    collects."""
    before = len(stripe_client.v1.charges.list({"limit": 100}).data)
    response = checkout(zn, payment_setting_id=setting, card="pm_card_visa")
    assert response.status_code == 201
    placed = body(response)["Order"]
    order = zn.order(placed["OmsOrderId"])
    assert (order["TransactionId"], order["PaymentTransactionToken"]) == (None, None)
    assert order["PaymentStatus"] == "Pending" and order["PaymentType"] == "Credit Card"
    assert order["PaymentDisplayName"] == display and order["CreditCardNumber"] is None
    assert len(stripe_client.v1.charges.list({"limit": 100}).data) == before


def test_dictated_ids_win_and_charge_nothing(zn, stripe_client):
    """Sandbox knob (not a reference fact): ``transaction_id`` / ``payment_token`` on the
    test checkout store odd data as given and create no charge."""
    before = len(stripe_client.v1.charges.list({"limit": 100}).data)
    order = body(checkout(zn, transaction_id="pi_odd", payment_token="pm_card_visa"))["Order"]
    assert (order["TransactionId"], order["PaymentTransactionToken"]) == ("pi_odd", "pm_card_visa")
    assert len(stripe_client.v1.charges.list({"limit": 100}).data) == before


def test_seeded_open_card_orders_have_real_authorizations(zn, stripe_client):
    """znode-api.md §9.1 applied to the seed: every seeded open order on the Stripe gateway
    has a real authorized charge of its total; closed historical orders (shipped, canceled,
    returned) keep made-up ``ch_sbx_`` ids."""
    for order_id in (101, 105, 108, 111):
        order = zn.order(order_id)
        charge = stripe_client.v1.charges.retrieve(order["TransactionId"])
        exponent = 0 if order["CurrencyCode"] == "JPY" else 2
        assert charge.amount == int(order["Total"] * 10**exponent)
        assert (charge.captured, charge.currency) == (False, order["CurrencyCode"].lower())
    assert zn.order(102)["TransactionId"] == "ch_sbx_000002"
    for order_id in (109, 110):  # no-gateway settings: nothing in Stripe
        assert zn.order(order_id)["TransactionId"] is None


# --- 5. the store clock -------------------------------------------------------------------
def _age(text: str, zone: str) -> float:
    local = datetime.now(ZoneInfo(zone)).replace(tzinfo=None)
    return abs((local - datetime.fromisoformat(text)).total_seconds())


def test_dates_are_store_local_without_offset(zn, shop, stripe_client):
    """znode-api.md §2.2: dates are Newtonsoft ISO strings without offset in server-local
    time. The sandbox store runs on America/Chicago (knob ``timezone``), never UTC; Stripe
    stays on unix time."""
    assert STORE_TIMEZONE == "America/Chicago"
    placed = shop.place_order(total="15.00")
    order = zn.order(placed["OmsOrderId"])
    for field in ("OrderDate", "OrderModifiedDate", "CreatedDate"):
        text = order[field]
        assert "+" not in text and not text.endswith("Z")
        assert _age(text, STORE_TIMEZONE) < 60, field
    utc_now = datetime.now(UTC).replace(tzinfo=None)
    assert abs((utc_now - datetime.fromisoformat(order["OrderDate"])).total_seconds()) > 3600
    charge = stripe_client.v1.charges.retrieve(order["TransactionId"])
    assert abs(charge.created - time.time()) < 60
    zn.config(timezone="Asia/Tokyo")
    tokyo = zn.order(body(checkout(zn))["Order"]["OmsOrderId"])
    assert _age(tokyo["OrderDate"], "Asia/Tokyo") < 60
    assert zn.test("POST", "config", {"timezone": "Mars/Olympus"}).status_code == 400


def test_client_dates_without_offset_are_store_local(zn):
    """znode-api.md §2.2 and §3.2: a filter value without offset is read as store-local
    time (the server's DateTime.Parse); one with an offset is converted to the store's
    clock first. 2030-01-15 is winter: Chicago is UTC-6."""
    placed = body(checkout(zn, order_date="2030-01-15T10:30:00"))["Order"]
    number = placed["OrderNumber"]
    assert zn.order(placed["OmsOrderId"])["OrderDate"] == "2030-01-15T10:30:00"

    def found(value: str) -> bool:
        response = zn.get(f"orders/list?filter=orderdate~ge~{value}")
        return response.status_code == 200 and number in numbers(body(response))

    assert found("2030-01-15T10:30:00")  # no offset: store-local
    assert found("2030-01-15T16:30:00Z")  # = 10:30 in Chicago
    assert not found("2030-01-15T16:31:00Z")  # = 10:31
    assert found("2030-01-15T10:31:00%2B00:00")  # = 04:31 in Chicago
    assert not found("2030-01-15T10:31:00-06:00")  # = 10:31
    assert found("2030-01-15T11:30:00-05:00")  # = 10:30
    payment = {
        "OmsOrderId": placed["OmsOrderId"],
        "TransactionReference": "ch_tz",
        "Total": "10",
        "TransactionStatus": "Captured",
        "TransactionDate": "2030-01-15T18:00:00Z",
        "PaymentSettingId": STRIPE_PAYMENT_SETTING_ID,
    }
    assert zn.post("order/saveorderpaymentdetail", payment).json()["IsSuccess"] is True
    row = zn.order(placed["OmsOrderId"])["PaymentHistoryList"]["PaymentHistoryList"][0]
    assert row["TransactionDate"] == "2030-01-15T12:00:00"  # stored on the store's clock


# --- 6. minute precision ------------------------------------------------------------------
def test_orderdate_filters_compare_at_minute_precision(zn):
    """znode-api.md §3.2 ("``orderdate`` (compared at minute precision)") and §12. Rule
    (the reference's words read literally; the stricter reading for a poller): both sides
    are truncated to the minute before comparing: the filter value's seconds are dropped
    and the column is compared at minute precision. So ``orderdate~ge~12:34:56`` *does*
    return an order placed at 12:34:10 (both 12:34), ``gt`` skips the whole minute 12:34,
    ``lt`` 12:34:59 excludes 12:34:10, and ``eq`` matches the whole minute. A poller that
    keeps a seconds-precise watermark must re-read its last minute and de-duplicate."""
    made = {
        stamp: body(checkout(zn, order_date=f"2031-03-03T{stamp}"))["Order"]["OrderNumber"]
        for stamp in ("12:33:59", "12:34:10", "12:34:59", "12:35:00")
    }

    def select(op: str, value: str) -> set[str]:
        rows = zn.get(f"orders/list?filter=orderdate~{op}~2031-03-03T{value}")
        found = numbers(body(rows)) if rows.status_code == 200 else set()
        return {stamp for stamp, n in made.items() if n in found}

    assert select("ge", "12:34:56") == {"12:34:10", "12:34:59", "12:35:00"}
    assert select("gt", "12:34:56") == {"12:35:00"}
    assert select("le", "12:34:01") == {"12:33:59", "12:34:10", "12:34:59"}
    assert select("lt", "12:34:59") == {"12:33:59"}
    assert select("eq", "12:34:30") == {"12:34:10", "12:34:59"}
    window = zn.ok(
        "orders/list?filter=DateTimeRange~bw~'03/03/2031 12:34 PM' AND '03/03/2031 12:34 PM'"
    )
    assert {s for s, n in made.items() if n in numbers(window)} == {"12:34:10", "12:34:59"}


# --- 7. returns -----------------------------------------------------------------------------
def _open_return(zn) -> str:
    rows = zn.ok("rmareturn/list?filter=ordernumber~eq~sbx-000011")["ReturnList"]["Returns"]
    return rows[0]["ReturnNumber"]


def test_return_details_carry_line_items_only_with_their_expand(zn):
    """znode-api.md §5.1 (``rmareturn/getreturndetails/{returnNumber}``): ReturnLineItems is
    null unless ``expand=returnitemlist`` (RMAReturnService.GetReturnDetails); the notes
    likewise need ``returnnotes`` (same method; the reference is silent on notes)."""
    number = _open_return(zn)
    bare = zn.ok(f"rmareturn/getreturndetails/{number}")["Return"]
    assert bare["ReturnLineItems"] is None and bare["ReturnNotes"] is None
    assert bare["ReturnNumber"] == number and bare["ReturnStatus"] == "Submitted"
    full = zn.ok(f"rmareturn/getreturndetails/{number}?expand=returnitemlist,returnnotes")
    items = full["Return"]["ReturnLineItems"]
    assert [x["Sku"] for x in items] == ["SBX-STICKER-PACK"]
    assert [n["Notes"] for n in full["Return"]["ReturnNotes"]] == ["Wrong colour"]
    only_items = zn.ok(f"rmareturn/getreturndetails/{number}?expand=ReturnItemList")["Return"]
    assert only_items["ReturnLineItems"] and only_items["ReturnNotes"] is None


@pytest.mark.parametrize("lines", [None, [], "absent"])
def test_save_return_without_line_items_is_a_null_model_error(zn, lines):
    """znode-api.md §5.1 (``rmareturn/saveorderreturn``) and §2.2 (ErrorCode 1 NullModel):
    a model whose ReturnLineItems is null or empty is refused with 500 ``HasError`` and
    ErrorCode 1 before anything else, for an update (here: the model read without
    ``returnitemlist``, re-posted as approved) and a create alike; nothing changes."""
    number = _open_return(zn)
    model = {
        **zn.ok(f"rmareturn/getreturndetails/{number}")["Return"],
        "RmaReturnStateId": 50,
        "IsAdminRequest": True,
    }
    create = {"OrderNumber": "SBX-000001", "PortalId": 1, "UserId": 11, "IsSubmitReturn": True}
    for payload in (model, create):
        payload = dict(payload)
        if lines == "absent":
            payload.pop("ReturnLineItems", None)
        else:
            payload["ReturnLineItems"] = lines
        response = zn.post("rmareturn/saveorderreturn", payload)
        assert response.status_code == 500
        data = body(response)
        assert data["HasError"] is True and data["ErrorCode"] == 1
        assert set(data) >= BASE_FIELDS
    after = zn.ok(f"rmareturn/getreturndetails/{number}")["Return"]
    assert after["ReturnStatus"] == "Submitted" and after["ModifiedDate"] == model["ModifiedDate"]
    assert len(zn.raw_state()["returns"]) == 2


# --- 8. whole-row writes ----------------------------------------------------------------------
def test_address_update_replaces_the_whole_row(zn):
    """znode-api.md §6 and §12: ``PUT customer/updatecustomeraddress`` writes every column
    from the posted model (an omitted field becomes null), answers 201, and clears the
    other addresses' default flags when this one is made default."""
    response = zn.put(
        "customer/updatecustomeraddress",
        {"AddressId": 202, "UserId": 11, "CityName": "Berkeley", "IsDefaultBilling": True},
    )
    assert response.status_code == 201 and "Address" in body(response)
    rows = {
        a["AddressId"]: a for a in zn.ok("customer/addresslist?filter=userid~eq~11")["AddressList"]
    }
    replaced = rows[202]
    assert replaced["CityName"] == "Berkeley" and replaced["IsDefaultBilling"] is True
    for field in ("Address1", "PostalCode", "FirstName", "LastName", "StateName", "CountryName"):
        assert replaced[field] is None, field
    assert replaced["IsDefaultShipping"] is False  # omitted bool: false
    assert rows[201]["IsDefaultBilling"] is False  # the other default was cleared
    assert rows[201]["Address1"] == "12 Market St"  # and nothing else of it


def test_customer_update_replaces_the_whole_row(zn):
    """znode-api.md §6 and §12: ``PUT customeraccount/update`` writes every user column
    from the posted model (omitted: null) and echoes the posted model."""
    response = zn.put(
        "customeraccount/update", {"UserId": 12, "Email": "bob@example.com", "FirstName": "Rob"}
    )
    assert response.status_code == 200
    echo = body(response)["User"]
    assert echo["FirstName"] == "Rob" and echo["LastName"] is None
    stored = zn.ok("useraccounts/12/1?cache=refresh")["User"]
    assert stored["FirstName"] == "Rob"
    assert (stored["LastName"], stored["PhoneNumber"]) == (None, None)
    assert stored["UserName"] == "bob@example.com"  # AspNetUsers, not the ZnodeUser row
    assert stored["Addresses"] is None  # useraccounts never lists addresses


# --- 9. token mode ----------------------------------------------------------------------------
def test_token_mode(zn, sandbox):
    """znode-api.md §1.2 and §1.1: ``GET token/generatetoken`` with the Basic header answers
    ``{"Response": "<token>"}``; with token auth on every other call without a valid
    ``Token`` header is 401 ErrorCode 32, "Token is invalid" (missing or unknown; the
    reference names only the expired message, the sandbox adds this one) or "Token is
    expired"; the Basic header is still required."""
    zn.config(token_auth=True, api_token_ttl=600)
    generated = zn.get("token/generatetoken")  # needs Basic, not a Token
    assert generated.status_code == 200
    token = body(generated)["Response"]
    assert isinstance(token, str) and token
    for headers in ({}, {"Token": "not-a-token"}):
        refused = zn.get("orders/list", headers=headers)
        assert refused.status_code == 401
        data = body(refused)
        assert (data["ErrorCode"], data["ErrorMessage"]) == (32, "Token is invalid")
        assert set(data) >= BASE_FIELDS
    assert zn.get("orders/list", headers={"Token": token}).status_code == 200
    no_basic = requests.get(
        f"{zn.base}/orders/list", headers={"Token": token}, timeout=10
    )  # Basic still checked
    assert no_basic.status_code == 401
    assert requests.get(f"{zn.base}/token/generatetoken", timeout=10).status_code in (401, 404)
    zn.config(api_token_ttl=0.2)
    short = body(zn.get("token/generatetoken"))["Response"]
    time.sleep(0.3)
    expired = body(zn.get("orders/list", headers={"Token": short}))
    assert (expired["ErrorCode"], expired["ErrorMessage"]) == (32, "Token is expired")
