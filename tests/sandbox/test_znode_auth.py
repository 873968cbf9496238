"""Znode sandbox: Basic domain|key auth, generatetoken, OAuth client credentials,
context headers, error shapes and injected faults."""

from __future__ import annotations

import base64
import time

import pytest
import requests

from tests.sandbox.test_znode_helpers import (
    BASE_FIELDS,
    OUTLET_DOMAIN,
    OUTLET_KEY,
    STORE_DOMAIN,
    STORE_KEY,
    Zn,
    basic,
    body,
)


def list_status(sandbox, headers: dict) -> tuple[int, dict | None]:
    response = requests.get(f"{sandbox.system_url('znode')}/orders/list", headers=headers)
    return response.status_code, body(response)


def test_basic_auth_with_domain_pipe_key(sandbox):
    status, data = list_status(sandbox, {"Authorization": basic()})
    assert status == 200
    assert data["OrderList"]["Orders"]
    outlet = list_status(sandbox, {"Authorization": basic(OUTLET_DOMAIN, OUTLET_KEY)})
    assert outlet[0] == 200


@pytest.mark.parametrize(
    "header",
    [
        basic(key=STORE_KEY.replace("8f3b", "0000")),  # wrong key
        basic(key=STORE_KEY.upper()),  # the key compare is case-sensitive
        basic(sep=":"),  # colon instead of pipe
        basic(domain="nowhere.local"),
        basic(key=OUTLET_KEY),  # another store's key
        basic("retired-store.local", "00000000-dead-4bee-8f00-000000000000"),  # inactive
        "Basic !!!not-base64!!!",
        "Bearer " + base64.b64encode(f"{STORE_DOMAIN}|{STORE_KEY}".encode()).decode(),
        "",
    ],
    ids=[
        "bad-key",
        "key-case",
        "colon",
        "unknown-domain",
        "other-key",
        "inactive",
        "garbage",
        "bearer-basic",
        "empty",
    ],
)
def test_bad_credentials_answer_401_with_error_code_32(sandbox, header):
    headers = {"Authorization": header} if header else {}
    status, data = list_status(sandbox, headers)
    assert status == 401
    assert data["ErrorCode"] == 32
    assert data["ErrorMessage"] and data["HasError"] is False  # sic: Znode sends false
    assert set(data) >= BASE_FIELDS


def test_missing_header_and_domain_case(sandbox):
    status, data = list_status(sandbox, {})
    assert status == 401
    assert data["ErrorMessage"] == "You are unauthorized to access this resource"
    # DomainName is matched like SQL Server does (case-insensitive); the 6-char prefix is
    # dropped unread, as BaseController does.
    assert list_status(sandbox, {"Authorization": basic(STORE_DOMAIN.upper())})[0] == 200
    lower = "basic " + basic()[6:]
    assert list_status(sandbox, {"Authorization": lower})[0] == 200


def test_generate_token_and_token_mode(sandbox):
    zn = Zn(sandbox)
    response = zn.get("token/generatetoken")
    assert response.status_code == 200
    token = body(response)["Response"]
    assert isinstance(token, str) and len(token) > 20
    zn.config(token_auth=True)
    assert zn.get("orders/list").status_code == 401
    assert zn.get("orders/list", headers={"Token": token}).status_code == 200
    assert zn.get("orders/list").json()["ErrorMessage"] == "Token is invalid"
    assert zn.get("orders/list", headers={"Token": "forged"}).json()["ErrorMessage"] == (
        "Token is invalid"
    )
    zn.config(api_token_ttl=0.3)
    short = body(zn.get("token/generatetoken"))["Response"]
    assert zn.get("orders/list", headers={"Token": short}).status_code == 200
    time.sleep(0.4)
    expired = zn.get("orders/list", headers={"Token": short})
    assert expired.status_code == 401 and expired.json()["ErrorMessage"] == "Token is expired"
    assert expired.json()["ErrorCode"] == 32
    # Even in token mode the Basic header is still checked.
    no_basic = requests.get(f"{zn.base}/orders/list", headers={"Token": token})
    assert no_basic.status_code == 401


def oauth(sandbox, **form) -> requests.Response:
    data = {
        "grant_type": "client_credentials",
        "client_id": "sandbox-client",
        "client_secret": "sandbox-secret",
        "scope": "znode.api",
    }
    data.update(form)
    data = {k: v for k, v in data.items() if v is not None}
    return requests.post(f"{sandbox.system_url('znode')}/oauth/token", data=data, timeout=10)


def test_oauth_client_credentials_then_bearer(sandbox):
    response = oauth(sandbox)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    token = response.json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600
    assert token["scope"] == "znode.api"
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    status, data = list_status(sandbox, bearer)
    assert status == 200 and data["OrderList"]["Orders"]
    zn = Zn(sandbox, auth=bearer["Authorization"])
    assert zn.put("orders/updatetrackingnumber/101/TRACK1").json()["IsSuccess"] is True
    # client_secret_basic works as well
    pair = base64.b64encode(b"sandbox-client:sandbox-secret").decode()
    alt = requests.post(
        f"{zn.base}/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {pair}"},
        timeout=10,
    )
    assert alt.status_code == 200 and alt.json()["access_token"] != token["access_token"]


@pytest.mark.parametrize(
    ("form", "status", "code"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "someone-else"}, 401, "invalid_client"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"grant_type": None}, 400, "invalid_request"),
        ({"scope": "znode.admin"}, 400, "invalid_scope"),
    ],
)
def test_oauth_errors(sandbox, form, status, code):
    response = oauth(sandbox, **form)
    assert response.status_code == status
    assert response.json()["error"] == code
    assert "access_token" not in response.json()


def test_oauth_tokens_expire_and_unknown_bearer_is_refused(sandbox):
    Zn(sandbox).config(token_ttl=1)
    token = oauth(sandbox).json()
    assert token["expires_in"] == 1
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert list_status(sandbox, bearer)[0] == 200
    time.sleep(1.1)
    status, data = list_status(sandbox, bearer)
    assert status == 401 and data["ErrorCode"] == 32
    response = requests.get(
        f"{sandbox.system_url('znode')}/orders/list",
        headers={"Authorization": "Bearer made-up"},
        timeout=10,
    )
    assert response.status_code == 401
    assert "invalid_token" in response.headers["WWW-Authenticate"]


def test_context_headers_are_recorded_and_drive_modified_by(sandbox):
    zn = Zn(sandbox)
    headers = {"Znode-DomainName": STORE_DOMAIN, "Znode-UserId": "77"}
    assert zn.put("orders/updatetrackingnumber/101/ABC", headers=headers).status_code == 200
    log = sandbox.control("GET", "requests/znode")["requests"]
    last = [r for r in log if "updatetrackingnumber" in r["path"]][-1]
    assert last["znode_domain"] == STORE_DOMAIN and last["znode_user_id"] == "77"
    assert zn.order(101)["ModifiedBy"] == 77


def test_unknown_route_and_wrong_verb(sandbox):
    zn = Zn(sandbox)
    missing = zn.get("orders/nothing/here")
    assert missing.status_code == 404 and "Message" in missing.json()
    assert zn.get("api/orders/list").status_code == 404  # no /api prefix in 9.x
    wrong = zn.post("orders/list", {})
    assert wrong.status_code == 405 and "Message" in wrong.json()
    assert zn.get("orders/abc").status_code == 404


def test_injected_faults_look_like_znode(sandbox):
    zn = Zn(sandbox)
    sandbox.set_faults("znode", error_rate=1.0)
    response = zn.get("orders/list")
    assert response.status_code == 500
    data = body(response)
    assert data["HasError"] is True and set(data) >= BASE_FIELDS
    zn.config(bodiless_error_rate=1.0)
    bare = zn.get("orders/list")
    assert bare.status_code == 500 and bare.content == b""
    sandbox.set_faults("znode", error_rate=0.0, burst_429_every=1, burst_429_length=1)
    limited = zn.get("orders/list")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    # Test routes are never faulted.
    assert zn.test("GET", "config").status_code == 200


def test_mutating_get_counts_as_a_write_for_lost_responses(sandbox):
    zn = Zn(sandbox)
    sandbox.set_faults("znode", error_after_write_rate=1.0)
    assert zn.get("orders/updatetrackingnumber/101/LOST-1").status_code == 502
    assert zn.get("orders/list").status_code == 200  # reads are not affected
    sandbox.set_faults("znode", error_after_write_rate=0.0)
    assert zn.order(101)["TrackingNumber"] == "LOST-1"  # the write happened


def test_minified_json_response_drops_defaults(sandbox):
    zn = Zn(sandbox)
    full = zn.ok("orders/101")
    small = zn.ok("orders/101", headers={"Minified-Json-Response": "true"})
    assert "ErrorCode" in full and "ErrorCode" not in small
    assert "OrderState" not in small["Order"] and small["Order"]["OrderNumber"] == "SBX-000001"
    assert small["Order"]["Total"] == full["Order"]["Total"]
