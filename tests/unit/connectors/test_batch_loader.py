"""Per-request batching of lookups: one fetch per event-loop turn, results reused."""

import asyncio
import gc
from collections.abc import Mapping, Sequence

import pytest

from connectors import BatchLoader, FetchContext, FetchResult, Health
from gateway.errors import SourceUnavailable

CTX = FetchContext(request_id="req-1")


class FakeConnector:
    """Answers every key with a record of the fields asked for; records each fetch."""

    name = "fake"

    def __init__(self, *, missing: frozenset[str] = frozenset()) -> None:
        self.fetches: list[tuple[str, list[str], frozenset[str]]] = []
        self.missing = missing
        self.error: Exception | None = None

    async def fetch(
        self, kind: str, keys: Sequence[str], fields: frozenset[str], ctx: FetchContext
    ) -> Mapping[str, FetchResult]:
        self.fetches.append((kind, list(keys), fields))
        await asyncio.sleep(0)
        if self.error is not None:
            raise self.error
        return {k: {f: f"{f}:{k}" for f in fields} for k in keys if k not in self.missing}

    async def health(self) -> Health:
        return Health(ok=True)

    async def aclose(self) -> None:
        return None


@pytest.fixture
def connector() -> FakeConnector:
    return FakeConnector()


@pytest.fixture
def loader(connector: FakeConnector) -> BatchLoader:
    return BatchLoader(connector, "Citizen", CTX)


async def test_loads_in_one_turn_are_one_fetch(
    connector: FakeConnector, loader: BatchLoader
) -> None:
    results = await asyncio.gather(
        loader.load("a", frozenset({"fullName", "gender"})),
        loader.load("b", frozenset({"gender"})),
        loader.load("b", frozenset({"fullName"})),
        loader.load("a", frozenset({"fullName"})),
    )
    assert len(connector.fetches) == 1
    kind, keys, fields = connector.fetches[0]
    assert kind == "Citizen"
    assert keys == ["a", "b"]
    assert fields == {"fullName", "gender"}
    assert results[0] is results[3]
    assert results[1] == {"fullName": "fullName:b", "gender": "gender:b"}
    assert loader.calls == 1


async def test_a_key_is_never_asked_for_fields_wanted_for_another_key(
    connector: FakeConnector, loader: BatchLoader
) -> None:
    # Fields allowed for one subject must not be fetched for another.
    await asyncio.gather(
        loader.load("a", frozenset({"fullName"})),
        loader.load("b", frozenset({"gender"})),
        loader.load("a", frozenset({"birthDate"})),
        loader.load("c", frozenset({"gender"})),
    )
    asked = {tuple(keys): fields for _, keys, fields in connector.fetches}
    assert asked == {("a",): {"fullName", "birthDate"}, ("b", "c"): {"gender"}}
    assert loader.calls == 2


async def test_fetch_is_sent_only_after_the_current_turn(
    connector: FakeConnector, loader: BatchLoader
) -> None:
    pending = loader.load("a", frozenset({"fullName"}))
    assert connector.fetches == []
    await pending
    assert len(connector.fetches) == 1


async def test_concurrent_resolvers_share_one_fetch(
    connector: FakeConnector, loader: BatchLoader
) -> None:
    async def resolve(key: str) -> FetchResult:
        return await loader.load(key, frozenset({"fullName"}))

    await asyncio.gather(*(resolve(k) for k in "abcde"))
    assert [keys for _, keys, _ in connector.fetches] == [list("abcde")]


async def test_known_key_with_fewer_fields_costs_no_call(
    connector: FakeConnector, loader: BatchLoader
) -> None:
    first = await loader.load("a", frozenset({"fullName", "gender"}))
    again = await loader.load("a", frozenset({"gender"}))
    assert again is first
    assert len(connector.fetches) == 1
    assert loader.calls == 1


async def test_known_key_needing_new_fields_is_fetched_again(
    connector: FakeConnector, loader: BatchLoader
) -> None:
    await loader.load("a", frozenset({"fullName"}))
    record = await loader.load("a", frozenset({"phone"}))
    assert len(connector.fetches) == 2
    assert "phone" in connector.fetches[1][2]
    assert record is not None
    assert record["phone"] == "phone:a"
    assert loader.calls == 2


async def test_key_not_found_is_none() -> None:
    loader = BatchLoader(FakeConnector(missing=frozenset({"b"})), "Citizen", CTX)
    a, b = await asyncio.gather(
        loader.load("a", frozenset({"fullName"})), loader.load("b", frozenset({"fullName"}))
    )
    assert a == {"fullName": "fullName:a"}
    assert b is None


async def test_fetch_error_reaches_every_caller(
    connector: FakeConnector, loader: BatchLoader
) -> None:
    connector.error = SourceUnavailable(source="fake")
    results = await asyncio.gather(
        loader.load("a", frozenset({"fullName"})),
        loader.load("b", frozenset({"fullName"})),
        return_exceptions=True,
    )
    assert results == [connector.error, connector.error]


async def test_fetch_error_is_raised_on_await(
    connector: FakeConnector, loader: BatchLoader
) -> None:
    connector.error = SourceUnavailable(source="fake")
    with pytest.raises(SourceUnavailable):
        await loader.load("a", frozenset({"fullName"}))


class BrokenConnector(FakeConnector):
    """Fails every fetch with an unexpected error."""

    async def fetch(
        self, kind: str, keys: Sequence[str], fields: frozenset[str], ctx: FetchContext
    ) -> Mapping[str, FetchResult]:
        await asyncio.sleep(0)
        raise ZeroDivisionError


async def _load_two_await_one() -> bool:
    loader = BatchLoader(BrokenConnector(), "Citizen", CTX)
    loader.load("a", frozenset({"fullName"}))  # a field whose resolver never awaits it
    try:
        await loader.load("b", frozenset({"fullName"}))
    except ZeroDivisionError:
        return True
    return False


async def test_unawaited_failed_load_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    assert await _load_two_await_one()
    await asyncio.sleep(0)  # let the loop drop the finished batch task
    gc.collect()
    assert "never retrieved" not in caplog.text


async def test_loads_in_later_turns_are_separate_fetches(
    connector: FakeConnector, loader: BatchLoader
) -> None:
    await loader.load("a", frozenset({"fullName"}))
    await loader.load("b", frozenset({"fullName"}))
    assert [keys for _, keys, _ in connector.fetches] == [["a"], ["b"]]
    assert loader.calls == 2


async def test_fetch_gets_the_request_context(
    connector: FakeConnector, loader: BatchLoader
) -> None:
    seen: list[FetchContext] = []
    original = connector.fetch

    async def spy(
        kind: str, keys: Sequence[str], fields: frozenset[str], ctx: FetchContext
    ) -> Mapping[str, FetchResult]:
        seen.append(ctx)
        return await original(kind, keys, fields, ctx)

    connector.fetch = spy  # type: ignore[method-assign]
    await loader.load("a", frozenset({"fullName"}))
    assert seen == [CTX]
