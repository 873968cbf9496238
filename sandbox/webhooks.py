"""Outbound webhook delivery for the sandbox systems: a background thread per system
that POSTs events to the configured endpoints, with retries (where the real system
retries), and the duplicate / out-of-order knobs."""

from __future__ import annotations

import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from sandbox.faults import FaultInjector

logger = logging.getLogger("sandbox.webhooks")


@dataclass
class Endpoint:
    url: str
    secret: str = ""
    events: list[str] = field(default_factory=list)  # empty: all

    def wants(self, event_type: str) -> bool:
        return not self.events or event_type in self.events


@dataclass
class Delivery:
    endpoint: Endpoint
    event_type: str
    body: bytes
    attempt: int = 0


class WebhookDispatcher:
    """``sign(body, endpoint) -> headers`` builds the authentication headers."""

    def __init__(
        self,
        name: str,
        faults: FaultInjector,
        sign: Callable[[bytes, Endpoint], dict[str, str]],
        retry_delays: tuple[float, ...] = (),
    ) -> None:
        self.name = name
        self.faults = faults
        self.sign = sign
        self.retry_delays = retry_delays
        self.endpoints: list[Endpoint] = []
        self.queue: queue.Queue[Delivery | None] = queue.Queue()
        self.held: list[Delivery] = []
        self.log: list[dict] = []  # delivery attempts, newest last (bounded)
        self.timers: set[threading.Timer] = set()  # retries waiting for their delay
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"{name}-webhooks", daemon=True)
        self.thread.start()

    def reset(self) -> None:
        """Forget endpoints, held deliveries and waiting retries: nothing emitted
        before a reset reaches an endpoint registered after it."""
        with self.lock:
            self.endpoints, self.held, self.log = [], [], []
            timers, self.timers = self.timers, set()
        for timer in timers:
            timer.cancel()
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            if item is None:  # keep a stop request
                self.queue.put(None)
                break

    def add_endpoint(self, endpoint: Endpoint) -> None:
        with self.lock:
            self.endpoints = [e for e in self.endpoints if e.url != endpoint.url] + [endpoint]

    def emit(self, event_type: str, body: bytes) -> None:
        config = self.faults.config
        if not config.webhooks_enabled:
            return
        with self.lock:
            targets = [e for e in self.endpoints if e.wants(event_type)]
        for endpoint in targets:
            copies = 2 if self.faults.chance(config.webhook_duplicate_rate) else 1
            for _ in range(copies):
                self._enqueue(Delivery(endpoint, event_type, body))

    def _enqueue(self, delivery: Delivery) -> None:
        window = self.faults.config.webhook_reorder_window
        if window <= 1:
            self.queue.put(delivery)
            return
        with self.lock:
            self.held.append(delivery)
            if len(self.held) < window:
                return
            batch, self.held = self.held, []
        self.faults.rng.shuffle(batch)
        for item in batch:
            self.queue.put(item)

    def flush(self) -> None:
        """Release held (reorder window) deliveries now."""
        with self.lock:
            batch, self.held = self.held, []
        self.faults.rng.shuffle(batch)
        for item in batch:
            self.queue.put(item)

    def pending(self) -> int:
        with self.lock:
            waiting = len(self.timers)
        return self.queue.qsize() + len(self.held) + waiting

    def _run(self) -> None:
        while True:
            delivery = self.queue.get()
            if delivery is None:
                return
            self._deliver(delivery)

    def _deliver(self, delivery: Delivery) -> None:
        delivery.attempt += 1
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": f"sandbox-{self.name}",
        }
        headers.update(self.sign(delivery.body, delivery.endpoint))
        # Endpoint URLs are checked to be http(s) when registered.
        request = urllib.request.Request(  # noqa: S310
            delivery.endpoint.url, data=delivery.body, headers=headers, method="POST"
        )
        status: int | str
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            status = f"error: {exc}"
        with self.lock:
            self.log.append(
                {
                    "event_type": delivery.event_type,
                    "url": delivery.endpoint.url,
                    "attempt": delivery.attempt,
                    "status": status,
                    "at": time.time(),
                }
            )
            del self.log[:-500]
        if isinstance(status, int) and 200 <= status < 300:
            return
        if delivery.attempt <= len(self.retry_delays):
            delay = self.retry_delays[delivery.attempt - 1]

            def retry() -> None:
                with self.lock:
                    if timer not in self.timers:
                        return  # canceled by a reset
                    self.timers.discard(timer)
                self.queue.put(delivery)

            timer = threading.Timer(delay, retry)
            timer.daemon = True
            with self.lock:
                self.timers.add(timer)
            timer.start()
        else:
            logger.warning(
                "sandbox %s webhook to %s gave up: %s", self.name, delivery.endpoint.url, status
            )
