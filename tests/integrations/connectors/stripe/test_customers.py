"""The Stripe customer as the two-way sync reads and writes it: its profile and saved
cards as facts, the update that makes it show a profile, why a profile cannot be
written, and the fingerprint the inbox's echo check compares.

Writes and webhooks go through the sandbox over real HTTP; the webhooks it sends are
signed and verified with the connector's own code.
"""

from __future__ import annotations

import json

import pytest

from integrations.connectors.stripe import client as stripe_client
from integrations.connectors.stripe.client import StripeGateway
from integrations.connectors.stripe.connector import StripeConnector
from integrations.connectors.stripe.mapping import (
    StripeCard,
    card_from_wire,
    customer_change_key,
    customer_fingerprint,
    customer_from_wire,
    customer_profile_params,
    event_facts,
    expected_customer_fingerprint,
    profile_as_written,
    profile_problems,
)
from integrations.connectors.stripe.webhooks import SIGNATURE_META
from integrations.kernel.facts import CustomerProfile, PostalAddress, profile_values
from integrations.models import ApiCall
from integrations.services.connections import connection_create
from tests.sandbox.localstripe_support import WebhookReceiver

pytestmark = pytest.mark.django_db

WHSEC = "whsec_customer_tests"

PROFILE = CustomerProfile(
    email="ada@example.com",
    name="Ada Lovelace",
    phone="+15550100",
    billing=PostalAddress(
        line1="12 St James's Square",
        line2="Flat 3",
        city="London",
        state="Greater London",
        postal_code="SW1Y 4JH",
        country="GB",
    ),
    shipping=PostalAddress(
        name="Ada King",
        line1="1 Ockham Lane",
        city="Ockham",
        postal_code="GU23 6NQ",
        country="GB",
        phone="+15550199",
    ),
)


# --- the sandbox over HTTP ----------------------------------------------------------------
@pytest.fixture
def stripe_sandbox(sandbox):
    return connection_create(
        name="stripe-customers",
        kind="stripe",
        base_url=sandbox.system_url("stripe"),
        credentials={"api_key": "sk_test_customer_tests"},
        webhook_secrets=[WHSEC],
        rate_limit_per_second=500,
    )


@pytest.fixture
def gateway(stripe_sandbox) -> StripeGateway:
    return StripeGateway(stripe_sandbox)


@pytest.fixture
def hooks(sandbox):
    """Every webhook the sandbox sends, signed with ``WHSEC``."""
    receiver = WebhookReceiver()
    sandbox.control("POST", "webhooks/stripe", {"url": receiver.url, "secret": WHSEC})
    yield receiver
    receiver.close()


def signed_deliveries(hooks: WebhookReceiver, event_type: str, count: int = 1) -> list[dict]:
    """The first ``count`` deliveries of ``event_type``, each as ``{"body", "signature"}``,
    waited for."""

    def of_type(deliveries):
        return [d for d in deliveries if json.loads(d["body"])["type"] == event_type]

    found = of_type(hooks.wait_for(lambda ds: len(of_type(ds)) >= count))
    return [
        {
            "body": d["body"],
            "signature": {k.lower(): v for k, v in d["headers"].items()}["stripe-signature"],
        }
        for d in found[:count]
    ]


def verified(delivery: dict) -> tuple[str, dict]:
    """The delivery checked and read by the connector: (event type, payload)."""
    connector = StripeConnector()
    connector.verify(
        body=delivery["body"], meta={SIGNATURE_META: delivery["signature"]}, secrets=[WHSEC]
    )
    parsed = connector.parse(delivery["body"])
    return parsed.event_type, parsed.payload


def new_customer(gateway: StripeGateway, key: str, **params) -> dict:
    return gateway.customer_create(
        params={"email": f"{key}@example.com", **params}, idempotency_key=f"customer:{key}"
    )


# --- facts ------------------------------------------------------------------------------------
CARD_WIRE = {
    "id": "pm_1Visa",
    "object": "payment_method",
    "type": "card",
    "customer": "cus_1",
    "card": {"brand": "visa", "last4": "4242", "exp_month": 8, "exp_year": 2031},
    "metadata": {},
}


def test_a_card_fact_reads_the_payment_method():
    card = card_from_wire(CARD_WIRE)
    assert card == StripeCard(
        id="pm_1Visa",
        customer="cus_1",
        brand="visa",
        last4="4242",
        exp_month=8,
        exp_year=2031,
        type="card",
    )
    assert card.raw is CARD_WIRE
    expanded = card_from_wire({**CARD_WIRE, "customer": {"id": "cus_2", "object": "customer"}})
    assert expanded.customer == "cus_2"
    debit = card_from_wire({"id": "pm_2", "type": "sepa_debit", "customer": None, "card": None})
    assert debit == StripeCard(
        id="pm_2", customer="", brand="", last4="", exp_month=0, exp_year=0, type="sepa_debit"
    )


def test_card_events_name_the_customer_also_after_a_detach(gateway, hooks):
    customer = new_customer(gateway, "cards")
    client = gateway.client.v1
    attached = client.payment_methods.attach("pm_card_visa", {"customer": customer["id"]})
    client.payment_methods.detach(attached.id)

    (attach_event,) = signed_deliveries(hooks, "payment_method.attached")
    (detach_event,) = signed_deliveries(hooks, "payment_method.detached")
    _, detached = verified(detach_event)
    assert detached["data"]["object"]["customer"] is None  # as Stripe sends it
    assert detached["data"]["previous_attributes"] == {"customer": customer["id"]}
    expected = {
        "id": attached.id,
        "customer": customer["id"],
        "brand": "visa",
        "last4": "4242",
        "exp_month": attached.card.exp_month,
        "exp_year": attached.card.exp_year,
        "type": "card",
    }
    assert event_facts(detached) == {"card": expected}
    assert event_facts(verified(attach_event)[1]) == {"card": expected}


def test_a_customer_fact_carries_its_profile():
    wire = {
        "id": "cus_9",
        "object": "customer",
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "phone": "+15550100",
        "address": {
            "line1": "12 St James's Square",
            "line2": None,
            "city": "London",
            "state": None,
            "postal_code": "SW1Y 4JH",
            "country": "GB",
        },
        "shipping": {
            "name": "Ada King",
            "phone": None,
            "address": {"line1": "1 Ockham Lane", "city": "Ockham", "country": "GB"},
        },
        "metadata": {"znode_user_id": "42"},
        "invoice_settings": {"default_payment_method": "pm_1"},
    }
    customer = customer_from_wire(wire)
    assert (customer.id, customer.znode_user_id, customer.default_payment_method) == (
        "cus_9",
        "42",
        "pm_1",
    )
    assert customer.deleted is False
    assert customer.profile == CustomerProfile(
        email="ada@example.com",
        name="Ada Lovelace",
        phone="+15550100",
        billing=PostalAddress(
            line1="12 St James's Square", city="London", postal_code="SW1Y 4JH", country="GB"
        ),
        shipping=PostalAddress(name="Ada King", line1="1 Ockham Lane", city="Ockham", country="GB"),
    )
    bare = customer_from_wire({"id": "cus_8", "address": None, "shipping": None, "name": None})
    assert bare.profile == CustomerProfile()
    gone = customer_from_wire({"id": "cus_7", "object": "customer", "deleted": True})
    assert (gone.id, gone.deleted, gone.profile) == ("cus_7", True, CustomerProfile())


def test_customer_event_facts_carry_the_profile():
    payload = {
        "type": "customer.updated",
        "data": {"object": {"id": "cus_1", "object": "customer", "name": "Ada", "phone": "1"}},
    }
    fact = event_facts(payload)["customer"]
    assert (fact["id"], fact["name"], fact["phone"], fact["deleted"]) == (
        "cus_1",
        "Ada",
        "1",
        False,
    )
    assert fact["address"] == {
        "name": "",
        "line1": "",
        "line2": "",
        "city": "",
        "state": "",
        "postal_code": "",
        "country": "",
        "phone": "",
    }


# --- writing a profile ----------------------------------------------------------------------
def test_the_params_show_every_part_and_name_the_shipping():
    assert customer_profile_params(PROFILE, znode_user_id=42) == {
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "phone": "+15550100",
        "address": {
            "line1": "12 St James's Square",
            "line2": "Flat 3",
            "city": "London",
            "state": "Greater London",
            "postal_code": "SW1Y 4JH",
            "country": "GB",
        },
        "shipping": {
            "name": "Ada King",
            "phone": "+15550199",
            "address": {
                "line1": "1 Ockham Lane",
                "line2": "",
                "city": "Ockham",
                "state": "",
                "postal_code": "GU23 6NQ",
                "country": "GB",
            },
        },
        "metadata": {"znode_user_id": "42"},
    }
    unnamed = CustomerProfile(
        name="Ada Lovelace", shipping=PostalAddress(line1="1 Ockham Lane", country="gb")
    )
    params = customer_profile_params(unnamed)
    assert params["shipping"]["name"] == "Ada Lovelace"
    assert params["shipping"]["address"]["country"] == "GB"
    assert (params["email"], params["phone"], params["address"]) == ("", "", "")
    assert "metadata" not in params


def test_a_profile_written_through_the_sandbox_reads_back_as_the_profile(gateway):
    customer = new_customer(gateway, "ada")
    updated = gateway.customer_update(
        customer["id"],
        params=customer_profile_params(PROFILE, znode_user_id=42),
        idempotency_key="profile:ada:1",
    )
    read = customer_from_wire(updated)
    assert profile_values(read.profile) == profile_values(PROFILE)
    assert read.profile == PROFILE
    assert read.znode_user_id == "42"
    again = customer_from_wire(gateway.customer_retrieve(customer["id"]))
    assert again.profile == PROFILE


def test_empty_parts_clear_them_on_stripe(gateway):
    customer = new_customer(gateway, "clear")
    gateway.customer_update(
        customer["id"], params=customer_profile_params(PROFILE), idempotency_key="clear:1"
    )
    fewer = CustomerProfile(
        email="ada@example.com",
        name="Ada Lovelace",
        billing=PostalAddress(line1="12 St James's Square", city="London", country="GB"),
    )
    updated = gateway.customer_update(
        customer["id"], params=customer_profile_params(fewer), idempotency_key="clear:2"
    )
    assert (updated["phone"], updated["shipping"]) == (None, None)
    assert updated["address"] == {
        "line1": "12 St James's Square",
        "line2": None,
        "city": "London",
        "state": None,
        "postal_code": None,
        "country": "GB",
    }
    assert customer_from_wire(updated).profile == fewer
    nothing = gateway.customer_update(
        customer["id"],
        params=customer_profile_params(CustomerProfile()),
        idempotency_key="clear:3",
    )
    assert (nothing["email"], nothing["name"], nothing["address"]) == (None, None, None)
    assert customer_from_wire(nothing).profile == CustomerProfile()


def test_what_stripe_keeps_of_a_profile():
    profile = CustomerProfile(
        name="Ada Lovelace",
        phone="+15550100",
        billing=PostalAddress(name="Ada L.", phone="+1999", line1="12 Square", country="gb"),
        shipping=PostalAddress(line1="1 Ockham Lane", country="GB"),
    )
    assert profile_as_written(profile) == CustomerProfile(
        name="Ada Lovelace",
        phone="+15550100",
        billing=PostalAddress(line1="12 Square", country="GB"),
        shipping=PostalAddress(name="Ada Lovelace", line1="1 Ockham Lane", country="GB"),
    )
    assert profile_as_written(PROFILE) == PROFILE


# --- profiles Stripe would refuse -------------------------------------------------------------
def test_a_profile_stripe_accepts_has_no_problems():
    assert profile_problems(PROFILE) == []
    assert profile_problems(CustomerProfile()) == []
    longest = CustomerProfile(
        # Django's validator allows 64 characters before the @ and 63 per label.
        email="a" * 64 + "@" + ("d" * 63 + ".") * 3 + "com",
        name="n" * 256,
        phone="1" * 20,
        billing=PostalAddress(line1="l" * 5000, country="us"),
    )
    assert profile_problems(longest) == []


@pytest.mark.parametrize(
    ("profile", "problems"),
    [
        (
            CustomerProfile(email="ada@example"),
            ["email 'ada@example' is not a valid email address"],
        ),
        (
            CustomerProfile(email="a" * 501 + "@example.com"),
            ["email is 513 characters; Stripe accepts at most 512"],
        ),
        (CustomerProfile(name="n" * 257), ["name is 257 characters; Stripe accepts at most 256"]),
        (CustomerProfile(phone="1" * 21), ["phone is 21 characters; Stripe accepts at most 20"]),
        (
            CustomerProfile(billing=PostalAddress(line1="l" * 5001)),
            ["billing address line1 is 5001 characters; Stripe accepts at most 5000"],
        ),
        (
            CustomerProfile(billing=PostalAddress(line1="1 Main", postal_code="9" * 5001)),
            ["billing address postal_code is 5001 characters; Stripe accepts at most 5000"],
        ),
        (
            CustomerProfile(billing=PostalAddress(line1="1 Main", country="Germany")),
            ["billing address country 'Germany' is not an ISO 3166-1 alpha-2 code (that is DE)"],
        ),
        (
            CustomerProfile(name="Ada", shipping=PostalAddress(line1="1 Main", country="Atlantis")),
            ["shipping address country 'Atlantis' is not an ISO 3166-1 alpha-2 code"],
        ),
        (
            CustomerProfile(
                name="Ada", shipping=PostalAddress(line1="1 Main", city="c" * 5001, country="GB")
            ),
            ["shipping address city is 5001 characters; Stripe accepts at most 5000"],
        ),
        (
            CustomerProfile(shipping=PostalAddress(name="s" * 257, line1="1 Main")),
            ["shipping name is 257 characters; Stripe accepts at most 256"],
        ),
        (
            CustomerProfile(name="Ada", shipping=PostalAddress(line1="1 Main", phone="1" * 21)),
            ["shipping phone is 21 characters; Stripe accepts at most 20"],
        ),
        (
            CustomerProfile(shipping=PostalAddress(line1="1 Main", country="GB")),
            [
                "shipping address has no name and neither has the profile; Stripe requires "
                "a name with a shipping address"
            ],
        ),
        (
            CustomerProfile(shipping=PostalAddress(name="Ada", phone="+1555")),
            [
                "shipping name or phone is set without a shipping address; Stripe keeps them "
                "only with one"
            ],
        ),
        (
            CustomerProfile(
                email="nope", name="n" * 300, billing=PostalAddress(line1="1", country="XX")
            ),
            [
                "email 'nope' is not a valid email address",
                "name is 300 characters; Stripe accepts at most 256",
                "billing address country 'XX' is not an ISO 3166-1 alpha-2 code",
            ],
        ),
    ],
)
def test_each_problem_names_the_field_and_the_limit(profile, problems):
    assert profile_problems(profile) == problems


def test_the_sandbox_refuses_what_profile_problems_reports(gateway):
    """The limits are Stripe's (the sandbox reads the same OpenAPI maxLength): one over
    is a 400, not a truncation."""
    from integrations.kernel.exceptions import BadRequest

    customer = new_customer(gateway, "long")
    too_long = CustomerProfile(name="n" * 257)
    assert profile_problems(too_long) == ["name is 257 characters; Stripe accepts at most 256"]
    with pytest.raises(BadRequest, match="must be at most 256 characters"):
        gateway.customer_update(
            customer["id"], params=customer_profile_params(too_long), idempotency_key="long:1"
        )


# --- the fingerprint ----------------------------------------------------------------------
CUSTOMER_WIRE = {
    "id": "cus_1",
    "object": "customer",
    "email": "ada@example.com",
    "name": "Ada Lovelace",
    "phone": None,
    "address": {"line1": "12 Square", "country": "GB"},
    "shipping": None,
    "description": None,
    "metadata": {},
    "invoice_settings": {"default_payment_method": None},
}


def test_the_fingerprint_ignores_what_no_flow_acts_on_but_not_the_default_card():
    fingerprint = customer_fingerprint(CUSTOMER_WIRE)
    assert len(fingerprint) == 64
    assert fingerprint == expected_customer_fingerprint(
        CustomerProfile(
            email="ada@example.com",
            name="Ada Lovelace",
            billing=PostalAddress(line1="12 Square", country="GB"),
        ),
        default_payment_method="",
    )
    ignored = {
        **CUSTOMER_WIRE,
        "description": "VIP",
        "metadata": {"znode_user_id": "42", "note": "x"},
        "balance": 500,
        "email": "  ADA@example.com ",
    }
    assert customer_fingerprint(ignored) == fingerprint
    default_card = {**CUSTOMER_WIRE, "invoice_settings": {"default_payment_method": "pm_1"}}
    assert customer_fingerprint(default_card) != fingerprint
    other_card = {**CUSTOMER_WIRE, "invoice_settings": {"default_payment_method": "pm_2"}}
    assert customer_fingerprint(other_card) not in (fingerprint, customer_fingerprint(default_card))
    assert customer_fingerprint({**CUSTOMER_WIRE, "phone": "+1555"}) != fingerprint
    moved = {**CUSTOMER_WIRE, "shipping": {"name": "Ada", "address": {"line1": "1 Lane"}}}
    assert customer_fingerprint(moved) != fingerprint
    assert customer_fingerprint({"id": "cus_1", "address": "odd", "shipping": 7}) == (
        customer_fingerprint({"id": "cus_1"})
    )


def test_our_predicted_echo_is_the_signed_webhook_the_sandbox_sends(gateway, hooks):
    connector = StripeConnector()
    created = new_customer(gateway, "echo", metadata={"znode_user_id": "7"})
    expected = expected_customer_fingerprint(PROFILE, default_payment_method="")
    updated = gateway.customer_update(
        created["id"],
        params=customer_profile_params(PROFILE, znode_user_id=7),
        idempotency_key="echo:1",
    )
    assert customer_fingerprint(updated) == expected

    (creation,) = signed_deliveries(hooks, "customer.created")
    (update,) = signed_deliveries(hooks, "customer.updated")
    event_type, payload = verified(update)
    change = connector.change_fingerprint(event_type, payload)
    assert (change.object_key, change.fingerprint) == (f"customer:{created['id']}", expected)
    assert (change.creates, change.update_event_type) == (False, "")
    assert customer_change_key(created["id"]) == change.object_key

    event_type, payload = verified(creation)
    born = connector.change_fingerprint(event_type, payload)
    assert born.object_key == change.object_key
    assert born.fingerprint == customer_fingerprint(created) != expected
    assert (born.creates, born.update_event_type) == (True, "customer.updated")


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        ("customer.deleted", {"object": {"id": "cus_1", "object": "customer"}}),
        ("payment_intent.succeeded", {"object": {"id": "pi_1", "object": "payment_intent"}}),
        ("payment_method.attached", {"object": {"id": "pm_1", "object": "payment_method"}}),
        ("customer.updated", {"object": {"object": "customer"}}),
        ("customer.updated", {"object": {"id": 42, "object": "customer"}}),
        ("customer.updated", "odd"),
    ],
)
def test_other_events_and_customers_without_an_id_are_not_gated(event_type, data):
    payload = {"id": "evt_1", "type": event_type, "data": data}
    assert StripeConnector().change_fingerprint(event_type, payload) is None


# --- saved cards ----------------------------------------------------------------------------
def test_every_page_of_the_customers_cards_is_read(gateway, monkeypatch):
    customer = new_customer(gateway, "wallet")
    client = gateway.client.v1
    attached = [
        client.payment_methods.attach("pm_card_visa", {"customer": customer["id"]}).id
        for _ in range(3)
    ]
    other = new_customer(gateway, "someone-else")
    client.payment_methods.attach("pm_card_visa", {"customer": other["id"]})
    monkeypatch.setattr(stripe_client, "LIST_PAGE_SIZE", 2)
    ApiCall.objects.all().delete()

    cards = [card_from_wire(pm) for pm in gateway.customer_payment_methods(customer["id"])]

    assert [card.id for card in cards] == attached[::-1]  # newest first
    assert {(card.customer, card.brand, card.last4, card.type) for card in cards} == {
        (customer["id"], "visa", "4242", "card")
    }
    calls = ApiCall.objects.filter(operation="customer.payment_methods").order_by("id")
    listing = f"/v1/customers/{customer['id']}/payment_methods?limit=2&type=card"
    assert [(c.method, c.url.partition("/stripe")[2], c.status_code) for c in calls] == [
        ("GET", listing, 200),
        ("GET", f"{listing}&starting_after={attached[1]}", 200),
    ]
    assert gateway.customer_payment_methods(other["id"], type="sepa_debit") == []


def test_profile_params_of_some_fields_send_only_those():
    profile = CustomerProfile(
        email="ana@example.com",
        name="Ana Lima",
        phone="+15550100",
        billing=PostalAddress(line1="1 Main St", city="Austin", country="US"),
    )

    params = customer_profile_params(profile, znode_user_id=7, fields=("phone", "billing_address"))

    assert params == {
        "phone": "+15550100",
        "address": {
            "line1": "1 Main St",
            "line2": "",
            "city": "Austin",
            "state": "",
            "postal_code": "",
            "country": "US",
        },
        "metadata": {"znode_user_id": "7"},
    }
    assert customer_profile_params(profile, fields=()) == {}
