"""Rate limiters, `Limit`, and replay caches, with their clocks in the test's hands.

`MemoryRateLimiter` counts hits in fixed one-minute windows; `Limit` refuses past its
`per_minute`. `MemoryReplayCache` accepts a `(issuer, jti)` once until its ttl ends and
is bounded in size. The Redis versions refuse (`ServiceUnavailable`) when Redis does not
answer: a limit or a replay check that cannot be made never lets a request through.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.admission import (
    Limit,
    MemoryRateLimiter,
    MemoryReplayCache,
    RedisRateLimiter,
    RedisReplayCache,
    Spent,
)
from gateway.admission._ratelimit import WINDOW
from gateway.admission._replay import _SPEND_AND_HIT
from gateway.errors import RateLimited, ServiceUnavailable

MINUTE_START = 1_800_000_000 // 60 * 60


class Clock:
    """A settable clock, standing in for `time.time` or `time.monotonic`."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class _Module:
    """What a module sees as `time`: only the clock it reads."""

    def __init__(self, **clocks: Clock) -> None:
        self.__dict__.update(clocks)


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """`time.time` as `gateway.admission._ratelimit` reads it, at a minute's start."""
    clock = Clock(MINUTE_START)
    monkeypatch.setattr("gateway.admission._ratelimit.time", _Module(time=clock))
    return clock


@pytest.fixture
def monotonic(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """`time.monotonic` as `gateway.admission._replay` reads it."""
    clock = Clock(1000.0)
    monkeypatch.setattr("gateway.admission._replay.time", _Module(monotonic=clock))
    return clock


class Pipeline:
    """A Redis transaction pipeline: queues commands, runs them in `execute`."""

    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis

    async def __aenter__(self) -> Pipeline:
        if self.redis.error_on == "pipeline":
            raise self.redis.error
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def incr(self, key: str) -> None:
        self.redis.commands.append(("incr", key))

    def expire(self, key: str, seconds: int) -> None:
        self.redis.commands.append(("expire", key, seconds))

    async def execute(self) -> list[Any]:
        if self.redis.error_on == "execute":
            raise self.redis.error
        self.redis.count += 1
        return [self.redis.count, True]


class FakeRedis:
    """Just what the limiter and the replay cache call, failing where told to."""

    def __init__(self, *, error_on: str | None = None, error: RedisError | None = None) -> None:
        self.error_on = error_on
        self.error = error or RedisConnectionError("Connection refused")
        self.commands: list[tuple[Any, ...]] = []
        self.count = 0
        self.values: dict[str, str] = {}

    def pipeline(self, *, transaction: bool) -> Pipeline:
        assert transaction
        return Pipeline(self)

    def register_script(self, source: str) -> Any:
        """The replay cache's two scripts and the limits', done in Python as Redis would."""
        if "INCR" in source and "GET" not in source:

            async def hit_all(*, keys: list[str], args: list[Any]) -> list[int]:
                if self.error_on in {"pipeline", "execute", "script"}:
                    raise self.error
                return self._hit_all(keys, args)

            return hit_all
        spend = "INCR" in source

        async def run(*, keys: list[str], args: list[Any]) -> Any:
            if not spend:
                key, attempt, ttl = keys[0], args[0], args[1]
                self.commands.append(("release", key, attempt, ttl))
                if self.error_on == "script":
                    raise self.error
                value = self.values.get(key)
                if value is None or value == f"c:{attempt}":
                    self.values[key] = f"r:{attempt}"
                    return 1
                return 0
            # Spends one after another: the token's key and its counters, and the
            # attempt, ttl, number of counters, their lifetime and limits.
            spends = []
            while args:
                count = int(args[2])
                spends.append((keys[: 1 + count], args[: 4 + count]))
                keys, args = keys[1 + count :], args[4 + count :]
            for (key, *_), (attempt, ttl, *_) in spends:
                self.commands.append(("spend", key, attempt, ttl))
            if self.error_on == "script":
                raise self.error
            answers: list[int] = []
            for (key, *counters), (attempt, _, _, *limits) in spends:
                value = self.values.get(key)
                used = 0
                if value is None:
                    self.values[key] = f"c:{attempt}"
                    used = 1
                elif value.startswith("r:") and value != f"r:{attempt}":
                    self.values[key] = f"u:{attempt}"
                    used = 2
                answers += [used, *self._hit_all(counters, limits)] if used else [0, 0, 0]
            return answers

        return run

    def _hit_all(self, keys: list[str], args: list[Any]) -> list[int]:
        """`_HIT_ALL`: `args` are the counters' lifetime, then each one's limit."""
        for position, key in enumerate(keys, 1):
            self.commands.append(("incr", key))
            self.count += 1
            if self.count > int(args[position]):
                return [position, self.count]
        return [0, 0]


# -- the in-memory rate limiter ---------------------------------------------------------


async def test_hits_are_counted_per_scope_and_name(wall: Clock) -> None:
    limiter = MemoryRateLimiter()
    assert [(await limiter.hit("client", "a"))[0] for _ in range(3)] == [1, 2, 3]
    assert (await limiter.hit("client", "b"))[0] == 1
    assert (await limiter.hit("officer", "a"))[0] == 1
    assert (await limiter.hit("client", "a"))[0] == 4


@pytest.mark.parametrize(("second", "retry_after"), [(0, 60), (1, 59), (30, 30), (59, 1)])
async def test_retry_after_is_what_is_left_of_the_minute(
    wall: Clock, second: float, retry_after: int
) -> None:
    wall.now = MINUTE_START + second
    assert await MemoryRateLimiter().hit("client", "a") == (1, retry_after)


async def test_a_fraction_of_a_second_still_leaves_one_to_wait(wall: Clock) -> None:
    wall.now = MINUTE_START + 59.9
    _, retry_after = await MemoryRateLimiter().hit("client", "a")
    assert 1 <= retry_after <= 60


async def test_a_new_minute_starts_every_count_again(wall: Clock) -> None:
    limiter = MemoryRateLimiter()
    wall.now = MINUTE_START + 59
    for _ in range(5):
        await limiter.hit("client", "a")
    wall.now = MINUTE_START + 60
    assert await limiter.hit("client", "a") == (1, 60)
    assert (await limiter.hit("client", "a"))[0] == 2


# -- Limit ------------------------------------------------------------------------------


async def test_a_limit_refuses_only_after_per_minute_hits(wall: Clock) -> None:
    wall.now = MINUTE_START + 15
    limit = Limit(MemoryRateLimiter(), "officer", 3)
    for _ in range(3):
        await limit.check("officer-1")
    with pytest.raises(RateLimited) as caught:
        await limit.check("officer-1")
    assert caught.value.code == "RATE_LIMITED"
    assert caught.value.http_status == 429
    assert caught.value.retry_after == 45
    assert caught.value.message == "At most 3 requests a minute per officer."
    with pytest.raises(RateLimited):
        await limit.check("officer-1")  # and stays refused for the minute


async def test_limits_of_other_names_and_scopes_are_apart(wall: Clock) -> None:
    limiter = MemoryRateLimiter()
    officers, clients = Limit(limiter, "officer", 1), Limit(limiter, "client", 1)
    await officers.check("x")
    await officers.check("y")
    await clients.check("x")  # the same name in another scope
    with pytest.raises(RateLimited, match="per client"):
        await clients.check("x")


async def test_a_limit_allows_again_in_the_next_minute(wall: Clock) -> None:
    limit = Limit(MemoryRateLimiter(), "client", 1)
    await limit.check("a")
    with pytest.raises(RateLimited):
        await limit.check("a")
    wall.now += 60
    await limit.check("a")


# -- the in-memory replay cache ---------------------------------------------------------


async def test_a_jti_is_accepted_once(monotonic: Clock) -> None:
    cache = MemoryReplayCache()
    assert await cache.first_use("client-a", "jti-1", 60) is not None
    assert await cache.first_use("client-a", "jti-1", 60) is None
    assert await cache.first_use("client-a", "jti-1", 60) is None


async def test_a_jti_is_spent_per_issuer(monotonic: Clock) -> None:
    cache = MemoryReplayCache()
    assert await cache.first_use("client-a", "jti-1", 60)
    assert await cache.first_use("client-b", "jti-1", 60)
    assert await cache.first_use("client-a", "jti-2", 60)
    assert await cache.first_use("client-b", "jti-1", 60) is None


async def test_a_jti_is_remembered_until_its_ttl_ends(monotonic: Clock) -> None:
    cache = MemoryReplayCache()
    assert await cache.first_use("client-a", "jti-1", 90)
    monotonic.now += 89.999
    assert await cache.first_use("client-a", "jti-1", 90) is None
    monotonic.now += 0.001
    assert await cache.first_use("client-a", "jti-1", 90) is not None
    # Spent again, for the new ttl.
    assert await cache.first_use("client-a", "jti-1", 90) is None


async def test_a_full_cache_refuses_rather_than_forget(monotonic: Clock) -> None:
    cache = MemoryReplayCache(max_entries=2)
    assert await cache.first_use("c", "jti-1", 60)
    assert await cache.first_use("c", "jti-2", 60)
    with pytest.raises(ServiceUnavailable) as caught:
        await cache.first_use("c", "jti-3", 60)
    assert caught.value.code == "SERVICE_UNAVAILABLE"
    # What it holds is still refused, full or not.
    assert await cache.first_use("c", "jti-1", 60) is None
    # The refused jti was not spent: once there is room, it is accepted.
    monotonic.now += 60
    assert await cache.first_use("c", "jti-3", 60) is not None


async def test_a_full_cache_prunes_what_expired(monotonic: Clock) -> None:
    cache = MemoryReplayCache(max_entries=2)
    assert await cache.first_use("c", "short", 10)
    assert await cache.first_use("c", "long", 100)
    monotonic.now += 10
    assert await cache.first_use("c", "new", 100) is not None
    assert await cache.first_use("c", "long", 100) is None
    assert await cache.first_use("c", "new", 100) is None
    # Full again with two live entries.
    with pytest.raises(ServiceUnavailable):
        await cache.first_use("c", "another", 100)


# -- Redis: a store that does not answer refuses ----------------------------------------


@pytest.mark.parametrize("error_on", ["pipeline", "execute"])
@pytest.mark.parametrize(
    "error", [RedisConnectionError("refused"), RedisTimeoutError("timeout"), RedisError("x")]
)
async def test_a_redis_rate_limiter_that_does_not_answer_refuses(
    wall: Clock, error_on: str, error: RedisError
) -> None:
    limiter = RedisRateLimiter(FakeRedis(error_on=error_on, error=error))
    with pytest.raises(ServiceUnavailable) as caught:
        await limiter.hit("client", "a")
    assert caught.value.__cause__ is error


async def test_a_redis_limit_that_does_not_answer_is_not_a_pass(wall: Clock) -> None:
    limit = Limit(RedisRateLimiter(FakeRedis(error_on="execute")), "client", 100)
    with pytest.raises(ServiceUnavailable):
        await limit.check("a")


async def test_a_redis_rate_limiter_counts_in_a_key_expiring_with_its_window(
    wall: Clock,
) -> None:
    wall.now = MINUTE_START + 20
    redis = FakeRedis()
    limiter = RedisRateLimiter(redis)
    assert await limiter.hit("client", "a") == (1, 40)
    assert await limiter.hit("client", "a") == (2, 40)
    (incr, key), (expire, same, seconds) = redis.commands[:2]
    assert (incr, expire, same) == ("incr", "expire", key)
    assert seconds > 60


@pytest.mark.parametrize(
    "error", [RedisConnectionError("refused"), RedisTimeoutError("timeout"), RedisError("x")]
)
async def test_a_redis_replay_cache_that_does_not_answer_refuses(error: RedisError) -> None:
    cache = RedisReplayCache(FakeRedis(error_on="script", error=error))
    with pytest.raises(ServiceUnavailable) as caught:
        await cache.first_use("client-a", "jti-1", 60)
    assert caught.value.__cause__ is error


async def test_a_redis_replay_cache_sets_once_with_the_ttl() -> None:
    redis = FakeRedis()
    cache = RedisReplayCache(redis)
    assert await cache.first_use("client-a", "jti-1", 151) is not None
    assert await cache.first_use("client-a", "jti-1", 151) is None
    assert await cache.first_use("client-b", "jti-1", 151) is not None
    command, key, _, ex = redis.commands[0]
    assert (command, ex) == ("spend", 151)
    # Hashed, not spelled out.
    assert "jti-1" not in key
    assert "client-a" not in key


# -- a token the gateway answered 503 may come once more ---------------------------------


def _caches() -> list[Any]:
    return [MemoryReplayCache(), RedisReplayCache(FakeRedis())]


@pytest.mark.parametrize("cache", _caches(), ids=["memory", "redis"])
async def test_a_released_token_is_reused_once(cache: Any) -> None:
    first = await cache.first_use("c", "jti-1", 60)
    assert first is not None
    assert not first.reused
    await cache.release(first)
    retry = await cache.first_use("c", "jti-1", 60)
    assert retry is not None
    assert retry.reused
    await cache.release(retry)  # a reuse is never released again
    assert await cache.first_use("c", "jti-1", 60) is None


@pytest.mark.parametrize("cache", _caches(), ids=["memory", "redis"])
async def test_a_token_spent_by_another_attempt_is_not_released(cache: Any) -> None:
    served = await cache.first_use("c", "jti-1", 60)
    assert served is not None
    # A replay of it, answered 503 by a later fault, names its own attempt: no release.
    await cache.release(Spent("c", "jti-1", served.until))
    assert await cache.first_use("c", "jti-1", 60) is None


async def test_a_spend_redis_did_not_answer_is_released_before_the_next() -> None:
    redis = FakeRedis(error_on="script")
    cache = RedisReplayCache(redis)
    with pytest.raises(ServiceUnavailable):
        await cache.first_use("c", "jti-1", 60)
    [(_, key, attempt, _)] = redis.commands
    # Its claim reaches Redis late; then Redis answers again.
    redis.values[key] = f"c:{attempt}"
    redis.error_on = None
    retry = await cache.first_use("c", "jti-1", 60)
    assert retry is not None
    assert retry.reused
    assert [c[0] for c in redis.commands[1:]] == ["release", "spend"]
    assert await cache.first_use("c", "jti-1", 60) is None


async def test_a_late_claim_does_not_take_the_reuse_of_its_own_release() -> None:
    redis = FakeRedis(error_on="script")
    cache = RedisReplayCache(redis)
    with pytest.raises(ServiceUnavailable):
        await cache.first_use("c", "jti-1", 60)
    [(_, key, attempt, _)] = redis.commands
    redis.error_on = None
    assert await cache.first_use("c", "other", 60) is not None  # writes the release
    assert redis.values[key] == f"r:{attempt}"
    spend = redis.register_script(_SPEND_AND_HIT)
    [used, _, _] = await spend(keys=[key], args=[attempt, 60, 0, WINDOW + 5])
    assert used == 0  # the held claim, late
    retry = await cache.first_use("c", "jti-1", 60)
    assert retry is not None
    assert retry.reused


# -- Redis: spends arriving together share a call ----------------------------------------


class HeldRedis(FakeRedis):
    """Each spend call waits until the test lets it through."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()
        self.calls: list[int] = []

    def register_script(self, source: str) -> Any:
        run = super().register_script(source)
        if "INCR" not in source:
            return run

        async def held(*, keys: list[str], args: list[Any]) -> Any:
            self.calls.append(len([c for c in args if c == 60]))  # the spends it carries
            await self.go.wait()
            return await run(keys=keys, args=args)

        return held


async def test_spends_arriving_together_share_a_call_that_waits_for_no_other() -> None:
    redis = HeldRedis()
    cache = RedisReplayCache(redis)
    first = asyncio.create_task(cache.first_use("c", "jti-1", 60))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert redis.calls == [1]  # in flight
    later = [asyncio.create_task(cache.first_use("c", j, 60)) for j in ("jti-2", "jti-1")]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert redis.calls == [1, 2]  # together, beside the first
    redis.go.set()
    answers = await asyncio.gather(first, *later)
    # Decided in the order the calls reach Redis.
    assert [a is not None for a in answers] == [True, True, False]


async def test_a_spend_whose_request_stopped_waiting_is_not_sent() -> None:
    redis = FakeRedis()
    cache = RedisReplayCache(redis)
    stopped = asyncio.create_task(cache.first_use("c", "jti-1", 60))
    await asyncio.sleep(0)  # waiting for its call
    stopped.cancel()  # past its deadline: answered 503, kept to be released
    with pytest.raises(asyncio.CancelledError):
        await stopped
    assert await cache.first_use("c", "jti-2", 60) is not None
    # jti-1's spend never went; its release goes before the next spend.
    assert [c[0] for c in redis.commands] == ["release", "spend"]
    assert await cache.first_use("c", "jti-1", 60) is not None


async def test_a_call_that_fails_refuses_every_spend_it_carried() -> None:
    redis = FakeRedis(error_on="script")
    cache = RedisReplayCache(redis)
    answers = await asyncio.gather(
        *(cache.first_use("c", f"jti-{i}", 60) for i in range(3)), return_exceptions=True
    )
    assert all(isinstance(a, ServiceUnavailable) for a in answers)
    assert [c[0] for c in redis.commands] == ["spend"] * 3  # one call carried all three
    redis.error_on = None
    # Each is released: its client's retry reuses its token once.
    retries = [await cache.first_use("c", f"jti-{i}", 60) for i in range(3)]
    assert all(r is not None and r.reused for r in retries)
