"""integrations/kernel/redaction.py: the shortcut that skips the patterns for a text
that cannot match them changes nothing the patterns would have done."""

from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.kernel.redaction import REDACTED, SECRET_PATTERNS, URL_PASSWORD, redact_text

FRAGMENTS = [
    "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
    "rk_live_abcdEFGH1234",
    "sk_tes",
    "risk_level",
    "network_status",
    "whsec_Zm9vYmFy",
    "pi_3Nq_secret_k9",
    "seti_1_secret_2",
    "Bearer eyJhbGciOi.J9",
    "Basic dXNlcjpwYXNz",
    "bearer lowercase-is-not-a-scheme",
    "postgres://app:hunter2@db:5432/x",
    "redis://:pw@cache",
    "https://pay.stripe.com/receipts/x",
    "ops@example.com",
    '{"id": "ch_1", "metadata": {"a": "b"}}',
    " ",
    "\n",
    "_",
    ":",
    "@",
    "é",
]


def patterns_applied(text: str) -> str:
    return URL_PASSWORD.sub(rf"\g<head>{REDACTED}@", SECRET_PATTERNS.sub(REDACTED, text))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=8), max_size=12))
def test_redact_text_is_the_patterns_applied(parts):
    text = "".join(parts)
    assert redact_text(text) == patterns_applied(text)


def test_secrets_in_a_text_without_other_marks_are_still_redacted():
    for secret in ("sk_live_abcd1234", "whsec_abcd", "pi_1_secret_2", "Bearer abcdefgh"):
        assert redact_text(f"note: {secret} end") == f"note: {REDACTED} end"
    assert redact_text("postgres://u:pw@h/db") == f"postgres://u:{REDACTED}@h/db"
    assert redact_text("risk_level network_status") == "risk_level network_status"
