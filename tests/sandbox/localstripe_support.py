"""localstripe (GPL-3.0) as a separate process for the fidelity tests, and a webhook receiver
for the Stripe tests.

Run as a script, this file is the wrapper of /work/shared/reference/localstripe.md §2.1: it
serves localstripe on 127.0.0.1 only (the stock CLI binds every interface) with the pickle
persistence disabled (the stock CLI writes the whole store to /tmp/localstripe.pickle after
every write). Imported, it gives ``LocalStripe``, which starts, resets and stops that process;
localstripe itself is never imported into the test process.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

API_KEY = "sk_test_fidelity_key"


def _serve(port: int) -> None:  # pragma: no cover - runs in the child process
    import localstripe.resources as resources
    from aiohttp import web
    from localstripe.server import app

    resources.Store.dump_to_disk = lambda self: None  # class attribute: the store stays picklable
    resources.Store.try_load_from_disk = lambda self: None
    web.run_app(app, host="127.0.0.1", port=port, print=None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalStripe:
    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(tempfile.mkstemp(prefix="localstripe-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> LocalStripe:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, __file__, str(self.port)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with contextlib.suppress(OSError):
                request = urllib.request.Request(
                    f"{self.url}/v1/customers", headers={"Authorization": f"Bearer {API_KEY}"}
                )
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"localstripe did not start on {self.url}:\n{self.log.read_text()[-3000:]}"
        )

    def _call(self, method: str, path: str, body: dict | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    def reset(self) -> None:
        self._call("DELETE", "/_config/data")

    def add_webhook(self, name: str, url: str, secret: str) -> None:
        self._call("POST", f"/_config/webhooks/{name}", {"url": url, "secret": secret})

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.process = None


class WebhookReceiver:
    """A local HTTP endpoint in a thread that records every webhook delivery. It answers
    the statuses in ``statuses`` first, then 200 (or ``default_status``)."""

    def __init__(self, statuses: tuple[int, ...] = (), default_status: int = 200) -> None:
        self.statuses = list(statuses)
        self.default_status = default_status
        self.deliveries: list[dict] = []
        self.condition = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.condition:
                    status = (
                        receiver.statuses.pop(0) if receiver.statuses else receiver.default_status
                    )
                    receiver.deliveries.append(
                        {
                            "status": status,
                            "headers": dict(self.headers.items()),
                            "body": body,
                            "at": time.monotonic(),
                        }
                    )
                    receiver.condition.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def events(self, accepted_only: bool = True) -> list[dict]:
        with self.condition:
            return [
                json.loads(d["body"])
                for d in self.deliveries
                if not accepted_only or 200 <= d["status"] < 300
            ]

    def wait_for(self, predicate, timeout: float = 10.0) -> list[dict]:
        """Wait until ``predicate(deliveries)`` is true; returns the deliveries."""
        deadline = time.monotonic() + timeout
        with self.condition:
            while not predicate(self.deliveries):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; got {len(self.deliveries)} deliveries")
                self.condition.wait(left)
            return list(self.deliveries)

    def wait_for_types(self, *types: str, timeout: float = 10.0) -> list[dict]:
        """Wait for accepted deliveries of all ``types``; returns the accepted events."""

        def arrived(deliveries):
            seen = {json.loads(d["body"])["type"] for d in deliveries if 200 <= d["status"] < 300}
            return set(types) <= seen

        self.wait_for(arrived, timeout)
        return self.events()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
