"""Currencies, minimum amounts and fees, in integer minor units (docs.stripe.com/currencies)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from sandbox.stripe.errors import invalid

ZERO_DECIMAL = frozenset({
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd",
    "vuv", "xaf", "xof", "xpf",
})  # fmt: skip
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
# Charged as zero-decimal but sent with two decimals: amounts must be divisible by 100.
WHOLE_UNITS_TIMES_100 = frozenset({"isk"})
OTHER_CURRENCIES = frozenset({
    "usd", "aed", "afn", "all", "amd", "ang", "aoa", "ars", "aud", "awg", "azn", "bam",
    "bbd", "bdt", "bgn", "bmd", "bnd", "bob", "brl", "bsd", "bwp", "byn", "bzd", "cad",
    "cdf", "chf", "cny", "cop", "crc", "cve", "czk", "dkk", "dop", "dzd", "egp", "etb",
    "eur", "fjd", "fkp", "gbp", "gel", "gip", "gmd", "gtq", "gyd", "hkd", "hnl", "htg",
    "huf", "idr", "ils", "inr", "jmd", "kes", "kgs", "khr", "kyd", "kzt", "lak", "lbp",
    "lkr", "lrd", "lsl", "mad", "mdl", "mkd", "mmk", "mnt", "mop", "mur", "mvr", "mwk",
    "mxn", "myr", "mzn", "nad", "ngn", "nio", "nok", "npr", "nzd", "pab", "pen", "pgk",
    "php", "pkr", "pln", "qar", "ron", "rsd", "rub", "sar", "sbd", "scr", "sek", "sgd",
    "shp", "sle", "sos", "srd", "std", "szl", "thb", "tjs", "top", "try", "ttd", "twd",
    "tzs", "uah", "uyu", "uzs", "wst", "xcd", "yer", "zar", "zmw",
})  # fmt: skip
SUPPORTED = ZERO_DECIMAL | THREE_DECIMAL | WHOLE_UNITS_TIMES_100 | OTHER_CURRENCIES

# Minimum charge amounts in minor units; other currencies must convert to about USD 0.50,
# approximated here as 50 minor units (two-decimal) or the value below.
MINIMUMS = {
    "usd": 50, "eur": 50, "gbp": 30, "aud": 50, "cad": 50, "nzd": 50, "sgd": 50, "chf": 50,
    "brl": 50, "inr": 50, "jpy": 50, "hkd": 400, "mxn": 1000, "thb": 1000, "dkk": 250,
    "nok": 300, "sek": 300, "pln": 200, "ron": 200, "aed": 200, "myr": 200, "bgn": 100,
    "czk": 1500, "huf": 17500, "krw": 700, "isk": 10000, "bhd": 200, "jod": 400, "kwd": 200,
    "omr": 200, "tnd": 2000,
}  # fmt: skip
MAX_AMOUNT = 99_999_999
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "$", "aud": "$", "nzd": "$"}

# Stripe's US list price for cards: 2.9% + 30 cents (the fixed part scaled to the currency's
# minor unit: none for zero-decimal, 300 for three-decimal currencies), and a 15.00 dispute fee.
# ``POST /stripe/_test/config`` sets other prices per settlement currency (card_fees,
# dispute_fees, fee_tax_percent).
CARD_FEE_PERCENT = Decimal("2.9")
CARD_FEE_FIXED = {0: 0, 2: 30, 3: 300}
DISPUTE_FEE = 1500
# Payouts: HUF and TWD may be charged with two decimals but are paid out in whole units
# (stripe.md A6), as ISK always is.
PAYOUT_WHOLE_UNITS = frozenset({"huf", "twd"}) | WHOLE_UNITS_TIMES_100


def exponent(currency: str) -> int:
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def format_amount(amount: int, currency: str) -> str:
    digits = exponent(currency)
    value = Decimal(amount).scaleb(-digits) if digits else Decimal(amount)
    text = f"{value:,.{digits}f}"
    symbol = SYMBOLS.get(currency)
    return f"{symbol}{text}" if symbol else f"{text} {currency.upper()}"


def minimum(currency: str) -> int:
    return MINIMUMS.get(currency, 50)


def check_currency(value, param: str = "currency") -> str:
    currency = str(value or "").lower()
    if currency not in SUPPORTED:
        raise invalid(
            f"Invalid currency: {value}. Stripe currently supports these currencies: "
            + ", ".join(sorted(SUPPORTED)),
            param,
        )
    return currency


def check_amount(amount: int, currency: str, param: str = "amount") -> None:
    """Stripe's checks on a charge amount in minor units."""
    if amount < 1:
        raise invalid(
            "This value must be greater than or equal to 1.", param, "parameter_invalid_integer"
        )
    if amount > MAX_AMOUNT:
        raise invalid(
            f"Amount must be no more than {format_amount(MAX_AMOUNT, currency)}",
            param,
            "amount_too_large",
        )
    low = minimum(currency)
    if amount < low:
        raise invalid(
            f"Amount must be at least {format_amount(low, currency)} {currency}",
            param,
            "amount_too_small",
        )
    if currency in THREE_DECIMAL and amount % 10:
        raise invalid(
            f"Amounts in {currency} must be a multiple of 10 (the last digit must be 0).",
            param,
            "invalid_charge_amount",
        )
    if currency in WHOLE_UNITS_TIMES_100 and amount % 100:
        raise invalid(
            f"Amounts in {currency} must be a multiple of 100 (whole units, two decimals).",
            param,
            "invalid_charge_amount",
        )


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def card_fee(
    amount: int, currency: str, percent: Decimal | None = None, fixed: int | None = None
) -> int:
    """``percent`` % of ``amount`` + ``fixed`` minor units (Stripe's US list price unless
    given), rounded half-up to the minor unit."""
    percent = CARD_FEE_PERCENT if percent is None else percent
    fixed = CARD_FEE_FIXED[exponent(currency)] if fixed is None else fixed
    return _round(Decimal(amount) * percent / 100 + fixed)


def dispute_fee(currency: str) -> int:
    return DISPUTE_FEE * (10 if exponent(currency) == 3 else 1)


def percent_of(amount: int, percent: Decimal) -> int:
    """``percent`` % of ``amount`` minor units, rounded half-up (tax on a fee)."""
    return _round(Decimal(amount) * percent / 100)


def convert(amount: int, source: str, target: str, rate: Decimal) -> int:
    """``amount`` minor units of ``source`` in minor units of ``target``, at ``rate`` units of
    ``target`` per unit of ``source`` (Stripe's ``exchange_rate``: 10.00 EUR at 1.234 is
    12.34 USD), rounded half-up (away from zero, so a refund mirrors its charge)."""
    value = Decimal(amount).scaleb(exponent(target) - exponent(source)) * rate
    return _round(value)


def decimal_text(value, name: str, *, positive: bool = False) -> Decimal:
    """A rate or percentage of the sandbox's settings: a decimal string (or an integer),
    never a float, whose digits survive being rendered as a JSON number."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise invalid(f'{name} must be a decimal string such as "1.0823", not {value!r}', name)
    try:
        number = Decimal(str(value).strip())
    except ArithmeticError:
        raise invalid(f"{name} is not a decimal number: {value!r}", name) from None
    if not number.is_finite() or number < 0 or (positive and number == 0):
        raise invalid(f"{name} must be a {'positive' if positive else 'non-negative'} number", name)
    if Decimal(repr(float(number))) != number:
        raise invalid(f"{name} has more digits than a JSON number keeps: {value!r}", name)
    return number


def check_payout_amount(amount: int, currency: str, param: str = "amount") -> None:
    """What Stripe refuses in a payout amount (stripe.md A6)."""
    if currency in PAYOUT_WHOLE_UNITS and amount % 100:
        raise invalid(
            f"Payouts in {currency} must be whole units: the amount must be divisible by 100.",
            param,
        )
    if currency in THREE_DECIMAL and amount % 10:
        raise invalid(
            f"Amounts in {currency} must be a multiple of 10 (the last digit must be 0).",
            param,
        )
