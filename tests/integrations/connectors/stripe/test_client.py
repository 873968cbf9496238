"""The Stripe gateway against the sandbox and, for what it supports, localstripe.

Where the two disagree on what real Stripe does, the sandbox is wrong (issue #3);
idempotency, decline codes, fees and payouts are checked on the sandbox only, because
localstripe does not implement them (reference/localstripe.md §2.5).
"""

import json
import threading
import time
import urllib.request

import pytest

from integrations.connectors.stripe.client import (
    LIST_PAGE_BODY_KEPT,
    LIST_READ_AHEAD,
    PaymentDeclined,
    StripeGateway,
)
from integrations.kernel import exceptions as exc
from integrations.models import ApiCall

pytestmark = pytest.mark.django_db


def gateway(connection) -> StripeGateway:
    return StripeGateway(connection)


def pay(gw, key, *, amount=1999, capture_method="automatic", payment_method="pm_card_visa"):
    customer = gw.customer_create(
        params={"email": "shopper@example.com"}, idempotency_key=f"c:{key}"
    )
    intent = gw.payment_intent_create(
        params={
            "amount": amount,
            "currency": "usd",
            "customer": customer["id"],
            "payment_method": payment_method,
            "capture_method": capture_method,
            "metadata": {"znode_order_number": key},
        },
        idempotency_key=f"pi:{key}",
    )
    # Set the payment method at create, confirm without params: works on real Stripe,
    # the sandbox and localstripe alike.
    return gw.payment_intent_confirm(intent["id"], params={}, idempotency_key=f"confirm:{key}")


def test_automatic_capture_succeeds(backend):
    gw = gateway(backend)
    confirmed = pay(gw, "ORD-1")
    assert confirmed["status"] == "succeeded"
    assert confirmed["amount"] == 1999
    assert confirmed["metadata"] == {"znode_order_number": "ORD-1"}
    fetched = gw.payment_intent_retrieve(confirmed["id"], expand=["latest_charge"])
    charge = fetched["latest_charge"]
    assert charge["status"] == "succeeded" and charge["amount"] == 1999


def test_manual_capture_then_capture(backend):
    gw = gateway(backend)
    authorized = pay(gw, "ORD-2", capture_method="manual")
    assert authorized["status"] == "requires_capture"
    captured = gw.payment_intent_capture(authorized["id"], params={}, idempotency_key="cap:ORD-2")
    assert captured["status"] == "succeeded"


def test_cancel(backend):
    gw = gateway(backend)
    intent = gw.payment_intent_create(
        params={"amount": 500, "currency": "usd"}, idempotency_key="pi:ORD-3"
    )
    canceled = gw.payment_intent_cancel(intent["id"], params={}, idempotency_key="cancel:ORD-3")
    assert canceled["status"] == "canceled"


def test_partial_refund(backend):
    gw = gateway(backend)
    paid = pay(gw, "ORD-4")
    refund = gw.refund_create(
        params={"payment_intent": paid["id"], "amount": 500}, idempotency_key="refund:RMA-1"
    )
    assert (refund["status"], refund["amount"]) == ("succeeded", 500)
    assert gw.refund_retrieve(refund["id"])["amount"] == 500


def test_decline_is_a_business_outcome(backend):
    gw = gateway(backend)
    card = (
        "pm_card_chargeDeclinedInsufficientFunds"
        if backend.backend == "sandbox"
        else "pm_card_chargeCustomerFail"  # localstripe's charge-time decline
    )
    with pytest.raises(PaymentDeclined) as caught:
        pay(gw, "ORD-5", payment_method=card)
    declined = caught.value
    assert declined.retryable is False
    assert declined.error_code == "card_declined"
    if backend.backend == "sandbox":  # localstripe sends no decline_code
        assert declined.decline_code == "insufficient_funds"
        assert declined.payment_intent.startswith("pi_")


def test_every_attempt_is_recorded_without_the_api_key(backend):
    gw = gateway(backend)
    pay(gw, "ORD-6")
    calls = list(ApiCall.objects.order_by("id"))
    assert [c.operation for c in calls] == [
        "customer.create",
        "payment_intent.create",
        "payment_intent.confirm",
    ]
    assert [c.idempotency_key for c in calls] == ["c:ORD-6", "pi:ORD-6", "confirm:ORD-6"]
    assert all(c.status_code == 200 for c in calls)
    key = backend.credential("api_key")
    for call in calls:
        assert key not in json.dumps(call.request_headers) + call.request_body + call.url


def test_writes_without_idempotency_key_are_refused(backend):
    with pytest.raises(exc.DataError, match="idempotency key"):
        gateway(backend).customer_create(params={"email": "x@example.com"}, idempotency_key="")
    assert ApiCall.objects.count() == 0


def test_unknown_object_is_not_found(backend):
    with pytest.raises(exc.NotFound) as caught:
        gateway(backend).payment_intent_retrieve("pi_doesnotexist")
    assert caught.value.http_status == 404


def test_bad_key_is_unauthorized(backend):
    backend.credentials = {"api_key": "pk_test_publishable"}
    with pytest.raises(exc.Unauthorized):
        gateway(backend).customer_retrieve("cus_x")


# --- sandbox only: what localstripe does not implement -----------------------------------
@pytest.fixture
def sandbox_stripe(sandbox, db):
    from integrations.services.connections import connection_create

    return connection_create(
        name="stripe-sbx",
        kind="stripe",
        base_url=sandbox.system_url("stripe"),
        credentials={"api_key": "sk_test_sandbox_only_key"},
        rate_limit_per_second=500,
    )


def test_same_key_replays_and_other_params_are_refused(sandbox_stripe):
    gw = gateway(sandbox_stripe)
    first = gw.customer_create(params={"email": "a@example.com"}, idempotency_key="cus:u1")
    again = gw.customer_create(params={"email": "a@example.com"}, idempotency_key="cus:u1")
    assert first["id"] == again["id"]
    with pytest.raises(exc.PermanentError, match="idempotency key reused"):
        gw.customer_create(params={"email": "b@example.com"}, idempotency_key="cus:u1")


def test_lost_response_is_retried_by_the_sdk_with_the_same_key(sandbox_stripe, sandbox):
    sandbox.set_faults("stripe", error_after_write_rate=1.0)
    gw = gateway(sandbox_stripe)
    with pytest.raises(exc.ConnectorUnavailable):
        gw.payment_intent_create(params={"amount": 700, "currency": "usd"}, idempotency_key="pi:L1")
    sandbox.set_faults("stripe", error_after_write_rate=0.0)
    intent = gw.payment_intent_create(
        params={"amount": 700, "currency": "usd"}, idempotency_key="pi:L1"
    )
    calls = ApiCall.objects.filter(idempotency_key="pi:L1")
    assert calls.count() == 4  # 1 + 2 SDK retries during the fault, then 1 replay
    listed = gw.client.v1.payment_intents.list(params={"limit": 100})
    assert [pi.id for pi in listed.data] == [intent["id"]]  # one PaymentIntent in the end


def test_rate_limit_bursts_are_absorbed_by_our_backoff(sandbox_stripe, sandbox):
    sandbox.set_faults("stripe", burst_429_every=10, burst_429_length=2, retry_after=0)
    customer = gateway(sandbox_stripe).customer_create(
        params={"email": "r@example.com"}, idempotency_key="cus:r1"
    )
    assert customer["id"].startswith("cus_")
    statuses = list(ApiCall.objects.order_by("id").values_list("status_code", flat=True))
    assert statuses[:2] == [429, 429] and statuses[-1] == 200


def test_persistent_rate_limit_becomes_a_retryable_job_error(sandbox_stripe, sandbox):
    sandbox.set_faults("stripe", burst_429_every=1, burst_429_length=1, retry_after=0)
    with pytest.raises(exc.RateLimited) as caught:
        gateway(sandbox_stripe).customer_retrieve("cus_x")
    assert caught.value.retryable


def test_payout_balance_transactions_sum_to_zero(sandbox_stripe, sandbox):
    gw = gateway(sandbox_stripe)
    for index in range(3):
        pay(gw, f"ORD-P{index}", amount=1000 + index * 500)

    def post(path, body=None):
        request = urllib.request.Request(
            f"{sandbox.system_url('stripe')}/_test/{path}",
            data=json.dumps(body or {}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")

    post("advance_time", {"seconds": 3 * 86400})
    post("run_payouts")
    payout = gw.client.v1.payouts.list(params={"limit": 1}).data[0].to_dict()
    rows = list(gw.balance_transactions_for_payout(payout["id"]))
    charges = [r for r in rows if r["type"] == "charge"]
    assert len(charges) == 3
    assert all(r["source"]["object"] == "charge" for r in charges)  # expanded
    assert sum(r["net"] for r in rows) == 0  # charges net minus the payout row
    assert sum(r["fee"] for r in charges) == sum(
        round((1000 + i * 500) * 29 / 1000 + 30) for i in range(3)
    )


# --- a large list read ahead (a payout's balance transactions) -------------------------
def _seed_payout(sandbox, count: int) -> str:
    request = urllib.request.Request(
        f"{sandbox.system_url('stripe')}/_test/payouts/seed",
        data=json.dumps({"count": count, "currency": "usd", "amount": 1000}).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Authorization": "Bearer sk_test_sandbox_only_key",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["payout"]


def readers() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("stripe-list-")]


def _list_calls():
    return ApiCall.objects.filter(operation="balance_transaction.list").order_by("id")


def test_a_list_read_ahead_is_whole_in_order_and_every_page_recorded(sandbox_stripe, sandbox):
    payout = _seed_payout(sandbox, 250)
    rows = list(gateway(sandbox_stripe).balance_transactions_for_payout(payout))
    assert len(rows) == 251 and len({r["id"] for r in rows}) == 251  # and its own row
    calls = list(_list_calls())
    # Recorded on the caller's thread (this test's transaction sees them), page by page.
    assert [c.status_code for c in calls] == [200, 200, 200]
    assert "starting_after" not in calls[0].url and rows[99]["id"] in calls[1].url
    assert all(len(c.response_body) <= LIST_PAGE_BODY_KEPT for c in calls)


def test_a_list_left_early_stops_reading_and_records_what_it_read(
    sandbox_stripe, sandbox, monkeypatch
):
    payout = _seed_payout(sandbox, 1500)  # 16 pages
    requests_made = []
    get_plain = StripeGateway._get_plain

    def counted(self, path, params):
        requests_made.append(params.get("starting_after"))
        return get_plain(self, path, params)

    monkeypatch.setattr(StripeGateway, "_get_plain", counted)
    listed = gateway(sandbox_stripe).balance_transactions_for_payout(payout)
    next(listed)
    for _ in range(50):  # let the reader fill what it may read ahead
        if len(requests_made) >= LIST_READ_AHEAD + 1:
            break
        time.sleep(0.05)
    assert readers() == ["stripe-list-balance_transaction.list"]
    listed.close()
    assert readers() == []  # the reader is gone
    read = _list_calls().count()
    assert LIST_READ_AHEAD + 1 <= read <= LIST_READ_AHEAD + 2  # ahead, not the whole list
    assert read == len(requests_made) == ApiCall.objects.count()  # each request recorded


def test_a_page_that_fails_raises_on_the_callers_thread_after_the_pages_before(
    sandbox_stripe, sandbox
):
    payout = _seed_payout(sandbox, 1500)
    listed = gateway(sandbox_stripe).balance_transactions_for_payout(payout)
    taken = [next(listed)]
    sandbox.set_faults("stripe", error_rate=1.0)
    with pytest.raises(exc.ConnectorUnavailable):
        taken.extend(listed)
    sandbox.set_faults("stripe", error_rate=0.0)
    assert 100 <= len(taken) < 1501 and len(taken) % 100 == 0  # whole pages, then the error
    statuses = list(_list_calls().values_list("status_code", flat=True))
    assert statuses[: len(taken) // 100] == [200] * (len(taken) // 100)
    assert statuses[-1] >= 500  # the failed page's attempts are recorded too


def test_list_calls_are_recorded_with_the_run_they_were_made_in(sandbox_stripe, sandbox):
    from integrations.kernel.context import RunContext, current_run

    payout = _seed_payout(sandbox, 250)
    token = current_run.set(RunContext(reference="ORD-RUN-1"))
    try:
        listed = gateway(sandbox_stripe).balance_transactions_for_payout(payout)
        first = next(listed)
    finally:
        current_run.reset(token)
    rest = list(listed)  # taken outside the run: the pages were read in it
    assert 1 + len(rest) == 251 and first
    assert set(_list_calls().values_list("reference", flat=True)) == {"ORD-RUN-1"}


def test_the_sdk_formats_an_answer_for_its_debug_log_only_when_debug_is_logged(
    sandbox_stripe, caplog, monkeypatch
):
    """stripe-python formats every answer's body for its debug log (decoded and
    repr'd) whatever the level; the gateway's SDK asks the logger first, and logs the
    body exactly as the SDK does when debug is on."""
    import logging

    from stripe import _util

    bodies: list[str] = []
    real = _util.logfmt

    def counting(props: dict) -> str:
        if "body" in props:
            bodies.append(props["body"])
        return real(props)

    monkeypatch.setattr(_util, "logfmt", counting)
    gw = gateway(sandbox_stripe)
    caplog.set_level(logging.INFO, logger="stripe")
    customer = gw.customer_create(params={"email": "quiet@example.com"}, idempotency_key="c:q")
    assert bodies == []  # nothing formatted for a level not logged
    caplog.set_level(logging.DEBUG, logger="stripe")
    gw.customer_retrieve(customer["id"])
    texts = [b.decode() if isinstance(b, bytes) else b for b in bodies]
    assert len(texts) == 1 and customer["id"] in texts[0]
    assert any(
        "API response body" in r.getMessage() and customer["id"] in r.getMessage()
        for r in caplog.records
        if r.name == "stripe"
    )


def test_an_item_that_cannot_be_parsed_raises_on_the_callers_thread_after_the_pages_before(
    sandbox_stripe, sandbox
):
    """``parse`` runs on the reader thread: a malformed item ends the list with its error
    raised here, after the pages before it, every page's request recorded."""
    from integrations.connectors.stripe.mapping import balance_transaction_from_wire

    payout = _seed_payout(sandbox, 250)
    seen: list[str] = []

    def parse(row: dict):
        seen.append(row["id"])
        if len(seen) == 150:  # on the second page
            raise ValueError(f"malformed {row['id']}")
        return balance_transaction_from_wire(row)

    listed = gateway(sandbox_stripe).balance_transactions_for_payout(payout, parse=parse)
    taken = []
    with pytest.raises(ValueError, match="malformed"):
        taken.extend(listed)
    assert len(taken) == 100 and all(t.id.startswith("txn_") for t in taken)  # facts
    assert readers() == []
    assert list(_list_calls().values_list("status_code", flat=True)) == [200, 200]


def test_the_sdk_requestor_logs_through_the_gateways_asking_log_debug():
    from stripe import _api_requestor

    import integrations.connectors.stripe.client  # noqa: F401  (installs it)

    assert getattr(_api_requestor.log_debug, "asks_first", False)
