"""Service functions behind the resolvers: route fields to connectors, fetch, merge, build.

Each entity lookup asks every connector that serves some selected field, through the
request's batch loaders, and merges the answers into one canonical object. A source
that fails makes only its own fields fail; a field no connector serves is `NO_SOURCE`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from connectors import FetchResult
from gateway.errors import GatewayError, NoSource, NotFound, SourceDataInvalid
from schema._build import build
from schema._context import RequestContext
from schema._types import Business, Citizen, Document, Household, InsuranceRecord, LandParcel

__all__ = ["KINDS", "EntityKind", "get_entities", "get_list"]


@dataclass(frozen=True, slots=True)
class EntityKind:
    """A canonical entity kind as sources serve it."""

    name: str
    cls: type
    key: str
    """Canonical name of the field that identifies one record."""
    key_attr: str | None = None
    """Python name of the key field to echo from the argument, if the type has it."""


KINDS: dict[str, EntityKind] = {
    k.name: k
    for k in (
        EntityKind("Citizen", Citizen, "personalId", "personal_id"),
        EntityKind("Household", Household, "householdId", "household_id"),
        EntityKind("Business", Business, "enterpriseCode", "enterprise_code"),
        EntityKind("InsuranceRecord", InsuranceRecord, "personalId", "personal_id"),
        EntityKind("LandParcel", LandParcel, "parcelId"),
        EntityKind("Document", Document, "documentId"),
    )
}


async def _fetch(
    ctx: RequestContext, kind: EntityKind, keys: Sequence[str], fields: frozenset[str]
) -> tuple[list[tuple[str, frozenset[str], list[FetchResult | BaseException]]], frozenset[str]]:
    """Per serving connector: (name, its fields, one result or error per key)."""
    route = ctx.registry.route(kind.name, fields)
    if not route.served:
        return [], route.unserved
    waits = []
    for connector, cfields in route.served:
        loader = ctx.loader(connector, kind.name)
        waits.append(
            asyncio.gather(*(loader.load(k, cfields) for k in keys), return_exceptions=True)
        )
    answers = await asyncio.gather(*waits)
    return [
        (connector.name, cfields, list(results))
        for (connector, cfields), results in zip(route.served, answers, strict=True)
    ], route.unserved


def _no_source(kind: EntityKind) -> NoSource:
    return NoSource(f"No active source provides {kind.name} records.", kind=kind.name)


async def get_entities(
    *, ctx: RequestContext, kind: EntityKind, keys: Sequence[str], fields: frozenset[str]
) -> list[Any]:
    """One object (or the exception to report in its place) per key, in order.

    The key field is always fetched, so that a query selecting only the identifier
    still learns whether the record exists.
    """
    wanted = fields | {kind.key}
    per_connector, unserved = await _fetch(ctx, kind, keys, wanted)
    if not per_connector:
        error = _no_source(kind)
        return [error for _ in keys]
    no_source = {f: NoSource(field=f"{kind.name}.{f}") for f in unserved}
    out: list[Any] = []
    for i, key in enumerate(keys):
        record: dict[str, Any] = dict(no_source)
        sources: dict[str, str] = {}
        found = False
        failure: BaseException | None = None
        for name, cfields, results in per_connector:
            result = results[i]
            if isinstance(result, BaseException):
                failure = failure or result
                record.update(dict.fromkeys(cfields, result))
            elif isinstance(result, dict):
                found = True
                for f in cfields:
                    record[f] = result.get(f)
                    sources[f] = name
            elif result is not None:
                failure = failure or SourceDataInvalid("Expected one record.", source=name)
        if found:
            given = {kind.key_attr: key} if kind.key_attr else {}
            out.append(build(kind.cls, record, source=sources, **given))
        elif failure is not None:
            out.append(failure if isinstance(failure, GatewayError) else _unexpected(failure))
        else:
            out.append(NotFound(f"No {kind.name} record has this identifier.", kind=kind.name))
    return out


async def get_list(
    *, ctx: RequestContext, kind: EntityKind, holder: str, fields: frozenset[str]
) -> list[Any] | Exception:
    """Every record of `kind` held by `holder`, from each connector that serves it."""
    per_connector, _ = await _fetch(ctx, kind, [holder], fields | {kind.key})
    if not per_connector:
        return _no_source(kind)
    items: list[Any] = []
    for name, _cfields, results in per_connector:
        result = results[0]
        if isinstance(result, BaseException):
            return result if isinstance(result, GatewayError) else _unexpected(result)
        if result is None:
            continue
        if not isinstance(result, list):
            return SourceDataInvalid("Expected a list of records.", source=name)
        items.extend(build(kind.cls, r, source=name) for r in result)
    return items


def _unexpected(exc: BaseException) -> Exception:
    # Unexpected errors are reported as they are: MaskErrors turns them into INTERNAL.
    return exc if isinstance(exc, Exception) else RuntimeError("cancelled")
