"""The rate limits in real Redis: one round trip counts a request against every limit.

The script counts the hits in order and stops at the first over its limit: the limits
after it are not counted, as when each was checked in turn. Each test counts under
names of its own, so tests sharing the Redis database never meet.
"""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio import Redis

from gateway.admission._ratelimit import (
    WINDOW,
    Limit,
    MemoryRateLimiter,
    RedisRateLimiter,
    check_limits,
)
from gateway.errors import RateLimited


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
    assert await limiter.hit_all([("client", name, 10)]) is None
    keys = [k async for k in redis.scan_iter(match="gw:rl:client:*")]
    ttls = [await redis.ttl(k) for k in keys]
    assert ttls
    assert all(0 < t <= WINDOW + 5 for t in ttls)
