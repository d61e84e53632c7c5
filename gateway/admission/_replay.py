"""Single use of request tokens: a `(issuer, jti)` is accepted once until it expires.

Production (several replicas) keeps the cache in Redis with `SET NX EX`; the in-process
cache is only correct while one process serves, which is the embedded SQLite mode.
A cache that cannot answer (within `REDIS_WAIT` seconds: a silent Redis must not hold a
request until its deadline, whose 503 nobody records) refuses the request with 503: a
replay must never pass unnoticed.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import time
from typing import Final, Protocol

import sqlalchemy as sa
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import ServiceUnavailable
from gateway.records import read_envelope
from gateway.storage import events

__all__ = ["REDIS_WAIT", "MemoryReplayCache", "RedisReplayCache", "ReplayCache"]


REDIS_WAIT: Final = 1.0
"""Seconds admission waits for Redis (a spend, a count) before refusing with 503."""


def _key(issuer: str, jti: str) -> str:
    return "gw:jti:" + hashlib.sha256(f"{issuer}\x00{jti}".encode()).hexdigest()


class ReplayCache(Protocol):
    """Remembers spent token ids."""

    async def first_use(self, issuer: str, jti: str, ttl: int) -> bool:
        """Spend `(issuer, jti)` for `ttl` seconds; `False` if it was spent already."""
        ...


class MemoryReplayCache:
    """In-process cache for the single-process embedded mode, bounded in size.

    A restart would forget what was spent; `restore` refills it from the access
    records of the last few minutes, which name the jti of every admitted request.
    """

    def __init__(self, *, max_entries: int = 1_000_000) -> None:
        self._expiry: dict[str, float] = {}
        self._max = max_entries

    async def first_use(self, issuer: str, jti: str, ttl: int) -> bool:
        """See `ReplayCache.first_use`."""
        now = time.monotonic()
        key = _key(issuer, jti)
        expiry = self._expiry.get(key)
        if expiry is not None and expiry > now:
            return False
        if len(self._expiry) >= self._max:
            self._expiry = {k: e for k, e in self._expiry.items() if e > now}
            if len(self._expiry) >= self._max:
                raise ServiceUnavailable("The replay cache is full; retry shortly.")
        self._expiry[key] = now + ttl
        return True

    async def restore(self, engine: AsyncEngine, *, lifetime: int) -> int:
        """Re-spend the jtis recorded within the last `lifetime` seconds; returns how many."""
        since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=lifetime)
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


class RedisReplayCache:
    """Shared cache for several replicas: `SET key 1 NX EX ttl`."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def first_use(self, issuer: str, jti: str, ttl: int) -> bool:
        """See `ReplayCache.first_use`."""
        try:
            async with asyncio.timeout(REDIS_WAIT):
                created = await self._redis.set(_key(issuer, jti), b"1", nx=True, ex=ttl)
        except (RedisError, OSError, TimeoutError) as exc:
            raise ServiceUnavailable("The replay cache does not answer.") from exc
        return bool(created)
