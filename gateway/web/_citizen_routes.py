"""The citizen API: a citizen sees and answers the consent requests made to them.

    GET  /me/consents[?status=REQUESTED|ACTIVE|DENIED|REVOKED|EXPIRED]
    GET  /me/consents/{id}                 with the signed grant when there is one
    POST /me/consents/{id}/approve
    POST /me/consents/{id}/deny
    POST /me/consents/{id}/revoke
    GET  /consents/{id}/status             public: is this consent in force now?
    GET  /me/accesses[?from=&to=&limit=&cursor=]   who read my data, newest first
    GET  /me/accesses/{id}/receipt         an offline proof (c2sp.org/tlog-proof) of one
    GET  /me/notifications                 what I am told of: `{"readDigest": bool}`
    PUT  /me/notifications                 `{"readDigest": true}`: a daily digest of reads

Every route under `/me` needs a level-2 sign-in (VNeID level 2): the access history
names officers, cases and agencies, and consents carry their signed grants and the
procedures and agencies they are for; answering one changes what agencies may read.

A citizen sees and changes only their own consents: another citizen's consent answers
404 as if it did not exist. Every answer (approve, deny, revoke) commits with its
`consent` event in one transaction, before the response is sent.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from gateway.admission import Identity
from gateway.errors import Conflict, InvalidArgument, NotFound
from gateway.log import tlog_proof
from gateway.notifications import read_digest_enabled, set_read_digest
from gateway.records import (
    CITIZEN_VISIBLE_TYPES,
    Recorder,
    SearchFilter,
    citizen_items,
    consent_event,
    page_limit,
    search_page,
)
from gateway.state import GatewayState, State
from gateway.storage import events, read_snapshot
from gateway.web._signin import Level2Citizen
from policies import CONSENT_STATES, Consent, UnknownProcedure

__all__ = ["access_receipt", "citizen_router", "consent_status_router"]


async def access_receipt(state: GatewayState, row: Any) -> str:
    """The offline proof (c2sp.org/tlog-proof) of one access, `row` as the search gives
    it: against the checkpoint its witnesses cosigned when that holds the access, else
    the newest; `Conflict` while no signed checkpoint holds it."""
    latest = (
        None
        if row.leaf_index is None
        else await state.log.to_prove(
            state.settings.cosignatures_needed,
            int(row.leaf_index),
            witnesses=state.settings.witness_names,
        )
    )
    if row.leaf_index is None or latest is None:
        raise Conflict(
            "The access is not in a signed checkpoint yet: ask again after the merge delay.",
            retryAfter=max(1, round(state.settings.merge_delay)),
        )
    proof = await state.log.inclusion_proof(int(row.leaf_index), latest.size)
    return tlog_proof(int(row.leaf_index), proof, latest, extra=row.leaf.encode())


def _shown(state: GatewayState, consent: Consent) -> dict[str, Any]:
    body = consent.public()
    try:
        entry = state.catalogue.get(consent.procedure)
        body["procedureName"] = {"vi": entry.name.vi, "en": entry.name.en}
    except UnknownProcedure:  # since removed from the catalogue: show the code only
        body["procedureName"] = None
    return body


def _recorder(request: Request, state: GatewayState, action: str, identity: Identity) -> Recorder:
    """The event of `action`, committed with the change itself."""
    request_id = getattr(request.state, "request_id", None) or ""
    return lambda consent: consent_event(
        consent,
        action,
        request_id=request_id,
        policy_version=state.catalogue.version,
        actor="citizen",
        acr=identity.acr,
    )


class NotificationChoice(BaseModel):
    """What a citizen chooses to be told of (a consent request is always told)."""

    model_config = ConfigDict(extra="forbid")

    readDigest: bool  # noqa: N815  # the JSON field's name


def citizen_router() -> APIRouter:
    """Routes under `/me`, for the signed-in citizen."""
    router = APIRouter(prefix="/me", tags=["citizen"])

    @router.get("/consents")
    async def my_consents(
        state: State,
        identity: Level2Citizen,
        status: Annotated[str | None, Query(description="Only consents in this state")] = None,
    ) -> dict[str, Any]:
        if status is not None and status not in CONSENT_STATES:
            raise InvalidArgument("Unknown status.", argument="status", known=list(CONSENT_STATES))
        found = await state.consents.of_subject(identity.subject, status=status)
        return {"consents": [_shown(state, c) for c in found]}

    @router.get("/consents/{consent_id}")
    async def my_consent(state: State, consent_id: str, identity: Level2Citizen) -> dict[str, Any]:
        consent = await state.consents.get(consent_id)
        if consent.subject != identity.subject:
            raise NotFound("No consent has this id.", kind="Consent")
        body = _shown(state, consent)
        body["grant"] = (
            {"jws": consent.grant, "payload": consent.artefact()} if consent.grant else None
        )
        body["revocation"] = consent.revocation
        return body

    @router.post("/consents/{consent_id}/approve")
    async def approve(
        request: Request, state: State, consent_id: str, identity: Level2Citizen
    ) -> dict[str, Any]:
        consent = await state.consents.approve(
            consent_id, identity.subject, record=_recorder(request, state, "approved", identity)
        )
        return _shown(state, consent)

    @router.post("/consents/{consent_id}/deny")
    async def deny(
        request: Request, state: State, consent_id: str, identity: Level2Citizen
    ) -> dict[str, Any]:
        consent = await state.consents.deny(
            consent_id, identity.subject, record=_recorder(request, state, "denied", identity)
        )
        return _shown(state, consent)

    @router.post("/consents/{consent_id}/revoke")
    async def revoke(
        request: Request, state: State, consent_id: str, identity: Level2Citizen
    ) -> dict[str, Any]:
        consent = await state.consents.revoke(
            consent_id, identity.subject, record=_recorder(request, state, "revoked", identity)
        )
        return _shown(state, consent)

    @router.get("/accesses")
    async def my_accesses(
        state: State,
        identity: Level2Citizen,
        start: Annotated[str | None, Query(alias="from")] = None,
        end: Annotated[str | None, Query(alias="to")] = None,
        limit: Annotated[int, Query(ge=1)] = 50,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> dict[str, Any]:
        page_limit(limit, state.settings.audit_max_page)
        built = SearchFilter.build(
            start=start,
            end=end,
            max_days=state.settings.audit_max_range_days,
            pseudonym_key=state.pseudonym_key,
        )
        flt = dataclasses.replace(
            built,
            subject=identity.subject,
            types=CITIZEN_VISIBLE_TYPES,
            visible_at=datetime.datetime.now(datetime.UTC),
        )
        async with read_snapshot(state.engine) as conn:
            page = await search_page(conn, flt, limit=limit, cursor=cursor)
            items = await citizen_items(conn, page.rows, identity.subject, state.catalogue)
        return {"accesses": items, "next": page.next_cursor}

    @router.get("/accesses/{event_id}/receipt")
    async def my_receipt(state: State, event_id: str, identity: Level2Citizen) -> Response:
        now = datetime.datetime.now(datetime.UTC)
        flt = SearchFilter(
            start=datetime.datetime.min.replace(tzinfo=datetime.UTC),
            end=now + datetime.timedelta(days=1),
            subject=identity.subject,
            types=CITIZEN_VISIBLE_TYPES,
            visible_at=now,
        )
        async with read_snapshot(state.engine) as conn:
            row = (await conn.execute(flt.query().where(events.c.id == event_id))).first()
        if row is None:
            raise NotFound("None of your accesses has this id.", kind="Access")
        return Response(
            await access_receipt(state, row),
            media_type="text/plain; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="access-{row.id}.tlog-proof"',
                "Cache-Control": "no-store",
            },
        )

    @router.get("/notifications")
    async def my_notifications(state: State, identity: Level2Citizen) -> dict[str, Any]:
        enabled = await read_digest_enabled(state.engine, state.notify_seal, identity.subject)
        return {"readDigest": enabled}

    @router.put("/notifications")
    async def choose_notifications(
        state: State, identity: Level2Citizen, choice: NotificationChoice
    ) -> dict[str, Any]:
        await set_read_digest(state.engine, state.notify_seal, identity.subject, choice.readDigest)
        return {"readDigest": choice.readDigest}

    return router


def consent_status_router() -> APIRouter:
    """The public status of a consent: whoever holds a signed grant can ask if it stands."""
    router = APIRouter(tags=["consent"])

    @router.get("/consents/{consent_id}/status")
    async def status(state: State, consent_id: str) -> dict[str, Any]:
        consent = await state.consents.get(consent_id)
        return {
            "id": consent.id,
            "status": consent.status,
            "active": consent.status == "ACTIVE",
            "validUntil": consent.public()["validUntil"],
        }

    return router
