import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integrations.kernel.jsonutil import dumps_exact


def test_decimals_become_exact_json_numbers():
    text = dumps_exact({"Total": Decimal("19.99"), "Lines": [Decimal("0.10"), 3], "n": "x"})
    assert text == '{"Total": 19.99, "Lines": [0.10, 3], "n": "x"}'


def test_floats_are_refused():
    with pytest.raises(TypeError, match="float"):
        dumps_exact({"Total": 19.99})


@given(st.decimals(allow_nan=False, allow_infinity=False, places=4))
def test_round_trip_is_exact(value):
    parsed = json.loads(dumps_exact({"v": value}), parse_float=Decimal, parse_int=Decimal)
    assert parsed["v"] == value
