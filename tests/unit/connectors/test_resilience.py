"""One slow or broken source: the deadline cuts its calls, its breaker stops them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from connectors import FetchContext, RestConnector, parse_manifest
from connectors._resilience import (
    BreakerState,
    CircuitBreaker,
    backoff,
    call_budget,
    deadline_scope,
)
from gateway.errors import (
    SourceDataInvalid,
    SourceRejected,
    SourceTimeout,
    SourceUnavailable,
)

AN = "079203001234"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _breaker(clock: Clock, name: str = "src") -> CircuitBreaker:
    return CircuitBreaker(name, failures=3, reset_seconds=10.0, clock=clock)


def _state(name: str) -> float | None:
    return REGISTRY.get_sample_value("gateway_source_breaker_state", {"connector": name})


def test_the_breaker_opens_after_failures_in_a_row_and_fails_fast() -> None:
    clock = Clock()
    breaker = _breaker(clock, "opens")
    for _ in range(2):
        breaker.before_call()
        breaker.failed(SourceUnavailable(source="opens"))
    assert breaker.state is BreakerState.CLOSED
    breaker.before_call()
    breaker.failed(SourceTimeout(source="opens"))
    assert breaker.state is BreakerState.OPEN
    assert _state("opens") == 2
    with pytest.raises(SourceUnavailable) as caught:
        breaker.before_call()
    assert caught.value.detail["reason"] == "circuit_open"


def test_a_success_between_failures_keeps_it_closed() -> None:
    breaker = _breaker(Clock(), "intermittent")
    for _ in range(10):
        breaker.before_call()
        breaker.failed(SourceUnavailable(source="intermittent"))
        breaker.before_call()
        breaker.failed(SourceUnavailable(source="intermittent"))
        breaker.before_call()
        breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize(
    "answer",
    [SourceRejected(source="s"), SourceDataInvalid("Bad.", source="s")],
)
def test_a_source_that_answers_no_is_up(answer: Exception) -> None:
    breaker = _breaker(Clock(), "answers")
    for _ in range(10):
        breaker.before_call()
        breaker.failed(answer)
    assert breaker.state is BreakerState.CLOSED


def test_after_the_reset_time_one_trial_goes_and_its_outcome_decides() -> None:
    clock = Clock()
    breaker = _breaker(clock, "trial")
    for _ in range(3):
        breaker.before_call()
        breaker.failed(SourceUnavailable(source="trial"))
    clock.now += 10.0
    breaker.before_call()  # the trial
    assert breaker.state is BreakerState.HALF_OPEN
    assert _state("trial") == 1
    with pytest.raises(SourceUnavailable):
        breaker.before_call()  # one trial at a time
    breaker.failed(SourceUnavailable(source="trial"))
    assert breaker.state is BreakerState.OPEN  # one failure in half-open opens it again
    with pytest.raises(SourceUnavailable):
        breaker.before_call()
    clock.now += 10.0
    breaker.before_call()
    breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED
    assert _state("trial") == 0


def test_a_trial_let_go_of_does_not_hold_the_breaker_half_open() -> None:
    clock = Clock()
    breaker = _breaker(clock, "abandoned")
    for _ in range(3):
        breaker.before_call()
        breaker.failed(SourceUnavailable(source="abandoned"))
    clock.now += 10.0
    breaker.before_call()
    breaker.abandoned()  # its request's deadline passed
    breaker.before_call()  # another trial may go
    breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED


def test_backoff_grows_with_jitter() -> None:
    pauses = [backoff(2, 0.1) for _ in range(200)]
    assert all(0.1 <= p <= 0.3 for p in pauses)
    assert len({round(p, 6) for p in pauses}) > 100  # not in step


async def test_a_call_gets_the_time_left_and_none_when_too_little_is() -> None:
    assert call_budget(2.0, source="s") == 2.0  # no deadline: the manifest's timeout
    loop = asyncio.get_running_loop()
    with deadline_scope(loop.time() + 0.5):
        assert 0.4 < call_budget(2.0, source="s") <= 0.5
        assert call_budget(0.2, source="s") == 0.2
    with deadline_scope(loop.time() + 0.01), pytest.raises(SourceTimeout):
        call_budget(2.0, source="s")


# -- through a connector ---------------------------------------------------------------


def _connector(handler: Any, *, retries: int = 0, timeout: float = 2.0) -> RestConnector:
    manifest = parse_manifest(
        {
            "name": "flaky",
            "kind": "rest",
            "base_url": "http://flaky.test",
            "retries": retries,
            "timeout_seconds": timeout,
            "breaker": {"failures": 3, "reset_seconds": 10},
            "entities": {
                "Citizen": {
                    "key_field": "so_dinh_danh",
                    "get": "/v1/cong-dan/{key}",
                    "fields": {"fullName": "ho_ten"},
                }
            },
        }
    )
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return RestConnector(manifest, http=client)  # type: ignore[arg-type]


async def test_a_failing_source_is_left_alone_once_its_breaker_opens() -> None:
    calls: list[str] = []

    def failing(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(503)

    connector = _connector(failing)
    clock = Clock()
    connector.breaker = CircuitBreaker("flaky", failures=3, reset_seconds=10.0, clock=clock)
    ctx = FetchContext(request_id="r")
    for _ in range(3):
        with pytest.raises(SourceUnavailable):
            await connector.fetch("Citizen", [AN], frozenset({"fullName"}), ctx)
    for _ in range(20):
        with pytest.raises(SourceUnavailable) as caught:
            await connector.fetch("Citizen", [AN], frozenset({"fullName"}), ctx)
        assert caught.value.detail["reason"] == "circuit_open"
    assert len(calls) == 3  # the source was not called while the breaker was open
    clock.now += 10.0
    with pytest.raises(SourceUnavailable):
        await connector.fetch("Citizen", [AN], frozenset({"fullName"}), ctx)
    assert len(calls) == 4  # one trial, which failed
    assert connector.breaker.state is BreakerState.OPEN


async def test_a_slow_source_is_cut_to_the_request_deadline_and_not_retried() -> None:
    calls: list[str] = []

    async def slow(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        await asyncio.sleep(5)
        return httpx.Response(200, json={"so_dinh_danh": AN, "ho_ten": "An"})

    connector = _connector(slow, retries=3, timeout=5.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with deadline_scope(started + 0.3), pytest.raises(SourceTimeout):
        await connector.fetch("Citizen", [AN], frozenset({"fullName"}), FetchContext("r"))
    assert loop.time() - started < 1.0  # the deadline's 0.3 s, not the manifest's 5 s
    assert len(calls) == 1  # no retry could end in time, so none was started


async def test_the_batch_loader_holds_calls_to_the_requests_deadline() -> None:
    from connectors import BatchLoader

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json={"so_dinh_danh": AN, "ho_ten": "An"})

    connector = _connector(slow, timeout=5.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    ctx = FetchContext("r", deadline=started + 0.3)
    loader = BatchLoader(connector, "Citizen", ctx)
    with pytest.raises(SourceTimeout):
        await loader.load(AN, frozenset({"fullName"}))
    assert loop.time() - started < 1.0


async def test_an_attempt_records_its_outcome_and_a_spent_deadline_is_not_the_sources() -> None:
    breaker = _breaker(Clock(), "attempts")
    spent = asyncio.get_running_loop().time() - 1
    for _ in range(5):
        # The request's time ran out: no call, and nothing against the source.
        with deadline_scope(spent), pytest.raises(SourceTimeout):
            _enter(breaker)
    assert breaker.state is BreakerState.CLOSED
    for _ in range(3):
        with pytest.raises(SourceUnavailable):
            _fail_within(breaker)
    assert breaker.state is BreakerState.OPEN


def _enter(breaker: CircuitBreaker) -> None:
    with breaker.attempt(2.0):
        raise AssertionError("no call is made when no time is left")


def _fail_within(breaker: CircuitBreaker) -> None:
    with breaker.attempt(2.0) as budget:
        assert budget == 2.0
        raise SourceUnavailable(source="attempts")


async def test_a_sql_read_out_of_time_does_not_count_against_the_database(
    tmp_path: Path,
) -> None:
    import sqlite3

    from connectors import SqlConnector

    database = tmp_path / "land.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE thua_dat (ma_thua TEXT PRIMARY KEY, dien_tich REAL)")
    manifest = parse_manifest(
        {
            "name": "land",
            "kind": "sql",
            "database": {"url": f"sqlite:///{database}"},
            "breaker": {"failures": 1, "reset_seconds": 10},
            "entities": {
                "LandParcel": {
                    "table": "thua_dat",
                    "key_field": "ma_thua",
                    "fields": {"parcelId": "ma_thua", "areaM2": "dien_tich"},
                }
            },
        }
    )
    connector = SqlConnector(manifest)  # type: ignore[arg-type]
    try:
        await connector.open()
        spent = asyncio.get_running_loop().time() - 1
        with deadline_scope(spent), pytest.raises(SourceTimeout):
            await connector.fetch("LandParcel", ["P1"], frozenset({"areaM2"}), FetchContext("r"))
        assert connector.breaker.state is BreakerState.CLOSED
        found = await connector.fetch(
            "LandParcel", ["P1"], frozenset({"areaM2"}), FetchContext("r")
        )
        assert found.get("P1") is None
    finally:
        await connector.aclose()


async def test_an_open_breaker_is_not_retried() -> None:
    calls: list[str] = []

    def failing(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(503)

    connector = _connector(failing, retries=3)
    connector.breaker = CircuitBreaker("flaky", failures=1, reset_seconds=10.0, clock=Clock())
    loop = asyncio.get_running_loop()
    with pytest.raises(SourceUnavailable):
        await connector.fetch("Citizen", [AN], frozenset({"fullName"}), FetchContext("r"))
    assert len(calls) == 1  # the retry met the open breaker, which refused it
    started = loop.time()
    with pytest.raises(SourceUnavailable) as caught:
        await connector.fetch("Citizen", [AN], frozenset({"fullName"}), FetchContext("r"))
    assert caught.value.detail["reason"] == "circuit_open"
    assert loop.time() - started < 0.05  # refused at once, with no pause before retries
    assert len(calls) == 1
