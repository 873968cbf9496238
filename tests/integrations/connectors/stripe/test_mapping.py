import pytest

from integrations.connectors.stripe.mapping import customer_facing_decline, facts


def event(event_type, obj):
    return {"id": "evt_1", "type": event_type, "data": {"object": obj}}


def test_payment_intent_succeeded():
    f = facts(
        event(
            "payment_intent.succeeded",
            {
                "id": "pi_1",
                "object": "payment_intent",
                "status": "succeeded",
                "amount": 1999,
                "currency": "usd",
                "latest_charge": "ch_1",
                "customer": "cus_1",
                "metadata": {"znode_order_number": "ORD-1"},
            },
        )
    )
    assert (f.object_type, f.payment_intent, f.charge, f.amount, f.order_number) == (
        "payment_intent",
        "pi_1",
        "ch_1",
        1999,
        "ORD-1",
    )
    assert f.customer == "cus_1"


def test_payment_failed_carries_decline_code():
    f = facts(
        event(
            "payment_intent.payment_failed",
            {
                "id": "pi_2",
                "object": "payment_intent",
                "status": "requires_payment_method",
                "latest_charge": {"id": "ch_2", "object": "charge"},
                "last_payment_error": {
                    "code": "card_declined",
                    "decline_code": "insufficient_funds",
                    "message": "Your card has insufficient funds.",
                },
            },
        )
    )
    assert (f.charge, f.decline_code, f.failure_code) == (
        "ch_2",
        "insufficient_funds",
        "card_declined",
    )


@pytest.mark.parametrize(
    ("event_type", "obj", "expected"),
    [
        (
            "charge.succeeded",
            {
                "id": "ch_3",
                "object": "charge",
                "payment_intent": "pi_3",
                "amount": 500,
                "balance_transaction": "txn_3",
                "status": "succeeded",
            },
            ("pi_3", "ch_3", "txn_3"),
        ),
        (
            "refund.created",
            {
                "id": "re_1",
                "object": "refund",
                "payment_intent": "pi_4",
                "charge": "ch_4",
                "amount": 200,
                "status": "pending",
            },
            ("pi_4", "ch_4", ""),
        ),
        (
            "charge.dispute.created",
            {
                "id": "dp_1",
                "object": "dispute",
                "payment_intent": "pi_5",
                "charge": "ch_5",
                "amount": 900,
                "status": "needs_response",
            },
            ("pi_5", "ch_5", ""),
        ),
    ],
)
def test_links_back_to_payment_intent_and_charge(event_type, obj, expected):
    f = facts(event(event_type, obj))
    assert (f.payment_intent, f.charge, f.balance_transaction) == expected
    assert f.amount == obj["amount"]


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
