"""The rate limits in real Redis: one round trip counts a request against every limit,
and spends its token too when the replay cache is given the hits.

The script counts the hits in order and stops at the first over its limit: the limits
after it are not counted, as when each was checked in turn. Each test counts under
names of its own, so tests sharing the Redis database never meet.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from redis.asyncio import Redis

from gateway.admission._ratelimit import (
    WINDOW,
    Limit,
    MemoryRateLimiter,
    RedisRateLimiter,
    check_limits,
    redis_hits,
)
from gateway.admission._replay import RedisReplayCache
from gateway.errors import RateLimited, ServiceUnavailable


@pytest.fixture
async def redis(redis_url: str):  # type: ignore[no-untyped-def]
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.mark.parametrize("kind", ["redis", "memory"])
async def test_every_limit_is_counted_until_the_first_is_over(redis: Redis, kind: str) -> None:
    limiter = RedisRateLimiter(redis) if kind == "redis" else MemoryRateLimiter()
    client, officer = f"client-{uuid.uuid4().hex}", f"officer-{uuid.uuid4().hex}"
    per_client, per_officer = Limit(limiter, "client", 3), Limit(limiter, "officer", 2)
    checks = [(per_client, client), (per_officer, officer)]
    await check_limits(limiter, checks)
    await check_limits(limiter, checks)
    with pytest.raises(RateLimited) as caught:
        await check_limits(limiter, checks)  # the officer's third
    assert "per officer" in caught.value.message
    assert 0 < (caught.value.retry_after or 0) <= WINDOW
    with pytest.raises(RateLimited) as caught:
        await check_limits(limiter, checks)  # the client's fourth: the officer's not counted
    assert "per client" in caught.value.message
    # Counted as each check in turn would have: the client 4, the officer 3.
    assert (await limiter.hit("client", client))[0] == 5
    assert (await limiter.hit("officer", officer))[0] == 4


async def test_the_counter_expires_with_its_window(redis: Redis) -> None:
    limiter = RedisRateLimiter(redis)
    name = f"client-{uuid.uuid4().hex}"
    now = int(time.time())
    assert await limiter.hit_all([("client", name, 10)]) is None
    # Its own counter only (others' may expire between a scan and their ttl), in the
    # window of the hit, or the next if the minute turned meanwhile.
    keys = [redis_hits([("client", name, 10)], at)[0][0] for at in (now, now + WINDOW)]
    ttls = [t for t in [await redis.ttl(k) for k in keys] if t != -2]
    assert len(ttls) == 1
    assert 0 < ttls[0] <= WINDOW + 5


async def test_a_spend_counts_the_limits_in_the_same_round_trip(redis: Redis) -> None:
    cache, limiter = RedisReplayCache(redis), RedisRateLimiter(redis)
    issuer, officer = f"client-{uuid.uuid4().hex}", f"officer-{uuid.uuid4().hex}"
    hits = [("client", issuer, 3), ("officer", officer, 2)]
    first = await cache.first_use(issuer, "jti-1", 60, hits=hits)
    assert first is not None
    assert (first.counted, first.over) == (True, None)
    # A replay is refused and counts nothing.
    assert await cache.first_use(issuer, "jti-1", 60, hits=hits) is None
    second = await cache.first_use(issuer, "jti-2", 60, hits=hits)
    assert second is not None
    assert second.over is None
    third = await cache.first_use(issuer, "jti-3", 60, hits=hits)
    # The officer's third is over: the token is spent all the same, as when the limits
    # are counted after the spend.
    assert third is not None
    assert third.over is not None
    position, count, retry_after = third.over
    assert (position, count) == (1, 3)
    assert 0 < retry_after <= WINDOW
    assert await cache.first_use(issuer, "jti-3", 60) is None
    # The rate limiter reads the same counters: the client 3, the officer 3.
    assert (await limiter.hit("client", issuer))[0] == 4
    assert (await limiter.hit("officer", officer))[0] == 4


async def test_a_spend_with_limits_leaves_the_one_reuse_of_a_released_token(redis: Redis) -> None:
    cache = RedisReplayCache(redis)
    issuer = f"client-{uuid.uuid4().hex}"
    hits = [("client", issuer, 100)]
    spent = await cache.first_use(issuer, "jti-1", 60, hits=hits)
    assert spent is not None
    await cache.release(spent)
    again = await cache.first_use(issuer, "jti-1", 60, hits=hits)
    assert again is not None
    assert (again.reused, again.counted) == (True, True)
    assert await cache.first_use(issuer, "jti-1", 60, hits=hits) is None
    limiter = RedisRateLimiter(redis)
    assert (await limiter.hit("client", issuer))[0] == 3  # two admitted, this one


async def test_a_spend_with_limits_in_a_silent_redis_is_refused() -> None:
    silent = Redis.from_url("redis://127.0.0.1:1/0")
    cache = RedisReplayCache(silent, wait=0.5)
    try:
        with pytest.raises(ServiceUnavailable):
            await cache.first_use("client-a", "jti-1", 60, hits=[("client", "client-a", 5)])
    finally:
        await silent.aclose()


async def test_spends_arriving_together_are_decided_in_one_call_each_as_if_alone(
    redis: Redis,
) -> None:
    cache = RedisReplayCache(redis)
    calls = []
    script = cache._spend

    async def counted(*, keys: list[str], args: list[object]) -> object:
        calls.append(len(keys))
        return await script(keys=keys, args=args)

    cache._spend = counted  # type: ignore[assignment]
    issuer = f"client-{uuid.uuid4().hex}"
    hits = [("client", issuer, 15)]
    # Twenty tokens, each sent twice, all at once.
    jtis = [f"jti-{i}" for i in range(20)] * 2
    spends = await asyncio.gather(*(cache.first_use(issuer, j, 60, hits=hits) for j in jtis))
    admitted = [s for s in spends if s is not None]
    assert sorted(s.jti for s in admitted) == sorted(set(jtis))  # each once
    assert all(s.counted for s in admitted)
    # The replays counted nothing; the first uses were counted in order: the 16th to the
    # 20th are over the limit of 15, each with its own count.
    assert sorted(s.over[1] for s in admitted if s.over) == [16, 17, 18, 19, 20]
    assert sum(1 for s in admitted if s.over is None) == 15
    assert len(calls) < len(jtis)  # fewer calls than spends
    limiter = RedisRateLimiter(redis)
    assert (await limiter.hit("client", issuer))[0] == 21
