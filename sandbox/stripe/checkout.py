"""Checkout Sessions in ``payment`` mode on the hosted page: create, retrieve, update
(metadata), list, line items, expire; the customer paying; expiry with the sandbox clock.

Since API 2022-08-01 a session has no PaymentIntent until the customer pays: paying (the hosted
page at ``GET /stripe/checkout/pay/{id}``, or the hook ``POST
/stripe/_test/checkout/sessions/{id}/pay``) creates it from ``amount_total`` and
``payment_intent_data`` and confirms it through the PaymentIntents status machine, so the
``payment_intent.*`` and ``charge.*`` events are those of a normal confirm. A decline leaves the
session open (the customer may try another card: the same PaymentIntent is confirmed again); a
success completes it (``payment_status`` ``paid``, or ``unpaid`` while a manual-capture payment
awaits capture or a processing one settles). An open session expires at ``expires_at``, or on
``POST .../expire``, and its unpaid PaymentIntent is canceled. On API 2026-10-28.endive the
session takes ``allowed_payment_method_types`` (``payment_method_types`` was removed on
2026-09-30) and ``ui_mode`` is ``hosted_page`` (renamed from ``hosted`` on 2026-03-25).
"""

from __future__ import annotations

import copy
import html
import re
from urllib.parse import urlsplit

from sandbox.http import Response
from sandbox.stripe import money
from sandbox.stripe import params as p
from sandbox.stripe.errors import StripeError, invalid, missing_param, no_such
from sandbox.stripe.payment_intents import OPEN
from sandbox.stripe.store import DAY

CREATE_PARAMS = (
    "allowed_payment_method_types", "cancel_url", "client_reference_id", "currency",
    "customer", "customer_email", "expires_at", "line_items", "locale", "metadata", "mode",
    "payment_intent_data", "success_url", "ui_mode",
)  # fmt: skip
INTENT_DATA_PARAMS = (
    "capture_method", "description", "metadata", "receipt_email", "setup_future_usage",
    "shipping", "statement_descriptor", "statement_descriptor_suffix",
)  # fmt: skip
LOCALES = (
    "auto", "bg", "cs", "da", "de", "el", "en", "en-GB", "es", "es-419", "et", "fi", "fil",
    "fr", "fr-CA", "hi-IN", "hr", "hu", "id", "it", "ja", "ko", "lt", "lv", "ms", "mt", "nb",
    "nl", "pl", "pt", "pt-BR", "ro", "ru", "sk", "sl", "sv", "th", "tr", "vi", "zh", "zh-HK",
    "zh-TW",
)  # fmt: skip
UI_MODES = ("elements", "embedded_page", "form", "hosted_page")
MIN_LIFETIME = 30 * 60
MAX_LIFETIME = DAY
MAX_LINE_ITEMS = 100
HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")
PAGE_CARDS = (
    ("pm_card_visa", "Visa •••• 4242 (succeeds)"),
    ("pm_card_mastercard", "Mastercard •••• 4444 (succeeds)"),
    ("pm_card_chargeDeclined", "Visa •••• 0002 (declined)"),
    ("pm_card_chargeDeclinedInsufficientFunds", "Visa •••• 9995 (insufficient funds)"),
)


def _url(params: dict, name: str, *, required: bool = False) -> str | None:
    value = p.text(params, name, required=required)
    if value is None:
        return None
    if len(value) > 5000:
        raise invalid("Invalid URL: URL must be 5000 characters or less.", name)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid("Not a valid URL", name, "url_invalid")
    return value


def _only_one(node: dict, first: str, second: str, where: str) -> None:
    if node.get(first) not in (None, "") and node.get(second) not in (None, ""):
        raise invalid(
            f"You may only specify one of these parameters: {first}, {second}.",
            f"{where}[{first}]",
        )


def _nested(exc: StripeError, prefix: str) -> StripeError:
    """Name a nested parameter as Stripe does: ``metadata[k]`` → ``prefix[metadata][k]``."""
    if exc.param:
        head, bracket, rest = exc.param.partition("[")
        exc.param = f"{prefix}[{head}]{bracket}{rest}"
    return exc


class CheckoutMixin:
    # --- validation -------------------------------------------------------------------
    def _line_item(self, line, index: int, expected: str | None) -> dict:
        prefix = f"line_items[{index}]"
        if not isinstance(line, dict):
            raise invalid(f"Invalid object: {prefix} must be a hash", prefix)
        p.check_known(line, ("metadata", "price", "price_data", "quantity"), prefix)
        _only_one(line, "price", "price_data", prefix)
        price_id = p.text(line, "price", param=f"{prefix}[price]")
        data = p.dict_param(line, "price_data")
        if price_id is not None:
            raise no_such("price", price_id, f"{prefix}[price]", 400)  # the sandbox has none
        if data is None:
            raise invalid(
                "You must provide either price or price_data for each line item when using prices.",
                prefix,
            )
        where = f"{prefix}[price_data]"
        p.check_known(
            data,
            (
                "currency",
                "product",
                "product_data",
                "recurring",
                "tax_behavior",
                "unit_amount",
                "unit_amount_decimal",
            ),
            where,
        )
        currency = money.check_currency(
            p.text(data, "currency", required=True, param=f"{where}[currency]"),
            f"{where}[currency]",
        )
        if expected is not None and currency != expected:
            raise invalid(
                f"The price specified only supports `{currency}`. This doesn't match the "
                f"expected currency: `{expected}`.",
                f"{where}[currency]",
            )
        if "recurring" in data:
            raise invalid(
                "You specified `payment` mode but passed a recurring price. Either switch to "
                "`subscription` mode or use only one-time prices.",
                f"{where}[recurring]",
            )
        _only_one(data, "product", "product_data", where)
        product_id = p.text(data, "product", param=f"{where}[product]")
        product = p.dict_param(data, "product_data")
        if product_id is not None:
            raise no_such("product", product_id, f"{where}[product]", 400)  # none here either
        if product is None:
            raise invalid(
                "You must specify either `product` or `product_data` when creating a price.",
                f"{where}[product_data]",
            )
        product_where = f"{where}[product_data]"
        p.check_known(
            product,
            ("description", "images", "metadata", "name", "tax_code", "unit_label"),
            product_where,
        )
        name = p.text(product, "name", required=True, param=f"{product_where}[name]")
        p.text(product, "description", max_length=40000, param=f"{product_where}[description]")
        images = p.string_list(product, "images") or []
        if len(images) > 8:
            raise invalid("You can pass up to 8 images.", f"{product_where}[images]")
        try:
            p.metadata(product)
        except StripeError as exc:
            raise _nested(exc, product_where) from None
        tax_behavior = p.text(
            data,
            "tax_behavior",
            choices=("exclusive", "inclusive", "unspecified"),
            param=f"{where}[tax_behavior]",
        )
        _only_one(data, "unit_amount", "unit_amount_decimal", where)
        unit_key = "unit_amount_decimal" if "unit_amount_decimal" in data else "unit_amount"
        unit_amount = p.integer(
            data, unit_key, required=True, minimum=0, param=f"{where}[{unit_key}]"
        )
        quantity = p.integer(
            line, "quantity", required=True, minimum=1, param=f"{prefix}[quantity]"
        )
        try:
            metadata = p.metadata(line) or {}
        except StripeError as exc:
            raise _nested(exc, prefix) from None
        amount = unit_amount * quantity
        return {
            "id": self.new_id("li"),
            "object": "item",
            "adjustable_quantity": None,
            "amount_discount": 0,
            "amount_subtotal": amount,
            "amount_tax": 0,
            "amount_total": amount,
            "currency": currency,
            "description": name,
            "metadata": metadata,
            "price": {
                "id": self.new_id("price"),
                "object": "price",
                "active": False,  # an inline price_data price is not reusable
                "billing_scheme": "per_unit",
                "created": self.now(),
                "currency": currency,
                "custom_unit_amount": None,
                "livemode": False,
                "lookup_key": None,
                "metadata": {},
                "nickname": None,
                "product": self.new_id("prod"),
                "recurring": None,
                "tax_behavior": tax_behavior or "unspecified",
                "tiers_mode": None,
                "transform_quantity": None,
                "type": "one_time",
                "unit_amount": unit_amount,
                "unit_amount_decimal": str(unit_amount),
            },
            "quantity": quantity,
        }

    def _line_items(self, params: dict, currency: str | None) -> list[dict]:
        raw = params.get("line_items")
        if raw is None or raw == "" or raw == []:
            raise missing_param("line_items")
        if not isinstance(raw, list):
            raise invalid("Invalid array", "line_items")
        if len(raw) > MAX_LINE_ITEMS:
            raise invalid(
                f"You may only specify up to {MAX_LINE_ITEMS} line items in `payment` mode.",
                "line_items",
            )
        items: list[dict] = []
        for index, line in enumerate(raw):
            item = self._line_item(line, index, currency)
            currency = currency or item["currency"]
            items.append(item)
        return items

    def _intent_data(self, params: dict) -> dict:
        """``payment_intent_data`` validated as the PaymentIntent's own fields."""
        data = p.dict_param(params, "payment_intent_data")
        if data is None:
            return {}
        p.check_known(data, INTENT_DATA_PARAMS, "payment_intent_data")
        try:
            return self._pi_common(data, {})
        except StripeError as exc:
            raise _nested(exc, "payment_intent_data") from None

    def _expires_at(self, params: dict, now: int) -> int:
        expires_at = p.integer(params, "expires_at")
        if expires_at is None:
            return now + MAX_LIFETIME
        if expires_at < now + MIN_LIFETIME:
            raise invalid(
                "The `expires_at` timestamp must be at least 30 minutes from Checkout Session "
                "creation.",
                "expires_at",
            )
        if expires_at > now + MAX_LIFETIME:
            raise invalid(
                "The `expires_at` timestamp must be less than 24 hours from Checkout Session "
                "creation.",
                "expires_at",
            )
        return expires_at

    def _page_url(self, call, session_id: str) -> str:
        host = (call.request.headers.get("Host") or "").strip()
        if not HOST.match(host):
            host = "127.0.0.1"
        return f"http://{host}/{self.name}/checkout/pay/{session_id}"

    # --- API --------------------------------------------------------------------------
    def api_checkout_sessions_create(self, call) -> dict:
        params = call.params
        if "payment_method_types" in params:
            raise invalid(
                "`payment_method_types` can no longer be passed when creating a Checkout "
                "Session on this API version. Use `allowed_payment_method_types` to limit the "
                "payment methods, or manage them from the Dashboard.",
                "payment_method_types",
                "payment_method_types_no_longer_supported",
            )
        p.check_known(params, CREATE_PARAMS)
        mode = p.text(params, "mode", required=True, choices=("payment", "setup", "subscription"))
        if mode != "payment":
            raise invalid(
                f"The sandbox supports Checkout Sessions in `payment` mode only, not `{mode}`.",
                "mode",
            )
        ui_mode = p.text(params, "ui_mode", choices=UI_MODES) or "hosted_page"
        if ui_mode != "hosted_page":
            raise invalid(
                f"The sandbox supports the `hosted_page` ui_mode only, not `{ui_mode}`.",
                "ui_mode",
            )
        success_url = _url(params, "success_url", required=True)
        cancel_url = _url(params, "cancel_url")
        customer_id = p.text(params, "customer")
        if customer_id is not None and params.get("customer_email"):
            raise invalid(
                "You may only specify one of these parameters: customer, customer_email.",
                "customer_email",
            )
        email = p.email(params, "customer_email")
        if customer_id is not None:
            self.get("customer", customer_id, "customer", 400)
        client_reference_id = p.text(params, "client_reference_id", max_length=200)
        locale = p.text(params, "locale", choices=LOCALES)
        allowed = p.string_list(params, "allowed_payment_method_types")
        for kind in allowed or ():
            if kind != "card":
                raise invalid(
                    f'The payment method type "{kind}" is invalid. The sandbox supports: card.',
                    "allowed_payment_method_types",
                )
        now = self.now()
        expires_at = self._expires_at(params, now)
        metadata = p.metadata(params) or {}
        intent_data = self._intent_data(params)
        currency = None
        if params.get("currency"):
            currency = money.check_currency(p.text(params, "currency"))
        items = self._line_items(params, currency)
        currency = items[0]["currency"]
        self.check_settles(currency)
        subtotal = sum(item["amount_subtotal"] for item in items)
        low = money.minimum(currency)
        if subtotal < low:
            raise invalid(
                "The Checkout Session's total amount due must add up to at least "
                f"{money.format_amount(low, currency)} {currency}",
                "line_items",
                "amount_too_small",
            )
        money.check_amount(subtotal, currency, "line_items")
        # Everything is valid: from here on the session exists.
        session_id = self.new_id("cs")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "adaptive_pricing": {"enabled": False},
            "after_expiration": None,
            "allow_promotion_codes": None,
            "allowed_payment_method_types": allowed or None,
            "amount_subtotal": subtotal,
            "amount_total": subtotal,
            "automatic_tax": {
                "enabled": False,
                "liability": None,
                "provider": None,
                "status": None,
            },
            "billing_address_collection": None,
            "branding_settings": None,
            "cancel_url": cancel_url,
            "client_reference_id": client_reference_id,
            "client_secret": None,
            "collected_information": None,
            "consent": None,
            "consent_collection": None,
            "created": now,
            "currency": currency,
            "currency_conversion": None,
            "custom_fields": [],
            "custom_text": {
                "after_submit": None,
                "shipping_address": None,
                "submit": None,
                "terms_of_service_acceptance": None,
            },
            "customer": customer_id,
            "customer_account": None,
            "customer_creation": "if_required",
            "customer_details": None,
            "customer_email": email,
            "discounts": [],
            "excluded_payment_method_types": [],
            "expires_at": expires_at,
            "integration_identifier": None,
            "invoice": None,
            "invoice_creation": {
                "enabled": False,
                "invoice_data": {
                    "account_tax_ids": None,
                    "custom_fields": None,
                    "description": None,
                    "footer": None,
                    "issuer": None,
                    "metadata": {},
                    "rendering_options": None,
                },
            },
            "livemode": False,
            "locale": locale,
            "managed_payments": None,
            "metadata": metadata,
            "mode": "payment",
            "name_collection": None,
            "optional_items": None,
            "origin_context": None,
            "payment_intent": None,
            "payment_link": None,
            "payment_method_collection": "always",
            "payment_method_configuration_details": None,
            "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
            "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "permissions": None,
            "phone_number_collection": {"enabled": False},
            "presentment_details": None,
            "recovered_from": None,
            "saved_payment_method_options": None,
            "setup_intent": None,
            "shipping_address_collection": None,
            "shipping_cost": None,
            "shipping_options": [],
            "status": "open",
            "submit_type": None,
            "subscription": None,
            "success_url": success_url,
            "tax_id_collection": {"enabled": False, "required": "never"},
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": ui_mode,
            "url": self._page_url(call, session_id),
            "wallet_options": None,
            "_line_items": items,
            "_intent_data": intent_data,
        }
        self.insert(session)
        self.schedule(expires_at - now, "expire_checkout_session", session_id)
        return self.render(session, call.expand)

    def api_checkout_sessions_retrieve(self, call) -> dict:
        p.check_known(call.params, ())
        return self.render(self.get("checkout.session", call.path["id"]), call.expand)

    def api_checkout_sessions_list(self, call) -> dict:
        filters = {
            "customer": None,
            "payment_intent": None,
            "status": ("complete", "expired", "open"),
        }
        return self.list_filtered("checkout.session", call.params, "/v1/checkout/sessions", filters)

    def api_checkout_sessions_line_items(self, call) -> dict:
        params = call.params
        p.check_known(params, ("ending_before", "limit", "starting_after"))
        session = self.get("checkout.session", call.path["id"])
        url = f"/v1/checkout/sessions/{session['id']}/line_items"
        return self.list_body(session["_line_items"], params, url)

    def session_line_items(self, session_id: str) -> dict:
        """The ``line_items`` list a session shows when expanded."""
        session = self.get("checkout.session", session_id)
        return self.list_body(
            session["_line_items"], {}, f"/v1/checkout/sessions/{session_id}/line_items"
        )

    def api_checkout_sessions_update(self, call) -> dict:
        session = self.get("checkout.session", call.path["id"])
        params = call.params
        p.check_known(params, ("metadata",))
        new_metadata = p.metadata(params, session["metadata"])
        if new_metadata is not None:
            session["metadata"] = new_metadata
        return self.render(session, call.expand)

    def api_checkout_sessions_expire(self, call) -> dict:
        session = self.get("checkout.session", call.path["id"])
        p.check_known(call.params, ())
        if session["status"] != "open":
            raise invalid(
                'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout '
                f"Session has a status of `{session['status']}`."
            )
        self._expire_session(session)
        return self.render(session, call.expand)

    # --- PaymentIntents that belong to a session ----------------------------------------
    def _refuse_while_open(self, pi_id: str) -> None:
        """Checkout confirms, updates and cancels its own PaymentIntent while the session
        is open (the stricter reading for updates: the page shows the session's total)."""
        pi = self.find("payment_intent", pi_id)
        session = self.find("checkout.session", (pi or {}).get("_checkout_session"))
        if session is not None and session["status"] == "open":
            raise invalid("You cannot perform this action on PaymentIntents created by Checkout.")

    def api_payment_intents_confirm(self, call) -> dict:
        self._refuse_while_open(call.path["id"])
        return super().api_payment_intents_confirm(call)

    def api_payment_intents_cancel(self, call) -> dict:
        self._refuse_while_open(call.path["id"])
        return super().api_payment_intents_cancel(call)

    def api_payment_intents_update(self, call) -> dict:
        self._refuse_while_open(call.path["id"])
        return super().api_payment_intents_update(call)

    # --- the customer paying, and expiry ------------------------------------------------
    def pay_checkout_session(self, session: dict, pm_ref: str | None) -> dict:
        """What the hosted page does when the customer submits it: create the PaymentIntent
        (first attempt) and confirm it with ``pm_ref``. Raises the 402 card error on a decline,
        after recording it (the session stays open)."""
        if session["status"] != "open":
            raise invalid(
                f"This Checkout Session is no longer active: its status is {session['status']}."
            )
        if pm_ref is None:
            raise missing_param("payment_method")
        self._check_pm_for(pm_ref, session["customer"])
        pi = self.find("payment_intent", session["payment_intent"])
        if pi is None:
            pi = self._new_intent(
                session["amount_total"],
                session["currency"],
                session["customer"],
                copy.deepcopy(session["_intent_data"]),
            )
            pi["_checkout_session"] = session["id"]
            session["payment_intent"] = pi["id"]
        pm = self._usable_pm(pm_ref)
        self._confirm(pi, pm)
        customer = self.find("customer", session["customer"])
        billing = pm["billing_details"]
        session.update(
            status="complete",
            url=None,
            payment_status="paid" if pi["status"] == "succeeded" else "unpaid",
            customer_details={
                "address": copy.deepcopy(billing["address"]),
                "business_name": None,
                "email": session["customer_email"]
                or (customer or {}).get("email")
                or billing["email"],
                "individual_name": None,
                "name": billing["name"] or (customer or {}).get("name"),
                "phone": billing["phone"],
                "tax_exempt": "none",
                "tax_ids": [],
            },
        )
        self.emit("checkout.session.completed", session)
        return session

    def settle_payment(self, pi_id: str) -> None:
        """A processing payment of a completed session settles: the session follows it."""
        pi = self.find("payment_intent", pi_id)
        was_processing = pi is not None and pi["status"] == "processing"
        super().settle_payment(pi_id)
        session = self.find("checkout.session", (pi or {}).get("_checkout_session"))
        if not was_processing or session is None or session["status"] != "complete":
            return
        if pi["status"] == "succeeded":
            session["payment_status"] = "paid"
            self.emit("checkout.session.async_payment_succeeded", session)
        elif pi["status"] == "requires_payment_method":
            self.emit("checkout.session.async_payment_failed", session)

    def expire_checkout_session(self, session_id: str) -> None:
        """Scheduled at ``expires_at``: an open session expires."""
        session = self.find("checkout.session", session_id)
        if session is not None and session["status"] == "open":
            self._expire_session(session)

    def _expire_session(self, session: dict) -> None:
        session.update(status="expired", url=None)
        pi = self.find("payment_intent", session["payment_intent"])
        if pi is not None and pi["status"] in OPEN:
            self._cancel_intent(pi, "automatic")
        self.emit("checkout.session.expired", session)

    # --- the hosted page ---------------------------------------------------------------
    def page_checkout(self, call) -> Response:
        session = self.find("checkout.session", call.path["id"])
        if session is None:
            body = _page(
                "Checkout Session not found",
                f"<p>No such Checkout Session: {html.escape(call.path['id'])}</p>",
            )
            return Response(404, body, {"Content-Type": "text/html; charset=utf-8"})
        return Response(200, self._page_body(session), {"Content-Type": "text/html; charset=utf-8"})

    def _page_body(self, session: dict) -> str:
        e = html.escape
        currency = session["currency"]
        total = money.format_amount(session["amount_total"], currency)
        rows = "".join(
            f"<li>{e(item['description'])} &times; {item['quantity']}: "
            f"{e(money.format_amount(item['amount_total'], currency))}</li>"
            for item in session["_line_items"]
        )
        parts = [f"<h1>{e(total)}</h1>", f"<ul>{rows}</ul>"]
        if session["status"] == "open":
            pi = self.find("payment_intent", session["payment_intent"])
            error = (pi or {}).get("last_payment_error") or {}
            if error.get("message"):
                parts.append(f'<p class="error">{e(error["message"])}</p>')
            options = "".join(
                f'<option value="{e(value)}">{e(label)}</option>' for value, label in PAGE_CARDS
            )
            action = f"/{self.name}/_test/checkout/sessions/{session['id']}/pay"
            parts.append(
                f'<form method="post" action="{e(action)}">'
                '<input type="hidden" name="redirect" value="true">'
                f'<label>Card <select name="payment_method">{options}</select></label> '
                f'<button type="submit">Pay {e(total)}</button></form>'
            )
            if session["cancel_url"]:
                parts.append(f'<p><a href="{e(session["cancel_url"])}">Back</a></p>')
        elif session["status"] == "complete":
            parts.append("<p>This payment is complete.</p>")
        else:
            parts.append("<p>This Checkout Session has expired.</p>")
        return _page(f"Pay {total}", "".join(parts))


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)} · sandbox Checkout</title></head>"
        f"<body><main>{body}</main></body></html>"
    )
