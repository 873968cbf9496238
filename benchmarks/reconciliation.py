"""Reconciliation of large payouts: import + match + tie-out rate, and peak memory, as
the payout grows.

Run from the repository root::

    .venv/bin/python benchmarks/reconciliation.py [--sizes 1000,10000,50000] [--sqlite]

(``--help`` lists every option.)

Method
------
1. Create a throw-away PostgreSQL database (``bench_recon_<pid>`` on 127.0.0.1:5432,
   user postgres, trust auth; ``--postgres`` to change), or with ``--sqlite`` a SQLite
   file in a temporary folder, and migrate it. DEBUG is off (no query log), LOG_LEVEL
   WARNING.
2. Serve the sandbox as its own process (``python -m sandbox --port <free>``) and wire
   one integration ``bench`` to its Stripe and ERP (``connection_create``), as the
   tests do (tests/support/wiring.py).
3. For each size N: empty the sandbox's Stripe (``POST /_sandbox/reset/stripe``) and
   seed one automatic, paid, reconciled payout of N card payments
   (``POST /stripe/_test/payouts/seed``: each PaymentIntent and charge carries
   ``znode_order_number=BENCH-<i>`` and ``integration=bench``, each has its available
   balance transaction with Stripe's fee; ``--refunds-every K`` partly refunds every
   K-th). The local orders ``BENCH-1`` .. ``BENCH-N`` are made with ``bulk_create``
   (once, for the largest size): the import finds each charge's order by the metadata
   on the listed (expanded) charge, as it would a payment made outside the platform;
   no Payment rows, so no line is placed by an id the bench had to learn first.
4. The import runs in a fresh child process per size (so one size's memory is not
   another's), through the product's own service, ``reconciliation.services.
   payout_import`` with a ``ServiceContext``: the payout read again, its
   transactions listed from the sandbox over real HTTP (auto-paging, 100 a page,
   expanded), matched (one query per kind per batch of 500), upserted, and tied out;
   every Stripe call recorded as an ApiCall, as in production. Timed: that import,
   wall clock ("import s", "txns/s" = transactions stored / seconds), with the RSS
   high-water mark of the child (``VmHWM`` of /proc/self/status, reset through
   /proc/self/clear_refs just before) as "RSS peak", and what the child held before
   ("RSS base": Python, Django and the clients). Then the same payout is imported
   again under ``tracemalloc`` (a re-import does the same work: list, match, upsert
   every row, tie out) for the "traced peak" of Python allocations: tracemalloc slows
   the code down, so its run is not the timed one. Each run is checked: the payout
   ties out, with every transaction stored and none unexplained; a failed check makes
   the exit status 1.
5. Where the ledger and the exports are on main (``reconciliation.ledger.
   payout_ledger_post``, ``reconciliation.exports.export_csv`` / ``export_xlsx``),
   phases "post", "csv" and "xlsx" run after the re-import in the same child, timed
   (transactions of the payout per second), and their memory counts in the traced
   peak. Before the post (not timed, outside the traced peak) each order's sale is
   booked as order-to-cash would have posted it (``sales_book``: a posted
   JournalEntry per charge with its clearing line, in bulk), so the post phase builds
   the payout's journal from every transaction, checks it and posts it to the
   sandbox's ERP, and proves the clearing account nets to zero.

Reading the result
------------------
The table has one row per size. The last line is::

    RESULT reconciliation txns_per_s=<at the largest size> mem_ratio=<traced peak at the
    largest size / traced peak at the smallest>

txns_per_s is import + match + tie-out only. A line per size gives the CPU time each
process spent during the timed import (/proc/<pid>/stat: the import process, reader
thread included; the sandbox; the PostgreSQL server, every process of it, the import's
connections and those that ended during it included), per transaction, and
how many of the cores they kept busy together: where the time goes, and how close the
three are to sharing the machine out. ``--import-only`` skips the post and export
phases (the RESULT line is the same). ``RECON_PROFILE=<file>`` writes a pyinstrument
profile of the timed import to the file (pyinstrument is not a dependency: install it
in the venv to use this; the profiler slows the import, so its rate is not the
result). The goals are >= 5,000 transactions a
second at 50k and a mem_ratio <= 1.5 (memory that does not grow with the payout:
streamed a page and a batch at a time). The rate includes the sandbox's time to
render each page in its own process on the same (2-core) machine, so it is a
lower bound of what the import does against Stripe's API (whose latency is another
matter: about 100 pages a second here, over the network far fewer); the ratio is what
is comparable across machines. Nothing here asserts on timings.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Run as a script, this folder comes first on the path, and this file would shadow the
# reconciliation app: the repository root takes its place.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.intake import admin_execute, free_port, terminate_as_exit  # noqa: E402

HOST = "127.0.0.1"
INTEGRATION = "bench"
STRIPE_KEY = "sk_test_bench_reconciliation"
AMOUNT = 1000
"""Each seeded payment, in cents."""


# --- processes and measurement --------------------------------------------------------------
def rss_status() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in bytes."""
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) * 1024
    return values


def server_cpu_seconds(backend: int) -> float:
    """CPU seconds the PostgreSQL server of ``backend`` has used so far: its postmaster's
    children that are running (backends, the WAL writer...) plus those that ended
    (the postmaster's cutime + cstime), so a connection opened and closed during the
    import (the write-behind's) counts too. 0.0 where /proc cannot tell."""
    try:
        with open(f"/proc/{backend}/stat") as stat:
            postmaster = int(stat.read().rpartition(")")[2].split()[1])
        with open(f"/proc/{postmaster}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except (OSError, ValueError, IndexError):
        return 0.0
    ended = (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    running = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    child = stat.read().rpartition(")")[2].split()
            except OSError:
                continue
            if int(child[1]) == postmaster:
                running += (int(child[11]) + int(child[12])) / os.sysconf("SC_CLK_TCK")
    return ended + running


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU seconds a process has used so far (/proc/<pid>/stat; 0.0 where
    it cannot be read, e.g. a database server on another machine)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # After the command's name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_peak_reset() -> None:
    """Start the RSS high-water mark again from the current RSS (Linux: clear_refs 5)."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


class SandboxProcess:
    """``python -m sandbox`` on a free port of 127.0.0.1, logging to a file."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log_path = log_path
        self.log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--host", HOST, "--port", str(self.port)],
            cwd=REPO,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the sandbox exited: {self.log_path.read_text()[-2000:]}")
            try:
                self.control("GET", "health")
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the sandbox did not answer within {timeout:.0f}s")

    def post(self, path: str, body: dict | None = None, timeout: float = 1800) -> dict:
        request = urllib.request.Request(
            f"{self.url}/{path}",
            data=json.dumps(body or {}).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {STRIPE_KEY}"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"{}")

    def list_pages(self, payout_id: str) -> tuple[int, float]:
        """The baseline: every page of the payout's balance transactions, expanded as
        the import asks, read and decoded one after another with nothing else done:
        (transactions, seconds)."""
        import requests

        from integrations.connectors.stripe.mapping import BALANCE_TRANSACTION_EXPAND

        session = requests.Session()
        params: dict[str, Any] = {
            "payout": payout_id,
            "limit": 100,
            "expand[]": list(BALANCE_TRANSACTION_EXPAND),
        }
        total, started = 0, time.perf_counter()
        while True:
            page = session.get(
                f"{self.url}/stripe/v1/balance_transactions",
                params=params,
                headers={"Authorization": f"Bearer {STRIPE_KEY}"},
                timeout=60,
            ).json()
            total += len(page["data"])
            if not page["has_more"] or not page["data"]:
                return total, time.perf_counter() - started
            params["starting_after"] = page["data"][-1]["id"]

    def control(self, method: str, path: str) -> dict:
        request = urllib.request.Request(f"{self.url}/_sandbox/{path}", method=method)
        if method == "POST":
            request.data = b"{}"
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"{}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log.close()


def bench_environment(database_url: str, var_dir: str) -> dict[str, str]:
    from cryptography.fernet import Fernet

    return {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url,
        "VAR_DIR": var_dir,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "LOG_LEVEL": "WARNING",
        "REDIS_URL": "",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }


def prepare_database(sandbox_url: str) -> None:
    """Migrate, and wire the integration to the sandbox's Stripe and ERP."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from integrations.models import Integration
    from integrations.services.connections import connection_create

    call_command("migrate", interactive=False, verbosity=0)
    stripe = connection_create(
        name="stripe-bench",
        kind="stripe",
        base_url=f"{sandbox_url}/stripe",
        credentials={"api_key": STRIPE_KEY},
        rate_limit_per_second=100_000,
    )
    erp = connection_create(
        name="erp-bench",
        kind="erp",
        base_url=f"{sandbox_url}/erp",
        credentials={"token": "sandbox-erp-token"},
        rate_limit_per_second=100_000,
    )
    znode = connection_create(  # never called: an integration has its store
        name="znode-bench",
        kind="znode",
        base_url=f"{sandbox_url}/znode",
        credentials={"domain_name": "bench.example", "domain_key": "bench"},
        settings={"store_domain": "bench.example", "poll": False},
    )
    Integration.objects.create(name=INTEGRATION, znode=znode, stripe=stripe, erp=erp)
    connections.close_all()


def orders_ensure(count: int) -> float:
    """Orders BENCH-1 .. BENCH-count of the integration, made in bulk; seconds taken."""
    from django.db import connections
    from django.db.models import Max

    from integrations.models import Integration
    from payments.models import Order

    started = time.perf_counter()
    integration = Integration.objects.get(name=INTEGRATION)
    have = Order.objects.filter(integration=integration).aggregate(n=Max("znode_order_id"))["n"]
    rows = (
        Order(
            integration=integration,
            znode_order_id=number,
            order_number=f"BENCH-{number}",
            currency="USD",
            total=Decimal(AMOUNT) / 100,
            amount_minor=AMOUNT,
        )
        for number in range((have or 0) + 1, count + 1)
    )
    Order.objects.bulk_create(rows, batch_size=5000)
    connections.close_all()
    return time.perf_counter() - started


# --- the child: one size's import -----------------------------------------------------------
def sales_book(payout: Any) -> None:
    """Each order's sale on the clearing account, as order-to-cash posts it (a kept,
    posted JournalEntry per charge, found by the charge's ledger key), made in bulk
    from the imported transactions, so the post phase builds and posts the journal."""
    from django.utils import timezone

    from reconciliation.choices import EntryKind
    from reconciliation.models import BalanceTransaction, JournalEntry, JournalLine

    now = timezone.now()
    charges = (
        BalanceTransaction.objects.filter(payout=payout)
        .exclude(ledger_key="")
        .values_list("ledger_key", "gross_minor", "order_id")
        .iterator(chunk_size=5000)
    )
    while chunk := list(itertools.islice(charges, 5000)):
        entries = JournalEntry.objects.bulk_create(
            JournalEntry(
                integration_id=payout.integration_id,
                external_reference=f"sale:{key}",
                kind=EntryKind.SALE,
                ledger_key=key,
                date=now.date(),
                currency=payout.currency,
                order_id=order,
                total=Decimal(gross) / 100,
                erp_document_id=f"bench-{key}",
                posted_at=now,
            )
            for key, gross, order in chunk
        )
        JournalLine.objects.bulk_create(
            line
            for entry, (_key, gross, _order) in zip(entries, chunk, strict=True)
            for line in (
                JournalLine(entry=entry, position=1, key="clearing", account="1150",
                            debit=Decimal(gross) / 100, signed_minor=gross),
                JournalLine(entry=entry, position=2, key="charge", account="4000",
                            credit=Decimal(gross) / 100, signed_minor=-gross),
            )
        )  # fmt: skip


def child_main(payout_id: str, expected: int, sandbox_pid: int, import_only: bool) -> int:
    """Import ``payout_id`` (timed), again under tracemalloc, then post and export where
    they exist (not with ``import_only``); print one JSON line of measurements."""
    import tracemalloc

    import django

    django.setup()
    from integrations.models import Integration
    from integrations.runtime import ServiceContext
    from reconciliation.services import payout_import

    integration = Integration.objects.select_related("stripe", "erp").get(name=INTEGRATION)
    ctx = ServiceContext(integration=integration)
    ctx.client("stripe")
    ctx.client("erp")
    problems: list[str] = []
    result: dict[str, Any] = {"rss_base": rss_status()["VmRSS"]}

    def check(report: Any, phase: str) -> None:
        payout = report.payout
        if (payout.tie_out, payout.transaction_count, payout.unexplained_count) != (
            "tied_out",
            expected,
            0,
        ):
            problems.append(
                f"{phase}: {payout.tie_out}, {payout.transaction_count} transactions "
                f"(expected {expected}), {payout.unexplained_count} unexplained"
            )

    from django.db import connection

    backend = 0  # SQLite: the database is the import process itself
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
    processes = {"cpu_import": "self", "cpu_sandbox": sandbox_pid, "cpu_db": backend}

    def cpu_of(name: str) -> float:
        pid = processes[name]
        return server_cpu_seconds(pid) if name == "cpu_db" else cpu_seconds(pid)

    cpu_before = {name: cpu_of(name) for name, pid in processes.items() if pid}
    rss_peak_reset()
    profiler = None
    if os.environ.get("RECON_PROFILE"):
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
    started = time.perf_counter()
    report = payout_import(ctx=ctx, payout_id=payout_id)
    result["import_s"] = time.perf_counter() - started
    result.update({name: cpu_of(name) - cpu for name, cpu in cpu_before.items()})
    if profiler is not None:
        profiler.stop()
        Path(os.environ["RECON_PROFILE"]).write_text(profiler.output_text(show_all=False))
    result["rss_peak"] = rss_status()["VmHWM"]
    result["stored"] = report.new + report.known
    check(report, "import")

    tracemalloc.start()
    started = time.perf_counter()
    report = payout_import(ctx=ctx, payout_id=payout_id)
    result["traced_s"] = time.perf_counter() - started
    result["traced_peak"] = result["import_peak"] = tracemalloc.get_traced_memory()[1]
    check(report, "re-import")
    payout = report.payout

    if not import_only:
        from integrations.kernel.exceptions import IntegrationError
        from reconciliation.exports import export_csv, export_xlsx
        from reconciliation.ledger import payout_ledger_post
        from reconciliation.models import Payout

        tracemalloc.stop()
        sales_book(payout)  # not timed: what order-to-cash would have posted already
        tracemalloc.start()
        tracemalloc.reset_peak()
        started = time.perf_counter()
        try:
            outcome = payout_ledger_post(ctx=ctx, payout=payout)
        except IntegrationError as error:  # waiting for the orders' entries
            outcome = {"error": f"{type(error).__name__}: {str(error)[:200]}"}
        result["post_s"] = time.perf_counter() - started
        result["post"] = outcome
        if outcome.get("posted") != [f"payout:{payout_id}"]:
            problems.append(f"post: not posted: {json.dumps(outcome)[:300]}")
        result["traced_peak"] = max(result["traced_peak"], tracemalloc.get_traced_memory()[1])
        payouts = Payout.objects.filter(pk=payout.pk)
        tracemalloc.reset_peak()
        started = time.perf_counter()
        result["csv_bytes"] = sum(len(chunk) for chunk in export_csv(payouts=payouts))
        result["export_s"] = time.perf_counter() - started
        with tempfile.NamedTemporaryFile(suffix=".xlsx") as target:
            started = time.perf_counter()
            export_xlsx(payouts=payouts, target=target)
            result["xlsx_s"] = time.perf_counter() - started
        result["traced_peak"] = max(result["traced_peak"], tracemalloc.get_traced_memory()[1])
    tracemalloc.stop()
    result["rss_peak"] = max(result["rss_peak"], rss_status()["VmHWM"])
    result["problems"] = problems
    print(json.dumps(result), flush=True)
    return 1 if problems else 0


def run_child(
    env: dict[str, str], payout_id: str, expected: int, sandbox_pid: int, import_only: bool
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", payout_id, "--expected", str(expected)]
    command += ["--sandbox-pid", str(sandbox_pid)] + (["--import-only"] if import_only else [])
    done = subprocess.run(
        command,
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(
            f"the import process exited with {done.returncode}:\n{done.stderr[-4000:]}"
        )
    return json.loads(lines[-1])


# --- entry point ------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Payout import + match + tie-out: transactions/s and peak memory by size.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--sizes", default="1000,10000,50000", help="payments per payout, comma-separated"
    )
    parser.add_argument(
        "--refunds-every", type=int, default=0, help="partly refund every K-th payment (0: none)"
    )
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench DB")
    parser.add_argument(
        "--import-only",
        action="store_true",
        help="skip the post and export phases (the RESULT line is the import's either way)",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"),
        help="server URL (no database name) to create the bench database on",
    )
    parser.add_argument("--child", metavar="PAYOUT", help=argparse.SUPPRESS)
    parser.add_argument("--expected", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--sandbox-pid", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        args.sizes = sorted({int(size) for size in args.sizes.split(",") if size.strip()})
    except ValueError:
        parser.error("--sizes takes whole numbers separated by commas")
    if not args.sizes or args.sizes[0] < 1:
        parser.error("--sizes must be at least 1")
    if args.refunds_every < 0:
        parser.error("--refunds-every must not be negative")
    return args


def _mb(value: float) -> str:
    return f"{value / 2**20:.1f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args.child, args.expected, args.sandbox_pid, args.import_only)
    dbname = f"bench_recon_{os.getpid()}"
    tmp = tempfile.TemporaryDirectory(prefix="bench_recon_")
    sandbox: SandboxProcess | None = None
    db_created = False
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    with terminate_as_exit():
        try:
            if args.sqlite:
                database_url = f"sqlite:///{tmp.name}/bench.sqlite3"
            else:
                admin_execute(args.postgres, f'CREATE DATABASE "{dbname}"')
                db_created = True
                database_url = f"{args.postgres}/{dbname}"
            env = bench_environment(database_url, tmp.name)
            os.environ.update(env)
            sandbox = SandboxProcess(Path(tmp.name) / "sandbox.log")
            sandbox.wait_ready()
            prepare_database(sandbox.url)
            print(
                f"reconciliation benchmark: {'SQLite' if args.sqlite else 'PostgreSQL ' + dbname}"
                f"{' (kept)' if args.keep_db and not args.sqlite else ''}, sandbox "
                f"{sandbox.url} (own process), {os.cpu_count()} CPUs, sizes "
                f"{', '.join(str(s) for s in args.sizes)}"
            )
            orders_s = orders_ensure(args.sizes[-1])
            print(f"  orders BENCH-1..{args.sizes[-1]} made in bulk in {orders_s:.1f} s")
            for size in args.sizes:
                sandbox.control("POST", "reset/stripe")
                started = time.perf_counter()
                seeded = sandbox.post(
                    "stripe/_test/payouts/seed",
                    {
                        "count": size,
                        "currency": "usd",
                        "amount": AMOUNT,
                        "metadata": {"znode_order_number": "BENCH-{i}", "integration": INTEGRATION},
                        "refunds_every": args.refunds_every,
                    },
                )
                seed_s = time.perf_counter() - started
                refunds = size // args.refunds_every if args.refunds_every else 0
                expected = size + refunds + 1  # and the payout's own row
                listed, list_s = sandbox.list_pages(seeded["payout"])
                measured = run_child(
                    env, seeded["payout"], expected, sandbox.process.pid, args.import_only
                )
                measured.update(
                    size=size, seed_s=seed_s, expected=expected, listed=listed, list_s=list_s
                )
                problems.extend(f"{size}: {p}" for p in measured["problems"])
                rows.append(measured)
                print(
                    f"  {size}: seeded in {seed_s:.1f} s, imported in {measured['import_s']:.1f} s",
                    flush=True,
                )
        finally:
            if sandbox is not None:
                sandbox.stop()
            with contextlib.suppress(Exception):
                from django.db import connections

                connections.close_all()
            if db_created and not args.keep_db:
                admin_execute(args.postgres, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            tmp.cleanup()
    print()
    print(
        f"{'size':>7}{'txns':>8}{'import s':>10}{'txns/s':>9}{'import MB':>11}{'traced MB':>11}"
        f"{'RSS base':>10}{'RSS peak':>10}{'post/s':>9}{'csv/s':>9}{'xlsx/s':>9}"
        f"{'list/s':>9}{'ratio':>7}"
    )
    for row in rows:

        def rate(phase: str, row: dict[str, Any] = row) -> str:
            seconds = row.get(f"{phase}_s")
            return f"{row['stored'] / seconds:.0f}" if seconds else "-"

        print(
            f"{row['size']:>7}{row['stored']:>8}{row['import_s']:>10.2f}{rate('import'):>9}"
            f"{_mb(row['import_peak']):>11}{_mb(row['traced_peak']):>11}{_mb(row['rss_base']):>10}"
            f"{_mb(row['rss_peak']):>10}{rate('post'):>9}{rate('export'):>9}{rate('xlsx'):>9}"
            f"{row['listed'] / row['list_s']:>9.0f}{row['import_s'] / row['list_s']:>7.2f}"
        )
    print(
        "(txns/s: transactions stored per second of import + match + tie-out; import MB: "
        "tracemalloc peak of a re-import, traced MB: of it and post/export; RSS: the import "
        "process's, "
        "before and at its high-water mark, MB; list/s: the baseline, the sandbox alone "
        "serving the same pages to a bare reader in the same run; ratio: import seconds / "
        "baseline seconds)"
    )
    for row in rows:
        spent = {name: row[name] for name in ("cpu_import", "cpu_sandbox", "cpu_db") if name in row}
        print(
            f"CPU during the import at {row['size']} ({row['import_s']:.2f} s wall, "
            f"{os.cpu_count()} CPUs): "
            + ", ".join(
                f"{name.removeprefix('cpu_')} {seconds:.2f} s "
                f"({seconds * 1e6 / row['stored']:.0f} µs/txn)"
                for name, seconds in spent.items()
            )
            + f"; {sum(spent.values()) / row['import_s']:.2f} cores busy"
        )
    if args.import_only:
        print("post and export: skipped (--import-only)")
    else:
        if "post_s" not in rows[-1]:
            print("post: not measured (reconciliation.ledger.payout_ledger_post is not on main)")
        else:
            print(f"post at {rows[-1]['size']}: {json.dumps(rows[-1]['post'])[:300]}")
        if "export_s" not in rows[-1]:
            print("export: not measured (reconciliation.exports is not on main)")
        else:
            print(
                f"export at {rows[-1]['size']}: CSV {rows[-1]['csv_bytes'] / 2**20:.1f} MB "
                "(reconciliation.exports, streamed), XLSX to a temporary file"
            )
    if problems:
        print("CHECK FAILED:")
        for problem in problems:
            print(f"  - {problem}")
    else:
        print("check: ok (every payout tied out, every transaction stored, none unexplained)")
    largest, smallest = rows[-1], rows[0]
    print(
        f"memory ratio {largest['size']} / {smallest['size']}: import alone "
        f"{largest['import_peak'] / smallest['import_peak']:.2f}, with post and export "
        f"{largest['traced_peak'] / smallest['traced_peak']:.2f} (the RESULT's)"
    )
    print(
        f"RESULT reconciliation txns_per_s={largest['stored'] / largest['import_s']:.0f} "
        f"mem_ratio={largest['traced_peak'] / smallest['traced_peak']:.2f}",
        flush=True,
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
