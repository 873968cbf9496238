"""One country table: ISO 3166-1 (pycountry), for every connector that reads or
writes a country. Stripe wants the alpha-2 code (reference stripe.md A8); Znode
stores what its admin typed or picked (a code on orders, reference §3.3, and
sometimes a name or an alpha-3 code in an address book)."""

from __future__ import annotations

from functools import lru_cache

import pycountry

# Names shops commonly type that ISO does not list verbatim.
_COMMON_NAMES = {
    "USA": "US",
    "U.S.A.": "US",
    "U.S.": "US",
    "UNITED STATES OF AMERICA": "US",
    "UK": "GB",
    "U.K.": "GB",
    "GREAT BRITAIN": "GB",
    "ENGLAND": "GB",
    "SCOTLAND": "GB",
    "WALES": "GB",
    "NORTHERN IRELAND": "GB",
}


@lru_cache(maxsize=1024)
def _lookup(text: str) -> str | None:
    if text in _COMMON_NAMES:
        return _COMMON_NAMES[text]
    try:
        return pycountry.countries.lookup(text).alpha_2
    except LookupError:
        return None


def country_alpha2(value: object) -> str | None:
    """The ISO 3166-1 alpha-2 code of ``value`` (an alpha-2 or alpha-3 code, or an
    English name, any case): ``""`` for a blank value, None for one that names no
    country."""
    text = " ".join(str(value or "").split()).upper()
    if not text:
        return ""
    return _lookup(text)


def is_country_code(value: str) -> bool:
    """``value`` is an ISO 3166-1 alpha-2 code (upper case)."""
    return len(value) == 2 and country_alpha2(value) == value


@lru_cache(maxsize=256)
def _subdivisions(country: str) -> dict[str, str]:
    """A country's ISO 3166-2 subdivisions: code (no country prefix) and name, upper
    case → the code."""
    table: dict[str, str] = {}
    for sub in pycountry.subdivisions.get(country_code=country) or ():
        code = sub.code.partition("-")[2]
        table[code.upper()] = code
        table[sub.name.upper()] = code
    return table


def state_code(country: str, state: object) -> str:
    """A state or province as its ISO 3166-2 code without the country's prefix
    ("Texas" or "tx" in US → "TX", "Bayern" in DE → "BY") where the country's
    subdivisions name it; otherwise as given, whitespace folded."""
    text = " ".join(str(state or "").split())
    if not text or not is_country_code(country):
        return text
    return _subdivisions(country).get(text.upper(), text)


def postal_code(value: object) -> str:
    """A postal code as carriers print it: upper case, single spaces ("k1a  0b1" →
    "K1A 0B1")."""
    return " ".join(str(value or "").split()).upper()
