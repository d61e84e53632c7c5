"""The citizen API: a citizen sees and answers the consent requests made to them.

    GET  /me/consents[?status=REQUESTED|ACTIVE|DENIED|REVOKED|EXPIRED]
    GET  /me/consents/{id}                 with the signed grant when there is one
    POST /me/consents/{id}/approve         needs a level-2 sign-in (VNeID level 2)
    POST /me/consents/{id}/deny
    POST /me/consents/{id}/revoke
    GET  /consents/{id}/status             public: is this consent in force now?

A citizen sees and changes only their own consents: another citizen's consent answers
404 as if it did not exist. Every answer (approve, deny, revoke) commits with its
`consent` event in one transaction, before the response is sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request

from gateway.consents import Consent, Recorder, consent_event
from gateway.errors import InvalidArgument, NotFound
from gateway.identity import CitizenIdentity, Identity, Level2Citizen
from policies import UnknownProcedure

if TYPE_CHECKING:
    from gateway.app import GatewayState

__all__ = ["citizen_router", "consent_status_router"]

_STATUSES = ("REQUESTED", "ACTIVE", "DENIED", "REVOKED", "EXPIRED")


def _state(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.gateway
    return state


def _shown(state: GatewayState, consent: Consent) -> dict[str, Any]:
    body = consent.public()
    try:
        entry = state.catalogue.get(consent.procedure)
        body["procedureName"] = {"vi": entry.name.vi, "en": entry.name.en}
    except UnknownProcedure:  # since removed from the catalogue: show the code only
        body["procedureName"] = None
    return body


def _recorder(request: Request, action: str, identity: Identity) -> Recorder:
    """The event of `action`, committed with the change itself."""
    state = _state(request)
    request_id = getattr(request.state, "request_id", None) or ""
    return lambda consent: consent_event(
        consent,
        action,
        request_id=request_id,
        policy_version=state.catalogue.version,
        actor="citizen",
        acr=identity.acr,
    )


def citizen_router() -> APIRouter:
    """Routes under `/me`, for the signed-in citizen."""
    router = APIRouter(prefix="/me", tags=["citizen"])

    @router.get("/consents")
    async def my_consents(
        request: Request,
        identity: CitizenIdentity,
        status: Annotated[str | None, Query(description="Only consents in this state")] = None,
    ) -> dict[str, Any]:
        if status is not None and status not in _STATUSES:
            raise InvalidArgument("Unknown status.", argument="status", known=list(_STATUSES))
        state = _state(request)
        found = await state.consents.of_subject(identity.subject, status=status)
        return {"consents": [_shown(state, c) for c in found]}

    @router.get("/consents/{consent_id}")
    async def my_consent(
        request: Request, consent_id: str, identity: CitizenIdentity
    ) -> dict[str, Any]:
        state = _state(request)
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
    async def approve(request: Request, consent_id: str, identity: Level2Citizen) -> dict[str, Any]:
        state = _state(request)
        consent = await state.consents.approve(
            consent_id, identity.subject, record=_recorder(request, "approved", identity)
        )
        return _shown(state, consent)

    @router.post("/consents/{consent_id}/deny")
    async def deny(request: Request, consent_id: str, identity: CitizenIdentity) -> dict[str, Any]:
        state = _state(request)
        consent = await state.consents.deny(
            consent_id, identity.subject, record=_recorder(request, "denied", identity)
        )
        return _shown(state, consent)

    @router.post("/consents/{consent_id}/revoke")
    async def revoke(
        request: Request, consent_id: str, identity: CitizenIdentity
    ) -> dict[str, Any]:
        state = _state(request)
        consent = await state.consents.revoke(
            consent_id, identity.subject, record=_recorder(request, "revoked", identity)
        )
        return _shown(state, consent)

    return router


def consent_status_router() -> APIRouter:
    """The public status of a consent: whoever holds a signed grant can ask if it stands."""
    router = APIRouter(tags=["consent"])

    @router.get("/consents/{consent_id}/status")
    async def status(request: Request, consent_id: str) -> dict[str, Any]:
        consent = await _state(request).consents.get(consent_id)
        return {
            "id": consent.id,
            "status": consent.status,
            "active": consent.status == "ACTIVE",
            "validUntil": consent.public()["validUntil"],
        }

    return router
