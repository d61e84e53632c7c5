"""Service functions behind the resolvers: decide, route, fetch, merge, build.

For each entity asked for, every selected field is decided first (policy engine, per
subject and canonical path). Only allowed fields are routed to connectors and fetched,
through the request's batch loaders; denied fields hold their `PolicyDenied` error and
are never asked of a source. A source that fails makes only its own fields fail; a
field no connector serves is `NO_SOURCE`. Each returned field's provenance (source,
time, legal basis or consent) is noted for `extensions.provenance`.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway import tracing
from gateway.awaiting import all_of
from gateway.errors import (
    GatewayError,
    InvalidIdentifier,
    NoSource,
    NotFound,
    SourceDataInvalid,
)
from gateway.identifiers import PersonalId
from schema._build import build
from schema._context import RequestContext, SubjectDecision
from schema._selection import Selection
from schema._types import Business, Citizen, Document, Household, InsuranceRecord, LandParcel

__all__ = [
    "KINDS",
    "EntityKind",
    "Fetched",
    "Listed",
    "fetch_records",
    "get_entities",
    "get_list",
    "list_records",
]


@dataclass(frozen=True, slots=True)
class EntityKind:
    """A canonical entity kind as sources serve it."""

    name: str
    cls: type
    key: str
    """Canonical name of the field that identifies one record."""
    key_attr: str | None = None
    """Python name of the key field to echo from the argument, if the type has it.

    Set only where the key is the subject's own identifier (a citizen's personal id);
    a kind listed by holder (a document) has a key of its own, decided like any field.
    """

    list_by: str | None = None
    """The list way records of this kind are looked up by (`holder`), if any."""

    @property
    def keyed_by_subject(self) -> bool:
        """Whether the key field holds the subject's identifier, as the purpose names it."""
        return self.key_attr is not None


KINDS: dict[str, EntityKind] = {
    k.name: k
    for k in (
        EntityKind("Citizen", Citizen, "personalId", "personal_id"),
        EntityKind("Household", Household, "householdId", "household_id"),
        EntityKind("Business", Business, "enterpriseCode", "enterprise_code"),
        EntityKind("InsuranceRecord", InsuranceRecord, "personalId", "personal_id"),
        EntityKind("LandParcel", LandParcel, "parcelId", list_by="holder"),
        EntityKind("Document", Document, "documentId", list_by="holder"),
    )
}


@dataclass(frozen=True, slots=True)
class Fetched:
    """One subject's record of one kind, in canonical names, before it is built.

    `values` holds a value or the exception to report for each selected field;
    `origin` names the connector and time of each value that was served; `error` is
    set instead when the whole entity is withheld, missing or failed.
    """

    values: dict[str, Any]
    origin: dict[str, tuple[str, datetime.datetime]]
    decision: SubjectDecision
    error: Exception | None = None


def _no_source(kind: EntityKind) -> NoSource:
    return NoSource(f"No active source provides {kind.name} records.", kind=kind.name)


def _holder_kind(holder: str) -> str:
    """`person` for a personal id, else `enterprise` (a tax code): whose list is read."""
    try:
        PersonalId(holder)
    except InvalidIdentifier:
        return "enterprise"
    return "person"


async def _fetch(
    ctx: RequestContext,
    kind: EntityKind,
    keys: Sequence[str],
    fields: frozenset[str],
    by: str | None = None,
) -> tuple[list[tuple[str, frozenset[str], list[Any], datetime.datetime]], frozenset[str]]:
    """Per serving connector: (name, its fields, one result or error per key, when)."""
    # A list is read for one holder at a time (`list_records`).
    holder = _holder_kind(keys[0]) if by is not None and keys else None
    route = ctx.registry.route(kind.name, fields, by, holder)
    if not route.served or not keys:
        return [], route.unserved

    async def one(loader: Any, cfields: frozenset[str]) -> tuple[list[Any], datetime.datetime]:
        results = await asyncio.gather(
            *(loader.load(k, cfields) for k in keys), return_exceptions=True
        )
        return list(results), datetime.datetime.now(datetime.UTC)

    answers = await all_of(
        [one(ctx.loader(connector, kind.name, by), cfields) for connector, cfields in route.served]
    )
    return [
        (connector.name, cfields, results, when)
        for (connector, cfields), (results, when) in zip(route.served, answers, strict=True)
    ], route.unserved


async def fetch_records(
    *, ctx: RequestContext, kind: EntityKind, keys: Sequence[str], fields: frozenset[str]
) -> list[Fetched]:
    """Decide, then fetch the allowed fields of each key; one `Fetched` per key.

    Keys with the same allowed fields share one call per connector (the batch loader
    groups them); the subject's own identifier is fetched with them, so that an entity
    whose selected fields are all allowed can still be told apart from a missing one.
    """
    # The subject's own identifier is echoed from the argument; it is decided (and
    # fetched, to tell whether the record exists) only when nothing else is asked. The
    # key of a record held by the subject (a document's number) is data about them, read
    # only when decided allowed.
    own = frozenset({kind.key}) if kind.keyed_by_subject else frozenset()
    asked = (fields - own) or frozenset({kind.key})
    with tracing.span("decisions", {"gateway.kind": kind.name, "gateway.keys": len(keys)}):
        await ctx.access.prepare(kind.name, asked)
        decisions = [ctx.access.decide(kind.name, key, asked) for key in keys]
    groups: dict[frozenset[str], list[int]] = {}
    for i, decision in enumerate(decisions):
        if decision.entity_error is None and decision.allowed:
            groups.setdefault(frozenset(decision.allowed) | own, []).append(i)
    fetched: list[Fetched | None] = [None] * len(keys)
    for i, decision in enumerate(decisions):
        if decision.entity_error is not None:
            fetched[i] = Fetched({}, {}, decision, decision.entity_error)
        elif not decision.allowed:
            # Every field is withheld: nothing is asked of any source.
            fetched[i] = Fetched(dict(decision.denied), {}, decision)
    answers = await all_of(
        [_fetch(ctx, kind, [keys[i] for i in idx], wanted) for wanted, idx in groups.items()]
    )
    for (wanted, idx), (per_connector, unserved) in zip(groups.items(), answers, strict=True):
        for position, i in enumerate(idx):
            merged = _merge(kind, decisions[i], per_connector, unserved, position, wanted)
            fetched[i] = merged
            ctx.note_served(
                keys[i],
                # Answered by the source (an empty value is an answer too, as in the
                # prefill's papers avoided) under a decision that allowed it; the
                # subject's own identifier when the record was found.
                (
                    f"{kind.name}.{name}"
                    for name in {*merged.origin, *(own if merged.error is None else ())}
                    if name in decisions[i].allowed or name in own
                ),
            )
    return [f for f in fetched if f is not None]


def _merge(
    kind: EntityKind,
    decision: SubjectDecision,
    per_connector: list[tuple[str, frozenset[str], list[Any], datetime.datetime]],
    unserved: frozenset[str],
    position: int,
    wanted: frozenset[str],
) -> Fetched:
    if not per_connector:
        return Fetched({}, {}, decision, _no_source(kind))
    values: dict[str, Any] = {f: NoSource(field=f"{kind.name}.{f}") for f in unserved}
    values.update(decision.denied)
    origin: dict[str, tuple[str, datetime.datetime]] = {}
    found = False
    failure: BaseException | None = None
    for name, cfields, results, when in per_connector:
        result = results[position]
        if isinstance(result, BaseException):
            failure = failure or result
            values.update(dict.fromkeys(cfields, result))
        elif isinstance(result, Mapping):
            found = True
            for f in cfields:
                values[f] = result.get(f)
                origin[f] = (name, when)
        elif result is not None:
            failure = failure or SourceDataInvalid("Expected one record.", source=name)
    if found:
        return Fetched(values, origin, decision)
    if failure is not None:
        error = failure if isinstance(failure, GatewayError) else _unexpected(failure)
        return Fetched({}, {}, decision, error)
    return Fetched(
        {}, {}, decision, NotFound(f"No {kind.name} record has this identifier.", kind=kind.name)
    )


def _note(ctx: RequestContext, base: str, selection: Selection, fetched: Fetched) -> None:
    for name, (source, when) in fetched.origin.items():
        allowed = fetched.decision.allowed.get(name)
        if allowed is None:
            continue
        for key in selection.keys.get(name, ()):
            ctx.note_provenance(f"{base}.{key}", source=source, retrieved_at=when, allowed=allowed)


async def get_entities(
    *,
    ctx: RequestContext,
    kind: EntityKind,
    keys: Sequence[str],
    selection: Selection,
    paths: Sequence[str],
) -> list[Any]:
    """One built object (or the exception to report in its place) per key, in order.

    `paths` are the response paths of the entities, for provenance.
    """
    out: list[Any] = []
    records = await fetch_records(ctx=ctx, kind=kind, keys=keys, fields=selection.fields)
    for key, path, fetched in zip(keys, paths, records, strict=True):
        if fetched.error is not None:
            out.append(fetched.error)
            continue
        _note(ctx, path, selection, fetched)
        given = {kind.key_attr: key} if kind.key_attr else {}
        sources = {f: source for f, (source, _) in fetched.origin.items()}
        out.append(build(kind.cls, fetched.values, source=sources, **given))
    return out


@dataclass(frozen=True, slots=True)
class Listed:
    """The records of a kind a holder holds, as each connector served them."""

    decision: SubjectDecision
    parts: list[tuple[str, frozenset[str], datetime.datetime, list[Mapping[str, Any]]]]


async def list_records(
    *, ctx: RequestContext, kind: EntityKind, holder: str, fields: frozenset[str]
) -> Listed | Exception:
    """Decide, then read the allowed `fields` of every record of `kind` `holder` holds.

    Returns the error to report in the list's place when the holder cannot be read,
    no field is allowed, no source lists the kind, or a source fails.
    """
    assert kind.list_by is not None
    await ctx.access.prepare(kind.name, fields)
    decision = ctx.access.decide(kind.name, holder, fields)
    if decision.entity_error is not None:
        return decision.entity_error
    if not decision.allowed:
        return next(iter(decision.denied.values()), _no_source(kind))
    # Only allowed fields are asked for, the list's own identifiers included.
    wanted = frozenset(decision.allowed)
    per_connector, _ = await _fetch(ctx, kind, [holder], wanted, kind.list_by)
    if not per_connector:
        return _no_source(kind)
    parts = []
    for name, cfields, results, when in per_connector:
        result = results[0]
        if isinstance(result, BaseException):
            # One source failing fails the list: a list missing a source's records
            # would read as "holds none of them". Nothing of it is told as served.
            return result if isinstance(result, GatewayError) else _unexpected(result)
        if result is None:
            continue
        if not isinstance(result, list):
            return SourceDataInvalid("Expected a list of records.", source=name)
        parts.append((name, cfields, when, result))
    for _, cfields, _, _ in parts:
        # A list is an answer (an empty one too: the holder holds none), as for one
        # record: the allowed fields this connector serves were read about the holder.
        ctx.note_served(holder, (f"{kind.name}.{f}" for f in cfields if f in decision.allowed))
    return Listed(decision, parts)


async def get_list(
    *, ctx: RequestContext, kind: EntityKind, holder: str, selection: Selection
) -> list[Any] | Exception:
    """Every record of `kind` held by `holder`, from each connector that serves it."""
    listed = await list_records(ctx=ctx, kind=kind, holder=holder, fields=selection.fields)
    if isinstance(listed, Exception):
        return listed
    decision = listed.decision
    items: list[Any] = []
    for name, cfields, when, records in listed.parts:
        for record in records:
            index = len(items)
            values = {f: record.get(f) for f in cfields if f in decision.allowed}
            values.update(decision.denied)
            fetched = Fetched(values, dict.fromkeys(cfields, (name, when)), decision)
            _note(ctx, f"{selection.path}.{index}", selection, fetched)
            items.append(build(kind.cls, values, source=name))
    return items


def _unexpected(exc: BaseException) -> Exception:
    # Unexpected errors are reported as they are: MaskErrors turns them into INTERNAL.
    return exc if isinstance(exc, Exception) else RuntimeError("cancelled")
