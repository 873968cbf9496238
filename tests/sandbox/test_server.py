import json
import time
import urllib.error
import urllib.request

import pytest

from sandbox.http import decode_nested_form, json_bytes


def call(url, method="GET", body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"null")


ERP_AUTH = {"Authorization": "Bearer sandbox-erp-token", "Content-Type": "application/json"}


def entry(reference="JE-REF-1", amount="10.00"):
    return {
        "external_reference": reference,
        "date": "2026-11-30",
        "currency": "usd",
        "memo": "sale",
        "lines": [
            {"account": "1200", "debit": amount, "credit": "0"},
            {"account": "4000", "debit": "0", "credit": amount},
        ],
    }


def test_nested_form_decoding():
    assert decode_nested_form("a=1&metadata[order]=X&expand[]=b&expand[]=c&items[0][p]=q") == {
        "a": "1",
        "metadata": {"order": "X"},
        "expand": ["b", "c"],
        "items": [{"p": "q"}],
    }


def test_json_bytes_encode_what_the_standard_library_encodes():
    from datetime import UTC, datetime
    from decimal import Decimal

    body = {"data": [{"id": "txn_1", "amount": -5, "rate": 1.0847, "fx": None}], "é": "✓"}
    assert json.loads(json_bytes(body)) == body
    # What orjson refuses is encoded by the standard library, as before.
    assert json.loads(json_bytes({"big": 2**70})) == {"big": 2**70}
    with pytest.raises(TypeError):
        json_bytes({"amount": Decimal("1.10")})  # as json.dumps refuses it
    with pytest.raises(TypeError):
        json_bytes({"at": datetime.now(UTC)})  # orjson would encode it; json.dumps refuses


def test_health_and_unknown_paths(sandbox):
    assert call(f"{sandbox.url}/_sandbox/health")[0] == 200
    assert call(f"{sandbox.url}/nowhere/x")[0] == 404


def test_erp_requires_a_token(sandbox):
    status, _, body = call(f"{sandbox.url}/erp/api/health")
    assert (status, body) == (401, {"error": "invalid or missing bearer token"})
    assert call(f"{sandbox.url}/erp/api/health", headers=ERP_AUTH)[0] == 200


def test_erp_journal_entries_are_idempotent_by_reference(sandbox):
    url = f"{sandbox.url}/erp/api/journal-entries"
    first = call(url, "POST", entry(), ERP_AUTH)
    again = call(url, "POST", entry(), ERP_AUTH)
    assert (first[0], again[0]) == (201, 200)
    assert first[2]["id"] == again[2]["id"] == "JE-000001"
    conflict = call(url, "POST", entry(amount="11.00"), ERP_AUTH)
    assert conflict[0] == 422
    listed = call(url + "?external_reference=JE-REF-1", headers=ERP_AUTH)[2]
    assert listed["count"] == 1
    balance = call(f"{sandbox.url}/erp/api/trial-balance", headers=ERP_AUTH)[2]
    assert balance["balanced"] is True
    assert balance["accounts"] == [
        {"account": "1200", "currency": "USD", "debit": "10.00", "credit": "0", "balance": "10.00"},
        {
            "account": "4000",
            "currency": "USD",
            "debit": "0",
            "credit": "10.00",
            "balance": "-10.00",
        },
    ]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e["lines"].pop(), "at least two"),
        (lambda e: e["lines"][0].update(debit="9.00"), "does not balance"),
        (lambda e: e["lines"][0].update(debit="abc"), "not a decimal"),
        (lambda e: e.pop("external_reference"), "external_reference is required"),
    ],
)
def test_erp_rejects_bad_entries_and_stores_nothing(sandbox, mutate, message):
    bad = entry()
    mutate(bad)
    status, _, body = call(f"{sandbox.url}/erp/api/journal-entries", "POST", bad, ERP_AUTH)
    assert status == 400 and message in body["error"]
    listed = call(f"{sandbox.url}/erp/api/journal-entries", headers=ERP_AUTH)[2]
    assert listed["count"] == 0


def test_faults_rate_limit_bursts_and_errors(sandbox):
    sandbox.set_faults("erp", burst_429_every=3, burst_429_length=2, retry_after=3)
    statuses = [call(f"{sandbox.url}/erp/api/health", headers=ERP_AUTH) for _ in range(5)]
    assert [s[0] for s in statuses] == [429, 429, 200, 429, 429]
    assert statuses[0][1]["Retry-After"] == "3"
    sandbox.set_faults("erp", burst_429_every=0, error_rate=1.0)
    assert call(f"{sandbox.url}/erp/api/health", headers=ERP_AUTH)[0] == 500


def test_error_after_write_applies_the_write(sandbox):
    sandbox.set_faults("erp", error_after_write_rate=1.0)
    status, _, _ = call(f"{sandbox.url}/erp/api/journal-entries", "POST", entry(), ERP_AUTH)
    assert status == 502
    sandbox.set_faults("erp", error_after_write_rate=0.0)
    listed = call(f"{sandbox.url}/erp/api/journal-entries", headers=ERP_AUTH)[2]
    assert listed["count"] == 1  # the write happened; only the answer was lost


def test_latency_and_timeouts(sandbox):
    sandbox.set_faults("erp", latency_ms=200)
    started = time.monotonic()
    call(f"{sandbox.url}/erp/api/health", headers=ERP_AUTH)
    assert time.monotonic() - started >= 0.2
    sandbox.set_faults("erp", latency_ms=0, timeout_rate=1.0, timeout_seconds=0.3)
    assert call(f"{sandbox.url}/erp/api/health", headers=ERP_AUTH)[0] == 504


def test_bad_fault_setting_is_refused(sandbox):
    status, _, body = call(f"{sandbox.url}/_sandbox/faults/erp", "PUT", {"nope": 1})
    assert status == 400 and "nope" in body["error"]


# Milestones (benchmarks/pipeline.py times the platform from outside by them).


def test_milestones_and_counts_of_the_erp(sandbox):
    before = call(f"{sandbox.url}/_sandbox/counts")[2]["erp"]
    posted = time.time()
    assert call(f"{sandbox.url}/erp/api/journal-entries", "POST", entry(), ERP_AUTH)[0] == 201
    call(f"{sandbox.url}/erp/api/journal-entries", "POST", entry(), ERP_AUTH)  # a replay
    stones = call(f"{sandbox.url}/_sandbox/milestones/erp")[2]
    assert list(stones) == ["JE:JE-REF-1"]  # the first write only
    assert posted - 1 < stones["JE:JE-REF-1"] <= time.time()
    assert call(f"{sandbox.url}/_sandbox/counts")[2]["erp"] == before + 2
    assert call(f"{sandbox.url}/_sandbox/milestones/nowhere")[0] == 404
    call(f"{sandbox.url}/_sandbox/reset", "POST")
    assert call(f"{sandbox.url}/_sandbox/milestones/erp")[2] == {}
    assert call(f"{sandbox.url}/_sandbox/counts")[2]["erp"] == 0


def test_an_order_is_marked_paid_only_with_its_payment_record():
    from sandbox.server import Sandbox

    znode = Sandbox(seed=1).systems["znode"]
    with znode.lock:
        order = znode.place_order(
            user_id=12,
            lines=[{"sku": "SBX-MUG-11OZ", "quantity": 1, "price": "10.00"}],
            payment_setting_id=11,
            emit=False,
        )
        number = order["OrderNumber"]
        assert f"placed:{number}" in znode.milestones
        order["OmsPaymentStateId"] = znode.payment_state_named("Captured")["OmsPaymentStateId"]
        order["TransactionId"] = "ch_bench"
        znode.mark_payment(order)
        assert f"paid:{number}" not in znode.milestones  # no payment row yet
        znode.insert_payment(order, "ch_other", "10.00", "captured", None, 11, "0")
        znode.mark_payment(order)
        assert f"paid:{number}" not in znode.milestones  # a row for another charge
        znode.insert_payment(order, "ch_bench", "10.00", "captured", None, 11, "0")
        znode.mark_payment(order)
        assert f"paid:{number}" in znode.milestones
        order["OmsPaymentStateId"] = znode.payment_state_named("Declined")["OmsPaymentStateId"]
        znode.mark_payment(order)
        assert f"declined:{number}" in znode.milestones
