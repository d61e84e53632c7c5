"""Rate limits per client and per officer: fixed one-minute windows.

Counters live in Redis when it is configured (shared by every replica) and in the
process otherwise. A limiter that cannot count (within `REDIS_WAIT` seconds: a silent
Redis must not hold the request) refuses with 503: limits protect the sources.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.errors import RateLimited, ServiceUnavailable

__all__ = [
    "REDIS_WAIT",
    "Limit",
    "MemoryRateLimiter",
    "RateLimiter",
    "RedisRateLimiter",
    "check_limits",
    "exceeded",
    "hits_of",
    "over_from",
    "redis_hits",
]

REDIS_WAIT: Final = 1.0
"""Seconds a spend or a count waits for Redis before the request is refused with 503."""

WINDOW = 60

Hit = tuple[str, str, int]
"""One hit to count: (scope, name, hits allowed a minute)."""
Over = tuple[int, int, int]
"""The first hit over its limit: (its position, hits in the window, seconds until it ends)."""

# KEYS: the counters; ARGV: their keys' lifetime, then each one's limit. Counts one hit
# on each in order and stops at the first over its limit (the later ones not counted):
# returns its position (from 1) and count, or {0, 0}.
_HIT_ALL: Final = """
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  if count == 1 then redis.call('EXPIRE', key, ARGV[1]) end
  if count > tonumber(ARGV[i + 1]) then return {i, count} end
end
return {0, 0}
"""


def _key(scope: str, name: str, window: int) -> str:
    digest = hashlib.sha256(f"{scope}\x00{name}".encode()).hexdigest()[:32]
    return f"gw:rl:{scope}:{digest}:{window}"


def redis_hits(hits: Sequence[Hit], now: int) -> tuple[list[str], list[int]]:
    """The counters' keys of `hits` in the window of `now`, and the script's arguments:
    their keys' lifetime, then each one's limit (`_HIT_ALL`)."""
    window = now // WINDOW
    keys = [_key(scope, name, window) for scope, name, _ in hits]
    return keys, [WINDOW + 5, *(per_minute for _, _, per_minute in hits)]


def over_from(position: int, count: int, now: int) -> Over | None:
    """What a script's answer (position from 1, or 0; count) means at `now`."""
    if not position:
        return None
    return int(position) - 1, int(count), WINDOW - now % WINDOW


class RateLimiter(Protocol):
    """Counts hits in the current window."""

    async def hit(self, scope: str, name: str) -> tuple[int, int]:
        """Count one hit; returns (hits in this window, seconds until it ends)."""
        ...

    async def hit_all(self, hits: Sequence[Hit]) -> Over | None:
        """Count one hit of each in order, stopping at the first over its limit (the
        later ones are not counted): that one, or `None` when all are within."""
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

    async def hit_all(self, hits: Sequence[Hit]) -> Over | None:
        """See `RateLimiter.hit_all`."""
        for position, (scope, name, per_minute) in enumerate(hits):
            count, retry_after = await self.hit(scope, name)
            if count > per_minute:
                return position, count, retry_after
        return None


class RedisRateLimiter:
    """Counters in Redis: INCR, with the key expiring with its window."""

    def __init__(self, redis: Redis, *, wait: float = REDIS_WAIT) -> None:
        self._redis = redis
        self._wait = wait
        self._hit_all = redis.register_script(_HIT_ALL)

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

    async def hit_all(self, hits: Sequence[Hit]) -> Over | None:
        """See `RateLimiter.hit_all`: one round trip for them all."""
        now = int(time.time())
        keys, args = redis_hits(hits, now)
        try:
            async with asyncio.timeout(self._wait):
                position, count = await self._hit_all(keys=keys, args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            raise ServiceUnavailable("The rate limiter does not answer.") from exc
        return over_from(position, count, now)


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
            raise self.exceeded(retry_after)

    def exceeded(self, retry_after: int) -> RateLimited:
        """The refusal of a hit over this limit."""
        return RateLimited(
            f"At most {self.per_minute} requests a minute per {self.scope}.",
            retry_after=retry_after,
        )


async def check_limits(limiter: RateLimiter, checks: Sequence[tuple[Limit, str]]) -> None:
    """`Limit.check` of each (limit, name) in order, in one call to `limiter`: the first
    over its limit raises `RateLimited`, and the ones after it are not counted."""
    exceeded(checks, await limiter.hit_all(hits_of(checks)))


def hits_of(checks: Sequence[tuple[Limit, str]]) -> list[Hit]:
    """The hits to count for `checks`: (scope, name, per minute) of each."""
    return [(limit.scope, name, limit.per_minute) for limit, name in checks]


def exceeded(checks: Sequence[tuple[Limit, str]], over: Over | None) -> None:
    """Raise the `RateLimited` of the check `over` names, if it names one."""
    if over is not None:
        position, _, retry_after = over
        raise checks[position][0].exceeded(retry_after)
