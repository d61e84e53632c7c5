"""Single use of request tokens: a `(issuer, jti)` is accepted once until it expires.

Production (several replicas) keeps the cache in Redis; the in-process cache is only
correct while one process serves, which is the embedded SQLite mode. A cache that
cannot answer (within `REDIS_WAIT` seconds: a silent Redis must not hold a request
until no answer can be recorded) refuses the request with 503: a replay must never
pass unnoticed.

One exception to single use: a request the gateway itself answered 503 served nothing,
so its client may send the same token once more. Each spend claims the token for one
attempt (`c:<attempt>`); only the gateway that answered 503 to that attempt `release`s
it (`r:<attempt>`), and only while the token still holds that attempt's own claim, so
a token another attempt spent (and maybe served) is never released. The next spend of
a released token takes it for good (`u:<attempt>`, never released again): one reuse.
A release that cannot reach Redis (it is often why the answer was 503) is kept and
written before this replica's next spend; until then the retry is refused as a replay,
which is the safe side.

A spend may carry the request's rate-limit hits: the Redis cache counts them in the
same round trip, after a first use (a replay counts none), as the rate limiter would
(`_ratelimit`); the in-process cache leaves them to the limiter (`Spent.counted`).

The Redis cache sends the spends of requests arriving together (in one turn of the
event loop) in one script call, in the order they came, each decided and counted as if
it were alone: a call of redis-py cost about 170 µs of the event loop's time (a tenth of
a request's), however many spends it carries. A call does not wait for the one in
flight: holding spends back until it returned cost more than the calls it saved.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import sqlalchemy as sa
import structlog
import uuid_utils
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.admission._ratelimit import REDIS_WAIT, Hit, Over, over_from, redis_hits
from gateway.errors import ServiceUnavailable
from gateway.instants import utc_now
from gateway.records import read_envelope
from gateway.storage import events

__all__ = ["REDIS_WAIT", "MemoryReplayCache", "RedisReplayCache", "ReplayCache", "Spent"]

log = structlog.get_logger(__name__)

_MAX_RELEASES: Final = 10_000

# Atomic in Redis: spends, one after another in the order given. Each is the token's
# key then its counters in KEYS; in ARGV its attempt, ttl, the number of its counters,
# their lifetime, then each one's limit. After a first use or a reuse, the counters are
# counted as `_HIT_ALL` counts them (none when the spend carries none). Returns three
# numbers a spend: its answer (1 for a first use, 2 for the reuse of a released token,
# 0 for a replay), then the position (from 1) and count of the first hit over its limit,
# or 0, 0. An attempt's own claim arriving late (after its 503 and release) does not take
# the reuse meant for its client's retry.
_SPEND_AND_HIT: Final = """
local answers = {}
local k, a = 1, 1
while a <= #ARGV do
  local n = tonumber(ARGV[a + 2])
  local used, position, count = 0, 0, 0
  local v = redis.call('GET', KEYS[k])
  if not v then
    redis.call('SET', KEYS[k], 'c:' .. ARGV[a], 'EX', ARGV[a + 1])
    used = 1
  elseif string.sub(v, 1, 2) == 'r:' and v ~= 'r:' .. ARGV[a] then
    redis.call('SET', KEYS[k], 'u:' .. ARGV[a], 'EX', ARGV[a + 1])
    used = 2
  end
  if used ~= 0 then
    for i = 1, n do
      local hits = redis.call('INCR', KEYS[k + i])
      if hits == 1 then redis.call('EXPIRE', KEYS[k + i], ARGV[a + 3]) end
      if hits > tonumber(ARGV[a + 3 + i]) then
        position, count = i, hits
        break
      end
    end
  end
  answers[#answers + 1] = used
  answers[#answers + 1] = position
  answers[#answers + 1] = count
  k = k + 1 + n
  a = a + 4 + n
end
return answers
"""
# KEYS[1]: the token's key; ARGV: the attempt, ttl. Released only while the token
# holds that attempt's claim, or nothing (the claim never arrived, or is still on its way).
_RELEASE: Final = """
local v = redis.call('GET', KEYS[1])
if (not v) or v == 'c:' .. ARGV[1] then
  redis.call('SET', KEYS[1], 'r:' .. ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0
"""


def _key(issuer: str, jti: str) -> str:
    return "gw:jti:" + hashlib.sha256(f"{issuer}\x00{jti}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Spent:
    """One attempt's spend of a token: `reused` when it reuses a token refused with 503."""

    issuer: str
    jti: str
    until: float
    """When the cache forgets the token, by the cache's clock."""
    attempt: str = field(default_factory=lambda: uuid_utils.uuid4().hex)
    reused: bool = False
    counted: bool = False
    """Whether the rate-limit hits given with the spend were counted with it."""
    over: Over | None = None
    """If counted: the first hit over its limit (the later ones not counted)."""

    @property
    def key(self) -> str:
        return _key(self.issuer, self.jti)


class ReplayCache(Protocol):
    """Remembers spent token ids."""

    async def first_use(
        self, issuer: str, jti: str, ttl: int, *, hits: Sequence[Hit] = ()
    ) -> Spent | None:
        """Spend `(issuer, jti)` for `ttl` seconds; `None` if it was spent already.

        `hits`: the request's rate-limit hits, which a cache sharing the limiter's store
        counts with the spend (`Spent.counted`). `ServiceUnavailable` when the cache
        cannot answer: the attempt is then released (the request is answered 503).
        """
        ...

    async def release(self, spent: Spent) -> None:
        """The gateway answered 503 to the request of `spent`: its token may come once more.

        Never for a reuse, and never raises (a release that cannot be written waits).
        """
        ...


class MemoryReplayCache:
    """In-process cache for the single-process embedded mode, bounded in size.

    A restart would forget what was spent; `restore` refills it from the access
    records of the last few minutes, which name the jti of every admitted request.
    """

    def __init__(self, *, max_entries: int = 1_000_000) -> None:
        self._entries: dict[str, tuple[float, str]] = {}
        self._max = max_entries

    async def first_use(
        self, issuer: str, jti: str, ttl: int, *, hits: Sequence[Hit] = ()
    ) -> Spent | None:
        """See `ReplayCache.first_use`; the hits are left to the rate limiter."""
        now = time.monotonic()
        key = _key(issuer, jti)
        entry = self._entries.get(key)
        spent = Spent(issuer, jti, now + ttl)
        if entry is not None and entry[0] > now:
            if not entry[1].startswith("r:"):
                return None
            spent = Spent(issuer, jti, spent.until, reused=True)
        if len(self._entries) >= self._max:
            self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
            if len(self._entries) >= self._max:
                raise ServiceUnavailable("The replay cache is full; retry shortly.")
        state = "u:" if spent.reused else "c:"
        self._entries[key] = (now + ttl, state + spent.attempt)
        return spent

    async def release(self, spent: Spent) -> None:
        """See `ReplayCache.release`."""
        entry = self._entries.get(spent.key)
        if not spent.reused and entry is not None and entry[1] == "c:" + spent.attempt:
            self._entries[spent.key] = (entry[0], "r:" + spent.attempt)

    async def restore(self, engine: AsyncEngine, *, lifetime: int) -> int:
        """Re-spend the jtis recorded within the last `lifetime` seconds; returns how many."""
        since = utc_now() - datetime.timedelta(seconds=lifetime)
        query = sa.select(events.c.client_id, events.c.envelope).where(
            events.c.ts >= since, events.c.type.in_(("access", "consent"))
        )
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        count = 0
        for row in rows:
            jti = read_envelope(row.envelope).get("jti")
            if row.client_id and isinstance(jti, str):
                await self.first_use(row.client_id, jti, lifetime)
                count += 1
        return count


_Spend = tuple[list[str], list[Any], asyncio.Future[list[int]]]
"""A spend waiting for its call: its keys, its arguments, and its answer to come."""


class RedisReplayCache:
    """Shared cache for several replicas: claims, releases and reuses by Lua scripts."""

    def __init__(self, redis: Redis, *, wait: float = REDIS_WAIT) -> None:
        self._redis = redis
        self._wait = wait
        self._spend = redis.register_script(_SPEND_AND_HIT)
        self._release = redis.register_script(_RELEASE)
        # Releases Redis has not taken yet, oldest first.
        self._releases: OrderedDict[str, Spent] = OrderedDict()
        # Spends waiting for the next call, and the task that will make it.
        self._waiting: list[_Spend] = []
        self._sender: asyncio.Task[None] | None = None

    async def first_use(
        self, issuer: str, jti: str, ttl: int, *, hits: Sequence[Hit] = ()
    ) -> Spent | None:
        """See `ReplayCache.first_use`: the hits are counted in the same round trip."""
        now = time.time()
        spent = Spent(issuer, jti, now + ttl)
        keys, args = redis_hits(hits, int(now))
        answer: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._waiting.append(([spent.key, *keys], [spent.attempt, ttl, len(keys), *args], answer))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send())
        try:
            async with asyncio.timeout(self._wait):
                used, position, count = await answer
        except (RedisError, OSError, TimeoutError) as exc:
            # Whether the claim arrived is unknown: the answer is 503, so it is released.
            self._keep(spent)
            raise ServiceUnavailable("The replay cache does not answer.") from exc
        except asyncio.CancelledError:
            self._keep(spent)  # past the request's deadline (503): this attempt serves nothing
            raise
        if not used:
            return None
        return Spent(
            issuer,
            jti,
            spent.until,
            spent.attempt,
            reused=used == 2,
            counted=bool(hits),
            over=over_from(position, count, int(now)),
        )

    async def _send(self) -> None:
        """Calls the script once with the spends waiting (those that arrived since the
        last call left), while earlier calls may still be in flight.

        A spend whose request stopped waiting (its deadline, or Redis's) is not sent:
        it was answered 503 and is among the releases.
        """
        spends = [spend for spend in self._waiting if not spend[2].done()]
        self._waiting, self._sender = [], None
        if not spends:
            return
        try:
            async with asyncio.timeout(self._wait):
                await self._write_releases()
                answers = await self._spend(
                    keys=[key for keys, _, _ in spends for key in keys],
                    args=[arg for _, args, _ in spends for arg in args],
                )
        except Exception as exc:  # each spend's request hears it, as if alone
            for _, _, answer in spends:
                if not answer.done():
                    answer.set_exception(exc)
            return
        for i, (_, _, answer) in enumerate(spends):
            if not answer.done():
                answer.set_result([int(n) for n in answers[3 * i : 3 * i + 3]])

    async def release(self, spent: Spent) -> None:
        """See `ReplayCache.release`; written before this replica's next spend."""
        if not spent.reused:
            self._keep(spent)

    def _keep(self, spent: Spent) -> None:
        self._releases[spent.key + spent.attempt] = spent
        while len(self._releases) > _MAX_RELEASES:
            # Dropped: that client's retry is refused as a replay, never served twice.
            self._releases.popitem(last=False)
            log.warning("replay_release_dropped")

    async def _write_releases(self) -> None:
        for name, spent in list(self._releases.items()):
            ttl = int(spent.until - time.time())
            if ttl > 0:
                await self._release(keys=[spent.key], args=[spent.attempt, ttl])
            self._releases.pop(name, None)  # another spend may have written it too
