"""One sandbox server per test session, reset before every test that uses it."""

from __future__ import annotations

import json
import urllib.request

import pytest

from sandbox.server import Sandbox, SandboxServer


class SandboxHandle:
    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.url = server.url
        self.sandbox = server.sandbox

    def system_url(self, name: str) -> str:
        return f"{self.url}/{name}"

    def control(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}/_sandbox/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")

    def set_faults(self, system: str, **knobs) -> dict:
        return self.control("PUT", f"faults/{system}", knobs)

    def reset(self) -> None:
        self.control("POST", "reset")


@pytest.fixture(scope="session")
def sandbox_server():
    server = SandboxServer(Sandbox(seed=1234)).start()
    yield SandboxHandle(server)
    server.stop()


@pytest.fixture
def sandbox(sandbox_server):
    sandbox_server.reset()
    return sandbox_server


@pytest.fixture(scope="session")
def localstripe():
    """localstripe as a separate process (GPL, never imported here). If it cannot
    start this raises: the fidelity tests error, they never skip."""
    from tests.sandbox.localstripe_support import LocalStripe

    server = LocalStripe().start()
    yield server
    server.stop()
