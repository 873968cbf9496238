"""The one country table (integrations/kernel/countries.py): ISO 3166-1 codes from
codes, alpha-3 codes and names; ISO 3166-2 state codes; postal codes as printed."""

from __future__ import annotations

from integrations.kernel.countries import country_alpha2, is_country_code, postal_code, state_code


def test_countries_are_read_from_codes_names_and_common_spellings():
    assert [country_alpha2(v) for v in ("us", "USA", "Germany", "DEU", " united  kingdom ")] == [
        "US",
        "US",
        "DE",
        "DE",
        "GB",
    ]
    assert country_alpha2("") == "" and country_alpha2("Atlantis") is None
    assert is_country_code("US") and not is_country_code("XX") and not is_country_code("us")


def test_states_become_their_iso_code_where_the_country_names_them():
    assert state_code("US", "Texas") == "TX" and state_code("US", " tx ") == "TX"
    assert state_code("DE", "Bayern") == "BY" and state_code("JP", "13") == "13"
    assert state_code("US", "Nowhere  Land") == "Nowhere Land"  # kept, folded
    assert state_code("", "Texas") == "Texas"  # no country: nothing to look up


def test_postal_codes_are_upper_case_with_single_spaces():
    assert postal_code(" k1a   0b1 ") == "K1A 0B1" and postal_code(None) == ""
