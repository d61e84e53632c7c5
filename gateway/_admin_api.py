"""Operator routes: see the registered clients, suspend and reinstate them.

    GET  /admin/clients
    POST /admin/clients/{client_id}/suspend
    POST /admin/clients/{client_id}/activate

Every change commits with its `admin` event (the operator's pseudonym in the envelope).
A suspension takes effect on the client's very next request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request

from gateway.clients import Client
from gateway.identity import Identity, OperatorIdentity
from gateway.recorder import Event, admin_event, pseudonym

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

    return router
