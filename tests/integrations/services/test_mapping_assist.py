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


# The [ai] extra (Deliver 4): a small embedding model shipped inside an installed
# package, never downloaded, never needed by the default install.


@pytest.fixture
def semantic_on(settings):
    from integrations.services import mapping_assist

    settings.INTEGRATIONS = {**settings.INTEGRATIONS, "MAPPING_ASSIST_SEMANTIC": True}
    mapping_assist._embedding_model.cache_clear()
    yield mapping_assist
    mapping_assist._embedding_model.cache_clear()


def test_without_the_extra_suggestions_rank_by_names_values_and_use(semantic_on, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "wordllama", None)  # not installed
    assert semantic_on.semantic_scorer() is None
    ranked = suggest([InputSpec("receipt_email", "str", False, None, "")], ZNODE_ORDER)
    assert ranked["receipt_email"][0].source == "order.Email"


def test_the_extra_can_be_turned_off(semantic_on, settings):
    settings.INTEGRATIONS = {**settings.INTEGRATIONS, "MAPPING_ASSIST_SEMANTIC": False}
    assert semantic_on.semantic_scorer() is None


def test_the_extra_loads_its_model_from_the_package_without_the_network(semantic_on, monkeypatch):
    pytest.importorskip("wordllama")
    import socket

    import requests

    def no_network(*args, **kwargs):
        raise AssertionError("the [ai] extra reached for the network")

    monkeypatch.setattr(requests, "get", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setenv("HOME", "/nonexistent")  # no download cache to fall back on
    scorer = semantic_on.semantic_scorer()
    assert scorer is not None
    # Meaning, not spelling: a phone is nearer a phone number than an order date.
    assert scorer("phone", "PhoneNumber") > scorer("phone", "OrderDate") + 0.3
    assert 0.0 <= scorer("amount", "EmailAddress") <= 1.0
    ranked = suggest(
        [InputSpec("phone", "str", False, None, "The customer's phone number")],
        ZNODE_ORDER,
        semantic=scorer,
    )
    assert ranked["phone"][0].source == "order.PhoneNumber"
