"""`manage.py demo --exit-when-settled` on a fresh database: every order ends up
consistent across Znode, Stripe and the ERP, every refund and dispute of its
after-sales too, and the command says so with exit 0."""

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_headless_demo_settles_consistently(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "DEBUG": "true",  # as `make demo` sets it (DEBUG is off by default)
    }
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "demo",
            "--orders",
            "8",
            "--interval",
            "0.1",
            "--exit-when-settled",
            "--timeout",
            "180",
            "--port",
            str(free_port()),
            "--sandbox-port",
            str(free_port()),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "all orders settled and consistent" in result.stdout
    assert "pending or inconsistent 0" in result.stdout
    # Every way of paying is in the run: adopted, saved card (paid and declined), link.
    assert "on the Stripe payment page" in result.stdout
    for paid_by in ("adopted", "saved", "link"):
        assert f" {paid_by} " in result.stdout
    # The round trips it cost, from the ApiCall rows, by how each order was paid.
    line = next(x for x in result.stdout.splitlines() if "per paid order" in x)
    per_mode = dict(re.findall(r"(adopted|saved|link) (\d+\.\d)", line))
    assert set(per_mode) == {"adopted", "saved", "link"} and all(
        float(n) > 0 for n in per_mode.values()
    ), line
    assert "admin login: admin / " in result.stdout

    # After-sales: one of each, each refund and dispute agreeing in every system.
    for kind in (
        "full return",
        "return 1 of 2",
        "return 1 line of 2",
        "2 equal returns",
        "Dashboard refund",
        "refund fails",
        "dispute won",
        "dispute lost",
    ):
        rows = [x for x in result.stdout.splitlines() if re.match(rf"SBX-\d+ +{kind} +\S", x)]
        assert rows and all(x.endswith(" yes") for x in rows), (kind, rows)
    equal = [x for x in result.stdout.splitlines() if re.match(r"SBX-\d+ +2 equal returns +SBX", x)]
    assert len(equal) == 2 and len({x.split()[5] for x in equal}) == 2  # two refunds
    assert re.search(r"SBX-\d+ +refund fails +SBX-RMA-\d+ +re_\w+ +[\d.]+ +failed ", result.stdout)
    assert "the bank returns refund re_" in result.stdout
    summary = next(x for x in result.stdout.splitlines() if x.startswith("refunds 7 ("))
    assert re.search(
        r"refunds 7 \(5 for returns, 1 in the Stripe Dashboard, 1 failed as expected.*\), "
        r"disputes 2 \(won 1, lost 1\); consistent 9, inconsistent 0; "
        r"refunded totals agree on 8/8 orders",
        summary,
    ), summary
    assert "after-sales calls: " in result.stdout

    # Money to the bank: payouts in USD (a GBP sale converted) and EUR, each tied out
    # and posted, and the ERP's Stripe clearing account at zero in every currency.
    payouts = re.findall(
        r"^  po_\w+ +[\d,.]+ (USD|EUR) +\d+ transactions +(.+)$", result.stdout, re.M
    )
    assert {c for c, _ in payouts} == {"USD", "EUR"}, payouts
    assert all(state.startswith("tied out, posted") for _, state in payouts), payouts
    assert any("FX from GBP" in state for c, state in payouts if c == "USD"), payouts
    assert (
        "ERP trial balance, Stripe clearing account: 0.00 EUR, 0.00 GBP, 0.00 USD" in result.stdout
    )
