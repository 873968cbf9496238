"""Test-only routes under ``/znode/_test/``: what shoppers and the back office do in
the store (place and cancel orders, ship, change totals, open returns, sign up), plus
the simulator's own knobs. No auth, no fault injection, no GET cache. Plain JSON.

    GET  /_test/config                          -> current knobs
    POST /_test/config          {"cache_seconds": 0, "token_ttl": 2, "api_token_ttl": 600,
                                 "token_auth": false, "bodiless_error_rate": 0,
                                 "payment_history_has_reference": true,
                                 "timezone": "America/Chicago"}
    POST /_test/cache/clear
    GET  /_test/state                           -> the raw state
    POST /_test/orders          {"user_id": 11, "lines": [{"sku", "quantity", "price",
                                 "name"?}], "currency"?: "USD", "shipping"?, "tax"?,
                                 "discount"?, "portal_id"?, "payment_state"?,
                                 "payment_setting_id"?: 7, "card"?: "pm_card_visa",
                                 "transaction_id"?, "payment_token"?, "state"?: "SUBMITTED",
                                 "order_date"?, "external_id"?, "coupon_code"?, "note"?}
                                                -> 201 {"Order"}
                                 | 402 {"error", "decline_code", "code", "charge"}
                                 | 502 {"error", "gateway_status"}
        The checkout: on a gateway setting (7, 8) the payment app authorizes a Stripe charge
        (capture=false) for the total with "card" (what the shopper typed: a test id such
        as "pm_card_visa", "tok_visa", "pm_card_chargeDeclinedInsufficientFunds"); a
        declined card places no order (402). "transaction_id" / "payment_token" dictate
        the ids instead (no charge). Settings 10 / 11 charge nothing ("Pending", no ids).
        "payment_state" defaults to "Authorized" ("Pending" on 10 / 11). "order_date"
        without an offset is store-local time.
    GET  /_test/orders/{number}                 -> {"Order"} (fresh, all expands)
    POST /_test/orders/{number}/cancel  {"payment_state"?: "Voided"}
    POST /_test/orders/{number}/ship    {"tracking_number"?}
    POST /_test/orders/{number}/update_total {"lines"?, "shipping"?, "tax"?, "discount"?,
                                              "total"?}
    POST /_test/orders/{number}/state   {"state"?: "NAME", "payment_state"?: "Name",
                                         "tracking_number"?}
    POST /_test/returns         {"order_number", "lines"?: [{"sku" | "line_id",
                                 "quantity"}], "reason"?, "notes"?, "submit"?: true}
                                                -> 201 {"Return"}
    POST /_test/returns/{number}/state  {"state": "Approved"}
    POST /_test/customers       {"first_name", "last_name", "email", "phone"?,
                                 "portal_id"?: 1, "company"?, "address"?: {"address1",
                                 "city", "state", "postal_code", "country"}} -> 201 {"User"}
    POST /_test/customers/{user_id}/update  {"FirstName"?, "PhoneNumber"?, ...}
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from sandbox.http import Request, Response, Router
from sandbox.znode.common import jsonable
from sandbox.znode.payapp import CardDeclined, GatewayFailure
from sandbox.znode.wire import ZnodeError, money, money_text, parse_date, raw, zone_named


def _zone_name(value: Any) -> str:
    zone_named(str(value))  # ValueError for an unknown zone
    return str(value)


_KNOBS = {
    "cache_seconds": float,
    "token_ttl": float,
    "api_token_ttl": float,
    "token_auth": bool,
    "bodiless_error_rate": float,
    "payment_history_has_reference": bool,
    "timezone": _zone_name,
}


class StorefrontMixin:
    state: dict[str, Any]
    test_router: Router

    def register_test_routes(self) -> None:
        r = self.test_router
        r.add("GET", "/_test/config", self.t_get_config)
        r.add("POST", "/_test/config", self.t_set_config)
        r.add("POST", "/_test/cache/clear", self.t_clear_cache)
        r.add("GET", "/_test/state", lambda req: raw(self.state))
        r.add("POST", "/_test/orders", self.t_create_order)
        r.add("GET", "/_test/orders/{number}", self.t_get_order)
        r.add("POST", "/_test/orders/{number}/cancel", self.t_cancel_order)
        r.add("POST", "/_test/orders/{number}/ship", self.t_ship_order)
        r.add("POST", "/_test/orders/{number}/update_total", self.t_update_total)
        r.add("POST", "/_test/orders/{number}/state", self.t_order_state)
        r.add("POST", "/_test/returns", self.t_create_return)
        r.add("POST", "/_test/returns/{number}/state", self.t_return_state)
        r.add("POST", "/_test/customers", self.t_create_customer)
        r.add("POST", "/_test/customers/{userId}/update", self.t_update_customer)

    def handle_test(self, request: Request, subpath: str) -> Response:
        handler, params, exists = self.test_router.match(request.method, subpath)
        if handler is None:
            status = 405 if exists else 404
            return raw({"error": "method not allowed" if exists else "unknown test route"}, status)
        request.params = params
        with self.lock:
            try:
                return handler(request)
            except CardDeclined as exc:
                return raw(
                    {
                        "error": exc.message,
                        "decline_code": exc.decline_code,
                        "code": exc.stripe_code,
                        "charge": exc.charge,
                    },
                    402,
                )
            except GatewayFailure as exc:
                return raw({"error": exc.message, "gateway_status": exc.gateway_status}, 502)
            except ZnodeError as exc:
                return raw({"error": exc.message, "code": exc.code}, 400)
            except (KeyError, TypeError, ValueError) as exc:
                return raw({"error": f"bad request: {type(exc).__name__}: {exc}"}, 400)

    # --- helpers -------------------------------------------------------------------------
    @staticmethod
    def _json(request: Request) -> dict:
        if not request.body:
            return {}
        data = json.loads(request.body, parse_float=Decimal)
        if not isinstance(data, dict):
            raise ValueError("body must be a JSON object")
        return data

    def _order(self, request: Request) -> dict:
        order = self.order_by_number(request.params["number"])
        if order is None:
            raise KeyError(f"order {request.params['number']} not found")
        return order

    def _order_answer(self, order: dict, status: int = 200) -> Response:
        return raw({"Order": self.full_order(order)}, status)

    # --- config ----------------------------------------------------------------------------
    def t_get_config(self, request: Request) -> Response:
        return raw(self.state["config"])

    def t_set_config(self, request: Request) -> Response:
        data = self._json(request)
        for key, value in data.items():
            kind = _KNOBS.get(key)
            if kind is None:
                return raw({"error": f"unknown setting {key!r}", "known": sorted(_KNOBS)}, 400)
            if kind is bool:
                value = (
                    value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
                )
            self.state["config"][key] = kind(value)
        if "cache_seconds" in data:
            self.cache.clear()
        return raw(self.state["config"])

    def t_clear_cache(self, request: Request) -> Response:
        self.cache.clear()
        return raw({"ok": True})

    # --- orders ----------------------------------------------------------------------------
    def t_create_order(self, request: Request) -> Response:
        data = self._json(request)
        order_date = parse_date(data["order_date"]) if data.get("order_date") else None
        order = self.place_order(
            user_id=int(data["user_id"]),
            lines=data.get("lines") or [],
            portal_id=data.get("portal_id"),
            currency=data.get("currency") or "USD",
            shipping=data.get("shipping", "0"),
            tax=data.get("tax", "0"),
            discount=data.get("discount", "0"),
            payment_setting_id=data.get("payment_setting_id"),
            payment_state=data.get("payment_state") or None,
            transaction_id=data.get("transaction_id"),
            payment_token=data.get("payment_token"),
            card=data.get("card") or None,
            order_date=order_date,
            state_name=data.get("state") or "SUBMITTED",
            external_id=data.get("external_id"),
            coupon_code=data.get("coupon_code"),
            instructions=data.get("note"),
            emit=True,
        )
        return self._order_answer(order, 201)

    def t_get_order(self, request: Request) -> Response:
        return self._order_answer(self._order(request))

    def _change_state(
        self,
        order: dict,
        state_name: str | None,
        payment_state: str | None,
        tracking: Any = ...,
    ) -> None:
        if state_name:
            row = self.order_state_named(state_name)
            if row is None:
                raise ValueError(f"unknown order state {state_name!r}")
            keep = order["TrackingNumber"] if tracking is ... else tracking
            self.set_order_state(order, row["OmsOrderStateId"], keep, order["UserId"])
        if payment_state:
            pay = self.payment_state_named(payment_state)
            if pay is None:
                raise ValueError(f"unknown payment state {payment_state!r}")
            order["OmsPaymentStateId"] = pay["OmsPaymentStateId"]
            self.touch(order, order["UserId"])
        self.emit_order(order, "Updated", order["UserId"])

    def t_cancel_order(self, request: Request) -> Response:
        order, data = self._order(request), self._json(request)
        self._change_state(order, "CANCELED", data.get("payment_state"))
        return self._order_answer(order)

    def t_ship_order(self, request: Request) -> Response:
        order, data = self._order(request), self._json(request)
        tracking = data.get("tracking_number") or f"1ZSBX{order['OmsOrderId']:010d}"
        self._change_state(order, "SHIPPED", data.get("payment_state"), tracking)
        for line in order["Lines"]:
            line["TrackingNumber"] = tracking
        return self._order_answer(order)

    def t_order_state(self, request: Request) -> Response:
        order, data = self._order(request), self._json(request)
        tracking = data.get("tracking_number", ...)
        self._change_state(order, data.get("state"), data.get("payment_state"), tracking)
        return self._order_answer(order)

    def t_update_total(self, request: Request) -> Response:
        order, data = self._order(request), self._json(request)
        if data.get("lines"):
            for spec in data["lines"]:
                line = next(
                    (
                        x
                        for x in order["Lines"]
                        if x["Sku"].lower() == str(spec.get("sku", "")).lower()
                    ),
                    None,
                )
                if line is None:
                    raise ValueError(f"no line with sku {spec.get('sku')!r}")
                if "quantity" in spec:
                    line["Quantity"] = money_text(spec["quantity"])
                if "price" in spec:
                    line["Price"] = money_text(spec["price"])
        for key, column in (
            ("shipping", "ShippingCost"),
            ("tax", "TaxCost"),
            ("discount", "DiscountAmount"),
        ):
            if key in data:
                order[column] = money_text(data[key])
        self.recalculate(order)
        if "total" in data:
            # An admin override: the difference lands in the discount.
            delta = money(order["Total"]) - money(data["total"])
            order["DiscountAmount"] = money_text(money(order["DiscountAmount"]) + delta)
            self.recalculate(order)
        self.touch(order, order["UserId"])
        self.emit_order(order, "Updated", order["UserId"])
        return self._order_answer(order)

    # --- returns ---------------------------------------------------------------------------
    def t_create_return(self, request: Request) -> Response:
        data = self._json(request)
        order = self.order_by_number(data["order_number"])
        if order is None:
            raise KeyError(f"order {data['order_number']} not found")
        lines = []
        for spec in data.get("lines") or []:
            lines.append(
                {
                    "line_id": spec.get("line_id"),
                    "sku": spec.get("sku"),
                    "quantity": spec.get("quantity", 1),
                }
            )
        record = self.create_return(
            order,
            lines,
            submit=data.get("submit", True) is not False,
            notes=data.get("notes"),
            reason=data.get("reason"),
            user_id=order["UserId"],
        )
        return raw({"Return": self.return_model(record)}, 201)

    def t_return_state(self, request: Request) -> Response:
        record = self.return_by_number(request.params["number"])
        if record is None:
            raise KeyError(f"return {request.params['number']} not found")
        data = self._json(request)
        row = self.return_state_named(str(data["state"]))
        if row is None:
            raise ValueError(f"unknown return state {data['state']!r}")
        self.set_return_state(record, row["RmaReturnStateId"], 0)
        self.emit_return(record, "Updated", 0)
        return raw({"Return": self.return_model(record)})

    # --- customers -------------------------------------------------------------------------
    def t_create_customer(self, request: Request) -> Response:
        data = self._json(request)
        row = self.create_user(
            first=data["first_name"],
            last=data["last_name"],
            email=data["email"],
            phone=data.get("phone"),
            portal_id=int(data.get("portal_id") or 1),
            company=data.get("company"),
            address=data.get("address"),
        )
        return raw({"User": self.user_model(row)}, 201)

    def t_update_customer(self, request: Request) -> Response:
        row = self.user_by_id(int(request.params["userId"]))
        if row is None:
            raise KeyError(f"user {request.params['userId']} not found")
        data = self._json(request)
        for key, value in data.items():
            if key not in row or key in ("UserId", "CreatedDate", "CreatedBy"):
                raise ValueError(f"unknown or read-only field {key!r}")
            row[key] = jsonable(value)
        self.touch_user(row, row["UserId"])
        self.emit_user(row, "Updated", row["UserId"])
        return raw({"User": self.user_model(row)})
