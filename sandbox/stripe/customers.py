"""Customers: create, retrieve, update (metadata merged), delete, list, search."""

from __future__ import annotations

import re

from sandbox.stripe import params as p
from sandbox.stripe.errors import invalid, no_such
from sandbox.stripe.store import random_token

CUSTOMER_FIELDS = (
    "address", "balance", "description", "email", "invoice_prefix", "invoice_settings",
    "metadata", "name", "payment_method", "phone", "preferred_locales", "shipping",
    "tax_exempt",
)  # fmt: skip
SEARCH_TERM = re.compile(
    r"""^\s*(\w+|metadata\[['"]([^'"]+)['"]\])\s*(:|~)\s*['"]([^'"]*)['"]\s*$"""
)


class CustomersMixin:
    def _customer_fields(self, params: dict, customer: dict) -> dict:
        """Apply create/update params to ``customer``; returns the previous values changed."""
        previous: dict = {}

        def put(key, value):
            if customer.get(key) != value:
                previous[key] = customer.get(key)
                customer[key] = value

        for key, limit in (("name", 256), ("phone", 20), ("description", 350)):
            if key in params:
                put(key, p.text(params, key, max_length=limit))
        if "email" in params:
            put("email", p.email(params, "email"))
        if "address" in params:
            put("address", p.address(params["address"], "address"))
        if "shipping" in params:
            put("shipping", p.shipping(params["shipping"]))
        if "balance" in params:
            put("balance", p.integer(params, "balance"))
        if "tax_exempt" in params:
            put("tax_exempt", p.text(params, "tax_exempt", choices=("none", "exempt", "reverse")))
        if "preferred_locales" in params:
            put("preferred_locales", p.string_list(params, "preferred_locales") or [])
        if "invoice_prefix" in params:
            put("invoice_prefix", p.text(params, "invoice_prefix", max_length=12))
        new_metadata = p.metadata(params, customer.get("metadata"))
        if new_metadata is not None:
            put("metadata", new_metadata)
        settings = p.dict_param(params, "invoice_settings")
        if settings is not None:
            p.check_known(
                settings,
                ("default_payment_method", "custom_fields", "footer", "rendering_options"),
                "invoice_settings",
            )
            current = dict(customer["invoice_settings"])
            if "default_payment_method" in settings:
                pm_id = p.text(settings, "default_payment_method")
                if pm_id is not None:
                    self._attached_pm(customer, pm_id)
                current["default_payment_method"] = pm_id
            if "footer" in settings:
                current["footer"] = p.text(settings, "footer", max_length=5000)
            if current != customer["invoice_settings"]:
                previous["invoice_settings"] = dict(customer["invoice_settings"])
                customer["invoice_settings"] = current
        return previous

    def _attached_pm(self, customer: dict, pm_id: str) -> dict:
        pm = self.find("payment_method", pm_id)
        if pm is None or pm.get("customer") != customer["id"]:
            raise invalid(
                f"The customer does not have a payment method with the ID {pm_id}. The payment "
                "method must be attached to the customer.",
                "invoice_settings[default_payment_method]",
                "resource_missing",
            )
        return pm

    def api_customers_create(self, call) -> dict:
        params = call.params
        p.check_known(params, CUSTOMER_FIELDS)
        customer = {
            "id": self.new_id("cus"),
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": self.now(),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": None,
            "discount": None,
            "email": None,
            "invoice_prefix": random_token(8).upper(),
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": {},
            "name": None,
            "next_invoice_sequence": 1,
            "phone": None,
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }
        # Validate everything before storing anything.
        pm_id = p.text(params, "payment_method")
        if pm_id:
            self._known_pm(pm_id)
            existing = self.find("payment_method", pm_id)
            if existing is not None:
                if existing.get("customer"):
                    raise invalid(
                        "The payment method you provided has already been attached to a customer.",
                        "payment_method",
                    )
                self._check_attachable(existing)
        settings = p.dict_param(params, "invoice_settings")
        default_pm = (settings or {}).get("default_payment_method")
        rest = {k: v for k, v in (settings or {}).items() if k != "default_payment_method"}
        fields = {**params, "invoice_settings": rest} if settings is not None else params
        self._customer_fields(fields, customer)
        if default_pm and default_pm != pm_id:
            raise invalid(
                f"The customer does not have a payment method with the ID {default_pm}. The "
                "payment method must be attached to the customer.",
                "invoice_settings[default_payment_method]",
                "resource_missing",
            )
        pm = self._usable_pm(pm_id) if pm_id else None
        if pm is not None and self.profile(pm).attach_declines:
            self._attach(pm, customer)  # raises the decline before the customer exists
        self.insert(customer)
        self.emit("customer.created", customer)
        if pm is not None:
            self._attach(pm, customer)
            if default_pm:
                customer["invoice_settings"]["default_payment_method"] = pm["id"]
        return self.render(customer, call.expand)

    def api_customers_retrieve(self, call) -> dict:
        customer = self.find("customer", call.path["id"])
        if customer is None:
            raise no_such("customer", call.path["id"])
        return self.render(customer, [] if customer.get("_deleted") else call.expand)

    def api_customers_update(self, call) -> dict:
        customer = self.get("customer", call.path["id"])
        params = call.params
        p.check_known(params, set(CUSTOMER_FIELDS) - {"payment_method"})
        scratch = {**customer, "invoice_settings": dict(customer["invoice_settings"])}
        previous = self._customer_fields(params, scratch)
        if previous:
            customer.update(scratch)
            self.emit("customer.updated", customer, previous)
        return self.render(customer, call.expand)

    def api_customers_delete(self, call) -> dict:
        customer = self.get("customer", call.path["id"])
        # Its PaymentMethods still name it (as on Stripe) but can no longer be used.
        self.emit("customer.deleted", customer)
        customer["_deleted"] = True
        return self.render(customer)

    def api_customers_list(self, call) -> dict:
        params = call.params
        p.check_known(
            params, ("created", "email", "ending_before", "limit", "starting_after", "test_clock")
        )
        wanted = p.text(params, "email", max_length=512)
        created = p.range_filter(params, "created")

        def keep(c: dict) -> bool:
            if wanted is not None and c["email"] != wanted:
                return False
            return not created or created(c["created"])

        return self.list_body(self.newest_first("customer", keep), params, "/v1/customers")

    def api_customers_search(self, call) -> dict:
        """A subset of the search language: ``field:'value'`` / ``field~'part'`` terms joined
        by AND, over email, name, phone, description and metadata['key']."""
        params = call.params
        p.check_known(params, ("limit", "page", "query"))
        query = p.text(params, "query", required=True)
        tests = []
        for term in re.split(r"\s+AND\s+", query):
            match = SEARCH_TERM.match(term)
            if not match or (
                match.group(2) is None
                and match.group(1) not in ("email", "name", "phone", "description")
            ):
                raise invalid(f"Invalid query: {term.strip()!r} is not supported.", "query")
            field, key, op, value = match.groups()
            tests.append((key, field, op, value))

        def keep(c: dict) -> bool:
            for key, field, op, value in tests:
                actual = c["metadata"].get(key) if key is not None else c.get(field)
                actual = actual or ""
                if op == ":" and actual.lower() != value.lower():
                    return False
                if op == "~" and value.lower() not in actual.lower():
                    return False
            return True

        items = self.newest_first("customer", keep)
        page_token = p.text(params, "page") or "0"
        if not page_token.isdigit():
            raise invalid(f"Invalid page: {page_token}", "page")
        offset = int(page_token)
        limit = p.integer(params, "limit") or 10
        if not 1 <= limit <= 100:
            raise invalid("Invalid limit: must be between 1 and 100", "limit")
        page = items[offset : offset + limit]
        more = len(items) > offset + limit
        return {
            "object": "search_result",
            "data": [self.render(c) for c in page],
            "has_more": more,
            "next_page": str(offset + limit) if more else None,
            "url": "/v1/customers/search",
        }
