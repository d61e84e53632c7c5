"""Operator routes: see the registered clients, suspend and reinstate them.

    GET  /admin/clients
    POST /admin/clients/{client_id}/suspend
    POST /admin/clients/{client_id}/activate
    GET  /admin/stats?from=&to=[&procedure=][&organisation=]

Every change commits with its `admin` event (the operator's pseudonym in the envelope).
A suspension takes effect on the client's very next request. The figures are per
procedure and agency: requests, fields served, refusals by code, consents, papers
avoided (see `gateway._figures`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request

from gateway._figures import figures
from gateway._search import time_range
from gateway.clients import Client
from gateway.identity import Identity, OperatorIdentity
from gateway.recorder import Event, admin_event, pseudonym
from gateway.tokens import format_instant

if TYPE_CHECKING:
    from gateway.app import GatewayState

__all__ = ["admin_router"]


def _state(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.gateway
    return state


def _recorder(request: Request, identity: Identity, action: str) -> Callable[[Client], Event]:
    """The `admin` event of `action`, committed with the change itself."""
    return lambda client: admin_event(
        request_id=getattr(request.state, "request_id", None) or "",
        policy_version=_state(request).catalogue.version,
        action=action,
        client_id=client.id,
        operator=pseudonym(_state(request).pseudonym_key, identity.subject),
        operator_org=identity.org,
        personal={"operator": identity.subject},
    )


def admin_router() -> APIRouter:
    """Routes under `/admin`, for operators."""
    router = APIRouter(prefix="/admin", tags=["operator"])

    @router.get("/clients")
    async def clients(request: Request, _identity: OperatorIdentity) -> dict[str, Any]:
        return {"clients": await _state(request).clients.list()}

    @router.post("/clients/{client_id:path}/suspend")
    async def suspend(
        request: Request, client_id: str, identity: OperatorIdentity
    ) -> dict[str, Any]:
        client = await _state(request).clients.set_status(
            client_id, "suspended", record=_recorder(request, identity, "client_suspended")
        )
        return {"id": client.id, "status": client.status}

    @router.post("/clients/{client_id:path}/activate")
    async def activate(
        request: Request, client_id: str, identity: OperatorIdentity
    ) -> dict[str, Any]:
        client = await _state(request).clients.set_status(
            client_id, "active", record=_recorder(request, identity, "client_activated")
        )
        return {"id": client.id, "status": client.status}

    @router.get("/stats")
    async def stats(
        request: Request,
        _identity: OperatorIdentity,
        start: Annotated[str | None, Query(alias="from")] = None,
        end: Annotated[str | None, Query(alias="to")] = None,
        procedure: Annotated[str | None, Query(max_length=64)] = None,
        organisation: Annotated[str | None, Query(max_length=256)] = None,
    ) -> dict[str, Any]:
        since, until = time_range(start, end, max_days=None)
        rows = await figures(
            _state(request).engine, since, until, procedure=procedure, organisation=organisation
        )
        return {"from": format_instant(since), "to": format_instant(until), "rows": rows}

    return router
