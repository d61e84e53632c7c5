"""Agencies' own client systems: changes an agency admin submits and an operator approves.

    POST /admin/client-changes                  agency_admin: a pending change of a system
                                                of their organisation
    GET  /admin/client-changes[?status=]        agency_admin (their organisation's),
                                                platform operator (every one)
    GET  /admin/client-changes/{id}             the same
    POST /admin/client-changes/{id}/approve     platform operator, not the submitter
    POST /admin/client-changes/{id}/reject      platform operator, with a `reason`

A submission is `{"client": "VN/GOV/<org>/<system>", "action": ..., ...}`, the action one
of `register` (`name`, `agencyKinds`, optional `jwksUrl`), `add_key` (`jwk`, optional
`kid`), `revoke_key` (`kid`), `jwks_url` (`jwksUrl`, or null for registered keys only).
A JWKS URL is refused (400 `INVALID_ARGUMENT`) unless its host is among the
organisation's endpoints (`PUT /admin/authority/{organisation}`), as a connector's
address is; loopback only with `GATEWAY_CONNECTORS_ALLOW_LOOPBACK`, and plain `http://`
only there. See `gateway.admission._client_changes` for what approval applies.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.admission import ClientChanges, Identity, UrlCheck, reachable
from gateway.errors import Forbidden, InvalidArgument
from gateway.state import GatewayState, State
from gateway.storage import get_authority
from gateway.web._admin_routes import (
    client_change_recorder,
    client_organisation,
    is_platform_operator,
    require_platform_operator,
)
from gateway.web._connector_authority import is_loopback
from gateway.web._signin import require_role

__all__ = ["client_change_router", "jwks_url_check"]

_ADMIN, _OPERATOR = "agency_admin", "operator"
Staff = Annotated[Identity, Depends(require_role(_ADMIN, _OPERATOR))]
AgencyAdmin = Annotated[Identity, Depends(require_role(_ADMIN))]
Operator = Annotated[Identity, Depends(require_role(_OPERATOR))]
ChangeId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


class ChangeBody(BaseModel):
    """A change of one of the agency's systems."""

    model_config = ConfigDict(extra="forbid")
    client: str = Field(max_length=128, description="VN/GOV/<org>/<system>")
    action: str = Field(description="register, add_key, revoke_key or jwks_url")
    name: str | None = Field(default=None, max_length=200)
    agencyKinds: list[str] | None = Field(default=None, max_length=20)  # noqa: N815
    jwksUrl: str | None = Field(default=None, max_length=2000)  # noqa: N815
    jwk: dict[str, Any] | None = None
    kid: str | None = Field(default=None, max_length=128)


class Rejection(BaseModel):
    """Why a change is rejected."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


def jwks_url_check(allow_loopback: bool) -> UrlCheck:
    """A JWKS URL's host must be among the organisation's endpoints (as a connector's)."""

    async def check(conn: AsyncConnection, organisation: str, url: str) -> None:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        try:
            parts.port  # noqa: B018 - read to refuse a port that is not one
        except ValueError:
            raise InvalidArgument("The JWKS URL's port is not valid.", argument="jwksUrl") from None
        local = is_loopback(host)
        if not host or (local and not allow_loopback):
            raise InvalidArgument(
                "A JWKS URL on a loopback address is refused (GATEWAY_CONNECTORS_ALLOW_LOOPBACK).",
                argument="jwksUrl",
            )
        if parts.scheme != "https" and not local:
            raise InvalidArgument("A JWKS URL is an https:// URL.", argument="jwksUrl")
        authority = await get_authority(conn, organisation)
        if authority is None or not reachable(url, authority.endpoints):
            raise InvalidArgument(
                f"The JWKS URL's host is not among {organisation}'s endpoints "
                f"(PUT /admin/authority/{organisation}).",
                argument="jwksUrl",
            )

    return check


def _changes(state: GatewayState) -> ClientChanges:
    return ClientChanges(
        state.engine, check_url=jwks_url_check(state.settings.connectors_allow_loopback)
    )


def client_change_router() -> APIRouter:
    """Routes under `/admin/client-changes`."""
    router = APIRouter(prefix="/admin/client-changes", tags=["agency"])

    @router.post("", status_code=201)
    async def submit(
        request: Request, body: ChangeBody, state: State, identity: AgencyAdmin
    ) -> dict[str, Any]:
        given = body.model_dump(exclude={"client", "action"}, exclude_unset=True)
        change = await _changes(state).submit(
            organisation=client_organisation(identity),
            client_id=body.client,
            action=body.action,
            given=given,
            submitted_by=identity.subject,
            record=client_change_recorder(request, state, identity),
        )
        return change.public()

    @router.get("")
    async def listing(
        state: State,
        identity: Staff,
        status: Annotated[str | None, Query(pattern="^(pending|approved|rejected)$")] = None,
    ) -> dict[str, Any]:
        organisation = (
            None if is_platform_operator(state, identity) else client_organisation(identity)
        )
        found = await _changes(state).list(organisation=organisation, status=status)
        return {"changes": [c.public() for c in found]}

    @router.get("/{change_id}")
    async def one(change_id: ChangeId, state: State, identity: Staff) -> dict[str, Any]:
        change = await _changes(state).get(change_id)
        platform = is_platform_operator(state, identity)
        if not platform and change.organisation != client_organisation(identity):
            raise Forbidden("This change is not of your organisation.")
        return change.public()

    @router.post("/{change_id}/approve")
    async def approve(
        request: Request, change_id: ChangeId, state: State, identity: Operator
    ) -> dict[str, Any]:
        require_platform_operator(state, identity)
        change = await _changes(state).approve(
            change_id,
            operator=identity.subject,
            record=client_change_recorder(request, state, identity),
        )
        return change.public()

    @router.post("/{change_id}/reject")
    async def reject(
        request: Request, change_id: ChangeId, body: Rejection, state: State, identity: Operator
    ) -> dict[str, Any]:
        require_platform_operator(state, identity)
        change = await _changes(state).reject(
            change_id,
            operator=identity.subject,
            reason=body.reason,
            record=client_change_recorder(request, state, identity),
        )
        return change.public()

    return router
