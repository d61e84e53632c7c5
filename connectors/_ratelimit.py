"""A rate limit towards each source: the gateway never calls an agency more often than
the agency allows (its manifest's `rate_limit`: `per_second`, `burst`).

Permits follow GCRA (the generic cell rate algorithm, a token bucket kept as one
timestamp): one permit each `1 / per_second` seconds, up to `burst` of them at once
after a quiet spell. A caller may *reserve* a permit that comes later; it then waits
for it, but only when the permit comes before its request's deadline (less the time a
call needs, `_MIN_CALL`); otherwise nothing is reserved and the call fails at once with
`SourceRateLimited`, which is neither retried nor a failure of the source for its
circuit breaker. Every call takes a permit: retries too (a retry without one leaves
the failure that asked for it). The permit comes before the bulkhead's slot: when a
source is so slow that every slot is taken, calls go when slots free, later than
their permits and at most `max_concurrency` at once.

Where the permits are kept:

- `LocalLimits`: in this process, for one gateway process (and connectors built
  without a registry, as in tests).
- `RedisLimits`: in Redis, one key per connector name, so every replica spends the
  same allowance. One Lua script reads the server's `TIME` and moves the key's
  timestamp atomically; the key expires when the bucket is full again.

A Redis that does not answer within `REDIS_WAIT` seconds fails *open*: the call takes
a permit from this replica's own bucket instead, Redis is left alone for
`REDIS_PAUSE` seconds, and `gateway_source_rate_limit_unshared_total` counts it (a
warning at most once a minute). Failing closed would turn a Redis outage into an
outage of every source; failing open costs at most one allowance per replica for a
while, and the source keeps its circuit breaker and bulkhead (`max_concurrency`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Final, Protocol, runtime_checkable

import structlog
from prometheus_client import Counter, Histogram
from redis.asyncio import Redis
from redis.exceptions import RedisError

from connectors._manifest import ManifestBase, RateLimitSpec
from connectors._resilience import _MIN_CALL, time_left
from gateway.errors import SourceRateLimited

__all__ = [
    "LimitedConnector",
    "LocalLimiter",
    "LocalLimits",
    "RedisLimiter",
    "RedisLimits",
    "SourceLimiter",
    "SourceLimits",
    "take_permit",
]

log = structlog.get_logger(__name__)

REDIS_WAIT: Final = 0.2
"""Seconds a permit waits for Redis before this replica's own bucket gives it."""
REDIS_PAUSE: Final = 5.0
"""Seconds Redis is left alone after it failed to answer (the own bucket serves)."""
_WARN_EVERY: Final = 60.0
_EPSILON: Final = 1e-9
"""Seconds of floating-point error forgiven: the last permit of a burst is free now."""

RATE_LIMITED = Counter(
    "gateway_source_rate_limited_total",
    "Calls not made because the source's rate limit had no permit before the deadline.",
    ["connector"],
)
RATE_LIMIT_WAIT = Histogram(
    "gateway_source_rate_limit_wait_seconds",
    "Time a call waited for a permit of its source's rate limit.",
    ["connector"],
    buckets=(0.0, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
UNSHARED = Counter(
    "gateway_source_rate_limit_unshared_total",
    "Permits taken from this replica's own bucket because Redis did not answer.",
    ["connector"],
)

# Atomic in Redis. KEYS[1]: the connector's key. ARGV: microseconds between permits,
# burst, the longest wait the caller accepts (microseconds). The key holds the
# theoretical arrival time (TAT) in microseconds of the server's clock. Returns the
# microseconds until the reserved permit (0: now), or -1: none in time, none reserved.
_RESERVE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local next_tat = tat + interval
local wait = next_tat - burst * interval - now
if wait < 1 then wait = 0 end
if wait > tonumber(ARGV[3]) then return -1 end
redis.call('SET', KEYS[1], string.format('%.0f', next_tat),
  'PX', math.ceil((next_tat - now) / 1000) + 1000)
return math.ceil(wait)
"""


class SourceLimiter(Protocol):
    """The permits to call one source."""

    async def reserve(self, max_wait: float) -> float | None:
        """Reserve the next permit if it comes within `max_wait` seconds.

        Returns the seconds until it comes (0: now), or `None` when it comes later, in
        which case nothing is reserved.
        """
        ...


class SourceLimits(Protocol):
    """Gives each source its limiter, from its manifest's `rate_limit`."""

    def limiter(self, manifest: ManifestBase) -> SourceLimiter | None:
        """The limiter of `manifest`'s source; `None` when it has no `rate_limit`."""
        ...


@runtime_checkable
class LimitedConnector(Protocol):
    """A connector that takes its limiter from the registry (the built-in kinds do).

    A plug-in without `limit_rate` still works; its manifest's `rate_limit` is then
    not applied, and the registry says so at start-up.
    """

    def limit_rate(self, limiter: SourceLimiter | None) -> None:
        """Take permits from `limiter` (`None`: no limit) before each call."""
        ...


class LocalLimiter:
    """GCRA in this process: `burst` permits at once, then one each `1 / per_second` s."""

    __slots__ = ("_clock", "_tat", "burst", "interval")

    def __init__(self, spec: RateLimitSpec, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / spec.per_second
        self.burst = spec.capacity
        self._clock = clock
        self._tat = -math.inf  # the theoretical arrival time of the next permit

    def __repr__(self) -> str:
        return f"LocalLimiter(per_second={1 / self.interval:g}, burst={self.burst})"

    async def reserve(self, max_wait: float) -> float | None:
        """See `SourceLimiter.reserve`."""
        return self.reserve_now(max_wait)

    def reserve_now(self, max_wait: float) -> float | None:
        """`reserve`, without awaiting anything."""
        now = self._clock()
        tat = max(self._tat, now) + self.interval
        wait = tat - self.burst * self.interval - now
        wait = 0.0 if wait < _EPSILON else wait
        if wait > max_wait:
            return None
        self._tat = tat
        return wait


class RedisLimiter:
    """GCRA in Redis, shared by every replica; this replica's own bucket when Redis is
    silent (see the module's description)."""

    __slots__ = ("_down_until", "_key", "_local", "_redis", "_script", "_wait", "_warned", "name")

    def __init__(
        self,
        redis: Redis,
        spec: RateLimitSpec,
        *,
        name: str,
        key: str,
        wait: float = REDIS_WAIT,
    ) -> None:
        self.name = name
        self._redis = redis
        self._script = redis.register_script(_RESERVE)
        self._key = key
        self._local = LocalLimiter(spec)
        self._wait = wait
        self._down_until = -math.inf
        self._warned = -math.inf

    def __repr__(self) -> str:
        return f"RedisLimiter(name={self.name!r}, burst={self._local.burst})"

    async def reserve(self, max_wait: float) -> float | None:
        """See `SourceLimiter.reserve`."""
        now = time.monotonic()
        if now < self._down_until:
            return self._unshared(max_wait)
        interval = self._local.interval * 1e6
        try:
            async with asyncio.timeout(self._wait):
                waited = await self._script(
                    keys=[self._key],
                    args=[repr(interval), self._local.burst, repr(max(0.0, max_wait) * 1e6)],
                )
        except (RedisError, OSError, TimeoutError) as exc:
            self._down_until = time.monotonic() + REDIS_PAUSE
            if now - self._warned >= _WARN_EVERY:
                self._warned = now
                log.warning(
                    "source_rate_limit_unshared", connector=self.name, error=type(exc).__name__
                )
            return self._unshared(max_wait)
        waited = int(waited)
        return None if waited < 0 else waited / 1e6

    def _unshared(self, max_wait: float) -> float | None:
        UNSHARED.labels(self.name).inc()
        return self._local.reserve_now(max_wait)


class LocalLimits:
    """Limiters in this process: one gateway process serves."""

    def limiter(self, manifest: ManifestBase) -> SourceLimiter | None:
        """See `SourceLimits.limiter`."""
        spec = manifest.rate_limit
        return None if spec is None else LocalLimiter(spec)


class RedisLimits:
    """Limiters in Redis, keyed `{prefix}{connector name}`: replicas share each allowance."""

    def __init__(self, redis: Redis, *, prefix: str = "gw:src:", wait: float = REDIS_WAIT) -> None:
        self._redis = redis
        self._prefix = prefix
        self._wait = wait

    def limiter(self, manifest: ManifestBase) -> SourceLimiter | None:
        """See `SourceLimits.limiter`."""
        spec = manifest.rate_limit
        if spec is None:
            return None
        return RedisLimiter(
            self._redis,
            spec,
            name=manifest.name,
            key=self._prefix + manifest.name,
            wait=self._wait,
        )


async def take_permit(
    limiter: SourceLimiter | None,
    *,
    source: str,
    call_timeout: float,
    budget: float,
    within: float | None = None,
) -> float:
    """Take a permit to call `source`, waiting for it if it comes in time.

    `budget` is the time the call was given (`call_budget` of `call_timeout`). A permit
    is waited for until the request's deadline less `_MIN_CALL` (without a deadline: for
    `call_timeout`), and at most `within` seconds when given. Returns the call's budget once
    the permit is in hand (cut to the deadline after a wait); raises `SourceRateLimited`
    when no permit comes in time, and then nothing is reserved.
    """
    if limiter is None:
        return budget
    left = time_left()
    most = call_timeout if left is None else left - _MIN_CALL
    if within is not None:
        most = min(most, within)
    wait = await limiter.reserve(max(0.0, most))
    if wait is None:
        RATE_LIMITED.labels(source).inc()
        raise SourceRateLimited(source=source)
    RATE_LIMIT_WAIT.labels(source).observe(wait)
    if wait > 0:
        await asyncio.sleep(wait)
        budget = call_timeout
    left = time_left()
    if left is None:
        return budget
    if left < _MIN_CALL:  # Redis or the loop were late: the permit is spent, no call made
        RATE_LIMITED.labels(source).inc()
        raise SourceRateLimited(source=source)
    return min(budget, left)
