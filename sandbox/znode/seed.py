"""The seeded Znode database: stores and API keys, state vocabularies, payment
settings, customers with addresses, orders in many states, notes, payments, returns.

Ids are deterministic; dates are relative to the moment of the (re)seed so a poller
sees recent activity, written in the store's time zone (``STORE_TIMEZONE``, knob
``timezone``) without an offset, as Znode writes them (znode-api.md §2.2). Known ids of the
real seed (order states 10..60, 200; return states 10..80) are kept; ids the real seed does
not tell us are obviously made up (order states 1001+, payment states) so a client must
read them from the list routes.

Payment settings: 7 ``STRIPE_CC`` and 8 ``STRIPE_CC_AUTH`` are the stock Stripe gateway
(GatewayCode "stripe"): at checkout Znode's payment application authorizes a Stripe charge
(legacy Charges API, ``capture=false``) with the secret key of the setting's gateway login,
and the order carries ``TransactionId`` = that charge id and ``PaymentTransactionToken`` =
the payment application's transaction GUID (znode-api.md §9.1). 10 ``STRIPE_LINK`` and 11
``STRIPE_SAVED`` have no gateway: nothing is charged at checkout, the order is "Pending"
with neither id, and the platform collects the payment itself. 2 is a purchase order, 9
cash on delivery.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sandbox.znode.wire import DEFAULT_TIMEZONE, fmt_date, now

# --- credentials -----------------------------------------------------------------------
STORE_DOMAIN = "sandbox-store.local"
STORE_KEY = "8f3b2c1e-5d4a-4b6e-9c7f-0a1b2c3d4e5f"
OUTLET_DOMAIN = "sandbox-outlet.local"
OUTLET_KEY = "c4d9e8f7-1a2b-4c3d-8e5f-6a7b8c9d0e1f"
RETIRED_DOMAIN = "retired-store.local"  # IsActive false: its key is refused
RETIRED_KEY = "00000000-dead-4bee-8f00-000000000000"
OAUTH_CLIENT_ID = "sandbox-client"
OAUTH_CLIENT_SECRET = "sandbox-secret"
OAUTH_SCOPES = ["znode.api"]
STRIPE_PAYMENT_SETTING_ID = 7
STRIPE_AUTHORIZE_SETTING_ID = 8
LINK_PAYMENT_SETTING_ID = 10  # "Pay by Stripe link": no gateway charge at checkout
SAVED_PAYMENT_SETTING_ID = 11  # "Stripe saved card": no gateway charge at checkout
PURCHASE_ORDER_SETTING_ID = 2
COD_SETTING_ID = 9
# The Stripe secret key in the gateway login of settings 7 and 8 (the sandbox Stripe
# accepts any sk_test_ key).
PAYMENT_APP_STRIPE_KEY = "sk_test_sandbox_znode_payapp"
STORE_TIMEZONE = DEFAULT_TIMEZONE  # the IIS server's local time zone (dates have no offset)

DEFAULT_CONFIG: dict[str, Any] = {
    "cache_seconds": 60.0,  # GET cache lifetime (0 disables the cache)
    "token_ttl": 3600.0,  # OAuth access token lifetime, seconds
    "api_token_ttl": 600.0,  # token/generatetoken lifetime (TokenExpirationTime = 10 min)
    "token_auth": False,  # EnableTokenBasedAuthorization: require a valid Token header too
    "bodiless_error_rate": 0.0,  # share of injected 500s that come without a body
    "payment_history_has_reference": True,  # PaymentHistoryList rows carry TransactionReference
    "timezone": STORE_TIMEZONE,  # the store clock: every Znode date is local time in this zone
}

# --- vocabularies ----------------------------------------------------------------------
# (id, name, description, display order, flags: show, account, edit, email, order, line, quote)
# IsOrderState (znode-api.md §4.1, §3.1): only states with the flag can be set by name with
# orders/updateorderdetailsbyordernumber. 30 RETURNED is not one (post-deploy script);
# 50 PENDING APPROVAL and 60 APPROVED are account/quote approval states, 200 EXPIRED and
# REJECTED / DRAFT / ORDERED are quote states: IsOrderState 0 here (the stricter reading:
# ZLB's post-deploy script sets PENDING APPROVAL's IsOrderState to 1, the reference names
# it an account/approval state; a client must verify the state after writing it anyway).
# IN REVIEW, FAILED, PENDING PAYMENT and PARTIAL REFUND have no known id (§4.1): the
# made-up ids 1001+ stand for a customised store that uses them as order states
# (IsOrderState 1), so a client resolves ids by name from orderstate/list.
_ORDER_STATES = [
    (10, "SUBMITTED", "Submitted", 1, (1, 0, 1, 0, 1, 1, 1)),
    (20, "SHIPPED", "Shipped", 2, (1, 0, 0, 1, 1, 1, 0)),
    (30, "RETURNED", "Returned", 3, (1, 0, 0, 0, 0, 0, 0)),
    (40, "CANCELED", "Canceled", 4, (1, 0, 0, 1, 1, 1, 0)),
    (50, "PENDING APPROVAL", "Pending Approval", 5, (1, 1, 1, 0, 0, 0, 1)),
    (60, "APPROVED", "Approved", 6, (1, 1, 1, 0, 0, 0, 1)),
    (200, "EXPIRED", "Expired", 99, (0, 0, 0, 0, 0, 0, 1)),
    (1001, "IN REVIEW", "In Review", 7, (1, 0, 1, 0, 1, 0, 1)),
    (1002, "FAILED", "Failed", 8, (1, 0, 0, 0, 1, 0, 0)),
    (1003, "PENDING PAYMENT", "Pending Payment", 9, (1, 0, 1, 0, 1, 0, 0)),
    (1004, "REJECTED", "Rejected", 10, (1, 1, 0, 0, 0, 0, 1)),
    (1005, "DRAFT", "Draft", 11, (0, 0, 1, 0, 0, 0, 1)),
    (1006, "ORDERED", "Ordered", 12, (0, 0, 0, 0, 0, 0, 1)),
    # Line-item flag off, as the post-deploy script does for RETURNED and PARTIAL REFUND.
    (1007, "PARTIAL REFUND", "Partial Refund", 13, (1, 0, 0, 0, 1, 0, 0)),
]
_FLAGS = (
    "IsShowToCustomer",
    "IsAccountStatus",
    "IsEdit",
    "IsSendEmail",
    "IsOrderState",
    "IsOrderLineItemState",
    "IsQuoteState",
)

# ZnodeOmsPaymentState is IDENTITY(1,1): these ids are made up on purpose (they match
# neither the ZnodePaymentStatus enum ordinals nor ordinal+1).
_PAYMENT_STATES = [
    (1, "Pending", "Payment is pending"),
    (2, "Authorized", "Payment authorized, not yet captured"),
    (3, "Captured", "Payment captured"),
    (4, "Declined", "Payment declined by the gateway"),
    (5, "Refunded", "Payment refunded"),
    (6, "Voided", "Authorization voided"),
    (7, "Received", "Payment received (purchase order / COD)"),
    (8, "Pending For Review", "Payment held for review"),
]

_RETURN_STATES = [
    (10, "Submitted", 1, 1, 1),
    (20, "Not Submitted", 1, 0, 2),
    (30, "In Review", 1, 1, 3),
    (40, "Received", 1, 1, 4),
    (50, "Approved", 1, 1, 5),
    (60, "Rejected", 1, 1, 6),
    (70, "Partially Approved", 0, 0, 7),
    (80, "Refund Processed", 1, 0, 8),
]

PAYMENT_TYPES = {1: "Credit Card", 2: "Purchase Order", 3: "Paypal Express", 4: "COD"}

_PAYMENT_SETTINGS = [
    # id, code, display name, payment type id, gateway code, gateway login (Stripe key)
    # The stock Stripe gateway: the payment app authorizes a charge at checkout (both).
    (STRIPE_PAYMENT_SETTING_ID, "STRIPE_CC", "Credit Card (Stripe)", 1, "stripe",
     PAYMENT_APP_STRIPE_KEY),
    (STRIPE_AUTHORIZE_SETTING_ID, "STRIPE_CC_AUTH", "Credit Card (Stripe, authorize)", 1,
     "stripe", PAYMENT_APP_STRIPE_KEY),
    (PURCHASE_ORDER_SETTING_ID, "PURCHASE_ORDER", "Purchase Order", 2, None, None),
    (COD_SETTING_ID, "COD", "Cash on Delivery", 4, None, None),
    # No gateway: nothing is charged at checkout, the platform collects the payment.
    (LINK_PAYMENT_SETTING_ID, "STRIPE_LINK", "Pay by Stripe link", 1, None, None),
    (SAVED_PAYMENT_SETTING_ID, "STRIPE_SAVED", "Stripe saved card", 1, None, None),
]  # fmt: skip

PORTALS = {
    1: {"PortalId": 1, "StoreName": "Sandbox Store", "StoreCode": "SBXSTORE"},
    2: {"PortalId": 2, "StoreName": "Sandbox Outlet", "StoreCode": "SBXOUTLET"},
}

PRODUCTS = {
    "SBX-TEE-BLK-M": ("Sandbox Tee, Black, M", "0.35"),
    "SBX-TEE-WHT-L": ("Sandbox Tee, White, L", "0.35"),
    "SBX-MUG-11OZ": ("Sandbox Mug 11oz", "0.60"),
    "SBX-CAP-NVY": ("Sandbox Cap, Navy", "0.20"),
    "SBX-HOODIE-GRY-XL": ("Sandbox Hoodie, Grey, XL", "0.90"),
    "SBX-STICKER-PACK": ("Sandbox Sticker Pack", "0.05"),
    "SBX-BOTTLE-750": ("Sandbox Bottle 750ml", "0.40"),
}


def _users() -> list[dict]:
    # fmt: off
    return [
        # id, first, last, email, phone, portal, company, locale, (address rows)
        dict(id=11, first="Alice", last="Anderson", email="alice@example.com",
             phone="555-0101", portal=1, company="Anderson Designs", addresses=[
                 dict(id=201, line="12 Market St", city="San Francisco", state="CA",
                      zip="94103", country="US", billing=True, shipping=False),
                 dict(id=202, line="400 Mission Blvd", city="Oakland", state="CA",
                      zip="94607", country="US", billing=False, shipping=True),
             ]),
        dict(id=12, first="Bob", last="Brown", email="bob@example.com", phone="555-0102",
             portal=1, company=None, addresses=[
                 dict(id=203, line="77 Elm Ave", city="Austin", state="TX", zip="73301",
                      country="US", billing=True, shipping=True),
             ]),
        dict(id=13, first="Carla", last="Chen", email="carla@example.com", phone="555-0103",
             portal=1, company="Chen & Co", addresses=[
                 dict(id=204, line="5 Harbor Way", city="Seattle", state="WA", zip="98101",
                      country="US", billing=True, shipping=True),
             ]),
        dict(id=14, first="Dieter", last="Drechsler", email="dieter@example.de",
             phone="+49 30 1234567", portal=2, company=None, addresses=[
                 dict(id=205, line="Torstrasse 10", city="Berlin", state="BE", zip="10119",
                      country="DE", billing=True, shipping=True),
             ]),
        dict(id=15, first="Emi", last="Endo", email="emi@example.jp", phone="+81 3 1234 5678",
             portal=2, company=None, addresses=[
                 dict(id=206, line="1-2-3 Shibuya", city="Tokyo", state="13", zip="150-0002",
                      country="JP", billing=True, shipping=True),
             ]),
    ]
    # fmt: on


def user_row(
    uid: int,
    first: str,
    last: str,
    email: str,
    phone: str | None,
    portal: int,
    company: str | None,
    created: str,
    *,
    guest: bool = False,
) -> dict:
    store = PORTALS.get(portal, PORTALS[1])
    return {
        "UserId": uid,
        "AspNetUserId": None if guest else f"a5e1{uid:04d}-0000-4000-8000-{uid:012d}",
        "AspNetZnodeUserId": None if guest else f"z{uid:06d}",
        "UserName": email,
        "Email": email,
        "FirstName": first,
        "LastName": last,
        "MiddleName": None,
        "PhoneNumber": phone,
        "CompanyName": company,
        "ExternalId": None,
        "PortalId": portal,
        "StoreName": store["StoreName"],
        "StoreCode": store["StoreCode"],
        "AccountId": None,
        "Accountname": None,
        "AccountCode": None,
        "ProfileId": 1,
        "RoleId": None,
        "RoleName": "Customer",
        "IsLock": False,
        "EmailOptIn": False,
        "SMSOptIn": False,
        "IsGuestUser": guest,
        "IsWebStoreUser": True,
        "IsAdminUser": False,
        "IsVerified": not guest,
        "IsActive": True,
        "BudgetAmount": None,
        "PerOrderLimit": None,
        "AnnualOrderLimit": None,
        "BillingAccountNumber": None,
        "CustomerPaymentGUID": None,
        "LocaleId": 1,
        "SalesRepId": None,
        "CreatedBy": 0,
        "CreatedDate": created,
        "ModifiedBy": 0,
        "ModifiedDate": created,
    }


def address_row(
    aid: int,
    user: dict,
    line: str,
    city: str,
    state: str,
    zip_code: str,
    country: str,
    billing: bool,
    shipping: bool,
    created: str,
) -> dict:
    return {
        "AddressId": aid,
        "UserAddressId": aid + 1000,
        "UserId": user["UserId"],
        "AccountId": None,
        "AccountAddressId": None,
        "DisplayName": f"{user['FirstName']} {city}",
        "FirstName": user["FirstName"],
        "LastName": user["LastName"],
        "CompanyName": user.get("CompanyName"),
        "Address1": line,
        "Address2": None,
        "Address3": None,
        "CityName": city,
        "StateName": state,
        "StateCode": state,
        "PostalCode": zip_code,
        "CountryName": country,
        "CountryCode": country,
        "PhoneNumber": user.get("PhoneNumber"),
        "Mobilenumber": None,
        "AlternateMobileNumber": None,
        "FaxNumber": None,
        "EmailAddress": user.get("Email"),
        "IsDefaultBilling": billing,
        "IsDefaultShipping": shipping,
        "IsActive": True,
        "IsGuest": False,
        "IsShipping": True,
        "IsBilling": True,
        "ExternalId": None,
        "PortalId": user["PortalId"],
        "CreatedBy": 0,
        "CreatedDate": created,
        "ModifiedBy": 0,
        "ModifiedDate": created,
    }


# Seed orders: (number suffix, user, portal, currency, state id, payment state name,
# payment setting, lines [(sku, qty, unit price)], shipping, tax, age (days, hours,
# minutes, seconds), tracking number, external id)
#
# Payments: the open card orders on the Stripe gateway (1, 5, 8, 11: "Authorized") are
# placed through the payment application like a checkout, so each one has a real
# authorized charge (capture=false) in the sandbox Stripe and its TransactionId is that
# charge's id. The closed gateway orders (2, 3, 4, 6: shipped, canceled, returned) are
# history: their TransactionId ``ch_sbx_00000N`` and refund ids ``re_sbx_00000N`` are
# made up and exist in no Stripe (nothing is left to capture or void on them). Orders 9
# and 10 are on the no-gateway settings (the platform collects: no TransactionId).
# fmt: off
_ORDERS = [
    (1, 11, 1, "USD", 10, "Authorized", 7, [("SBX-TEE-BLK-M", 2, "24.50"),
                                             ("SBX-MUG-11OZ", 1, "12.00")],
     "5.00", "5.08", (0, 2, 14, 37), None, None),
    (2, 12, 1, "USD", 20, "Captured", 7, [("SBX-HOODIE-GRY-XL", 1, "59.00")],
     "7.50", "4.87", (3, 5, 0, 12), "1Z999AA10123456784", "ERP-SO-000102"),
    (3, 13, 1, "USD", 40, "Voided", 7, [("SBX-CAP-NVY", 3, "15.00")],
     "5.00", "3.71", (2, 1, 30, 5), None, None),
    (4, 11, 1, "USD", 30, "Refunded", 7, [("SBX-BOTTLE-750", 2, "18.00")],
     "5.00", "2.97", (9, 0, 0, 44), "9400100000000000000001", "ERP-SO-000104"),
    (5, 14, 2, "EUR", 10, "Authorized", 7, [("SBX-TEE-WHT-L", 2, "22.00"),
                                             ("SBX-STICKER-PACK", 1, "4.50")],
     "6.90", "9.59", (1, 3, 45, 0), None, None),
    (6, 15, 2, "JPY", 20, "Captured", 7, [("SBX-MUG-11OZ", 2, "1800"),
                                           ("SBX-TEE-BLK-M", 1, "3500")],
     "800", "710", (4, 6, 12, 9), "JP1234567890", None),
    (7, 12, 1, "USD", 50, "Pending", 2, [("SBX-HOODIE-GRY-XL", 10, "52.00")],
     "0.00", "42.90", (0, 20, 5, 51), None, None),
    (8, 13, 1, "USD", 1001, "Authorized", 7, [("SBX-TEE-BLK-M", 1, "24.50")],
     "5.00", "2.43", (0, 8, 59, 59), None, None),
    # The platform tried the saved card and was declined.
    (9, 14, 2, "USD", 1002, "Declined", SAVED_PAYMENT_SETTING_ID, [("SBX-CAP-NVY", 1, "15.00")],
     "5.00", "1.65", (0, 6, 1, 2), None, None),
    # Waiting for the shopper to pay the emailed link.
    (10, 15, 2, "USD", 1003, "Pending", LINK_PAYMENT_SETTING_ID, [("SBX-BOTTLE-750", 1, "18.00")],
     "5.00", "1.90", (0, 4, 33, 20), None, None),
    (11, 11, 1, "USD", 60, "Authorized", 7, [("SBX-HOODIE-GRY-XL", 2, "59.00"),
                                              ("SBX-STICKER-PACK", 4, "4.50")],
     "0.00", "11.22", (1, 0, 10, 30), None, None),
]
# fmt: on

# Seed returns: order n -> (line index, quantity, note, days after the order, state)
_RETURNS = {
    4: (0, 2, "Arrived damaged", 2, 80),  # refund processed
    11: (1, 1, "Wrong colour", 1, 10),  # open, submitted
}

ORDER_ID_BASE = 100  # OmsOrderId = 100 + n
DETAIL_ID_BASE = 40000  # OmsOrderDetailsId
LINE_ID_BASE = 70000


def build() -> dict[str, Any]:
    """A fresh copy of the seeded state (JSON-able)."""
    at = now().replace(microsecond=0)
    state: dict[str, Any] = {
        "config": dict(DEFAULT_CONFIG),
        "counters": {
            "order": 0,
            "detail": 0,
            "line": 0,
            "note": 0,
            "payment": 0,
            "history": 0,
            "user": 0,
            "address": 0,
            "return": 0,
            "return_line": 0,
            "return_history": 0,
            "shipment": 0,
        },
        "domains": [
            {
                "DomainId": 1,
                "PortalId": 1,
                "DomainName": STORE_DOMAIN,
                "ApiKey": STORE_KEY,
                "IsActive": True,
                "ApplicationType": "WebStore",
                "IsDefault": True,
            },
            {
                "DomainId": 2,
                "PortalId": 2,
                "DomainName": OUTLET_DOMAIN,
                "ApiKey": OUTLET_KEY,
                "IsActive": True,
                "ApplicationType": "WebStore",
                "IsDefault": True,
            },
            {
                "DomainId": 3,
                "PortalId": 1,
                "DomainName": RETIRED_DOMAIN,
                "ApiKey": RETIRED_KEY,
                "IsActive": False,
                "ApplicationType": "WebStore",
                "IsDefault": False,
            },
        ],
        "oauth_clients": [
            {
                "client_id": OAUTH_CLIENT_ID,
                "client_secret": OAUTH_CLIENT_SECRET,
                "scopes": list(OAUTH_SCOPES),
            },
        ],
        "oauth_tokens": {},
        "api_tokens": {},
        "portals": {str(k): v for k, v in PORTALS.items()},
        "order_states": [
            {
                "OmsOrderStateId": sid,
                "OrderStateName": name,
                "Description": desc,
                "DisplayOrder": order,
                **{flag: bool(v) for flag, v in zip(_FLAGS, flags, strict=True)},
            }
            for sid, name, desc, order, flags in _ORDER_STATES
        ],
        "payment_states": [
            {"OmsPaymentStateId": pid, "Name": name, "Description": desc}
            for pid, name, desc in _PAYMENT_STATES
        ],
        "return_states": [
            {
                "RmaReturnStateId": rid,
                "ReturnStateName": name,
                "Description": name,
                "IsReturnState": bool(is_state),
                "IsReturnLineItemState": bool(is_line),
                "DisplayOrder": order,
            }
            for rid, name, is_state, is_line, order in _RETURN_STATES
        ],
        "payment_settings": [
            {
                "PaymentSettingId": sid,
                "PaymentCode": code,
                "PaymentDisplayName": name,
                "PaymentTypeId": ptype,
                "GatewayCode": gateway,
                # ZNodePaymentSettingCredential: the Stripe provider reads its secret key
                # from the gateway login.
                "GatewayUsername": login,
                "TestMode": True,
                "IsActive": True,
            }
            for sid, code, name, ptype, gateway, login in _PAYMENT_SETTINGS
        ],
        "users": {},
        "addresses": {},
        "orders": {},
        "notes": [],
        "order_payments": [],
        "order_history": [],
        "returns": {},
        "return_history": [],
        "payment_transactions": {},  # the payment app's ZnodeTransactions, by GUID
    }
    counters = state["counters"]
    created = fmt_date(at - timedelta(days=60))
    for spec in _users():
        user = user_row(
            spec["id"],
            spec["first"],
            spec["last"],
            spec["email"],
            spec["phone"],
            spec["portal"],
            spec["company"],
            created,
        )
        state["users"][str(user["UserId"])] = user
        counters["user"] = max(counters["user"], user["UserId"])
        for a in spec["addresses"]:
            row = address_row(
                a["id"],
                user,
                a["line"],
                a["city"],
                a["state"],
                a["zip"],
                a["country"],
                a["billing"],
                a["shipping"],
                created,
            )
            state["addresses"][str(row["AddressId"])] = row
            counters["address"] = max(counters["address"], row["AddressId"])
    counters["order"] = ORDER_ID_BASE
    counters["detail"] = DETAIL_ID_BASE
    counters["line"] = LINE_ID_BASE
    counters["note"] = 3000
    counters["payment"] = 5000
    counters["history"] = 6000
    counters["return"] = 500
    counters["return_line"] = 800
    counters["return_history"] = 900
    counters["shipment"] = 20000
    return state


def seed_orders(system) -> None:
    """Create the seeded orders through the same code path the storefront uses."""
    at = now().replace(microsecond=0)
    for (
        n,
        uid,
        portal,
        currency,
        state_id,
        pay_state,
        setting,
        lines,
        shipping,
        tax,
        age,
        tracking,
        external,
    ) in _ORDERS:
        days, hours, minutes, seconds = age
        order_date = at - timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        gateway = system.payment_setting(setting)["GatewayCode"] is not None
        live = gateway and pay_state == "Authorized"  # a real authorization in Stripe
        order = system.place_order(
            user_id=uid,
            portal_id=portal,
            currency=currency,
            lines=[{"sku": sku, "quantity": qty, "price": price} for sku, qty, price in lines],
            shipping=shipping,
            tax=tax,
            payment_setting_id=setting,
            payment_state=pay_state,
            order_date=order_date,
            card="pm_card_visa" if live else None,
            transaction_id=f"ch_sbx_{n:06d}" if gateway and not live else None,
            gateway_faults=False,
            emit=False,
        )
        assert order["OrderNumber"] == f"SBX-{n:06d}"
        if n in _RETURNS:  # opened while the order was still returnable
            line_index, quantity, note, days_ago, state = _RETURNS[n]
            record = system.create_return(
                order,
                [
                    {
                        "line_id": order["Lines"][line_index]["OmsOrderLineItemsId"],
                        "quantity": quantity,
                    }
                ],
                submit=True,
                notes=note,
                emit=False,
                when=fmt_date(order_date + timedelta(days=days_ago)),
            )
            system.set_return_state(record, state)
            record["ModifiedDate"], record["ModifiedBy"] = record["CreatedDate"], 0
            if state == 80:
                system.state["return_history"].append(
                    {
                        "RmaReturnHistoryId": system.next_id("return_history"),
                        "RmaReturnDetailsId": record["RmaReturnDetailsId"],
                        "TransactionId": f"re_sbx_{n:06d}",
                        "ReturnAmount": "-" + order["Total"],
                        "Message": "Refund processed",
                        "CreatedBy": 0,
                        "CreatedDate": fmt_date(order_date + timedelta(days=5)),
                    }
                )
        order["OmsOrderStateId"] = state_id
        for line in order["Lines"]:
            line["OrderLineItemStateId"] = state_id if state_id in (10, 20, 30, 40) else 10
        order["TrackingNumber"] = tracking
        order["ExternalId"] = external
        modified = order_date + timedelta(hours=1)
        if state_id in (20, 30):
            order["ShipDate"] = fmt_date(order_date + timedelta(days=1))
            for line in order["Lines"]:
                line["ShipDate"] = order["ShipDate"]
                line["TrackingNumber"] = tracking
            modified = order_date + timedelta(days=1)
        if state_id == 30:
            order["ReturnDate"] = fmt_date(order_date + timedelta(days=5))
            modified = order_date + timedelta(days=5)
        order["OrderModifiedDate"] = order["ModifiedDate"] = fmt_date(modified)
        if pay_state in ("Captured", "Refunded"):
            system.insert_payment(
                order,
                order["TransactionId"],
                order["Total"],
                "Captured",
                order_date + timedelta(minutes=1),
                setting,
                "0",
            )
        if pay_state == "Refunded":
            system.insert_payment(
                order,
                f"re_sbx_{n:06d}",
                order["Total"],
                "Refunded",
                order_date + timedelta(days=5),
                setting,
                order["Total"],
            )
        if n == 1:
            system.insert_note(
                order["OmsOrderDetailsId"],
                "Customer asked for gift wrap.",
                "alice@example.com",
                order_date + timedelta(minutes=5),
            )
        if n == 2:
            system.insert_note(
                order["OmsOrderDetailsId"],
                "Shipped from warehouse A.",
                "admin@sandbox-store.local",
                order_date + timedelta(days=1),
            )
