"""The platform's single currency table and exact money conversions for Stripe.

Everything here is pure and Django-free. Amounts are ``Decimal`` (or ``int``, or decimal
text such as Znode's ``"71.080000"``) end to end; ``float`` is refused with ``TypeError``.

Vocabulary
----------
* **major amount**: what a person reads and what Znode / the ERP store, e.g. ``Decimal("19.99")``.
* **exponent**: the number of decimals the platform keeps for a currency (its display and
  ledger precision). Stripe's zero-decimal currencies and ISK have exponent 0.
* **minor units**: the integer Stripe's API takes and returns in ``amount`` fields, i.e.
  ``major * 10 ** stripe_exponent``. ``stripe_exponent`` differs from ``exponent`` only for
  ISK (whole krónur, but sent with two decimals: 5 ISK is ``500``).
* **round_to**: every minor amount sent to Stripe must be a multiple of this: 10 for the
  three-decimal currencies (BHD, JOD, KWD, OMR, TND), 100 for ISK, otherwise 1.

Rounding (see ``to_minor_units``)
---------------------------------
1. The amount is rounded to the currency's own precision (``exponent`` decimals) with the
   given mode, ``ROUND_HALF_UP`` by default. ``decimal.ROUND_HALF_UP`` rounds ties *away from
   zero*, so a refund of ``-x`` always converts to exactly ``-to_minor_units(x)``.
2. The resulting minor amount is rounded, with the same mode, to a multiple of ``round_to``.
   For three-decimal currencies this means 5.124 KWD -> 5120 and 5.125 KWD -> 5130.

Step 1 first means the Stripe amount is always derived from the amount the ledger books at
the currency's precision: ``to_minor_units(x) == to_minor_units(x rounded to exponent)``.
The price of that consistency is double rounding for text with excess precision in a
three-decimal currency: 5.1245 KWD -> 5.125 -> 5130 (5.5 fils away), not 5120.

Minimums (see ``check_chargeable``)
-----------------------------------
Stripe lists minimum charge amounts for some currencies (USD 0.50, GBP 0.30, JPY 50,
HUF 175, ...); those are in the table with ``minimum_listed=True``. For every other currency
Stripe only says the amount must *convert* to at least about USD 0.50, which depends on the
day's exchange rate. We deliberately keep no FX table here: the fallback minimum is the
smallest amount Stripe can represent (``round_to`` minor units, e.g. 0.01 KES, 0.010 KWD,
1 ISK) and ``minimum_listed`` is False. Callers must therefore still handle Stripe's
``amount_too_small`` error ("Amount must convert to at least 50 cents") for those currencies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import (
    ROUND_05UP,
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)
from types import MappingProxyType
from typing import Final

__all__ = [
    "CURRENCIES",
    "FALLBACK_MINIMUM_NOTE",
    "MAX_MINOR",
    "THREE_DECIMAL",
    "ZERO_DECIMAL",
    "AmountNotChargeable",
    "AmountTooLarge",
    "AmountTooSmall",
    "Currency",
    "InvalidAmount",
    "MoneyError",
    "UnknownCurrency",
    "check_chargeable",
    "currency",
    "format_money",
    "from_minor_units",
    "payout_minor_units",
    "stripe_currency",
    "to_minor_units",
]

#: Stripe accepts at most 8 digits in ``amount``: 99,999,999 minor units (USD 999,999.99).
MAX_MINOR: Final = 99_999_999

FALLBACK_MINIMUM_NOTE: Final = (
    "Stripe publishes no fixed minimum for this currency; the amount must convert to at least "
    "about 0.50 USD, so Stripe may still reject it as too small"
)


# --------------------------------------------------------------------------- errors


class MoneyError(ValueError):
    """Base class of every value error raised by this module."""


class UnknownCurrency(MoneyError):
    """The currency code is not in ``CURRENCIES``."""

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(
            f"Unknown or unsupported currency code {code!r}: it is not in "
            "payments.money.CURRENCIES (add it there with its Stripe exponent and minimum)"
        )


class InvalidAmount(MoneyError):
    """Not a finite decimal amount, out of range, or not representable in the currency."""


class AmountNotChargeable(MoneyError):
    """The amount is outside Stripe's per-charge limits. Carries the details as attributes."""

    def __init__(self, message: str, *, minor: int, currency: Currency, limit_minor: int) -> None:
        self.minor = minor
        self.currency = currency
        self.limit_minor = limit_minor
        super().__init__(message)


class AmountTooSmall(AmountNotChargeable):
    """Below the currency's minimum charge (``limit_minor`` is the minimum)."""


class AmountTooLarge(AmountNotChargeable):
    """Above ``MAX_MINOR`` (``limit_minor`` is the maximum)."""


# --------------------------------------------------------------------------- the table


def _is_power_of_ten(n: int) -> bool:
    return n >= 1 and str(n).rstrip("0") == "1"


@dataclass(frozen=True, slots=True)
class Currency:
    """One row of the currency table. All ``*_minor`` values are Stripe minor units.

    * ``exponent``: decimals the platform keeps (display and ledger precision).
    * ``stripe_exponent``: decimals implied by Stripe's integer ``amount``.
    * ``minimum_minor``: smallest chargeable amount (listed by Stripe, or the fallback).
    * ``round_to``: every amount sent to Stripe must be a multiple of this (1, 10 or 100).
    * ``payout_divisor``: payout amounts must be a multiple of this (HUF/TWD: 100).
    * ``minimum_listed``: True when ``minimum_minor`` is Stripe's published minimum, False
      when it is our fallback (see the module docstring).
    """

    code: str
    exponent: int
    stripe_exponent: int
    minimum_minor: int
    round_to: int = 1
    payout_divisor: int = 1
    minimum_listed: bool = False

    def __post_init__(self) -> None:
        if not (len(self.code) == 3 and self.code.isascii() and self.code.isupper()):
            raise ValueError(f"currency code must be 3 upper-case letters, got {self.code!r}")
        if not 0 <= self.exponent <= self.stripe_exponent <= 3:
            raise ValueError(f"{self.code}: need 0 <= exponent <= stripe_exponent <= 3")
        if not _is_power_of_ten(self.round_to) or not _is_power_of_ten(self.payout_divisor):
            raise ValueError(f"{self.code}: round_to and payout_divisor must be powers of ten")
        if self.round_to % 10 ** (self.stripe_exponent - self.exponent):
            raise ValueError(f"{self.code}: round_to must cover the exponent difference")
        if self.minimum_minor < self.round_to or self.minimum_minor % self.round_to:
            raise ValueError(f"{self.code}: minimum_minor must be a positive multiple of round_to")

    @property
    def is_zero_decimal(self) -> bool:
        """True for Stripe's zero-decimal currencies (amount sent as-is). False for ISK."""
        return self.stripe_exponent == 0

    @property
    def minimum(self) -> Decimal:
        """``minimum_minor`` in major units, at the currency's exponent."""
        return from_minor_units(self.minimum_minor, self.code)

    @property
    def maximum(self) -> Decimal:
        """The largest chargeable amount in major units (``MAX_MINOR`` rounded down to a
        multiple of ``round_to``)."""
        return from_minor_units(MAX_MINOR - MAX_MINOR % self.round_to, self.code)


#: Stripe's 16 zero-decimal currencies (docs.stripe.com/currencies).
ZERO_DECIMAL: Final = frozenset(
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
#: Three-decimal currencies: sent in thousandths, last digit must be 0.
THREE_DECIMAL: Final = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])

# Two-decimal currencies Stripe presents (besides the special cases handled below).
_TWO_DECIMAL = [
    "AED",
    "AFN",
    "ALL",
    "AMD",
    "ANG",
    "AOA",
    "ARS",
    "AUD",
    "AWG",
    "AZN",
    "BAM",
    "BBD",
    "BDT",
    "BGN",
    "BMD",
    "BND",
    "BOB",
    "BRL",
    "BSD",
    "BWP",
    "BYN",
    "BZD",
    "CAD",
    "CDF",
    "CHF",
    "CNY",
    "COP",
    "CRC",
    "CVE",
    "CZK",
    "DKK",
    "DOP",
    "DZD",
    "EGP",
    "ETB",
    "EUR",
    "FJD",
    "FKP",
    "GBP",
    "GEL",
    "GIP",
    "GMD",
    "GTQ",
    "GYD",
    "HKD",
    "HNL",
    "HTG",
    "HUF",
    "IDR",
    "ILS",
    "INR",
    "JMD",
    "KES",
    "KGS",
    "KHR",
    "KYD",
    "KZT",
    "LAK",
    "LBP",
    "LKR",
    "LRD",
    "LSL",
    "MAD",
    "MDL",
    "MKD",
    "MMK",
    "MNT",
    "MOP",
    "MUR",
    "MVR",
    "MWK",
    "MXN",
    "MYR",
    "MZN",
    "NAD",
    "NGN",
    "NIO",
    "NOK",
    "NPR",
    "NZD",
    "PAB",
    "PEN",
    "PGK",
    "PHP",
    "PKR",
    "PLN",
    "QAR",
    "RON",
    "RSD",
    "RUB",
    "SAR",
    "SBD",
    "SCR",
    "SEK",
    "SGD",
    "SHP",
    "SLE",
    "SOS",
    "SRD",
    "SZL",
    "THB",
    "TJS",
    "TOP",
    "TRY",
    "TTD",
    "TWD",
    "TZS",
    "UAH",
    "USD",
    "UYU",
    "UZS",
    "WST",
    "XCD",
    "YER",
    "ZAR",
    "ZMW",
]

# Stripe's published minimum charge amounts, in major units (reference A6).
_LISTED_MINIMUMS: Final = {
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

# Payouts must be whole units, sent as multiples of 100 (charges may use two decimals).
_PAYOUT_DIVISOR_100: Final = frozenset({"HUF", "TWD"})


def _row(code: str, exponent: int, stripe_exponent: int, round_to: int) -> Currency:
    listed = _LISTED_MINIMUMS.get(code)
    minimum_minor = int(Decimal(listed).scaleb(stripe_exponent)) if listed is not None else round_to
    return Currency(
        code=code,
        exponent=exponent,
        stripe_exponent=stripe_exponent,
        minimum_minor=minimum_minor,
        round_to=round_to,
        # Where Stripe documents no payout rule we assume the charge rule (round_to).
        payout_divisor=100 if code in _PAYOUT_DIVISOR_100 else round_to,
        minimum_listed=listed is not None,
    )


def _build_table() -> Mapping[str, Currency]:
    rows: dict[str, Currency] = {}
    for code in _TWO_DECIMAL:
        rows[code] = _row(code, 2, 2, 1)
    for code in ZERO_DECIMAL:
        rows[code] = _row(code, 0, 0, 1)
    for code in THREE_DECIMAL:
        rows[code] = _row(code, 3, 3, 10)
    # ISK: whole krónur, but Stripe still takes two decimals, so amounts are multiples of 100.
    rows["ISK"] = _row("ISK", 0, 2, 100)
    missing = set(_LISTED_MINIMUMS) - set(rows)
    if missing:  # pragma: no cover - guards edits to the table
        raise RuntimeError(f"minimums listed for currencies not in the table: {missing}")
    return MappingProxyType(dict(sorted(rows.items())))


#: Every currency the platform can charge in, keyed by upper-case ISO 4217 code. Read-only.
CURRENCIES: Final[Mapping[str, Currency]] = _build_table()


# --------------------------------------------------------------------------- helpers

# Plenty of digits for any real amount; anything beyond is refused as InvalidAmount.
_CONTEXT: Final = Context(
    prec=60, rounding=ROUND_HALF_UP, traps=[InvalidOperation, DivisionByZero, Overflow]
)
_ROUNDINGS: Final = frozenset(
    {
        ROUND_05UP,
        ROUND_CEILING,
        ROUND_DOWN,
        ROUND_FLOOR,
        ROUND_HALF_DOWN,
        ROUND_HALF_EVEN,
        ROUND_HALF_UP,
        ROUND_UP,
    }
)
# Plain decimal text: optional sign, ASCII digits, optional fraction, optional exponent.
_DECIMAL_TEXT: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


def _to_decimal(amount: object) -> Decimal:
    """Exact Decimal from Decimal / int / decimal text; TypeError for float and others."""
    if isinstance(amount, float):
        raise TypeError(
            f"float amounts are not accepted ({amount!r}); pass a Decimal, an int or decimal text"
        )
    if isinstance(amount, bool):
        raise TypeError(f"bool is not an amount: {amount!r}")
    if isinstance(amount, Decimal):
        value = amount
    elif isinstance(amount, int):
        value = Decimal(amount)
    elif isinstance(amount, str):
        text = amount.strip()
        if not _DECIMAL_TEXT.fullmatch(text):
            raise InvalidAmount(f"not a decimal amount: {amount!r}")
        value = Decimal(text)
    else:
        raise TypeError(
            f"amount must be Decimal, int or str, not {type(amount).__name__}: {amount!r}"
        )
    if not value.is_finite():
        raise InvalidAmount(f"amount must be finite, got {amount!r}")
    return value


def _check_minor(minor: object) -> int:
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise TypeError(f"minor units must be an int, not {type(minor).__name__}: {minor!r}")
    return minor


def _quantum(exponent: int) -> Decimal:
    return Decimal(f"1E-{exponent}")


def _major_text(minor: int, cur: Currency) -> str:
    """Human text for a minor amount, exact even if it is not a valid amount (e.g. ISK 550)."""
    shift = cur.stripe_exponent - cur.exponent
    if minor % 10**shift == 0:
        return format_money(from_minor_units(minor, cur.code), cur.code)
    return f"{Decimal(f'{minor}E-{cur.stripe_exponent}'):,f} {cur.code}"


# --------------------------------------------------------------------------- public API


def currency(code: str) -> Currency:
    """The table row for ``code`` (case-insensitive, surrounding blanks ignored).

    Raises ``UnknownCurrency`` (a ``ValueError``) for codes not in ``CURRENCIES`` and
    ``TypeError`` for non-strings.
    """
    if not isinstance(code, str):
        raise TypeError(f"currency code must be a str, not {type(code).__name__}: {code!r}")
    try:
        return CURRENCIES[code.strip().upper()]
    except KeyError:
        raise UnknownCurrency(code) from None


def stripe_currency(code: str) -> str:
    """The code as Stripe's API wants it: lower-case ISO 4217 (``"usd"``). Validates it."""
    return currency(code).code.lower()


def to_minor_units(amount: Decimal | str | int, code: str, *, rounding: str = ROUND_HALF_UP) -> int:
    """Convert a major amount to the integer Stripe expects in ``amount``.

    ``amount`` may carry any precision (Znode writes six decimals, ``"71.080000"``). It is
    rounded with ``rounding`` first to the currency's ``exponent`` and then to a multiple of
    ``round_to`` (see the module docstring). Signs are kept, so refunds/credits can be
    negative; with the default mode ``to_minor_units(-x) == -to_minor_units(x)``.
    Limits are not checked here: use ``check_chargeable`` before creating a charge.

    Raises ``TypeError`` for float (or other non-Decimal/int/str) input, ``InvalidAmount``
    for text that is not a plain decimal number, NaN/infinity, or absurdly large values,
    and ``UnknownCurrency``.
    """
    value = _to_decimal(amount)
    cur = currency(code)
    if rounding not in _ROUNDINGS:
        raise ValueError(f"unknown rounding mode {rounding!r}")
    try:
        at_precision = value.quantize(_quantum(cur.exponent), rounding=rounding, context=_CONTEXT)
        minor = int(at_precision.scaleb(cur.stripe_exponent, context=_CONTEXT))
        if cur.round_to > 1:
            step_digits = len(str(cur.round_to)) - 1
            steps = Decimal(minor).scaleb(-step_digits, context=_CONTEXT)
            minor = int(steps.quantize(Decimal(1), rounding=rounding, context=_CONTEXT))
            minor *= cur.round_to
    except InvalidOperation:
        raise InvalidAmount(f"amount {amount!r} is out of range for {cur.code}") from None
    return minor


def at_exponent(amount: Decimal | str | int, code: str) -> Decimal:
    """A major amount at the currency's ledger precision (``exponent``), half up:
    Znode's ``"5.125000"`` KWD is ``Decimal("5.125")``."""
    cur = currency(code)
    return _to_decimal(amount).quantize(_quantum(cur.exponent), rounding=ROUND_HALF_UP)


def ledger_minor_units(amount: Decimal | str | int, code: str) -> int:
    """A major amount at the currency's ledger precision (``exponent``, half up) in
    Stripe's minor units, without Stripe's ``round_to`` steps: what a ledger line holds
    (``"5.125", "KWD"`` -> ``5125``, where ``to_minor_units`` charges ``5130``). The
    inverse of :func:`from_minor_units`."""
    cur = currency(code)
    return int(at_exponent(amount, code).scaleb(cur.stripe_exponent, context=_CONTEXT))


def rounding_step(code: str) -> Decimal:
    """What Stripe's ``round_to`` makes the smallest difference between two chargeable
    amounts, in major units (KWD: 0.010; USD: 0.01)."""
    cur = currency(code)
    return Decimal(cur.round_to).scaleb(-cur.stripe_exponent)


def from_minor_units(minor: int, code: str) -> Decimal:
    """The exact major amount for a Stripe minor amount, quantized to the currency's
    ``exponent`` (``1999, "usd"`` -> ``Decimal("19.99")``; ``500, "ISK"`` -> ``Decimal("5")``;
    ``5125, "KWD"`` -> ``Decimal("5.125")``).

    Does not require ``round_to`` multiples (Stripe reports fees etc. as they are), but
    raises ``InvalidAmount`` when the value cannot be represented exactly at ``exponent``
    (ISK 550 = 5.50 krónur, a legacy fractional amount).
    """
    _check_minor(minor)
    cur = currency(code)
    divisor = 10 ** (cur.stripe_exponent - cur.exponent)
    if minor % divisor:
        raise InvalidAmount(
            f"{minor} minor units of {cur.code} is not a whole multiple of {divisor}, so it "
            f"cannot be expressed with {cur.exponent} decimals"
        )
    return Decimal(f"{minor // divisor}E-{cur.exponent}")


def check_chargeable(minor: int, code: str) -> None:
    """Raise unless ``minor`` is a valid Stripe charge amount in ``code``.

    * below ``minimum_minor`` (including zero and negatives) -> ``AmountTooSmall``;
    * above ``MAX_MINOR`` -> ``AmountTooLarge``;
    * not a multiple of ``round_to`` (e.g. KWD 5125, ISK 550) -> ``InvalidAmount``.

    All three are ``ValueError``. Messages name the amount and the limit in major units.
    For currencies with ``minimum_listed=False`` the check is necessarily incomplete (see
    the module docstring), so Stripe's ``amount_too_small`` must still be handled.
    """
    _check_minor(minor)
    cur = currency(code)
    if minor < cur.minimum_minor:
        note = "" if cur.minimum_listed else f" ({FALLBACK_MINIMUM_NOTE})"
        raise AmountTooSmall(
            f"Amount {_major_text(minor, cur)} is below the minimum charge of "
            f"{format_money(cur.minimum, cur.code)}{note}",
            minor=minor,
            currency=cur,
            limit_minor=cur.minimum_minor,
        )
    if minor > MAX_MINOR:
        raise AmountTooLarge(
            f"Amount {_major_text(minor, cur)} is above the maximum charge of "
            f"{format_money(cur.maximum, cur.code)} (Stripe allows at most 8 digits, "
            f"{MAX_MINOR:,} minor units)",
            minor=minor,
            currency=cur,
            limit_minor=MAX_MINOR,
        )
    if minor % cur.round_to:
        raise InvalidAmount(
            f"Amount {_major_text(minor, cur)} ({minor} minor units) is not a multiple of "
            f"{cur.round_to} minor units, which Stripe requires for {cur.code}; "
            "convert it with to_minor_units()"
        )


def payout_minor_units(available_minor: int, code: str) -> int:
    """The largest payout amount not above ``available_minor`` that Stripe accepts, i.e.
    rounded toward zero to a multiple of ``payout_divisor`` (HUF 10.45 -> 1000)."""
    _check_minor(available_minor)
    divisor = currency(code).payout_divisor
    sign = -1 if available_minor < 0 else 1
    return sign * (abs(available_minor) // divisor * divisor)


def format_money(amount: Decimal | str | int, code: str) -> str:
    """Human text: amount rounded half-up to the currency's exponent, thousands separated,
    then the code: ``"19.99 USD"``, ``"1,250 JPY"``, ``"-5.120 KWD"``. Not for parsing."""
    value = _to_decimal(amount)
    cur = currency(code)
    try:
        shown = value.quantize(_quantum(cur.exponent), rounding=ROUND_HALF_UP, context=_CONTEXT)
    except InvalidOperation:
        raise InvalidAmount(f"amount {amount!r} is out of range for {cur.code}") from None
    if shown.is_zero():
        shown = shown.copy_abs()
    return f"{shown:,f} {cur.code}"


def format_minor(minor: int, code: str) -> str:
    """:func:`format_money` of an amount in minor units: ``(4250, "USD")`` → ``"42.50 USD"``."""
    return format_money(from_minor_units(minor, code), code)


def shown_minor(minor: int | None, code: str) -> str:
    """:func:`format_minor` for people (the admin): a row whose currency is unknown is
    shown as it is stored, never an error page."""
    if minor is None:
        return "-"
    try:
        return format_minor(minor, code)
    except MoneyError:
        return f"{minor} {code} (minor units)"


def shown_major(amount: Decimal | str | int | None, code: str) -> str:
    """:func:`format_money` for people (the admin), as :func:`shown_minor`."""
    if amount is None:
        return "-"
    try:
        return format_money(amount, code)
    except MoneyError:
        return f"{amount} {code}"
