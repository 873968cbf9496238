"""Webhook intake throughput, measured against a bare Django view on the same server.

Run from the repository root::

    .venv/bin/python benchmarks/intake.py [--rounds 3] [--requests-per-round 4000]

(``--help`` lists every option; ``--settings`` runs the same measurement against a
variant settings module, e.g. one that imports ``benchmarks.settings`` and changes
one thing.)

Method
------
1. Create a throw-away PostgreSQL database (``bench_intake_<pid>``), migrate it and
   create one Stripe connection with a webhook secret (``connection_create``).
2. Start ONE gunicorn server (``--workers`` processes, default 2; ``--threads``
   threads each, default 8, i.e. the gthread worker the README recommends, or the
   sync worker with ``--threads 1``) on a free port of 127.0.0.1 with
   ``DJANGO_SETTINGS_MODULE=benchmarks.settings``: the product's settings (DEBUG off,
   persistent DB connections, LOG_LEVEL=WARNING, the ORM broker, the default
   INBOX_NUDGE_INTERVAL and group commit) whose URLconf adds ``POST /bare/``, a
   csrf-exempt view that returns a small JsonResponse and does nothing else. Both
   targets are served by the product's WSGI application (``config.wsgi``) in the
   same worker processes; the bare view takes the full middleware stack, the webhook
   endpoint its fast lane (see config/wsgi.py) - which is part of what is measured.
   The difference is the cost of intake itself (signature check, JSON parse, one
   INSERT shared with concurrent requests, the debounced django-q2 nudge after
   commit). No qcluster runs; nudge tasks just accumulate in the ORM queue table.
3. The load generator is ``--concurrency`` client processes speaking raw HTTP/1.1 over
   sockets. Every request (a unique ``evt_...`` Stripe event, pretty-printed like
   Stripe sends it, with its ``Stripe-Signature``) is built before a phase starts, so
   a client only does ``sendall`` + parse the status line and Content-Length. Bodies
   are signed with the current timestamp just before each phase, far inside Stripe's
   300 s tolerance. Clients keep connections alive when the server allows it (the
   gthread worker does; the *sync* worker answers ``Connection: close``, so there
   every request, to both targets alike, pays a TCP connect on loopback). Clients take
   the next request from a shared counter, so no client idles while others still
   have work. (wrk is not used: it cannot send an exact set of unique, pre-signed
   requests and tell which of them were accepted.)
4. After a warm-up (both targets), the targets are driven alternately: bare, intake,
   bare, intake, ... (``--rounds`` of each, ``--requests-per-round`` each), so noise
   on the machine hits both alike. Latency is measured per request in the client
   (send to last byte, including the connect); throughput per target is its requests
   divided by the summed wall time of its rounds.
5. Checks: every intake request answered 200 must have exactly one inbox row
   (``integrations_inboundevent`` rows for the connection == 200 responses, external
   ids distinct and equal to the ids that were accepted), and there must be no
   non-200 responses or transport errors on either target (a fast rejection would
   inflate the numbers). The exit status is 1 if any check fails.

Reading the result
------------------
The table shows req/s, p50 and p99 (ms) per target over all measured rounds, and CPU
time per request read from /proc: of the gunicorn workers ("server"), of the client
processes ("clients", the load generator's own cost), and of the whole machine
("machine": everything busy, so PostgreSQL, and other load on a shared machine, too).
On a small machine the server is CPU-bound, so req/s follows roughly 1/machine CPU
per request; "server" is the least noisy number for comparing two versions of the
intake code, and the clients' share shows they are not what limits the run. The
last line is::

    RESULT intake ratio=<intake req/s / bare req/s> rps=<intake req/s> p99_ms=<p99>

The ratio is what to track: it is the share of bare-Django throughput the intake path
keeps on the same machine and server configuration, and is much less sensitive to the
machine than the absolute req/s. 1.00 would mean intake is free; 0.50 means an intake
request costs twice a bare one. It still moves with other load on a shared machine
(look at "machine" vs "server" + "clients"); compare runs on a quiet machine, or
several runs. Nothing here asserts on timings.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing as mp
import os
import secrets
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

HOST = "127.0.0.1"
BARE_PATH = "/bare/"
CONNECTION_NAME = "stripe-bench"
TOLERANCE_SECONDS = 300
_SOCKET_TIMEOUT = struct.pack("ll", 60, 0)  # struct timeval: 60 s


# --- raw HTTP/1.1 client ------------------------------------------------------------------
class _ServerClosed(ConnectionError):
    """The server closed the connection before a complete response."""


class RawHttpClient:
    """Minimal HTTP/1.1 client for pre-built requests: keep-alive when the server allows.

    Much cheaper per request than http.client, which matters on a 2-core machine where
    the load generator shares the CPUs with the server and PostgreSQL.
    """

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self.sock: socket.socket | None = None
        self.buffer = bytearray()
        self.connects = 0

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.buffer.clear()

    def _connect(self) -> socket.socket:
        # A blocking socket with kernel-side timeouts: Python's own timeout mode would
        # add a poll() before every send and recv (and create_connection a getaddrinfo).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _SOCKET_TIMEOUT)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _SOCKET_TIMEOUT)
        try:
            sock.connect(self.address)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self.buffer.clear()
        self.connects += 1
        return sock

    def request(self, data: bytes) -> int:
        """Send one complete request; return the response status code."""
        sock = self.sock
        reused = sock is not None
        if sock is None:
            sock = self._connect()
        try:
            sock.sendall(data)
            status, keep_alive = self._read_response(sock)
        except (_ServerClosed, ConnectionResetError, BrokenPipeError):
            self.close()
            if not reused:
                raise
            # An idle keep-alive connection the server had already dropped: retry once.
            sock = self._connect()
            sock.sendall(data)
            status, keep_alive = self._read_response(sock)
        if not keep_alive:
            self.close()
        return status

    def _read_response(self, sock: socket.socket) -> tuple[int, bool]:
        buffer = self.buffer
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            chunk = sock.recv(65536)
            if not chunk:
                raise _ServerClosed("connection closed before the response headers")
            buffer += chunk
        head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
        del buffer[: end + 4]
        version, code = head[0].split(" ", 2)[:2]
        keep_alive = version == "HTTP/1.1"
        length: int | None = None
        for line in head[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection":
                tokens = value.strip().lower()
                keep_alive = "keep-alive" in tokens or (
                    version == "HTTP/1.1" and "close" not in tokens
                )
        if length is None:  # body delimited by the end of the connection
            while chunk := sock.recv(65536):
                buffer += chunk
            buffer.clear()
            return int(code), False
        while len(buffer) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise _ServerClosed("connection closed inside the response body")
            buffer += chunk
        del buffer[:length]
        return int(code), keep_alive


# --- client processes -------------------------------------------------------------------
@dataclass
class PhaseResult:
    """What one client process did in one phase."""

    started: float
    finished: float
    cpu_seconds: float
    latencies: array  # seconds, one per completed request (any status)
    statuses: Counter  # status code -> count; 0 = transport error
    failures: list[tuple[int, int]]  # (request index, status) for every non-200
    errors: list[str]
    connects: int


def client_main(pipe: Pipe, go: MpEvent, counter: Synchronized, host: str, port: int) -> None:
    """One load-generating process: per phase, receive requests, wait for go, drain."""
    client = RawHttpClient(host, port)
    lock = counter.get_lock()
    while True:
        requests: list[bytes] | None = pipe.recv()
        if requests is None:
            break
        total = len(requests)
        latencies: array = array("d")
        statuses: Counter = Counter()
        failures: list[tuple[int, int]] = []
        errors: list[str] = []
        connects_before = client.connects
        pipe.send("ready")
        go.wait()
        cpu_before = os.times()
        started = time.perf_counter()
        while True:
            with lock:
                index = counter.value
                counter.value = index + 1
            if index >= total:
                break
            t0 = time.perf_counter()
            try:
                status = client.request(requests[index])
            except OSError as exc:
                client.close()
                status = 0
                if len(errors) < 5:
                    errors.append(f"{type(exc).__name__}: {exc}")
            else:
                latencies.append(time.perf_counter() - t0)
            statuses[status] += 1
            if status != 200:
                failures.append((index, status))
        finished = time.perf_counter()
        cpu_after = os.times()
        cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
        pipe.send(
            PhaseResult(
                started=started,
                finished=finished,
                cpu_seconds=cpu,
                latencies=latencies,
                statuses=statuses,
                failures=failures,
                errors=errors,
                connects=client.connects - connects_before,
            )
        )
    client.close()


class ClientPool:
    """``size`` client processes that run one phase at a time, all together."""

    def __init__(self, size: int, port: int) -> None:
        ctx = mp.get_context("spawn")  # no inherited Django/DB state in the clients
        self.go = ctx.Event()
        self.counter = ctx.Value("q", 0)
        self.pipes: list[Pipe] = []
        self.processes: list[Any] = []
        for number in range(size):
            parent, child = ctx.Pipe()
            process = ctx.Process(
                target=client_main,
                args=(child, self.go, self.counter, HOST, port),
                name=f"bench-client-{number}",
                daemon=True,
            )
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)

    def load(self, requests: list[bytes]) -> None:
        """Hand every client the phase's requests; returns once all are waiting for go."""
        self.go.clear()
        for pipe in self.pipes:
            pipe.send(requests)
        for pipe in self.pipes:
            if pipe.recv() != "ready":
                raise RuntimeError("client process did not get ready")
        with self.counter.get_lock():
            self.counter.value = 0

    def run(self) -> list[PhaseResult]:
        """Start the loaded phase and wait until all its requests are answered."""
        self.go.set()
        return [pipe.recv() for pipe in self.pipes]

    def terminate(self) -> None:
        """Stop the clients now, even in the middle of a phase (error or interrupt)."""
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        for process in self.processes:
            process.join(timeout=5)

    def close(self) -> None:
        """Let idle clients finish cleanly."""
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)


# --- events -----------------------------------------------------------------------------
@dataclass
class WebhookEvent:
    """One webhook delivery: its Stripe event id and unsigned JSON body."""

    event_id: str
    body: str


def stripe_event(seq: int) -> WebhookEvent:
    """A payment_intent.succeeded event shaped (and indented) like Stripe's own."""
    event_id = "evt_" + uuid.uuid4().hex[:24]
    now = int(time.time())
    intent_id = "pi_" + uuid.uuid4().hex[:24]
    payload = {
        "id": event_id,
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": now,
        "data": {
            "object": {
                "id": intent_id,
                "object": "payment_intent",
                "amount": 1999 + seq % 5000,
                "amount_capturable": 0,
                "amount_received": 1999 + seq % 5000,
                "capture_method": "automatic_async",
                "client_secret": f"{intent_id}_secret_{uuid.uuid4().hex[:20]}",
                "confirmation_method": "automatic",
                "created": now - 5,
                "currency": "usd",
                "customer": "cus_" + uuid.uuid4().hex[:14],
                "description": f"Znode order ORD-{100000 + seq}",
                "latest_charge": "ch_" + uuid.uuid4().hex[:24],
                "livemode": False,
                "metadata": {"znode_order_number": f"ORD-{100000 + seq}", "store": "main"},
                "payment_method": "pm_" + uuid.uuid4().hex[:24],
                "payment_method_types": ["card"],
                "receipt_email": f"buyer{seq}@example.com",
                "status": "succeeded",
            }
        },
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": "req_" + uuid.uuid4().hex[:14], "idempotency_key": str(uuid.uuid4())},
        "type": "payment_intent.succeeded",
    }
    return WebhookEvent(event_id=event_id, body=json.dumps(payload, indent=2))


def build_requests(events: list[WebhookEvent], *, path: str, port: int, secret: str) -> list[bytes]:
    """Sign ``events`` now and render each as one complete HTTP/1.1 request."""
    import stripe

    timestamp = int(time.time())
    rendered: list[bytes] = []
    for event in events:
        body = event.body.encode()
        signature = stripe.WebhookSignature.generate_signature_header(
            event.body, secret, timestamp=timestamp
        )
        head = (
            f"POST {path} HTTP/1.1\r\n"
            f"Host: {HOST}:{port}\r\n"
            "User-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)\r\n"
            "Accept: */*; q=0.5, application/xml\r\n"
            "Cache-Control: no-cache\r\n"
            "Content-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"Stripe-Signature: {signature}\r\n"
            "\r\n"
        )
        rendered.append(head.encode("latin-1") + body)
    return rendered


# --- database and server ----------------------------------------------------------------
def admin_execute(postgres_url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{postgres_url}/postgres", autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid: int) -> float:
    """user + system CPU of a process (all its threads, living or ended), from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs spent not idle since boot (everything on the machine)."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return math.nan
    # user nice system idle iowait irq softirq [steal ...]: steal is not our CPU time.
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:7]) - idle) / _CLOCK_TICKS


def child_pids(parent: int) -> list[int]:
    pids = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            pids.append(int(entry.name))
    return pids


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def bench_environment(database_url: str, workers: int, settings: str) -> dict[str, str]:
    """Environment shared by this process (setup, checks) and the gunicorn server."""
    from cryptography.fernet import Fernet

    return {
        "DJANGO_SETTINGS_MODULE": settings,
        "DATABASE_URL": database_url,
        "DEBUG": "false",
        # Plain HTTP on loopback (production sits behind TLS); without DEBUG the
        # default would redirect every request to HTTPS.
        "SECURE_SSL_REDIRECT": "false",
        "ALLOWED_HOSTS": f"{HOST},localhost",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "CONN_MAX_AGE": "60",
        "LOG_LEVEL": "WARNING",
        "STRIPE_WEBHOOK_TOLERANCE": str(TOLERANCE_SECONDS),
        "REDIS_URL": "",  # the ORM broker, as a deployment without Redis runs it
        "Q_SYNC": "false",
        "WEB_CONCURRENCY": str(workers),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }


def prepare_database(secret: str) -> tuple[int, str]:
    """Migrate the bench DB and create the Stripe connection; returns (pk, webhook path)."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from integrations.services.connections import connection_create

    call_command("migrate", interactive=False, verbosity=0)
    connection = connection_create(
        name=CONNECTION_NAME,
        kind="stripe",
        credentials={"api_key": "sk_test_51BENCHMARKabcdefghijkl"},
        webhook_secrets=[secret],
    )
    connections.close_all()
    return connection.pk, connection.webhook_path


class Server:
    """One gunicorn master (sync or gthread workers), logging to a file."""

    def __init__(
        self, *, port: int, workers: int, threads: int, env: dict[str, str], log_path: Path
    ) -> None:
        self.port = port
        self.log_path = log_path
        self.log = log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi:application",
                "--chdir",
                str(REPO),
                "--bind",
                f"{HOST}:{port}",
                "--workers",
                str(workers),
                "--worker-class",
                "gthread" if threads > 1 else "sync",
                "--threads",
                str(threads),
                "--log-level",
                "warning",
                "--timeout",
                "60",
            ],
            cwd=REPO,
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        import http.client

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"gunicorn exited with {self.process.returncode}:\n{self.logs()}"
                )
            conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
            try:
                conn.request("GET", "/health/live/")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            finally:
                conn.close()
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer /health/live/ within {timeout:.0f}s")

    def worker_cpu_seconds(self) -> float:
        return sum(process_cpu_seconds(pid) for pid in child_pids(self.process.pid))

    def logs(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log.close()


# --- measurement ------------------------------------------------------------------------
@dataclass
class Phase:
    """One measured (or warm-up) batch of requests against one target."""

    name: str
    target: str  # "bare" or "intake"
    events: list[WebhookEvent]
    measured: bool = True
    results: list[PhaseResult] = field(default_factory=list)
    server_cpu: float = 0.0  # CPU seconds the gunicorn workers used during the phase
    machine_cpu: float = 0.0  # busy CPU seconds of the whole machine during the phase

    @property
    def seconds(self) -> float:
        return max(r.finished for r in self.results) - min(r.started for r in self.results)

    @property
    def statuses(self) -> Counter:
        total: Counter = Counter()
        for result in self.results:
            total.update(result.statuses)
        return total


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class Summary:
    target: str
    requests: int
    non_200: int
    rps: float
    p50_ms: float
    p99_ms: float
    client_cpu_us: float
    server_cpu_us: float
    machine_cpu_us: float


def summarize(target: str, phases: list[Phase]) -> Summary:
    mine = [p for p in phases if p.target == target and p.measured]
    requests = sum(len(p.events) for p in mine)
    seconds = sum(p.seconds for p in mine)
    latencies = sorted(x for p in mine for r in p.results for x in r.latencies)
    cpu = sum(r.cpu_seconds for p in mine for r in p.results)
    per_request = 1e6 / requests if requests else math.nan
    non_200 = sum(n for p in mine for s, n in p.statuses.items() if s != 200)
    return Summary(
        target=target,
        requests=requests,
        non_200=non_200,
        rps=requests / seconds if seconds else math.nan,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        client_cpu_us=cpu * per_request,
        server_cpu_us=sum(p.server_cpu for p in mine) * per_request,
        machine_cpu_us=sum(p.machine_cpu for p in mine) * per_request,
    )


def make_phases(args: argparse.Namespace) -> list[Phase]:
    seq = iter(range(10**9))

    def events(count: int) -> list[WebhookEvent]:
        return [stripe_event(next(seq)) for _ in range(count)]

    phases = [
        Phase("warm-up", "bare", events(args.warmup), measured=False),
        Phase("warm-up", "intake", events(args.warmup), measured=False),
    ]
    for number in range(1, args.rounds + 1):
        phases.append(Phase(f"round {number}", "bare", events(args.requests_per_round)))
        phases.append(Phase(f"round {number}", "intake", events(args.requests_per_round)))
    ids = [e.event_id for p in phases for e in p.events]
    if len(set(ids)) != len(ids):
        raise RuntimeError("generated event ids are not unique")
    return phases


def run_phases(
    phases: list[Phase], pool: ClientPool, server: Server, *, webhook_path: str, secret: str
) -> None:
    for phase in phases:
        path = webhook_path if phase.target == "intake" else BARE_PATH
        # Signed now, so every signature is seconds old when it is checked.
        requests = build_requests(phase.events, path=path, port=server.port, secret=secret)
        pool.load(requests)
        server_cpu, machine_cpu = server.worker_cpu_seconds(), machine_busy_seconds()
        phase.results = pool.run()
        phase.machine_cpu = machine_busy_seconds() - machine_cpu
        phase.server_cpu = server.worker_cpu_seconds() - server_cpu
        statuses = phase.statuses
        others = {s: n for s, n in sorted(statuses.items()) if s != 200}
        connects = sum(r.connects for r in phase.results)
        print(
            f"  {phase.name:<9} {phase.target:<6} {len(phase.events):>6} req "
            f"{phase.seconds:6.2f} s {len(phase.events) / phase.seconds:8.0f} req/s"
            f"  connects={connects}" + (f"  NON-200={others}" if others else ""),
            flush=True,
        )
        if phase.seconds > TOLERANCE_SECONDS / 2:
            print(f"  warning: a phase this long risks Stripe's {TOLERANCE_SECONDS} s tolerance")


def verify_storage(phases: list[Phase], connection_pk: int) -> list[str]:
    """Every 200 intake answer has exactly one inbox row; returns problems found."""
    from django.db import connections
    from django_q.models import OrmQ

    from integrations.models import InboundEvent

    problems: list[str] = []
    accepted: set[str] = set()
    for phase in phases:
        rejected = {index for r in phase.results for index, _ in r.failures}
        errors = [e for r in phase.results for e in r.errors]
        others = {s: n for s, n in phase.statuses.items() if s != 200}
        if others:
            problems.append(
                f"{phase.name} {phase.target}: non-200 responses {others}"
                + (f" (transport errors: {errors})" if errors else "")
            )
        if phase.target == "intake":
            accepted.update(
                e.event_id for index, e in enumerate(phase.events) if index not in rejected
            )
    rows = InboundEvent.objects.filter(connection_id=connection_pk)
    stored = list(rows.values_list("external_id", flat=True))
    distinct = set(stored)
    queued = OrmQ.objects.count()
    print(
        f"storage: 200 responses={len(accepted)} inbox rows={len(stored)} "
        f"distinct external ids={len(distinct)} nudge tasks queued={queued}"
    )
    if len(stored) != len(accepted):
        problems.append(f"inbox rows ({len(stored)}) != intake 200 responses ({len(accepted)})")
    if len(distinct) != len(stored):
        problems.append(f"{len(stored) - len(distinct)} duplicate external ids in the inbox")
    if distinct != accepted:
        problems.append(
            f"stored ids differ from accepted ids: {len(accepted - distinct)} accepted but "
            f"missing, {len(distinct - accepted)} stored but not accepted"
        )
    connections.close_all()
    return problems


def server_log_problems(text: str) -> list[str]:
    """Lines of the server log that signal trouble (the server logs at WARNING+)."""
    marks = ("ERROR", "CRITICAL", "Traceback", "WARNING", "TIMEOUT", "Exception")
    return [line for line in text.splitlines() if any(m in line for m in marks)]


# --- entry point ------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Webhook intake req/s vs a bare Django view (same gunicorn server).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--requests-per-round", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per target")
    parser.add_argument("--warmup", type=int, default=600, help="warm-up requests per target")
    parser.add_argument("--concurrency", type=int, default=8, help="client processes")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument(
        "--threads",
        type=int,
        default=8,
        help="threads per worker; above 1 uses gunicorn's gthread worker (the deployment "
        "the README recommends: webhook intake waits on commits, threads overlap them); "
        "1 uses the sync worker",
    )
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench DB")
    parser.add_argument(
        "--settings",
        default="benchmarks.settings",
        help="settings module for setup and server; must serve /bare/ (to try a variant, "
        "import benchmarks.settings and change one thing)",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"),
        help="server URL (no database name) to create the bench database on",
    )
    args = parser.parse_args(argv)
    for name in ("requests_per_round", "rounds", "concurrency", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    return args


@contextlib.contextmanager
def terminate_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit so the cleanup below still runs."""

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    dbname = f"bench_intake_{os.getpid()}"
    secret = "whsec_" + secrets.token_hex(16)
    server: Server | None = None
    pool: ClientPool | None = None
    db_created = False
    tmp = tempfile.TemporaryDirectory(prefix="bench_intake_")
    with terminate_as_exit():
        try:
            admin_execute(args.postgres, f'CREATE DATABASE "{dbname}"')
            db_created = True
            env = bench_environment(f"{args.postgres}/{dbname}", args.workers, args.settings)
            os.environ.update(env)
            connection_pk, webhook_path = prepare_database(secret)

            port = free_port()
            server = Server(
                port=port,
                workers=args.workers,
                threads=args.threads,
                env=env,
                log_path=Path(tmp.name) / "gunicorn.log",
            )
            server.wait_ready()
            import gunicorn

            print(
                f"intake benchmark: gunicorn {gunicorn.__version__} {args.workers} "
                f"{'gthread x' + str(args.threads) if args.threads > 1 else 'sync'} "
                f"workers on {HOST}:{port}, {args.concurrency} client processes, "
                f"{os.cpu_count()} CPUs, db {dbname}" + (" (kept)" if args.keep_db else "")
            )
            print(
                f"  {args.rounds} rounds x {args.requests_per_round} requests per target, "
                f"alternating bare/intake, after {args.warmup} warm-up requests each"
            )
            phases = make_phases(args)
            pool = ClientPool(args.concurrency, port)
            run_started = time.monotonic()
            run_phases(phases, pool, server, webhook_path=webhook_path, secret=secret)
            run_seconds = time.monotonic() - run_started
            pool.close()
            pool = None

            problems = verify_storage(phases, connection_pk)
            log_lines = server_log_problems(server.logs())
            if log_lines:
                print(f"server log: {len(log_lines)} warning/error lines, first ones:")
                for line in log_lines[:10]:
                    print(f"  {line[:300]}")
            else:
                print("server log: no warnings or errors")

            bare, intake = summarize("bare", phases), summarize("intake", phases)
            print(f"load phase: {run_seconds:.1f} s (signatures re-signed before each phase)")
            print()
            print(
                f"{'target':<8}{'requests':>9}{'non-200':>8}{'req/s':>8}{'p50 ms':>8}"
                f"{'p99 ms':>8}   CPU us/req: {'server':>6}{'clients':>8}{'machine':>8}"
            )
            for s in (bare, intake):
                print(
                    f"{s.target:<8}{s.requests:>9}{s.non_200:>8}{s.rps:>8.0f}{s.p50_ms:>8.2f}"
                    f"{s.p99_ms:>8.2f}{'':>15}{s.server_cpu_us:>6.0f}{s.client_cpu_us:>8.0f}"
                    f"{s.machine_cpu_us:>8.0f}"
                )
            print(
                "(CPU us/req: gunicorn workers, load-generator processes, and every busy CPU "
                "of the machine, PostgreSQL and other tenants included)"
            )
            print(
                f"an intake request costs {intake.server_cpu_us / bare.server_cpu_us:.1f}x the "
                f"server CPU and {intake.machine_cpu_us / bare.machine_cpu_us:.1f}x the machine "
                "CPU of a bare one"
            )
            print()
            ratio = intake.rps / bare.rps
            if problems:
                print("CHECK FAILED:")
                for problem in problems:
                    print(f"  - {problem}")
            else:
                print("check: ok (every accepted intake request stored exactly once, all 200)")
            print(
                f"RESULT intake ratio={ratio:.2f} rps={intake.rps:.0f} p99_ms={intake.p99_ms:.1f}",
                flush=True,
            )
            return 1 if problems else 0
        finally:
            if pool is not None:  # only still set when the run did not finish
                pool.terminate()
            if server is not None:
                server.stop()
            if db_created:
                with contextlib.suppress(Exception):
                    from django.db import connections

                    connections.close_all()
                if not args.keep_db:
                    admin_execute(args.postgres, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
