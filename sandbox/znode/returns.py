"""Returns (9.x RMA Return routes). The API never calls a gateway: the admin records the
refund with ``rmareturn/createreturnhistory`` and saves the return in state 80
(Refund Processed).

- ``rmareturn/getreturndetails/{n}`` fills ``ReturnLineItems`` only with
  ``expand=returnitemlist`` and ``ReturnNotes`` only with ``expand=returnnotes``
  (RMAReturnService.GetReturnDetails); otherwise they are null.
- ``rmareturn/saveorderreturn`` (create and update alike) refuses a model without
  ``ReturnLineItems`` (null or empty) with 500 NullModel (ErrorCode 1) before anything
  else, so re-posting a model read without ``returnitemlist`` changes nothing.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sandbox.http import Request, Response
from sandbox.znode.common import (
    acting_user,
    fk_error,
    jsonable,
    path_param,
    read_body,
    read_list,
)
from sandbox.znode.orders import ZERO_DECIMAL
from sandbox.znode.query import Table, parse_query, select
from sandbox.znode.seed import PORTALS
from sandbox.znode.wire import (
    INVALID_DATA,
    NOT_ORDER_ELIGIBLE_FOR_RETURN,
    NULL_MODEL,
    ModelStateError,
    ZnodeError,
    model_base,
    money,
    money_text,
    no_content,
    now_text,
    paging_fields,
    respond,
    true_false,
)

RETURNABLE_ORDER_STATES = {"SUBMITTED", "SHIPPED", "APPROVED", "PARTIAL REFUND"}
RETURNABLE_LINE_STATES = {10, 20}
OPEN_RETURN_STATES = {10, 30, 40}
REJECTED, NOT_SUBMITTED, SUBMITTED, APPROVED, REFUND_PROCESSED = 60, 20, 10, 50, 80


class ReturnsMixin:
    state: dict[str, Any]

    def return_state(self, state_id: int | None) -> dict | None:
        return next(
            (s for s in self.state["return_states"] if s["RmaReturnStateId"] == state_id), None
        )

    def return_state_named(self, name: str) -> dict | None:
        return next(
            (
                s
                for s in self.state["return_states"]
                if s["ReturnStateName"].lower() == str(name).lower()
            ),
            None,
        )

    def return_by_number(self, number: str) -> dict | None:
        number = str(number).strip().lower()
        return next(
            (r for r in self.state["returns"].values() if r["ReturnNumber"].lower() == number),
            None,
        )

    def return_by_id(self, return_id: int | None) -> dict | None:
        return next(
            (r for r in self.state["returns"].values() if r["RmaReturnDetailsId"] == return_id),
            None,
        )

    def returnable_quantity(self, order: dict, line: dict, exclude: int | None = None) -> Decimal:
        taken = Decimal(0)
        for ret in self.state["returns"].values():
            if ret["RmaReturnStateId"] == REJECTED or ret["RmaReturnDetailsId"] == exclude:
                continue
            for item in ret["ReturnLineItems"]:
                if item["OmsOrderLineItemsId"] == line["OmsOrderLineItemsId"]:
                    taken += money(item["ExpectedReturnQuantity"])
        return money(line["Quantity"]) - taken

    def order_is_returnable(self, order: dict) -> bool:
        state = self.order_state(order["OmsOrderStateId"]) or {}
        return state.get("OrderStateName") in RETURNABLE_ORDER_STATES

    def create_return(
        self,
        order: dict,
        lines: list[dict],
        *,
        submit: bool = True,
        notes: str | None = None,
        reason: str | None = None,
        user_id: int = 0,
        emit: bool = True,
        when: str | None = None,
    ) -> dict:
        """``lines``: [{line_id | sku, quantity}] (empty: every line, full quantity)."""
        if not self.order_is_returnable(order):
            raise ZnodeError("Order is not eligible for return.", NOT_ORDER_ELIGIBLE_FOR_RETURN)
        if not lines:
            lines = [
                {"line_id": x["OmsOrderLineItemsId"], "quantity": x["Quantity"]}
                for x in order["Lines"]
            ]
        subtotal_all = money(order["SubTotal"]) or Decimal(1)
        unit = Decimal(1) if order["CurrencyCode"] in ZERO_DECIMAL else Decimal("0.01")
        return_id = self.next_id("return")
        stamp = when or now_text()
        items = []
        for spec in lines:
            line = next(
                (
                    x
                    for x in order["Lines"]
                    if x["OmsOrderLineItemsId"] == spec.get("line_id")
                    or (
                        spec.get("line_id") is None
                        and x["Sku"].lower() == str(spec.get("sku", "")).lower()
                    )
                ),
                None,
            )
            if line is None:
                raise ZnodeError("Invalid order line item.", INVALID_DATA)
            if line["OrderLineItemStateId"] not in RETURNABLE_LINE_STATES:
                raise ZnodeError("Order is not eligible for return.", NOT_ORDER_ELIGIBLE_FOR_RETURN)
            quantity = money(spec.get("quantity", 1))
            if quantity < 1 or quantity > self.returnable_quantity(order, line):
                raise ZnodeError(
                    "Expected return quantity exceeds the returnable quantity.", INVALID_DATA
                )
            amount = quantity * money(line["Price"])
            tax = (money(order["TaxCost"]) * amount / subtotal_all).quantize(
                unit, rounding=ROUND_HALF_UP
            )
            items.append(
                {
                    "RmaReturnLineItemsId": self.next_id("return_line"),
                    "RmaReturnDetailsId": return_id,
                    "OmsOrderLineItemsId": line["OmsOrderLineItemsId"],
                    "ParentOmsOrderLineItemsId": None,
                    "Sku": line["Sku"],
                    "ProductName": line["ProductName"],
                    "ExpectedReturnQuantity": money_text(quantity),
                    "ReturnedQuantity": None,
                    "ShippedQuantity": line["Quantity"],
                    "Price": line["Price"],
                    "TaxCost": money_text(tax),
                    "ShippingCost": "0",
                    "DiscountAmount": "0",
                    "RmaReasonForReturnId": 1,
                    "RmaReasonForReturn": reason or "Other",
                    "RmaReturnStateId": SUBMITTED if submit else NOT_SUBMITTED,
                    "IsShippingReturn": False,
                }
            )
        state_id = SUBMITTED if submit else NOT_SUBMITTED
        record = {
            "RmaReturnDetailsId": return_id,
            "ReturnNumber": f"SBX-RMA-{return_id - 500:06d}",
            "OmsOrderId": order["OmsOrderId"],
            "OmsOrderDetailsId": order["OmsOrderDetailsId"],
            "OrderNumber": order["OrderNumber"],
            "ReturnDate": stamp,
            "RmaReturnStateId": state_id,
            "EmailId": order["Email"],
            "PortalId": order["PortalId"],
            "UserId": order["UserId"],
            "FirstName": order["FirstName"],
            "LastName": order["LastName"],
            "PhoneNumber": order["PhoneNumber"],
            "CurrencyCode": order["CurrencyCode"],
            "CultureCode": order["CultureCode"],
            "ReturnShippingCost": "0",
            "ReturnCharges": "0",
            "DiscountAmount": "0",
            "Notes": notes,
            "IsSubmitReturn": submit,
            "ReturnLineItems": items,
            "ReturnNotes": [],
            "CreatedBy": user_id or order["UserId"],
            "CreatedDate": stamp,
            "ModifiedBy": user_id or order["UserId"],
            "ModifiedDate": stamp,
        }
        if notes:
            record["ReturnNotes"].append(
                {
                    "RmaReturnNotesId": self.next_id("return_history"),
                    "Notes": notes,
                    "CreatedDate": stamp,
                }
            )
        self.state["returns"][str(return_id)] = record
        order["IsInRMA"] = True
        if emit:
            self.emit_return(record, "Created", user_id or order["UserId"])
        return record

    def set_return_state(self, record: dict, state_id: int, user_id: int = 0) -> None:
        record["RmaReturnStateId"] = state_id
        for item in record["ReturnLineItems"]:
            item["RmaReturnStateId"] = state_id
            if state_id in (APPROVED, REFUND_PROCESSED, 40) and item["ReturnedQuantity"] is None:
                item["ReturnedQuantity"] = item["ExpectedReturnQuantity"]
        record["ModifiedDate"] = now_text()
        record["ModifiedBy"] = user_id

    # --- rendering -------------------------------------------------------------------
    def return_model(
        self,
        record: dict,
        *,
        with_lines: bool = True,
        line_items: bool | None = None,
        notes: bool | None = None,
    ) -> dict:
        """``with_lines`` False: a list row (no collections). ``line_items`` / ``notes``
        (default: ``with_lines``) fill ReturnLineItems / ReturnNotes."""
        items_wanted = with_lines if line_items is None else line_items
        notes_wanted = with_lines if notes is None else notes
        state = self.return_state(record["RmaReturnStateId"]) or {}
        items = record["ReturnLineItems"]
        subtotal = sum(
            (money(i["ExpectedReturnQuantity"]) * money(i["Price"]) for i in items), Decimal(0)
        )
        tax = sum((money(i["TaxCost"]) for i in items), Decimal(0))
        shipping, charges = money(record["ReturnShippingCost"]), money(record["ReturnCharges"])
        discount = money(record["DiscountAmount"])
        total = subtotal + shipping + tax - discount - charges
        history = [
            {
                "RmaReturnHistoryId": h["RmaReturnHistoryId"],
                "TransactionId": h["TransactionId"],
                "ReturnAmount": money(h["ReturnAmount"]),
                "Message": h["Message"],
                "Notes": None,
                "CreatedDate": h["CreatedDate"],
            }
            for h in self.state["return_history"]
            if h["RmaReturnDetailsId"] == record["RmaReturnDetailsId"]
        ]
        history += [
            {
                "RmaReturnHistoryId": None,
                "TransactionId": None,
                "ReturnAmount": None,
                "Message": None,
                "Notes": n["Notes"],
                "CreatedDate": n["CreatedDate"],
            }
            for n in record["ReturnNotes"]
        ]
        model = {
            **{
                k: v
                for k, v in record.items()
                if k
                not in (
                    "ReturnLineItems",
                    "ReturnNotes",
                    "CreatedBy",
                    "CreatedDate",
                    "ModifiedBy",
                    "ModifiedDate",
                )
            },
            "ReturnStatus": state.get("ReturnStateName"),
            "OldReturnStatus": None,
            "TotalExpectedReturnQuantity": sum(
                (money(i["ExpectedReturnQuantity"]) for i in items), Decimal(0)
            ),
            "StoreName": PORTALS.get(record["PortalId"], {}).get("StoreName"),
            "AddressId": None,
            "ShippingId": None,
            "ShippingNumber": None,
            "SubTotal": subtotal,
            "ReturnShippingCost": shipping,
            "DiscountAmount": discount,
            "ReturnTaxCost": tax,
            "CSRDiscount": Decimal(0),
            "ReturnShippingDiscount": Decimal(0),
            "ReturnCharges": charges,
            "ReturnImportDuty": Decimal(0),
            "VoucherAmount": Decimal(0),
            "OverDueAmount": Decimal(0),
            "TotalReturnAmount": total,
            "IsAdminRequest": False,
            "IsRefundProcess": record["RmaReturnStateId"] == REFUND_PROCESSED,
            "ReturnLineItems": [self._return_line_model(i) for i in items]
            if items_wanted
            else None,
            "ReturnNotes": [dict(n) for n in record["ReturnNotes"]] if notes_wanted else None,
            "ReturnHistoryAndNotesList": history if with_lines else None,
            "RMAOrderModel": None,
            **model_base(
                record["CreatedBy"],
                record["CreatedDate"],
                record["ModifiedBy"],
                record["ModifiedDate"],
            ),
        }
        return model

    def _return_line_model(self, item: dict) -> dict:
        state = self.return_state(item["RmaReturnStateId"]) or {}
        quantity = money(item["ExpectedReturnQuantity"])
        return {
            **item,
            "ExpectedReturnQuantity": quantity,
            "ReturnedQuantity": None
            if item["ReturnedQuantity"] is None
            else money(item["ReturnedQuantity"]),
            "ShippedQuantity": money(item["ShippedQuantity"]),
            "Price": money(item["Price"]),
            "TaxCost": money(item["TaxCost"]),
            "ShippingCost": money(item["ShippingCost"]),
            "DiscountAmount": money(item["DiscountAmount"]),
            "RefundAmount": quantity * money(item["Price"]) + money(item["TaxCost"]),
            "ReturnStatus": state.get("ReturnStateName"),
            "PaymentStatusId": None,
            **model_base(),
        }

    # --- routes ------------------------------------------------------------------------
    def register_return_routes(self) -> None:
        get, post = self.get_route, self.post_route
        get("/rmareturn/list", self.list_returns, cached=True)
        get("/rmareturn/getreturndetails/{returnNumber}", self.get_return, cached=True)
        get("/rmareturn/getreturnstatuslist", self.return_status_list, cached=True)
        post("/rmareturn/saveorderreturn", self.save_order_return)
        post("/rmareturn/createreturnhistory", self.create_return_history)

    def list_returns(self, request: Request) -> Response:
        query = parse_query(request)
        rows = [self.return_model(r, with_lines=False) for r in self.state["returns"].values()]
        columns = tuple(rows[0]) if rows else ("ReturnNumber",)
        table = Table(
            columns=columns,
            dates=("ReturnDate", "CreatedDate", "ModifiedDate"),
            default_sort=[("returndate", True), ("rmareturndetailsid", True)],
        )
        page = select(rows, query, table)
        if page.empty:
            return no_content()
        paging = paging_fields(page.index, page.size, page.total)
        return respond({"ReturnList": {"Returns": page.rows, **paging, **model_base()}, **paging})

    def get_return(self, request: Request) -> Response:
        expand = parse_query(request).expand
        record = self.return_by_number(path_param(request, "returnNumber"))
        if record is None:
            return no_content()
        model = self.return_model(
            record, line_items="returnitemlist" in expand, notes="returnnotes" in expand
        )
        return respond({"Return": model})

    def return_status_list(self, request: Request) -> Response:
        rows = [{**s, **model_base()} for s in self.state["return_states"]]
        return respond({"ReturnStates": rows})

    def save_order_return(self, request: Request) -> Response:
        body = read_body(request)
        lines = body.get("ReturnLineItems") if body is not None else None
        if body is None or not isinstance(lines, list) or not lines:
            # SaveOrderReturn: IsNull(model) || IsNull(ReturnLineItems) || Count == 0
            raise ZnodeError("Model can not be null.", NULL_MODEL)
        user = acting_user(request)
        number = body.text("ReturnNumber")
        if number:
            record = self.return_by_number(number)
            if record is None:
                raise ZnodeError("Invalid return number.", INVALID_DATA)
            return self._update_return(record, body, user)
        if not body.text("OrderNumber"):
            raise ModelStateError({"model.OrderNumber": "The OrderNumber field is required."})
        order = self.order_by_number(body.text("OrderNumber"))
        if order is None:
            raise ZnodeError("Invalid order number.", INVALID_DATA)
        user_id = body.int("UserId", 0)
        if user_id and user_id != order["UserId"]:
            raise ZnodeError("Order is not eligible for return.", NOT_ORDER_ELIGIBLE_FOR_RETURN)
        specs = []
        for item in body.get("ReturnLineItems") or []:
            if not isinstance(item, dict):
                continue
            lowered = {str(k).lower(): v for k, v in item.items()}
            line_id = lowered.get("omsorderlineitemsid")
            quantity = lowered.get("expectedreturnquantity")
            if not line_id or quantity is None:
                raise ModelStateError(
                    {
                        "model.ReturnLineItems": "OmsOrderLineItemsId and ExpectedReturnQuantity "
                        "are required."
                    }
                )
            specs.append(
                {
                    "line_id": int(line_id),
                    "quantity": quantity,
                    "reason": jsonable(lowered.get("rmareasonforreturn")),
                }
            )
        if not specs:
            raise ZnodeError("Return line items are required.", INVALID_DATA)
        record = self.create_return(
            order,
            specs,
            submit=body.bool("IsSubmitReturn"),
            notes=body.text("Notes"),
            reason=specs[0].get("reason"),
            user_id=user or order["UserId"],
        )
        return respond({"Return": self.return_model(record)})

    def _update_return(self, record: dict, body, user: int) -> Response:
        state_id = body.int("RmaReturnStateId", 0)
        if body.bool("IsRefundProcess"):
            state_id = REFUND_PROCESSED
        elif body.bool("IsSubmitReturn") and record["RmaReturnStateId"] == NOT_SUBMITTED:
            state_id = state_id or SUBMITTED
        if state_id and self.return_state(state_id) is None:
            raise fk_error("ZnodeRmaReturnDetails", "RmaReturnStateId")
        for item in body.get("ReturnLineItems") or []:
            if not isinstance(item, dict):
                continue
            lowered = {str(k).lower(): v for k, v in item.items()}
            target = next(
                (
                    i
                    for i in record["ReturnLineItems"]
                    if i["RmaReturnLineItemsId"] == lowered.get("rmareturnlineitemsid")
                    or i["OmsOrderLineItemsId"] == lowered.get("omsorderlineitemsid")
                ),
                None,
            )
            if target is None:
                continue
            if lowered.get("returnedquantity") is not None:
                target["ReturnedQuantity"] = money_text(lowered["returnedquantity"])
            if lowered.get("rmareturnstateid"):
                target["RmaReturnStateId"] = int(lowered["rmareturnstateid"])
        if state_id:
            self.set_return_state(record, state_id, user)
        notes = body.text("Notes")
        if notes and notes != record["Notes"]:  # a re-posted model keeps its old note
            record["Notes"] = notes
            record["ReturnNotes"].append(
                {
                    "RmaReturnNotesId": self.next_id("return_history"),
                    "Notes": notes,
                    "CreatedDate": now_text(),
                }
            )
        record["ModifiedDate"] = now_text()
        record["ModifiedBy"] = user
        self.emit_return(record, "Updated", user)
        return respond({"Return": self.return_model(record)})

    def create_return_history(self, request: Request) -> Response:
        items = read_list(request)
        if not items:
            raise ZnodeError("Return history model can not be null.", NULL_MODEL)
        for item in items:
            if self.return_by_id(item.int("RmaReturnDetailsId", 0)) is None:
                raise fk_error("ZnodeRmaReturnHistory", "RmaReturnDetailsId")
        for item in items:
            self.state["return_history"].append(
                {
                    "RmaReturnHistoryId": self.next_id("return_history"),
                    "RmaReturnDetailsId": item.int("RmaReturnDetailsId"),
                    "TransactionId": item.text("TransactionId"),
                    "ReturnAmount": money_text(item.get("ReturnAmount") or 0),
                    "Message": item.text("Message"),
                    "CreatedBy": acting_user(request),
                    "CreatedDate": now_text(),
                }
            )
        return true_false(True)
