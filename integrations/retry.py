"""Retry policy: exponential backoff with jitter, Retry-After honoured, attempt cap."""

from __future__ import annotations

import random
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_seconds: float
    max_seconds: float

    @classmethod
    def for_flow(cls, flow) -> RetryPolicy:
        conf = settings.INTEGRATIONS
        return cls(
            max_attempts=flow.max_attempts or conf["RETRY_MAX_ATTEMPTS"],
            base_seconds=flow.retry_base_seconds or conf["RETRY_BASE_SECONDS"],
            max_seconds=flow.retry_max_seconds or conf["RETRY_MAX_SECONDS"],
        )

    def backoff(self, attempt: int) -> float:
        """Ceiling of the delay after failed attempt number ``attempt`` (1-based)."""
        return min(self.max_seconds, self.base_seconds * (2 ** max(0, attempt - 1)))

    def delay(
        self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait: "equal jitter" in [backoff/2, backoff], never below Retry-After."""
        ceiling = self.backoff(attempt)
        jittered = ceiling / 2 + (rng or random).uniform(0, ceiling / 2)
        if retry_after is not None:
            honoured = min(float(retry_after), settings.INTEGRATIONS["RETRY_AFTER_MAX_SECONDS"])
            return max(jittered, honoured)
        return jittered
