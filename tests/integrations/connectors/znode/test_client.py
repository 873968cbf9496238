"""The Znode client against the sandbox store over real HTTP."""

from datetime import timedelta
from decimal import Decimal
from urllib.parse import unquote_plus

import pytest
from django.utils import timezone

from integrations.connectors.znode.client import ZnodeClient, build_params, forget_cached
from integrations.kernel import exceptions as exc
from integrations.models import ApiCall
from tests.support.shop import (
    OAUTH_CLIENT_ID,
    OAUTH_CLIENT_SECRET,
    STORE_DOMAIN,
    STRIPE_PAYMENT_SETTING_ID,
    payment_rows,
    store_connection,
)

pytestmark = pytest.mark.django_db


def make_client(sandbox, name="store", **settings) -> ZnodeClient:
    return ZnodeClient(store_connection(sandbox, name=name, **settings))


def test_params_put_cache_refresh_last():
    params = build_params(filters=[("orderdate", "ge", "x,y")], page=(1, 50), fresh=True)
    assert list(params) == ["filter", "page", "cache"]
    assert params["filter"] == "orderdate~ge~x^y"
    assert list(build_params(fresh=True)) == ["expand", "cache"]
    with pytest.raises(ValueError, match="start at 1"):
        build_params(page=(0, 10))


def test_reads_order_by_id_and_number_with_state_names(znode, shop):
    placed = shop.place_order(total="42.50")
    by_number = znode.get_order_by_number(placed["OrderNumber"])
    by_id = znode.get_order(placed["OmsOrderId"])
    assert by_number["OmsOrderId"] == by_id["OmsOrderId"] == placed["OmsOrderId"]
    assert by_id["OrderState"] == "SUBMITTED"
    assert Decimal(str(by_id["Total"])) == Decimal("42.50")
    with pytest.raises(exc.NotFound):
        znode.get_order(999999)


def test_bad_credentials_are_not_retryable(sandbox):
    client = make_client(
        sandbox, credentials={"domain_name": STORE_DOMAIN, "domain_key": "wrong-key"}
    )
    with pytest.raises(exc.Unauthorized) as caught:
        client.get_order(101)
    assert caught.value.retryable is False
    call = ApiCall.objects.get()
    assert call.status_code == 401
    assert call.request_headers["Authorization"] == "[redacted]"


def test_list_orders_pages_through_everything_since_a_date(znode, shop):
    since = timezone.now() - timedelta(minutes=5)
    numbers = [shop.place_order(total=f"{10 + i}.00")["OrderNumber"] for i in range(7)]
    listed = [row["OrderNumber"] for row in znode.list_orders(since=since, page_size=3)]
    assert listed == numbers  # oldest first, every page, nothing older than `since`
    pages = ApiCall.objects.filter(operation="znode.order.list").count()
    assert pages == 3


def test_state_update_is_verified_and_keeps_the_tracking_number(znode, shop):
    placed = shop.place_order()
    shop.ship(placed["OrderNumber"], tracking_number="1ZTRACK")
    after = znode.update_order_state(order_number=placed["OrderNumber"], state_name="In Review")
    assert after["OrderState"] == "IN REVIEW"
    stored = shop.order(placed["OrderNumber"])
    assert stored["TrackingNumber"] == "1ZTRACK"
    # updateorderstatus carries the number in the write itself (reference §3.1)
    write = ApiCall.objects.get(operation="znode.order.update_state")
    assert '"TrackingNumber":"1ZTRACK"' in write.request_body.replace(" ", "")


def test_a_quote_state_is_refused_before_any_write(znode, shop):
    """§3.1/§4.1: the state write resolves names among IsOrderState=1 rows only and
    ignores others silently; APPROVED is a quote/account state."""
    placed = shop.place_order()
    with pytest.raises(exc.DataError, match="'APPROVED' is not an order state"):
        znode.update_order_state(order_number=placed["OrderNumber"], state_name="APPROVED")
    assert not ApiCall.objects.filter(method="PUT").exists()
    assert znode.check_states("order", ["SUBMITTED", "APPROVED", "PAID-ISH"]) == [
        znode.check_states("order", ["APPROVED"])[0],
        znode.check_states("order", ["PAID-ISH"])[0],
    ]
    assert znode.check_states("order", ["SHIPPED", "canceled"]) == []


def test_a_lost_answer_on_a_state_write_never_loses_the_tracking_number(znode, shop, sandbox):
    """The write commits, its answer is lost; meanwhile the number is gone from Znode
    (an older write that clears it, §12). The retry sees the new state, skips the
    write, and restores the number from the caller's persisted copy."""
    placed = shop.place_order()
    number = placed["OrderNumber"]
    shop.ship(number, tracking_number="1ZLOST")
    sandbox.set_faults("znode", error_after_write_rate=1.0)
    with pytest.raises(exc.ConnectorUnavailable):
        znode.update_order_state(order_number=number, state_name="IN REVIEW")
    sandbox.set_faults("znode", error_after_write_rate=0.0)
    znode_state = sandbox.sandbox.systems["znode"].state
    znode_state["orders"][str(placed["OmsOrderId"])]["TrackingNumber"] = None
    after = znode.update_order_state(
        order_number=number, state_name="IN REVIEW", tracking_number="1ZLOST"
    )
    assert after["TrackingNumber"] == "1ZLOST"
    assert shop.order(number)["TrackingNumber"] == "1ZLOST"
    assert ApiCall.objects.filter(operation="znode.order.update_state").count() == 1


def test_a_state_just_added_by_an_operator_is_found_at_once(znode, shop, sandbox):
    """§8: GET answers are cached by the API; a miss re-reads with cache=refresh."""
    placed = shop.place_order()
    assert "READY TO PICK" not in znode.order_states()
    states = sandbox.sandbox.systems["znode"].state["order_states"]
    states.append(
        {
            **states[0],
            "OmsOrderStateId": 1999,
            "OrderStateName": "READY TO PICK",
            "Description": "Ready To Pick",
            "DisplayOrder": 99,
        }
    )
    after = znode.update_order_state(order_number=placed["OrderNumber"], state_name="Ready To Pick")
    assert after["OrderState"] == "READY TO PICK"
    refreshed = ApiCall.objects.filter(operation="znode.order_states").order_by("id").last()
    assert "cache=refresh" in refreshed.url


def test_order_date_windows_start_at_the_minute(znode):
    """§3.2, §12: orderdate compares at minute precision; seconds in the value would
    drop the orders of that minute. The store clock is local (§2.2)."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    since = datetime(2026, 7, 1, 17, 34, 56, tzinfo=UTC)
    list(znode.list_orders(since=since))
    local = since.astimezone(ZoneInfo(znode.connection.settings["timezone"]))
    call = ApiCall.objects.filter(operation="znode.order.list").first()
    assert f"orderdate~ge~{local:%Y-%m-%d %H:%M}:00" in unquote_plus(call.url)


def test_transaction_id_is_set_to_the_charge_once(znode, shop):
    placed = shop.place_order(payment_setting_id=2)
    assert znode.update_transaction_id(order_id=placed["OmsOrderId"], transaction_id="ch_9") is True
    assert (
        znode.update_transaction_id(order_id=placed["OmsOrderId"], transaction_id="ch_9") is False
    )
    assert shop.order(placed["OrderNumber"])["TransactionId"] == "ch_9"


def test_unknown_state_name_fails_before_any_write(znode, shop):
    placed = shop.place_order()
    with pytest.raises(exc.DataError, match="no order state named 'PAID-ISH'"):
        znode.update_order_state(order_number=placed["OrderNumber"], state_name="PAID-ISH")
    assert not ApiCall.objects.filter(method="PUT").exists()
    assert shop.order(placed["OrderNumber"])["OrderState"] == "SUBMITTED"


def test_payment_status_by_name(znode, shop):
    placed = shop.place_order()
    znode.update_payment_status(order_id=placed["OmsOrderId"], status_name="captured")
    assert shop.order(placed["OrderNumber"])["PaymentStatus"] == "Captured"
    with pytest.raises(exc.DataError, match="no payment state"):
        znode.update_payment_status(order_id=placed["OmsOrderId"], status_name="Paid?")


def record(znode, order_id, reference="ch_123", baseline=None):
    """``baseline``: the count before our first try, as the caller would have kept it."""
    return znode.record_payment(
        baseline=None if baseline is None else (lambda now: baseline),
        order_id=order_id,
        transaction_reference=reference,
        amount=Decimal("19.99"),
        status="Captured",
        payment_setting_id=STRIPE_PAYMENT_SETTING_ID,
        transaction_date=timezone.now(),
    )


def history(shop, number):
    return payment_rows(shop.order(number))


def payments(shop, number, reference="ch_123"):
    return payment_rows(shop.order(number), reference)


def test_payment_record_is_written_once(znode, shop):
    placed = shop.place_order()
    assert record(znode, placed["OmsOrderId"]) is True
    assert record(znode, placed["OmsOrderId"]) is False
    rows = payments(shop, placed["OrderNumber"])
    assert len(rows) == 1
    assert Decimal(str(rows[0]["Amount"])) == Decimal("19.99")


def test_payment_dedupe_works_when_history_rows_lack_the_reference(znode, shop):
    shop.configure(payment_history_has_reference=False)
    try:
        placed = shop.place_order()
        order_id = placed["OmsOrderId"]
        assert record(znode, order_id, baseline=0) is True
        assert record(znode, order_id, baseline=0) is False  # the retry sees ours
        rows = history(shop, placed["OrderNumber"])
        assert len([r for r in rows if r.get("TransactionStatus") == "Captured"]) == 1
    finally:
        shop.configure(payment_history_has_reference=True)


def test_a_genuine_second_payment_of_the_same_amount_is_never_dropped(znode, shop):
    """Without TransactionReference in the rows, "same amount and status" cannot tell
    ours from the customer's second payment. The baseline (rows before our first
    try) can: the customer's payment is already counted in it."""
    shop.configure(payment_history_has_reference=False)
    try:
        placed = shop.place_order()
        order_id = placed["OmsOrderId"]
        assert record(znode, order_id, reference="theirs", baseline=0) is True  # theirs
        assert record(znode, order_id, baseline=1) is True  # ours, same amount
        assert record(znode, order_id, baseline=1) is False  # our retry
        rows = history(shop, placed["OrderNumber"])
        assert len([r for r in rows if r.get("TransactionStatus") == "Captured"]) == 2
    finally:
        shop.configure(payment_history_has_reference=True)


def test_payment_dates_are_store_local(znode, shop):
    """§2.2: Znode dates are server-local, without an offset."""
    from zoneinfo import ZoneInfo

    placed = shop.place_order()
    moment = timezone.now().replace(microsecond=0)
    znode.record_payment(
        order_id=placed["OmsOrderId"],
        transaction_reference="ch_local",
        amount=Decimal("19.99"),
        status="Captured",
        payment_setting_id=STRIPE_PAYMENT_SETTING_ID,
        transaction_date=moment,
    )
    sent = ApiCall.objects.get(operation="znode.order.record_payment").request_body
    local = moment.astimezone(ZoneInfo(znode.connection.settings["timezone"]))
    assert local.utcoffset().total_seconds() != 0
    assert local.strftime("%Y-%m-%dT%H:%M:%S") in sent


def test_lost_response_after_payment_write_is_not_doubled_on_retry(znode, shop, sandbox):
    placed = shop.place_order()
    sandbox.set_faults("znode", error_after_write_rate=1.0)
    with pytest.raises(exc.ConnectorUnavailable):
        record(znode, placed["OmsOrderId"])
    sandbox.set_faults("znode", error_after_write_rate=0.0)
    assert record(znode, placed["OmsOrderId"]) is False  # already there
    assert len(payments(shop, placed["OrderNumber"])) == 1


def test_notes_are_attached_to_the_order_once(znode, shop, sandbox):
    placed = shop.place_order()
    sandbox.set_faults("znode", error_after_write_rate=1.0)
    with pytest.raises(exc.ConnectorUnavailable):
        znode.add_order_note(order_id=placed["OmsOrderId"], note="Card declined", dedupe_key="e1")
    sandbox.set_faults("znode", error_after_write_rate=0.0)
    assert (
        znode.add_order_note(order_id=placed["OmsOrderId"], note="Card declined", dedupe_key="e1")
        is False
    )
    notes = [n["Notes"] for n in znode.order_notes(order_id=placed["OmsOrderId"])]
    assert notes.count("Card declined [ref:e1]") == 1


def test_customer_update_keeps_fields_it_did_not_touch(znode):
    before = znode.get_customer(user_id=12, portal_id=1)
    znode.update_customer(user_id=12, portal_id=1, changes={"PhoneNumber": "555-9999"})
    after = znode.get_customer(user_id=12, portal_id=1)
    assert after["PhoneNumber"] == "555-9999"
    assert after["Email"] == before["Email"] and after["FirstName"] == before["FirstName"]
    assert after["Addresses"], "addresses come from customer/addresslist"


def test_oauth_token_is_cached_refreshed_and_retried_once(sandbox, shop):
    client = make_client(
        sandbox,
        name="store-oauth",
        credentials={"client_id": OAUTH_CLIENT_ID, "client_secret": OAUTH_CLIENT_SECRET},
        auth="oauth",
    )
    placed = shop.place_order()
    client.get_order(placed["OmsOrderId"])
    client.get_order(placed["OmsOrderId"])
    assert ApiCall.objects.filter(operation="znode.oauth.token").count() == 1
    # The gateway forgets the token (restart): one 401, one refresh, one retry.
    from integrations.connectors.znode import client as client_module

    client_module._tokens[client.connection.pk] = ("stale-token", 10**12)
    assert client.get_order(placed["OmsOrderId"])["OmsOrderId"] == placed["OmsOrderId"]
    assert ApiCall.objects.filter(operation="znode.oauth.token").count() == 2
    assert ApiCall.objects.filter(operation="znode.order.get", status_code=401).count() == 1


def test_oauth_with_bad_secret_is_unauthorized(sandbox):
    client = make_client(
        sandbox,
        name="store-oauth-bad",
        credentials={"client_id": OAUTH_CLIENT_ID, "client_secret": "nope"},
        auth="oauth",
    )
    with pytest.raises(exc.Unauthorized):
        client.get_order(101)


def test_oauth_token_is_renewed_before_it_expires(sandbox, shop):
    import time

    shop.configure(token_ttl=1)
    client = make_client(
        sandbox,
        name="store-oauth-short",
        credentials={"client_id": OAUTH_CLIENT_ID, "client_secret": OAUTH_CLIENT_SECRET},
        auth="oauth",
    )
    placed = shop.place_order()
    client.get_order(placed["OmsOrderId"])
    time.sleep(1.0)  # past the renewal point (expiry minus a fifth), inside the TTL window
    client.get_order(placed["OmsOrderId"])
    assert ApiCall.objects.filter(operation="znode.oauth.token").count() == 2
    assert not ApiCall.objects.filter(status_code=401).exists()


def test_business_errors_are_final_but_unhandled_server_errors_retry(znode, shop, sandbox):
    placed = shop.place_order()
    with pytest.raises(exc.BusinessRuleError) as business:
        znode.request(
            "GET",
            f"orders/updateorderpaymentstatus/{placed['OmsOrderId']}/Bogus",
            operation="probe",
        )
    assert business.value.retryable is False
    sandbox.set_faults("znode", error_rate=1.0)
    with pytest.raises(exc.ConnectorUnavailable) as transient:
        znode.get_order(placed["OmsOrderId"])
    assert transient.value.retryable is True


def test_returns_are_listed_read_moved_and_given_history(znode, shop):
    from decimal import Decimal as D

    returns = znode.list_returns()
    numbers = {r["ReturnNumber"] for r in returns}
    assert "SBX-RMA-000002" in numbers
    found = znode.get_return("SBX-RMA-000002")
    assert found["OrderNumber"]
    assert found["ReturnLineItems"]  # only with expand=returnitemlist (§5.1)
    moved = znode.update_return_state(return_number="SBX-RMA-000002", state_name="Approved")
    assert moved["RmaReturnStateId"] == 50
    assert znode.get_return("SBX-RMA-000002")["RmaReturnStateId"] == 50
    znode.add_return_history(
        return_details_id=found["RmaReturnDetailsId"],
        transaction_id="re_123",
        amount=D("5.00"),
        message="Refunded in Stripe",
    )
    with pytest.raises(exc.DataError, match="no return state named"):
        znode.update_return_state(return_number="SBX-RMA-000002", state_name="Teleported")
    with pytest.raises(exc.NotFound):
        znode.get_return("SBX-RMA-999999")


def test_test_connection_reads_the_state_table(znode):
    from integrations.services.connections import connection_test

    result = connection_test(connection=znode.connection)
    assert result.ok, result.message
    assert result.message == "Znode answered; 14 order states"
    bad = znode.connection
    bad.credentials = {"domain_name": STORE_DOMAIN, "domain_key": "nope"}
    forget_cached()
    failed = connection_test(connection=bad)
    assert not failed.ok and "Unauthorized" in failed.message


def test_token_mode_sends_a_generated_token_and_basic(sandbox, shop):
    """§1.2: with EnableTokenBasedAuthorization every call carries a Token from
    token/generatetoken, and the Basic header is still checked."""
    shop.configure(token_auth=True)
    try:
        plain = make_client(sandbox, name="plain")
        with pytest.raises(exc.Unauthorized):
            plain.order_states()
        tokened = make_client(sandbox, name="tokened", token_auth=True)
        assert "SUBMITTED" in tokened.order_states()
        assert ApiCall.objects.filter(operation="znode.token.generate").count() == 1
        sent = ApiCall.objects.get(operation="znode.order_states", connection=tokened.connection)
        assert "Token" in sent.request_headers and "Authorization" in sent.request_headers
    finally:
        shop.configure(token_auth=False)


def test_address_update_reads_modifies_and_writes_the_whole_row(znode):
    """§6, §12: the address PUT replaces the row; omitted fields would become null."""
    before = next(a for a in znode.list_addresses(user_id=11) if a["AddressId"] == 201)
    znode.update_address(user_id=11, address_id=201, changes={"PhoneNumber": "555-0199"})
    after = next(a for a in znode.list_addresses(user_id=11) if a["AddressId"] == 201)
    assert after["PhoneNumber"] == "555-0199"
    for field in ("Address1", "PostalCode", "FirstName", "LastName", "CityName"):
        assert after[field] == before[field]
    with pytest.raises(exc.NotFound):
        znode.update_address(user_id=11, address_id=999, changes={"PhoneNumber": "x"})
