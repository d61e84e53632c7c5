"""The `graphql` connector kind: a source that answers GraphQL queries over HTTP.

The kind is the `rest` kind's call machinery (credentials, purpose headers, retries,
the circuit breaker, the request's deadline, the answer size limit) with its own
requests: each lookup is one query document POSTed as JSON `{"query", "variables"}` to
the manifest's `path`.

- The document selects only the upstream fields the requested canonical fields' mappings
  read (with the key field, to match answers to keys): a path `gcn.so_seri` selects
  `gcn { so_seri }`, a list mapped by `fields` selects the sub-fields those read, and a
  root written in the entity's `select` is selected as written there.
- Keys are never written into the document: they are variables. N keys cost one call:
  `batch_field(batch_argument: $keys)` when the source has one, else one aliased root
  field per key (`k0: thuaDat(maThua: $k0) ...`); both split only past `max_batch`. A list
  lookup by holder is one call for N holders, aliased the same way.
- Upstream `errors` become stable codes by their `extensions.code`: `NOT_FOUND` is a
  record not found; `UNAUTHENTICATED` or `FORBIDDEN` reject the lookup
  (`SOURCE_REJECTED`); any other error makes the record it names `SOURCE_DATA_INVALID`
  field by field, or the whole lookup `SOURCE_UNAVAILABLE` when the answer has no
  `data`. An upstream error's message is the source's text and is never passed on.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final, TypeAlias, cast

import httpx
import structlog

from connectors._expressions import expression_roots
from connectors._manifest import FieldMap, GraphqlEntity, GraphqlManifest, MappingSpec
from connectors._mapping import FieldMapper, compile_fields
from connectors._rest import RestConnector
from connectors._signatures import DocumentSignatures, document_signatures, map_checked
from connectors.base import FetchContext, FetchResult
from gateway.errors import SourceDataInvalid, SourceRejected, SourceUnavailable

__all__ = ["GraphqlConnector", "Selection"]

log = structlog.get_logger(__name__)

Selection: TypeAlias = dict[str, "Selection | str"]
"""Upstream fields to select: a name to its sub-selection (`{}`: a plain value; a string:
a sub-selection as the manifest's `select` writes it)."""

_NOT_FOUND: Final = frozenset({"NOT_FOUND"})
_REJECTED: Final = frozenset({"UNAUTHENTICATED", "FORBIDDEN"})
_CODE: Final = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_BATCH_ALIAS: Final = "batch"


def _merge(into: Selection, other: Mapping[str, Selection | str]) -> None:
    for name, sub in other.items():
        have = into.get(name)
        if isinstance(sub, str) or isinstance(have, str):
            into[name] = sub if isinstance(sub, str) else cast(str, have)
        elif have is None:
            into[name] = {}
            _merge(cast(Selection, into[name]), sub)
        else:
            _merge(have, sub)


def _path(parts: Sequence[str], leaf: Selection) -> Selection:
    tree: Selection = leaf
    for part in reversed(parts):
        tree = {part: tree}
    return tree


def _spec_selection(spec: MappingSpec, select: Mapping[str, str]) -> Selection:
    """What one mapping reads of the upstream record."""
    if isinstance(spec, str):
        return _path(spec.split("."), {})
    assert isinstance(spec, FieldMap)
    if spec.expr is not None:
        roots = expression_roots(spec.expr) or frozenset()  # `@` is refused at load
        return {root: select.get(root, {}) for root in roots}
    assert spec.from_ is not None
    leaf: Selection = {}
    for inner in (spec.fields or {}).values():
        _merge(leaf, _spec_selection(inner, {}))
    return _path(spec.from_.split("."), leaf)


def render(selection: Mapping[str, Selection | str]) -> str:
    """`a b { c }`: a selection as GraphQL text, names sorted."""
    parts = []
    for name in sorted(selection):
        sub = selection[name]
        if isinstance(sub, str):
            parts.append(f"{name} {sub}")
        elif sub:
            parts.append(f"{name} {{ {render(sub)} }}")
        else:
            parts.append(name)
    return " ".join(parts)


def _error_code(error: Any) -> str:
    extensions = error.get("extensions") if isinstance(error, dict) else None
    code = extensions.get("code") if isinstance(extensions, dict) else None
    if isinstance(code, str) and _CODE.fullmatch(code.upper()):
        return code.upper()
    return "UNKNOWN"


def _error_root(error: Any) -> str | None:
    path = error.get("path") if isinstance(error, dict) else None
    if isinstance(path, list) and path and isinstance(path[0], str):
        return path[0]
    return None


def _error_index(error: Any) -> int | None:
    path = error.get("path") if isinstance(error, dict) else None
    if isinstance(path, list) and len(path) > 1 and isinstance(path[1], int):
        return path[1]
    return None


class _Entity:
    __slots__ = ("field_selections", "mappers", "signatures", "spec")

    def __init__(self, spec: GraphqlEntity, *, manifest: GraphqlManifest) -> None:
        self.spec = spec
        self.mappers: dict[str, FieldMapper] = compile_fields(
            spec.fields, source=manifest.name, tables=manifest.tables
        )
        self.signatures = document_signatures(
            spec.signature,
            source=manifest.name,
            base_url=manifest.base_url,
            local=manifest.local_path,
        )
        self.field_selections = {
            name: _spec_selection(field, spec.select) for name, field in spec.fields.items()
        }

    def selection(self, fields: frozenset[str], *, by_key: bool) -> str:
        """The sub-selection of one upstream record for the canonical `fields`."""
        tree: Selection = {}
        for name in sorted(fields):
            if name in self.field_selections:
                _merge(tree, self.field_selections[name])
        if by_key or not tree:
            # Needed to match answers to keys (and a selection is never empty).
            _merge(tree, {self.spec.key_field: {}})
        if self.signatures is not None:
            # Checked whatever is asked: an object covered needs its `select` entry.
            _merge(tree, {name: {} for name in self.signatures.wanted})
        for root, text in self.spec.select.items():
            if root in tree:
                tree[root] = text
        return render(tree)

    def mappers_for(self, fields: frozenset[str]) -> list[FieldMapper]:
        return [m for name, m in self.mappers.items() if name in fields]


class GraphqlConnector(RestConnector):
    """Reads canonical entities from a GraphQL source (the `rest` kind's call machinery)."""

    def __init__(self, manifest: GraphqlManifest, *, http: httpx.AsyncClient) -> None:
        # The rest machinery reads only what every HTTP manifest has; the lookups (and
        # their compiled mappings and signature checks) are this kind's own.
        super().__init__(cast(Any, manifest), http=http)
        self.graphql = manifest
        self._url = manifest.base_url + manifest.endpoint_path
        self._graphql_entities = {
            kind: _Entity(spec, manifest=manifest) for kind, spec in manifest.entities.items()
        }

    def __repr__(self) -> str:
        return f"GraphqlConnector(name={self.name!r}, url={self._url!r})"

    @classmethod
    def from_manifest(  # type: ignore[override]
        cls, manifest: GraphqlManifest, *, http: httpx.AsyncClient
    ) -> GraphqlConnector:
        """Build from a validated manifest (the plug-in entry point)."""
        return cls(manifest, http=http)

    def _rest_entities(self, manifest: Any) -> dict[str, Any]:
        return {}  # the lookups are this kind's own (`_graphql_entities`)

    def _signed(self) -> Iterator[DocumentSignatures]:
        for entity in self._graphql_entities.values():
            if entity.signatures is not None:
                yield entity.signatures

    async def fetch(
        self,
        kind: str,
        keys: Sequence[str],
        fields: frozenset[str],
        ctx: FetchContext,
        *,
        by: str | None = None,
    ) -> Mapping[str, FetchResult]:
        """Look up `keys` of `kind` for the canonical `fields` (by another key: lists)."""
        entity = self._graphql_entities[kind]
        spec = entity.spec
        mappers = entity.mappers_for(fields)
        headers = self._source_headers(ctx)
        unique = list(dict.fromkeys(keys))
        size = spec.max_batch
        chunks = [unique[i : i + size] for i in range(0, len(unique), size)]
        selection = entity.selection(fields, by_key=by is None)
        out: dict[str, FetchResult] = {}
        if by is not None:
            way = spec.lists[by]  # type: ignore[index]
            parts = await asyncio.gather(
                *(
                    self._aliased(
                        way.field, way.argument, way.argument_type, chunk, selection, headers
                    )
                    for chunk in chunks
                )
            )
            await self._ready(
                entity, (i for p in parts for v in p.values() if isinstance(v, list) for i in v)
            )
            for part in parts:
                for key, value in part.items():
                    out[key] = self._listed(value, entity, mappers, fields)
            return out
        if spec.batch_field is not None and (len(unique) > 1 or spec.query_field is None):
            batches = await asyncio.gather(
                *(self._batch_query(entity, chunk, selection, headers) for chunk in chunks)
            )
            await self._ready(entity, (r for b in batches for r in b.values()))
            for batch in batches:
                for key, record in batch.items():
                    out[key] = self._mapped(record, entity, mappers, fields)
            return out
        if spec.query_field is None or spec.key_argument is None:
            raise SourceRejected(f"{kind} is not looked up by its key here.", source=self.name)
        parts = await asyncio.gather(
            *(
                self._aliased(
                    spec.query_field, spec.key_argument, spec.key_type, chunk, selection, headers
                )
                for chunk in chunks
            )
        )
        await self._ready(entity, (v for p in parts for v in p.values()))
        for part in parts:
            for key, value in part.items():
                if isinstance(value, dict) and value.get(spec.key_field) != key:
                    # Never serve one person's record under another's id.
                    raise SourceDataInvalid(
                        "The source answered for another key.", source=self.name
                    )
                out[key] = self._mapped(value, entity, mappers, fields)
        return out

    async def _ready(self, entity: _Entity, records: Iterable[Any]) -> None:
        if entity.signatures is not None:
            await entity.signatures.ready(self._http, records)

    def _mapped(
        self, record: Any, entity: _Entity, mappers: list[FieldMapper], fields: frozenset[str]
    ) -> FetchResult:
        if record is None:
            return None
        if isinstance(record, SourceDataInvalid):
            return {m.canonical: self._invalid(record, m.canonical) for m in mappers}
        if not isinstance(record, dict):
            error = SourceDataInvalid("Expected an object.", source=self.name)
            return {m.canonical: self._invalid(error, m.canonical) for m in mappers}
        return map_checked(entity.signatures, mappers, record, fields)

    def _listed(
        self, items: Any, entity: _Entity, mappers: list[FieldMapper], fields: frozenset[str]
    ) -> FetchResult:
        if items is None:
            return None
        if isinstance(items, SourceDataInvalid):
            raise items
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise SourceDataInvalid("Expected a list of objects.", source=self.name)
        return [map_checked(entity.signatures, mappers, item, fields) for item in items]

    @staticmethod
    def _invalid(error: SourceDataInvalid, field: str) -> SourceDataInvalid:
        return SourceDataInvalid(
            error.message,
            source=error.source,
            field=field,
            **{k: v for k, v in error.detail.items() if k not in ("source", "field")},
        )

    async def _query(
        self, document: str, variables: dict[str, Any], headers: dict[str, str]
    ) -> tuple[dict[str, Any], list[Any]]:
        body = await self._call(
            "POST",
            self._url,
            headers=headers,
            json={"query": document, "variables": variables},
            route="query",
        )
        if body is None:  # 404: no GraphQL endpoint at the manifest's path
            raise SourceRejected("The source has no GraphQL endpoint there.", source=self.name)
        if not isinstance(body, dict):
            raise SourceDataInvalid("Expected a GraphQL answer.", source=self.name)
        errors = body.get("errors") or []
        if not isinstance(errors, list):
            raise SourceDataInvalid("Expected a list of errors.", source=self.name)
        codes = [_error_code(e) for e in errors]
        if codes:
            log.info("graphql_errors", connector=self.name, codes=sorted(set(codes)))
        rejected = sorted(set(codes) & _REJECTED)
        if rejected:
            raise SourceRejected(source=self.name, graphql_error=rejected[0])
        data = body.get("data")
        if data is None:
            if errors and all(c in _NOT_FOUND for c in codes):
                return {}, errors  # nothing found, and the answer says so
            raise SourceUnavailable(
                source=self.name, graphql_error=next((c for c in codes), "NO_DATA")
            )
        if not isinstance(data, dict):
            raise SourceDataInvalid("Expected a GraphQL answer.", source=self.name)
        return data, errors

    def _record_error(self, code: str) -> SourceDataInvalid:
        return SourceDataInvalid(
            "The source reported an error for this record.", source=self.name, graphql_error=code
        )

    async def _aliased(
        self,
        field: str,
        argument: str,
        argument_type: str,
        keys: list[str],
        selection: str,
        headers: dict[str, str],
    ) -> dict[str, Any]:
        """One document asking `field(argument: $kN)` once per key, aliased `kN`."""
        aliases = {f"k{i}": key for i, key in enumerate(keys)}
        declared = ", ".join(f"${alias}: {argument_type}" for alias in aliases)
        roots = " ".join(
            f"{alias}: {field}({argument}: ${alias}) {{ {selection} }}" for alias in aliases
        )
        document = f"query GatewayLookup({declared}) {{ {roots} }}"
        data, errors = await self._query(document, dict(aliases), headers)
        out: dict[str, Any] = {alias: data.get(alias) for alias in aliases}
        general: str | None = None
        for error in errors:
            code = _error_code(error)
            root = _error_root(error)
            if root in out:
                if code not in _NOT_FOUND:
                    out[root] = self._record_error(code)
            elif code not in _NOT_FOUND:
                general = general or code
        if general is not None:
            # An error the answer does not tie to a record: no record of it is trusted.
            out = {alias: self._record_error(general) for alias in aliases}
        return {aliases[alias]: value for alias, value in out.items()}

    async def _batch_query(
        self, entity: _Entity, keys: list[str], selection: str, headers: dict[str, str]
    ) -> dict[str, Any]:
        spec = entity.spec
        document = (
            f"query GatewayLookup($keys: [{spec.key_type}]!) {{ {_BATCH_ALIAS}: "
            f"{spec.batch_field}({spec.batch_argument}: $keys) {{ {selection} }} }}"
        )
        data, errors = await self._query(document, {"keys": keys}, headers)
        items = data.get(_BATCH_ALIAS)
        if items is None:
            if errors and not all(_error_code(e) in _NOT_FOUND for e in errors):
                raise SourceUnavailable(source=self.name, graphql_error=_error_code(errors[0]))
            return {}
        if not isinstance(items, list):
            raise SourceDataInvalid("Expected a list of records.", source=self.name)
        key_field = spec.key_field
        out: dict[str, Any] = {}
        for item in items:
            if item is None:
                continue
            if not isinstance(item, dict) or not isinstance(item.get(key_field), str):
                raise SourceDataInvalid("A batch result lacks its key.", source=self.name)
            if item[key_field] not in keys:
                raise SourceDataInvalid("The source answered for another key.", source=self.name)
            out[item[key_field]] = item
        for error in errors:
            code = _error_code(error)
            if code in _NOT_FOUND:
                continue
            index = _error_index(error) if _error_root(error) == _BATCH_ALIAS else None
            item = items[index] if index is not None and 0 <= index < len(items) else None
            if isinstance(item, dict) and isinstance(item.get(key_field), str):
                out[item[key_field]] = self._record_error(code)
            else:
                # Not tied to a record the answer names: none of them is trusted.
                return {key: self._record_error(code) for key in keys}
        return out
