"""Shared helpers for the Znode sandbox tests (no tests here)."""

from __future__ import annotations

import base64
import json
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

STORE_DOMAIN = "sandbox-store.local"
STORE_KEY = "8f3b2c1e-5d4a-4b6e-9c7f-0a1b2c3d4e5f"
OUTLET_DOMAIN = "sandbox-outlet.local"
OUTLET_KEY = "c4d9e8f7-1a2b-4c3d-8e5f-6a7b8c9d0e1f"
MIN_DATE = "0001-01-01T00:00:00"
# BaseModel's properties (reference §2.2); BaseResponse extends BaseModel.
MODEL_BASE = {
    "CreatedBy",
    "CreatedDate",
    "ModifiedBy",
    "ModifiedDate",
    "ActionMode",
    "Custom1",
    "Custom2",
    "Custom3",
    "Custom4",
    "Custom5",
}
BASE_FIELDS = {
    "ErrorCode",
    "ErrorMessage",
    "HasError",
    "CustomModelState",
    "ErrorDetailList",
} | MODEL_BASE
ALL_EXPANDS = "omsorderstate,omspaymentstate,paymenttype,orderlineitems,ordernotes"


def basic(domain: str = STORE_DOMAIN, key: str = STORE_KEY, sep: str = "|") -> str:
    return "Basic " + base64.b64encode(f"{domain}{sep}{key}".encode()).decode()


def body(response: requests.Response):
    return json.loads(response.content, parse_float=Decimal) if response.content else None


class Zn:
    """A thin Znode client for the tests. ``cache=False`` turns the GET cache off."""

    def __init__(self, sandbox, *, cache: bool = False, auth: str | None = None) -> None:
        self.sandbox = sandbox
        self.base = sandbox.system_url("znode")
        self.http = requests.Session()
        self.http.headers["Authorization"] = auth or basic()
        if not cache:
            self.config(cache_seconds=0)

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.http.request(method, f"{self.base}/{path.lstrip('/')}", timeout=10, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def send(self, method: str, path: str, payload=None, **kwargs) -> requests.Response:
        headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
        data = None if payload is None else json.dumps(payload, default=float)
        return self.request(method, path, data=data, headers=headers, **kwargs)

    def put(self, path: str, payload=None, **kwargs) -> requests.Response:
        return self.send("PUT", path, payload, **kwargs)

    def post(self, path: str, payload=None, **kwargs) -> requests.Response:
        return self.send("POST", path, payload, **kwargs)

    def ok(self, path: str, **kwargs):
        response = self.get(path, **kwargs)
        assert response.status_code == 200, (response.status_code, response.text[:300])
        return body(response)

    def order(self, order_id: int, expand: str = ALL_EXPANDS) -> dict:
        return self.ok(f"orders/{order_id}?expand={expand}&cache=refresh")["Order"]

    # test-only routes (no auth)
    def test(self, method: str, path: str, payload=None) -> requests.Response:
        return requests.request(
            method, f"{self.base}/_test/{path.lstrip('/')}", json=payload, timeout=10
        )

    def config(self, **knobs) -> dict:
        response = self.test("POST", "config", knobs)
        assert response.status_code == 200, response.text
        return response.json()

    def raw_state(self) -> dict:
        return self.test("GET", "state").json()

    def create_order(self, **fields) -> dict:
        payload = {"user_id": 12, "lines": [{"sku": "SBX-MUG-11OZ", "quantity": 1, "price": 10}]}
        payload.update(fields)
        response = self.test("POST", "orders", payload)
        assert response.status_code == 201, response.text
        return body(response)["Order"]


class Receiver:
    """A local webhook endpoint recording what it receives."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[dict, bytes]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                owner.received.append((dict(self.headers.items()), self.rfile.read(length)))
                self.send_response(owner.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/znode"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def events(self) -> list[dict]:
        return [json.loads(raw) for _, raw in self.received]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.events()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
