"""The rate limit towards each source: GCRA permits, waited for only within the deadline."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from connectors import (
    FetchContext,
    LocalLimits,
    ManifestBase,
    RateLimitSpec,
    RestConnector,
    SqlConnector,
    XroadConnector,
    build_registry,
    connector_kinds,
    manifest_schema,
    parse_manifest,
)
from connectors._ratelimit import LimitedConnector, LocalLimiter, SourceLimiter
from connectors._resilience import BreakerState, deadline_scope
from gateway.errors import SourceRateLimited, SourceUnavailable

CTX = FetchContext(request_id="req-1")
FIELDS = frozenset({"personalId", "fullName"})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _limiter(per_second: float, burst: int | None = None) -> tuple[LocalLimiter, Clock]:
    clock = Clock()
    return LocalLimiter(RateLimitSpec(per_second=per_second, burst=burst), clock=clock), clock


def _counter(name: str, connector: str) -> float:
    return REGISTRY.get_sample_value(name, {"connector": connector}) or 0.0


# -- the manifest ------------------------------------------------------------------------


def _rest(name: str = "population", **top: Any) -> ManifestBase:
    return parse_manifest(
        {
            "name": name,
            "kind": "rest",
            "base_url": "http://population.test",
            "timeout_seconds": 1,
            "entities": {
                "Citizen": {
                    "key_field": "id",
                    "get": "/citizens/{key}",
                    "fields": {"personalId": "id", "fullName": "name"},
                }
            },
            **top,
        }
    )


def test_a_manifest_without_rate_limit_has_none() -> None:
    assert _rest().rate_limit is None


def test_burst_defaults_to_the_rate_rounded_up() -> None:
    manifest = _rest(rate_limit={"per_second": 2.5})
    assert manifest.rate_limit is not None
    assert manifest.rate_limit.capacity == 3
    assert RateLimitSpec(per_second=0.2).capacity == 1
    assert RateLimitSpec(per_second=2.5, burst=7).capacity == 7


@pytest.mark.parametrize(
    "rate_limit",
    [{"per_second": 0}, {"per_second": -1}, {"per_second": 5, "burst": 0}, {"burst": 3}],
)
def test_a_rate_limit_needs_a_positive_rate_and_burst(rate_limit: dict[str, Any]) -> None:
    with pytest.raises((ValidationError, ValueError), match="rate_limit"):
        _rest(rate_limit=rate_limit)


def test_the_json_schema_describes_the_rate_limit() -> None:
    schema = manifest_schema()
    spec = schema["$defs"]["RateLimitSpec"]
    assert spec["required"] == ["per_second"]
    assert spec["properties"]["per_second"]["exclusiveMinimum"] == 0
    assert all(p.get("description") for p in spec["properties"].values())


# -- the bucket's arithmetic (a fake clock) ------------------------------------------


def test_a_burst_goes_at_once_then_one_permit_each_interval() -> None:
    limiter, clock = _limiter(per_second=10, burst=3)
    assert [limiter.reserve_now(0) for _ in range(3)] == [0, 0, 0]
    assert limiter.reserve_now(0) is None
    clock.now += 0.1
    assert limiter.reserve_now(0) == 0
    assert limiter.reserve_now(0) is None


def test_a_permit_further_than_the_wait_allowed_is_not_reserved() -> None:
    limiter, _ = _limiter(per_second=4, burst=1)
    assert limiter.reserve_now(0) == 0
    assert limiter.reserve_now(0.1) is None
    assert limiter.reserve_now(0.1) is None  # the refusals reserved nothing
    assert limiter.reserve_now(1.0) == pytest.approx(0.25)


def test_waiting_callers_are_given_successive_permits() -> None:
    limiter, _ = _limiter(per_second=5, burst=2)
    waits = [limiter.reserve_now(10) for _ in range(5)]
    assert waits == pytest.approx([0, 0, 0.2, 0.4, 0.6])


def test_a_quiet_spell_refills_the_bucket_only_up_to_the_burst() -> None:
    limiter, clock = _limiter(per_second=10, burst=2)
    assert limiter.reserve_now(0) == 0
    clock.now += 3600
    assert [limiter.reserve_now(0) for _ in range(3)] == [0, 0, None]


def test_over_any_window_no_more_than_burst_plus_rate_times_time() -> None:
    limiter, clock = _limiter(per_second=7, burst=4)
    admitted: list[float] = []
    for _ in range(2000):  # a caller every 10 ms for 20 s, never waiting
        if limiter.reserve_now(0) is not None:
            admitted.append(clock.now)
        clock.now += 0.01
    for i, start in enumerate(admitted):
        for end in (start + 0.5, start + 3.0):
            inside = sum(1 for t in admitted[i:] if t <= end)
            assert inside <= 4 + 7 * (end - start) + 1e-9
    assert 7 * 20 <= len(admitted) <= 4 + 7 * 20


# -- the rest kind (httpx.MockTransport) -------------------------------------------------


class Source:
    def __init__(self, statuses: list[int] | None = None) -> None:
        self.calls: list[str] = []
        self.statuses = list(statuses or [])

    def __call__(self, request: httpx.Request) -> httpx.Response:
        key = request.url.path.rsplit("/", 1)[-1]
        self.calls.append(key)
        status = self.statuses.pop(0) if self.statuses else 200
        if status != 200:
            return httpx.Response(status)
        return httpx.Response(200, json={"id": key, "name": f"Người {key}"})


@pytest.fixture
def source() -> Source:
    return Source()


@pytest.fixture
async def http(source: Source) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(source)) as client:
        yield client


def _connector(
    http: httpx.AsyncClient, name: str, *, per_second: float, burst: int, retries: int = 0
) -> RestConnector:
    manifest = _rest(name, retries=retries, rate_limit={"per_second": per_second, "burst": burst})
    return RestConnector(manifest, http=http)  # type: ignore[arg-type]


async def test_calls_beyond_the_burst_wait_for_their_permits(
    source: Source, http: httpx.AsyncClient
) -> None:
    connector = _connector(http, "rl-wait", per_second=20, burst=2)
    waits_before = _counter("gateway_source_rate_limit_wait_seconds_sum", "rl-wait")
    loop = asyncio.get_running_loop()
    started = loop.time()
    with deadline_scope(started + 5):
        for key in ("1", "2", "3", "4"):
            found = await connector.fetch("Citizen", [key], FIELDS, CTX)
            assert found[key] == {"personalId": key, "fullName": f"Người {key}"}
    assert source.calls == ["1", "2", "3", "4"]
    # Two permits at once, then one each 50 ms: the two last calls waited ~0.1 s in all.
    assert _counter("gateway_source_rate_limit_wait_seconds_sum", "rl-wait") - waits_before > 0.05
    assert loop.time() - started >= 0.08


async def test_no_permit_before_the_deadline_fails_at_once_and_spares_the_breaker(
    source: Source, http: httpx.AsyncClient
) -> None:
    connector = _connector(http, "rl-refuse", per_second=1, burst=1)
    refused_before = _counter("gateway_source_rate_limited_total", "rl-refuse")
    loop = asyncio.get_running_loop()
    with deadline_scope(loop.time() + 0.5):
        await connector.fetch("Citizen", ["1"], FIELDS, CTX)
        started = loop.time()
        for _ in range(connector.manifest.breaker.failures + 2):
            with pytest.raises(SourceRateLimited) as caught:
                await connector.fetch("Citizen", ["2"], FIELDS, CTX)
        assert loop.time() - started < 0.3  # no waiting for a permit that comes too late
    assert caught.value.code == "SOURCE_RATE_LIMITED"
    assert not caught.value.retriable
    assert source.calls == ["1"]
    assert connector.breaker.state is BreakerState.CLOSED
    refused = _counter("gateway_source_rate_limited_total", "rl-refuse") - refused_before
    assert refused == connector.manifest.breaker.failures + 2


async def test_a_refusal_neither_closes_nor_holds_a_half_open_breaker(
    source: Source, http: httpx.AsyncClient
) -> None:
    connector = _connector(http, "rl-trial", per_second=1, burst=1)
    connector.limit_rate(Refusing())
    breaker = connector.breaker
    breaker.state = BreakerState.HALF_OPEN
    with pytest.raises(SourceRateLimited):
        await connector.fetch("Citizen", ["1"], FIELDS, CTX)
    assert repr(breaker) == "CircuitBreaker(name='rl-trial', state=HALF_OPEN)"  # nothing learnt
    connector.limit_rate(None)
    await connector.fetch("Citizen", ["2"], FIELDS, CTX)  # the trial is free again
    assert repr(breaker) == "CircuitBreaker(name='rl-trial', state=CLOSED)"
    assert source.calls == ["2"]


async def test_a_refusal_does_not_reset_the_failures_counted_by_the_breaker() -> None:
    source = Source([503] * 10)
    async with httpx.AsyncClient(transport=httpx.MockTransport(source)) as client:
        connector = _connector(client, "rl-count", per_second=1, burst=1)
        connector.limit_rate(None)
        failures = connector.manifest.breaker.failures
        for _ in range(failures - 1):
            with pytest.raises(SourceUnavailable):
                await connector.fetch("Citizen", ["1"], FIELDS, CTX)
        connector.limit_rate(Refusing())
        with pytest.raises(SourceRateLimited):
            await connector.fetch("Citizen", ["1"], FIELDS, CTX)
        connector.limit_rate(None)
        with pytest.raises(SourceUnavailable):
            await connector.fetch("Citizen", ["1"], FIELDS, CTX)
    assert connector.breaker.state is BreakerState.OPEN
    assert len(source.calls) == failures


async def test_each_retry_takes_a_permit_or_the_failure_stands() -> None:
    source = Source([503, 503])
    async with httpx.AsyncClient(transport=httpx.MockTransport(source)) as client:
        connector = _connector(client, "rl-retry", per_second=1, burst=1, retries=1)
        loop = asyncio.get_running_loop()
        with deadline_scope(loop.time() + 0.5), pytest.raises(SourceUnavailable) as caught:
            await connector.fetch("Citizen", ["1"], FIELDS, CTX)
    assert caught.value.code == "SOURCE_UNAVAILABLE"  # the source's answer, not our limit
    assert source.calls == ["1"]


async def test_a_retry_waits_for_its_permit_when_it_comes_in_time() -> None:
    source = Source([503])
    async with httpx.AsyncClient(transport=httpx.MockTransport(source)) as client:
        connector = _connector(client, "rl-retry-ok", per_second=20, burst=1, retries=1)
        loop = asyncio.get_running_loop()
        with deadline_scope(loop.time() + 2):
            found = await connector.fetch("Citizen", ["1"], FIELDS, CTX)
    assert found["1"] is not None
    assert source.calls == ["1", "1"]


async def test_without_a_rate_limit_nothing_waits(source: Source, http: httpx.AsyncClient) -> None:
    connector = RestConnector(_rest("rl-none"), http=http)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    with deadline_scope(loop.time() + 0.5):
        for key in map(str, range(50)):
            await connector.fetch("Citizen", [key], FIELDS, CTX)
    assert len(source.calls) == 50


async def test_a_health_check_calls_only_with_a_permit_free_now(
    source: Source, http: httpx.AsyncClient
) -> None:
    connector = _connector(http, "rl-health", per_second=1, burst=1)
    first = await connector.health()
    second = await connector.health()
    assert (first.ok, first.detail) == (True, "200")
    assert (second.ok, second.detail) == (True, "rate_limited")
    assert source.calls == ["healthz"]


# -- the registry hands out the limiters -------------------------------------------------


class CountingLimits:
    """Limits that give each source a limiter refusing everything, and count them."""

    def __init__(self) -> None:
        self.given: list[str] = []

    def limiter(self, manifest: ManifestBase) -> SourceLimiter | None:
        self.given.append(manifest.name)
        return Refusing()


class Refusing:
    async def reserve(self, max_wait: float) -> float | None:
        return None


CANONICAL: dict[str, Any] = {"Citizen": {"personalId": None, "fullName": None}}


async def test_the_registry_gives_each_connector_its_limiter(
    source: Source, http: httpx.AsyncClient
) -> None:
    limits = CountingLimits()
    registry = build_registry([_rest("rl-reg")], http=http, canonical=CANONICAL, rate_limits=limits)
    assert limits.given == ["rl-reg"]
    (connector,) = registry
    with pytest.raises(SourceRateLimited):
        await connector.fetch("Citizen", ["1"], FIELDS, CTX)
    assert source.calls == []


async def test_local_limits_give_a_limiter_only_to_limited_sources() -> None:
    assert LocalLimits().limiter(_rest()) is None
    assert isinstance(LocalLimits().limiter(_rest(rate_limit={"per_second": 3})), LocalLimiter)


def test_every_built_in_kind_takes_its_limiter_from_the_registry() -> None:
    kinds = connector_kinds()
    assert {"rest", "xroad", "graphql", "sql"} <= set(kinds)
    assert all(issubclass(factory, LimitedConnector) for factory in kinds.values())  # type: ignore[arg-type]


async def test_the_xroad_kind_keeps_the_rate_limit_and_takes_permits() -> None:
    source = Source()
    manifest = parse_manifest(
        {
            "name": "rl-xroad",
            "kind": "xroad",
            "base_url": "http://security-server.test",
            "client": "VN/GOV/BCA/GATEWAY",
            "service": {
                "instance": "VN",
                "member_class": "GOV",
                "member_code": "BHXH",
                "subsystem": "INSURANCE",
            },
            "rate_limit": {"per_second": 1},
            "entities": {
                "InsuranceRecord": {
                    "service": "so-bhxh",
                    "key_field": "id",
                    "get": "/so/{key}",
                    "fields": {"personalId": "id"},
                }
            },
        }
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(source)) as client:
        connector = XroadConnector(manifest, http=client)  # type: ignore[arg-type]
        assert connector.manifest.rate_limit == manifest.rate_limit
        loop = asyncio.get_running_loop()
        with deadline_scope(loop.time() + 0.5):
            await connector.fetch("InsuranceRecord", ["1"], frozenset({"personalId"}), CTX)
            with pytest.raises(SourceRateLimited):
                await connector.fetch("InsuranceRecord", ["2"], frozenset({"personalId"}), CTX)
    assert source.calls == ["1"]


class PlugIn:
    """A plug-in kind that knows nothing of rate limits."""

    def __init__(self, manifest: ManifestBase, *, http: httpx.AsyncClient) -> None:
        self.name = manifest.name


async def test_a_plug_in_without_limit_rate_still_builds(http: httpx.AsyncClient) -> None:
    manifest = _rest("rl-plugin", rate_limit={"per_second": 3})
    registry = build_registry(
        [manifest],
        http=http,
        canonical=CANONICAL,
        kinds={"rest": cast(Any, PlugIn)},
        rate_limits=CountingLimits(),
    )
    assert [c.name for c in registry] == ["rl-plugin"]


# -- the sql kind ------------------------------------------------------------------------


@pytest.fixture
async def documents(tmp_path: Path) -> AsyncIterator[Callable[..., SqlConnector]]:
    path = tmp_path / "docs.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE documents (document_id TEXT PRIMARY KEY, title TEXT)")
    db.executemany("INSERT INTO documents VALUES (?, ?)", [("D1", "Giấy phép"), ("D2", "Sổ")])
    db.commit()
    db.close()
    made: list[SqlConnector] = []

    def make(name: str, **top: Any) -> SqlConnector:
        manifest = parse_manifest(
            {
                "name": name,
                "kind": "sql",
                "database": {"url": f"sqlite:///{path}"},
                "entities": {
                    "Document": {
                        "table": "documents",
                        "key_field": "document_id",
                        "fields": {"documentId": "document_id", "title": "title"},
                    }
                },
                **top,
            }
        )
        connector = SqlConnector(manifest)  # type: ignore[arg-type]
        made.append(connector)
        return connector

    yield make
    for connector in made:
        await connector.aclose()


async def test_sql_reads_take_permits_and_fail_at_once_without_one(
    documents: Callable[..., SqlConnector],
) -> None:
    land = documents("rl-sql", rate_limit={"per_second": 1, "burst": 1})
    await land.open()
    fields = frozenset({"documentId", "title"})
    loop = asyncio.get_running_loop()
    with deadline_scope(loop.time() + 0.5):
        found = await land.fetch("Document", ["D1"], fields, CTX)
        assert found["D1"] == {"documentId": "D1", "title": "Giấy phép"}
        for _ in range(land.manifest.breaker.failures + 1):
            with pytest.raises(SourceRateLimited):
                await land.fetch("Document", ["D2"], fields, CTX)
    assert land.queries == 1
    assert land.breaker.state is BreakerState.CLOSED


async def test_sql_reads_beyond_the_burst_wait(documents: Callable[..., SqlConnector]) -> None:
    land = documents("rl-sql-wait", rate_limit={"per_second": 20, "burst": 1})
    await land.open()
    fields = frozenset({"documentId"})
    loop = asyncio.get_running_loop()
    with deadline_scope(loop.time() + 5):
        for _ in range(3):
            await land.fetch("Document", ["D1"], fields, CTX)
    assert land.queries == 3
    assert _counter("gateway_source_rate_limit_wait_seconds_sum", "rl-sql-wait") > 0.05


async def test_a_sql_health_check_queries_only_with_a_permit_free_now(
    documents: Callable[..., SqlConnector],
) -> None:
    land = documents("rl-sql-health", rate_limit={"per_second": 1, "burst": 1})
    first, second = await land.health(), await land.health()
    assert (first.ok, first.detail) == (True, "ok")
    assert (second.ok, second.detail) == (True, "rate_limited")
