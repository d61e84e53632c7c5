"""The connector registry: checking manifests against the schema and routing fields."""

from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors import (
    CanonicalTree,
    ConnectorRegistry,
    FetchContext,
    FetchResult,
    Health,
    ManifestBase,
    ManifestError,
    RestConnector,
    build_registry,
    check_manifest,
    connector_kinds,
    load_manifest,
    parse_manifest,
)
from schema import canonical_fields

CANONICAL: dict[str, CanonicalTree] = {
    "Citizen": {
        "personalId": None,
        "fullName": None,
        "gender": None,
        "phone": None,
        "father": {"personalId": None, "fullName": None},
    },
    "Business": {"enterpriseCode": None, "name": None},
}


class FakeConnector:
    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False

    async def fetch(
        self, kind: str, keys: Sequence[str], fields: frozenset[str], ctx: FetchContext
    ) -> Mapping[str, FetchResult]:
        return {}

    async def health(self) -> Health:
        return Health(ok=self.name != "down", detail=self.name)

    async def aclose(self) -> None:
        self.closed = True


def _manifest(
    name: str,
    fields: dict[str, Any],
    *,
    priority: int = 100,
    kind: str = "rest",
    entity: str = "Citizen",
) -> ManifestBase:
    return parse_manifest(
        {
            "name": name,
            "kind": kind,
            "base_url": f"http://{name}.test",
            "priority": priority,
            "entities": {entity: {"key_field": "id", "get": "/{key}", "fields": fields}},
        }
    )


def _registry(*manifests: ManifestBase) -> ConnectorRegistry:
    return ConnectorRegistry([(m, FakeConnector(m.name)) for m in manifests])


def _split(registry: ConnectorRegistry, kind: str, fields: set[str]) -> dict[str, set[str]]:
    route = registry.route(kind, frozenset(fields))
    return {c.name: set(f) for c, f in route.served}


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.MockTransport(lambda _: httpx.Response(200, json={}))
    async with httpx.AsyncClient(transport=transport) as client:
        yield client


def test_route_splits_fields_by_connector() -> None:
    registry = _registry(
        _manifest("population", {"fullName": "ho_ten", "gender": "gioi_tinh"}),
        _manifest("telecom", {"phone": "so_dt"}),
    )
    assert _split(registry, "Citizen", {"fullName", "phone"}) == {
        "population": {"fullName"},
        "telecom": {"phone"},
    }


def test_lower_priority_number_wins() -> None:
    registry = _registry(
        _manifest("aaa", {"fullName": "ten"}, priority=50),
        _manifest("zzz", {"fullName": "ho_ten"}, priority=10),
    )
    assert _split(registry, "Citizen", {"fullName"}) == {"zzz": {"fullName"}}


def test_equal_priority_is_decided_by_name() -> None:
    registry = _registry(
        _manifest("zzz", {"fullName": "ho_ten"}),
        _manifest("aaa", {"fullName": "ten"}),
    )
    assert _split(registry, "Citizen", {"fullName"}) == {"aaa": {"fullName"}}


def test_fields_no_connector_serves_are_unserved() -> None:
    registry = _registry(_manifest("population", {"fullName": "ho_ten"}))
    route = registry.route("Citizen", frozenset({"fullName", "phone", "gender"}))
    assert route.unserved == {"phone", "gender"}


def test_unknown_kind_is_all_unserved() -> None:
    registry = _registry(_manifest("population", {"fullName": "ho_ten"}))
    route = registry.route("Business", frozenset({"name"}))
    assert route.served == ()
    assert route.unserved == {"name"}


def test_route_is_the_same_for_the_same_question() -> None:
    registry = _registry(_manifest("population", {"fullName": "ho_ten"}))
    fields = frozenset({"fullName", "phone"})
    assert registry.route("Citizen", fields) == registry.route("Citizen", frozenset(fields))


def test_serves_only_kinds_with_a_connector() -> None:
    registry = _registry(_manifest("population", {"fullName": "ho_ten"}))
    assert registry.serves("Citizen")
    assert not registry.serves("Business")


def test_registry_iterates_its_connectors() -> None:
    registry = _registry(
        _manifest("b-source", {"fullName": "x"}), _manifest("a-source", {"phone": "y"})
    )
    assert len(registry) == 2
    assert [c.name for c in registry] == ["b-source", "a-source"]


async def test_health_asks_every_connector() -> None:
    registry = _registry(_manifest("up", {"fullName": "x"}), _manifest("down", {"phone": "y"}))
    health = await registry.health()
    assert {name: h.ok for name, h in health.items()} == {"up": True, "down": False}


async def test_aclose_closes_every_connector() -> None:
    registry = _registry(_manifest("one", {"fullName": "x"}), _manifest("two", {"phone": "y"}))
    await registry.aclose()
    assert all(c.closed for c in registry)  # type: ignore[attr-defined]


def test_check_manifest_accepts_canonical_fields() -> None:
    fields = {"fullName": "ho_ten", "father": {"from": "cha", "fields": {"fullName": "ho_ten"}}}
    check_manifest(_manifest("population", fields), CANONICAL)


def test_check_manifest_rejects_a_field_the_schema_lacks() -> None:
    with pytest.raises(ManifestError, match=r"entities\.Citizen\.fields\.shoeSize"):
        check_manifest(_manifest("population", {"shoeSize": "co_giay"}), CANONICAL)


def test_check_manifest_rejects_a_nested_field_the_schema_lacks() -> None:
    fields = {"father": {"from": "cha", "fields": {"shoeSize": "co_giay"}}}
    with pytest.raises(ManifestError, match=r"entities\.Citizen\.fields\.father\.fields\.shoeSize"):
        check_manifest(_manifest("population", fields), CANONICAL)


def test_check_manifest_rejects_sub_fields_on_a_scalar() -> None:
    fields = {"fullName": {"from": "ho_ten", "fields": {"first": "ten"}}}
    with pytest.raises(ManifestError, match="scalar"):
        check_manifest(_manifest("population", fields), CANONICAL)


def test_check_manifest_rejects_an_unknown_entity_kind() -> None:
    manifest = _manifest("population", {"name": "ten"}, entity="Spaceship")
    with pytest.raises(ManifestError, match=r"entities\.Spaceship"):
        check_manifest(manifest, CANONICAL)


def test_check_manifest_names_the_manifest() -> None:
    with pytest.raises(ManifestError) as caught:
        check_manifest(_manifest("population", {"shoeSize": "co_giay"}), CANONICAL)
    assert "population" in caught.value.path


def test_check_manifest_reports_every_problem() -> None:
    fields = {"shoeSize": "a", "hatSize": "b"}
    with pytest.raises(ManifestError) as caught:
        check_manifest(_manifest("population", fields), CANONICAL)
    assert "shoeSize" in str(caught.value)
    assert "hatSize" in str(caught.value)


def test_connector_kinds_finds_the_rest_entry_point() -> None:
    assert connector_kinds()["rest"] is RestConnector


async def test_build_registry_builds_rest_connectors(http: httpx.AsyncClient) -> None:
    registry = build_registry(
        [_manifest("population", {"fullName": "ho_ten"})], http=http, canonical=CANONICAL
    )
    [connector] = list(registry)
    assert isinstance(connector, RestConnector)
    assert connector.name == "population"


def test_a_manifest_of_an_unknown_kind_does_not_load() -> None:
    with pytest.raises(ValueError, match="unknown kind 'carrier-pigeon'; the kinds are rest"):
        _manifest("population", {"fullName": "ho_ten"}, kind="carrier-pigeon")


async def test_build_registry_rejects_a_kind_no_plug_in_provides(http: httpx.AsyncClient) -> None:
    manifest = _manifest("population", {"fullName": "ho_ten"})
    with pytest.raises(ManifestError, match="unknown kind 'rest'") as caught:
        build_registry([manifest], http=http, canonical=CANONICAL, kinds={"sql": RestConnector})
    assert "installed kinds: sql" in str(caught.value)


async def test_build_registry_checks_manifests(http: httpx.AsyncClient) -> None:
    with pytest.raises(ManifestError, match="shoeSize"):
        build_registry([_manifest("population", {"shoeSize": "x"})], http=http, canonical=CANONICAL)


async def test_url_override_changes_base_url(http: httpx.AsyncClient) -> None:
    registry = build_registry(
        [_manifest("population", {"fullName": "ho_ten"})],
        http=http,
        canonical=CANONICAL,
        url_overrides={"population": "http://10.0.0.5:9000/"},
    )
    [connector] = list(registry)
    assert isinstance(connector, RestConnector)
    assert connector.manifest.base_url == "http://10.0.0.5:9000"
    assert registry.manifests["population"].base_url == "http://10.0.0.5:9000"


async def test_url_override_for_unknown_connector_is_rejected(http: httpx.AsyncClient) -> None:
    with pytest.raises(ManifestError, match="nobody"):
        build_registry(
            [_manifest("population", {"fullName": "ho_ten"})],
            http=http,
            canonical=CANONICAL,
            url_overrides={"nobody": "http://10.0.0.5"},
        )


async def test_build_registry_uses_given_kinds(http: httpx.AsyncClient) -> None:
    built: list[str] = []

    def factory(manifest: ManifestBase, *, http: httpx.AsyncClient) -> FakeConnector:
        built.append(manifest.name)
        return FakeConnector(manifest.name)

    registry = build_registry(
        [_manifest("population", {"fullName": "ho_ten"}, kind="rest")],
        http=http,
        canonical=CANONICAL,
        kinds={"rest": factory},
    )
    assert built == ["population"]
    assert _split(registry, "Citizen", {"fullName"}) == {"population": {"fullName"}}


@pytest.mark.parametrize("name", ["business.yaml", "population.yaml"])
def test_sandbox_manifests_fit_the_canonical_schema(name: str) -> None:
    path = Path(__file__).parents[3] / "sandbox" / "manifests" / name
    check_manifest(load_manifest(path), canonical_fields())
