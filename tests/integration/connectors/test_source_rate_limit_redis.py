"""Source rate limits in the real Redis: replicas share one allowance per source."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from connectors import ManifestBase, RedisLimits, parse_manifest


def _manifest(name: str, **rate_limit: Any) -> ManifestBase:
    return parse_manifest(
        {
            "name": name,
            "kind": "rest",
            "base_url": "http://population.test",
            "rate_limit": rate_limit,
            "entities": {
                "Citizen": {
                    "key_field": "id",
                    "get": "/citizens/{key}",
                    "fields": {"personalId": "id"},
                }
            },
        }
    )


@pytest.fixture
def prefix() -> str:
    return f"gw:test:src:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
async def replicas(redis_url: str, prefix: str) -> AsyncIterator[tuple[Redis, Redis]]:
    """Two Redis clients, as two gateway replicas have; the test's keys go after."""
    first, second = Redis.from_url(redis_url), Redis.from_url(redis_url)
    try:
        yield first, second
    finally:
        keys = [k async for k in first.scan_iter(match=prefix + "*")]
        if keys:
            await first.delete(*keys)
        await first.aclose()
        await second.aclose()


async def test_two_replicas_share_one_allowance(replicas: tuple[Redis, Redis], prefix: str) -> None:
    manifest = _manifest("shared", per_second=20, burst=5)
    limiters = [RedisLimits(r, prefix=prefix).limiter(manifest) for r in replicas]
    assert all(limiter is not None for limiter in limiters)
    admitted = [0, 0]
    started = time.monotonic()
    while time.monotonic() - started < 0.5:
        for i, limiter in enumerate(limiters):
            assert limiter is not None
            if await limiter.reserve(0) is not None:
                admitted[i] += 1
        await asyncio.sleep(0.002)
    elapsed = time.monotonic() - started
    total = sum(admitted)
    # Together no more than the burst and the rate over the time taken (one permit of
    # slack for the two clocks, Redis's and ours); alone each would have had as much.
    assert total <= 5 + 20 * elapsed + 1
    assert total >= 5 + 20 * 0.5 * 0.5
    assert min(admitted) >= 1


async def test_waiting_callers_get_successive_permits_from_the_server_clock(
    replicas: tuple[Redis, Redis], prefix: str
) -> None:
    manifest = _manifest("queued", per_second=10, burst=2)
    first, second = (RedisLimits(r, prefix=prefix).limiter(manifest) for r in replicas)
    assert first is not None
    assert second is not None
    waits = [await first.reserve(5), await second.reserve(5)]
    waits += [await first.reserve(5), await second.reserve(5)]
    assert all(w is not None for w in waits)
    assert waits[:2] == [0, 0]
    assert waits[2] == pytest.approx(0.1, abs=0.05)
    assert waits[3] == pytest.approx(0.2, abs=0.05)
    # One that would have to wait longer than it may is refused and reserves nothing.
    assert await first.reserve(0.05) is None
    assert await second.reserve(5) == pytest.approx(0.3, abs=0.05)


async def test_the_key_is_the_connector_name_and_expires(
    replicas: tuple[Redis, Redis], prefix: str
) -> None:
    redis = replicas[0]
    limiter = RedisLimits(redis, prefix=prefix).limiter(_manifest("expiring", per_second=2))
    assert limiter is not None
    assert await limiter.reserve(0) == 0
    ttl = await redis.pttl(prefix + "expiring")
    assert 0 < ttl <= 1000 + 500 + 50  # until the bucket is full again, and a second


async def test_a_silent_redis_fails_open_to_the_replicas_own_bucket() -> None:
    silent = Redis.from_url("redis://127.0.0.1:1/0")  # nothing listens there
    try:
        limiter = RedisLimits(silent, prefix="gw:test:src:").limiter(
            _manifest("redis-down", per_second=1, burst=2)
        )
        assert limiter is not None
        before = REGISTRY.get_sample_value(
            "gateway_source_rate_limit_unshared_total", {"connector": "redis-down"}
        )
        got = [await limiter.reserve(0) for _ in range(3)]
        after = REGISTRY.get_sample_value(
            "gateway_source_rate_limit_unshared_total", {"connector": "redis-down"}
        )
    finally:
        await silent.aclose()
    assert got == [0, 0, None]  # still limited, by this replica alone
    assert (after or 0) - (before or 0) == 3


async def test_a_redis_that_does_not_answer_holds_no_call() -> None:
    release = asyncio.Event()
    handlers: set[asyncio.Task[Any]] = set()

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.add(asyncio.current_task())  # type: ignore[arg-type]
        await reader.read(65536)  # takes the command, never answers
        await release.wait()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    redis = Redis.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        limiter = RedisLimits(redis, prefix="gw:test:src:", wait=0.1).limiter(
            _manifest("redis-mute", per_second=1, burst=1)
        )
        assert limiter is not None
        started = time.monotonic()
        got = [await limiter.reserve(0), await limiter.reserve(0)]
        took = time.monotonic() - started
    finally:
        await redis.aclose()
        release.set()
        server.close()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()
    assert got == [0, None]
    assert took < 1.0  # one short wait for Redis, then Redis is left alone a while
