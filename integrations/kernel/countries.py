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
