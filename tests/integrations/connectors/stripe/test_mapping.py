from integrations.connectors.stripe.mapping import (
    address_params,
    charge_from_wire,
    customer_facing_decline,
    customer_from_wire,
    event_facts,
    page_from_wire,
    payment_from_wire,
    payment_intent_params,
)
from integrations.kernel.facts import PostalAddress, fact_json


def event(event_type, obj):
    return {"id": "evt_1", "type": event_type, "data": {"object": obj}}


PAYMENT_INTENT = {
    "id": "pi_1",
    "object": "payment_intent",
    "status": "succeeded",
    "amount": 1999,
    "amount_received": 1999,
    "currency": "usd",
    "latest_charge": "ch_1",
    "customer": "cus_1",
    "client_secret": "pi_1_secret_x",
    "metadata": {"znode_order_number": "ORD-1", "integration": "main"},
}


def test_payment_intent_reads_as_a_payment_and_keeps_raw():
    payment = payment_from_wire(PAYMENT_INTENT)
    assert (payment.id, payment.charge_id, payment.amount, payment.order_number) == (
        "pi_1",
        "ch_1",
        1999,
        "ORD-1",
    )
    assert (payment.customer, payment.integration, payment.received) == ("cus_1", "main", 1999)
    assert payment.raw is PAYMENT_INTENT
    assert "secret" not in repr(payment)


def test_an_event_names_its_object_by_what_it_is_without_raw_or_secret():
    facts = event_facts(event("payment_intent.succeeded", PAYMENT_INTENT))
    assert facts["payment"]["order_number"] == "ORD-1"
    assert facts["payment"]["id"] == "pi_1"
    assert "raw" not in facts["payment"]
    session = {"id": "cs_1", "object": "checkout.session", "status": "expired"}
    session["metadata"] = {"znode_order_number": "ORD-2"}
    assert event_facts(event("checkout.session.expired", session))["page"]["order_number"] == (
        "ORD-2"
    )
    payout = {"id": "po_1", "object": "payout", "amount": 5651, "automatic": True}
    assert event_facts(event("payout.paid", payout)) == {
        "payout": {
            "id": "po_1",
            "amount": 5651,
            "currency": "",
            "status": "",
            "automatic": True,
            "arrival_date": 0,
            "created": 0,
            "balance_transaction": "",
            "reconciliation_status": "",
            "failure_code": "",
            "failure_message": "",
            "failure_balance_transaction": "",
        }
    }
    assert event_facts(event("balance.available", {"object": "balance"})) == {}
    assert event_facts({"data": "not an object"}) == {}


def test_payment_failed_carries_decline_code():
    payment = payment_from_wire(
        {
            "id": "pi_2",
            "object": "payment_intent",
            "status": "requires_payment_method",
            "latest_charge": {"id": "ch_2", "object": "charge", "amount": 500},
            "last_payment_error": {
                "code": "card_declined",
                "decline_code": "insufficient_funds",
                "message": "Your card has insufficient funds.",
            },
        }
    )
    assert (payment.charge_id, payment.decline_code, payment.failure_code) == (
        "ch_2",
        "insufficient_funds",
        "card_declined",
    )
    assert payment.charge is not None and payment.charge.amount == 500
    assert payment.received == 0


def test_received_falls_back_to_the_captured_charge():
    """localstripe.md: emulators may leave amount_received at 0 on a succeeded intent."""
    payment = payment_from_wire(
        {
            "id": "pi_3",
            "status": "succeeded",
            "amount": 700,
            "amount_received": 0,
            "latest_charge": {"id": "ch_3", "captured": True, "paid": True, "amount": 700},
        }
    )
    assert payment.received == 700


def test_charge_page_and_customer_facts():
    charge = charge_from_wire(
        {
            "id": "ch_4",
            "status": "succeeded",
            "captured": False,
            "amount": 900,
            "payment_intent": {"id": "pi_4"},
        }
    )
    assert (charge.payment_intent, charge.captured, charge.amount_refunded) == ("pi_4", False, 0)
    page = page_from_wire({"id": "cs_2", "payment_intent": "pi_5", "amount_total": 300})
    assert (page.payment_intent, page.amount_total, page.status) == ("pi_5", 300, "")
    customer = customer_from_wire(
        {
            "id": "cus_2",
            "metadata": {"znode_user_id": "42"},
            "invoice_settings": {"default_payment_method": {"id": "pm_1"}},
        }
    )
    assert (customer.znode_user_id, customer.default_payment_method) == ("42", "pm_1")
    legacy = customer_from_wire({"id": "cus_3", "default_source": "card_1"})
    assert legacy.default_payment_method == "card_1"


def test_off_session_params_confirm_with_the_saved_method():
    params = payment_intent_params(
        amount_minor=1999,
        currency="usd",
        customer="cus_1",
        metadata={"znode_order_number": "ORD-1"},
        manual_capture=True,
        payment_method="pm_1",
    )
    assert params["capture_method"] == "manual"
    assert (params["confirm"], params["off_session"], params["payment_method"]) == (
        True,
        True,
        "pm_1",
    )
    assert "description" not in params


def test_address_params_leave_out_empty_parts():
    address = PostalAddress(line1="1 Main St", city="Springfield", country="US")
    assert address_params(address) == {"line1": "1 Main St", "city": "Springfield", "country": "US"}
    assert fact_json(PostalAddress(name="A"))["name"] == "A"
    assert not PostalAddress()
    assert PostalAddress.from_json({"line1": "x", "unknown": 1}) == PostalAddress(line1="x")
    assert fact_json(charge_from_wire({"amount": 1})) == fact_json(charge_from_wire({"amount": 1}))


def test_fraud_declines_are_shown_as_generic():
    assert customer_facing_decline("stolen_card") == "generic_decline"
    assert customer_facing_decline("fraudulent") == "generic_decline"
    assert customer_facing_decline("insufficient_funds") == "insufficient_funds"
    assert customer_facing_decline("") == "generic_decline"


def test_metadata_respects_stripe_limits():
    from integrations.connectors.stripe.mapping import stripe_metadata

    meta = stripe_metadata(
        {"znode[order]": "1", "k" * 60: "v" * 600, "empty": "", "none": None}
        | {f"key{i}": i for i in range(80)}
    )
    assert meta["znodeorder"] == "1"
    assert meta["k" * 40] == "v" * 500
    assert "empty" not in meta and "none" not in meta
    assert len(meta) == 50 and all(isinstance(v, str) for v in meta.values())
