"""Assisted mapping (issue 14, Deliver 4): unmapped inputs get source expressions
ranked by name, value fit and use, each with the value it gives on the sample."""

from __future__ import annotations

from collections import Counter

import pytest

from integrations.registry import get_action
from integrations.services.flow_design import InputSpec, action_inputs
from integrations.services.mapping_assist import (
    name_score,
    sample_paths,
    suggest,
    value_score,
    words,
)

ZNODE_ORDER = {
    "order": {
        "OrderNumber": "ORD-1001",
        "OmsOrderId": 77,
        "Total": "42.50",
        "CurrencyCode": "USD",
        "Email": "ana@example.com",
        "PhoneNumber": "+15550100",
        "UserId": 12,
        "BillingAddress": {"Address1": "1 Main St", "PostalCode": "78701", "CountryName": "US"},
    }
}


def test_words_of_every_naming_style():
    assert words("OrderNumber") == words("order_number") == ["order", "number"]
    assert words("billing.PostalCode") == ["billing", "postal", "code"]
    assert words("OmsOrderID") == ["oms", "order", "id"]


def test_a_name_is_matched_through_the_words_two_systems_use_for_one_thing():
    assert name_score("amount", "order.Total") > name_score("amount", "order.OrderNumber")
    assert name_score("postal_code", "order.BillingAddress.PostalCode") > 0.9
    assert name_score("zip", "order.BillingAddress.PostalCode") > 0.6


def test_a_value_fits_or_not_and_says_the_transform():
    assert value_score("amount", "str", "42.50") == (1.0, "")
    assert value_score("amount", "str", "ORD-1") == (0.0, "")
    assert value_score("country", "str", "US")[0] == 1.0
    assert value_score("country", "str", "Atlantis")[0] < 0.5
    assert value_score("user_id", "int", "12") == (0.9, "int")
    assert value_score("email", "str", "not an email")[0] == 0.0
    assert value_score("address", "dict | None", {"line1": "x"})[0] == 1.0


def test_the_paths_of_a_sample_are_jmespath_expressions():
    paths = dict(sample_paths({"a": {"b-c": 1, "list": [{"x": 2}]}}))
    assert paths['a."b-c"'] == 1 and paths["a.list[0].x"] == 2


def test_suggestions_rank_the_right_field_first_with_its_value():
    inputs = [
        InputSpec("order_number", "str", True, None, ""),
        InputSpec("email", "str", False, "", ""),
        InputSpec("user_id", "int", True, None, ""),
        InputSpec("amount", "str", True, None, ""),
    ]

    found = suggest(inputs, ZNODE_ORDER, mapped={"email"})

    assert "email" not in found  # mapped already
    best = {target: options[0] for target, options in found.items()}
    assert (best["order_number"].source, best["order_number"].value) == (
        "order.OrderNumber",
        "ORD-1001",
    )
    assert (best["user_id"].source, best["user_id"].value) == ("order.UserId", 12)
    assert best["amount"].source == "order.Total"
    assert all(len(options) <= 3 for options in found.values())


def test_what_existing_mappings_use_breaks_a_tie():
    inputs = [InputSpec("reference", "str", True, None, "")]
    sample = {"a": {"reference": "X"}, "b": {"reference": "Y"}}
    plain = suggest(inputs, sample)["reference"]
    used = suggest(inputs, sample, usage=Counter({("reference", "b.reference"): 3}))["reference"]
    assert plain[0].source == "a.reference" and used[0].source == "b.reference"


@pytest.mark.django_db
def test_a_registered_actions_inputs_get_suggestions():
    inputs = action_inputs(get_action("payments.ensure_customer"))
    found = suggest(inputs, ZNODE_ORDER)
    assert found["email"][0].source == "order.Email"
    assert found["user_id"][0].source == "order.UserId"
