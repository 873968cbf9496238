"""The sandbox HTTP server: one port, one prefix per system, and a control API.

Control API (``/_sandbox/...``, no auth): ``GET health``, ``GET faults``, ``PUT faults/{system}``,
``POST reset`` (every system back to its seed: Stripe and the ERP first, then Znode, whose
seeded open card orders get real authorized charges in the sandbox Stripe), ``POST
reset/{system}`` (one system alone, e.g. an empty Stripe account), ``POST|GET
webhooks/{system}``, ``POST webhooks/{system}/flush``, ``GET webhooks/{system}/log``,
``GET requests/{system}``, ``GET counts`` (API requests served per system), ``GET
milestones/{system}`` (when each order was placed, paid, journaled: see System.mark).

The systems of one Sandbox know each other: Znode's payment application reaches the
sandbox Stripe in-process through ``znode.peers["stripe"]``.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sandbox.faults import FaultInjector
from sandbox.http import Headers, Request, Response, json_response
from sandbox.system import System

logger = logging.getLogger("sandbox")
TICK_SECONDS = 0.25
"""How often the server lets the systems do time-driven work (System.tick)."""


class Sandbox:
    def __init__(self, *, seed: int | None = None, state_path: str | None = None) -> None:
        from sandbox.erp.app import Erp
        from sandbox.stripe.app import Stripe
        from sandbox.znode.app import Znode

        self.seed = seed
        self.systems: dict[str, System] = {}
        for offset, cls in enumerate((Znode, Stripe, Erp)):
            injector = FaultInjector(seed=None if seed is None else seed + offset)
            self.systems[cls.name] = cls(injector)
        # Znode's payment application authorizes card orders in the sandbox Stripe
        # in-process; re-seed Znode now that it can (its open card orders get real charges).
        znode = self.systems["znode"]
        znode.peers = self.systems
        with znode.lock:
            znode.reset()
        self.state_path = Path(state_path) if state_path else None
        if self.state_path and self.state_path.exists():
            saved = json.loads(self.state_path.read_text())
            for name, state in saved.items():
                if name in self.systems:
                    self.systems[name].state = state

    # --- persistence ------------------------------------------------------------------
    def save(self) -> None:
        if not self.state_path:
            return
        snapshot = {}
        for name, system in self.systems.items():
            with system.lock:
                snapshot[name] = json.loads(json.dumps(system.state))
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(snapshot))
        tmp.replace(self.state_path)

    # --- dispatch ---------------------------------------------------------------------
    def dispatch(self, request: Request) -> Response:
        path = request.path
        prefix, _, rest = path.lstrip("/").partition("/")
        if prefix == "_sandbox":
            return self.control(request, rest)
        system = self.systems.get(prefix)
        if system is None:
            return json_response({"error": f"no system at /{prefix}"}, 404)
        try:
            return system.handle(request, "/" + rest)
        except Exception as exc:  # a sandbox bug must look like a server error, not hang
            logger.exception("sandbox %s crashed on %s %s", prefix, request.method, path)
            return system.error_response(500, f"sandbox error: {type(exc).__name__}: {exc}")

    @staticmethod
    def _reset(system: System) -> None:
        with system.lock:
            system.reset()
        system.faults.reset()
        system.milestones.clear()
        system.handled = 0
        dispatcher = getattr(system, "webhooks", None)
        if dispatcher is not None:
            dispatcher.reset()

    def control(self, request: Request, rest: str) -> Response:
        parts = [p for p in rest.split("/") if p]
        method = request.method
        if parts == ["health"]:
            return json_response({"ok": True, "systems": sorted(self.systems)})
        if parts == ["counts"] and method == "GET":
            return json_response({n: s.handled for n, s in self.systems.items()})
        if len(parts) == 2 and parts[0] == "milestones" and method == "GET":
            system = self.systems.get(parts[1])
            if system is None:
                return json_response({"error": "unknown system"}, 404)
            with system.lock:
                return json_response(dict(system.milestones))
        if parts == ["faults"] and method == "GET":
            return json_response({n: s.faults.config.as_dict() for n, s in self.systems.items()})
        if len(parts) == 2 and parts[0] == "faults" and method in ("PUT", "POST"):
            system = self.systems.get(parts[1])
            if system is None:
                return json_response({"error": "unknown system"}, 404)
            try:
                system.faults.config.update(request.json() or {})
            except (KeyError, ValueError) as exc:
                return json_response({"error": f"bad fault setting: {exc}"}, 400)
            return json_response(system.faults.config.as_dict())
        if parts == ["reset"] and method == "POST":
            # State, fault knobs and webhook endpoints all go back to the start. Systems that
            # call their peers while seeding (Znode charges its seeded card orders in
            # Stripe) are reset after those peers.
            ordered = sorted(self.systems.values(), key=lambda s: bool(getattr(s, "peers", None)))
            for system in ordered:
                self._reset(system)
            return json_response({"reset": True})
        if len(parts) == 2 and parts[0] == "reset" and method == "POST":
            # One system alone, e.g. an empty Stripe account for tests of Stripe itself
            # (Znode's seeded card orders then name charges that no longer exist).
            system = self.systems.get(parts[1])
            if system is None:
                return json_response({"error": "unknown system"}, 404)
            self._reset(system)
            return json_response({"reset": parts[1]})
        if len(parts) >= 2 and parts[0] == "webhooks":
            system = self.systems.get(parts[1])
            dispatcher = getattr(system, "webhooks", None)
            if dispatcher is None:
                return json_response({"error": "system sends no webhooks"}, 404)
            from sandbox.webhooks import Endpoint

            if len(parts) == 2 and method == "POST":
                data = request.json() or {}
                if not str(data.get("url", "")).startswith("http"):
                    return json_response({"error": "url must be http(s)"}, 400)
                dispatcher.add_endpoint(
                    Endpoint(
                        url=data["url"],
                        secret=data.get("secret", ""),
                        events=data.get("events") or [],
                    )
                )
                return json_response({"ok": True})
            if len(parts) == 2 and method == "GET":
                return json_response(
                    {
                        "endpoints": [e.url for e in dispatcher.endpoints],
                        "pending": dispatcher.pending(),
                    }
                )
            if parts[2:] == ["flush"] and method == "POST":
                dispatcher.flush()
                return json_response({"ok": True})
            if parts[2:] == ["log"] and method == "GET":
                return json_response({"deliveries": list(dispatcher.log)})
        if len(parts) == 2 and parts[0] == "requests" and method == "GET":
            system = self.systems.get(parts[1])
            if system is not None:
                return json_response({"requests": list(system.requests)})
        return json_response({"error": "unknown control endpoint"}, 404)


def make_handler(sandbox: Sandbox):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            # Headers and body go out in two writes; without NODELAY a keep-alive
            # client waits ~40 ms for the delayed ACK on every call.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, fmt, *args):
            logger.debug(fmt, *args)

        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(self.command, self.path, Headers(self.headers.items()), body)
            response = sandbox.dispatch(request)
            payload = response.encode()
            if response.status == 204:
                payload = b""
            self.send_response(response.status)
            headers = {"Content-Type": "application/json", **response.headers}
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if payload:
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler


class SandboxServer:
    """Runs a Sandbox on a port in background threads (also used by the tests)."""

    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sandbox = sandbox
        self.httpd = ThreadingHTTPServer((host, port), make_handler(sandbox))
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._saver: threading.Timer | None = None
        self._stopping = threading.Event()
        self._ticker = threading.Thread(target=self._tick_loop, daemon=True, name="sandbox-tick")

    def start(self) -> SandboxServer:
        self.thread.start()
        self._ticker.start()
        self._schedule_save()
        return self

    def _tick_loop(self) -> None:
        while not self._stopping.wait(TICK_SECONDS):
            for system in self.sandbox.systems.values():
                try:
                    system.tick()
                except Exception:  # one bad tick must not stop the clock of the others
                    logger.exception("sandbox %s: tick failed", system.name)

    def _schedule_save(self) -> None:
        if self.sandbox.state_path:
            self._saver = threading.Timer(2.0, self._save_tick)
            self._saver.daemon = True
            self._saver.start()

    def _save_tick(self) -> None:
        self.sandbox.save()
        self._schedule_save()

    def stop(self) -> None:
        self._stopping.set()
        if self._ticker.is_alive():
            self._ticker.join(timeout=10)
        if self._saver:
            self._saver.cancel()
        self.sandbox.save()
        self.httpd.shutdown()
        self.httpd.server_close()
