"""Znode sandbox: customers (UserModel), addresses and RMA returns."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.sandbox.test_znode_helpers import Zn, body


def user(zn: Zn, user_id: int) -> dict:
    return zn.ok(f"useraccounts/{user_id}/1?cache=refresh")["User"]


def addresses(zn: Zn, user_id: int) -> dict[int, dict]:
    data = zn.ok(f"customer/addresslist?filter=userid~eq~{user_id}&cache=refresh")
    return {a["AddressId"]: a for a in data["AddressList"]}


# --- users -------------------------------------------------------------------------------
def test_user_account_has_null_addresses(sandbox):
    zn = Zn(sandbox)
    data = zn.ok("useraccounts/11/1")
    assert set(data) >= {"User", "UserPortal", "ErrorCode", "HasError"}
    alice = data["User"]
    assert alice["UserId"] == 11 and alice["Email"] == "alice@example.com"
    assert alice["FirstName"] == "Alice" and alice["StoreName"] == "Sandbox Store"
    assert alice["Addresses"] is None  # the pitfall: use customer/addresslist
    same = zn.ok("users/getcustomeraccountdetails/11")["User"]
    assert same["UserName"] == alice["UserName"]
    assert zn.get("useraccounts/999/1").status_code == 204


def test_customer_list_filters_and_paging(sandbox):
    zn = Zn(sandbox)
    data = zn.ok("customeraccount/list/0?page=index~1,size~2&sort=userid~asc")
    assert [u["UserId"] for u in data["Users"]] == [11, 12]
    assert (data["TotalResults"], data["TotalPages"]) == (5, 3)
    bob = zn.ok("customeraccount/list/0?filter=email~eq~BOB@example.com")["Users"]
    assert [u["UserId"] for u in bob] == [12]
    outlet = zn.ok("customeraccount/list/0?filter=portalid~eq~2")["Users"]
    assert sorted(u["UserId"] for u in outlet) == [14, 15]
    assert zn.get("customeraccount/list/0?filter=email~eq~nobody").status_code == 204


def test_customer_update_replaces_the_whole_row(sandbox):
    zn = Zn(sandbox)
    response = zn.put("customeraccount/update", {"UserId": 11, "FirstName": "Alicia"})
    assert response.status_code == 200
    echo = body(response)["User"]
    assert echo["FirstName"] == "Alicia" and echo["Email"] is None  # the posted model
    assert echo["LastName"] is None and echo["UserName"] is None
    stored = user(zn, 11)
    assert stored["FirstName"] == "Alicia"
    assert stored["Email"] is None and stored["LastName"] is None  # omitted -> null
    assert stored["PhoneNumber"] is None and stored["CompanyName"] is None
    assert stored["UserName"] == "alice@example.com"  # AspNetUsers: untouched


def test_customer_read_modify_write_keeps_everything(sandbox):
    zn = Zn(sandbox)
    current = user(zn, 12)
    current["PhoneNumber"] = "555-9999"
    current["ExternalId"] = "ERP-CUST-12"
    assert zn.put("customeraccount/update", current).status_code == 200
    stored = user(zn, 12)
    assert stored["PhoneNumber"] == "555-9999" and stored["ExternalId"] == "ERP-CUST-12"
    assert stored["Email"] == "bob@example.com" and stored["LastName"] == "Brown"


def test_customer_update_errors_change_nothing(sandbox):
    zn = Zn(sandbox)
    missing = zn.put("customeraccount/update", {"UserId": 999, "FirstName": "X"})
    assert missing.status_code == 500 and missing.content == b""
    zero = zn.put("customeraccount/update", {"FirstName": "X"})
    assert zero.status_code == 500 and body(zero)["ErrorCode"] == 8
    assert user(zn, 11)["FirstName"] == "Alice"


# --- addresses ---------------------------------------------------------------------------
def test_address_list(sandbox):
    zn = Zn(sandbox)
    data = zn.ok("customer/addresslist?filter=userid~eq~11")
    assert data["CustomerName"] == "Alice Anderson"
    assert [a["AddressId"] for a in data["AddressList"]] == [201, 202]
    assert data["AddressList"][0]["IsDefaultBilling"] is True
    assert data["AddressList"][1]["IsDefaultShipping"] is True
    assert data["TotalResults"] == 2
    assert zn.get("customer/addresslist?filter=userid~eq~999").status_code == 204


def test_update_address_clears_other_default_flags_and_answers_201(sandbox):
    zn = Zn(sandbox)
    shipping = addresses(zn, 11)[202]
    shipping["IsDefaultBilling"] = True
    shipping["Address2"] = "Suite 5"
    response = zn.put("customer/updatecustomeraddress", shipping)
    assert response.status_code == 201
    assert body(response)["Address"]["Address2"] == "Suite 5"
    rows = addresses(zn, 11)
    # both flags set in the model -> every other address loses both defaults
    assert rows[201]["IsDefaultBilling"] is False and rows[201]["IsDefaultShipping"] is False
    assert rows[202]["IsDefaultBilling"] is True and rows[202]["IsDefaultShipping"] is True
    assert rows[202]["Address2"] == "Suite 5"


def test_update_address_billing_only_and_whole_row_replace(sandbox):
    zn = Zn(sandbox)
    partial = {"AddressId": 202, "UserId": 11, "Address1": "9 Pier", "IsDefaultBilling": True}
    assert zn.put("customer/updatecustomeraddress", partial).status_code == 201
    rows = addresses(zn, 11)
    assert rows[201]["IsDefaultBilling"] is False and rows[201]["IsDefaultShipping"] is False
    assert rows[202]["Address1"] == "9 Pier"
    assert rows[202]["CityName"] is None  # omitted -> null
    assert rows[202]["IsDefaultShipping"] is False  # omitted bool -> false
    assert rows[202]["UserId"] == 11


def test_update_address_errors(sandbox):
    zn = Zn(sandbox)
    assert zn.put("customer/updatecustomeraddress", {"AddressId": 0}).status_code == 500
    unknown = zn.put("customer/updatecustomeraddress", {"AddressId": 9999, "UserId": 11})
    assert unknown.status_code == 500
    assert addresses(zn, 11)[201]["IsDefaultBilling"] is True


def test_create_address(sandbox):
    zn = Zn(sandbox)
    new = {
        "UserId": 12,
        "FirstName": "Bob",
        "LastName": "Brown",
        "Address1": "1 Lake Rd",
        "CityName": "Dallas",
        "StateName": "TX",
        "PostalCode": "75201",
        "CountryName": "US",
        "IsDefaultShipping": True,
        "IsActive": True,
    }
    response = zn.post("customer/createcustomeraddress", new)
    assert response.status_code == 201 and "Location" in response.headers
    created = body(response)["Address"]
    assert created["AddressId"] > 206 and created["CityName"] == "Dallas"
    rows = addresses(zn, 12)
    assert rows[203]["IsDefaultShipping"] is False and rows[203]["IsDefaultBilling"] is True
    assert rows[created["AddressId"]]["IsDefaultShipping"] is True
    bad = zn.post("customer/createcustomeraddress", {"UserId": 999, "Address1": "x"})
    assert bad.status_code == 500
    assert len(addresses(zn, 12)) == 2


# --- returns -----------------------------------------------------------------------------
def test_return_states(sandbox):
    states = Zn(sandbox).ok("rmareturn/getreturnstatuslist")["ReturnStates"]
    assert {s["RmaReturnStateId"]: s["ReturnStateName"] for s in states} == {
        10: "Submitted",
        20: "Not Submitted",
        30: "In Review",
        40: "Received",
        50: "Approved",
        60: "Rejected",
        70: "Partially Approved",
        80: "Refund Processed",
    }


def test_return_list_and_details(sandbox):
    zn = Zn(sandbox)
    data = zn.ok("rmareturn/list")
    returns = data["ReturnList"]["Returns"]
    assert [r["OrderNumber"] for r in returns] == ["SBX-000011", "SBX-000004"]
    assert data["TotalResults"] == data["ReturnList"]["TotalResults"] == 2
    assert returns[1]["ReturnStatus"] == "Refund Processed" and returns[1]["IsRefundProcess"]
    assert returns[0]["ReturnLineItems"] is None
    filtered = zn.ok("rmareturn/list?filter=returnstatus~eq~submitted")["ReturnList"]["Returns"]
    assert [r["OrderNumber"] for r in filtered] == ["SBX-000011"]
    assert zn.get("rmareturn/list?filter=ordernumber~eq~sbx-000001").status_code == 204
    bare = zn.ok(f"rmareturn/getreturndetails/{returns[1]['ReturnNumber']}")["Return"]
    assert bare["ReturnLineItems"] is None and bare["ReturnNotes"] is None  # expand-only
    detail = zn.ok(
        f"rmareturn/getreturndetails/{returns[1]['ReturnNumber']}?expand=returnitemlist"
    )["Return"]
    assert detail["ReturnLineItems"][0]["Sku"] == "SBX-BOTTLE-750"
    assert detail["ReturnLineItems"][0]["ReturnedQuantity"] == 2
    assert detail["ReturnHistoryAndNotesList"][0]["TransactionId"] == "re_sbx_000004"
    assert detail["TotalReturnAmount"] == Decimal("38.97")
    assert zn.get("rmareturn/getreturndetails/NOPE").status_code == 204


def test_save_order_return_creates_and_processes_a_refund(sandbox):
    zn = Zn(sandbox)
    line = zn.order(101)["OrderLineItems"][0]
    response = zn.post(
        "rmareturn/saveorderreturn",
        {
            "OrderNumber": "SBX-000001",
            "PortalId": 1,
            "UserId": 11,
            "IsSubmitReturn": True,
            "Notes": "Too small",
            "ReturnLineItems": [
                {"OmsOrderLineItemsId": line["OmsOrderLineItemsId"], "ExpectedReturnQuantity": 1}
            ],
        },
    )
    assert response.status_code == 200
    created = body(response)["Return"]
    assert created["ReturnStatus"] == "Submitted" and created["OrderNumber"] == "SBX-000001"
    assert created["SubTotal"] == Decimal("24.5") and created["TotalExpectedReturnQuantity"] == 1
    assert created["TotalReturnAmount"] == created["SubTotal"] + created["ReturnTaxCost"]
    assert zn.order(101)["IsInRMA"] is True
    history = zn.post(
        "rmareturn/createreturnhistory",
        [
            {
                "RmaReturnDetailsId": created["RmaReturnDetailsId"],
                "TransactionId": "re_42",
                "ReturnAmount": -26.54,
                "Message": "Refunded",
            }
        ],
    )
    assert history.json()["IsSuccess"] is True
    processed = zn.post(
        "rmareturn/saveorderreturn",
        {
            "ReturnNumber": created["ReturnNumber"],
            "IsRefundProcess": True,
            "IsAdminRequest": True,
            "ReturnLineItems": created["ReturnLineItems"],
        },
    )
    done = body(processed)["Return"]
    assert done["RmaReturnStateId"] == 80 and done["ReturnStatus"] == "Refund Processed"
    assert done["ReturnLineItems"][0]["ReturnedQuantity"] == 1
    assert any(h["TransactionId"] == "re_42" for h in done["ReturnHistoryAndNotesList"])
    listed = zn.ok("rmareturn/list?filter=ordernumber~eq~SBX-000001")["ReturnList"]["Returns"]
    assert [r["ReturnNumber"] for r in listed] == [created["ReturnNumber"]]


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"OrderNumber": "SBX-000003"}, 500, 301),  # canceled
        ({"OrderNumber": "SBX-000001", "quantity": 3}, 500, 5),  # more than ordered
        ({"OrderNumber": "SBX-999999"}, 500, 5),
        ({"OrderNumber": "SBX-000001", "UserId": 12}, 500, 301),  # someone else's order
        ({"OrderNumber": None}, 400, None),
        ({"OrderNumber": "SBX-000001", "lines": []}, 500, 1),  # NullModel
        ({"OrderNumber": "SBX-000001", "lines": None}, 500, 1),
    ],
)
def test_save_order_return_refusals_store_nothing(sandbox, payload, status, code):
    zn = Zn(sandbox)
    line_id = zn.order(101)["OrderLineItems"][0]["OmsOrderLineItemsId"]
    lines = payload.pop(
        "lines",
        [{"OmsOrderLineItemsId": line_id, "ExpectedReturnQuantity": payload.pop("quantity", 1)}],
    )
    request = {"PortalId": 1, "IsSubmitReturn": True, "ReturnLineItems": lines, **payload}
    response = zn.post("rmareturn/saveorderreturn", request)
    assert response.status_code == status
    data = body(response)
    assert data["HasError"] is True
    if code is not None:
        assert data["ErrorCode"] == code
    assert len(zn.raw_state()["returns"]) == 2


def test_return_history_needs_a_known_return(sandbox):
    zn = Zn(sandbox)
    response = zn.post(
        "rmareturn/createreturnhistory",
        [{"RmaReturnDetailsId": 9999, "TransactionId": "x", "ReturnAmount": 1}],
    )
    assert response.status_code == 500
    assert len(zn.raw_state()["return_history"]) == 1


def test_return_state_change_by_reposting_the_model(sandbox):
    zn = Zn(sandbox)
    number = zn.ok("rmareturn/list?filter=ordernumber~eq~sbx-000011")["ReturnList"]["Returns"][0][
        "ReturnNumber"
    ]
    current = zn.ok(f"rmareturn/getreturndetails/{number}?expand=returnitemlist,returnnotes")[
        "Return"
    ]
    notes_before = len(current["ReturnNotes"])
    model = {**current, "RmaReturnStateId": 50, "IsAdminRequest": True}
    response = zn.post("rmareturn/saveorderreturn", model)
    assert response.status_code == 200
    updated = body(response)["Return"]
    assert updated["ReturnStatus"] == "Approved"
    assert [x["ReturnStatus"] for x in updated["ReturnLineItems"]] == ["Approved"]
    assert len(updated["ReturnNotes"]) == notes_before  # the echoed note is not re-added
    bad = zn.post("rmareturn/saveorderreturn", {**model, "RmaReturnStateId": 999})
    assert bad.status_code == 500
    assert zn.ok(f"rmareturn/getreturndetails/{number}")["Return"]["ReturnStatus"] == "Approved"
    unknown = zn.post(
        "rmareturn/saveorderreturn",
        {"ReturnNumber": "SBX-RMA-999999", "ReturnLineItems": current["ReturnLineItems"]},
    )
    assert unknown.status_code == 500 and body(unknown)["ErrorCode"] == 5


# --- what the customer poller sends (§2.3, §6, §12) ------------------------------------------
def test_customer_list_takes_the_poller_s_filters_and_sort(sandbox):
    zn = Zn(sandbox)
    after = zn.ok("customeraccount/list/0?filter=userid~gt~12&sort=userid~asc&page=index~1,size~2")
    assert [u["UserId"] for u in after["Users"]] == [13, 14]
    assert (after["TotalResults"], after["TotalPages"]) == (3, 2)
    zn.test("POST", "customers/14/update", {"PhoneNumber": "555-1414"})
    stamp = user(zn, 14)["ModifiedDate"]
    since = zn.ok(f"customeraccount/list/0?filter=modifieddate~ge~{stamp[:16]},userid~gt~0")
    assert [u["UserId"] for u in since["Users"]] == [14]
    assert zn.get("customeraccount/list/0?filter=userid~gt~15").status_code == 204


def test_address_list_filters_and_sorts_the_user_address_links(sandbox):
    """§6: customer/addresslist filters on ZnodeUserAddress (UserAddressId, UserId,
    AddressId, audit columns): its ModifiedDate is the date the address was added to
    the user, which an address update does not move. Another column is an unknown
    filter column: 500 (§12)."""
    zn = Zn(sandbox)
    old = addresses(zn, 11)[201]
    old["CityName"] = "Berkeley"
    assert zn.put("customer/updatecustomeraddress", old).status_code == 201
    edited = addresses(zn, 11)[201]
    assert edited["ModifiedDate"] > edited["CreatedDate"]  # the row's own date moved
    day = edited["ModifiedDate"][:10]
    assert zn.get(f"customer/addresslist?filter=modifieddate~ge~{day}").status_code == 204
    new = {"UserId": 11, "Address1": "7 Bay St", "CityName": "Oakland", "IsActive": True}
    created = body(zn.post("customer/createcustomeraddress", new))["Address"]
    listed = zn.ok(
        f"customer/addresslist?filter=modifieddate~ge~{day}&sort=modifieddate~asc,addressid~asc"
    )
    assert [a["AddressId"] for a in listed["AddressList"]] == [created["AddressId"]]
    assert listed["AddressList"][0]["CityName"] == "Oakland"  # the address row, as stored
    several = zn.ok("customer/addresslist?filter=userid~in~14^11&page=index~2,size~2")
    # 201, 202 (Alice), 205 (Dieter), then Alice's new one: by AddressId.
    assert [a["AddressId"] for a in several["AddressList"]] == [205, created["AddressId"]]
    assert (several["TotalResults"], several["TotalPages"]) == (4, 2)
    linked = zn.ok(f"customer/addresslist?filter=useraddressid~eq~{created['UserAddressId']}")
    assert [a["AddressId"] for a in linked["AddressList"]] == [created["AddressId"]]
    unknown = zn.get("customer/addresslist?filter=cityname~eq~oakland")
    assert unknown.status_code == 500 and body(unknown)["HasError"] is True
