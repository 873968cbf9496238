"""Base class of a faked system: routes, state, fault handling, error shapes."""

from __future__ import annotations

import threading
import time
from typing import Any

from sandbox.faults import FaultInjector
from sandbox.http import Request, Response, Router, json_response


class System:
    name: str = ""
    """URL prefix: requests to /<name>/... are this system's."""

    write_methods = frozenset({"POST", "PUT", "PATCH", "DELETE"})

    def __init__(self, faults: FaultInjector) -> None:
        self.faults = faults
        self.lock = threading.RLock()
        self.router = Router()
        self.state: dict[str, Any] = {}
        self.requests: list[dict] = []  # request log, newest last (bounded)
        self.milestones: dict[str, float] = {}  # see mark()
        self.handled = 0  # API requests served (not the test routes): GET /_sandbox/counts
        self.register_routes()
        self.reset()

    # --- to implement --------------------------------------------------------------
    def register_routes(self) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        """Empty and re-seed the state."""
        self.state = {}

    def error_response(self, status: int, message: str) -> Response:
        return json_response({"error": message}, status)

    def is_write(self, request: Request) -> bool:
        return request.method in self.write_methods

    def authenticate(self, request: Request) -> Response | None:
        """Return an error response to refuse the request, None to accept it."""
        return None

    def tick(self) -> None:
        """Time-driven work the system does by itself (the server calls it a few times a
        second from one thread). Take ``self.lock`` around any change of the state."""

    # --- provided --------------------------------------------------------------------
    def handle(self, request: Request, subpath: str) -> Response:
        self.handled += 1
        self.requests.append(
            {
                "method": request.method,
                "path": subpath,
                "query": request.query_string,
                "at": time.time(),
            }
        )
        del self.requests[:-1000]
        config = self.faults.config
        if config.latency_ms:
            time.sleep(config.latency_ms / 1000)
        handler, params, exists = self.router.match(request.method, subpath)
        if handler is None:
            return (
                self.not_found(subpath)
                if not exists
                else self.error_response(405, "method not allowed")
            )
        refusal = self.authenticate(request)
        if refusal is not None:
            return refusal
        fault = self.faults.decide()
        if fault == "rate_limit":
            response = self.error_response(429, "Too many requests")
            response.headers["Retry-After"] = str(config.retry_after)
            return response
        if fault == "timeout":
            time.sleep(config.timeout_seconds)
            return self.error_response(504, "Gateway timeout")
        if fault == "error":
            return self.error_response(500, "Injected server error")
        request.params = params
        with self.lock:
            response = handler(request)
        if (
            self.is_write(request)
            and response.status < 400
            and self.faults.lose_response_after_write()
        ):
            return self.error_response(502, "Injected error after the write was applied")
        return response

    MAX_MILESTONES = 200_000

    def mark(self, key: str) -> None:
        """Note when something first became true here (``placed:<order>``,
        ``paid:<order>``...), by this process's wall clock: what a benchmark reads to
        time the platform from outside (``GET /_sandbox/milestones/<system>``). Not part
        of the state: a reset clears it, nothing the systems serve shows it."""
        if len(self.milestones) < self.MAX_MILESTONES:
            self.milestones.setdefault(key, time.time())

    def not_found(self, path: str) -> Response:
        return json_response({"Message": f"No route for {path}"}, 404)
