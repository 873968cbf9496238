"""Money given back, end to end through the sandbox's Znode, Stripe and ERP: returns
refunded once and never above the capture, refunds made in Stripe reflected, the
refund lifecycle, cancellations, disputes; each Znode and ERP write once even when its
answer is lost (reference znode-api.md §5.1, stripe.md A2-A4)."""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests

from integrations.kernel import exceptions as exc
from integrations.models import ApiCall
from payments.choices import RefundOrigin, RefundStatus, ReturnState
from payments.exceptions import OverRefund, RefundFailed
from payments.models import Dispute, Order, Refund, Return
from payments.selectors import order_money
from tests.support.payments import (
    calls,
    collect,
    credit_memos,
    erp_entries,
    mark_paid,
    notes_with,
    order_history,
    place,
    post_sale,
    return_history,
    run,
    znode_return,
)

pytestmark = pytest.mark.django_db

STRIPE_KEY = "sk_test_booking"


# --- helpers -------------------------------------------------------------------------------
def paid_order(wired, *, user_id: int = 11, card: str = "pm_card_visa", lines=None) -> dict:
    """A saved-card order placed, paid, booked in Znode and the ERP."""
    total = sum((Decimal(x["price"]) * x.get("quantity", 1) for x in lines or ()), Decimal(0))
    placed = place(wired, user_id=user_id, total=str(total or "30.00"), card=card, lines=lines)
    paid = collect(wired, placed)
    assert paid["outcome"] == "paid", paid
    mark_paid(wired, placed, paid)
    post_sale(wired, placed, paid)
    return {**placed, "charge": paid["charge"]}


def stripe(wired, method: str, path: str, **params) -> dict:
    response = requests.request(
        method,
        wired.sandbox.system_url("stripe") + path,
        data=params,
        headers={"Authorization": f"Bearer {STRIPE_KEY}"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()


def stripe_refunds(wired, charge: str) -> list[dict]:
    return stripe(wired, "GET", "/v1/refunds", charge=charge, limit=100)["data"]


def dashboard_refund(wired, charge: str, amount: int) -> dict:
    """A refund made by hand in the Stripe Dashboard: no metadata of ours."""
    return stripe(wired, "POST", "/v1/refunds", charge=charge, amount=amount)


def approved_return(wired, order_number: str, lines=None) -> dict:
    made = wired.shop.create_return(order_number, lines)
    return wired.shop.return_state(made["ReturnNumber"], "Approved")


def refund_return(wired, number: str) -> dict:
    result = run(wired, "payments.refund_return", return_number=number)
    if result.get("refund"):
        result["reflected"] = run(wired, "payments.reflect_refund", refund=result["refund"])
    return result


def stripe_event_for(wired, refund_id: str) -> dict:
    """What a refund.* flow does: re-read, record, reflect."""
    recorded = run(wired, "payments.record_refund", refund=refund_id)
    return {
        **recorded,
        "reflected": run(wired, "payments.reflect_refund", refund=recorded["refund"]),
    }


def mark() -> int:
    """Where the API-call log stands now."""
    last = ApiCall.objects.order_by("-id").first()
    return last.id if last else 0


def operations_since(position: int) -> list[str]:
    return list(
        ApiCall.objects.filter(id__gt=position).order_by("id").values_list("operation", flat=True)
    )


def payment_status(wired, order_number: str) -> str:
    return wired.shop.order(order_number)["PaymentStatus"]


# --- Znode return → Stripe refund -------------------------------------------------------
def test_a_full_return_is_refunded_once_and_recorded_as_znode_admin_does(wired):
    """§5.1 "How a refund is recorded": order history with the negative amount and the
    refund id, return history, the return saved at Refund Processed (80); then the
    payment status (Refunded) and a note; the ERP gets a credit memo keyed by the
    refund."""
    order = paid_order(wired)
    ret = approved_return(wired, order["order_number"])

    result = refund_return(wired, ret["ReturnNumber"])

    refund_id = result["refund"]
    assert result["status"] == "succeeded" and result["amount_minor"] == 3000
    assert [r["id"] for r in stripe_refunds(wired, order["charge"])] == [refund_id]
    history = order_history(wired.sandbox, order["order_number"])
    assert [(h["TransactionId"], h["OrderAmount"]) for h in history] == [(refund_id, "-30.00")]
    assert [h["TransactionId"] for h in return_history(wired.sandbox, ret["ReturnNumber"])] == [
        refund_id
    ]
    assert znode_return(wired.sandbox, ret["ReturnNumber"])["RmaReturnStateId"] == 80
    assert payment_status(wired, order["order_number"]) == "Refunded"
    assert len(notes_with(wired.sandbox, order["order_number"], refund_id)) == 1
    memo = credit_memos(wired.sandbox, f"refund:{refund_id}")
    assert len(memo) == 1 and memo[0]["amount"] == "30.00"
    row = Refund.objects.get(stripe_refund_id=refund_id)
    assert row.origin == RefundOrigin.RETURN and row.return_request.state == ReturnState.REFUNDED
    assert order_money(row.order).refundable == 0


def test_the_same_return_seen_twice_is_one_refund_and_nothing_is_written_again(wired):
    order = paid_order(wired)
    ret = approved_return(wired, order["order_number"])
    first = refund_return(wired, ret["ReturnNumber"])
    position = mark()

    again = refund_return(wired, ret["ReturnNumber"])

    assert again["skipped"].endswith("was refunded already") and again["refund"] == first["refund"]
    assert len(stripe_refunds(wired, order["charge"])) == 1
    assert calls("refund.create") == 1
    assert len(order_history(wired.sandbox, order["order_number"])) == 1
    assert operations_since(position) == ["znode.return.get"]  # re-read; nothing written


def test_two_partial_returns_of_the_same_amount_are_two_refunds(wired):
    order = paid_order(wired, lines=[{"sku": "SBX-MUG-11OZ", "quantity": 2, "price": "10.00"}])
    first = approved_return(wired, order["order_number"], [{"sku": "SBX-MUG-11OZ", "quantity": 1}])
    one = refund_return(wired, first["ReturnNumber"])
    assert payment_status(wired, order["order_number"]) != "Refunded"  # partly
    second = approved_return(wired, order["order_number"], [{"sku": "SBX-MUG-11OZ", "quantity": 1}])
    two = refund_return(wired, second["ReturnNumber"])

    assert one["refund"] != two["refund"]
    assert [r["amount"] for r in stripe_refunds(wired, order["charge"])] == [1000, 1000]
    assert payment_status(wired, order["order_number"]) == "Refunded"
    assert order_money(Order.objects.get(order_number=order["order_number"])).refundable == 0


def test_an_over_refund_is_refused_before_any_stripe_call_and_changes_nothing(wired):
    order = paid_order(wired)
    stripe_event_for(wired, dashboard_refund(wired, order["charge"], 2500)["id"])
    ret = approved_return(wired, order["order_number"])
    position = mark()

    with pytest.raises(OverRefund, match=r"more than order .* still holds.*refundable 5\.00 USD"):
        run(wired, "payments.refund_return", return_number=ret["ReturnNumber"])

    assert len(stripe_refunds(wired, order["charge"])) == 1  # only the Dashboard's
    assert operations_since(position) == ["znode.return.get"]  # no Stripe call at all
    row = Return.objects.get(return_number=ret["ReturnNumber"])
    assert row.state == ReturnState.OPEN and row.attempt == 0
    assert not row.refunds.exists()


def test_a_refund_seen_only_in_stripe_still_bounds_the_return(wired):
    """A Dashboard refund whose event has not arrived: Stripe shows more refunded than
    our rows know, so the charge's refunds are read and recorded first (a read), and
    then the return is refused; no refund is created."""
    order = paid_order(wired)
    dashboard = dashboard_refund(wired, order["charge"], 2500)
    ret = approved_return(wired, order["order_number"])

    with pytest.raises(OverRefund, match=r"refunded 25\.00 USD.*refundable 5\.00 USD"):
        run(wired, "payments.refund_return", return_number=ret["ReturnNumber"])

    assert calls("refund.create") == 0
    assert len(stripe_refunds(wired, order["charge"])) == 1
    assert Refund.objects.get().stripe_refund_id == dashboard["id"]  # recorded on the way


def test_a_late_dashboard_refund_of_the_return_is_that_returns_refund(wired):
    """A support agent refunded the return's amount in Stripe; its event is late, and
    the return is approved: the refund found on the charge is the return's, nothing
    more goes back (whichever comes first, the money is the same)."""
    order = paid_order(wired)
    made = wired.shop.create_return(order["order_number"])
    run(wired, "payments.refund_return", return_number=made["ReturnNumber"])  # seen, open
    dashboard = dashboard_refund(wired, order["charge"], 3000)
    wired.shop.return_state(made["ReturnNumber"], "Approved")

    result = refund_return(wired, made["ReturnNumber"])

    assert result["refund"] == dashboard["id"]
    assert len(stripe_refunds(wired, order["charge"])) == 1
    assert Return.objects.get().state == ReturnState.REFUNDED
    assert znode_return(wired.sandbox, made["ReturnNumber"])["RmaReturnStateId"] == 80


def test_a_return_not_in_a_refund_state_is_left_alone(wired):
    order = paid_order(wired)
    made = wired.shop.create_return(order["order_number"])

    result = run(wired, "payments.refund_return", return_number=made["ReturnNumber"])

    assert "SUBMITTED" in result["skipped"]
    assert calls("refund.create") == 0


# --- Stripe → Znode ----------------------------------------------------------------------
def test_a_dashboard_refund_is_reflected_in_znode_and_the_erp_once(wired):
    order = paid_order(wired)
    refund = dashboard_refund(wired, order["charge"], 1200)

    stripe_event_for(wired, refund["id"])  # refund.created
    stripe_event_for(wired, refund["id"])  # the same event again
    run(wired, "payments.record_charge_refunds", charge=order["charge"])  # charge.refunded

    row = Refund.objects.get(stripe_refund_id=refund["id"])
    assert row.origin == RefundOrigin.OUTSIDE and row.status == RefundStatus.SUCCEEDED
    history = order_history(wired.sandbox, order["order_number"])
    assert [(h["TransactionId"], h["OrderAmount"]) for h in history] == [(refund["id"], "-12.00")]
    assert len(notes_with(wired.sandbox, order["order_number"], refund["id"])) == 1
    assert len(credit_memos(wired.sandbox, f"refund:{refund['id']}")) == 1
    assert order_money(row.order).refundable == 1800


def test_refund_events_out_of_order_record_the_newest_status(wired):
    """refund.updated (succeeded) handled before refund.created (pending, read late):
    statuses only move forward."""
    order = paid_order(wired, card="pm_card_pendingRefund")
    refund = dashboard_refund(wired, order["charge"], 3000)
    assert refund["status"] == "pending"
    requests.post(
        wired.sandbox.system_url("stripe") + "/_test/settle",
        headers={"Authorization": f"Bearer {STRIPE_KEY}"},
        timeout=10,
    ).raise_for_status()

    stripe_event_for(wired, refund["id"])  # refund.updated: succeeded now
    row = Refund.objects.get(stripe_refund_id=refund["id"])
    Refund.objects.filter(pk=row.pk).update(status=RefundStatus.SUCCEEDED)
    from integrations.connectors.stripe.mapping import refund_from_wire
    from payments.refunds import _refund_follow

    _refund_follow(row, refund_from_wire(refund))  # the stale created payload
    row.refresh_from_db()
    assert row.status == RefundStatus.SUCCEEDED
    assert len(order_history(wired.sandbox, order["order_number"])) == 1


def test_our_own_refund_events_do_not_echo(wired):
    order = paid_order(wired)
    ret = approved_return(wired, order["order_number"])
    refund_id = refund_return(wired, ret["ReturnNumber"])["refund"]
    position = mark()

    stripe_event_for(wired, refund_id)  # refund.created of our own refund
    run(wired, "payments.record_charge_refunds", charge=order["charge"])

    assert Refund.objects.count() == 1
    assert operations_since(position) == ["refund.retrieve", "refund.list"]
    assert len(order_history(wired.sandbox, order["order_number"])) == 1


def test_another_integrations_refund_is_not_recorded(wired):
    order = paid_order(wired)
    refund = stripe(
        wired,
        "POST",
        "/v1/refunds",
        charge=order["charge"],
        amount=500,
        **{"metadata[integration]": "another-store"},
    )

    assert run(wired, "payments.record_refund", refund=refund["id"])["refund"] == ""
    assert not Refund.objects.exists()


# --- lifecycle -------------------------------------------------------------------------------
def test_a_pending_refund_is_shown_in_znode_only_once_it_succeeds(wired):
    order = paid_order(wired, card="pm_card_pendingRefund")
    ret = approved_return(wired, order["order_number"])

    result = refund_return(wired, ret["ReturnNumber"])

    assert result["status"] == "pending" and result["reflected"]["waiting"]
    assert order_history(wired.sandbox, order["order_number"]) == []
    assert credit_memos(wired.sandbox, f"refund:{result['refund']}") == []
    stripe(wired, "POST", "/_test/settle")
    stripe_event_for(wired, result["refund"])  # refund.updated
    assert len(order_history(wired.sandbox, order["order_number"])) == 1
    assert len(credit_memos(wired.sandbox, f"refund:{result['refund']}")) == 1
    assert Return.objects.get().state == ReturnState.REFUNDED


def test_a_refund_that_fails_reopens_the_return_reverses_the_memo_and_quarantines(wired):
    order = paid_order(wired, card="pm_card_refundFail")
    ret = approved_return(wired, order["order_number"])
    refund_id = refund_return(wired, ret["ReturnNumber"])["refund"]
    assert len(credit_memos(wired.sandbox, f"refund:{refund_id}")) == 1  # it succeeded first
    stripe(wired, "POST", "/_test/settle")  # then the card refuses it

    with pytest.raises(RefundFailed, match="expired_or_canceled_card"):
        stripe_event_for(wired, refund_id)  # refund.failed

    row = Refund.objects.get(stripe_refund_id=refund_id)
    assert row.status == RefundStatus.FAILED and row.failure_reason == "expired_or_canceled_card"
    assert row.return_request.state == ReturnState.REFUND_FAILED
    assert znode_return(wired.sandbox, ret["ReturnNumber"])["RmaReturnStateId"] == 30  # In Review
    assert len(erp_entries(wired, f"refund-failed:{refund_id}")) == 1
    assert len(notes_with(wired.sandbox, order["order_number"], "reopened for a person")) == 1
    assert order_money(row.order).refundable == 3000
    # the same failure's other events find it handled: nothing is written again
    position = mark()
    run(wired, "payments.reflect_refund", refund=refund_id)
    assert operations_since(position) == []
    # a person approves the return again: a new attempt, a new refund
    wired.shop.return_state(ret["ReturnNumber"], "Approved")
    retry = run(wired, "payments.refund_return", return_number=ret["ReturnNumber"])
    assert retry["refund"] != refund_id
    assert Return.objects.get().attempt == 2


def test_stripe_refusing_the_refund_reopens_the_return_and_quarantines(wired):
    order = paid_order(wired)
    ret = approved_return(wired, order["order_number"])
    # Stripe holds less than our rows think (a refund made elsewhere, unseen)
    stripe(wired, "POST", "/v1/refunds", charge=order["charge"], amount=3000)
    from unittest import mock

    with (
        mock.patch("payments.refunds._refunded_elsewhere", return_value=False),
        pytest.raises(RefundFailed, match="refused by Stripe"),
    ):
        run(wired, "payments.refund_return", return_number=ret["ReturnNumber"])
    row = Refund.objects.get(origin=RefundOrigin.RETURN)
    assert row.status == RefundStatus.CANCELED and row.return_request.state == "refund_failed"
    assert znode_return(wired.sandbox, ret["ReturnNumber"])["RmaReturnStateId"] == 30
    assert len(notes_with(wired.sandbox, order["order_number"], "reopened for a person")) == 1
    assert order_money(row.order).refundable == 3000  # by our rows: nothing went back


# --- lost answers --------------------------------------------------------------------------
def test_every_znode_write_losing_its_answer_once_is_not_doubled(wired):
    """Each try of the job makes one write whose answer is lost (written, then 502):
    the next try finds it (history by marker, return history by transaction id, the
    return's state, the payment status, the note by key) and goes on to the next."""
    order = paid_order(wired)
    ret = approved_return(wired, order["order_number"])
    refund_id = run(wired, "payments.refund_return", return_number=ret["ReturnNumber"])["refund"]

    failures = 0
    while True:
        wired.sandbox.set_faults("znode", error_after_write_rate=1.0)
        try:
            run(wired, "payments.reflect_refund", refund=refund_id)
            break
        except exc.IntegrationError as error:
            assert error.retryable, error
            failures += 1
            assert failures < 10
        finally:
            wired.sandbox.set_faults("znode", error_after_write_rate=0.0)

    assert failures == 5  # history, return history, return state, payment status, note
    assert len(order_history(wired.sandbox, order["order_number"])) == 1
    assert len(return_history(wired.sandbox, ret["ReturnNumber"])) == 1
    assert len(notes_with(wired.sandbox, order["order_number"], refund_id)) == 1
    assert znode_return(wired.sandbox, ret["ReturnNumber"])["RmaReturnStateId"] == 80
    assert payment_status(wired, order["order_number"]) == "Refunded"
    assert len(credit_memos(wired.sandbox, f"refund:{refund_id}")) == 1


def test_a_credit_memo_whose_answer_is_lost_is_posted_once(wired):
    order = paid_order(wired)
    ret = approved_return(wired, order["order_number"])
    refund_id = run(wired, "payments.refund_return", return_number=ret["ReturnNumber"])["refund"]
    wired.sandbox.set_faults("erp", error_after_write_rate=1.0)
    with pytest.raises(exc.IntegrationError, match="credit_memo"):
        run(wired, "payments.reflect_refund", refund=refund_id)
    wired.sandbox.set_faults("erp", error_after_write_rate=0.0)

    run(wired, "payments.reflect_refund", refund=refund_id)

    assert len(credit_memos(wired.sandbox, f"refund:{refund_id}")) == 1
    assert Refund.objects.get().erp_booked_at is not None
    assert len(order_history(wired.sandbox, order["order_number"])) == 1


def test_a_lost_refund_answer_is_replayed_not_refunded_twice(wired):
    order = paid_order(wired)
    ret = approved_return(wired, order["order_number"])
    wired.sandbox.set_faults("stripe", error_after_write_rate=1.0)
    with pytest.raises(exc.IntegrationError):
        run(wired, "payments.refund_return", return_number=ret["ReturnNumber"])
    wired.sandbox.set_faults("stripe", error_after_write_rate=0.0)

    result = run(wired, "payments.refund_return", return_number=ret["ReturnNumber"])

    assert [r["id"] for r in stripe_refunds(wired, order["charge"])] == [result["refund"]]
    assert Refund.objects.get().stripe_refund_id == result["refund"]


# --- cancellations ---------------------------------------------------------------------------
def test_a_cancel_after_capture_refunds_in_full_once_and_its_events_do_not_echo(wired):
    order = paid_order(wired)
    wired.shop.cancel(order["order_number"])
    run(wired, "payments.fetch_order", order_id=order["order_id"])
    result = run(
        wired,
        "payments.sync_order_change",
        order_number=order["order_number"],
        state="CANCELED",
        amount_minor=3000,
    )
    refund_id = result["refund"]

    stripe_event_for(wired, refund_id)  # its refund.created

    row = Refund.objects.get(stripe_refund_id=refund_id)
    assert row.origin == RefundOrigin.CANCELLATION and row.amount_minor == 3000
    assert len(stripe_refunds(wired, order["charge"])) == 1
    assert len(notes_with(wired.sandbox, order["order_number"], refund_id)) == 1
    assert payment_status(wired, order["order_number"]) == "Refunded"
    assert len(credit_memos(wired.sandbox, f"refund:{refund_id}")) == 1
    assert order_money(row.order).refundable == 0


# --- disputes --------------------------------------------------------------------------------
def dispute_of(wired, charge: str) -> dict:
    return stripe(wired, "GET", "/v1/disputes", charge=charge)["data"][0]


@pytest.mark.parametrize("outcome", ["won", "lost"])
def test_a_dispute_is_noted_flagged_and_posted_until_it_is_won_or_lost(wired, outcome):
    order = paid_order(wired, card="pm_card_createDispute")
    dispute = dispute_of(wired, order["charge"])

    opened = run(wired, "payments.record_dispute", dispute=dispute["id"])
    run(wired, "payments.record_dispute", dispute=dispute["id"])  # funds_withdrawn

    row = Dispute.objects.get(stripe_dispute_id=dispute["id"])
    assert row.reason == "fraudulent" and row.evidence_due_by and row.funds_withdrawn
    assert payment_status(wired, order["order_number"]) == "Pending"
    assert len(notes_with(wired.sandbox, order["order_number"], "opened")) == 1
    [withdrawal] = opened["journal_entries"]
    assert order_money(row.order).refundable == 0
    if outcome == "won":
        stripe(wired, "POST", f"/_test/disputes/{dispute['id']}/resolve", status="won")
    else:
        stripe(wired, "POST", f"/v1/disputes/{dispute['id']}/close")

    closed = run(wired, "payments.record_dispute", dispute=dispute["id"])
    run(wired, "payments.record_dispute", dispute=dispute["id"])  # closed, again

    row.refresh_from_db()
    assert row.outcome == outcome
    entries = [
        e
        for e in requests.get(
            wired.sandbox.system_url("erp") + "/api/journal-entries",
            headers={"Authorization": "Bearer sandbox-erp-token"},
            timeout=10,
        ).json()["results"]
        if e["external_reference"].startswith(f"dispute:{dispute['id']}:")
    ]
    assert withdrawal in [e["id"] for e in entries]
    assert len(entries) == (2 if outcome == "won" else 1)
    withdrawn = next(e for e in entries if e["id"] == withdrawal)
    debit = {line["account"]: line["debit"] for line in withdrawn["lines"]}
    assert debit["4910"] == "30.00" and debit["6120"] == "15.00"
    assert payment_status(wired, order["order_number"]) == (
        "Captured" if outcome == "won" else "Refunded"
    )
    assert len(notes_with(wired.sandbox, order["order_number"], outcome)) == 1
    assert order_money(row.order).refundable == (3000 if outcome == "won" else 0)
    assert closed["outcome"] == outcome


def test_a_cancel_before_capture_releases_the_authorization_once(wired):
    """§9.1: Znode's payment app authorized the charge at checkout (setting 7); the
    platform adopted it. Canceled before shipping, the authorization is released (a
    refund of the uncaptured charge, Znode's "void"), Znode gets a note and Voided, and
    a re-run releases nothing twice."""
    wired.settings = {**wired.settings, "collection_modes": {"7": "adopt"}}
    wired.save()
    placed = wired.shop.place_order(total="25.00", card="pm_card_visa", payment_setting_id=7)
    fetched = run(wired, "payments.fetch_order", order_id=placed["OmsOrderId"])
    collected = run(
        wired,
        "payments.collect_payment",
        order_number=fetched["order_number"],
        transaction_id=fetched["transaction_id"],
    )
    assert collected["outcome"] == "authorized"
    wired.shop.cancel(placed["OrderNumber"])
    inputs = {"order_number": placed["OrderNumber"], "state": "CANCELED", "amount_minor": 2500}

    run(wired, "payments.sync_order_change", **inputs)
    run(wired, "payments.sync_order_change", **inputs)

    charge = stripe(wired, "GET", f"/v1/charges/{placed['TransactionId']}")
    assert charge["refunded"] and not charge["captured"]
    assert len(stripe_refunds(wired, placed["TransactionId"])) == 1
    assert payment_status(wired, placed["OrderNumber"]) == "Voided"
    assert len(notes_with(wired.sandbox, placed["OrderNumber"], "was released")) == 1
    assert order_money(Order.objects.get(order_number=placed["OrderNumber"])).captured == 0
    # its refund.created: a released authorization, not money of a sale going back
    [release] = stripe_refunds(wired, placed["TransactionId"])
    assert run(wired, "payments.record_refund", refund=release["id"])["refund"] == ""
    assert not Refund.objects.exists() and not credit_memos(
        wired.sandbox, f"refund:{release['id']}"
    )
    assert payment_status(wired, placed["OrderNumber"]) == "Voided"


def test_a_dashboard_refund_of_a_waiting_returns_amount_closes_that_return(wired):
    """A support agent refunds in Stripe instead of approving the return in Znode: the
    refund is that return's money (its only waiting return of that amount), so Znode
    shows it on the return too, and approving the return later refunds nothing more."""
    order = paid_order(wired)
    made = wired.shop.create_return(order["order_number"])
    run(wired, "payments.refund_return", return_number=made["ReturnNumber"])  # seen, open
    refund = dashboard_refund(wired, order["charge"], 3000)

    stripe_event_for(wired, refund["id"])

    row = Refund.objects.get(stripe_refund_id=refund["id"])
    assert row.return_request.return_number == made["ReturnNumber"]
    assert row.return_request.state == ReturnState.REFUNDED
    assert [h["TransactionId"] for h in return_history(wired.sandbox, made["ReturnNumber"])] == [
        refund["id"]
    ]
    assert znode_return(wired.sandbox, made["ReturnNumber"])["RmaReturnStateId"] == 80
    wired.shop.return_state(made["ReturnNumber"], "Approved")
    again = run(wired, "payments.refund_return", return_number=made["ReturnNumber"])
    assert "refunded already" in again["skipped"]
    assert len(stripe_refunds(wired, order["charge"])) == 1


def test_the_orders_admin_page_shows_its_money_returns_refunds_and_disputes(wired, admin_client):
    order = paid_order(wired, card="pm_card_createDispute")
    dispute = dispute_of(wired, order["charge"])
    run(wired, "payments.record_dispute", dispute=dispute["id"])
    row = Order.objects.get(order_number=order["order_number"])

    page = admin_client.get(f"/admin/payments/order/{row.pk}/change/").content.decode()

    assert "captured 30.00 USD" in page and "disputed 30.00 USD" in page
    assert "refundable 0.00 USD" in page
    assert f"{dispute['id']}: fraudulent needs_response" in page  # on the timeline
    for model in ("refund", "return", "dispute"):
        assert admin_client.get(f"/admin/payments/{model}/").status_code == 200


def test_a_refund_is_written_to_znode_by_one_job_at_a_time(wired, monkeypatch):
    """Our refund's own events arrive while our flow reflects it: a job finding
    another running job writing the same refund retries later (and then finds the
    writes made), so Znode's history, which always inserts (§12), gets one row."""
    from datetime import timedelta

    from django.utils import timezone

    import payments.services
    from integrations.choices import JobStatus
    from integrations.models import Job

    monkeypatch.setattr(payments.services, "BOOKING_WAIT_SECONDS", 0.3)
    order = paid_order(wired)
    ret = approved_return(wired, order["order_number"])
    refund_id = run(wired, "payments.refund_return", return_number=ret["ReturnNumber"])["refund"]
    holder = Job.objects.order_by("-id").first()
    Job.objects.filter(pk=holder.pk).update(
        status=JobStatus.RUNNING, lease_expires_at=timezone.now() + timedelta(minutes=1)
    )
    Refund.objects.filter(stripe_refund_id=refund_id).update(reflect_job=holder.pk)

    with pytest.raises(exc.ConflictRetry, match="being written"):
        run(wired, "payments.reflect_refund", refund=refund_id)
    assert order_history(wired.sandbox, order["order_number"]) == []

    Job.objects.filter(pk=holder.pk).update(status=JobStatus.SUCCEEDED)  # it went away
    run(wired, "payments.reflect_refund", refund=refund_id)
    run(wired, "payments.reflect_refund", refund=refund_id)
    assert len(order_history(wired.sandbox, order["order_number"])) == 1
    assert Refund.objects.get().reflect_job is None


def test_a_payment_booked_after_its_dispute_opened_stays_flagged(wired):
    """A card disputed at capture: the dispute's events can be handled before the
    capture's booking; the booking records the payment (Captured) but leaves the
    order flagged as disputed."""
    placed = place(wired, user_id=11, card="pm_card_createDispute")
    paid = collect(wired, placed)
    dispute = dispute_of(wired, paid["charge"])
    run(wired, "payments.record_dispute", dispute=dispute["id"])
    assert payment_status(wired, placed["order_number"]) == "Pending"

    mark_paid(wired, placed, paid)

    assert payment_status(wired, placed["order_number"]) == "Pending"
    znode = wired.shop.order(placed["order_number"])
    rows = (znode.get("PaymentHistoryList") or {}).get("PaymentHistoryList") or []
    assert [r["TransactionStatus"] for r in rows] == ["Captured"]
