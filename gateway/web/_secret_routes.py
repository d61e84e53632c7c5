"""Connector secrets, written and never read: the credentials a connector sends its source.

    PUT /admin/connectors/{name}/secrets/{secret}    body {"value": "..."}

A manifest names the secret `{ref: "stored:<secret>"}`. Each PUT stores a new version,
encrypted (`gateway.storage.put_secret`), and the newest is the one in use: the
connectors are rebuilt with it at once on this replica, and on the others as for an
approval (the generation rises; a Redis message, else their next poll). No route
returns a value: the answer names the connector, the secret and its version, as the
`admin` event committed with it does; the value is in no answer, log line, error or
record.

Allowed to an `agency_admin` of the connector's organisation (the one that registered
it), and to operators of the platform's organisation; anyone else is 403 `FORBIDDEN`.
A connector the gateway does not know is 404 `NOT_FOUND`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Any, cast

import structlog
from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors import ManifestBase, SecretRef, stored_refs
from gateway.admission import Identity
from gateway.config import ConfigurationError, GatewaySettings
from gateway.errors import (
    AuditUnavailable,
    Forbidden,
    InvalidArgument,
    NotFound,
    ServiceUnavailable,
)
from gateway.records import EnvelopeBody, Event, insert_events, pseudonym
from gateway.state import GatewayState, State
from gateway.storage import (
    connectors_generation,
    get_connector,
    list_connector_versions,
    notify_connectors_changed,
    put_secret,
)
from gateway.web._signin import require_role
from keys import KekRing, KeyRingError

__all__ = ["require_kek", "secret_router"]

log = structlog.get_logger(__name__)

ACTION = "connector_secret_stored"
"""The `action` (and outcome) of the `admin` event of a PUT."""

_MAX_VALUE = 16_384
"""Characters of a secret's value: room for a PEM private key with its chain."""

SecretWriter = Annotated[Identity, Depends(require_role("agency_admin", "operator"))]


class SecretValue(BaseModel):
    """The body of a PUT: the secret's value, which is never shown back."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    value: SecretStr = Field(min_length=1, max_length=_MAX_VALUE)


def _secret_name(secret: str) -> str:
    """The name as a manifest's `stored:` reference can name it, or 400."""
    try:
        SecretRef(ref=f"stored:{secret}")
    except ValidationError:
        raise InvalidArgument(
            "A secret's name is 1-64 letters, digits, '_', '.' or '-'.", fields=["secret"]
        ) from None
    return secret


async def _organisation(state: GatewayState, name: str) -> str | None:
    """The organisation holding connector `name` (`None`: the platform's); 404 if unknown."""
    found = await get_connector(state.engine, name)
    if found is not None and found.organisation is not None:
        return found.organisation
    # Submitted, not yet approved: its secrets can be stored before it is in use.
    versions = await list_connector_versions(state.engine, name)
    if versions:
        return versions[-1].organisation
    if found is None:
        raise NotFound("No connector has this name.", kind="Connector")
    return None


def _may_write(state: GatewayState, identity: Identity, organisation: str | None) -> None:
    platform = state.settings.platform_organisation
    if "operator" in identity.roles and platform is not None and identity.org == platform:
        return
    admin = "agency_admin" in identity.roles
    if admin and organisation is not None and identity.org == organisation:
        return
    raise Forbidden(
        "Only an agency admin of the connector's organisation, or an operator of the "
        "platform, stores its secrets.",
        organisation=identity.org,
    )


def _kek_ring(state: GatewayState) -> KekRing:
    """The key-encryption keys; made when missing, except in production."""
    if state.settings.environment == "production":
        return KekRing.load(state.settings.keys_dir)
    return KekRing.ensure(state.settings.keys_dir)


def _event(
    request: Request,
    state: GatewayState,
    identity: Identity,
    name: str,
    organisation: str | None,
    secret: str,
    version: int,
) -> Event:
    """The `admin` record of a PUT: the connector, the secret's name and version, no value."""
    envelope: dict[str, Any] = {
        "action": ACTION,
        "connector": name,
        "connectorOrg": organisation,
        "secret": secret,
        "secretVersion": version,
        "operator": pseudonym(state.pseudonym_key, identity.subject),
        "operatorOrg": identity.org,
    }
    return Event(
        type="admin",
        request_id=getattr(request.state, "request_id", None) or uuid.uuid4().hex,
        outcome=ACTION,
        policy_version=state.catalogue.version,
        envelope=cast(EnvelopeBody, envelope),
        personal={"operator": identity.subject},
    )


async def _reload(state: GatewayState) -> None:
    """Rebuild this replica's connectors with the new value, if they can be rebuilt, and
    wake the other replicas (they also poll the generation `put_secret` raised)."""
    await notify_connectors_changed(state.redis, await connectors_generation(state.engine))
    live = getattr(state, "live", None)
    reload = getattr(live, "reload", None)
    if reload is None:
        return
    try:
        await reload()
    except Exception as exc:  # the value is stored; the watcher will try again
        log.warning("connectors_reload_failed_after_secret", error=type(exc).__name__)


def require_kek(settings: GatewaySettings, manifests: Sequence[ManifestBase]) -> None:
    """In production, refuse manifests naming `stored:` secrets when no KEK can open them.

    Raises `ConfigurationError` naming the connectors; elsewhere a KEK is made when the
    first secret is stored.
    """
    if settings.environment != "production":
        return
    named = [m.name for m in manifests if stored_refs(m)]
    if named and not KekRing.load(settings.keys_dir):
        raise ConfigurationError(
            f"connectors {', '.join(sorted(named))} name stored secrets (stored:NAME) and "
            f"{settings.keys_dir} has no key-encryption key to open them: run "
            "`gateway keys generate`, or install the KEKs of this deployment"
        )


def secret_router() -> APIRouter:
    """The write-only route of connector secrets, under `/admin`."""
    router = APIRouter(prefix="/admin", tags=["operator"])

    @router.put("/connectors/{name}/secrets/{secret}", status_code=201)
    async def put(
        request: Request,
        state: State,
        identity: SecretWriter,
        body: SecretValue,
        name: Annotated[str, Path(max_length=40)],
        secret: Annotated[str, Path(max_length=64)],
    ) -> dict[str, Any]:
        _secret_name(secret)
        organisation = await _organisation(state, name)
        _may_write(state, identity, organisation)
        try:
            ring = _kek_ring(state)
            ring.newest()
        except KeyRingError as exc:
            log.error("connector_secrets_without_kek", error=str(exc))
            raise ServiceUnavailable(
                "Secrets cannot be stored: the gateway has no key-encryption key."
            ) from None

        async def record(conn: AsyncConnection, version: int) -> None:
            event = _event(request, state, identity, name, organisation, secret, version)
            await insert_events(conn, [event])

        try:
            version = await put_secret(
                state.engine,
                connector=name,
                name=secret,
                value=body.value.get_secret_value(),
                ring=ring,
                created_by=identity.subject,
                also=record,
            )
        except SQLAlchemyError as exc:
            raise AuditUnavailable("The secret could not be stored; nothing changed.") from exc
        await _reload(state)
        return {"connector": name, "secret": secret, "version": version}

    return router
