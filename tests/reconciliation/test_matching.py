"""Matching of the money that is no order's (reference stripe.md A7: reporting
categories; a transaction without one, by its type): each is explained with its reason,
and money no rule accounts for is listed as unexplained, with what it is."""

from __future__ import annotations

import pytest

from integrations.connectors.stripe.mapping import balance_transaction_from_wire
from reconciliation.choices import MatchedAs
from reconciliation.matching import category_of, transactions_match

pytestmark = pytest.mark.django_db


def _txn(txn_type: str, category: str | None, *, source: str = "") -> dict:
    raw = {"id": f"txn_{txn_type}", "type": txn_type, "amount": -120, "fee": 0, "net": -120}
    raw["currency"] = "usd"
    if category is not None:
        raw["reporting_category"] = category
    if source:
        raw["source"] = source
    return raw


@pytest.mark.parametrize(
    ("txn_type", "category", "source", "matched_as", "reason"),
    [
        (
            "stripe_fee",
            "fee",
            "",
            MatchedAs.FEE,
            "a fee Stripe charged the account, not an order's",
        ),
        ("stripe_fee", None, "", MatchedAs.FEE, "a fee Stripe charged the account, not an order's"),
        (
            "stripe_fx_fee",
            None,
            "",
            MatchedAs.FEE,
            "a fee Stripe charged the account, not an order's",
        ),
        (
            "network_cost",
            "network_cost",
            "",
            MatchedAs.FEE,
            "card network costs Stripe passed on to the account",
        ),
        ("tax_fee", None, "", MatchedAs.FEE, "tax on Stripe's fees"),
        (
            "transfer",
            "transfer",
            "tr_1",
            MatchedAs.OTHER,
            "a transfer (Connect), not an order's money",
        ),
        ("transfer", None, "tr_1", MatchedAs.OTHER, "a transfer (Connect), not an order's money"),
        (
            "adjustment",
            "other_adjustment",
            "",
            MatchedAs.OTHER,
            "an adjustment Stripe made to the balance",
        ),
        ("adjustment", None, "", MatchedAs.OTHER, "an adjustment Stripe made to the balance"),
        ("topup", None, "tu_1", MatchedAs.OTHER, "a top-up of the balance from the bank"),
        (
            "reserve_hold",
            None,
            "",
            MatchedAs.OTHER,
            "funds Stripe held in or released from reserve",
        ),
        (
            "reserve_release",
            "risk_reserved_funds",
            "",
            MatchedAs.OTHER,
            "funds Stripe held in or released from reserve",
        ),
        ("application_fee", None, "fee_1", MatchedAs.OTHER, "application fees earned (Connect)"),
        ("payout", "payout", "po_other", MatchedAs.PAYOUT, "another payout's own row (po_other)"),
        (
            "payout_failure",
            None,
            "po_failed",
            MatchedAs.PAYOUT,
            "payout po_failed failed or was canceled: its money came back to the balance "
            "(reporting category payout_reversal), to be paid out again",
        ),
        (
            "payout",
            "payout",
            "po_this",
            MatchedAs.PAYOUT,
            "the payout itself: the balance moving to the bank",
        ),
    ],
)
def test_the_accounts_own_money_is_explained_with_its_reason(
    integration, txn_type, category, source, matched_as, reason
):
    txn = balance_transaction_from_wire(_txn(txn_type, category, source=source))

    [match] = transactions_match(
        integration=integration, payout_id="po_this", txns=[txn], gateway=None
    )

    assert (match.matched_as, match.explained, match.reason) == (matched_as, True, reason)
    assert match.order_id is None


@pytest.mark.parametrize(
    ("txn_type", "category", "named"),
    [
        (
            "climate_order_purchase",
            "climate_order_purchase",
            "of reporting category climate_order_purchase",
        ),
        ("obligation_outbound", None, "of reporting category none"),
    ],
)
def test_money_no_rule_accounts_for_is_unexplained_and_says_what_it_is(
    integration, txn_type, category, named
):
    txn = balance_transaction_from_wire(_txn(txn_type, category))

    [match] = transactions_match(
        integration=integration, payout_id="po_this", txns=[txn], gateway=None
    )

    assert (match.matched_as, match.explained) == (MatchedAs.OTHER, False)
    assert match.reason == (
        f"unexplained: Stripe {txn_type} {named} that no rule here accounts for"
    )


def test_a_dispute_adjustment_without_a_category_is_a_dispute():
    raw = {**_txn("adjustment", None), "source": {"id": "du_1", "object": "dispute"}}
    assert category_of(balance_transaction_from_wire(raw)) == "dispute"
