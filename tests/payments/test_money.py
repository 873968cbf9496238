"""payments.money: the currency table and exact Decimal <-> Stripe minor-unit conversion."""

import dataclasses
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.money import (
    CURRENCIES,
    MAX_MINOR,
    THREE_DECIMAL,
    ZERO_DECIMAL,
    AmountTooLarge,
    AmountTooSmall,
    Currency,
    InvalidAmount,
    UnknownCurrency,
    check_chargeable,
    currency,
    format_money,
    from_minor_units,
    payout_minor_units,
    stripe_currency,
    to_minor_units,
)

D = Decimal

# --------------------------------------------------------------------------- the table

REFERENCE_ZERO_DECIMAL = set(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
REFERENCE_THREE_DECIMAL = {"BHD", "JOD", "KWD", "OMR", "TND"}
REFERENCE_MINIMUMS = {
    "USD": "0.50",
    "EUR": "0.50",
    "GBP": "0.30",
    "AUD": "0.50",
    "CAD": "0.50",
    "NZD": "0.50",
    "SGD": "0.50",
    "CHF": "0.50",
    "BRL": "0.50",
    "INR": "0.50",
    "JPY": "50",
    "HKD": "4.00",
    "MXN": "10",
    "THB": "10",
    "DKK": "2.50",
    "NOK": "3.00",
    "SEK": "3.00",
    "PLN": "2.00",
    "RON": "2.00",
    "AED": "2.00",
    "MYR": "2.00",
    "BGN": "1.00",
    "CZK": "15",
    "HUF": "175",
}
REQUIRED = [
    "USD",
    "EUR",
    "GBP",
    "AUD",
    "CAD",
    "NZD",
    "SGD",
    "CHF",
    "BRL",
    "INR",
    "JPY",
    "HKD",
    "MXN",
    "THB",
    "DKK",
    "NOK",
    "SEK",
    "PLN",
    "RON",
    "AED",
    "MYR",
    "BGN",
    "CZK",
    "HUF",
    "ISK",
    "TWD",
    "KRW",
    "CLP",
    "VND",
    "XAF",
    "XOF",
    "XPF",
    "BIF",
    "DJF",
    "GNF",
    "KMF",
    "MGA",
    "PYG",
    "RWF",
    "UGX",
    "VUV",
    "BHD",
    "JOD",
    "KWD",
    "OMR",
    "TND",
    "ZAR",
]


def test_table_covers_required_currencies():
    assert set(REQUIRED) <= set(CURRENCIES)
    assert all(code == row.code for code, row in CURRENCIES.items())


def test_zero_decimal_currencies_are_exactly_stripes_sixteen():
    assert ZERO_DECIMAL == REFERENCE_ZERO_DECIMAL
    zero = {c for c, row in CURRENCIES.items() if row.is_zero_decimal}
    assert zero == REFERENCE_ZERO_DECIMAL
    for code in zero:
        row = CURRENCIES[code]
        assert (row.exponent, row.stripe_exponent, row.round_to) == (0, 0, 1)


def test_three_decimal_currencies_round_to_ten():
    assert THREE_DECIMAL == REFERENCE_THREE_DECIMAL
    three = {c for c, row in CURRENCIES.items() if row.stripe_exponent == 3}
    assert three == REFERENCE_THREE_DECIMAL
    for code in three:
        row = CURRENCIES[code]
        assert (row.exponent, row.round_to) == (3, 10)


def test_special_cases():
    isk = currency("ISK")
    assert (isk.exponent, isk.stripe_exponent, isk.round_to) == (0, 2, 100)
    assert not isk.is_zero_decimal
    for code in ("HUF", "TWD"):
        row = currency(code)
        assert (row.exponent, row.stripe_exponent, row.round_to, row.payout_divisor) == (
            2,
            2,
            1,
            100,
        )


def test_everything_else_is_plain_two_decimal():
    special = REFERENCE_ZERO_DECIMAL | REFERENCE_THREE_DECIMAL | {"ISK", "HUF", "TWD"}
    for code, row in CURRENCIES.items():
        if code not in special:
            assert (row.exponent, row.stripe_exponent, row.round_to, row.payout_divisor) == (
                2,
                2,
                1,
                1,
            ), code


@pytest.mark.parametrize(("code", "major"), sorted(REFERENCE_MINIMUMS.items()))
def test_listed_minimums(code, major):
    row = currency(code)
    assert row.minimum_listed
    assert row.minimum == D(major)
    assert row.minimum_minor == to_minor_units(D(major), code)
    check_chargeable(row.minimum_minor, code)
    with pytest.raises(AmountTooSmall):
        check_chargeable(row.minimum_minor - row.round_to, code)


def test_listed_minimum_values_in_minor_units():
    assert currency("USD").minimum_minor == 50
    assert currency("GBP").minimum_minor == 30
    assert currency("JPY").minimum_minor == 50
    assert currency("HUF").minimum_minor == 17500
    assert currency("CZK").minimum_minor == 1500
    assert currency("DKK").minimum_minor == 250


def test_fallback_minimum_is_smallest_representable_amount():
    unlisted = [row for row in CURRENCIES.values() if row.code not in REFERENCE_MINIMUMS]
    assert unlisted
    for row in unlisted:
        assert not row.minimum_listed
        assert row.minimum_minor == row.round_to
    assert currency("KWD").minimum == D("0.010")
    assert currency("ISK").minimum == D("1")
    assert currency("ZAR").minimum == D("0.01")


def test_currency_rows_are_frozen_and_table_read_only():
    with pytest.raises(dataclasses.FrozenInstanceError):
        currency("USD").exponent = 0  # type: ignore[misc]
    with pytest.raises(TypeError):
        CURRENCIES["USD"] = currency("EUR")  # type: ignore[index]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"code": "usd", "exponent": 2, "stripe_exponent": 2, "minimum_minor": 1},
        {"code": "USD", "exponent": 3, "stripe_exponent": 2, "minimum_minor": 1},
        {"code": "USD", "exponent": 2, "stripe_exponent": 2, "minimum_minor": 1, "round_to": 3},
        {"code": "ISK", "exponent": 0, "stripe_exponent": 2, "minimum_minor": 100},
        {"code": "KWD", "exponent": 3, "stripe_exponent": 3, "minimum_minor": 5, "round_to": 10},
        {"code": "USD", "exponent": 2, "stripe_exponent": 2, "minimum_minor": 0},
    ],
)
def test_currency_rejects_inconsistent_rows(kwargs):
    with pytest.raises(ValueError):
        Currency(**kwargs)


# --------------------------------------------------------------------------- currency()


def test_currency_lookup_is_case_insensitive():
    assert currency("usd") is currency("USD") is currency(" Usd ")
    assert stripe_currency("USD") == "usd"
    assert stripe_currency("kwd") == "kwd"


def test_unknown_currency():
    with pytest.raises(UnknownCurrency, match="'XYZ'") as excinfo:
        currency("XYZ")
    assert isinstance(excinfo.value, ValueError)
    assert excinfo.value.code == "XYZ"
    with pytest.raises(UnknownCurrency):
        to_minor_units(D("1.00"), "US")
    with pytest.raises(UnknownCurrency):
        stripe_currency("")
    with pytest.raises(TypeError):
        currency(None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- exact examples


@pytest.mark.parametrize(
    ("amount", "code", "minor"),
    [
        (D("19.99"), "USD", 1999),
        (D("19.99"), "usd", 1999),
        ("19.99", "EUR", 1999),
        (20, "USD", 2000),
        (D("1250"), "JPY", 1250),
        (1250, "JPY", 1250),
        (D("5.124"), "KWD", 5120),
        (D("5.125"), "KWD", 5130),
        (D("5.120"), "KWD", 5120),
        (D("5.12"), "KWD", 5120),
        (D("0.005"), "BHD", 10),
        (D("0.004"), "BHD", 0),
        (5, "ISK", 500),
        (D("5"), "ISK", 500),
        ("1234", "ISK", 123400),
        (D("175"), "HUF", 17500),
        (D("10.45"), "HUF", 1045),
        (D("10.45"), "TWD", 1045),
        # Znode writes six decimals.
        ("71.080000", "USD", 7108),
        ("71.085000", "USD", 7109),
        ("71.084999", "USD", 7108),
        ("1250.000000", "JPY", 1250),
        ("1250.500000", "JPY", 1251),
        ("5.124000", "KWD", 5120),
        ("5.125000", "KWD", 5130),
        ("5.499999", "ISK", 500),
        ("5.500000", "ISK", 600),
        (" 19.99 ", "USD", 1999),
        ("1E+2", "USD", 10000),
        (".5", "USD", 50),
        # Double rounding: 3 decimals half-up first (5.125), then to tens.
        ("5.124500", "KWD", 5130),
        (D("0"), "USD", 0),
        (D("-0.00"), "USD", 0),
    ],
)
def test_to_minor_units_examples(amount, code, minor):
    result = to_minor_units(amount, code)
    assert result == minor
    assert type(result) is int


@pytest.mark.parametrize(
    ("amount", "code", "minor"),
    [
        (D("-19.99"), "USD", -1999),
        ("-71.085000", "USD", -7109),
        (-1250, "JPY", -1250),
        (D("-5.124"), "KWD", -5120),
        (D("-5.125"), "KWD", -5130),
        (-5, "ISK", -500),
        ("-0.5", "ISK", -100),
    ],
)
def test_negative_amounts_keep_their_sign(amount, code, minor):
    assert to_minor_units(amount, code) == minor


def test_rounding_mode_is_applied_at_both_steps():
    assert to_minor_units("19.995", "USD") == 2000
    assert to_minor_units("19.995", "USD", rounding=ROUND_DOWN) == 1999
    assert to_minor_units("5.129", "KWD", rounding=ROUND_DOWN) == 5120
    assert to_minor_units("5.125", "KWD", rounding=ROUND_HALF_EVEN) == 5120
    assert to_minor_units("5.135", "KWD", rounding=ROUND_HALF_EVEN) == 5140
    assert to_minor_units("-19.995", "USD", rounding=ROUND_HALF_UP) == -2000
    with pytest.raises(ValueError, match="rounding"):
        to_minor_units("1", "USD", rounding="ROUND_SOMETIMES")


@pytest.mark.parametrize(
    ("minor", "code", "amount", "exponent"),
    [
        (1999, "USD", "19.99", -2),
        (0, "USD", "0.00", -2),
        (-1999, "usd", "-19.99", -2),
        (1250, "JPY", "1250", 0),
        (5120, "KWD", "5.120", -3),
        (5125, "KWD", "5.125", -3),
        (500, "ISK", "5", 0),
        (-500, "ISK", "-5", 0),
        (17500, "HUF", "175.00", -2),
    ],
)
def test_from_minor_units_examples(minor, code, amount, exponent):
    result = from_minor_units(minor, code)
    assert result == D(amount)
    assert str(result) == amount
    assert result.as_tuple().exponent == exponent


def test_from_minor_units_rejects_fractional_isk():
    with pytest.raises(InvalidAmount, match="550"):
        from_minor_units(550, "ISK")


# --------------------------------------------------------------------------- input errors


@pytest.mark.parametrize("bad", [19.99, 19.0, 0.0, float("nan"), True, None, [1], D])
def test_to_minor_units_rejects_non_decimal_types(bad):
    with pytest.raises(TypeError):
        to_minor_units(bad, "USD")


def test_float_error_is_readable():
    with pytest.raises(TypeError, match="float"):
        to_minor_units(19.99, "USD")
    with pytest.raises(TypeError, match="float"):
        format_money(19.99, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [19.99, D("1999"), "1999", True, None])
def test_minor_unit_functions_require_int(bad):
    with pytest.raises(TypeError):
        from_minor_units(bad, "USD")
    with pytest.raises(TypeError):
        check_chargeable(bad, "USD")
    with pytest.raises(TypeError):
        payout_minor_units(bad, "USD")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        " ",
        "abc",
        "1,000.00",
        "1_000",
        "$5",
        "5 USD",
        "NaN",
        "Infinity",
        "-inf",
        "1.2.3",
        "١٢",
        D("NaN"),
        D("sNaN"),
        D("Infinity"),
        D("-Infinity"),
        D("1E+100"),
        "1E+1000000",
    ],
)
def test_to_minor_units_rejects_non_amounts(bad):
    with pytest.raises(InvalidAmount):
        to_minor_units(bad, "USD")


# --------------------------------------------------------------------------- limits


def test_too_small_message_names_amount_and_minimum():
    with pytest.raises(AmountTooSmall) as excinfo:
        check_chargeable(49, "USD")
    message = str(excinfo.value)
    assert "0.49 USD" in message
    assert "0.50 USD" in message
    assert isinstance(excinfo.value, ValueError)
    assert (excinfo.value.minor, excinfo.value.limit_minor) == (49, 50)
    assert excinfo.value.currency is currency("USD")


@pytest.mark.parametrize(
    ("minor", "code", "shown", "minimum"),
    [
        (0, "USD", "0.00 USD", "0.50 USD"),
        (-1999, "USD", "-19.99 USD", "0.50 USD"),
        (49, "JPY", "49 JPY", "50 JPY"),
        (17499, "HUF", "174.99 HUF", "175.00 HUF"),
        (0, "KWD", "0.000 KWD", "0.010 KWD"),
        (0, "ISK", "0 ISK", "1 ISK"),
    ],
)
def test_too_small(minor, code, shown, minimum):
    with pytest.raises(AmountTooSmall) as excinfo:
        check_chargeable(minor, code)
    assert shown in str(excinfo.value)
    assert minimum in str(excinfo.value)


def test_fallback_minimum_message_warns_that_stripe_may_want_more():
    with pytest.raises(AmountTooSmall, match=r"convert to at least about 0\.50 USD"):
        check_chargeable(0, "ZAR")
    with pytest.raises(AmountTooSmall) as excinfo:
        check_chargeable(49, "USD")
    assert "convert" not in str(excinfo.value)


def test_too_large():
    check_chargeable(MAX_MINOR, "USD")
    with pytest.raises(AmountTooLarge) as excinfo:
        check_chargeable(MAX_MINOR + 1, "USD")
    message = str(excinfo.value)
    assert "1,000,000.00 USD" in message
    assert "999,999.99 USD" in message
    assert isinstance(excinfo.value, ValueError)
    assert excinfo.value.limit_minor == MAX_MINOR
    with pytest.raises(AmountTooLarge, match="999,999 ISK"):
        check_chargeable(to_minor_units(1_000_000, "ISK"), "ISK")
    check_chargeable(to_minor_units(999_999, "ISK"), "ISK")
    check_chargeable(to_minor_units("99999.990", "KWD"), "KWD")
    assert currency("KWD").maximum == D("99999.990")


@pytest.mark.parametrize(("minor", "code"), [(5125, "KWD"), (550, "ISK"), (10001, "ISK")])
def test_check_chargeable_rejects_amounts_off_the_stripe_grid(minor, code):
    with pytest.raises(InvalidAmount, match="multiple of"):
        check_chargeable(minor, code)


def test_chargeable_examples():
    check_chargeable(to_minor_units("19.99", "USD"), "USD")
    check_chargeable(to_minor_units("1250", "JPY"), "JPY")
    check_chargeable(to_minor_units("5.125", "KWD"), "KWD")
    check_chargeable(to_minor_units("5", "ISK"), "ISK")


# --------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("amount", "code", "text"),
    [
        (D("19.99"), "USD", "19.99 USD"),
        (D("1250"), "JPY", "1,250 JPY"),
        (1250, "jpy", "1,250 JPY"),
        (D("1234567.5"), "USD", "1,234,567.50 USD"),
        ("71.080000", "USD", "71.08 USD"),
        (D("5.125"), "KWD", "5.125 KWD"),
        (D("-5.12"), "KWD", "-5.120 KWD"),
        (D("5"), "ISK", "5 ISK"),
        (D("-0.001"), "USD", "0.00 USD"),
        (D("19.995"), "USD", "20.00 USD"),
    ],
)
def test_format_money(amount, code, text):
    assert format_money(amount, code) == text


@pytest.mark.parametrize(
    ("available", "code", "payout"),
    [(1045, "HUF", 1000), (1099, "TWD", 1000), (1045, "USD", 1045), (-1045, "HUF", -1000)],
)
def test_payout_minor_units(available, code, payout):
    assert payout_minor_units(available, code) == payout


# --------------------------------------------------------------------------- properties

codes = st.sampled_from(sorted(CURRENCIES))
# Amounts an order can have: well beyond Stripe's 8 digits, both signs.
units = st.integers(min_value=-(10**13), max_value=10**13)
# Znode-style decimals with excess precision.
znode_amounts = st.decimals(
    min_value=-(10**9), max_value=10**9, places=6, allow_nan=False, allow_infinity=False
)


def at_precision(n: int, row: Currency) -> Decimal:
    """``n`` units of the currency's smallest display step, e.g. 1999 -> 19.99 USD."""
    return Decimal(f"{n}E-{row.exponent}")


@given(codes, units)
def test_round_trip_at_currency_precision(code, n):
    row = currency(code)
    x = at_precision(n, row)
    minor = to_minor_units(x, code)
    assert type(minor) is int
    assert minor % row.round_to == 0
    if row.code in REFERENCE_THREE_DECIMAL and n % 10:
        # Not exactly representable: nearest multiple of ten, half-up.
        assert abs(minor - n) <= 5
        assert minor == (abs(n) + 5) // 10 * 10 * (1 if n > 0 else -1)
    else:
        back = from_minor_units(minor, code)
        assert back == x
        assert back.as_tuple().exponent == -row.exponent


@given(codes, units)
def test_text_and_six_decimal_text_convert_like_the_decimal(code, n):
    x = at_precision(n, currency(code))
    assert to_minor_units(str(x), code) == to_minor_units(x, code)
    assert to_minor_units(f"{x:.6f}", code) == to_minor_units(x, code)


@given(st.integers(min_value=-(10**9), max_value=10**9))
def test_isk_is_whole_kronur_times_100(n):
    assert to_minor_units(n, "ISK") == n * 100
    assert to_minor_units(Decimal(n), "ISK") % 100 == 0


@given(st.sampled_from(sorted(REFERENCE_THREE_DECIMAL)), znode_amounts)
def test_three_decimal_results_are_multiples_of_ten(code, x):
    minor = to_minor_units(x, code)
    assert type(minor) is int
    assert minor % 10 == 0
    # Two half-up roundings: at most 0.5 then 5 thousandths away.
    assert abs(Decimal(minor) - x * 1000) <= D("5.5")


@given(st.sampled_from(sorted(set(CURRENCIES) - REFERENCE_THREE_DECIMAL)), znode_amounts)
def test_excess_precision_rounds_to_nearest(code, x):
    row = currency(code)
    minor = to_minor_units(x, code)
    assert type(minor) is int
    assert minor % row.round_to == 0
    assert abs(from_minor_units(minor, code) - x) <= D("0.5").scaleb(-row.exponent)


@given(codes, znode_amounts)
def test_conversion_factors_through_the_currency_precision(code, x):
    row = currency(code)
    booked = x.quantize(D(1).scaleb(-row.exponent), rounding=ROUND_HALF_UP)
    assert to_minor_units(x, code) == to_minor_units(booked, code)


@given(codes, znode_amounts)
def test_sign_symmetry(code, x):
    assert to_minor_units(-x, code) == -to_minor_units(x, code)


@given(codes, znode_amounts, znode_amounts)
def test_monotonic(code, a, b):
    a, b = sorted((a, b))
    assert to_minor_units(a, code) <= to_minor_units(b, code)


@given(codes, st.integers(min_value=-(10**6), max_value=MAX_MINOR + 10**6))
def test_check_chargeable_agrees_with_the_limits(code, minor):
    row = currency(code)
    minor -= minor % row.round_to
    if minor < row.minimum_minor:
        with pytest.raises(AmountTooSmall):
            check_chargeable(minor, code)
    elif minor > MAX_MINOR:
        with pytest.raises(AmountTooLarge):
            check_chargeable(minor, code)
    else:
        check_chargeable(minor, code)


@given(codes, st.integers(min_value=0, max_value=10**12))
def test_payouts_respect_the_divisor(code, available):
    row = currency(code)
    payout = payout_minor_units(available, code)
    assert payout % row.payout_divisor == 0
    assert available - row.payout_divisor < payout <= available
