"""Rate limits per client and per officer: fixed one-minute windows.

Counters live in Redis when it is configured (shared by every replica) and in the
process otherwise. A limiter that cannot count (within `REDIS_WAIT` seconds: a silent
Redis must not hold the request) refuses with 503: limits protect the sources.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.admission._replay import REDIS_WAIT
from gateway.errors import RateLimited, ServiceUnavailable

__all__ = ["Limit", "MemoryRateLimiter", "RateLimiter", "RedisRateLimiter"]

WINDOW = 60


def _key(scope: str, name: str, window: int) -> str:
    digest = hashlib.sha256(f"{scope}\x00{name}".encode()).hexdigest()[:32]
    return f"gw:rl:{scope}:{digest}:{window}"


class RateLimiter(Protocol):
    """Counts hits in the current window."""

    async def hit(self, scope: str, name: str) -> tuple[int, int]:
        """Count one hit; returns (hits in this window, seconds until it ends)."""
        ...


class MemoryRateLimiter:
    """Counters in this process (single-process mode)."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._window = 0

    async def hit(self, scope: str, name: str) -> tuple[int, int]:
        """See `RateLimiter.hit`."""
        now = int(time.time())
        window = now // WINDOW
        if window != self._window:
            self._counts, self._window = {}, window
        key = _key(scope, name, window)
        self._counts[key] = self._counts.get(key, 0) + 1
        return self._counts[key], WINDOW - now % WINDOW


class RedisRateLimiter:
    """Counters in Redis: INCR, with the key expiring with its window."""

    def __init__(self, redis: Redis, *, wait: float = REDIS_WAIT) -> None:
        self._redis = redis
        self._wait = wait

    async def hit(self, scope: str, name: str) -> tuple[int, int]:
        """See `RateLimiter.hit`."""
        now = int(time.time())
        key = _key(scope, name, now // WINDOW)
        try:
            async with asyncio.timeout(self._wait), self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, WINDOW + 5)
                count, _ = await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            raise ServiceUnavailable("The rate limiter does not answer.") from exc
        return int(count), WINDOW - now % WINDOW


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `per_minute` hits a minute for each name of one scope (client, officer...)."""

    limiter: RateLimiter
    scope: str
    per_minute: int

    async def check(self, name: str) -> None:
        """Count one hit for `name`; raise `RateLimited` once it is over the limit."""
        count, retry_after = await self.limiter.hit(self.scope, name)
        if count > self.per_minute:
            raise RateLimited(
                f"At most {self.per_minute} requests a minute per {self.scope}.",
                retry_after=retry_after,
            )
