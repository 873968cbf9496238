from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integrations.kernel.exceptions import MappingError
from integrations.mapping import Rule, evaluate

DOC = {
    "event": {
        "reference": "ORD-1",
        "data": {
            "Total": 19.99,
            "CurrencyCode": "USD",
            "BillingAddress": {"CountryName": "US", "CityName": "Austin"},
            "Lines": [{"Sku": "A"}, {"Sku": "B"}],
        },
    },
    "steps": {"customer": {"id": "cus_1"}},
}


def test_nested_targets_defaults_and_transforms():
    result = evaluate(
        [
            Rule("order.number", "event.reference"),
            Rule("amount", "event.data.Total", "decimal"),
            Rule("currency", "event.data.CurrencyCode", "lower"),
            Rule("customer", "steps.customer.id"),
            Rule("address.country", "event.data.BillingAddress.CountryName"),
            Rule("skus", "event.data.Lines[].Sku"),
            Rule("channel", "event.data.Channel", default="web"),
            Rule("optional", "event.data.Nothing"),
        ],
        DOC,
    )
    assert result == {
        "order": {"number": "ORD-1"},
        "amount": "19.99",
        "currency": "usd",
        "customer": "cus_1",
        "address": {"country": "US"},
        "skus": ["A", "B"],
        "channel": "web",
    }


def test_required_value_missing_names_the_field():
    with pytest.raises(MappingError) as caught:
        evaluate([Rule("email", "event.data.Email", required=True)], DOC)
    assert caught.value.message == "email is required but event.data.Email gave no value"


def test_bad_expression_is_a_mapping_error():
    with pytest.raises(MappingError, match="invalid expression"):
        evaluate([Rule("x", "event.[")], DOC)


def test_unknown_transform_is_a_mapping_error():
    with pytest.raises(MappingError, match="no transform is registered under 'nope'"):
        evaluate([Rule("x", "event.reference", "nope")], DOC)


def test_int_refuses_floats():
    with pytest.raises(MappingError, match="float"):
        evaluate([Rule("x", "event.data.Total", "int")], DOC)


@pytest.mark.django_db
def test_lookup_table_translates_and_reports_missing_entries():
    from integrations.models import LookupTable

    LookupTable.objects.create(key="order-state", entries={"succeeded": "Paid", "*": "Pending"})
    doc = {"s": "succeeded", "t": "other"}
    assert evaluate([Rule("x", "s", "lookup:order-state")], doc) == {"x": "Paid"}
    assert evaluate([Rule("x", "t", "lookup:order-state")], doc) == {"x": "Pending"}
    with pytest.raises(MappingError, match="lookup table 'missing' does not exist"):
        evaluate([Rule("x", "s", "lookup:missing")], doc)


@given(
    st.decimals(
        allow_nan=False, allow_infinity=False, places=3, min_value=-(10**9), max_value=10**9
    )
)
def test_decimal_transform_is_exact(value):
    assert Decimal(evaluate([Rule("x", "v", "decimal")], {"v": str(value)})["x"]) == value
