"""The connectors in use are swapped while serving: held registries stay open until released."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

import sandbox
from connectors import (
    ConnectorRegistry,
    FetchContext,
    LocalLimits,
    ManifestError,
    load_manifest,
    parse_manifest,
)
from gateway.config import GatewaySettings
from gateway.web._live_connectors import (
    ActiveManifest,
    ConnectorFailed,
    KeptLimits,
    LiveConnectors,
    _build,
)
from keys import KeyRingError
from policies import Allowed
from schema import RequestContext
from schema._context import Access

MANIFESTS = Path(sandbox.__file__).parent / "manifests"
ENGINE: Any = None
"""The database, which `stored_secrets` (replaced here) alone reads in `_build`."""


@dataclass(frozen=True)
class Entry:
    name: str
    version: int
    manifest: dict[str, Any] = field(default_factory=dict)


@dataclass
class FakeStore:
    """The database's connectors in use, as a test sets them."""

    entries: list[Entry] = field(default_factory=lambda: [Entry("population", 1)])
    number: int = 1
    reads: int = 0

    async def active(self) -> Sequence[ActiveManifest]:
        self.reads += 1
        return list(self.entries)

    async def generation(self) -> int:
        return self.number

    def change(self, *entries: Entry) -> None:
        self.entries = list(entries)
        self.number += 1


class Tracked(ConnectorRegistry):
    """A registry without connectors that says when it was closed."""

    def __init__(self, names: list[str]) -> None:
        super().__init__([])
        self.names = names
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True

    def is_closed(self) -> bool:
        return self.closed


class Builder:
    """Builds a `Tracked` registry of the active names, or fails for a name in `broken`."""

    def __init__(self) -> None:
        self.built: list[Tracked] = []
        self.broken: set[str] = set()

    async def __call__(self, active: Sequence[ActiveManifest]) -> ConnectorRegistry:
        for entry in active:
            if entry.name in self.broken:
                raise ConnectorFailed(entry.name, ManifestError("manifest", "no such field"))
        registry = Tracked([e.name for e in active])
        self.built.append(registry)
        return registry


async def _eventually(done: Any) -> None:
    for _ in range(500):
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not within 5 s")


async def _settled() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def _started(store: FakeStore, builder: Builder, **options: Any) -> LiveConnectors:
    live = LiveConnectors(store, builder, **options)
    await live.start()
    return live


async def test_a_request_keeps_the_registry_it_started_with_until_it_ends() -> None:
    store, builder = FakeStore(), Builder()
    live = await _started(store, builder)
    try:
        first = builder.built[0]
        with live.hold() as held:
            store.change(Entry("population", 1), Entry("civil", 1))
            assert await live.reload(force=False) is True
            await _settled()
            # The request goes on with the old registry; new requests get the new one.
            assert held.registry is first
            assert held.versions == {"population": 1}
            assert not first.is_closed()
            assert live.registry is builder.built[1]
            assert live.versions == {"population": 1, "civil": 1}
        await _settled()
        assert first.is_closed()
        assert not builder.built[1].is_closed()
    finally:
        await live.aclose()


async def test_the_old_registry_is_closed_after_the_last_of_its_holders() -> None:
    store, builder = FakeStore(), Builder()
    live = await _started(store, builder)
    try:
        first = builder.built[0]
        one, other = live.hold(), live.hold()
        one.__enter__()
        other.__enter__()
        store.change(Entry("population", 2))
        await live.reload(force=False)
        with live.hold() as newer:
            assert newer.registry is builder.built[1]
        one.__exit__(None, None, None)
        await _settled()
        assert not first.is_closed()
        other.__exit__(None, None, None)
        await _settled()
        assert first.is_closed()
        assert not builder.built[1].is_closed()
    finally:
        await live.aclose()


async def test_a_registry_nobody_holds_is_closed_at_the_swap() -> None:
    store, builder = FakeStore(), Builder()
    live = await _started(store, builder)
    try:
        store.change(Entry("population", 2))
        await live.reload(force=False)
        await _settled()
        assert builder.built[0].is_closed()
        assert live.versions == {"population": 2}
    finally:
        await live.aclose()


async def test_a_generation_that_fails_to_build_leaves_the_old_one_serving() -> None:
    store, builder = FakeStore(), Builder()
    live = await _started(store, builder)
    try:
        first = builder.built[0]
        failed = (
            REGISTRY.get_sample_value("gateway_connectors_reloads_total", {"outcome": "failed"})
            or 0.0
        )
        builder.broken.add("civil")
        store.change(Entry("population", 1), Entry("civil", 3))
        assert await live.reload(force=False) is False
        assert live.registry is first
        assert not first.is_closed()
        assert (
            REGISTRY.get_sample_value("gateway_connectors_reloads_total", {"outcome": "failed"})
            == failed + 1
        )
        report = live.report()
        assert report["generation"] == 1
        assert report["failure"]["generation"] == 2
        assert report["failure"]["connector"] == "civil"
        assert "no such field" in report["failure"]["error"]
        # The same generation is not tried again at every check; a new one is.
        reads = store.reads
        assert await live.reload(force=False) is False
        assert store.reads == reads
        builder.broken.clear()
        store.change(Entry("population", 1), Entry("civil", 4))
        assert await live.reload(force=False) is True
        assert live.report() == {"generation": 3, "failure": None}
        assert REGISTRY.get_sample_value("gateway_connectors_generation") == 3
        assert live.versions == {"population": 1, "civil": 4}
    finally:
        await live.aclose()


async def test_an_unchanged_generation_is_rebuilt_only_when_asked() -> None:
    store, builder = FakeStore(), Builder()
    live = await _started(store, builder)
    try:
        assert await live.reload(force=False) is False
        assert len(builder.built) == 1
        # A change made in this process (a secret stored) rebuilds at once.
        assert await live.reload() is True
        assert len(builder.built) == 2
    finally:
        await live.aclose()


async def test_the_first_registry_failing_stops_start_up_with_its_error() -> None:
    builder = Builder()
    builder.broken.add("population")
    live = LiveConnectors(FakeStore(), builder)
    with pytest.raises(ManifestError, match="no such field"):
        await live.start()


async def test_a_registry_whose_source_lacks_what_it_names_is_closed_and_not_served() -> None:
    store, builder = FakeStore(), Builder()
    live = await _started(store, builder)

    class Lacking:
        name = "land"

        async def open(self) -> None:
            raise ManifestError("manifest 'land'", "entities.LandParcel.table: no such table")

    failing = Tracked(["land"])
    failing._connectors = [Lacking()]  # type: ignore[list-item]
    try:

        async def build(_active: Sequence[ActiveManifest]) -> ConnectorRegistry:
            return failing

        live._build = build
        store.change(Entry("land", 1))
        assert await live.reload(force=False) is False
        assert failing.is_closed()
        assert live.registry is builder.built[0]
        assert live.report()["failure"]["connector"] == "land"
    finally:
        await live.aclose()


async def test_the_watcher_serves_a_new_generation_it_polls() -> None:
    store, builder = FakeStore(), Builder()
    live = await _started(store, builder, poll_seconds=0.02)
    try:
        store.change(Entry("population", 1), Entry("business", 2))
        await _eventually(lambda: live.report()["generation"] == 2)
        assert live.versions == {"population": 1, "business": 2}
    finally:
        await live.aclose()


async def test_a_database_down_does_not_stop_the_watcher() -> None:
    store, builder = FakeStore(), Builder()
    live = await _started(store, builder, poll_seconds=0.02)
    calls = 0
    generation = store.generation

    async def flaky() -> int:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise OSError("connection refused")
        return await generation()

    try:
        store.generation = flaky  # type: ignore[method-assign]
        store.change(Entry("population", 5))
        await _eventually(lambda: live.versions == {"population": 5})
        assert calls > 2
    finally:
        await live.aclose()


async def test_closing_closes_the_registry_in_use() -> None:
    store, builder = FakeStore(), Builder()
    live = await _started(store, builder, poll_seconds=0.02)
    await live.aclose()
    assert builder.built[0].is_closed()
    with pytest.raises(RuntimeError):
        live.current()
    # A change approved as the gateway stops builds nothing left open.
    store.change(Entry("population", 2))
    assert await live.reload() is False
    assert len(builder.built) == 1


def test_without_redis_the_check_is_frequent_and_with_it_rare() -> None:
    assert LiveConnectors(FakeStore(), Builder()).poll_seconds == 5.0
    with_redis = LiveConnectors(FakeStore(), Builder(), redis=object())  # type: ignore[arg-type]
    assert with_redis.poll_seconds == 60.0
    assert LiveConnectors(FakeStore(), Builder(), poll_seconds=0.5).poll_seconds == 0.5


# -- building from the database's manifests ----------------------------------------------


@pytest.fixture(autouse=True)
def no_stored_secrets(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[str, str], str]:
    """The database's stored secrets, as a test sets them (none at first)."""
    stored: dict[tuple[str, str], str] = {}

    async def stored_secrets(_engine: Any, _keys_dir: Path) -> dict[tuple[str, str], str]:
        if ("*", "*") in stored:
            raise KeyRingError("connector secrets are stored but there is no key-encryption key")
        return stored

    monkeypatch.setattr("gateway.web._live_connectors.stored_secrets", stored_secrets)
    return stored


def _settings(**overrides: Any) -> GatewaySettings:
    return GatewaySettings(_env_file=None, **overrides)


def _entry(path: Path, version: int = 1, **changes: Any) -> Entry:
    manifest = load_manifest(path)
    data = manifest.model_dump(mode="json", by_alias=True)
    data.update(changes)
    return Entry(manifest.name, version, data)


async def test_a_manifest_the_files_hold_unchanged_is_the_files_own() -> None:
    population = load_manifest(MANIFESTS / "population.yaml")
    async with httpx.AsyncClient() as http:
        registry = await _build(
            [_entry(MANIFESTS / "population.yaml"), _entry(MANIFESTS / "business.yaml", 4)],
            settings=_settings(connector_urls={"business": "http://127.0.0.1:9"}),
            engine=ENGINE,
            http=http,
            rate_limits=None,
            files={"population": population},
        )
    assert registry.manifests["population"] is population
    business = registry.manifests["business"]
    assert business.path is None  # from the database alone
    assert business.endpoint == "http://127.0.0.1:9"


async def test_a_changed_manifest_is_the_databases_and_reads_beside_the_file() -> None:
    population = load_manifest(MANIFESTS / "population.yaml")
    entry = _entry(MANIFESTS / "population.yaml", 2, title="Population, version 2")
    async with httpx.AsyncClient() as http:
        registry = await _build(
            [entry],
            settings=_settings(),
            engine=ENGINE,
            http=http,
            rate_limits=None,
            files={"population": population},
        )
    served = registry.manifests["population"]
    assert served is not population
    assert served.title == "Population, version 2"
    assert served.path == population.path


async def test_a_manifest_that_no_longer_builds_names_its_connector() -> None:
    broken = _entry(MANIFESTS / "business.yaml")
    broken.manifest["entities"]["Business"]["fields"]["shoeSize"] = "co_giay"
    async with httpx.AsyncClient() as http:
        with pytest.raises(ConnectorFailed) as caught:
            await _build(
                [_entry(MANIFESTS / "population.yaml"), broken],
                settings=_settings(),
                engine=ENGINE,
                http=http,
                rate_limits=None,
                files={},
            )
    assert caught.value.connector == "business"
    assert "shoeSize" in str(caught.value.error)


async def test_an_endpoint_override_naming_no_connector_stops_only_start_up() -> None:
    settings = _settings(connector_urls={"civil": "http://127.0.0.1:9"})
    active = [_entry(MANIFESTS / "population.yaml")]
    async with httpx.AsyncClient() as http:
        with pytest.raises(ManifestError, match="no connector named civil"):
            await _build(
                active,
                settings=settings,
                engine=ENGINE,
                http=http,
                rate_limits=None,
                files={},
                strict=True,
            )
        # Later, a connector may be retired while its override stays set.
        registry = await _build(
            active, settings=settings, engine=ENGINE, http=http, rate_limits=None, files={}
        )
    assert set(registry.manifests) == {"population"}


# -- provenance names the version --------------------------------------------------------


def test_provenance_and_the_record_name_the_version_of_the_source() -> None:
    ctx = RequestContext(
        registry=None,  # type: ignore[arg-type]
        fetch=FetchContext(request_id="r-1"),
        max_batch=10,
        access=Access(client_id="c", agency_kinds=frozenset(), purpose=None, policy=None),  # type: ignore[arg-type]
        versions={"population": 3, "civil": 2},
    )
    when = datetime.datetime(2026, 12, 6, tzinfo=datetime.UTC)
    allowed = Allowed(basis="law", reference="Law 1")
    ctx.note_provenance("citizen.fullName", source="population", retrieved_at=when, allowed=allowed)
    ctx.note_provenance("citizen.x", source="unversioned", retrieved_at=when, allowed=allowed)
    assert ctx.provenance["citizen.fullName"]["source"] == "population"
    assert ctx.provenance["citizen.fullName"]["version"] == 3
    assert "version" not in ctx.provenance["citizen.x"]
    assert ctx.source_versions() == {"population": 3}


async def test_secrets_that_cannot_be_opened_keep_the_registry_in_use(
    no_stored_secrets: dict[tuple[str, str], str],
) -> None:
    active = [_entry(MANIFESTS / "population.yaml")]
    async with httpx.AsyncClient() as http:

        async def build(entries: Sequence[ActiveManifest]) -> ConnectorRegistry:
            return await _build(
                entries, settings=_settings(), engine=ENGINE, http=http, rate_limits=None, files={}
            )

        store = FakeStore(entries=active)
        live = LiveConnectors(store, build)
        await live.start()
        try:
            first = live.registry
            no_stored_secrets[("*", "*")] = "a KEK gone"
            store.change(*active)
            assert await live.reload(force=False) is False
            assert live.registry is first
            failure = live.report()["failure"]
            assert failure["connector"] is None
            assert "key-encryption key" in failure["error"]
        finally:
            await live.aclose()


def test_a_sources_limiter_is_kept_across_rebuilds_while_its_rate_limit_stays() -> None:
    kept = KeptLimits(LocalLimits())
    data = _entry(MANIFESTS / "population.yaml").manifest

    def manifest(**changes: Any) -> Any:
        return parse_manifest({**data, **changes})

    first = kept.limiter(manifest(rate_limit={"per_second": 5}))
    assert first is not None
    # Another registry's connector of the same source spends the same permits.
    assert kept.limiter(manifest(rate_limit={"per_second": 5}, title="v2")) is first
    changed = kept.limiter(manifest(rate_limit={"per_second": 9}))
    assert changed is not None
    assert changed is not first
    assert kept.limiter(manifest()) is None
