"""The registry of active connectors, and which connector serves which canonical field.

Manifests are checked against the canonical schema when the registry is built: a
manifest may only map to fields the schema has (connectors never add fields), and a
kind must be a registered plug-in. Anything wrong stops start-up with a clear message.

Each connector gets the limiter of its manifest's `rate_limit` from the `SourceLimits`
given to `build_registry` (in Redis when the gateway has it, shared by replicas); the
kinds never see where the permits are kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import TypeAlias

import httpx
import structlog

from connectors._expressions import ExpressionError, lookup_tables
from connectors._manifest import (
    EntityBase,
    FieldMap,
    ManifestBase,
    ManifestError,
    MappingSpec,
    SqlManifest,
)
from connectors._mapping import compile_fields, source_roots
from connectors._ratelimit import LimitedConnector, SourceLimits
from connectors._secrets import StoredSecrets, resolve_secret, stored_refs, with_stored_secrets
from connectors._signatures import SIGNATURE_FIELD
from connectors.base import Connector, ConnectorFactory, Health
from gateway.errors import SourceError

__all__ = [
    "CanonicalTree",
    "ConnectorRegistry",
    "Route",
    "build_registry",
    "check_kind",
    "check_manifest",
    "check_not_reserved",
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


Loc: TypeAlias = tuple[str | int, ...]


def _check_mapping(
    where: Loc,
    fields: Mapping[str, MappingSpec],
    tree: CanonicalTree,
    tables: Mapping[str, object],
    errors: list[tuple[Loc, str]],
) -> None:
    for name, spec in fields.items():
        if name not in tree:
            errors.append(((*where, name), "not a canonical field"))
            continue
        sub = tree[name]
        if not isinstance(spec, FieldMap):
            continue
        if spec.expr is not None:
            for table in sorted(lookup_tables(spec.expr) - set(tables)):
                errors.append(((*where, name, "expr"), f"lookup() names no table {table!r}"))
        if spec.fields is not None:
            if sub is None:
                errors.append(((*where, name), "is a scalar, it has no sub-fields"))
            else:
                _check_mapping((*where, name, "fields"), spec.fields, sub, tables, errors)


def _check_signed(
    manifest: ManifestBase,
    kind: str,
    entity: EntityBase,
    tree: CanonicalTree,
    errors: list[tuple[Loc, str]],
) -> None:
    """A signed entity: its kind has `signature`, and its mapping reads only signed fields."""
    assert entity.signature is not None
    where: Loc = ("entities", kind, "signature")
    if SIGNATURE_FIELD not in tree:
        errors.append((where, f"{kind} records carry no `{SIGNATURE_FIELD}` field"))
        return
    if SIGNATURE_FIELD in entity.fields:
        errors.append(
            (("entities", kind, "fields", SIGNATURE_FIELD), "is set by the signature's check")
        )
    try:
        mappers = compile_fields(entity.fields, source=manifest.name, tables=manifest.tables)
    except (ManifestError, ExpressionError, ValueError):
        return  # reported by the mapping's own check
    roots = source_roots(mappers.values())
    if roots is None:
        errors.append((where, "a field reads the whole record (`@`): it cannot be covered"))
        return
    unsigned = sorted(roots - set(entity.signature.covers))
    if unsigned:
        errors.append(
            (
                (*where, "covers"),
                f"the mapping reads fields the signature does not cover: {', '.join(unsigned)}",
            )
        )


def check_manifest(manifest: ManifestBase, canonical: Mapping[str, CanonicalTree]) -> None:
    """Raise `ManifestError` when `manifest` maps to something the schema lacks.

    The error names the file, the line and the field of the first problem found.
    """
    errors: list[tuple[Loc, str]] = []
    for kind, entity in manifest.entities.items():
        tree = canonical.get(kind)
        if tree is None:
            errors.append(
                (("entities", kind), f"not a canonical entity kind ({', '.join(canonical)})")
            )
            continue
        _check_mapping(("entities", kind, "fields"), entity.fields, tree, manifest.tables, errors)
        if entity.signature is not None:
            _check_signed(manifest, kind, entity, tree, errors)
    if errors:
        loc, message = errors[0]
        others = "; ".join(f"{'.'.join(map(str, at))}: {what}" for at, what in errors[1:])
        raise manifest.error(loc, message + (f" (also {others})" if others else ""))


def check_kind(manifest: ManifestBase, kinds: Mapping[str, object]) -> None:
    """Raise `ManifestError` when no installed plug-in (`connector_kinds()`) has its kind."""
    if manifest.kind not in kinds:
        raise manifest.error(
            ("kind",),
            f"unknown kind {manifest.kind!r}; installed kinds: {', '.join(sorted(kinds))}",
        )


class ConnectorRegistry:
    """Active connectors, and for each entity kind the connectors that serve each field."""

    def __init__(self, connectors: Sequence[tuple[ManifestBase, Connector]]) -> None:
        self._connectors = [c for _, c in connectors]
        self.manifests = {m.name: m for m, _ in connectors}
        # kind -> field -> connector, for lookups by key: the lowest priority number
        # wins, then the name. (kind, way) -> every connector listing records of the
        # kind that way (`holder`), with its fields: a holder's list is each source's
        # records together (a person's certificates from the civil-status registry
        # and from the business registry), in the same order.
        self._providers: dict[str, dict[str, Connector]] = {}
        self._listers: dict[
            tuple[str, str], list[tuple[Connector, frozenset[str], frozenset[str]]]
        ] = {}
        for manifest, connector in sorted(connectors, key=lambda mc: (mc[0].priority, mc[0].name)):
            for kind, entity in manifest.entities.items():
                fields = frozenset(entity.fields) | (
                    {SIGNATURE_FIELD} if entity.signature is not None else frozenset()
                )
                if entity.by_key():
                    table = self._providers.setdefault(kind, {})
                    for field in fields:
                        table.setdefault(field, connector)
                for way in sorted(entity.list_ways()):
                    self._listers.setdefault((kind, way), []).append(
                        (connector, fields, entity.list_holders(way))
                    )
        self._routes: dict[tuple[str, frozenset[str], str | None, str | None], Route] = {}

    def __iter__(self) -> Iterator[Connector]:
        return iter(self._connectors)

    def __len__(self) -> int:
        return len(self._connectors)

    def route(
        self,
        kind: str,
        fields: frozenset[str],
        by: str | None = None,
        holder: str | None = None,
    ) -> Route:
        """Split `fields` of `kind` (listed `by` another key) by the connector serving them.

        A list is asked only of the sources that list records of the `holder`'s kind
        (`person`, `enterprise`; any when not given).
        """
        key = (kind, fields, by, holder)
        route = self._routes.get(key)
        if route is None:
            route = (
                self._route(kind, fields)
                if by is None
                else self._list_route(kind, fields, by, holder)
            )
            if len(self._routes) < 4096:  # selections are few in practice; stay bounded
                self._routes[key] = route
        return route

    def _route(self, kind: str, fields: frozenset[str]) -> Route:
        table = self._providers.get(kind, {})
        by_connector: dict[str, tuple[Connector, set[str]]] = {}
        unserved = set()
        for field in fields:
            connector = table.get(field)
            if connector is None:
                unserved.add(field)
            else:
                by_connector.setdefault(connector.name, (connector, set()))[1].add(field)
        return Route(
            served=tuple((c, frozenset(f)) for c, f in by_connector.values()),
            unserved=frozenset(unserved),
        )

    def _list_route(self, kind: str, fields: frozenset[str], by: str, holder: str | None) -> Route:
        listers = [
            (c, own)
            for c, own, holders in self._listers.get((kind, by), [])
            if holder is None or holder in holders
        ]
        return Route(
            served=tuple((c, fields & own) for c, own in listers if fields & own),
            unserved=fields.difference(*(own for _, own in listers)),
        )

    def serves(self, kind: str, by: str | None = None) -> bool:
        """Whether any connector serves some field of `kind` (listed `by` another key)."""
        if by is not None:
            return bool(self._listers.get((kind, by)))
        return bool(self._providers.get(kind))

    async def open(self) -> None:
        """Make every connector ready (`Connector.open`), in turn.

        A `ManifestError` (the source lacks what its manifest names) stops there; a
        source that cannot be reached is logged and left to open at its next read,
        as a REST source that is down: one agency's outage does not stop the gateway.
        """
        for connector in self._connectors:
            try:
                await connector.open()
            except SourceError as exc:
                log.warning(
                    "connector_unavailable_at_start", connector=connector.name, code=exc.code
                )

    def breakers(self) -> dict[str, str]:
        """Each connector's circuit breaker state (`closed`, `half_open`, `open`)."""
        out = {}
        for connector in self._connectors:
            breaker = getattr(connector, "breaker", None)
            if breaker is not None:
                out[connector.name] = breaker.state.name.lower()
        return out

    async def health(self) -> dict[str, Health]:
        """Each connector's health, asked concurrently."""
        results = await asyncio.gather(*(c.health() for c in self._connectors))
        return {c.name: h for c, h in zip(self._connectors, results, strict=True)}

    async def aclose(self) -> None:
        """Close every connector."""
        for connector in self._connectors:
            await connector.aclose()


def _database(url: str) -> tuple[str, ...] | None:
    """Which database a URL names, for comparison; `None` when it names none."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        path = path.removeprefix("file:").split("?", 1)[0]
        return ("sqlite", str(Path(path).resolve())) if path else None
    if parsed.get_backend_name() == "postgresql":
        host = parsed.host or "localhost"
        return ("postgresql", host, str(parsed.port or 5432), parsed.database or "")
    return None


def check_not_reserved(manifest: ManifestBase, reserved: Iterable[str]) -> None:
    """Raise `ManifestError` when `manifest` reads a database the gateway keeps its own
    records in (its access log, clients and consents are not a source)."""
    if not isinstance(manifest, SqlManifest):
        return
    own = {d for d in (_database(url) for url in reserved) if d is not None}
    if _database(manifest.database.url) in own:
        raise manifest.error(
            ("database", "url"), "this is the gateway's own database; a source cannot be it"
        )


def _limit_rate(connector: Connector, manifest: ManifestBase, limits: SourceLimits | None) -> None:
    """Hand `connector` its limiter; say so when a plug-in cannot apply a `rate_limit`."""
    if isinstance(connector, LimitedConnector):
        if limits is not None:
            connector.limit_rate(limits.limiter(manifest))
    elif manifest.rate_limit is not None:
        log.warning("rate_limit_not_applied", connector=manifest.name, kind=manifest.kind)


def build_registry(
    manifests: Iterable[ManifestBase],
    *,
    http: httpx.AsyncClient,
    canonical: Mapping[str, CanonicalTree],
    url_overrides: Mapping[str, str] | None = None,
    kinds: Mapping[str, Callable[..., Connector]] | None = None,
    reserved: Iterable[str] = (),
    rate_limits: SourceLimits | None = None,
    stored_secrets: StoredSecrets | None = None,
) -> ConnectorRegistry:
    """Check each manifest against the schema and build its connector.

    `reserved` are the URLs of databases no connector may read: the gateway's own.
    `rate_limits` gives each connector its limiter (`RedisLimits`: shared by replicas);
    without it each connector keeps permits in this process. `stored_secrets` are the
    plain values `stored:NAME` references read, by (connector, name): a reference with
    none stored is a `ManifestError` naming its field.
    """
    kinds = connector_kinds() if kinds is None else kinds
    overrides = dict(url_overrides or {})
    built: list[tuple[ManifestBase, Connector]] = []
    for manifest in manifests:
        check_kind(manifest, kinds)
        check_manifest(manifest, canonical)
        if manifest.name in overrides:
            url = overrides.pop(manifest.name)
            try:
                manifest = manifest.with_endpoint(url)
            except ValueError as exc:
                raise ManifestError(
                    "connector_urls", f"{manifest.name}: {exc} (for {manifest.endpoint_field})"
                ) from None
        check_not_reserved(manifest, reserved)
        refs = stored_refs(manifest)
        if refs:
            manifest = with_stored_secrets(manifest, stored_secrets or {})
            for loc, ref in refs:  # each now, not when a database is first opened
                resolve_secret(manifest, loc, ref)
        connector = kinds[manifest.kind](manifest, http=http)
        _limit_rate(connector, manifest, rate_limits)
        built.append((manifest, connector))
        log.info("connector_ready", connector=manifest.name, kind=manifest.kind)
    if overrides:
        raise ManifestError("connector_urls", f"no connector named {', '.join(sorted(overrides))}")
    return ConnectorRegistry(built)
