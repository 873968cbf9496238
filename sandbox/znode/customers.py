"""Customers (UserModel) and their addresses, with the 9.x write semantics:

- ``PUT customeraccount/update`` writes every ZnodeUser column from the posted model
  (an omitted field becomes null/false) and echoes the posted model, not the row;
- ``useraccounts/{userId}/{portalId}`` answers ``Addresses: null`` (use addresslist);
- ``PUT customer/updatecustomeraddress`` replaces the address row, clears the other
  addresses' default flags (per flag set in the model) and answers 201;
- ``customer/addresslist`` filters, sorts and pages the user-address links
  (ZnodeUserAddress, §6), not the address rows: its dates are those of the link,
  written when the address was added to the user and not by an address update.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sandbox.http import Request, Response
from sandbox.znode.common import Body, acting_user, fk_error, jsonable, path_int, read_body
from sandbox.znode.query import Table, parse_query, select
from sandbox.znode.seed import PORTALS, address_row, user_row
from sandbox.znode.wire import (
    ID_LESS_THAN_ONE,
    INVALID_DATA,
    NULL_MODEL,
    ZnodeError,
    model_base,
    no_content,
    now_text,
    paging_fields,
    respond,
)


def user_model_defaults() -> dict[str, Any]:
    """Every UserModel property at its .NET default."""
    return {
        "UserId": 0,
        "AspNetUserId": None,
        "AspNetZnodeUserId": None,
        "UserName": None,
        "LoginName": None,
        "Email": None,
        "FirstName": None,
        "LastName": None,
        "MiddleName": None,
        "FullName": None,
        "PhoneNumber": None,
        "CompanyName": None,
        "ExternalId": None,
        "PortalId": None,
        "PortalIds": None,
        "StoreName": None,
        "StoreCode": None,
        "AccountId": None,
        "Accountname": None,
        "AccountCode": None,
        "ProfileId": None,
        "Profiles": None,
        "RoleId": None,
        "RoleName": None,
        "IsLock": False,
        "EmailOptIn": False,
        "SMSOptIn": False,
        "IsGuestUser": False,
        "IsWebStoreUser": False,
        "IsAdminUser": False,
        "IsVerified": False,
        "IsActive": False,
        "Addresses": None,
        "BudgetAmount": None,
        "PerOrderLimit": None,
        "AnnualOrderLimit": None,
        "BillingAccountNumber": None,
        "CustomerPaymentGUID": None,
        "LocaleId": 0,
        "SalesRepId": None,
        "UserGlobalAttributes": None,
        **model_base(),
    }


# ZnodeUser columns that customeraccount/update writes from the model, omitted or not.
# (UserName/LoginName live in AspNetUsers, store and role in other tables: kept.)
USER_TABLE_COLUMNS = (
    "FirstName",
    "LastName",
    "MiddleName",
    "Email",
    "PhoneNumber",
    "CompanyName",
    "ExternalId",
    "AccountId",
    "EmailOptIn",
    "SMSOptIn",
    "BudgetAmount",
    "PerOrderLimit",
    "AnnualOrderLimit",
    "BillingAccountNumber",
    "CustomerPaymentGUID",
    "IsVerified",
    "SalesRepId",
)
_MONEY_USER_FIELDS = ("BudgetAmount", "PerOrderLimit", "AnnualOrderLimit")

ADDRESS_MODEL_EXTRA = {
    "AspNetUserId": None,
    "omsOrderId": 0,
    "omsOrderShipmentId": None,
    "WarehouseId": None,
    "GatewayCode": None,
    "FromBillingShipping": None,
    "IsShippingBillingDifferent": False,
    "DontAddUpdateAddress": False,
}
# Address columns written from the model on update (keys kept: ids, owner, audit).
_ADDRESS_KEEP = ("AddressId", "UserAddressId", "UserId", "CreatedBy", "CreatedDate")
# ZnodeUserAddress, the table customer/addresslist filters and sorts on (§6).
USER_ADDRESS_COLUMNS = (
    "UserAddressId",
    "UserId",
    "AddressId",
    "CreatedBy",
    "CreatedDate",
    "ModifiedBy",
    "ModifiedDate",
)


class CustomersMixin:
    state: dict[str, Any]

    def user_by_id(self, user_id: int | None) -> dict | None:
        return self.state["users"].get(str(user_id))

    def addresses_of(self, user_id: int) -> list[dict]:
        return [a for a in self.state["addresses"].values() if a["UserId"] == user_id]

    def user_model(self, row: dict) -> dict:
        model = user_model_defaults()
        model.update(row)
        model["LoginName"] = row["UserName"]
        model["FullName"] = " ".join(p for p in (row["FirstName"], row["LastName"]) if p) or None
        model["PortalIds"] = [str(row["PortalId"])] if row.get("PortalId") else None
        for name in _MONEY_USER_FIELDS:
            if model[name] is not None:
                model[name] = Decimal(str(model[name]))
        model["Addresses"] = None  # always null here: read customer/addresslist
        return model

    def address_model(self, row: dict, *, listed: bool = False) -> dict:
        return {
            **row,
            **ADDRESS_MODEL_EXTRA,
            "DontAddUpdateAddress": listed,
            **model_base(
                row.get("CreatedBy"),
                row.get("CreatedDate"),
                row.get("ModifiedBy"),
                row.get("ModifiedDate"),
            ),
        }

    def create_user(
        self,
        *,
        first: str,
        last: str,
        email: str,
        phone: str | None = None,
        portal_id: int = 1,
        company: str | None = None,
        address: dict | None = None,
        guest: bool = False,
        emit: bool = True,
    ) -> dict:
        if portal_id not in PORTALS:
            raise ZnodeError(f"Portal {portal_id} does not exist.", INVALID_DATA)
        if any(
            u["UserName"].lower() == email.lower() and u["PortalId"] == portal_id
            for u in self.state["users"].values()
        ):
            raise ZnodeError("User name already exists.", 2)
        user_id = self.next_id("user")
        stamp = now_text()
        row = user_row(user_id, first, last, email, phone, portal_id, company, stamp, guest=guest)
        self.state["users"][str(user_id)] = row
        if address:
            address_id = self.next_id("address")
            self.state["addresses"][str(address_id)] = address_row(
                address_id,
                row,
                address.get("address1") or address.get("line") or "1 Main St",
                address.get("city") or "Springfield",
                address.get("state") or "IL",
                address.get("postal_code") or address.get("zip") or "62701",
                address.get("country") or "US",
                True,
                True,
                stamp,
            )
        if emit:
            self.emit_user(row, "Created", user_id)
        return row

    def touch_user(self, row: dict, user: int) -> None:
        row["ModifiedDate"] = now_text()
        row["ModifiedBy"] = user

    # --- routes ------------------------------------------------------------------------
    def register_customer_routes(self) -> None:
        get, put, post = self.get_route, self.put_route, self.post_route
        get("/useraccounts/{userId}/{portalId}", self.get_user_account, cached=True)
        get("/users/getcustomeraccountdetails/{userId}", self.get_customer_account, cached=True)
        get("/customeraccount/list/{loggedUserAccountId}", self.list_customers, cached=True)
        put("/customeraccount/update", self.update_customer_account)
        get("/customer/addresslist", self.address_list, cached=True)
        put("/customer/updatecustomeraddress", self.update_customer_address)
        post("/customer/createcustomeraddress", self.create_customer_address)

    def _user_response(self, row: dict | None) -> Response:
        if row is None:
            return no_content()
        return respond({"User": self.user_model(row), "UserPortal": None})

    def get_user_account(self, request: Request) -> Response:
        return self._user_response(self.user_by_id(path_int(request, "userId")))

    def get_customer_account(self, request: Request) -> Response:
        return self._user_response(self.user_by_id(path_int(request, "userId")))

    def list_customers(self, request: Request) -> Response:
        if path_int(request, "loggedUserAccountId") is None:
            return self.not_found(request.path)
        query = parse_query(request)
        rows = [self.user_model(u) for u in self.state["users"].values()]
        table = Table(
            columns=tuple(user_model_defaults()),
            dates=("CreatedDate", "ModifiedDate"),
            default_sort=[("createddate", True), ("userid", True)],
        )
        page = select(rows, query, table)
        if page.empty:
            return no_content()
        return respond({"Users": page.rows, **paging_fields(page.index, page.size, page.total)})

    def update_customer_account(self, request: Request) -> Response:
        """Replaces the whole ZnodeUser row from the posted model; echoes the model."""
        body = read_body(request)
        if body is None:
            raise ZnodeError("User model can not be null.", NULL_MODEL)
        user_id = body.int("UserId", 0)
        if user_id < 1:
            raise ZnodeError("User id can not be less than 1.", ID_LESS_THAN_ONE)
        row = self.user_by_id(user_id)
        if row is None:
            raise ZnodeError(None)  # the service answers false: a 500 without a body
        echo = user_model_defaults()
        for key in echo:
            if body.has(key):
                echo[key] = body.get(key)
        for column in USER_TABLE_COLUMNS:
            value = echo[column]
            if column in _MONEY_USER_FIELDS and value is not None:
                value = str(value)
            row[column] = jsonable(value)
        acting = acting_user(request)
        self.touch_user(row, acting)
        self.emit_user(row, "Updated", acting)
        return respond({"User": echo, "UserPortal": None})

    ADDRESS_TABLE_DATES = ("CreatedDate", "ModifiedDate")

    @staticmethod
    def user_address_link(row: dict) -> dict:
        """The ZnodeUserAddress row of an address: inserted once, when the address is
        added to the user (createcustomeraddress); updatecustomeraddress writes the
        address row only, so the link keeps its dates."""
        return {
            "UserAddressId": row.get("UserAddressId"),
            "UserId": row.get("UserId"),
            "AddressId": row["AddressId"],
            "CreatedBy": row.get("CreatedBy"),
            "CreatedDate": row.get("CreatedDate"),
            "ModifiedBy": row.get("CreatedBy"),
            "ModifiedDate": row.get("CreatedDate"),
        }

    def address_list(self, request: Request) -> Response:
        """CustomerService.GetAddressList: filter, sort and page the user-address links
        (§6: "on ZnodeUserAddress"; a filter on another column is an unknown column,
        500, §12), then answer each link's address row."""
        query = parse_query(request)
        addresses = self.state["addresses"]
        links = [self.user_address_link(a) for a in addresses.values()]
        table = Table(
            columns=USER_ADDRESS_COLUMNS,
            dates=self.ADDRESS_TABLE_DATES,
            default_sort=[("addressid", False)],
        )
        page = select(links, query, table)
        if page.empty:
            return no_content()
        page.rows = [
            self.address_model(addresses[str(link["AddressId"])], listed=True) for link in page.rows
        ]
        names = {(a["FirstName"], a["LastName"]) for a in page.rows}
        user_ids = {a["UserId"] for a in page.rows}
        customer = None
        if len(user_ids) == 1:
            user = self.user_by_id(next(iter(user_ids)))
            if user:
                customer = f"{user['FirstName']} {user['LastName']}"
        elif len(names) == 1:
            customer = " ".join(next(iter(names)))
        return respond(
            {
                "AddressList": page.rows,
                "CustomerName": customer,
                **paging_fields(page.index, page.size, page.total),
            }
        )

    def _clear_default_flags(self, body: Body, address_id: int | None) -> None:
        """AddressHelper.SetAddressFlagsToFalse: among the model's UserId's addresses (or
        only this address when the user has none), clear the flags the model sets."""
        billing, shipping = body.bool("IsDefaultBilling"), body.bool("IsDefaultShipping")
        user_id = body.int("UserId", 0)
        user = self.user_by_id(user_id)
        if user is not None and user.get("IsGuestUser"):
            return
        rows = self.addresses_of(user_id)
        if not rows and address_id is not None:
            rows = (
                [self.state["addresses"][str(address_id)]]
                if str(address_id) in self.state["addresses"]
                else []
            )
        for row in rows:
            if billing and shipping:
                if row["IsDefaultBilling"] or row["IsDefaultShipping"]:
                    row["IsDefaultBilling"] = row["IsDefaultShipping"] = False
                    row["ModifiedDate"] = now_text()
            elif billing and row["IsDefaultBilling"]:
                row["IsDefaultBilling"] = False
                row["ModifiedDate"] = now_text()
            elif shipping and row["IsDefaultShipping"]:
                row["IsDefaultShipping"] = False
                row["ModifiedDate"] = now_text()

    def _address_from_body(self, body: Body, template: dict) -> dict:
        out = {}
        for key, value in template.items():
            if key in _ADDRESS_KEEP:
                out[key] = value
            elif isinstance(value, bool):
                out[key] = body.bool(key)
            else:
                out[key] = jsonable(body.get(key))
        return out

    def update_customer_address(self, request: Request) -> Response:
        body = read_body(request)
        if body is None:
            raise ZnodeError("Model can not be null.", NULL_MODEL)
        address_id = body.int("AddressId", 0)
        if address_id < 1:
            raise ZnodeError("Address id can not be less than 1.", ID_LESS_THAN_ONE)
        current = self.state["addresses"].get(str(address_id))
        if current is None:
            raise ZnodeError("Object reference not set to an instance of an object.")
        self._clear_default_flags(body, address_id)
        replaced = self._address_from_body(body, current)
        replaced["ModifiedDate"] = now_text()
        replaced["ModifiedBy"] = acting_user(request)
        self.state["addresses"][str(address_id)] = replaced
        self.emit_address(replaced, "Updated", acting_user(request))
        echo = {**{k: None for k in current}, **ADDRESS_MODEL_EXTRA, **model_base()}
        for key in list(echo):
            if body.has(key):
                echo[key] = body.get(key)
        return respond({"Address": echo}, 201)

    def create_customer_address(self, request: Request) -> Response:
        body = read_body(request)
        if body is None:
            raise ZnodeError("Model can not be null.", NULL_MODEL)
        user_id = body.int("UserId", 0)
        if user_id < 1:
            raise ZnodeError("User id can not be less than 1.", INVALID_DATA)
        user = self.user_by_id(user_id)
        if user is None:
            raise fk_error("ZnodeUserAddress", "UserId")
        self._clear_default_flags(body, None)
        address_id = self.next_id("address")
        template = address_row(address_id, user, "", "", "", "", "", False, False, now_text())
        row = self._address_from_body(body, template)
        row["ModifiedDate"] = row["CreatedDate"]
        row["CreatedBy"] = row["ModifiedBy"] = acting_user(request)
        self.state["addresses"][str(address_id)] = row
        self.emit_address(row, "Created", acting_user(request))
        return respond(
            {"Address": self.address_model(row)},
            201,
            Location=f"/customer/getcustomeraddress/{row['UserAddressId']}",
        )
