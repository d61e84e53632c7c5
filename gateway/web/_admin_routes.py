"""Operator routes: see the registered clients, suspend and reinstate them.

    GET  /admin/clients
    POST /admin/clients/{client_id}/suspend
    POST /admin/clients/{client_id}/activate
    GET  /admin/stats?from=&to=[&procedure=][&organisation=]

Every change commits with its `admin` event (the operator's pseudonym in the envelope).
A suspension takes effect on the client's very next request. The figures are per
procedure and agency: procedure requests, fields served, denials by code, refused
requests by code, consents, papers avoided (see `gateway.records._figures` for what
each counts).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from gateway.admission import Identity
from gateway.instants import format_instant
from gateway.records import AdminRecorder, admin_recorder, figures, time_range
from gateway.state import GatewayState, State
from gateway.web._signin import OperatorIdentity

__all__ = ["admin_router"]


def _recorder(request: Request, state: GatewayState, identity: Identity) -> AdminRecorder:
    """The `admin` event of the operator's change, committed with the change itself."""
    return admin_recorder(
        pseudonym_key=state.pseudonym_key,
        policy_version=state.catalogue.version,
        operator=identity.subject,
        operator_org=identity.org,
        request_id=getattr(request.state, "request_id", None) or "",
    )


def admin_router() -> APIRouter:
    """Routes under `/admin`, for operators."""
    router = APIRouter(prefix="/admin", tags=["operator"])

    @router.get("/clients")
    async def clients(state: State, _identity: OperatorIdentity) -> dict[str, Any]:
        return {"clients": await state.clients.list()}

    @router.post("/clients/{client_id:path}/suspend")
    async def suspend(
        request: Request, state: State, client_id: str, identity: OperatorIdentity
    ) -> dict[str, Any]:
        client = await state.clients.set_status(
            client_id, "suspended", record=_recorder(request, state, identity)
        )
        return {"id": client.id, "status": client.status}

    @router.post("/clients/{client_id:path}/activate")
    async def activate(
        request: Request, state: State, client_id: str, identity: OperatorIdentity
    ) -> dict[str, Any]:
        client = await state.clients.set_status(
            client_id, "active", record=_recorder(request, state, identity)
        )
        return {"id": client.id, "status": client.status}

    @router.get("/stats")
    async def stats(
        state: State,
        _identity: OperatorIdentity,
        start: Annotated[str | None, Query(alias="from")] = None,
        end: Annotated[str | None, Query(alias="to")] = None,
        procedure: Annotated[str | None, Query(max_length=64)] = None,
        organisation: Annotated[str | None, Query(max_length=256)] = None,
    ) -> dict[str, Any]:
        since, until = time_range(start, end, max_days=None)
        rows = await figures(
            state.engine, since, until, procedure=procedure, organisation=organisation
        )
        return {"from": format_instant(since), "to": format_instant(until), "rows": rows}

    return router
