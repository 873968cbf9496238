"""Fault knobs per system, settable at start and at run time."""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, fields


@dataclass
class FaultConfig:
    latency_ms: int = 0
    """Added to every request."""
    error_rate: float = 0.0
    """Fraction of requests answered 5xx before anything is done."""
    error_after_write_rate: float = 0.0
    """Fraction of writes (POST/PUT/DELETE, and Znode's mutating GETs) that are carried
    out and then answered 5xx, as when a response is lost on the way back."""
    timeout_rate: float = 0.0
    """Fraction of requests that hang for ``timeout_seconds`` before answering 504."""
    timeout_seconds: float = 35.0
    burst_429_every: int = 0
    """In every run of N requests the first ``burst_429_length`` are answered 429
    (0: never). every=10, length=2: requests 1-2, 11-12, 21-22... are refused."""
    burst_429_length: int = 0
    retry_after: int = 1
    """Retry-After (seconds) sent with 429 answers."""
    webhooks_enabled: bool = True
    webhook_duplicate_rate: float = 0.0
    """Fraction of webhooks delivered twice."""
    webhook_reorder_window: int = 0
    """Webhooks are held in groups of this size and delivered shuffled (0: in order)."""

    def update(self, values: dict) -> None:
        known = {f.name: f.type for f in fields(self)}
        for key, value in values.items():
            if key not in known:
                raise KeyError(key)
            current = getattr(self, key)
            if isinstance(current, bool):
                value = (
                    value if isinstance(value, bool) else str(value).lower() in {"1", "true", "yes"}
                )
            elif isinstance(current, int):
                value = int(value)
            elif isinstance(current, float):
                value = float(value)
            setattr(self, key, value)

    def as_dict(self) -> dict:
        return asdict(self)


class FaultInjector:
    """Decides, per request, which fault (if any) applies. Seeded for repeatability."""

    def __init__(self, config: FaultConfig | None = None, seed: int | None = None) -> None:
        self.config = config or FaultConfig()
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.count = 0

    def reset(self) -> None:
        with self.lock:
            self.config = FaultConfig()
            self.count = 0

    def decide(self) -> str | None:
        """None, 'rate_limit', 'timeout' or 'error'."""
        c = self.config
        with self.lock:
            self.count += 1
            if c.burst_429_every and (self.count - 1) % c.burst_429_every < c.burst_429_length:
                return "rate_limit"
            roll = self.rng.random()
            if roll < c.timeout_rate:
                return "timeout"
            if roll < c.timeout_rate + c.error_rate:
                return "error"
            return None

    def lose_response_after_write(self) -> bool:
        with self.lock:
            return self.rng.random() < self.config.error_after_write_rate

    def chance(self, rate: float) -> bool:
        with self.lock:
            return self.rng.random() < rate
