"""How fast the sandbox's Stripe seeds a large payout and lists it (not a test: a measurement).

    .venv/bin/python -m tests.sandbox.payout_bench [--count 50000] [--refunds-every 10]

Starts the sandbox as its own process (``python -m sandbox``) on a free port, seeds
``--count`` payments into one automatic payout (``POST /stripe/_test/payouts/seed``), then
reads the payout back as the reconciliation import does: ``GET /v1/balance_transactions?
payout=...&limit=100&expand[]=data.source``, page after page with ``starting_after``, each
page decoded in full. Prints the seed's rate, the listing's rate, and the share of the
listing this client spent decoding JSON (the rest is the server and HTTP); checks that the
nets sum to zero and that every payment was listed once. Both processes share the machine:
on two cores other work moves the numbers (print ``uptime`` alongside).
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import subprocess
import sys
import time
from urllib.parse import urlencode

KEY = "sk_test_payout_bench_key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Client:
    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.decoding = 0.0

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        headers = {"Authorization": f"Bearer {KEY}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.connection.request(method, path, body=data, headers=headers)
        response = self.connection.getresponse()
        raw = response.read()
        if response.status != 200:
            raise SystemExit(f"{method} {path}: {response.status} {raw[:300]!r}")
        started = time.perf_counter()
        decoded = json.loads(raw)
        self.decoding += time.perf_counter() - started
        return decoded


def resident_mb(pid: int) -> float:
    """The process's resident memory (Linux), 0 where /proc is not there."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def wait_for(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the sandbox did not start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--refunds-every", type=int, default=10)
    args = parser.parse_args(argv)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(port)
        client = Client(port)
        client.call("POST", "/_sandbox/reset/stripe")
        started = time.perf_counter()
        seeded = client.call(
            "POST",
            "/stripe/_test/payouts/seed",
            {
                "count": args.count,
                "currency": "usd",
                "amount": 1000,
                "metadata": {"znode_order_number": "BENCH-{i}", "integration": "bench"},
                "refunds_every": args.refunds_every,
            },
        )
        seeding = time.perf_counter() - started
        print(
            f"seed: {args.count:,} payments in {seeding:.2f} s = "
            f"{args.count / seeding:,.0f} payments/s (payout {seeded['amount']:,} "
            f"{seeded['currency']}; the sandbox now holds {resident_mb(server.pid):,.0f} MB)"
        )
        client.decoding = 0.0
        rows = pages = net = charges = 0
        after = None
        started = time.perf_counter()
        while True:
            query = [("payout", seeded["payout"]), ("limit", "100"), ("expand[]", "data.source")]
            if after:
                query.append(("starting_after", after))
            page = client.call("GET", "/stripe/v1/balance_transactions?" + urlencode(query))
            pages += 1
            rows += len(page["data"])
            net += sum(t["net"] for t in page["data"])
            charges += sum(1 for t in page["data"] if t["source"]["object"] == "charge")
            if not page["has_more"]:
                break
            after = page["data"][-1]["id"]
        listing = time.perf_counter() - started
        print(
            f"list: {rows:,} transactions in {pages} pages in {listing:.2f} s = "
            f"{rows / listing:,.0f} transactions/s; this client decoding JSON "
            f"{client.decoding:.2f} s ({client.decoding / listing:.0%}), the server and "
            f"HTTP {rows / (listing - client.decoding):,.0f} transactions/s"
        )
        if net != 0 or charges != args.count:
            raise SystemExit(f"wrong listing: nets sum to {net}, {charges} charges")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
