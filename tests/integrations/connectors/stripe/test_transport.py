"""The SDK's transport on urllib3, against real local HTTP servers: answers as requests
gave them, the SDK's retry rule for network errors, proxies, no redirects."""

import gzip
import http.server
import json
import socket
import threading
import time
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
import stripe

from integrations.connectors.stripe.transport import Urllib3Client


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list  # (request line, headers, body) per request, set per server

    def log_message(self, *args):  # quiet
        pass

    def _answer(self, status, body, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append((self.requestline, dict(self.headers), body))
        target = urlsplit(self.path)  # a proxy is sent the whole URL
        path = target.path + (f"?{target.query}" if target.query else "")
        name = target.path.rsplit("/", 1)[-1]
        if name == "drop" and len(self.server.seen) == 1:
            self.close_connection = True  # first attempt: the connection dies unanswered
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if name == "slow":
            time.sleep(1.0)
        if name == "redirect":
            return self._answer(302, b"", [("Location", "/v1/ok")])
        answer = json.dumps(
            {"object": "thing", "id": "th_1", "path": path, "body": body.decode()}
        ).encode()
        headers = [("Content-Type", "application/json"), ("Request-Id", "req_42")]
        if "gzip" in (self.headers.get("Accept-Encoding") or ""):
            answer = gzip.compress(answer)
            headers.append(("Content-Encoding", "gzip"))
        self._answer(200, answer, headers)

    do_GET = do_POST = _handle


@contextmanager
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.seen = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("no_proxy", raising=False)


def test_get_answers_body_status_and_headers_decoded():
    with server() as (httpd, base):
        body, status, headers = Urllib3Client().request(
            "get", f"{base}/v1/ok?limit=3", {"Authorization": "Bearer sk_test_x"}
        )
    assert status == 200
    assert json.loads(body)["path"] == "/v1/ok?limit=3"  # gzip decoded, as requests does
    assert headers["request-id"] == "req_42"  # looked up in any case, as the SDK does
    line, sent, _ = httpd.seen[0]
    assert line == "GET /v1/ok?limit=3 HTTP/1.1"
    assert sent["Authorization"] == "Bearer sk_test_x"
    assert "gzip" in sent["Accept-Encoding"]


def test_post_sends_the_form_body_and_headers():
    with server() as (httpd, base):
        body, status, _ = Urllib3Client().request(
            "post",
            f"{base}/v1/things",
            {"Content-Type": "application/x-www-form-urlencoded", "Idempotency-Key": "k1"},
            "amount=1999&currency=usd",
        )
    assert (status, json.loads(body)["body"]) == (200, "amount=1999&currency=usd")
    assert httpd.seen[0][1]["Idempotency-Key"] == "k1"


def test_a_redirect_is_answered_not_followed():
    with server() as (httpd, base):
        _, status, headers = Urllib3Client().request("get", f"{base}/v1/redirect", {})
    assert (status, headers["Location"], len(httpd.seen)) == (302, "/v1/ok", 1)


def test_a_refused_connection_is_a_retried_network_error():
    with pytest.raises(stripe.APIConnectionError) as raised:
        Urllib3Client(timeout=(1, 1)).request("get", f"http://127.0.0.1:{free_port()}/v1/x", {})
    assert raised.value.should_retry is True
    assert "NewConnectionError" in str(raised.value)


def test_a_read_timeout_is_a_retried_network_error():
    with server() as (_, base), pytest.raises(stripe.APIConnectionError) as raised:
        Urllib3Client(timeout=(1, 0.2)).request("get", f"{base}/v1/slow", {})
    assert raised.value.should_retry is True


def test_the_sdk_retries_a_dropped_connection_and_reads_the_answer():
    with server() as (httpd, base):
        client = stripe.StripeClient(
            "sk_test_x",
            base_addresses={"api": base},
            max_network_retries=1,
            http_client=Urllib3Client(timeout=(1, 2)),
        )
        answer = client.raw_request("get", "/v1/drop")
    assert json.loads(answer.body)["path"] == "/v1/drop"
    assert len(httpd.seen) == 2  # the dropped attempt, then the retry


def test_a_bad_url_is_not_retried():
    with pytest.raises(stripe.APIConnectionError) as raised:
        Urllib3Client().request("get", "http://[::1/v1/x", {})
    assert raised.value.should_retry is False


def test_the_environment_proxy_carries_the_request(monkeypatch):
    with server() as (proxy, proxy_url):
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        _, status, _ = Urllib3Client().request("get", "http://api.stripe.test/v1/ok", {})
    assert status == 200
    assert proxy.seen[0][0] == "GET http://api.stripe.test/v1/ok HTTP/1.1"  # via the proxy


def test_no_proxy_exempts_a_host(monkeypatch):
    with server() as (proxy, proxy_url), server() as (direct, base):
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        _, status, _ = Urllib3Client().request("get", f"{base}/v1/ok", {})
    assert (status, len(proxy.seen), len(direct.seen)) == (200, 0, 1)


def test_the_sdk_proxy_option_wins_over_no_proxy(monkeypatch):
    with server() as (proxy, proxy_url), server() as (direct, base):
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        _, status, _ = Urllib3Client(proxy=proxy_url).request("get", f"{base}/v1/ok", {})
    assert (status, len(proxy.seen), len(direct.seen)) == (200, 1, 0)


def test_close_drops_the_pools_and_the_client_still_works():
    with server() as (httpd, base):
        client = Urllib3Client()
        client.request("get", f"{base}/v1/ok", {})
        client.close()
        _, status, _ = client.request("get", f"{base}/v1/ok", {})
    assert (status, len(httpd.seen)) == (200, 2)
