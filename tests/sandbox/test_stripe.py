"""The Stripe fake through the official SDK: auth, errors, customers, payment methods,
idempotency, lists and expansion. Payments, the ledger and webhooks have their own files."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest
import stripe

# Tests of Stripe itself start from an empty account (no seeded Znode charges).
pytestmark = pytest.mark.usefixtures("empty_stripe")

KEY = "sk_test_sandbox_core_key"


def make_client(sandbox, key: str = KEY, retries: int = 0) -> stripe.StripeClient:
    # UrllibClient: one connection per request. With keep-alive (the default RequestsClient)
    # each answer from the sandbox's http.server waits ~40 ms for Nagle's algorithm.
    return stripe.StripeClient(
        key,
        base_addresses={"api": sandbox.system_url("stripe")},
        max_network_retries=retries,
        http_client=stripe.UrllibClient(),
    )


@pytest.fixture
def client(sandbox):
    return make_client(sandbox)


def raw(sandbox, method: str, path: str, data: str | None = None, headers: dict | None = None):
    request = urllib.request.Request(
        f"{sandbox.system_url('stripe')}{path}",
        data=data.encode() if data is not None else None,
        method=method,
        headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def header(source, name: str) -> str | None:
    """A response header, whatever the case the HTTP client kept."""
    headers = getattr(source, "headers", source)
    return {k.lower(): v for k, v in headers.items()}.get(name.lower())


def event_types(client) -> list[str]:
    return [e.type for e in client.v1.events.list({"limit": 100}).data][::-1]


# --- auth, errors, headers -------------------------------------------------------------------
@pytest.mark.parametrize("key", ["pk_test_abcdefghijkl", "sk_test_1", "sk_live_abcdefghijkl"])
def test_bad_api_keys_are_refused(sandbox, key):
    with pytest.raises(stripe.AuthenticationError) as caught:
        make_client(sandbox, key).v1.customers.list()
    assert caught.value.http_status == 401
    assert caught.value.json_body["error"]["type"] == "invalid_request_error"
    assert "Invalid API Key provided" in caught.value.json_body["error"]["message"]
    assert caught.value.request_id.startswith("req_")


def test_missing_key_and_basic_auth(sandbox):
    status, headers, body = raw(sandbox, "GET", "/v1/customers")
    assert status == 401
    assert body["error"]["message"].startswith("You did not provide an API key.")
    assert headers["Request-Id"].startswith("req_")
    basic = base64.b64encode(f"{KEY}:".encode()).decode()
    status, _, body = raw(
        sandbox, "GET", "/v1/customers", headers={"Authorization": f"Basic {basic}"}
    )
    assert (status, body["object"], body["data"]) == (200, "list", [])


def test_every_response_has_a_request_id(sandbox):
    auth = {"Authorization": f"Bearer {KEY}"}
    seen = set()
    for path in ("/v1/customers", "/v1/nowhere", "/v1/customers/cus_missing"):
        status, headers, body = raw(sandbox, "GET", path, headers=auth)
        seen.add(headers["Request-Id"])
        assert headers["Request-Id"].startswith("req_")
        assert headers["Stripe-Version"] == "2026-10-28.endive"
    assert len(seen) == 3
    status, _, body = raw(sandbox, "GET", "/v1/nowhere", headers=auth)
    assert status == 404
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"].startswith("Unrecognized request URL (/v1/nowhere)")


def test_missing_objects_are_404_resource_missing(client):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.customers.retrieve("cus_missing")
    error = caught.value
    assert (error.http_status, error.code, error.param) == (404, "resource_missing", "id")
    assert error.user_message == "No such customer: 'cus_missing'"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.create(
            {"amount": 1000, "currency": "usd", "customer": "cus_missing"}
        )
    assert (caught.value.http_status, caught.value.param) == (400, "customer")
    assert client.v1.payment_intents.list().data == []


def test_injected_faults_look_like_stripe_errors(sandbox, client):
    sandbox.set_faults("stripe", error_rate=1.0)
    with pytest.raises(stripe.APIError) as caught:
        client.v1.customers.create({"email": "x@example.com"})
    assert caught.value.http_status == 500
    assert caught.value.json_body["error"]["type"] == "api_error"
    assert caught.value.request_id.startswith("req_")
    sandbox.set_faults("stripe", error_rate=0.0, burst_429_every=1, burst_429_length=1)
    with pytest.raises(stripe.RateLimitError) as caught:
        client.v1.customers.list()
    assert caught.value.http_status == 429
    assert caught.value.json_body["error"]["code"] == "rate_limit"
    assert header(caught.value, "Retry-After") == "1"
    sandbox.set_faults("stripe", burst_429_every=0)
    assert client.v1.customers.list().data == []  # the refused create stored nothing


# --- customers -------------------------------------------------------------------------------
ADDRESS = {
    "line1": "1 Main St",
    "line2": "Suite 2",
    "city": "Springfield",
    "state": "IL",
    "postal_code": "62701",
    "country": "US",
}


def test_customer_create_retrieve_update_delete(client):
    customer = client.v1.customers.create(
        {
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "phone": "+15555550100",
            "description": "Znode user 42",
            "address": ADDRESS,
            "shipping": {"name": "Ada L.", "address": {**ADDRESS, "line2": ""}, "phone": "+1555"},
            "metadata": {"znode_user_id": "42", "tier": "gold"},
        }
    )
    assert customer.id.startswith("cus_")
    assert customer.object == "customer"
    assert customer.livemode is False
    assert isinstance(customer.created, int)
    assert customer.address.to_dict() == ADDRESS
    assert customer.shipping.to_dict() == {
        "name": "Ada L.",
        "phone": "+1555",
        "address": {**ADDRESS, "line2": None},
    }
    assert customer.metadata.to_dict() == {"znode_user_id": "42", "tier": "gold"}
    assert customer.invoice_settings.default_payment_method is None
    assert client.v1.customers.retrieve(customer.id).to_dict() == customer.to_dict()

    updated = client.v1.customers.update(
        customer.id, {"metadata": {"tier": "", "erp_id": "C-9"}, "name": "Ada King"}
    )
    assert updated.metadata.to_dict() == {"znode_user_id": "42", "erp_id": "C-9"}
    assert updated.name == "Ada King"
    assert updated.email == "ada@example.com"
    event = client.v1.events.list({"type": "customer.updated"}).data[0]
    assert event.data.previous_attributes.to_dict() == {
        "name": "Ada Lovelace",
        "metadata": {"znode_user_id": "42", "tier": "gold"},
    }

    deleted = client.v1.customers.delete(customer.id)
    assert deleted.to_dict() == {"id": customer.id, "object": "customer", "deleted": True}
    assert client.v1.customers.retrieve(customer.id).deleted is True
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.customers.delete(customer.id)
    assert (caught.value.http_status, caught.value.code) == (404, "resource_missing")
    assert client.v1.customers.list().data == []
    assert event_types(client) == ["customer.created", "customer.updated", "customer.deleted"]


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"email": "not-an-email"}, "email", "email_invalid"),
        ({"nickname": "x"}, "nickname", "parameter_unknown"),
        ({"shipping": {"address": ADDRESS}}, "shipping[name]", "parameter_missing"),
        ({"address": {"street": "x"}}, "address[street]", "parameter_unknown"),
        ({"address": {"country": "USA"}}, "address[country]", None),
        ({"metadata": {"k" * 41: "v"}}, f"metadata[{'k' * 41}]", None),
        (
            {"invoice_settings": {"default_payment_method": "pm_nope"}},
            "invoice_settings[default_payment_method]",
            "resource_missing",
        ),
    ],
)
def test_customer_validation_changes_nothing(client, params, param, code):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.customers.create(params)
    assert (caught.value.http_status, caught.value.param, caught.value.code) == (400, param, code)
    assert client.v1.customers.list().data == []
    assert client.v1.events.list().data == []


def test_customer_lists_paginate_newest_first(client):
    ids = [client.v1.customers.create({"email": f"c{i}@example.com"}).id for i in range(25)]
    newest_first = ids[::-1]
    page = client.v1.customers.list({"limit": 10})
    assert [c.id for c in page.data] == newest_first[:10]
    assert page.has_more is True
    assert page.url == "/v1/customers"
    page2 = client.v1.customers.list({"limit": 10, "starting_after": page.data[-1].id})
    assert [c.id for c in page2.data] == newest_first[10:20]
    page3 = client.v1.customers.list({"limit": 10, "starting_after": page2.data[-1].id})
    assert [c.id for c in page3.data] == newest_first[20:]
    assert page3.has_more is False
    back = client.v1.customers.list({"limit": 5, "ending_before": page2.data[0].id})
    assert [c.id for c in back.data] == newest_first[5:10]
    assert back.has_more is True
    assert [c.id for c in client.v1.customers.list({"limit": 7}).auto_paging_iter()] == newest_first
    assert len(client.v1.customers.list().data) == 10  # the default limit
    assert [c.id for c in client.v1.customers.list({"email": "c3@example.com"}).data] == [ids[3]]
    for bad in ({"limit": 0}, {"limit": 101}, {"starting_after": "cus_nope"}):
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.customers.list(bad)


def test_customer_search(client):
    a = client.v1.customers.create({"email": "a@example.com", "metadata": {"znode_id": "7"}})
    client.v1.customers.create({"email": "b@example.com", "metadata": {"znode_id": "8"}})
    found = client.v1.customers.search({"query": "metadata['znode_id']:'7'"})
    assert [c.id for c in found.data] == [a.id]
    found = client.v1.customers.search(
        {"query": "email:'a@example.com' AND metadata['znode_id']:'7'"}
    )
    assert [c.id for c in found.data] == [a.id]
    assert client.v1.customers.search({"query": "email~'example.com'"}).data[0].object == "customer"


# --- payment methods ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("token", "brand", "last4"),
    [
        ("pm_card_visa", "visa", "4242"),
        ("pm_card_mastercard", "mastercard", "4444"),
        ("pm_card_amex", "amex", "0005"),
        ("pm_card_visa_debit", "visa", "5556"),
    ],
)
def test_test_payment_methods_mint_real_objects(client, token, brand, last4):
    first = client.v1.payment_methods.retrieve(token)
    second = client.v1.payment_methods.retrieve(token)
    assert first.id.startswith("pm_") and first.id != token and first.id != second.id
    assert (first.type, first.card.brand, first.card.last4, first.card.country) == (
        "card",
        brand,
        last4,
        "US",
    )
    assert first.card.exp_month == 12 and first.card.exp_year > 2025
    assert first.customer is None
    assert client.v1.payment_methods.retrieve(first.id).to_dict() == first.to_dict()


def test_raw_card_numbers(client):
    pm = client.v1.payment_methods.create(
        {
            "type": "card",
            "card": {"number": "4000000000009995", "exp_month": 4, "exp_year": 2044, "cvc": "314"},
            "billing_details": {"name": "Jo", "email": "jo@example.com"},
        }
    )
    assert (pm.card.brand, pm.card.last4, pm.card.exp_year) == ("visa", "9995", 2044)
    assert pm.billing_details.name == "Jo"
    with pytest.raises(stripe.CardError) as caught:
        client.v1.payment_intents.create(
            {"amount": 1000, "currency": "usd", "payment_method": pm.id, "confirm": True}
        )
    assert caught.value.error.decline_code == "insufficient_funds"
    token_pm = client.v1.payment_methods.create(
        {"type": "card", "card": {"token": "tok_mastercard"}}
    )
    assert token_pm.card.last4 == "4444"
    for card, code, param in (
        (
            {"number": "4242424242424241", "exp_month": 1, "exp_year": 2040},
            "incorrect_number",
            "card[number]",
        ),
        (
            {"number": "4242424242424242", "exp_month": 13, "exp_year": 2040},
            "invalid_expiry_month",
            "card[exp_month]",
        ),
        (
            {"number": "4242424242424242", "exp_month": 1, "exp_year": 2001},
            "invalid_expiry_year",
            "card[exp_year]",
        ),
        (
            {"number": "4242424242424242", "exp_month": 1, "exp_year": 2040, "cvc": "1"},
            "invalid_cvc",
            "card[cvc]",
        ),
    ):
        with pytest.raises(stripe.CardError) as caught:
            client.v1.payment_methods.create({"type": "card", "card": card})
        assert (caught.value.http_status, caught.value.code, caught.value.param) == (
            402,
            code,
            param,
        )


def test_attach_detach_and_list(client):
    ada = client.v1.customers.create({"email": "ada@example.com"})
    bob = client.v1.customers.create({"email": "bob@example.com"})
    pm = client.v1.payment_methods.attach("pm_card_visa", {"customer": ada.id})
    assert pm.id.startswith("pm_") and pm.customer == ada.id
    second = client.v1.payment_methods.attach("pm_card_mastercard", {"customer": ada.id})
    listed = client.v1.customers.payment_methods.list(ada.id)
    assert [m.id for m in listed.data] == [second.id, pm.id]
    assert [
        m.id for m in client.v1.payment_methods.list({"customer": ada.id, "type": "card"}).data
    ] == [second.id, pm.id]
    assert client.v1.payment_methods.list().data == []  # Stripe lists nothing without a customer
    assert client.v1.customers.payment_methods.retrieve(ada.id, pm.id).id == pm.id
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.payment_methods.retrieve(bob.id, pm.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_methods.attach(pm.id, {"customer": bob.id})
    client.v1.customers.update(ada.id, {"invoice_settings": {"default_payment_method": pm.id}})
    detached = client.v1.payment_methods.detach(pm.id)
    assert detached.customer is None
    assert client.v1.customers.retrieve(ada.id).invoice_settings.default_payment_method is None
    assert [m.id for m in client.v1.customers.payment_methods.list(ada.id).data] == [second.id]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_methods.attach(pm.id, {"customer": ada.id})
    assert "may not be used again" in caught.value.user_message
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_methods.detach(pm.id)
    assert event_types(client) == [
        "customer.created",
        "customer.created",
        "payment_method.attached",
        "payment_method.attached",
        "customer.updated",
        "customer.updated",
        "payment_method.detached",
    ]


def test_attaching_a_declining_card_is_refused(client):
    ada = client.v1.customers.create({"email": "ada@example.com"})
    with pytest.raises(stripe.CardError) as caught:
        client.v1.payment_methods.attach("pm_card_chargeDeclined", {"customer": ada.id})
    assert (caught.value.code, caught.value.error.decline_code) == (
        "card_declined",
        "generic_decline",
    )
    assert client.v1.customers.payment_methods.list(ada.id).data == []
    # 4000000000000341 attaches, and fails only when charged.
    pm = client.v1.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": ada.id})
    assert pm.customer == ada.id


def test_customer_created_with_a_default_payment_method(client):
    customer = client.v1.customers.create(
        {
            "email": "ada@example.com",
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        }
    )
    default = customer.invoice_settings.default_payment_method
    assert default.startswith("pm_") and default != "pm_card_visa"
    assert client.v1.payment_methods.retrieve(default).customer == customer.id
    expanded = client.v1.customers.retrieve(
        customer.id, {"expand": ["invoice_settings.default_payment_method"]}
    )
    assert expanded.invoice_settings.default_payment_method.card.last4 == "4242"


# --- idempotency --------------------------------------------------------------------------------
def test_idempotent_replay_and_conflict_through_the_sdk(client, sandbox):
    params = {"email": "ada@example.com", "metadata": {"order": "1"}}
    first = client.v1.customers.create(params, {"idempotency_key": "create-ada"})
    again = client.v1.customers.create(params, {"idempotency_key": "create-ada"})
    assert again.id == first.id
    assert again.to_dict() == first.to_dict()
    assert header(first.last_response, "Idempotent-Replayed") is None
    assert header(first.last_response, "Original-Request") == first.last_response.request_id
    assert header(again.last_response, "Idempotent-Replayed") == "true"
    assert header(again.last_response, "Original-Request") == first.last_response.request_id
    assert again.last_response.request_id != first.last_response.request_id
    assert len(client.v1.customers.list().data) == 1

    with pytest.raises(stripe.IdempotencyError) as caught:
        client.v1.customers.create({"email": "eve@example.com"}, {"idempotency_key": "create-ada"})
    assert caught.value.http_status == 400
    assert caught.value.json_body["error"]["type"] == "idempotency_error"
    with pytest.raises(stripe.IdempotencyError):
        client.v1.payment_intents.create(
            {"amount": 1000, "currency": "usd"}, {"idempotency_key": "create-ada"}
        )
    assert len(client.v1.customers.list().data) == 1
    assert client.v1.payment_intents.list().data == []
    assert event_types(client) == ["customer.created"]

    # Keys are per API key.
    other = make_client(sandbox, "sk_test_another_account_key")
    assert other.v1.customers.create(params, {"idempotency_key": "create-ada"}).id != first.id


def test_idempotency_replays_card_errors_but_not_validation_errors(client):
    params = {
        "amount": 1500,
        "currency": "usd",
        "payment_method": "pm_card_chargeDeclined",
        "confirm": True,
    }
    with pytest.raises(stripe.CardError) as first:
        client.v1.payment_intents.create(params, {"idempotency_key": "pay-1"})
    with pytest.raises(stripe.CardError) as again:
        client.v1.payment_intents.create(params, {"idempotency_key": "pay-1"})
    assert again.value.json_body == first.value.json_body
    assert header(again.value, "Idempotent-Replayed") == "true"
    assert len(client.v1.payment_intents.list().data) == 1

    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.create(
            {"amount": 10, "currency": "usd"}, {"idempotency_key": "pay-2"}
        )
    fixed = client.v1.payment_intents.create(
        {"amount": 1000, "currency": "usd"}, {"idempotency_key": "pay-2"}
    )
    assert fixed.amount == 1000
    assert len(client.v1.payment_intents.list().data) == 2


def test_a_lost_response_is_recovered_by_retrying_with_the_same_key(sandbox, client):
    sandbox.set_faults("stripe", error_after_write_rate=1.0)
    with pytest.raises(stripe.APIError) as caught:
        client.v1.customers.create({"email": "ada@example.com"}, {"idempotency_key": "k-lost"})
    assert caught.value.http_status == 502
    sandbox.set_faults("stripe", error_after_write_rate=0.0)
    customer = client.v1.customers.create(
        {"email": "ada@example.com"}, {"idempotency_key": "k-lost"}
    )
    assert header(customer.last_response, "Idempotent-Replayed") == "true"
    assert [c.id for c in client.v1.customers.list().data] == [customer.id]
    assert event_types(client) == ["customer.created"]


# --- expansion ---------------------------------------------------------------------------------
def test_expand(client):
    customer = client.v1.customers.create({"email": "ada@example.com"})
    pi = client.v1.payment_intents.create(
        {
            "amount": 2000,
            "currency": "usd",
            "customer": customer.id,
            "payment_method": "pm_card_visa",
            "confirm": True,
            "expand": ["latest_charge", "customer"],
        }
    )
    assert pi.latest_charge.object == "charge" and pi.latest_charge.amount == 2000
    assert pi.customer.email == "ada@example.com"
    plain = client.v1.payment_intents.retrieve(pi.id)
    assert plain.latest_charge == pi.latest_charge.id and plain.customer == customer.id
    charges = client.v1.charges.list(
        {"expand": ["data.payment_intent", "data.balance_transaction"]}
    )
    assert charges.data[0].payment_intent.id == pi.id
    assert charges.data[0].balance_transaction.object == "balance_transaction"
    deep = client.v1.payment_intents.retrieve(
        pi.id, {"expand": ["latest_charge.balance_transaction.source"]}
    )
    assert deep.latest_charge.balance_transaction.source.id == pi.latest_charge.id
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.retrieve(pi.id, {"expand": ["amount"]})
    assert caught.value.param == "expand"


# --- state ---------------------------------------------------------------------------------------
def test_state_is_json_and_survives_a_restart(tmp_path):
    from sandbox.server import Sandbox, SandboxServer

    path = tmp_path / "state.json"

    def start():
        server = SandboxServer(Sandbox(seed=7, state_path=str(path))).start()
        client = stripe.StripeClient(
            KEY,
            base_addresses={"api": f"{server.url}/stripe"},
            max_network_retries=0,
            http_client=stripe.UrllibClient(),
        )
        return server, client

    server, client = start()
    try:
        customer = client.v1.customers.create(
            {"email": "ada@example.com"}, {"idempotency_key": "k"}
        )
        pi = client.v1.payment_intents.create(
            {
                "amount": 2000,
                "currency": "usd",
                "customer": customer.id,
                "payment_method": "pm_card_bypassPending",
                "confirm": True,
            }
        )
        client.v1.refunds.create({"payment_intent": pi.id, "amount": 500})
        urllib.request.urlopen(
            urllib.request.Request(
                f"{server.url}/stripe/_test/run_payouts", data=b"", method="POST"
            ),
            timeout=10,
        ).read()
    finally:
        server.stop()
    saved = json.loads(path.read_text())["stripe"]
    assert saved["objects"]["payment_intent"][pi.id]["status"] == "succeeded"

    server, client = start()
    try:
        assert client.v1.payment_intents.retrieve(pi.id).status == "succeeded"
        again = client.v1.customers.create({"email": "ada@example.com"}, {"idempotency_key": "k"})
        assert again.id == customer.id
        payout = client.v1.payouts.list().data[0]
        rows = client.v1.balance_transactions.list({"payout": payout.id}).data
        assert (payout.amount, sum(t.net for t in rows), len(rows)) == (1912 - 500, 0, 3)
    finally:
        server.stop()
