"""Outbound pacing per connection, shared by every worker process (pyrate-limiter).

The bucket lives in Redis when REDIS_URL is set (several machines), otherwise in a
SQLite file under VAR_DIR guarded by a file lock (several processes on one machine).
A connection's ``rate_limit_per_second`` may be fractional: 2.5/s becomes 5 per 2 s.
"""

from __future__ import annotations

import threading
from fractions import Fraction
from typing import TYPE_CHECKING

from django.conf import settings
from pyrate_limiter import Limiter, Rate

from integrations.kernel.exceptions import RateLimited

if TYPE_CHECKING:
    from integrations.kernel.types import Connection

_limiters: dict[tuple[int, str], Limiter] = {}
_lock = threading.Lock()


def rate_for(per_second) -> Rate:
    fraction = Fraction(str(per_second)).limit_denominator(1000)
    if fraction <= 0:
        raise ValueError("rate limit must be positive")
    return Rate(fraction.numerator, 1000 * fraction.denominator)


def _bucket(connection: Connection, rate: Rate):
    key = f"integrations-throttle-{connection.pk}"
    if settings.REDIS_URL:
        import redis
        from pyrate_limiter import RedisBucket

        return RedisBucket.init([rate], redis.Redis.from_url(settings.REDIS_URL), key)
    from pyrate_limiter import SQLiteBucket

    return SQLiteBucket.init_from_file(
        [rate],
        table=key.replace("-", "_"),
        db_path=str(settings.VAR_DIR / "throttle.sqlite3"),
        use_file_lock=True,
    )


def limiter_for(connection: Connection) -> Limiter:
    rate = rate_for(connection.rate_limit_per_second)
    cache_key = (connection.pk, repr(rate))
    with _lock:
        limiter = _limiters.get(cache_key)
        if limiter is None:
            limiter = Limiter(_bucket(connection, rate))
            _limiters[cache_key] = limiter
    return limiter


def throttle(connection: Connection, *, timeout: float = 30.0) -> None:
    """Wait for a slot; a queue longer than ``timeout`` is reported as RateLimited
    (retryable), so a job backs off instead of holding a worker."""
    if connection.pk is None:
        return
    if not limiter_for(connection).try_acquire(str(connection.pk), blocking=True, timeout=timeout):
        raise RateLimited(
            f"{connection.name}: local rate limit of {connection.rate_limit_per_second}/s "
            f"kept us waiting over {timeout:.0f} s",
            retry_after=timeout,
        )
