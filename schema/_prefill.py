"""Prefill: the procedure's e-form filled from the state's databases.

"Never resubmit a paper": for the applicant, each form field of the catalogue entry is
read through the same decisions as any query (the token's purpose must be this
procedure and name the applicant), with its value, its provenance and the papers it
replaces. A paper is avoided when every field that replaces it was served; otherwise
it is still needed, with the reason of each field that was not.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import strawberry
from strawberry.scalars import JSON

from gateway.errors import (
    GatewayError,
    InvalidArgument,
    InvalidIdentifier,
    NoSource,
    NotFound,
    PurposeNotAllowed,
)
from gateway.identifiers import EnterpriseCode, PersonalId
from policies import Procedure
from schema._context import RequestContext
from schema._service import KINDS, EntityKind, Fetched, fetch_records, list_records

__all__ = ["Prefill", "prefill_form"]

_PERSON_KINDS = ("Citizen", "InsuranceRecord", "LandParcel", "Document")
_ENTERPRISE_KINDS = ("Business", "LandParcel", "Document")


@strawberry.type(description="A text in Vietnamese and English.")
class LocalizedText:
    vi: str
    en: str


@strawberry.type(description="Where a value came from and why it could be released.")
class Provenance:
    source: str
    version: int | None = strawberry.field(
        description="The version of the source's connector that served the value."
    )
    retrieved_at: datetime.datetime
    basis: str = strawberry.field(description="law or consent")
    legal_basis: str | None
    consent_id: str | None


@strawberry.type(description="A procedure of the catalogue.")
class ProcedureInfo:
    code: str
    code_status: str
    name: LocalizedText
    online_level: str


@strawberry.type(description="One field of the e-form.")
class PrefillField:
    name: str
    label: LocalizedText
    path: str
    value: JSON | None = strawberry.field(description="Null when withheld or unavailable.")
    provenance: Provenance | None
    error: str | None = strawberry.field(description="Why there is no value: an error code.")
    replaces_papers: list[LocalizedText]


@strawberry.type(description="Why a field that replaces a paper was not served.")
class FieldReason:
    path: str
    code: str


@strawberry.type(description="A paper applicants were formerly asked to bring.")
class Paper:
    paper: LocalizedText
    fields: list[str]
    reasons: list[FieldReason] = strawberry.field(
        description="For a paper still needed: why each missing field was not served."
    )


@strawberry.type(description="The procedure's e-form, filled from the state's databases.")
class Prefill:
    procedure: ProcedureInfo
    fields: list[PrefillField]
    papers_avoided: list[Paper]
    papers_still_needed: list[Paper]


def _text(name: Any) -> LocalizedText:
    return LocalizedText(vi=name.vi, en=name.en)


def _dig(value: Any, parts: list[str]) -> Any:
    """The value at a nested path; lists (records of a holder) map over their items."""
    for i, part in enumerate(parts):
        if isinstance(value, list):
            return [_dig(v, parts[i:]) for v in value]
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _json(value: Any) -> Any:
    if isinstance(value, Exception):
        return None
    if isinstance(value, Mapping):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value


def _kinds_for(applicant: str) -> tuple[str, ...]:
    try:
        PersonalId(applicant)
        return _PERSON_KINDS
    except InvalidIdentifier:
        EnterpriseCode(applicant)
        return _ENTERPRISE_KINDS


async def _records(
    ctx: RequestContext, entry: Procedure, applicant: str
) -> dict[str, Fetched | _Held | GatewayError]:
    """The applicant's records, by kind, for the fields the form reads."""
    wanted: dict[str, set[str]] = {}
    paths = [item.path for item in entry.form]
    paths += [path for paper in entry.papers_replaced for path in paper.fields]
    kinds = [i.document_kind for i in entry.form] + [p.document_kind for p in entry.papers_replaced]
    if any(kinds):
        paths.append("Document.kind")  # to pick the documents of a kind
    for path in paths:
        kind, field = path.split(".")[:2]
        wanted.setdefault(kind, set()).add(field)
    usable = _kinds_for(applicant)
    out: dict[str, Fetched | _Held | GatewayError] = {}
    for kind, fields in wanted.items():
        if kind not in usable:
            out[kind] = InvalidArgument(
                f"{kind} fields cannot be read for this applicant.", kind=kind
            )
            continue
        entity = KINDS[kind]
        if entity.list_by is not None:
            # The applicant holds these (parcels, documents): listed by holder.
            out[kind] = await _held(ctx, entity, applicant, frozenset(fields))
            continue
        [fetched] = await fetch_records(
            ctx=ctx, kind=entity, keys=[applicant], fields=frozenset(fields)
        )
        out[kind] = fetched
    return out


@dataclass(frozen=True, slots=True)
class _Held:
    """The records a holder holds, from every source listing them, in order.

    `fetched.values` maps each field to a list (one value per record); `origins` names
    the source and time of each record.
    """

    fetched: Fetched
    origins: list[tuple[str, datetime.datetime]]


async def _held(
    ctx: RequestContext, kind: EntityKind, holder: str, fields: frozenset[str]
) -> _Held | GatewayError:
    """The records `holder` holds, from every source that lists them (a person's
    certificates from the civil-status registry and from the business registry).

    A field a source does not serve is `None` in its records; one no source serves is
    `NO_SOURCE`.
    """
    listed = await list_records(ctx=ctx, kind=kind, holder=holder, fields=fields)
    if isinstance(listed, GatewayError):
        return listed
    if isinstance(listed, Exception):
        raise listed
    parts = [p for p in listed.parts if p[3]]
    if not parts:
        return NotFound(f"The applicant holds no {kind.name} record.", kind=kind.name)
    origins = [(name, when) for name, _, when, records in parts for _ in records]
    values: dict[str, Any] = {}
    origin: dict[str, tuple[str, datetime.datetime]] = {}
    for field in listed.decision.allowed:
        serving = [(name, when) for name, cfields, when, _ in parts if field in cfields]
        if not serving:
            values[field] = NoSource(field=f"{kind.name}.{field}")
            continue
        values[field] = [
            record.get(field) if field in cfields else None
            for _, cfields, _, records in parts
            for record in records
        ]
        origin[field] = serving[0]
    values.update(listed.decision.denied)
    return _Held(Fetched(values, origin, listed.decision), origins)


def _first_error(value: Any) -> Exception | None:
    """The first error among a held record's values (a list, one value per record)."""
    if isinstance(value, Exception):
        return value
    if isinstance(value, list):
        return next((v for v in value if isinstance(v, Exception)), None)
    return None


@dataclass(frozen=True, slots=True)
class _Outcome:
    value: Any = None
    error: str | None = None
    record: Fetched | None = None
    origin: tuple[str, datetime.datetime] | None = None


def _of_kind(held: _Held, field: str, document_kind: str) -> _Outcome:
    """A held document field, read from the documents of `document_kind` only."""
    record = held.fetched
    kinds = record.values.get("kind")
    if not isinstance(kinds, list):
        code = kinds.code if isinstance(kinds, GatewayError) else "INTERNAL"
        return _Outcome(error=code)
    picked = [i for i, k in enumerate(kinds) if k == document_kind]
    if not picked:
        # A document withheld (its kind too) may be the one: say why, not "none held".
        unread = _first_error(kinds)
        code = unread.code if isinstance(unread, GatewayError) else NotFound.code
        return _Outcome(error=code)
    value = record.values.get(field)
    if isinstance(value, list):
        value = [value[i] for i in picked]
    origin = held.origins[picked[0]] if field in record.origin else None
    return _Outcome(value, None, record, origin)


def _field_outcome(
    records: Mapping[str, Fetched | _Held | GatewayError],
    path: str,
    document_kind: str | None = None,
) -> _Outcome:
    """The value (or error code), record and origin of a form path."""
    kind, field, *rest = path.split(".")
    found = records[kind]
    if isinstance(found, GatewayError):
        return _Outcome(error=found.code)
    record = found.fetched if isinstance(found, _Held) else found
    if record.error is not None:
        return _Outcome(error=getattr(record.error, "code", "INTERNAL"))
    if document_kind is not None and isinstance(found, _Held):
        outcome = _of_kind(found, field, document_kind)
        value = outcome.value
        if outcome.error is not None:
            return outcome
    else:
        value = record.values.get(field)
        outcome = _Outcome(value, None, record, record.origin.get(field))
    error = _first_error(value)
    if isinstance(error, GatewayError):
        return _Outcome(error=error.code)
    if error is not None:
        return _Outcome(error="INTERNAL")
    return _Outcome(_json(_dig(value, rest)), None, record, outcome.origin)


async def prefill_form(
    *, ctx: RequestContext, procedure: str, applicant: str, response_path: str = "prefill"
) -> Prefill:
    """Fill `procedure`'s form for `applicant` under the request's purpose."""
    if ctx.services is None:
        raise RuntimeError("prefill needs the gateway's services")
    entry = ctx.services.catalogue.get(procedure)
    if procedure != ctx.access.purpose.procedure:
        raise PurposeNotAllowed("Prefill the procedure the token states.", procedure=procedure)
    records = await _records(ctx, entry, applicant)
    papers_by_field: dict[str, list[LocalizedText]] = {}
    for paper in entry.papers_replaced:
        for field_path in paper.fields:
            papers_by_field.setdefault(field_path, []).append(_text(paper.paper))
    fields = []
    for index, item in enumerate(entry.form):
        outcome = _field_outcome(records, item.path, item.document_kind)
        provenance = None
        top = ".".join(item.path.split(".")[:2])
        name = top.split(".")[1]
        if outcome.record is not None and outcome.origin is not None:
            source, when = outcome.origin
            allowed = outcome.record.decision.allowed.get(name)
            if allowed is not None:
                provenance = Provenance(
                    source=source,
                    version=ctx.versions.get(source),
                    retrieved_at=when,
                    basis=allowed.basis,
                    legal_basis=allowed.reference if allowed.basis == "law" else None,
                    consent_id=allowed.reference if allowed.basis == "consent" else None,
                )
                ctx.note_provenance(
                    f"{response_path}.fields.{index}.value",
                    source=source,
                    retrieved_at=when,
                    allowed=allowed,
                )
        fields.append(
            PrefillField(
                name=item.name,
                label=_text(item.label),
                path=item.path,
                value=outcome.value,
                provenance=provenance,
                error=outcome.error,
                replaces_papers=papers_by_field.get(top, []),
            )
        )
    avoided: list[Paper] = []
    needed: list[Paper] = []
    usable = _kinds_for(applicant)
    for paper in entry.papers_replaced:
        if all(path.split(".")[0] not in usable for path in paper.fields):
            continue  # a paper of another kind of applicant (an enterprise's, a person's)
        reasons = []
        for field_path in paper.fields:
            error = _field_outcome(records, field_path, paper.document_kind).error
            if error is not None:
                reasons.append(FieldReason(path=field_path, code=error))
        bucket = needed if reasons else avoided
        bucket.append(Paper(paper=_text(paper.paper), fields=list(paper.fields), reasons=reasons))
    ctx.actions.append(
        {
            "prefill": procedure,
            "papersAvoided": [p.paper.en for p in avoided],
            "papersStillNeeded": [p.paper.en for p in needed],
        }
    )
    return Prefill(
        procedure=ProcedureInfo(
            code=entry.code,
            code_status=entry.code_status,
            name=_text(entry.name),
            online_level=entry.online_level,
        ),
        fields=fields,
        papers_avoided=avoided,
        papers_still_needed=needed,
    )
