"""The registry of active connectors, and which connector serves which canonical field.

Manifests are checked against the canonical schema when the registry is built: a
manifest may only map to fields the schema has (connectors never add fields), and a
kind must be a registered plug-in. Anything wrong stops start-up with a clear message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TypeAlias

import httpx
import structlog

from connectors._manifest import FieldMap, Manifest, ManifestError, MappingSpec
from connectors.base import Connector, ConnectorFactory, Health

__all__ = [
    "CanonicalTree",
    "ConnectorRegistry",
    "Route",
    "build_registry",
    "check_kind",
    "check_manifest",
    "connector_kinds",
]

log = structlog.get_logger(__name__)

CanonicalTree: TypeAlias = Mapping[str, "CanonicalTree | None"]
"""Canonical fields of a type: a leaf maps to `None`, an object type to its own tree."""

ENTRY_POINT_GROUP = "gateway.connectors"


@dataclass(frozen=True, slots=True)
class Route:
    """Which connector serves which of the requested fields, and which fields none serves."""

    served: tuple[tuple[Connector, frozenset[str]], ...]
    unserved: frozenset[str]


def connector_kinds() -> dict[str, ConnectorFactory]:
    """Load every connector kind registered under the `gateway.connectors` entry points.

    A plug-in that fails to import fails loudly: a gateway that silently lacks a kind
    would answer `NO_SOURCE` for data it was configured to serve.
    """
    kinds: dict[str, ConnectorFactory] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            kinds[ep.name] = ep.load()
        except Exception as exc:
            raise RuntimeError(f"connector kind {ep.name!r} ({ep.value}) failed to load") from exc
    return kinds


def _check_mapping(
    where: str, fields: Mapping[str, MappingSpec], tree: CanonicalTree, errors: list[str]
) -> None:
    for name, spec in fields.items():
        if name not in tree:
            errors.append(f"{where}.{name}: not a canonical field")
            continue
        sub = tree[name]
        nested = spec.fields if isinstance(spec, FieldMap) else None
        if nested is not None:
            if sub is None:
                errors.append(f"{where}.{name}: is a scalar, it has no sub-fields")
            else:
                _check_mapping(f"{where}.{name}", nested, sub, errors)


def check_manifest(manifest: Manifest, canonical: Mapping[str, CanonicalTree]) -> None:
    """Raise `ManifestError` when `manifest` maps to something the schema lacks."""
    errors: list[str] = []
    for kind, entity in manifest.entities.items():
        tree = canonical.get(kind)
        if tree is None:
            errors.append(f"entities.{kind}: not a canonical entity kind ({', '.join(canonical)})")
            continue
        _check_mapping(f"entities.{kind}.fields", entity.fields, tree, errors)
    if errors:
        raise ManifestError(f"manifest {manifest.name!r}", "; ".join(errors))


def check_kind(manifest: Manifest, kinds: Mapping[str, object]) -> None:
    """Raise `ManifestError` when no installed plug-in (`connector_kinds()`) has its kind."""
    if manifest.kind not in kinds:
        raise ManifestError(
            f"manifest {manifest.name!r}",
            f"unknown kind {manifest.kind!r}; installed kinds: {', '.join(sorted(kinds))}",
        )


class ConnectorRegistry:
    """Active connectors, and for each entity kind the connectors that serve each field."""

    def __init__(self, connectors: Sequence[tuple[Manifest, Connector]]) -> None:
        self._connectors = [c for _, c in connectors]
        self.manifests = {m.name: m for m, _ in connectors}
        # kind -> field -> connector; the lowest priority number wins, then the name.
        self._providers: dict[str, dict[str, Connector]] = {}
        for manifest, connector in sorted(connectors, key=lambda mc: (mc[0].priority, mc[0].name)):
            for kind, entity in manifest.entities.items():
                table = self._providers.setdefault(kind, {})
                for field in entity.fields:
                    table.setdefault(field, connector)
        self._routes: dict[tuple[str, frozenset[str]], Route] = {}

    def __iter__(self) -> Iterator[Connector]:
        return iter(self._connectors)

    def __len__(self) -> int:
        return len(self._connectors)

    def route(self, kind: str, fields: frozenset[str]) -> Route:
        """Split `fields` of `kind` by the connector that serves them."""
        key = (kind, fields)
        route = self._routes.get(key)
        if route is None:
            table = self._providers.get(kind, {})
            by_connector: dict[str, tuple[Connector, set[str]]] = {}
            unserved = set()
            for field in fields:
                connector = table.get(field)
                if connector is None:
                    unserved.add(field)
                else:
                    by_connector.setdefault(connector.name, (connector, set()))[1].add(field)
            route = Route(
                served=tuple((c, frozenset(f)) for c, f in by_connector.values()),
                unserved=frozenset(unserved),
            )
            if len(self._routes) < 4096:  # selections are few in practice; stay bounded
                self._routes[key] = route
        return route

    def serves(self, kind: str) -> bool:
        """Whether any connector serves some field of `kind`."""
        return bool(self._providers.get(kind))

    async def health(self) -> dict[str, Health]:
        """Each connector's health, asked concurrently."""
        results = await asyncio.gather(*(c.health() for c in self._connectors))
        return {c.name: h for c, h in zip(self._connectors, results, strict=True)}

    async def aclose(self) -> None:
        """Close every connector."""
        for connector in self._connectors:
            await connector.aclose()


def build_registry(
    manifests: Iterable[Manifest],
    *,
    http: httpx.AsyncClient,
    canonical: Mapping[str, CanonicalTree],
    url_overrides: Mapping[str, str] | None = None,
    kinds: Mapping[str, Callable[..., Connector]] | None = None,
) -> ConnectorRegistry:
    """Check each manifest against the schema and build its connector."""
    kinds = connector_kinds() if kinds is None else kinds
    overrides = dict(url_overrides or {})
    built: list[tuple[Manifest, Connector]] = []
    for manifest in manifests:
        check_kind(manifest, kinds)
        check_manifest(manifest, canonical)
        if manifest.name in overrides:
            manifest = manifest.model_copy(
                update={"base_url": overrides.pop(manifest.name).rstrip("/")}
            )
        built.append((manifest, kinds[manifest.kind](manifest, http=http)))
        log.info("connector_ready", connector=manifest.name, kind=manifest.kind)
    if overrides:
        raise ManifestError("connector_urls", f"no connector named {', '.join(sorted(overrides))}")
    return ConnectorRegistry(built)
