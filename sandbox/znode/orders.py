"""Orders (9.x OMS routes): list/detail rendering, state vocabularies and every order
write the integration uses, with the side effects of the real service:

- ``PUT orders/updateorderstatus`` overwrites TrackingNumber with the body value;
- ``PUT orders/updateorderdetailsbyordernumber`` resolves the state by name among
  IsOrderState rows, silently ignores an unknown name, and clears TrackingNumber;
- ``POST order(s)/saveorderpaymentdetail`` always inserts;
- notes are keyed by OmsOrderDetailsId (missing id: stored, attached to nothing).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sandbox.http import Request, Response
from sandbox.znode.common import (
    acting_user,
    check_length,
    fk_error,
    jsonable,
    path_int,
    path_param,
    read_body,
)
from sandbox.znode.query import Query, Table, parse_query, select
from sandbox.znode.seed import PAYMENT_TYPES, PORTALS, PRODUCTS
from sandbox.znode.wire import (
    ID_LESS_THAN_ONE,
    INVALID_DATA,
    MIN_DATE,
    NULL_MODEL,
    ModelStateError,
    ZnodeError,
    fmt_date,
    model_base,
    money,
    money_text,
    no_content,
    now,
    now_text,
    paging_fields,
    parse_date,
    respond,
    true_false,
)

_NS = uuid.UUID("6f1c1d4e-2b3a-4c5d-8e9f-a0b1c2d3e4f5")
DEFAULT_CARD = "pm_card_visa"  # what the shopper typed when a test does not say
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "JPY": "¥", "GBP": "£", "CAD": "CA$"}
CULTURES = {"USD": "en-US", "EUR": "de-DE", "JPY": "ja-JP", "GBP": "en-GB", "CAD": "en-CA"}
ZERO_DECIMAL = {"JPY"}

# fmt: off
_MONEY_FIELDS = (
    "SubTotal", "TaxCost", "ShippingCost", "DiscountAmount", "CSRDiscountAmount",
    "GiftCardAmount", "Total", "OrderAmount", "OverDueAmount", "SalesTax", "VAT", "GST",
    "PST", "HST", "ImportDuty", "ShippingDiscount", "ShippingHandlingCharges", "ReturnCharges",
    "RemainingOrderAmount", "OrderTotalWithoutVoucher", "TotalAdditionalCost", "ReturnSubTotal",
    "ReturnTaxCost", "ReturnShippingCost", "ReturnTotal", "EstimateShippingCost",
    "ShippingDifference",
)
# fmt: on


def payment_history_model(rows: list[dict]) -> dict[str, Any]:
    """PaymentHistoryListModel (a BaseListModel): the rows plus paging properties that the
    service never fills (null; TotalPages is computed from PageSize, so null too). The
    OrderModel constructor creates an empty one, so every order (list rows too) has it."""
    return {
        "PaymentHistoryList": rows,
        "PageIndex": None,
        "PageSize": None,
        "TotalResults": None,
        "TotalPages": None,
        **model_base(),
    }


def order_model_defaults() -> dict[str, Any]:
    """Every OrderModel property with its .NET default (rows from the list procedure
    are mapped onto this, so unfilled properties come back null/0)."""
    # fmt: off
    model: dict[str, Any] = {
        "OmsOrderId": 0, "OmsOrderDetailsId": 0, "OrderNumber": None, "PortalId": 0,
        "StoreName": None, "UserId": 0, "AccountId": None, "OmsQuoteId": None,
        "ExternalId": None, "PortalCatalogId": 0, "AddressId": 0, "ShippingId": 0,
        "PaymentTypeId": None, "PaymentSettingId": None, "OmsOrderStateId": 0,
        "OrderState": None, "OmsPaymentStateId": None, "PaymentStatus": None,
        "PaymentType": None, "PaymentDisplayName": None, "PaymentExternalId": None,
        "PublishState": None, "PublishStateId": 0,
        "CurrencyCode": None, "CultureCode": None, "OrderTotalWithCurrency": None,
        "OrderDate": MIN_DATE, "OrderModifiedDate": None, "ShipDate": None, "ReturnDate": None,
        "InHandDate": None, "WebServiceDownloadDate": None,
        "Email": None, "PhoneNumber": None, "FirstName": None, "LastName": None,
        "UserName": None, "CreatedByName": None, "ModifiedByName": None,
        "PaymentTransactionToken": None, "TransactionId": None, "CreditCardNumber": None,
        "CardType": None, "CreditCardExpMonth": None, "CreditCardExpYear": None,
        "PurchaseOrderNumber": None, "PoDocument": None, "PODocumentPath": None,
        "CustomerPaymentGUID": None, "PaymentHistoryList": payment_history_model([]),
        "OrderPaymentStateModelList": None,
        "TrackingNumber": None, "TrackingUrl": None, "ShippingNumber": None,
        "ShippingTypeName": None, "ShippingMethod": None, "ShippingCode": None,
        "ShippingStatus": None, "IsMultipleShipping": False,
        "BillingAddress": None, "ShippingAddress": None, "BillingPostalCode": None,
        "ShippingPostalCode": None, "BillingAddressHtml": None,
        "OrderLineItems": None, "ReturnedOrderLineItems": None, "OrdersDiscount": None,
        "OrderNotes": None, "OrderHistory": None, "ShoppingCartModel": None,
        "TaxSummaryList": None, "OrderItem": None, "ItemCount": 0,
        "AdditionalInstructions": None, "CouponCode": None, "PromoDescription": None,
        "JobName": None, "IpAddress": None, "IsQuoteOrder": False, "IsActive": False,
        "IsInRMA": False, "IsAnyPendingReturn": False,
    }
    # fmt: on
    for name in _MONEY_FIELDS:
        model[name] = Decimal(0)
    model.update(model_base())
    return model


# Columns of the order list procedure (Znode_GetOmsOrderDetail), mapped onto OrderModel.
# fmt: off
ORDER_ROW_COLUMNS = (
    "OmsOrderId", "OrderNumber", "PortalId", "StoreName", "CurrencyCode", "OrderState",
    "ShippingId", "PaymentTypeId", "PaymentSettingId", "PaymentStatus", "PaymentType",
    "ShippingStatus", "OrderDate", "UserId", "UserName", "PaymentTransactionToken", "Total",
    "OrderItem", "OmsOrderDetailsId", "ItemCount", "PODocumentPath", "IsInRMA", "Email",
    "PhoneNumber", "SubTotal", "TaxCost", "ShippingCost", "BillingPostalCode",
    "ShippingPostalCode", "OrderModifiedDate", "PaymentDisplayName", "RemainingOrderAmount",
    "ExternalId", "CreditCardExpMonth", "CreditCardExpYear", "CardType", "CreditCardNumber",
    "PaymentExternalId", "CultureCode", "PublishState",
)
# fmt: on
# Joined-table columns a filter may name although the row does not return them.
_HIDDEN_FILTER_COLUMNS = ("OmsOrderStateId", "OmsPaymentStateId", "TrackingNumber")


class OrdersMixin:
    state: dict[str, Any]

    # --- lookups -------------------------------------------------------------------
    def next_id(self, counter: str) -> int:
        self.state["counters"][counter] += 1
        return self.state["counters"][counter]

    def order_state(self, state_id: int | None) -> dict | None:
        return next(
            (s for s in self.state["order_states"] if s["OmsOrderStateId"] == state_id), None
        )

    def order_state_named(self, name: str, *, order_states_only: bool = False) -> dict | None:
        for row in self.state["order_states"]:
            if order_states_only and not row["IsOrderState"]:
                continue
            if row["OrderStateName"].lower() == str(name).lower():
                return row
        return None

    def payment_state(self, state_id: int | None) -> dict | None:
        return next(
            (s for s in self.state["payment_states"] if s["OmsPaymentStateId"] == state_id), None
        )

    def payment_state_named(self, name: str) -> dict | None:
        # Name == value in SQL Server: case-insensitive collation.
        return next(
            (s for s in self.state["payment_states"] if s["Name"].lower() == str(name).lower()),
            None,
        )

    def mark_payment(self, order: dict) -> None:
        """Milestones of an order's payment (System.mark): ``paid:<number>`` once Znode
        shows it paid with its payment record (payment status Captured, a transaction
        id, and a payment row naming that transaction), ``declined:<number>`` once its
        payment status is Declined."""
        pay = self.payment_state(order.get("OmsPaymentStateId")) or {}
        name = str(pay.get("Name", "")).lower()
        number = order["OrderNumber"]
        if name == "declined":
            self.mark(f"declined:{number}")
            return
        charge = order.get("TransactionId")
        if (
            name == "captured"
            and charge
            and any(
                p["OmsOrderId"] == order["OmsOrderId"] and p["TransactionReference"] == charge
                for p in self.state["order_payments"]
            )
        ):
            self.mark(f"paid:{number}")

    def payment_setting(self, setting_id: int | None) -> dict | None:
        return next(
            (s for s in self.state["payment_settings"] if s["PaymentSettingId"] == setting_id),
            None,
        )

    def order_by_id(self, order_id: int | None) -> dict | None:
        return self.state["orders"].get(str(order_id))

    def order_by_number(self, number: str) -> dict | None:
        number = str(number).strip().lower()
        return next(
            (o for o in self.state["orders"].values() if o["OrderNumber"].lower() == number), None
        )

    def order_by_detail_id(self, detail_id: int | None) -> dict | None:
        return next(
            (o for o in self.state["orders"].values() if o["OmsOrderDetailsId"] == detail_id),
            None,
        )

    # --- creation (storefront checkout and seed) ---------------------------------------
    def place_order(
        self,
        *,
        user_id: int,
        lines: list[dict],
        portal_id: int | None = None,
        currency: str = "USD",
        shipping: Any = "0",
        tax: Any = "0",
        discount: Any = "0",
        payment_setting_id: int | None = None,
        payment_state: str | None = None,
        transaction_id: str | None = None,
        payment_token: str | None = None,
        card: str | None = None,
        gateway_faults: bool = True,
        order_date: datetime | None = None,
        state_name: str = "SUBMITTED",
        external_id: str | None = None,
        coupon_code: str | None = None,
        instructions: str | None = None,
        emit: bool = True,
    ) -> dict:
        """A checkout. On a gateway payment setting (7, 8) the payment app authorizes a
        Stripe charge for the total with ``card`` (default ``pm_card_visa``) before the
        order is saved: the order gets the charge id as TransactionId, the payment app's
        GUID as PaymentTransactionToken, "Authorized" and the card's last4/type; a declined
        card raises CardDeclined and stores no order (its ids stay used, as identity
        columns do). ``transaction_id`` / ``payment_token`` (odd data for tests) win over
        that: no charge is made. Settings without a gateway (10, 11, purchase order, COD)
        charge nothing; 10 and 11 orders are "Pending" with neither id."""
        from sandbox.znode.seed import STRIPE_PAYMENT_SETTING_ID

        user = self.state["users"].get(str(user_id))
        if user is None:
            raise ZnodeError(f"User {user_id} does not exist.", INVALID_DATA)
        if not lines:
            raise ZnodeError("An order needs at least one line.", INVALID_DATA)
        currency = (currency or "USD").upper()
        portal_id = portal_id or user["PortalId"] or 1
        portal = PORTALS.get(portal_id)
        if portal is None:
            raise ZnodeError(f"Portal {portal_id} does not exist.", INVALID_DATA)
        setting_id = payment_setting_id or STRIPE_PAYMENT_SETTING_ID
        setting = self.payment_setting(setting_id)
        if setting is None:
            raise ZnodeError(f"Payment setting {setting_id} does not exist.", INVALID_DATA)
        is_card = setting["PaymentTypeId"] == 1
        gateway = self.has_gateway(setting)
        override = transaction_id is not None or payment_token is not None
        # The payment app charges the card on a gateway setting unless the caller dictates
        # the ids. Without a Stripe peer a seed (no faults) keeps made-up ids; a checkout
        # fails with GatewayFailure.
        charge_card = (
            gateway and not override and (self.stripe_peer() is not None or gateway_faults)
        )
        if payment_state is None:
            payment_state = "Authorized" if gateway or not is_card else "Pending"
        pay_state = self.payment_state_named(payment_state)
        if pay_state is None:
            raise ZnodeError(f"Unknown payment state {payment_state!r}.", INVALID_DATA)
        order_state = self.order_state_named(state_name)
        if order_state is None:
            raise ZnodeError(f"Unknown order state {state_name!r}.", INVALID_DATA)
        when = order_date or now()
        stamp = fmt_date(when)
        n = self.next_id("order") - 100  # order numbers run from SBX-000001
        order_id = 100 + n
        detail_id = self.next_id("detail")
        shipment_id = self.next_id("shipment")
        billing = self._order_address(user, "IsDefaultBilling", order_id)
        shipping_address = self._order_address(user, "IsDefaultShipping", order_id)
        built_lines = []
        for index, spec in enumerate(lines):
            sku = str(spec.get("sku") or f"SBX-CUSTOM-{index + 1}")
            name, weight = PRODUCTS.get(sku, (spec.get("name") or sku, "0.50"))
            quantity = money(spec.get("quantity", 1))
            price = money(spec.get("price", "0"))
            if quantity <= 0 or price < 0:
                raise ZnodeError(
                    "Line quantity must be positive and price not negative.", INVALID_DATA
                )
            built_lines.append(
                {
                    "OmsOrderLineItemsId": self.next_id("line"),
                    "OmsOrderDetailsId": detail_id,
                    "OmsOrderShipmentId": shipment_id,
                    "ParentOmsOrderLineItemsId": None,
                    "OrderLineItemRelationshipTypeId": None,
                    "Sku": sku,
                    "ProductName": spec.get("name") or name,
                    "Description": spec.get("name") or name,
                    "Quantity": money_text(quantity),
                    "Price": money_text(price),
                    "DiscountAmount": "0",
                    "ShippingCost": "0",
                    "SalesTax": "0",
                    "Weight": weight,
                    "ShipDate": None,
                    "ReturnDate": None,
                    "TrackingNumber": None,
                    "OrderLineItemStateId": order_state["OmsOrderStateId"],
                    "PaymentStatusId": None,
                    "TransactionNumber": None,
                    "ExternalId": spec.get("external_id"),
                    "IsActive": True,
                    "ProductType": "SimpleProduct",
                    "CreatedDate": stamp,
                    "ModifiedDate": stamp,
                }
            )
        fake_ids = is_card and (gateway or override)  # historical / odd data: made-up ids
        order = {
            "OmsOrderId": order_id,
            "OmsOrderDetailsId": detail_id,
            "OrderNumber": f"SBX-{n:06d}",
            "PortalId": portal_id,
            "UserId": user["UserId"],
            "OmsOrderStateId": order_state["OmsOrderStateId"],
            "OmsPaymentStateId": pay_state["OmsPaymentStateId"],
            "PaymentTypeId": setting["PaymentTypeId"],
            "PaymentSettingId": setting_id,
            "ShippingId": 3,
            "ShippingTypeName": "Ground",
            "ShippingCode": "GROUND",
            "ExternalId": external_id,
            "TrackingNumber": None,
            "TransactionId": transaction_id
            if transaction_id is not None
            else (f"ch_sbx_{n:06d}" if fake_ids else None),
            "PaymentTransactionToken": payment_token
            if payment_token is not None
            else (str(uuid.uuid5(_NS, f"order-{n}")) if fake_ids else None),
            "CreditCardNumber": "4242" if fake_ids else None,
            "CardType": "Visa" if fake_ids else None,
            "CreditCardExpMonth": 12 if fake_ids else None,
            "CreditCardExpYear": 2030 if fake_ids else None,
            "PurchaseOrderNumber": f"PO-{n:05d}" if setting["PaymentTypeId"] == 2 else None,
            "CurrencyCode": currency,
            "CultureCode": CULTURES.get(currency, "en-US"),
            "ShippingCost": money_text(shipping),
            "TaxCost": money_text(tax),
            "DiscountAmount": money_text(discount),
            "OrderDate": stamp,
            "OrderModifiedDate": stamp,
            "ShipDate": None,
            "ReturnDate": None,
            "CreatedDate": stamp,
            "ModifiedDate": stamp,
            "CreatedBy": user["UserId"],
            "ModifiedBy": user["UserId"],
            "Email": user["Email"],
            "PhoneNumber": user["PhoneNumber"],
            "FirstName": user["FirstName"],
            "LastName": user["LastName"],
            "BillingAddress": billing,
            "ShippingAddress": shipping_address,
            "CouponCode": coupon_code,
            "AdditionalInstructions": instructions,
            "IsInRMA": False,
            "Lines": built_lines,
        }
        self.recalculate(order)
        if charge_card:
            charge = self.authorize_card(
                order, setting, card or DEFAULT_CARD, faults=gateway_faults
            )
            order["TransactionId"] = charge["id"]
            order["PaymentTransactionToken"] = self.record_transaction(order, charge, setting)
            order.update(self.card_fields(charge))
        self.state["orders"][str(order_id)] = order
        self.mark(f"placed:{order['OrderNumber']}")
        if emit:
            self.emit_order(order, "Created", user["UserId"])
        return order

    def _order_address(self, user: dict, flag: str, order_id: int) -> dict | None:
        rows = [a for a in self.state["addresses"].values() if a["UserId"] == user["UserId"]]
        chosen = next((a for a in rows if a[flag]), rows[0] if rows else None)
        if chosen is None:
            return None
        address = {k: v for k, v in chosen.items() if k not in ("CreatedBy", "ModifiedBy")}
        address["omsOrderId"] = order_id
        return address

    def recalculate(self, order: dict) -> None:
        subtotal = sum(
            (money(line["Quantity"]) * money(line["Price"]) for line in order["Lines"]), Decimal(0)
        )
        total = subtotal + money(order["ShippingCost"]) + money(order["TaxCost"])
        total -= money(order["DiscountAmount"])
        order["SubTotal"] = money_text(subtotal)
        order["Total"] = money_text(total)

    def insert_payment(
        self,
        order: dict,
        reference: str | None,
        amount: Any,
        status: str | None,
        when: datetime | None,
        setting_id: int | None,
        remaining: Any,
        created_by: int = 0,
    ) -> dict:
        stamp = now_text()
        row = {
            "OrderPaymentId": self.next_id("payment"),
            "OmsOrderId": order["OmsOrderId"] if order else None,
            "TransactionReference": reference,
            "Amount": money_text(amount),
            "TransactionStatus": status,
            "TransactionDate": fmt_date(when),
            "PaymentSettingId": setting_id,
            "RemainingOrderAmount": money_text(remaining),
            "CreatedBy": created_by,
            "CreatedDate": stamp,
            "ModifiedBy": created_by,
            "ModifiedDate": stamp,
        }
        self.state["order_payments"].append(row)
        return row

    def insert_note(
        self,
        detail_id: int | None,
        text: str,
        user_name: str | None,
        when: datetime | None = None,
        created_by: int = 0,
        quote_id: int | None = None,
    ) -> dict:
        stamp = fmt_date(when) if when else now_text()
        row = {
            "OmsNotesId": self.next_id("note"),
            "OmsOrderDetailsId": detail_id,
            "OmsQuoteId": quote_id,
            "Notes": text,
            "UserName": user_name,
            "CreatedBy": created_by,
            "CreatedDate": stamp,
            "ModifiedBy": created_by,
            "ModifiedDate": stamp,
        }
        self.state["notes"].append(row)
        return row

    def touch(self, order: dict, user_id: int = 0) -> None:
        stamp = now_text()
        order["OrderModifiedDate"] = order["ModifiedDate"] = stamp
        order["ModifiedBy"] = user_id

    def set_order_state(
        self, order: dict, state_id: int, tracking: str | None, user_id: int = 0
    ) -> None:
        """OrderService.UpdateOrderStatus: state, TrackingNumber (overwritten), ShipDate
        on SHIPPED, ReturnDate on RETURNED, lines in the old state follow."""
        previous = order["OmsOrderStateId"]
        order["OmsOrderStateId"] = state_id
        order["TrackingNumber"] = tracking
        self.touch(order, user_id)
        named = self.order_state(state_id)
        if named and named["OrderStateName"] == "SHIPPED":
            order["ShipDate"] = now_text()
        elif named and named["OrderStateName"] == "RETURNED":
            order["ReturnDate"] = now_text()
        for line in order["Lines"]:
            if line["OrderLineItemStateId"] == previous:
                line["OrderLineItemStateId"] = state_id
                if named and named["OrderStateName"] == "SHIPPED":
                    line["ShipDate"] = order["ShipDate"]
                line["ModifiedDate"] = order["ModifiedDate"]

    # --- rendering -------------------------------------------------------------------
    def _line_model(self, line: dict, expanded_state: bool) -> dict:
        state = self.order_state(line["OrderLineItemStateId"])
        model = {
            **{k: v for k, v in line.items() if k not in ("CreatedDate", "ModifiedDate")},
            "Quantity": money(line["Quantity"]),
            "Price": money(line["Price"]),
            "Total": money(line["Quantity"]) * money(line["Price"]),
            "DiscountAmount": money(line["DiscountAmount"]),
            "ShippingCost": money(line["ShippingCost"]),
            "SalesTax": money(line["SalesTax"]),
            "Weight": money(line["Weight"]),
            "VAT": Decimal(0),
            "GST": Decimal(0),
            "PST": Decimal(0),
            "HST": Decimal(0),
            "ImportDuty": Decimal(0),
            "PartialRefundAmount": None,
            "OrderLineItemState": state["OrderStateName"] if state and expanded_state else None,
            "TaxTransactionNumber": None,
            "RmaReasonForReturnId": None,
            "ParentProductSKU": None,
            "GroupId": None,
            "Attributes": [],
            "PersonaliseValueList": None,
            **model_base(created=line["CreatedDate"], modified=line["ModifiedDate"]),
        }
        return model

    def _address_model(self, address: dict | None) -> dict | None:
        if address is None:
            return None
        return {
            **address,
            **model_base(created=address.get("CreatedDate"), modified=address.get("ModifiedDate")),
        }

    def _common(self, order: dict) -> dict[str, Any]:
        setting = self.payment_setting(order["PaymentSettingId"]) or {}
        portal = PORTALS.get(order["PortalId"], {})
        symbol = CURRENCY_SYMBOLS.get(order["CurrencyCode"], order["CurrencyCode"] + " ")
        total = money(order["Total"])
        shown = f"{total:,.0f}" if order["CurrencyCode"] in ZERO_DECIMAL else f"{total:,.2f}"
        return {
            "OmsOrderId": order["OmsOrderId"],
            "OmsOrderDetailsId": order["OmsOrderDetailsId"],
            "OrderNumber": order["OrderNumber"],
            "PortalId": order["PortalId"],
            "StoreName": portal.get("StoreName"),
            "UserId": order["UserId"],
            "ExternalId": order["ExternalId"],
            "ShippingId": order["ShippingId"],
            "PaymentTypeId": order["PaymentTypeId"],
            "PaymentSettingId": order["PaymentSettingId"],
            "PaymentDisplayName": setting.get("PaymentDisplayName"),
            "PublishState": "PRODUCTION",
            "CurrencyCode": order["CurrencyCode"],
            "CultureCode": order["CultureCode"],
            "OrderDate": order["OrderDate"],
            "OrderModifiedDate": order["OrderModifiedDate"],
            "Email": order["Email"],
            "PhoneNumber": order["PhoneNumber"],
            "PaymentTransactionToken": order["PaymentTransactionToken"],
            "CreditCardNumber": order["CreditCardNumber"],
            "CardType": order["CardType"],
            "CreditCardExpMonth": order["CreditCardExpMonth"],
            "CreditCardExpYear": order["CreditCardExpYear"],
            "SubTotal": money(order["SubTotal"]),
            "TaxCost": money(order["TaxCost"]),
            "ShippingCost": money(order["ShippingCost"]),
            "Total": total,
            "OrderTotalWithoutVoucher": total,
            "RemainingOrderAmount": Decimal(0),
            "IsInRMA": order["IsInRMA"],
            "BillingPostalCode": (order["BillingAddress"] or {}).get("PostalCode"),
            "OrderTotalWithCurrency": f"{symbol}{shown}",
        }

    def order_row(self, order: dict) -> dict:
        """A row of orders/list: the procedure's columns on an otherwise empty model."""
        state = self.order_state(order["OmsOrderStateId"]) or {}
        pay = self.payment_state(order["OmsPaymentStateId"]) or {}
        common = self._common(order)
        row = order_model_defaults()
        for column in ORDER_ROW_COLUMNS:
            if column in common:
                row[column] = common[column]
        row.update(
            OrderState=state.get("Description"),  # the Description, e.g. "Submitted"
            PaymentStatus=pay.get("Name"),
            PaymentType=PAYMENT_TYPES.get(order["PaymentTypeId"]),
            UserName=f"{order['FirstName']} {order['LastName']}".strip(),
            OrderItem=order["Lines"][0]["ProductName"] if order["Lines"] else None,
            ItemCount=len(order["Lines"]),
            ShippingPostalCode=None,
        )
        return row

    def order_detail(self, order: dict, expand: set[str]) -> dict:
        """OrderModel from orders/{id}: state strings and collections depend on expand."""
        model = order_model_defaults()
        model.update(self._common(order))
        state = self.order_state(order["OmsOrderStateId"]) or {}
        pay = self.payment_state(order["OmsPaymentStateId"]) or {}
        expanded_state = "omsorderstate" in expand
        model.update(
            OmsOrderStateId=order["OmsOrderStateId"],
            OmsPaymentStateId=order["OmsPaymentStateId"],
            OrderState=state.get("OrderStateName") if expanded_state else None,
            PaymentStatus=pay.get("Name") if "omspaymentstate" in expand else None,
            PaymentType=PAYMENT_TYPES.get(order["PaymentTypeId"])
            if "paymenttype" in expand
            else None,
            TrackingNumber=order["TrackingNumber"],
            TransactionId=order["TransactionId"],
            PurchaseOrderNumber=order["PurchaseOrderNumber"],
            ShipDate=order["ShipDate"],
            ReturnDate=order["ReturnDate"],
            FirstName=order["FirstName"],
            LastName=order["LastName"],
            UserName=order["Email"],
            ShippingTypeName=order["ShippingTypeName"],
            ShippingCode=order["ShippingCode"],
            ShippingMethod=order["ShippingTypeName"],
            DiscountAmount=money(order["DiscountAmount"]),
            OrderAmount=money(order["Total"]),
            CouponCode=order["CouponCode"],
            AdditionalInstructions=order["AdditionalInstructions"],
            BillingAddress=self._address_model(order["BillingAddress"]),
            ShippingAddress=self._address_model(order["ShippingAddress"]),
            ShippingPostalCode=(order["ShippingAddress"] or {}).get("PostalCode"),
            IsActive=True,
            IsAnyPendingReturn=any(
                r["OmsOrderId"] == order["OmsOrderId"] and r["RmaReturnStateId"] in (10, 30, 40)
                for r in self.state["returns"].values()
            ),
            PaymentHistoryList=self.payment_history(order),
            OrderPaymentStateModelList=None,
            **model_base(
                order["CreatedBy"], order["CreatedDate"], order["ModifiedBy"], order["ModifiedDate"]
            ),
        )
        if expand & {"orderlineitems", "znodeomsorderlineitems"}:
            model["OrderLineItems"] = [self._line_model(x, expanded_state) for x in order["Lines"]]
        if expand & {"ordernotes", "znodeomsnotes"}:
            model["OrderNotes"] = [self.note_model(n) for n in self.notes_of(order)]
        if "znodeomshistories" in expand:
            model["OrderHistory"] = {
                h["CreatedDate"]: h["Message"]
                for h in self.state["order_history"]
                if h["OmsOrderDetailsId"] == order["OmsOrderDetailsId"]
            }
        return model

    def full_order(self, order: dict) -> dict:
        return self.order_detail(
            order,
            {"omsorderstate", "omspaymentstate", "paymenttype", "orderlineitems", "ordernotes"},
        )

    def notes_of(self, order: dict) -> list[dict]:
        return [
            n for n in self.state["notes"] if n["OmsOrderDetailsId"] == order["OmsOrderDetailsId"]
        ]

    def note_model(self, note: dict) -> dict:
        return {
            "OmsNotesId": note["OmsNotesId"],
            "OmsOrderDetailsId": note["OmsOrderDetailsId"],
            "OmsQuoteId": note["OmsQuoteId"],
            "Notes": note["Notes"],
            "UserName": note["UserName"],
            **model_base(
                note["CreatedBy"], note["CreatedDate"], note["ModifiedBy"], note["ModifiedDate"]
            ),
        }

    def payment_history(self, order: dict) -> dict:
        """OrderModel.PaymentHistoryList: a list model, ``{"PaymentHistoryList": [rows],
        "PageIndex", "PageSize", "TotalResults", "TotalPages", ...BaseModel}``; an order
        without payments has the model with an empty list."""
        return payment_history_model(self.payment_history_rows(order))

    def payment_history_rows(self, order: dict) -> list[dict]:
        """Znode_GetPaymentHistory: inner join on ZnodePaymentSetting, so rows with an
        unknown PaymentSettingId are stored but never listed."""
        with_reference = self.state["config"].get("payment_history_has_reference", True)
        rows = []
        for p in self.state["order_payments"]:
            if p["OmsOrderId"] != order["OmsOrderId"]:
                continue
            setting = self.payment_setting(p["PaymentSettingId"])
            if setting is None:
                continue
            row = {
                "OrderPaymentId": p["OrderPaymentId"],
                "OmsOrderId": p["OmsOrderId"],
                "OmsOrderDetailsId": None,
                "OmsNotesId": None,
                "Amount": money(p["Amount"]),
                "TransactionStatus": p["TransactionStatus"],
                "PaymentType": setting["PaymentDisplayName"],
                "RemainingOrderAmount": money(p["RemainingOrderAmount"]),
            }
            if with_reference:
                row["TransactionReference"] = p["TransactionReference"]
                row["TransactionDate"] = p["TransactionDate"]
                row["PaymentSettingId"] = p["PaymentSettingId"]
            row.update(
                model_base(p["CreatedBy"], p["CreatedDate"], p["ModifiedBy"], p["ModifiedDate"])
            )
            rows.append(row)
        return rows

    def order_state_model(self, row: dict) -> dict:
        return {**row, **model_base()}

    # --- routes ------------------------------------------------------------------------
    def register_order_routes(self) -> None:
        get, put, post = self.get_route, self.put_route, self.post_route
        get("/orders/list", self.list_orders, cached=True)
        get("/orders/getpaymentstatelist", self.payment_state_list, cached=True)
        get("/orders/getorderstatevaluebyid/{stateId}", self.order_state_by_id, cached=True)
        get("/orders/getordernoteslist/{orderId}/{quoteId}", self.order_notes_list, cached=True)
        get("/orders/getbyordernumber/{orderNumber}", self.get_by_order_number, cached=True)
        get(
            "/orders/updateorderpaymentstatus/{orderId}/{paymentStatus}", self.update_payment_status
        )
        get("/orders/updatetrackingnumber/{orderId}/{trackingNumber}", self.update_tracking_number)
        put("/orders/updatetrackingnumber/{orderId}/{trackingNumber}", self.update_tracking_number)
        get(
            "/orders/updateordertransactionid/{orderId}/{transactionId}", self.update_transaction_id
        )
        put("/orders/updateorderstatus", self.update_order_status)
        put("/orders/updateorderdetailsbyordernumber", self.update_order_details)
        put("/orders/updateorderaddress", self.update_order_address)
        post("/orders/addordernote", self.add_order_note)
        post("/orders/createorderhistory", self.create_order_history)
        post("/order/saveorderpaymentdetail", self.save_payment_detail)
        post("/orders/saveorderpaymentdetail", self.save_payment_detail)
        get("/orderstate/list", self.order_state_list, cached=True)
        get("/orders/{orderId}", self.get_order, cached=True)

    def order_table(self) -> Table:
        def date_range(rows: list[dict], op: str, text: str) -> list[dict]:
            # DateTimeRange~bw~'<from>' AND '<to>' becomes OrderDate BETWEEN ... (minutes)
            return minute_table.filter(rows, [("orderdate", op, text)])

        minute_table = Table(columns=("OrderDate",), dates=("OrderDate",), minute=("OrderDate",))
        return Table(
            columns=ORDER_ROW_COLUMNS + _HIDDEN_FILTER_COLUMNS,
            dates=("OrderDate", "OrderModifiedDate"),
            minute=("OrderDate",),
            aliases={"orderdatewithtime": "orderdate", "ordertotalwithcurrency": "total"},
            special={"datetimerange": date_range, "isfromadmin": lambda rows, op, text: rows},
            default_sort=[("orderdate", True), ("omsorderid", True)],
        )

    def list_orders(self, request: Request) -> Response:
        query = parse_query(request)
        table = self.order_table()
        rows = []
        for order in self.state["orders"].values():
            row = self.order_row(order)
            row["OmsOrderStateId"] = order["OmsOrderStateId"]
            row["OmsPaymentStateId"] = order["OmsPaymentStateId"]
            row["TrackingNumber"] = order["TrackingNumber"]
            rows.append(row)
        page = select(rows, query, table)
        if page.empty:
            return no_content()
        hidden = order_model_defaults()
        for row in page.rows:
            for column in _HIDDEN_FILTER_COLUMNS:
                row[column] = hidden[column]
        paging = paging_fields(page.index, page.size, page.total)
        inner = {
            "Orders": page.rows,
            "CustomerName": None,
            "HasParentAccounts": False,
            **paging,
            **model_base(),
        }
        return respond({"OrderList": inner, "OrderNotesList": None, **paging})

    def _order_response(self, order: dict | None, query: Query) -> Response:
        if order is None:
            return no_content()
        return respond({"Order": self.order_detail(order, query.expand), "RefundPayment": None})

    def get_order(self, request: Request) -> Response:
        order_id = path_int(request, "orderId")
        if order_id is None:
            return self.not_found(request.path)
        query = parse_query(request)
        if order_id < 1:
            raise ZnodeError("Order ID cannot be less than 1.", ID_LESS_THAN_ONE)
        return self._order_response(self.order_by_id(order_id), query)

    def get_by_order_number(self, request: Request) -> Response:
        query = parse_query(request)
        return self._order_response(self.order_by_number(path_param(request, "orderNumber")), query)

    def payment_state_list(self, request: Request) -> Response:
        rows = [{**s, **model_base()} for s in self.state["payment_states"]]
        return respond({"PaymentStateList": rows})

    def order_state_list(self, request: Request) -> Response:
        query = parse_query(request)
        rows = [dict(s) for s in self.state["order_states"]]
        table = Table(columns=tuple(rows[0]), default_sort=[("displayorder", False)])
        page = select(rows, query, table)
        if page.empty:
            return no_content()
        return respond(
            {
                "OrderStates": [self.order_state_model(r) for r in page.rows],
                **paging_fields(page.index, page.size, page.total),
            }
        )

    def order_state_by_id(self, request: Request) -> Response:
        row = self.order_state(path_int(request, "stateId"))
        if row is None:
            return no_content()
        return respond({"orderState": self.order_state_model(row)})

    def order_notes_list(self, request: Request) -> Response:
        order = self.order_by_id(path_int(request, "orderId"))
        notes = self.notes_of(order) if order else []
        if not notes:
            return no_content()
        return respond(
            {
                "OrderList": None,
                "OrderNotesList": [self.note_model(n) for n in notes],
                "PageIndex": None,
                "PageSize": None,
                "TotalPages": None,
                "TotalResults": None,
            }
        )

    # --- writes ------------------------------------------------------------------------
    def update_payment_status(self, request: Request) -> Response:
        name = path_param(request, "paymentStatus")
        pay = self.payment_state_named(name)
        if pay is None:
            raise ZnodeError("invalid payment state", INVALID_DATA)
        order = self.order_by_id(path_int(request, "orderId"))
        if order is None:
            return true_false(False)
        user = acting_user(request)
        order["OmsPaymentStateId"] = pay["OmsPaymentStateId"]
        self.touch(order, user)
        self.emit_order(order, "Updated", user)
        self.mark_payment(order)
        return true_false(True)

    def update_tracking_number(self, request: Request) -> Response:
        order = self.order_by_id(path_int(request, "orderId"))
        if order is None:
            return true_false(False)
        user = acting_user(request)
        order["TrackingNumber"] = path_param(request, "trackingNumber")
        self.touch(order, user)
        self.emit_order(order, "Updated", user)
        return true_false(True)

    def update_transaction_id(self, request: Request) -> Response:
        order = self.order_by_id(path_int(request, "orderId"))
        if order is None:
            return true_false(False)
        user = acting_user(request)
        order["TransactionId"] = path_param(request, "transactionId")
        self.touch(order, user)
        self.emit_order(order, "Updated", user)
        self.mark_payment(order)
        return true_false(True)

    def update_order_status(self, request: Request) -> Response:
        body = read_body(request)
        if body is None:
            raise ZnodeError("Order model cannot be null.")
        order_id = body.int("OmsOrderId", 0)
        state_id = body.int("OmsOrderStateId", 0)
        if order_id < 1:
            raise ZnodeError("Order ID cannot be less than 1.")
        if state_id < 1:
            raise ZnodeError("Invalid order status.")
        order = self.order_by_id(order_id)
        if order is None:
            return true_false(False)
        if self.order_state(state_id) is None:
            raise fk_error("ZnodeOmsOrderDetails", "OmsOrderStateId")
        user = acting_user(request)
        self.set_order_state(order, state_id, body.text("TrackingNumber"), user)
        self.emit_order(order, "Updated", user)
        return true_false(True)

    def update_order_details(self, request: Request) -> Response:
        body = read_body(request)
        if body is None:
            raise ZnodeError("Order model can not be null.", NULL_MODEL)
        errors: dict[str, str] = {}
        check_length(errors, body, "ExternalId", 50)
        check_length(errors, body, "OrderNotes", 500)
        if errors:
            raise ModelStateError(errors)
        number = body.text("OmsOrderNumber")
        if not number:
            raise ZnodeError("Order number is empty or null.", INVALID_DATA)
        order = self.order_by_number(number)
        if order is None:
            raise ZnodeError("Invalid order number.", INVALID_DATA)
        user = acting_user(request)
        updated = False
        external = body.text("ExternalId")
        if external:
            order["ExternalId"] = external
            updated = True
        notes = body.text("OrderNotes")
        if notes:
            self.insert_note(order["OmsOrderDetailsId"], notes, None, created_by=user)
            updated = True
        state_name = body.text("OrderStateName")
        state_id = body.int("OmsOrderStateId")
        if state_name or (state_id or 0) > 0:
            if state_name:
                found = self.order_state_named(state_name, order_states_only=True)
                target = found["OmsOrderStateId"] if found else None  # unknown: ignored
            else:
                target = state_id
            if target is not None:
                if self.order_state(target) is None:
                    raise fk_error("ZnodeOmsOrderDetails", "OmsOrderStateId")
                self.set_order_state(order, target, None, user)  # clears TrackingNumber
                updated = True
        if updated:
            self.touch(order, user)
            self.emit_order(order, "Updated", user)
        return true_false(updated)

    def update_order_address(self, request: Request) -> Response:
        body = read_body(request)
        if body is None:
            raise ZnodeError("Address model can not be null.", NULL_MODEL)
        order = self.order_by_id(body.int("omsOrderId", 0))
        if order is None:
            return true_false(False)
        which = (
            "ShippingAddress"
            if str(body.get("FromBillingShipping") or "").lower() == "shipping"
            else "BillingAddress"
        )
        current = order[which] or {}
        for key in list(current) or list(body.original):
            if key not in ("omsOrderId", "CreatedDate", "ModifiedDate") and body.has(key):
                current[key] = jsonable(body.get(key))
        current["omsOrderId"] = order["OmsOrderId"]
        order[which] = current
        user = acting_user(request)
        self.touch(order, user)
        self.emit_order(order, "Updated", user)
        return true_false(True)

    def add_order_note(self, request: Request) -> Response:
        body = read_body(request)
        if body is None:
            raise ZnodeError("Order notes model can not be null.", NULL_MODEL)
        text = body.text("Notes")
        if not text:
            return true_false(False)
        detail_id = body.int("OmsOrderDetailsId", 0) or None
        quote_id = body.int("OmsQuoteId", 0) or None
        order = None
        if detail_id is not None:
            order = self.order_by_detail_id(detail_id)
            if order is None:
                raise fk_error("ZnodeOmsNotes", "OmsOrderDetailsId")
        user = acting_user(request)
        self.insert_note(detail_id, text, body.text("UserName"), created_by=user, quote_id=quote_id)
        if order is not None:
            self.touch(order, user)
            self.emit_order(order, "Updated", user)
        return true_false(True)

    def create_order_history(self, request: Request) -> Response:
        body = read_body(request)
        if body is None:
            raise ZnodeError("Order history model can not be null.", NULL_MODEL)
        detail_id = body.int("OmsOrderDetailsId", 0)
        if self.order_by_detail_id(detail_id) is None:
            raise fk_error("ZnodeOmsHistory", "OmsOrderDetailsId")
        amount = body.get("OrderAmount")
        stamp = now_text()
        row = {
            "OmsHistoryId": self.next_id("history"),
            "OmsOrderDetailsId": detail_id,
            "OmsNotesId": body.int("OmsNotesId", 0) or None,
            "Message": body.text("Message"),
            "TransactionId": body.text("TransactionId"),
            "OrderAmount": None if amount in (None, 0, "0") else money_text(amount),
            "CreatedBy": acting_user(request),
            "CreatedDate": stamp,
            "ModifiedBy": acting_user(request),
            "ModifiedDate": stamp,
        }
        self.state["order_history"].append(row)
        model = {
            **row,
            "OrderAmount": None if row["OrderAmount"] is None else money(amount),
            **model_base(row["CreatedBy"], stamp, row["ModifiedBy"], stamp),
        }
        return respond({"OrderHistory": model})

    def save_payment_detail(self, request: Request) -> Response:
        """Always inserts: a retried call records the payment twice."""
        body = read_body(request)
        if body is None:
            raise ZnodeError("Order payment model can not be null.", NULL_MODEL)
        reference = body.text("TransactionReference")
        if reference is not None and len(reference) > 50:
            raise ModelStateError(
                {"model.TransactionReference": "Maximum 50 characters are allowed."}
            )
        when = parse_date(body.get("TransactionDate"))
        if when is None or when.year < 1753:
            raise ZnodeError(
                "SqlDateTime overflow. Must be between 1/1/1753 12:00:00 AM and "
                "12/31/9999 11:59:59 PM."
            )
        order = self.order_by_id(body.int("OmsOrderId", 0))
        if order is None:
            raise fk_error("ZnodeOrderPayment", "OmsOrderId")
        self.insert_payment(
            order,
            reference,
            body.get("Total") or 0,
            body.text("TransactionStatus"),
            when,
            body.int("PaymentSettingId", 0),
            body.get("RemainingOrderAmount") or 0,
            acting_user(request),
        )
        self.mark_payment(order)
        return true_false(True)
