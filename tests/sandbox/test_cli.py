"""`python -m sandbox` starts the three fakes with one command."""

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_one_command_starts_all_systems_with_faults_and_state(tmp_path):
    port = free_port()
    state = tmp_path / "sandbox.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "--port",
            str(port),
            "--seed",
            "7",
            "--state",
            str(state),
            "--fault",
            "znode.error_rate=0.3",
            "--fault",
            "stripe.latency_ms=5",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == f"sandbox listening on http://127.0.0.1:{port}"
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/_sandbox/faults", timeout=5) as response:
            faults = json.loads(response.read())
        assert faults["znode"]["error_rate"] == 0.3
        assert faults["stripe"]["latency_ms"] == 5
        request = urllib.request.Request(
            f"{base}/erp/api/health", headers={"Authorization": "Bearer sandbox-erp-token"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.loads(response.read()) == {"ok": True}
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    saved = json.loads(state.read_text())  # its own storage, written on the way out
    assert set(saved) == {"znode", "stripe", "erp"}


def test_bad_fault_option_is_refused():
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "--fault", "znode.nonsense=1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "unknown knob" in result.stderr
