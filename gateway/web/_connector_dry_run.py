"""A dry run of a connector version: call its source once, report how the answer maps.

The connector is built from the version's manifest (never the one in use), opened,
asked for one sample key with every field it maps, and closed. The report says per
entity kind whether the record was found, how long the call took and, per canonical
field, one of:

- `ok`: a value was mapped;
- `missing`: the source answered, without a value for it;
- `unmapped`: what the mapping reads is not in the source (a column the database lacks,
  a key absent from every object of the JSON answer);
- `type_mismatch`: the source's value cannot be mapped (`SOURCE_DATA_INVALID`);
- `not_checked`: the record was not found, or the call failed (`error` says its code).

It never holds a value of the record, nor the sample key: only codes, names of the
manifest's own fields and columns, and timings.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import orjson
import structlog
from pydantic import ValidationError

from connectors import (
    Connector,
    FetchContext,
    ManifestBase,
    ManifestError,
    build_registry,
    parse_manifest,
)
from connectors._mapping import compile_fields
from gateway.errors import GatewayError, SourceDataInvalid
from policies import Purpose
from schema import connector_fields

__all__ = ["DRY_RUN_PROCEDURE", "build_failure", "dry_run"]

log = structlog.get_logger(__name__)

DRY_RUN_PROCEDURE = "DRY-RUN"
_FIELD_AT = re.compile(r"entities\.(?P<kind>[A-Za-z0-9_]+)\.fields\.(?P<field>[A-Za-z0-9_]+)")
_MAX_TRIES = 64


class _Capture(httpx.AsyncBaseTransport):
    """Passes calls on, keeping the names of the keys of every JSON object answered."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport(trust_env=False)
        self.keys: set[str] = set()
        self.answered = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
        await response.aclose()
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = None
        if data is not None:
            self.answered = True
            self.keys.update(_keys(data))
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=httpx.ByteStream(raw),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


def _keys(data: Any) -> Iterator[str]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield str(key)
            yield from _keys(value)
    elif isinstance(data, list):
        for item in data:
            yield from _keys(item)


def _without(data: dict[str, Any], kind: str, field: str) -> dict[str, Any]:
    """The manifest's data without one field of one entity kind."""
    entities = dict(data["entities"])
    entity = dict(entities[kind])
    entity["fields"] = {k: v for k, v in entity["fields"].items() if k != field}
    entities[kind] = entity
    return {**data, "entities": entities}


async def _opened(
    data: dict[str, Any],
    *,
    http: httpx.AsyncClient,
    reserved: list[str],
    secrets: Mapping[tuple[str, str], str],
    unmapped: dict[str, dict[str, str]],
) -> tuple[Any, Connector, ManifestBase]:
    """Build and open the connector, dropping each field the source lacks (noted)."""
    for _ in range(_MAX_TRIES):
        manifest = parse_manifest(data)
        registry = build_registry(
            [manifest],
            http=http,
            canonical=connector_fields(),
            reserved=reserved,
            stored_secrets=secrets,
        )
        connector = next(iter(registry))
        try:
            await connector.open()
        except ManifestError as error:
            await registry.aclose()
            found = _FIELD_AT.search(str(error))
            if found is None:
                raise
            kind, field = found["kind"], found["field"]
            if field not in data["entities"].get(kind, {}).get("fields", {}):
                raise
            reason = str(error).split(": ", 1)[-1]
            unmapped.setdefault(kind, {})[field] = reason
            data = _without(data, kind, field)
            continue
        return registry, connector, manifest
    raise ManifestError(f"manifest {data.get('name')!r}", "too many fields the source lacks")


async def build_failure(
    data: Mapping[str, Any],
    *,
    reserved: list[str],
    secrets: Mapping[tuple[str, str], str] | None = None,
) -> str | None:
    """Why the connector of a manifest (as JSON data) would not build and open, or `None`.

    What serving it would meet first: a column its database lacks, a secret that does
    not open. A source that does not answer is not a reason (the registry serves
    without it, as at start-up).
    """
    http = httpx.AsyncClient(follow_redirects=False, trust_env=False)
    registry = None
    try:
        registry = build_registry(
            [parse_manifest(dict(data))],
            http=http,
            canonical=connector_fields(),
            reserved=reserved,
            stored_secrets=secrets or {},
        )
        await next(iter(registry)).open()
    except (ManifestError, ValidationError) as error:
        return str(error)
    except GatewayError:
        return None
    finally:
        if registry is not None:
            await registry.aclose()
        await http.aclose()
    return None


def _field_outcome(value: Any, roots: frozenset[str] | None, capture: _Capture) -> str:
    if isinstance(value, SourceDataInvalid):
        return "type_mismatch"
    if isinstance(value, Exception):
        return "error"
    if value is None and capture.answered and roots and not roots <= capture.keys:
        return "unmapped"
    if value is None:
        return "missing"
    return "ok"


async def dry_run(
    data: Mapping[str, Any],
    *,
    key: str,
    entity: str | None,
    name: str,
    version: int,
    officer: str,
    reserved: list[str],
    secrets: Mapping[tuple[str, str], str] | None = None,
) -> dict[str, Any]:
    """Call the source of a manifest (as JSON data) with `key`; the report (no values).

    `secrets`: the stored secrets its `stored:` references read, by (connector, name).
    """
    capture = _Capture()
    http = httpx.AsyncClient(transport=capture, follow_redirects=False, trust_env=False)
    unmapped: dict[str, dict[str, str]] = {}
    original = parse_manifest(dict(data))
    kinds = [entity] if entity is not None else list(original.entities)
    report: dict[str, Any] = {"entities": {}, "error": None}
    registry = None
    try:
        try:
            registry, connector, manifest = await _opened(
                dict(data),
                http=http,
                reserved=reserved,
                secrets=secrets or {},
                unmapped=unmapped,
            )
        except (ManifestError, ValidationError) as error:
            report["error"] = {"code": "INVALID_MANIFEST", "message": str(error)}
            return report
        except GatewayError as error:
            report["error"] = {"code": error.code}
            return report
        ctx = FetchContext(
            request_id=uuid.uuid4().hex,
            client_id=None,
            purpose=Purpose(
                procedure=DRY_RUN_PROCEDURE,
                case=f"dry-run:{name}:{version}",
                officer=officer,
                subjects=(key,),
            ),
        )
        for kind in kinds:
            spec = original.entities[kind]
            entry: dict[str, Any] = {
                "found": None,
                "latencyMs": None,
                "error": None,
                "fields": {},
            }
            report["entities"][kind] = entry
            lacking = unmapped.get(kind, {})
            entry["unmappedReasons"] = lacking
            kept = manifest.entities.get(kind)
            if kept is None or not spec.by_key():
                entry["error"] = {"code": "NOT_LOOKED_UP_BY_KEY"}
                entry["fields"] = {
                    f: "unmapped" if f in lacking else "not_checked" for f in spec.fields
                }
                continue
            mappers = compile_fields(kept.fields, source=name, tables=manifest.tables)
            capture.keys.clear()
            capture.answered = False
            started = time.perf_counter()
            try:
                answer = await connector.fetch(kind, [key], frozenset(kept.fields), ctx)
            except GatewayError as error:
                entry["error"] = {"code": error.code}
                answer = {}
            entry["latencyMs"] = round((time.perf_counter() - started) * 1000, 1)
            record = answer.get(key)
            entry["found"] = isinstance(record, Mapping) if entry["error"] is None else None
            for field in spec.fields:
                if field in lacking:
                    entry["fields"][field] = "unmapped"
                elif not isinstance(record, Mapping):
                    entry["fields"][field] = "not_checked"
                else:
                    entry["fields"][field] = _field_outcome(
                        record.get(field), mappers[field].source_roots, capture
                    )
        return report
    finally:
        if registry is not None:
            await registry.aclose()
        await http.aclose()


def summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """Counts of each outcome, for the record of the run (never a value)."""
    counts: dict[str, int] = {}
    for entry in report.get("entities", {}).values():
        for outcome in entry.get("fields", {}).values():
            counts[outcome] = counts.get(outcome, 0) + 1
    return counts
