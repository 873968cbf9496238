"""The Znode client's return calls (RMA, reference znode-api.md §5.1) and the order
history a refund is recorded in, against the sandbox store over real HTTP."""

import base64
import json
from decimal import Decimal
from urllib.parse import unquote_plus

import pytest
import requests

from integrations.kernel import exceptions as exc
from integrations.models import ApiCall
from tests.support.shop import STORE_DOMAIN, STORE_KEY

pytestmark = pytest.mark.django_db

SEEDED_RETURNS = ("SBX-RMA-000001", "SBX-RMA-000002")  # refund processed; submitted


def raw_get(sandbox, path: str) -> requests.Response:
    """A call as any 9.x client makes it, to see the server's own answer."""
    token = base64.b64encode(f"{STORE_DOMAIN}|{STORE_KEY}".encode()).decode()
    return requests.get(
        f"{sandbox.system_url('znode')}/{path}",
        headers={"Authorization": f"Basic {token}"},
        timeout=10,
    )


def test_list_returns_pages_through_every_page(znode, shop, open_return):
    placed = shop.place_order(lines=[{"sku": "SBX-MUG-11OZ", "quantity": 3, "price": "10.00"}])
    opened = [open_return(placed["OrderNumber"], lines=[{"sku": "SBX-MUG-11OZ"}]) for _ in range(3)]
    listed = [row["ReturnNumber"] for row in znode.list_returns(page_size=2)]
    # The two seeded returns and the three new ones, least recently modified first.
    assert listed[-3:] == [r["ReturnNumber"] for r in opened]
    assert sorted(listed) == sorted([*SEEDED_RETURNS, *listed[-3:]])
    calls = ApiCall.objects.filter(operation="znode.return.list").order_by("id")
    assert [c.status_code for c in calls] == [200, 200, 200]  # TotalPages: no 4th call
    urls = [unquote_plus(c.url) for c in calls]
    assert [url.split("page=")[1].split("&")[0] for url in urls] == [
        "index~1,size~2",
        "index~2,size~2",
        "index~3,size~2",
    ]
    assert "sort=modifieddate~asc,rmareturndetailsid~asc" in urls[0]
    ApiCall.objects.all().delete()
    assert list(znode.list_returns(filters=[("returnnumber", "eq", "SBX-RMA-999999")])) == []
    assert ApiCall.objects.get(operation="znode.return.list").status_code == 204


def test_a_page_past_the_end_of_a_list_is_no_content(sandbox):
    """znode-api.md §2.3 and §12: page index 0 or past the end answers 204, so a client
    paging without TotalPages stops there."""
    assert raw_get(sandbox, "rmareturn/list?page=index~1,size~1").status_code == 200
    assert raw_get(sandbox, "rmareturn/list?page=index~3,size~1").status_code == 204
    assert raw_get(sandbox, "rmareturn/list?page=index~0,size~1").status_code == 204


def test_returns_are_listed_since_a_minute_in_store_time(znode):
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    since = datetime(2026, 7, 1, 17, 34, 56, tzinfo=UTC)
    list(znode.list_returns(since=since, filters=[("rmareturnstateid", "in", [50, 80])]))
    local = since.astimezone(ZoneInfo(znode.connection.settings["timezone"]))
    url = unquote_plus(ApiCall.objects.get(operation="znode.return.list").url)
    assert f"rmareturnstateid~in~50^80,modifieddate~ge~{local:%Y-%m-%d %H:%M}:00" in url


def test_order_history_is_written_and_read_back(znode, shop):
    """§5.1 ("How a refund is recorded"): the admin posts orders/createorderhistory with
    a negative OrderAmount and the refund id; §3.3: ``OrderHistory`` is a dictionary,
    filled with the ``znodeomshistories`` expand."""
    placed = shop.place_order(total="30.00")
    assert znode.order_history_messages(placed["OmsOrderId"]) == []
    znode.add_order_history(
        order_details_id=placed["OmsOrderDetailsId"],
        message="Refunded 12.50 in Stripe [ref:return:501]",
        transaction_id="re_123",
        amount=Decimal("-12.50"),
    )
    znode.add_order_history(
        order_details_id=placed["OmsOrderDetailsId"],
        message="x" * 600,
        transaction_id="re_124",
        amount=Decimal("-1.00"),
    )
    messages = znode.order_history_messages(placed["OmsOrderId"])
    assert messages == ["Refunded 12.50 in Stripe [ref:return:501]", "x" * 500]
    sent = ApiCall.objects.filter(operation="znode.order.add_history").order_by("id").first()
    body = json.loads(sent.request_body)
    assert body == {
        "OmsOrderDetailsId": placed["OmsOrderDetailsId"],
        "Message": "Refunded 12.50 in Stripe [ref:return:501]",
        "TransactionId": "re_123",
        "OrderAmount": -12.5,  # the sign as given
    }
    read = ApiCall.objects.filter(operation="znode.order.get").last()
    assert "expand=znodeomshistories" in read.url and "cache=refresh" in read.url
    # An unknown details row: Znode's FK error (a 500 without an ErrorCode).
    with pytest.raises(exc.IntegrationError, match="FK_ZnodeOmsHistory_OmsOrderDetailsId"):
        znode.add_order_history(
            order_details_id=999999, message="m", transaction_id="re_1", amount=Decimal(-1)
        )


def test_order_history_in_other_shapes_is_read(znode, monkeypatch):
    shapes = {
        1: {"OrderHistory": [{"Message": "a"}, {"Message": None}, "b"]},
        2: {"OrderHistory": {"2026-11-30T10:00:00": "c", "2026-11-30T10:01:00": ""}},
        3: {"OrderHistory": None},
    }
    monkeypatch.setattr(znode, "get_order", lambda order_id, expand: shapes[order_id])
    assert [znode.order_history_messages(n) for n in (1, 2, 3)] == [["a", "b"], ["c"], []]


def test_a_return_is_saved_at_refund_processed_as_the_admin_does(znode, shop, open_return):
    """§5.1: the admin saves the return with the admin flag and, for Refund Processed
    (80), ``IsRefundProcess``; the server takes that flag as the state. ``Notes`` on
    the saved model becomes a return note."""
    placed = shop.place_order(total="20.00")
    opened = open_return(placed["OrderNumber"])
    number = opened["ReturnNumber"]
    approved = znode.update_return_state(return_number=number, state_name="Approved")
    assert (approved["RmaReturnStateId"], approved["IsRefundProcess"]) == (50, False)
    saved = znode.update_return_state(
        return_number=number, state_name="Refund Processed", notes="Refunded: re_9"
    )
    assert (saved["RmaReturnStateId"], saved["IsRefundProcess"]) == (80, True)
    writes = ApiCall.objects.filter(operation="znode.return.update_state").order_by("id")
    sent = [json.loads(w.request_body) for w in writes]
    assert [(s["RmaReturnStateId"], s["IsAdminRequest"], s["IsRefundProcess"]) for s in sent] == [
        (50, True, False),
        (80, True, True),
    ]
    assert sent[1]["ReturnStatus"] == "Refund Processed" and sent[1]["Notes"] == "Refunded: re_9"
    assert sent[1]["ReturnLineItems"]  # written back whole, with its line items
    reread = znode.get_return(number)
    notes = [row["Notes"] for row in reread["ReturnHistoryAndNotesList"] if row["Notes"]]
    assert notes == ["Refunded: re_9"]
    # A retry after a lost answer finds it done and writes nothing.
    again = znode.update_return_state(
        return_number=number, state_name="refund processed", notes="Refunded: re_9"
    )
    assert again["RmaReturnStateId"] == 80
    assert writes.count() == 2
    # Reopened for a person: the flag goes off again.
    reopened = znode.update_return_state(return_number=number, state_name="In Review")
    assert (reopened["RmaReturnStateId"], reopened["IsRefundProcess"]) == (30, False)


def test_a_lost_answer_on_a_return_save_writes_the_note_once(znode, shop, sandbox, open_return):
    number = open_return(shop.place_order(total="20.00")["OrderNumber"])["ReturnNumber"]
    sandbox.set_faults("znode", error_after_write_rate=1.0)
    with pytest.raises(exc.ConnectorUnavailable):
        znode.update_return_state(return_number=number, state_name="Approved", notes="Approved")
    sandbox.set_faults("znode", error_after_write_rate=0.0)
    again = znode.update_return_state(return_number=number, state_name="Approved", notes="Approved")
    assert again["RmaReturnStateId"] == 50
    assert ApiCall.objects.filter(operation="znode.return.update_state").count() == 1
    notes = [r["Notes"] for r in znode.get_return(number)["ReturnHistoryAndNotesList"]]
    assert notes == ["Approved"]
