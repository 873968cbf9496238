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

CARD_FEE_PERCENT = Decimal("0.029")
DISPUTE_FEE = 1500


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


def card_fee(amount: int, currency: str) -> int:
    """2.9% + a fixed fee (30 minor units; 0 for zero-decimal and 300 for three-decimal
    currencies), rounded half-up to the minor unit."""
    fixed = {0: 0, 2: 30, 3: 300}[exponent(currency)]
    fee = Decimal(amount) * CARD_FEE_PERCENT + fixed
    return int(fee.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def dispute_fee(currency: str) -> int:
    return DISPUTE_FEE * (10 if exponent(currency) == 3 else 1)
