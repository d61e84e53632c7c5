"""Operator routes: see the registered clients, suspend and reinstate them.

    GET  /admin/clients
    POST /admin/clients/{client_id}/suspend
    POST /admin/clients/{client_id}/activate

Every change is an `admin` event in the access log, with the operator's pseudonym.
A suspension takes effect on the client's very next request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request

from gateway._events import record_action
from gateway.identity import Identity, OperatorIdentity
from gateway.recorder import pseudonym

if TYPE_CHECKING:
    from gateway.app import GatewayState

__all__ = ["admin_router"]


def _state(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.gateway
    return state


async def _record(request: Request, identity: Identity, action: str, client_id: str) -> None:
    await record_action(
        request,
        type="admin",
        outcome=action,
        envelope={
            "action": action,
            "client": client_id,
            "operator": pseudonym(_state(request).pseudonym_key, identity.subject),
            "operatorOrg": identity.org,
        },
        personal={"operator": identity.subject},
        client_id=client_id,
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
        client = await _state(request).clients.set_status(client_id, "suspended")
        await _record(request, identity, "client_suspended", client_id)
        return {"id": client.id, "status": client.status}

    @router.post("/clients/{client_id:path}/activate")
    async def activate(
        request: Request, client_id: str, identity: OperatorIdentity
    ) -> dict[str, Any]:
        client = await _state(request).clients.set_status(client_id, "active")
        await _record(request, identity, "client_activated", client_id)
        return {"id": client.id, "status": client.status}

    return router
