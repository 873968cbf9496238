"""Checkout Sessions (payment mode, hosted page) through the SDK, the customer paying through
the test hook and the hosted page, and expiry by the clock.

Where the references (stripe.md, localstripe.md: localstripe has no Checkout) are silent the
sandbox takes the stricter reading, and these tests pin it:
- ``mode`` is required and only ``payment`` is served; ``success_url`` is required for the
  hosted page, and both URLs must be http(s).
- ``line_items`` take ``price_data`` only: the sandbox has no Prices or Products, so a ``price``
  or ``product`` id is "No such price/product"; a session must total at least the currency's
  minimum charge.
- ``expires_at`` may be exactly 30 minutes or exactly 24 hours away (both bounds inclusive).
- Updating a session changes ``metadata`` only, at any status; anything else is unknown.
- A manual-capture session completes with ``payment_status: unpaid``.
- While a session is open its PaymentIntent is Checkout's: confirming or canceling it through
  the API is refused; when the session expires an unpaid PaymentIntent is canceled
  (``cancellation_reason: automatic``).
- On API 2026-10-28.endive ``payment_method_types`` is refused
  (``payment_method_types_no_longer_supported``; use ``allowed_payment_method_types``) and
  ``ui_mode`` is ``hosted_page`` (``hosted`` was renamed on 2026-03-25).
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request

import pytest
import stripe

from tests.sandbox.test_stripe import event_types, header, make_client, raw
from tests.sandbox.test_stripe_payments import hook

pytestmark = pytest.mark.usefixtures("empty_stripe")

DAY = 86400
SUCCESS = "https://shop.example/thanks?session={CHECKOUT_SESSION_ID}"


@pytest.fixture
def client(sandbox):
    return make_client(sandbox)


def line(amount=1999, currency="usd", name="Blue mug", quantity=1, **product):
    return {
        "price_data": {
            "currency": currency,
            "unit_amount": amount,
            "product_data": {"name": name, **product},
        },
        "quantity": quantity,
    }


def session(client, *lines, **params):
    return client.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "line_items": list(lines) or [line()],
            "success_url": SUCCESS,
            **params,
        }
    )


def pay(sandbox, session_id: str, body: dict) -> tuple[int, dict]:
    """The pay hook: (status, JSON body), whatever the status."""
    request = urllib.request.Request(
        f"{sandbox.system_url('stripe')}/_test/checkout/sessions/{session_id}/pay",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def browser(url: str, method: str = "GET", form: dict | None = None):
    """A browser's request, without following redirects: (status, headers, text)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=10)
    body = urllib.parse.urlencode(form).encode() if form is not None else None
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if form is not None else {}
    connection.request(method, parts.path, body=body, headers=headers)
    response = connection.getresponse()
    result = response.status, dict(response.getheaders()), response.read().decode()
    connection.close()
    return result


def freeze(sandbox) -> int:
    """Stop the sandbox's wall clock; returns its now."""
    return hook(sandbox, "clock", {"frozen": True})["now"]


# --- create ---------------------------------------------------------------------------------
def test_create_has_stripes_fields(sandbox, client):
    created = session(
        client,
        line(1999, quantity=2),
        line(500, name="Saucer"),
        cancel_url="https://shop.example/cart",
        customer_email="ada@example.com",
        client_reference_id="order-1001",
        metadata={"znode_order": "1001"},
        locale="fr",
        allowed_payment_method_types=["card"],
    )
    assert created.id.startswith("cs_test_") and created.object == "checkout.session"
    assert (created.amount_subtotal, created.amount_total, created.currency) == (4498, 4498, "usd")
    assert (created.mode, created.status, created.payment_status) == ("payment", "open", "unpaid")
    assert created.payment_intent is None  # created when the customer pays (API 2022-08-01)
    assert (created.customer, created.customer_email) == (None, "ada@example.com")
    assert created.client_reference_id == "order-1001"
    assert created.metadata.to_dict() == {"znode_order": "1001"}
    assert (created.success_url, created.cancel_url) == (SUCCESS, "https://shop.example/cart")
    assert created.url == f"{sandbox.system_url('stripe')}/checkout/pay/{created.id}"
    assert created.expires_at == created.created + DAY
    assert (created.livemode, created.locale, created.ui_mode) == (False, "fr", "hosted_page")
    assert created.payment_method_types == ["card"]
    assert created.allowed_payment_method_types == ["card"]
    assert created.total_details.to_dict() == {
        "amount_discount": 0,
        "amount_shipping": 0,
        "amount_tax": 0,
    }
    assert "line_items" not in created.to_dict()
    assert client.v1.checkout.sessions.retrieve(created.id).to_dict() == created.to_dict()
    assert event_types(client) == []  # Stripe has no checkout.session.created event


@pytest.mark.parametrize(
    ("lines", "currency", "total"),
    [
        ([line(1500, "jpy", quantity=2)], "jpy", 3000),  # zero-decimal: yen, not cents
        ([line(1999, "usd", quantity=3)], "usd", 5997),
        ([line(1250, "EUR"), line(750, "eur", quantity=2)], "eur", 2750),
        ([line(5000, "kwd")], "kwd", 5000),  # three decimals: 5.000 KWD
    ],
)
def test_amounts_are_in_minor_units(client, lines, currency, total):
    created = session(client, *lines)
    assert (created.currency, created.amount_subtotal, created.amount_total) == (
        currency,
        total,
        total,
    )


def test_a_session_for_a_customer(client):
    customer = client.v1.customers.create({"email": "grace@example.com"})
    created = session(client, customer=customer.id)
    assert (created.customer, created.customer_email) == (customer.id, None)
    expanded = client.v1.checkout.sessions.retrieve(created.id, {"expand": ["customer"]})
    assert expanded.customer.email == "grace@example.com"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        session(client, customer=customer.id, customer_email="grace@example.com")
    assert caught.value.user_message == (
        "You may only specify one of these parameters: customer, customer_email."
    )
    assert client.v1.checkout.sessions.list({"customer": customer.id}).data[0].id == created.id


def bad_line(**changes):
    item = line()
    for path, value in changes.items():
        node = item
        *parents, leaf = path.split("__")
        for key in parents:
            node = node[key]
        if value is None:
            del node[leaf]
        else:
            node[leaf] = value
    return item


@pytest.mark.parametrize(
    ("params", "param", "message", "code"),
    [
        ({"mode": None}, "mode", "Missing required param: mode.", "parameter_missing"),
        ({"mode": "setup"}, "mode", "`payment` mode only, not `setup`", None),
        ({"mode": "subscription"}, "mode", "`payment` mode only, not `subscription`", None),
        ({"mode": "later"}, "mode", "Invalid mode: must be one of payment, setup, or", None),
        ({"ui_mode": "embedded_page"}, "ui_mode", "`hosted_page` ui_mode only", None),
        ({"ui_mode": "hosted"}, "ui_mode", "Invalid ui_mode: must be one of elements", None),
        ({"line_items": None}, "line_items", "Missing required param: line_items.", None),
        (
            {"line_items": [{"price": "price_123", "quantity": 1}]},
            "line_items[0][price]",
            "No such price: 'price_123'",
            "resource_missing",
        ),
        (
            {"line_items": [{**line(), "price": "price_123"}]},
            "line_items[0][price]",
            "You may only specify one of these parameters: price, price_data.",
            None,
        ),
        (
            {"line_items": [{"quantity": 1}]},
            "line_items[0]",
            "You must provide either price or price_data for each line item when using prices.",
            None,
        ),
        (
            {"line_items": [line(1000, "usd"), line(1000, "eur")]},
            "line_items[1][price_data][currency]",
            "The price specified only supports `eur`. This doesn't match the expected "
            "currency: `usd`.",
            None,
        ),
        (
            {"currency": "eur", "line_items": [line(1000, "usd")]},
            "line_items[0][price_data][currency]",
            "This doesn't match the expected currency: `eur`.",
            None,
        ),
        (
            {"line_items": [line(1000, "zzz")]},
            "line_items[0][price_data][currency]",
            "Invalid currency: zzz.",
            None,
        ),
        (
            {"line_items": [bad_line(quantity=None)]},
            "line_items[0][quantity]",
            "Missing required param: line_items[0][quantity].",
            "parameter_missing",
        ),
        (
            {"line_items": [bad_line(quantity=0)]},
            "line_items[0][quantity]",
            "This value must be greater than or equal to 1.",
            None,
        ),
        (
            {"line_items": [bad_line(price_data__unit_amount=-5)]},
            "line_items[0][price_data][unit_amount]",
            "This value must be greater than or equal to 0.",
            None,
        ),
        (
            {"line_items": [bad_line(price_data__unit_amount="12.50")]},
            "line_items[0][price_data][unit_amount]",
            "Invalid integer: 12.50",
            "parameter_invalid_integer",
        ),
        (
            {"line_items": [bad_line(price_data__product_data={"description": "No name"})]},
            "line_items[0][price_data][product_data][name]",
            "Missing required param: line_items[0][price_data][product_data][name].",
            None,
        ),
        (
            {"line_items": [bad_line(price_data__product_data=None)]},
            "line_items[0][price_data][product_data]",
            "You must specify either `product` or `product_data` when creating a price.",
            None,
        ),
        (
            {
                "line_items": [
                    bad_line(price_data__product="prod_123", price_data__product_data=None)
                ]
            },
            "line_items[0][price_data][product]",
            "No such product: 'prod_123'",
            None,
        ),
        (
            {"line_items": [bad_line(price_data__recurring={"interval": "month"})]},
            "line_items[0][price_data][recurring]",
            "You specified `payment` mode but passed a recurring price.",
            None,
        ),
        (
            {"line_items": [bad_line(colour="blue")]},
            "line_items[0][colour]",
            "Received unknown parameter: line_items[0][colour]",
            "parameter_unknown",
        ),
        (
            {"line_items": [line(10)]},
            "line_items",
            "The Checkout Session's total amount due must add up to at least $0.50 usd",
            "amount_too_small",
        ),
        (
            {"line_items": [line(40, "jpy")]},
            "line_items",
            "must add up to at least ¥50 jpy",
            "amount_too_small",
        ),
        (
            {"line_items": [line(60_000_000, quantity=2)]},
            "line_items",
            "Amount must be no more than $999,999.99",
            "amount_too_large",
        ),
        ({"shoe_size": "9"}, "shoe_size", "Received unknown parameter: shoe_size", None),
        (
            {"customer": "cus_missing"},
            "customer",
            "No such customer: 'cus_missing'",
            "resource_missing",
        ),
        (
            {"customer_email": "not-an-email"},
            "customer_email",
            "Invalid email address: not-an-email",
            "email_invalid",
        ),
        (
            {"client_reference_id": "x" * 201},
            "client_reference_id",
            "must be at most 200 characters",
            None,
        ),
        (
            {"metadata": {"k" * 41: "v"}},
            f"metadata[{'k' * 41}]",
            "Metadata keys can have up to 40 characters",
            None,
        ),
        ({"locale": "tlh"}, "locale", "Invalid locale: must be one of auto, bg", None),
        (
            {"payment_intent_data": {"capture_method": "later"}},
            "payment_intent_data[capture_method]",
            "Invalid capture_method: must be one of automatic, automatic_async, or manual",
            None,
        ),
        (
            {"payment_intent_data": {"setup_future_usage": "sometimes"}},
            "payment_intent_data[setup_future_usage]",
            "Invalid setup_future_usage",
            None,
        ),
        (
            {"payment_intent_data": {"receipt_email": "nope"}},
            "payment_intent_data[receipt_email]",
            "Invalid email address: nope",
            "email_invalid",
        ),
        (
            {"payment_intent_data": {"description": "x" * 1001}},
            "payment_intent_data[description]",
            "must be at most 1000 characters",
            None,
        ),
        (
            {"payment_intent_data": {"metadata": {"k": 5 * "x" * 101}}},
            "payment_intent_data[metadata][k]",
            "Metadata values can have up to 500 characters",
            None,
        ),
        (
            {"payment_intent_data": {"application_fee_amount": 100}},
            "payment_intent_data[application_fee_amount]",
            "Received unknown parameter: payment_intent_data[application_fee_amount]",
            "parameter_unknown",
        ),
        (
            {"success_url": None},
            "success_url",
            "Missing required param: success_url.",
            "parameter_missing",
        ),
        ({"success_url": "ftp://shop.example/ok"}, "success_url", "Not a valid URL", "url_invalid"),
        ({"success_url": "thanks.html"}, "success_url", "Not a valid URL", "url_invalid"),
        (
            {"success_url": "https://shop.example/" + "a" * 5000},
            "success_url",
            "Invalid URL: URL must be 5000 characters or less.",
            None,
        ),
        ({"cancel_url": "javascript:alert(1)"}, "cancel_url", "Not a valid URL", "url_invalid"),
        (
            {"payment_method_types": ["card"]},
            "payment_method_types",
            "Use `allowed_payment_method_types`",
            "payment_method_types_no_longer_supported",
        ),
        (
            {"allowed_payment_method_types": ["card", "paypal"]},
            "allowed_payment_method_types",
            'The payment method type "paypal" is invalid.',
            None,
        ),
    ],
)
def test_create_validation_errors_change_nothing(client, params, param, message, code):
    body = {"mode": "payment", "line_items": [line()], "success_url": SUCCESS}
    for key, value in params.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.create(body)
    error = caught.value
    assert error.http_status == 400
    assert error.param == param
    assert message in error.user_message
    if code:
        assert error.code == code
    assert client.v1.checkout.sessions.list().data == []
    assert client.v1.payment_intents.list().data == []


def test_expires_at_must_be_between_30_minutes_and_24_hours(sandbox, client):
    now = freeze(sandbox)
    assert session(client, expires_at=now + 1800).expires_at == now + 1800
    assert session(client, expires_at=now + DAY).expires_at == now + DAY
    for expires_at, message in (
        (now + 1799, "must be at least 30 minutes from Checkout Session creation."),
        (now + DAY + 1, "must be less than 24 hours from Checkout Session creation."),
        (now - 60, "must be at least 30 minutes"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            session(client, expires_at=expires_at)
        assert caught.value.param == "expires_at"
        assert caught.value.user_message.startswith("The `expires_at` timestamp ")
        assert message in caught.value.user_message
    assert len(client.v1.checkout.sessions.list().data) == 2


# --- retrieve, list, line items, expand -----------------------------------------------------
def test_retrieve_list_filters_and_expand(sandbox, client):
    customer = client.v1.customers.create({"email": "lin@example.com"})
    first = session(client)
    second = session(client, customer=customer.id)
    third = session(client, line(2500))
    assert pay(sandbox, third.id, {"payment_method": "pm_card_visa"})[0] == 200
    third = client.v1.checkout.sessions.retrieve(third.id)

    listed = client.v1.checkout.sessions.list()
    assert [s.id for s in listed.data] == [third.id, second.id, first.id]  # newest first
    assert listed.url == "/v1/checkout/sessions" and listed.has_more is False
    page = client.v1.checkout.sessions.list({"limit": 2})
    assert ([s.id for s in page.data], page.has_more) == ([third.id, second.id], True)
    rest = client.v1.checkout.sessions.list({"limit": 2, "starting_after": second.id})
    assert [s.id for s in rest.data] == [first.id]
    assert [s.id for s in client.v1.checkout.sessions.list({"status": "complete"}).data] == [
        third.id
    ]
    assert [s.id for s in client.v1.checkout.sessions.list({"status": "open"}).data] == [
        second.id,
        first.id,
    ]
    assert client.v1.checkout.sessions.list({"status": "expired"}).data == []
    assert [s.id for s in client.v1.checkout.sessions.list({"customer": customer.id}).data] == [
        second.id
    ]
    by_intent = client.v1.checkout.sessions.list({"payment_intent": third.payment_intent})
    assert [s.id for s in by_intent.data] == [third.id]
    assert client.v1.checkout.sessions.list({"created": {"lt": first.created}}).data == []
    assert len(client.v1.checkout.sessions.list({"created": {"gte": first.created}}).data) == 3
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.list({"status": "paid"})
    assert caught.value.param == "status"

    expanded = client.v1.checkout.sessions.retrieve(
        third.id, {"expand": ["payment_intent", "payment_intent.latest_charge"]}
    )
    assert expanded.payment_intent.id == third.payment_intent
    assert expanded.payment_intent.latest_charge.amount == 2500
    listed = client.v1.checkout.sessions.list({"expand": ["data.payment_intent"]})
    assert listed.data[0].payment_intent.status == "succeeded"
    assert listed.data[1].payment_intent is None
    unpaid = client.v1.checkout.sessions.retrieve(first.id, {"expand": ["payment_intent"]})
    assert unpaid.payment_intent is None  # expanding a null leaves it null

    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.retrieve("cs_test_missing")
    assert (caught.value.http_status, caught.value.code) == (404, "resource_missing")
    assert caught.value.user_message == "No such checkout.session: 'cs_test_missing'"


def test_line_items(client):
    created = session(
        client,
        line(1999, name="Blue mug", quantity=2, description="Stoneware"),
        line(500, name="Saucer"),
        line(250, name="Spoon"),
    )
    items = client.v1.checkout.sessions.line_items.list(created.id)
    assert items.url == f"/v1/checkout/sessions/{created.id}/line_items"
    mug = items.data[0]
    assert mug.id.startswith("li_") and mug.object == "item"
    assert (mug.description, mug.quantity, mug.currency) == ("Blue mug", 2, "usd")
    assert (mug.amount_subtotal, mug.amount_total, mug.amount_discount, mug.amount_tax) == (
        3998,
        3998,
        0,
        0,
    )
    assert (mug.price.object, mug.price.type, mug.price.unit_amount) == ("price", "one_time", 1999)
    assert mug.price.id.startswith("price_") and mug.price.product.startswith("prod_")
    assert [i.description for i in items.data] == ["Blue mug", "Saucer", "Spoon"]
    page = client.v1.checkout.sessions.line_items.list(created.id, {"limit": 1})
    assert page.has_more is True
    after = client.v1.checkout.sessions.line_items.list(
        created.id, {"limit": 2, "starting_after": page.data[0].id}
    )
    assert [i.description for i in after.data] == ["Saucer", "Spoon"]
    expanded = client.v1.checkout.sessions.retrieve(created.id, {"expand": ["line_items"]})
    assert [i.id for i in expanded.line_items.data] == [i.id for i in items.data]
    assert sum(i.amount_total for i in items.data) == created.amount_total


# --- paying -----------------------------------------------------------------------------------
def test_paying_completes_the_session(sandbox, client):
    customer = client.v1.customers.create({"email": "ada@example.com", "name": "Ada"})
    created = session(
        client,
        line(2599),
        customer=customer.id,
        metadata={"session_only": "yes"},
        payment_intent_data={
            "metadata": {"znode_order": "1001"},
            "description": "Order 1001",
            "receipt_email": "receipts@example.com",
            "capture_method": "automatic",
        },
    )
    status, paid = pay(sandbox, created.id, {"payment_method": "pm_card_visa"})
    assert status == 200
    assert (paid["id"], paid["status"], paid["payment_status"], paid["url"]) == (
        created.id,
        "complete",
        "paid",
        None,
    )
    assert paid["payment_intent"].startswith("pi_")
    assert paid["customer_details"]["email"] == "ada@example.com"
    pi = client.v1.payment_intents.retrieve(paid["payment_intent"])
    assert (pi.status, pi.amount, pi.amount_received, pi.currency) == (
        "succeeded",
        2599,
        2599,
        "usd",
    )
    assert (pi.customer, pi.capture_method, pi.description, pi.receipt_email) == (
        customer.id,
        "automatic",
        "Order 1001",
        "receipts@example.com",
    )
    assert pi.metadata.to_dict() == {"znode_order": "1001"}  # payment_intent_data, not the session
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.amount_captured, charge.metadata.to_dict()) == (2599, {"znode_order": "1001"})
    assert event_types(client) == [
        "customer.created",
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]
    completed = client.v1.events.list({"type": "checkout.session.completed"}).data[0]
    assert completed.data.object.id == created.id
    assert completed.data.object.payment_status == "paid"
    assert completed.data.object.payment_intent == pi.id
    assert client.v1.checkout.sessions.retrieve(created.id).url is None


def test_manual_capture_completes_unpaid(sandbox, client):
    created = session(client, payment_intent_data={"capture_method": "manual"})
    status, paid = pay(sandbox, created.id, {"payment_method": "pm_card_mastercard"})
    assert status == 200
    assert (paid["status"], paid["payment_status"], paid["url"]) == ("complete", "unpaid", None)
    pi = client.v1.payment_intents.retrieve(paid["payment_intent"])
    assert (pi.status, pi.amount_capturable, pi.amount_received) == ("requires_capture", 1999, 0)
    assert event_types(client) == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.amount_capturable_updated",
        "checkout.session.completed",
    ]
    # Once the session is complete its PaymentIntent is the merchant's to capture.
    assert client.v1.payment_intents.capture(pi.id).status == "succeeded"


def test_a_decline_keeps_the_session_open_and_the_next_card_pays_the_same_intent(sandbox, client):
    created = session(client, line(4200))
    status, declined = pay(sandbox, created.id, {"payment_method": "pm_card_chargeDeclined"})
    assert status == 402
    error = declined["error"]
    assert (error["type"], error["code"], error["decline_code"]) == (
        "card_error",
        "card_declined",
        "generic_decline",
    )
    still = client.v1.checkout.sessions.retrieve(created.id)
    assert (still.status, still.payment_status, still.url) == ("open", "unpaid", created.url)
    assert still.payment_intent == error["payment_intent"]["id"]
    pi = client.v1.payment_intents.retrieve(still.payment_intent)
    assert (pi.status, pi.last_payment_error.code) == ("requires_payment_method", "card_declined")
    assert event_types(client) == [
        "payment_intent.created",
        "charge.failed",
        "payment_intent.payment_failed",
    ]

    status, paid = pay(sandbox, created.id, {"payment_method": "pm_card_visa"})
    assert status == 200
    assert (paid["status"], paid["payment_status"], paid["payment_intent"]) == (
        "complete",
        "paid",
        pi.id,
    )
    pi = client.v1.payment_intents.retrieve(pi.id)
    assert (pi.status, pi.last_payment_error, pi.amount_received) == ("succeeded", None, 4200)
    charges = client.v1.charges.list({"payment_intent": pi.id}).data
    assert [c.status for c in charges] == ["succeeded", "failed"]
    assert len(client.v1.payment_intents.list().data) == 1
    assert event_types(client)[3:] == [
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]


def test_checkouts_intent_is_not_the_merchants_while_the_session_is_open(sandbox, client):
    created = session(client)
    pay(sandbox, created.id, {"payment_method": "pm_card_chargeDeclined"})
    pi_id = client.v1.checkout.sessions.retrieve(created.id).payment_intent
    for call in (
        lambda: client.v1.payment_intents.confirm(pi_id, {"payment_method": "pm_card_visa"}),
        lambda: client.v1.payment_intents.cancel(pi_id),
        # The page shows the session's total: its PaymentIntent cannot be re-amounted
        # behind it (stricter reading).
        lambda: client.v1.payment_intents.update(pi_id, {"amount": 9999}),
    ):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            call()
        assert caught.value.user_message == (
            "You cannot perform this action on PaymentIntents created by Checkout."
        )
    intent = client.v1.payment_intents.retrieve(pi_id)
    assert (intent.status, intent.amount) == ("requires_payment_method", created.amount_total)


def test_paying_needs_an_open_session_and_a_payment_method(sandbox, client):
    created = session(client)
    status, body = pay(sandbox, created.id, {})
    assert (status, body["error"]["message"]) == (400, "Missing required param: payment_method.")
    status, body = pay(sandbox, created.id, {"payment_method": "pm_nope"})
    assert (status, body["error"]["message"]) == (400, "No such PaymentMethod: 'pm_nope'")
    assert client.v1.payment_intents.list().data == []  # nothing made for a bad card
    status, body = pay(sandbox, "cs_test_missing", {"payment_method": "pm_card_visa"})
    assert (status, body["error"]["code"]) == (404, "resource_missing")

    assert pay(sandbox, created.id, {"payment_method": "pm_card_visa"})[0] == 200
    status, body = pay(sandbox, created.id, {"payment_method": "pm_card_visa"})
    assert status == 400
    assert body["error"]["message"] == (
        "This Checkout Session is no longer active: its status is complete."
    )
    assert len(client.v1.payment_intents.list().data) == 1


def test_a_saved_card_for_the_customer(sandbox, client):
    customer = client.v1.customers.create({"email": "sam@example.com"})
    created = session(
        client, customer=customer.id, payment_intent_data={"setup_future_usage": "off_session"}
    )
    status, paid = pay(sandbox, created.id, {"payment_method": "pm_card_visa"})
    assert status == 200
    pi = client.v1.payment_intents.retrieve(paid["payment_intent"])
    assert pi.setup_future_usage == "off_session"
    saved = client.v1.customers.payment_methods.list(customer.id).data
    assert [pm.id for pm in saved] == [pi.payment_method]


@pytest.mark.parametrize(
    ("token", "final", "payment_status", "event"),
    [
        ("pm_card_sandboxProcessingSucceeds", "succeeded", "paid", "async_payment_succeeded"),
        (
            "pm_card_sandboxProcessingFails",
            "requires_payment_method",
            "unpaid",
            "async_payment_failed",
        ),
    ],
)
def test_a_processing_payment_settles_the_session_later(
    sandbox, client, token, final, payment_status, event
):
    created = session(client)
    status, paid = pay(sandbox, created.id, {"payment_method": token})
    assert (status, paid["status"], paid["payment_status"]) == (200, "complete", "unpaid")
    hook(sandbox, "advance_time", {"seconds": 60})
    assert client.v1.payment_intents.retrieve(paid["payment_intent"]).status == final
    assert client.v1.checkout.sessions.retrieve(created.id).payment_status == payment_status
    assert event_types(client)[-1] == f"checkout.session.{event}"


# --- expiry -----------------------------------------------------------------------------------
def test_expire_an_open_session(sandbox, client):
    created = session(client)
    expired = client.v1.checkout.sessions.expire(created.id)
    assert (expired.status, expired.url, expired.payment_status) == ("expired", None, "unpaid")
    assert event_types(client) == ["checkout.session.expired"]
    event = client.v1.events.list({"type": "checkout.session.expired"}).data[0]
    assert event.data.object.id == created.id and event.data.object.status == "expired"

    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.expire(created.id)
    assert caught.value.user_message == (
        'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout '
        "Session has a status of `expired`."
    )
    status, body = pay(sandbox, created.id, {"payment_method": "pm_card_visa"})
    assert (status, body["error"]["message"]) == (
        400,
        "This Checkout Session is no longer active: its status is expired.",
    )
    assert client.v1.payment_intents.list().data == []


def test_a_complete_session_cannot_be_expired(sandbox, client):
    created = session(client)
    pay(sandbox, created.id, {"payment_method": "pm_card_visa"})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.expire(created.id)
    assert caught.value.user_message.endswith("This Checkout Session has a status of `complete`.")
    assert client.v1.checkout.sessions.retrieve(created.id).status == "complete"


def test_expiring_after_a_decline_cancels_the_intent(sandbox, client):
    created = session(client)
    pay(sandbox, created.id, {"payment_method": "pm_card_chargeDeclined"})
    expired = client.v1.checkout.sessions.expire(created.id, {"expand": ["payment_intent"]})
    assert expired.payment_intent.status == "canceled"
    assert expired.payment_intent.cancellation_reason == "automatic"
    assert event_types(client)[-2:] == ["payment_intent.canceled", "checkout.session.expired"]


def test_the_clock_expires_open_sessions(sandbox, client):
    now = freeze(sandbox)
    soon = session(client, expires_at=now + 1800)
    later = session(client)  # 24 hours
    paid = session(client, expires_at=now + 1800)
    pay(sandbox, paid.id, {"payment_method": "pm_card_visa"})
    hook(sandbox, "settle")  # settling payments and refunds does not expire sessions
    assert client.v1.checkout.sessions.retrieve(soon.id).status == "open"
    hook(sandbox, "advance_time", {"seconds": 1799})
    assert client.v1.checkout.sessions.retrieve(soon.id).status == "open"
    hook(sandbox, "advance_time", {"seconds": 1})
    assert client.v1.checkout.sessions.retrieve(soon.id).status == "expired"
    assert client.v1.checkout.sessions.retrieve(soon.id).url is None
    assert client.v1.checkout.sessions.retrieve(later.id).status == "open"
    assert client.v1.checkout.sessions.retrieve(paid.id).status == "complete"
    expired_events = client.v1.events.list({"type": "checkout.session.expired"}).data
    assert [e.data.object.id for e in expired_events] == [soon.id]
    hook(sandbox, "advance_time", {"seconds": DAY})
    assert client.v1.checkout.sessions.retrieve(later.id).status == "expired"
    assert [s.id for s in client.v1.checkout.sessions.list({"status": "expired"}).data] == [
        later.id,
        soon.id,
    ]


# --- update and idempotency -----------------------------------------------------------------
def test_only_metadata_can_be_updated(sandbox, client):
    created = session(client, metadata={"a": "1", "b": "2"})
    updated = client.v1.checkout.sessions.update(created.id, {"metadata": {"b": "", "c": "3"}})
    assert updated.metadata.to_dict() == {"a": "1", "c": "3"}
    for params, param in (
        ({"success_url": "https://shop.example/other"}, "success_url"),
        ({"line_items": [line(100)]}, "line_items"),
        ({"customer_email": "eve@example.com"}, "customer_email"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.checkout.sessions.update(created.id, params)
        assert caught.value.user_message == f"Received unknown parameter: {param}"
    pay(sandbox, created.id, {"payment_method": "pm_card_visa"})
    done = client.v1.checkout.sessions.update(created.id, {"metadata": {"shipped": "no"}})
    assert (done.status, done.metadata.shipped) == ("complete", "no")
    assert client.v1.checkout.sessions.update(created.id, {"metadata": ""}).metadata.to_dict() == {}


def test_idempotent_create_replays_and_refuses_other_params(client):
    params = {"mode": "payment", "line_items": [line()], "success_url": SUCCESS}
    first = client.v1.checkout.sessions.create(params, {"idempotency_key": "page-1001"})
    again = client.v1.checkout.sessions.create(params, {"idempotency_key": "page-1001"})
    assert again.id == first.id and again.to_dict() == first.to_dict()
    assert header(again.last_response, "Idempotent-Replayed") == "true"
    with pytest.raises(stripe.IdempotencyError) as caught:
        client.v1.checkout.sessions.create(
            {**params, "line_items": [line(2999)]}, {"idempotency_key": "page-1001"}
        )
    assert caught.value.json_body["error"]["type"] == "idempotency_error"
    with pytest.raises(stripe.IdempotencyError):
        client.v1.checkout.sessions.expire(first.id, options={"idempotency_key": "page-1001"})
    assert [s.id for s in client.v1.checkout.sessions.list().data] == [first.id]

    expired = client.v1.checkout.sessions.expire(
        first.id, options={"idempotency_key": "expire-1001"}
    )
    replayed = client.v1.checkout.sessions.expire(
        first.id, options={"idempotency_key": "expire-1001"}
    )
    assert replayed.to_dict() == expired.to_dict()
    assert header(replayed.last_response, "Idempotent-Replayed") == "true"
    assert event_types(client) == ["checkout.session.expired"]


# --- the hosted page --------------------------------------------------------------------------
def test_the_hosted_page(sandbox, client):
    created = session(
        client,
        line(1999, name='<script>alert("mug")</script>'),
        cancel_url="https://shop.example/cart?a=1&b=2",
    )
    status, headers, page = browser(created.url)  # no API key: the customer's browser
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert "$19.99" in page
    assert "&lt;script&gt;alert(&quot;mug&quot;)&lt;/script&gt;" in page
    assert "<script>" not in page
    assert 'href="https://shop.example/cart?a=1&amp;b=2"' in page
    assert f'action="/stripe/_test/checkout/sessions/{created.id}/pay"' in page
    assert 'value="pm_card_visa"' in page and 'value="pm_card_chargeDeclined"' in page

    missing, _, text = browser(f"{sandbox.system_url('stripe')}/checkout/pay/cs_test_<b>")
    assert missing == 404 and "<b>" not in text and "cs_test_&lt;b&gt;" in text
    # Only the page and the hooks skip the API key.
    status, _, body = raw(sandbox, "GET", f"/v1/checkout/sessions/{created.id}")
    assert status == 401 and body["error"]["message"].startswith("You did not provide an API key")


def test_the_hosted_page_form_pays_and_redirects(sandbox, client):
    created = session(client, line(3000, "eur"))
    action = f"{sandbox.system_url('stripe')}/_test/checkout/sessions/{created.id}/pay"
    status, headers, _ = browser(
        action, "POST", {"payment_method": "pm_card_chargeDeclined", "redirect": "true"}
    )
    assert (status, headers["Location"]) == (303, f"/stripe/checkout/pay/{created.id}")
    status, _, page = browser(created.url)
    assert status == 200 and "Your card was declined." in page and "€30.00" in page

    status, headers, _ = browser(
        action, "POST", {"payment_method": "pm_card_visa", "redirect": "true"}
    )
    assert (status, headers["Location"]) == (
        303,
        f"https://shop.example/thanks?session={created.id}",
    )
    done = client.v1.checkout.sessions.retrieve(created.id)
    assert (done.status, done.payment_status) == ("complete", "paid")
    status, _, page = browser(created.url)
    assert status == 200 and "This payment is complete." in page and "<form" not in page
