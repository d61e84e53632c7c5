"""Auditor routes: search the access records and export them with proofs.

    GET /audit/events   search, newest first, a page at a time
    GET /audit/export   every match as JSON lines, each with an inclusion proof
    GET /audit/events/{id}/evidence   what the sources gave as evidence of one access

Parameters of both: `from`, `to` (a date, or a date-time with its offset, exact; a
date in `from` is the start of that day in Vietnam, in `to` its end; at most
`GATEWAY_AUDIT_MAX_RANGE_DAYS` apart; default the last 30 days), `client`,
`organisation`, `officer` (the officer's id: searched by its pseudonym), `procedure`,
`case` (the case number: by its pseudonym), `subject` (a personal id, enterprise code
or household id: through the private index), `type`, `decision`, `officerPseudonym`
(an officer's pseudonym as envelopes hold it), `hours=outside` (outside working hours,
`GATEWAY_AUDIT_WORK_START` to `GATEWAY_AUDIT_WORK_END`, Vietnam's time, weekdays), `code`
(a decision of this code, or a refusal with it), `dossierStatus` (reads whose case's
dossier had this status at the registry: `RETURNED`, `DONE`, `CANCELLED`...). The search adds
`limit` (at most `GATEWAY_AUDIT_MAX_PAGE`) and `cursor`; the export `checkpoint` (a tree
size with a signed checkpoint; default the newest).

Auditors see envelopes, never personal parts, but for one member of an access's:
the sources' evidence of its calls (X-Road request hashes; see
`gateway.records._evidence`), one record at a time. Every search, export and read of
evidence is itself an `auditor_search` record, committed before the results leave.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import StreamingResponse

from gateway.admission import Identity
from gateway.errors import InvalidIdentifier, NotFound
from gateway.instants import format_instant
from gateway.log import Checkpoint, b64url
from gateway.records import (
    EnvelopeBody,
    Event,
    SearchFilter,
    all_results,
    page_limit,
    pseudonym,
    read_envelope,
    record_evidence,
    search_page,
)
from gateway.state import GatewayState, State
from gateway.storage import read_snapshot
from gateway.web._signin import AuditorIdentity

__all__ = ["audit_router", "auditor_item", "export_lines", "record_read", "record_search"]

_EVENT_ID: Final = re.compile(r"[0-9a-f]{32}")


def _filter(
    state: State,
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
    client: str | None = None,
    organisation: str | None = None,
    officer: str | None = None,
    procedure: str | None = None,
    case: str | None = None,
    subject: str | None = None,
    type: str | None = None,
    decision: str | None = None,
    officer_pseudonym: Annotated[str | None, Query(alias="officerPseudonym")] = None,
    hours: str | None = None,
    code: str | None = None,
    dossier_status: Annotated[str | None, Query(alias="dossierStatus")] = None,
) -> SearchFilter:
    """The search filter of the query string (a dependency of both routes)."""
    return SearchFilter.build(
        start=start,
        end=end,
        max_days=state.settings.audit_max_range_days,
        pseudonym_key=state.pseudonym_key,
        officer=officer,
        case=case,
        subject=subject,
        type=type,
        decision=decision,
        officer_pseudonym=officer_pseudonym,
        hours=hours,
        work_hours=(state.settings.audit_work_start, state.settings.audit_work_end),
        code=code,
        dossier_status=dossier_status,
        client=client,
        organisation=organisation,
        procedure=procedure,
    )


Filter = Annotated[SearchFilter, Depends(_filter)]


def _instant(value: Any) -> str | None:
    if value is None:
        return None
    return format_instant(value)


def auditor_item(row: Any) -> dict[str, Any]:
    """A search result as auditors see it: the envelope, never the personal part."""
    envelope = read_envelope(row.envelope)
    return {
        "id": row.id,
        "type": row.type,
        "time": _instant(row.ts),
        "leafIndex": row.leaf_index,
        "clientId": row.client_id,
        "organisation": row.organisation,
        "procedure": row.procedure,
        "outcome": row.outcome,
        "hiddenUntil": _instant(row.hidden_until),
        "envelopeHash": row.envelope_hash,
        "envelope": envelope,
    }


async def record_search(
    request: Request,
    state: GatewayState,
    identity: Identity,
    flt: SearchFilter,
    what: EnvelopeBody,
) -> None:
    """Commit the `auditor_search` record (503 AUDIT_UNAVAILABLE if it cannot be).

    `what`: the search's results, or the export's checkpoint.
    """
    await state.recorder.record(
        Event(
            type="auditor_search",
            request_id=getattr(request.state, "request_id", None) or "",
            outcome="exported" if what.get("export") else "searched",
            policy_version=state.catalogue.version,
            envelope={
                "auditor": pseudonym(state.pseudonym_key, identity.subject, "auditor"),
                "auditorOrg": identity.org,
                "filter": flt.described(),
                **what,
            },
            personal={"auditor": identity.subject, "subject": flt.subject},
            subjects=[] if flt.subject is None else [flt.subject],
        )
    )


async def record_read(
    request: Request,
    state: GatewayState,
    identity: Identity,
    described: dict[str, Any],
    *,
    results: int,
    subjects: Sequence[str] = (),
    personal: Mapping[str, Any] | None = None,
) -> None:
    """Commit the `auditor_search` record of a read that is not a search by filters (one
    record, its evidence, a page of patterns), before anything read is shown.

    `described`: what was read, for the envelope (`{"event": id}`); `subjects`: the
    people it concerns, who then see that an auditor looked; `personal`: what else to
    seal with the auditor's id.
    """
    await state.recorder.record(
        Event(
            type="auditor_search",
            request_id=getattr(request.state, "request_id", None) or "",
            outcome="searched",
            policy_version=state.catalogue.version,
            envelope={
                "auditor": pseudonym(state.pseudonym_key, identity.subject, "auditor"),
                "auditorOrg": identity.org,
                "filter": described,
                "results": results,
                "export": False,
            },
            personal={"auditor": identity.subject, **(personal or {})},
            subjects=list(subjects),
        )
    )


def audit_router() -> APIRouter:
    """Routes under `/audit`, for auditors."""
    router = APIRouter(prefix="/audit", tags=["auditor"])

    @router.get("/events")
    async def search(
        request: Request,
        state: State,
        identity: AuditorIdentity,
        flt: Filter,
        limit: Annotated[int, Query(ge=1)] = 50,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> dict[str, Any]:
        page_limit(limit, state.settings.audit_max_page)
        async with read_snapshot(state.engine) as conn:
            page = await search_page(conn, flt, limit=limit, cursor=cursor)
        await record_search(
            request, state, identity, flt, {"results": len(page.rows), "export": False}
        )
        return {
            "filter": flt.described(),
            "events": [auditor_item(row) for row in page.rows],
            "next": page.next_cursor,
        }

    @router.get("/export")
    async def export(
        request: Request,
        state: State,
        identity: AuditorIdentity,
        flt: Filter,
        checkpoint: Annotated[int | None, Query(ge=0)] = None,
    ) -> StreamingResponse:
        signed = await state.log.export_checkpoint(
            state.settings.cosignatures_needed, checkpoint, state.settings.witness_names
        )
        if signed is None:
            raise NotFound("No checkpoint has been signed yet.", kind="Checkpoint")
        await record_search(
            request, state, identity, flt, {"export": True, "checkpoint": signed.size}
        )
        return StreamingResponse(
            export_lines(state, flt, signed),
            media_type="application/x-ndjson",
            headers={
                "Content-Disposition": 'attachment; filename="access-records.jsonl"',
                "Cache-Control": "no-store",
            },
        )

    @router.get("/events/{event_id}/evidence")
    async def evidence(
        request: Request, state: State, identity: AuditorIdentity, event_id: str
    ) -> dict[str, Any]:
        if not _EVENT_ID.fullmatch(event_id):
            raise InvalidIdentifier("A record id is 32 lowercase hexadecimal digits.")
        async with read_snapshot(state.engine) as conn:
            found = await record_evidence(conn, event_id)
        if found is None:
            raise NotFound("No access record has this id.", kind="Access")
        # Recorded first, naming the record's people: each sees that an auditor looked.
        await record_read(
            request,
            state,
            identity,
            {"event": found.id, "read": "evidence"},
            results=1,
            subjects=found.subjects,
            personal={"event": found.id},
        )
        return {"id": found.id, "requestId": found.request_id, "evidence": found.evidence}

    return router


async def export_lines(
    state: GatewayState, flt: SearchFilter, signed: Checkpoint
) -> AsyncIterator[bytes]:
    """The export: the checkpoint, one line per record with its proof, a summary."""
    yield _line(
        {
            "kind": "checkpoint",
            "origin": signed.origin,
            "size": signed.size,
            "note": signed.note,
            "filter": flt.described(),
        }
    )
    proven = pending = 0
    cap = state.settings.audit_max_export
    truncated = False
    async for page in all_results(state.engine, flt):
        rows = list(page)
        if proven + pending + len(rows) > cap:
            rows, truncated = rows[: cap - proven - pending], True
        included = [r for r in rows if r.leaf_index is not None and r.leaf_index < signed.size]
        proofs = await state.log.inclusion_proofs(
            [int(r.leaf_index) for r in included], signed.size
        )
        by_id = {r.id: p for r, p in zip(included, proofs, strict=True)}
        for row in rows:
            item = auditor_item(row)
            proof = by_id.get(row.id)
            if proof is None:
                pending += 1
                item.update(kind="record", leaf=None, proof=None)
            else:
                proven += 1
                item.update(
                    kind="record",
                    leaf=row.leaf,
                    proof=[b64url(h) for h in proof],
                )
            yield _line(item)
        if truncated:
            break
    end: dict[str, Any] = {
        "kind": "end",
        "records": proven + pending,
        "proven": proven,
        "pending": pending,
    }
    if truncated:
        # More records match: the export stops at its cap rather than run unbounded.
        end["truncated"] = True
        end["message"] = (
            f"More than {cap} records match (GATEWAY_AUDIT_MAX_EXPORT): narrow `from` and "
            "`to`, or export from the last record's time on."
        )
    yield _line(end)


def _line(value: Any) -> bytes:
    return orjson.dumps(value) + b"\n"
