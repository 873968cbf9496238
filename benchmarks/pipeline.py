"""Order-to-cash end to end: orders placed in the sandbox's Znode at fixed rates,
timed until Znode shows them paid and the ERP has their journal.

Run from the repository root (after ``make install``)::

    .venv/bin/python benchmarks/pipeline.py                 # every set-up, every rate
    .venv/bin/python benchmarks/pipeline.py --configs pg-redis --rates 5,20 --burst 0

(``--help`` lists every option.)

Method
------
For each set-up (``--configs``):

* ``sqlite``: the embedded default, as ``make run`` serves it: SQLite, the ORM broker,
  ``manage.py serve`` (the web app with one ``worker`` beside it), ``Q_WORKERS=1``.
* ``pg-orm``: the README's deployment: PostgreSQL, ``gunicorn config.wsgi -k gthread
  -w 2 --threads 8`` and ``manage.py worker`` (``Q_WORKERS=2``), the ORM broker.
* ``pg-redis``: the same with ``REDIS_URL`` set: Redis is the broker (and holds the
  outbound rate-limit buckets).

1. A fresh database (a throw-away PostgreSQL database ``bench_pipeline_<pid>``, or a
   SQLite file in a temporary folder) is migrated and wired with the operator's
   commands (``connection create`` for Znode, Stripe and the ERP, with their default
   rate limits; ``integration create`` with collection mode ``saved_method`` for
   payment setting 11; ``sync_customers`` links the store's users).
2. The sandbox (``python -m sandbox``, zero injected latency, no faults) runs in its
   own process; two Znode users have a card saved in its Stripe: 90 % of orders are
   placed for the one whose card pays, 10 % for the one whose card is declined.
   Znode 10 webhooks and Stripe webhooks are registered to the platform.
3. Orders are placed open-loop at each rate of ``--rates`` for ``--seconds`` (the
   schedule does not wait for the platform; a pool of threads sends them), then the
   run waits until every order has settled (``--settle-timeout``). Then a burst of
   ``--burst`` orders placed as fast as the sandbox takes them.
4. Times come from the sandbox, not from the platform's rows: the sandbox notes, by
   its own clock, when an order was placed, when Znode first showed it paid with its
   payment record (payment status Captured, the transaction id, a payment row naming
   it) or declined, and when the ERP first held its journal entry
   (``GET /_sandbox/milestones/<system>``; sandbox/system.py ``mark``). An order is
   *settled* when it is paid in Znode and journaled in the ERP, or shown declined.
5. CPU per settled order is read from /proc for the platform's processes (the web
   server and the worker with all their children), for the database server's
   processes (PostgreSQL; for SQLite it is inside the platform's processes) and for
   the sandbox, over each phase (placement start → last order settled).

Reading the result
------------------
Per phase: orders, placed → paid in Znode p50/p99, placed → journal in the ERP
p50/p99, settled orders per second (settled / (last settled - first placed)), the
backlog (orders placed and not yet settled when placement ended), and CPU ms per
settled order of the platform, of the database and of the sandbox. The baseline is
the sandbox in the same run: it serves exactly the calls the platform makes per
order (``calls`` is their count per settled order, from the sandbox's request
counter), so ``platform/sandbox`` says how many times the sandbox's own cost of
answering them the platform spends. Each phase ends with::

    RESULT pipeline config=<c> rate=<r|burst> p50_ms=… p99_ms=… settled_per_s=… cpu_ms_per_order=…

(p50/p99: placed → paid in Znode; cpu: the platform's processes, database excluded).
Nothing here asserts on timings; the exit status is 1 when an order did not settle
or settled wrongly (a declined order journaled, a paid one never journaled).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.intake import (
    _CLOCK_TICKS,
    admin_execute,
    free_port,
    percentile,
    terminate_as_exit,
)

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
STORE_DOMAIN = "sandbox-store.local"
STORE_KEY = "8f3b2c1e-5d4a-4b6e-9c7f-0a1b2c3d4e5f"
STRIPE_KEY = "sk_test_bench_platform_key"
ERP_TOKEN = "sandbox-erp-token"
SAVED_SETTING = 11
GOOD_USER, DECLINED_USER = 12, 13
SAVED_CARDS = {
    GOOD_USER: ("bob@example.com", "pm_card_visa"),
    DECLINED_USER: ("carla@example.com", "pm_card_chargeCustomerFail"),
}
CONFIGS = ("sqlite", "pg-orm", "pg-redis")
REDIS_DB_URL = "redis://127.0.0.1:6379/13"


# --- /proc ------------------------------------------------------------------------------
def _proc_table() -> dict[int, tuple[int, str, float]]:
    """pid → (parent pid, command name, CPU seconds of it and its reaped children)."""
    table = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text.rpartition(")")[2].split()
        cpu = sum(int(v) for v in fields[11:15]) / _CLOCK_TICKS
        table[int(entry.name)] = (int(fields[1]), name, cpu)
    return table


def tree_cpu(roots: list[int], table: dict[int, tuple[int, str, float]]) -> float:
    """CPU seconds of the processes under ``roots`` (each counted once: a living
    process by itself, an ended one in its parent's reaped-children time)."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _name, _cpu) in table.items():
        children.setdefault(ppid, []).append(pid)
    seen, todo, total = set(), list(roots), 0.0
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in table:
            continue
        seen.add(pid)
        total += table[pid][2]
        todo.extend(children.get(pid, ()))
    return total


def postgres_cpu(table: dict[int, tuple[int, str, float]]) -> float:
    return sum(cpu for _ppid, name, cpu in table.values() if name.startswith("postgres"))


# --- the stack --------------------------------------------------------------------------
@dataclass
class Stack:
    config: str
    workdir: Path
    postgres: str
    web_port: int = 0
    sandbox_port: int = 0
    database: str = ""
    env: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen] = field(default_factory=list)
    logs: list = field(default_factory=list)
    web: subprocess.Popen | None = None
    worker: subprocess.Popen | None = None
    sandbox_process: subprocess.Popen | None = None

    @property
    def sandbox(self) -> str:
        return f"http://{HOST}:{self.sandbox_port}"

    @property
    def platform(self) -> str:
        return f"http://{HOST}:{self.web_port}"

    def environment(self, rate_limit: str | None) -> dict[str, str]:
        from cryptography.fernet import Fernet

        if self.config == "sqlite":
            database_url = f"sqlite:///{self.workdir / 'bench.sqlite3'}"
        else:
            self.database = f"bench_pipeline_{os.getpid()}"
            admin_execute(self.postgres, f'CREATE DATABASE "{self.database}"')
            database_url = f"{self.postgres}/{self.database}"
        env = {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url,
            "VAR_DIR": str(self.workdir),
            "DEBUG": "false",
            "SECURE_SSL_REDIRECT": "false",
            "ALLOWED_HOSTS": f"{HOST},localhost",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "CONN_MAX_AGE": "60",
            "LOG_LEVEL": "WARNING",
            "REDIS_URL": REDIS_DB_URL if self.config == "pg-redis" else "",
            "Q_CLUSTER_NAME": f"bench{os.getpid()}",
            "Q_WORKERS": "1" if self.config == "sqlite" else "2",
            "Q_SYNC": "false",
            "PYTHONPATH": str(REPO),
        }
        self.rate_limit = rate_limit
        return env

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        log = (self.workdir / f"{name}.log").open("wb")
        self.logs.append(log)
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def wait_for(self, url: str, what: str, seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if requests.get(url, timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the {what} did not answer {url}")

    def start(self, rate_limit: str | None) -> None:
        self.env = self.environment(rate_limit)
        if self.config == "pg-redis":
            import redis

            redis.Redis.from_url(REDIS_DB_URL).flushdb()
        self.sandbox_port, self.web_port = free_port(), free_port()
        self.sandbox_process = self.spawn(
            "sandbox", [sys.executable, "-m", "sandbox", "--port", str(self.sandbox_port)]
        )
        self.wait_for(f"{self.sandbox}/_sandbox/health", "sandbox")
        requests.post(f"{self.sandbox}/_sandbox/reset", timeout=30).raise_for_status()
        self.manage("migrate", "--no-input")
        self.manage("install_flows")
        for user, (email, card) in SAVED_CARDS.items():
            requests.post(
                f"{self.sandbox}/stripe/v1/customers",
                headers={"Authorization": f"Bearer {STRIPE_KEY}"},
                data={
                    "email": email,
                    "metadata[znode_user_id]": str(user),
                    "payment_method": card,
                    "invoice_settings[default_payment_method]": card,
                },
                timeout=10,
            ).raise_for_status()
        self.secrets = {"znode": "Bearer " + secrets.token_urlsafe(16), "stripe": ""}
        self.secrets["stripe"] = "whsec_" + secrets.token_urlsafe(24)
        paths = {}
        for kind, base, credentials, extra in (
            (
                "znode",
                "znode",
                {"domain_name": STORE_DOMAIN, "domain_key": STORE_KEY},
                {"store_domain": STORE_DOMAIN, "poll": "false", "timezone": "America/Chicago"},
            ),
            ("stripe", "stripe", {"api_key": STRIPE_KEY}, {}),
            ("erp", "erp", {"token": ERP_TOKEN}, {}),
        ):
            out = self.manage(
                "connection",
                "create",
                f"--kind={kind}",
                f"--name=bench-{kind}",
                f"--base-url={self.sandbox}/{base}",
                *[f"--credential={k}={v}" for k, v in credentials.items()],
                *[f"--setting={k}={v}" for k, v in extra.items()],
                *([f"--webhook-secret={self.secrets[kind]}"] if kind in self.secrets else []),
                *([f"--rate-limit={self.rate_limit}"] if self.rate_limit else []),
            )
            paths[kind] = out.strip().splitlines()[-1]
        self.manage(
            "integration",
            "create",
            "--name=bench",
            "--znode=bench-znode",
            "--stripe=bench-stripe",
            "--erp=bench-erp",
            f"--setting=collection_modes={json.dumps({str(SAVED_SETTING): 'saved_method'})}",
        )
        self.manage("sync_customers", "--integration", "bench", "--no-progress")
        if self.config == "sqlite":
            self.web = self.spawn(
                "web", [sys.executable, "manage.py", "serve", f"{HOST}:{self.web_port}"]
            )
            self.worker = None  # serve runs the worker as its child
        else:
            self.web = self.spawn(
                "web",
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "config.wsgi",
                    "-k",
                    "gthread",
                    "-w",
                    "2",
                    "--threads",
                    "8",
                    "-b",
                    f"{HOST}:{self.web_port}",
                    "--log-level",
                    "warning",
                ],
            )
            self.worker = self.spawn("worker", [sys.executable, "manage.py", "worker"])
        self.wait_for(f"{self.platform}/health/live/", "platform")
        for kind in ("znode", "stripe"):
            requests.post(
                f"{self.sandbox}/_sandbox/webhooks/{kind}",
                json={"url": self.platform + paths[kind], "secret": self.secrets[kind]},
                timeout=10,
            ).raise_for_status()

    def platform_roots(self) -> list[int]:
        return [p.pid for p in (self.web, self.worker) if p is not None]

    def cpu(self) -> dict[str, float]:
        table = _proc_table()
        return {
            "platform": tree_cpu(self.platform_roots(), table),
            "database": postgres_cpu(table) if self.config != "sqlite" else 0.0,
            "sandbox": tree_cpu([self.sandbox_process.pid], table),
        }

    def milestones(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for system in ("znode", "erp"):
            response = requests.get(f"{self.sandbox}/_sandbox/milestones/{system}", timeout=30)
            response.raise_for_status()
            out.update(response.json())
        return out

    def calls(self) -> int:
        response = requests.get(f"{self.sandbox}/_sandbox/counts", timeout=10)
        response.raise_for_status()
        counts = response.json()
        return sum(counts.values())

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, 15)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, 9)
                process.wait(timeout=5)
        for log in self.logs:
            log.close()
        if self.database:
            admin_execute(self.postgres, f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        if self.config == "pg-redis":
            import redis

            with contextlib.suppress(Exception):
                redis.Redis.from_url(REDIS_DB_URL).flushdb()


# --- load -------------------------------------------------------------------------------
@dataclass
class Placed:
    number: str
    charge: str
    declined: bool


class Shoppers:
    """Orders sent to the sandbox's Znode checkout from a pool of threads, so a slow
    answer never holds the schedule back (open loop)."""

    def __init__(self, sandbox: str, seed: int, threads: int = 24) -> None:
        self.sandbox = sandbox
        self.rng = random.Random(seed)
        self.pool = ThreadPoolExecutor(threads)
        self.local = threading.local()
        self.errors: list[str] = []

    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def place_one(self, user: int, cents: int) -> Placed | None:
        body = {
            "user_id": user,
            "lines": [{"sku": "SBX-MUG-11OZ", "quantity": 1, "price": f"{cents / 100:.2f}"}],
            "payment_setting_id": SAVED_SETTING,
        }
        try:
            response = self.session().post(
                f"{self.sandbox}/znode/_test/orders", json=body, timeout=30
            )
            response.raise_for_status()
        except requests.RequestException as exc:
            self.errors.append(str(exc))
            return None
        order = response.json()["Order"]
        return Placed(order["OrderNumber"], "", user == DECLINED_USER)

    def place(self, count: int, rate: float | None) -> list[Placed]:
        """``count`` orders at ``rate`` per second (None: as fast as they are taken)."""
        futures, start = [], time.monotonic()
        for i in range(count):
            if rate:
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            user = DECLINED_USER if self.rng.random() < 0.10 else GOOD_USER
            cents = self.rng.randrange(500, 25000)
            futures.append(self.pool.submit(self.place_one, user, cents))
        return [p for p in (f.result() for f in futures) if p is not None]

    def close(self) -> None:
        self.pool.shutdown(wait=True)


# --- one phase --------------------------------------------------------------------------
@dataclass
class PhaseResult:
    config: str
    rate: str
    orders: int
    settled: int
    paid_ms: list[float]
    journal_ms: list[float]
    settled_per_s: float
    backlog: int
    cpu: dict[str, float]
    calls: int
    problems: list[str]

    def per_order(self, key: str) -> float:
        return 1000 * self.cpu[key] / self.settled if self.settled else float("nan")


def settled_times(placed: list[Placed], stones: dict[str, float]) -> dict[str, float | None]:
    """When each order settled (paid in Znode and journaled, or declined); None: not yet."""
    journals = {k.split(":", 2)[2]: t for k, t in stones.items() if k.startswith("JE:sale:")}
    out: dict[str, float | None] = {}
    for order in placed:
        if order.declined:
            out[order.number] = stones.get(f"declined:{order.number}")
            continue
        paid = stones.get(f"paid:{order.number}")
        journal = journals.get(order.charge) if order.charge else None
        out[order.number] = max(paid, journal) if paid and journal else None
    return out


def charges(stack: Stack, placed: list[Placed]) -> None:
    """The charge each paid order was paid with, as Znode shows it (its TransactionId):
    what its ERP journal entry is keyed by (``sale:<charge>``)."""
    session = requests.Session()
    for order in placed:
        if order.declined or order.charge:
            continue
        response = session.get(f"{stack.sandbox}/znode/_test/orders/{order.number}", timeout=10)
        if response.ok:
            order.charge = str(response.json()["Order"].get("TransactionId") or "")


def run_phase(
    stack: Stack, shoppers: Shoppers, *, count: int, rate: float | None, timeout: float
) -> PhaseResult:
    cpu_before, calls_before = stack.cpu(), stack.calls()
    placed = shoppers.place(count, rate)
    placement_end = time.time()
    deadline = time.monotonic() + timeout
    backlog = None
    while True:
        stones = stack.milestones()
        paid_or_declined = [
            o
            for o in placed
            if stones.get(f"{'declined' if o.declined else 'paid'}:{o.number}") is not None
        ]
        charges(stack, paid_or_declined)
        done = settled_times(placed, stones)
        if backlog is None:
            backlog = sum(
                1 for o in placed if done[o.number] is None or done[o.number] > placement_end
            )
        if all(t is not None for t in done.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    cpu_after, calls_after = stack.cpu(), stack.calls()
    problems = [f"placing: {e}" for e in shoppers.errors[:5]]
    shoppers.errors.clear()
    missing = [n for n, t in done.items() if t is None]
    if missing:
        problems.append(f"{len(missing)} orders not settled within {timeout:.0f} s: {missing[:5]}")
    journaled = {k.split(":", 2)[2] for k in stones if k.startswith("JE:sale:")}
    for order in placed:
        if order.declined and stones.get(f"paid:{order.number}"):
            problems.append(f"{order.number}: a declined order shown paid")
    paid_ms, journal_ms = [], []
    for order in placed:
        placed_at = stones.get(f"placed:{order.number}")
        if order.declined or placed_at is None:
            continue
        if (paid := stones.get(f"paid:{order.number}")) is not None:
            paid_ms.append(1000 * (paid - placed_at))
        if order.charge in journaled:
            journal_ms.append(1000 * (stones[f"JE:sale:{order.charge}"] - placed_at))
    settled = [t for t in done.values() if t is not None]
    first = min((stones.get(f"placed:{o.number}", placement_end) for o in placed), default=0)
    span = (max(settled) - first) if settled else 0.0
    return PhaseResult(
        config=stack.config,
        rate=f"{rate:g}" if rate else "burst",
        orders=len(placed),
        settled=len(settled),
        paid_ms=sorted(paid_ms),
        journal_ms=sorted(journal_ms),
        settled_per_s=len(settled) / span if span else 0.0,
        backlog=backlog or 0,
        cpu={k: cpu_after[k] - cpu_before[k] for k in cpu_after},
        calls=calls_after - calls_before,
        problems=problems,
    )


def report(result: PhaseResult) -> None:
    p = percentile
    print(
        f"{result.config:<9}{result.rate:>6}{result.orders:>7}{result.settled:>8}"
        f"{p(result.paid_ms, 50):>8.0f}{p(result.paid_ms, 99):>8.0f}"
        f"{p(result.journal_ms, 50):>8.0f}{p(result.journal_ms, 99):>8.0f}"
        f"{result.settled_per_s:>9.1f}{result.backlog:>8}"
        f"{result.per_order('platform'):>9.1f}{result.per_order('database'):>6.1f}"
        f"{result.per_order('sandbox'):>8.1f}"
        f"{result.per_order('platform') / result.per_order('sandbox'):>7.1f}x"
        f"{result.calls / result.settled if result.settled else 0:>7.1f}",
        flush=True,
    )
    for problem in result.problems:
        print(f"  PROBLEM: {problem}", flush=True)


HEADER = (
    f"{'config':<9}{'rate':>6}{'orders':>7}{'settled':>8}{'paid50':>8}{'paid99':>8}"
    f"{'jrnl50':>8}{'jrnl99':>8}{'settled/s':>9}{'backlog':>8}{'cpu:plat':>9}{'db':>6}"
    f"{'sandbox':>8}{'ratio':>8}{'calls':>7}"
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--rates", default="5,10,20,40", help="orders per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0, help="placement time per rate")
    parser.add_argument("--burst", type=int, default=500, help="orders of the burst (0: none)")
    parser.add_argument("--warmup", type=int, default=20, help="orders placed before measuring")
    parser.add_argument("--settle-timeout", type=float, default=120.0)
    parser.add_argument(
        "--rate-limit", default=None, help="connections' rate limit (default: each system's)"
    )
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    args.configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = set(args.configs) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown configs {sorted(unknown)}; known: {', '.join(CONFIGS)}")
    args.rates = [float(r) for r in args.rates.split(",") if r.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results: list[PhaseResult] = []
    print(
        f"pipeline benchmark: {os.cpu_count()} CPUs, rates {args.rates} orders/s for "
        f"{args.seconds:g} s each, burst {args.burst}; 90 % paying cards",
        flush=True,
    )
    with terminate_as_exit():
        for config in args.configs:
            workdir = Path(tempfile.mkdtemp(prefix=f"bench_pipeline_{config}_"))
            stack = Stack(config, workdir, args.postgres)
            shoppers = None
            try:
                started = time.monotonic()
                stack.start(args.rate_limit)
                print(f"\n{config}: wired in {time.monotonic() - started:.0f} s", flush=True)
                shoppers = Shoppers(stack.sandbox, args.seed)
                if args.warmup:
                    run_phase(
                        stack, shoppers, count=args.warmup, rate=5, timeout=args.settle_timeout
                    )
                print(HEADER, flush=True)
                phases = [(round(rate * args.seconds), rate) for rate in args.rates]
                if args.burst:
                    phases.append((args.burst, None))
                for count, rate in phases:
                    result = run_phase(
                        stack, shoppers, count=count, rate=rate, timeout=args.settle_timeout
                    )
                    results.append(result)
                    report(result)
                    time.sleep(2)  # the platform's stragglers (echoes, stats) before the next
            finally:
                if shoppers is not None:
                    shoppers.close()
                stack.stop()
                shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(
        "(ms; paid: placed → paid in Znode, jrnl: placed → journal in the ERP; cpu: ms per "
        "settled order of the platform's processes, the database server and the sandbox; "
        "ratio: platform / sandbox; calls: requests the sandbox served per settled order)"
    )
    for r in results:
        print(
            f"RESULT pipeline config={r.config} rate={r.rate} "
            f"p50_ms={percentile(r.paid_ms, 50):.0f} p99_ms={percentile(r.paid_ms, 99):.0f} "
            f"settled_per_s={r.settled_per_s:.1f} cpu_ms_per_order={r.per_order('platform'):.1f}",
            flush=True,
        )
    return 1 if any(r.problems for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
