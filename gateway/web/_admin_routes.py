"""Operator routes: see the registered clients, suspend and reinstate them.

    GET  /admin/clients
    POST /admin/clients/{client_id}/suspend
    POST /admin/clients/{client_id}/activate
    GET  /admin/stats?from=&to=[&procedure=][&organisation=]

Operators act for their organisation (the `org` claim of their sign-in, `VN/GOV/<org>`):
they see, change and count only the clients whose id is under it (`VN/GOV/<org>/...`);
any other client is 403 `FORBIDDEN`, whether it exists or not. Operators of the
platform's organisation (`platform_organisation` of the settings) act on every client.

Every change commits with its `admin` event (the operator's pseudonym in the envelope).
A suspension takes effect on the client's next request to this gateway, and on its other
replicas within `GATEWAY_CLIENTS_POLL_SECONDS` (see `CachedClients`). The figures are per
procedure and agency: procedure requests, fields served, denials by code, refused
requests by code, consents, papers avoided (see `gateway.records._figures` for what
each counts).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from gateway.admission import Identity
from gateway.errors import Forbidden
from gateway.instants import format_instant
from gateway.records import AdminRecorder, admin_recorder, figures, time_range
from gateway.state import GatewayState, State
from gateway.web._signin import OperatorIdentity

__all__ = [
    "admin_router",
    "client_change_recorder",
    "client_organisation",
    "is_platform_operator",
    "may_act_on",
    "operator_scope",
    "require_platform_operator",
]

_ORG = re.compile(r"VN/GOV/[A-Za-z0-9][A-Za-z0-9-]{0,63}")
"""An organisation as client ids name it (`CLIENT_ID` without the system)."""


def client_change_recorder(
    request: Request, state: GatewayState, identity: Identity
) -> AdminRecorder:
    """The `admin` event of the operator's change, committed with the change itself."""
    return admin_recorder(
        pseudonym_key=state.pseudonym_key,
        policy_version=state.catalogue.version,
        operator=identity.subject,
        operator_org=identity.org,
        request_id=getattr(request.state, "request_id", None) or "",
    )


def operator_scope(state: GatewayState, identity: Identity) -> str | None:
    """The client-id prefix this operator acts on (`VN/GOV/<org>/`), or `None`: every client."""
    org = identity.org
    if org is not None and org == state.settings.platform_organisation:
        return None
    if org is None or _ORG.fullmatch(org) is None:
        raise Forbidden(
            "An operator acts for an organisation: this sign-in names none (org VN/GOV/<org>)."
        )
    return f"{org}/"


def is_platform_operator(state: GatewayState, identity: Identity) -> bool:
    """Whether the sign-in is an operator of the platform's organisation."""
    platform = state.settings.platform_organisation
    return "operator" in identity.roles and platform is not None and identity.org == platform


def require_platform_operator(state: GatewayState, identity: Identity) -> None:
    """Refuse (403) anyone but an operator of the platform's organisation."""
    if not is_platform_operator(state, identity):
        raise Forbidden("This needs an operator of the platform's organisation.")


def client_organisation(identity: Identity) -> str:
    """The organisation (`VN/GOV/<org>`, as client ids name it) a member of staff acts
    for; 403 if the sign-in names none."""
    if identity.org is None or _ORG.fullmatch(identity.org) is None:
        raise Forbidden("Staff act for an organisation: this sign-in names none (org VN/GOV/...).")
    return identity.org


def may_act_on(state: GatewayState, identity: Identity, client_id: str) -> None:
    """Refuse (403) a client outside the operator's organisation."""
    prefix = operator_scope(state, identity)
    if prefix is not None and not client_id.startswith(prefix):
        raise Forbidden("This client is not of your organisation.", organisation=identity.org)


def admin_router() -> APIRouter:
    """Routes under `/admin`, for operators."""
    router = APIRouter(prefix="/admin", tags=["operator"])

    @router.get("/clients")
    async def clients(state: State, identity: OperatorIdentity) -> dict[str, Any]:
        prefix = operator_scope(state, identity)
        listed = await state.clients.list()
        return {"clients": [c for c in listed if prefix is None or c["id"].startswith(prefix)]}

    @router.post("/clients/{client_id:path}/suspend")
    async def suspend(
        request: Request, state: State, client_id: str, identity: OperatorIdentity
    ) -> dict[str, Any]:
        may_act_on(state, identity, client_id)
        client = await state.clients.set_status(
            client_id, "suspended", record=client_change_recorder(request, state, identity)
        )
        return {"id": client.id, "status": client.status}

    @router.post("/clients/{client_id:path}/activate")
    async def activate(
        request: Request, state: State, client_id: str, identity: OperatorIdentity
    ) -> dict[str, Any]:
        may_act_on(state, identity, client_id)
        client = await state.clients.set_status(
            client_id, "active", record=client_change_recorder(request, state, identity)
        )
        return {"id": client.id, "status": client.status}

    @router.get("/stats")
    async def stats(
        state: State,
        identity: OperatorIdentity,
        start: Annotated[str | None, Query(alias="from")] = None,
        end: Annotated[str | None, Query(alias="to")] = None,
        procedure: Annotated[str | None, Query(max_length=64)] = None,
        organisation: Annotated[str | None, Query(max_length=256)] = None,
    ) -> dict[str, Any]:
        since, until = time_range(start, end, max_days=None)
        rows = await figures(
            state.engine,
            since,
            until,
            procedure=procedure,
            organisation=organisation,
            clients_under=operator_scope(state, identity),
        )
        return {"from": format_instant(since), "to": format_instant(until), "rows": rows}

    return router
