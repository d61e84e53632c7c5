"""Connectors registered at runtime: submitted by an agency, approved by another person.

    POST /admin/connectors                        agency_admin: a new pending version
    GET  /admin/connectors                        agency_admin, operator
    GET  /admin/connectors/{name}                 agency_admin, operator (with this replica's
                                                  calls to the source: last hour, since start)
    GET  /admin/connectors/{name}/versions        agency_admin, operator
    POST /admin/connectors/{name}/versions/{v}/approve   platform operator, not the submitter
    POST /admin/connectors/{name}/versions/{v}/reject    platform operator
    POST /admin/connectors/{name}/versions/{v}/dry-run   platform operator, admin of its org
    POST /admin/connectors/{name}/rollback {"version": N}  admin of its org, operator
    POST /admin/connectors/{name}/disable         admin of its org, platform operator
    PUT  /admin/authority/{organisation}          platform operator
    GET  /admin/authority/{organisation}          platform operator, or staff of that org

A submission is `{"manifest": {...}}`, the manifest as JSON (a YAML file converts to it:
`gateway connectors submit FILE`). The organisation is the signed-in admin's `org`; a
name another organisation holds, or one recorded from the connectors folder, is 403.
A version serves once approved (four eyes: the approver is a platform operator who did
not submit it); the version approved before is then superseded. A rollback is a new
pending version with an earlier version's manifest, approved as any other.

Every change commits with its `admin` record; what is in use changes with a rise of
the generation, announced to every replica over Redis (`gw:connectors`) and served
here at once.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import Annotated, Any, cast

import structlog
from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors import (
    ManifestBase,
    ManifestError,
    check_kind,
    check_manifest,
    connector_kinds,
    parse_manifest,
)
from connectors._manifest import KINDS_OF_MANIFEST
from connectors._metrics import ANSWERED, RECENT_CALLS, SOURCE_CALLS
from connectors._registry import check_not_reserved
from gateway.admission import Identity
from gateway.errors import AuditUnavailable, Conflict, Forbidden, InvalidManifest, NotFound
from gateway.instants import format_instant
from gateway.records import Event, insert_events, pseudonym
from gateway.records._envelope import EnvelopeBody
from gateway.state import GatewayState, State
from gateway.storage import (
    API_ORIGIN,
    ConnectorVersion,
    add_connector_version,
    approve_connector_version,
    disable_connector,
    get_authority,
    get_connector,
    get_connector_version,
    list_connector_versions,
    list_connectors,
    notify_connectors_changed,
    reject_connector_version,
    set_authority,
    set_dry_run,
    stored_secrets,
)
from gateway.web._admin_routes import is_platform_operator, require_platform_operator
from gateway.web._connector_authority import check_authority
from gateway.web._connector_dry_run import build_failure, dry_run, summary
from gateway.web._signin import require_role
from keys import KeyRingError, SecretSealError
from schema import connector_fields

__all__ = [
    "approve_version",
    "authority_view",
    "connector_detail",
    "connector_event",
    "connector_listing",
    "connector_router",
    "disable_in_use",
    "dry_run_version",
    "pending_versions",
    "reject_version",
    "rollback_version",
    "submit_version",
]

log = structlog.get_logger(__name__)

_NOT_RECORDED = "The change could not be recorded, so it was not made."
_NAME = r"[a-z0-9][a-z0-9-]{1,39}"
_ORG = r"VN/GOV/[A-Za-z0-9][A-Za-z0-9/-]{0,200}"
_ADMIN, _OPERATOR = "agency_admin", "operator"

StaffIdentity = Annotated[Identity, Depends(require_role(_ADMIN, _OPERATOR))]
AgencyAdmin = Annotated[Identity, Depends(require_role(_ADMIN))]
Operator = Annotated[Identity, Depends(require_role(_OPERATOR))]
ConnectorName = Annotated[str, Path(pattern=f"^{_NAME}$", max_length=40)]
VersionNumber = Annotated[int, Path(ge=1, le=1_000_000)]


class Submission(BaseModel):
    """A manifest to register, as JSON (the same keys as a YAML manifest file)."""

    model_config = ConfigDict(extra="forbid")
    manifest: dict[str, Any] = Field(description="The connector manifest.")


class Rollback(BaseModel):
    """Which earlier version's manifest to submit again."""

    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, le=1_000_000)


class AuthorityBody(BaseModel):
    """What an organisation's connectors may serve and reach."""

    model_config = ConfigDict(extra="forbid")
    fields: list[Annotated[str, Field(pattern=r"^[A-Z][A-Za-z0-9]*\.([a-z][A-Za-z0-9]*|\*)$")]] = (
        Field(max_length=1000, description="Canonical top-level fields: `Kind.field` or `Kind.*`.")
    )
    endpoints: list[Annotated[str, Field(min_length=1, max_length=1000)]] = Field(
        max_length=200,
        description="Hosts (`api.example.vn`), `host:port`, or `sqlite:///<absolute path>`.",
    )


class DryRunBody(BaseModel):
    """The sample to ask the source for; it never appears in the report."""

    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_./-]+$")
    entity: str | None = Field(default=None, max_length=64, pattern=r"^[A-Z][A-Za-z0-9]*$")


# -- who may do what ---------------------------------------------------------------------


def _own_org(identity: Identity) -> str:
    if identity.org is None or re.fullmatch(_ORG, identity.org) is None:
        raise Forbidden("Staff act for an organisation: this sign-in names none (org VN/GOV/...).")
    return identity.org


def _may_see(state: GatewayState, identity: Identity, organisation: str | None) -> None:
    if is_platform_operator(state, identity):
        return
    if organisation is None or organisation != _own_org(identity):
        raise Forbidden("This connector is not of your organisation.", organisation=identity.org)


def _may_change(
    state: GatewayState, identity: Identity, organisation: str | None, *, operators: bool
) -> None:
    """An agency admin of the connector's organisation, or a platform operator (or,
    with `operators`, an operator of that organisation)."""
    if is_platform_operator(state, identity):
        return
    allowed = {_ADMIN, _OPERATOR} if operators else {_ADMIN}
    if organisation is not None and identity.org == organisation and identity.roles & allowed:
        return
    raise Forbidden("This connector is not of your organisation.", organisation=identity.org)


# -- manifests ---------------------------------------------------------------------------


def _invalid(name: str, error: ValidationError) -> InvalidManifest:
    first = error.errors()[0]
    loc = list(first["loc"])
    if first["type"] == "unknown_kind":
        loc = ["kind", *loc]
    where = ".".join(
        str(p) for p in loc if p not in KINDS_OF_MANIFEST and not str(p).startswith("function-")
    )
    where = where or "(top)"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return InvalidManifest(f"manifest {name!r}: {where}: {first['msg']}{more}", field=where)


def _from_manifest_error(error: ManifestError) -> InvalidManifest:
    message = str(error)
    _, _, rest = message.partition(": ")
    field = rest.split(": ", 1)[0] if rest else "(top)"
    return InvalidManifest(message, field=field)


def _body(data: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest as kept: top-level `x-` keys (the author's) left out, as from a file."""
    return {str(k): v for k, v in data.items() if not str(k).startswith("x-")}


def _parse(data: Mapping[str, Any], state: GatewayState) -> ManifestBase:
    """The manifest, checked as start-up checks a file; `InvalidManifest` naming the field."""
    name = str(data.get("name", "?"))[:40]
    body = _body(data)
    try:
        manifest = parse_manifest(body)
    except ValidationError as error:
        raise _invalid(name, error) from None
    try:
        check_kind(manifest, connector_kinds())
        check_manifest(manifest, connector_fields())
        check_not_reserved(manifest, [state.settings.database_url.get_secret_value()])
    except ManifestError as error:
        raise _from_manifest_error(error) from None
    return manifest


# -- records -----------------------------------------------------------------------------


def connector_event(
    *,
    action: str,
    name: str | None,
    version: int | None,
    organisation: str | None,
    operator: str,
    operator_org: str | None,
    pseudonym_key: bytes,
    policy_version: str,
    request_id: str = "",
    **more: Any,
) -> Event:
    """The `admin` record of a change to a connector or an organisation's authority
    (the staff member's id only in its personal part)."""
    envelope = {
        "action": action,
        **({} if name is None else {"connector": name}),
        "connectorOrg": organisation,
        "operator": pseudonym(pseudonym_key, operator),
        "operatorOrg": operator_org,
        **({} if version is None else {"connectorVersion": version}),
        **more,
    }
    return Event(
        type="admin",
        request_id=request_id,
        outcome=action,
        policy_version=policy_version,
        envelope=cast(EnvelopeBody, envelope),
        personal={"operator": operator},
    )


async def _record(
    conn: AsyncConnection,
    request: Request,
    state: GatewayState,
    identity: Identity,
    action: str,
    name: str | None,
    version: int | None,
    organisation: str | None,
    **more: Any,
) -> None:
    """Write the `admin` record of a change in the change's transaction."""
    event = connector_event(
        action=action,
        name=name,
        version=version,
        organisation=organisation,
        operator=identity.subject,
        operator_org=identity.org,
        pseudonym_key=state.pseudonym_key,
        policy_version=state.catalogue.version,
        request_id=getattr(request.state, "request_id", None) or "",
        **more,
    )
    await insert_events(conn, [event])


async def _changed(state: GatewayState, generation: int | None) -> None:
    """Tell every replica, and serve the change here at once."""
    if generation is None:
        return
    await notify_connectors_changed(state.redis, generation)
    live = getattr(state, "live", None)
    reload = getattr(live, "reload", None)
    if reload is not None:
        try:
            await reload()
        except Exception as exc:  # committed: the next poll retries
            log.warning("connectors_reload_failed", error=type(exc).__name__)


def _version_view(v: ConnectorVersion) -> dict[str, Any]:
    return {
        "version": v.version,
        "organisation": v.organisation,
        "status": v.status,
        "manifestSha256": v.manifest_sha256,
        "submittedBy": v.submitted_by,
        "submittedAt": format_instant(v.submitted_at),
        "approvedBy": v.approved_by,
        "approvedAt": None if v.approved_at is None else format_instant(v.approved_at),
        "lastDryRun": v.last_dry_run,
    }


async def _version_or_404(conn: AsyncConnection, name: str, version: int) -> ConnectorVersion:
    found = await get_connector_version(conn, name, version)
    if found is None:
        raise NotFound("No such version of this connector.", kind="ConnectorVersion")
    return found


async def _organisation_of(conn: AsyncConnection, name: str) -> str | None:
    """The organisation holding `name`: of its row, else of its versions; `None`: free."""
    info = await get_connector(conn, name)
    if info is not None and info.organisation is not None:
        return info.organisation
    versions = await list_connector_versions(conn, name)
    return versions[-1].organisation if versions else None


async def _submit(
    request: Request,
    state: GatewayState,
    identity: Identity,
    data: Mapping[str, Any],
    *,
    organisation: str,
    action: str,
    **more: Any,
) -> dict[str, Any]:
    manifest = _parse(data, state)
    try:
        async with state.engine.begin() as conn:
            info = await get_connector(conn, manifest.name)
            if info is not None and info.origin != API_ORIGIN and info.organisation is None:
                raise Forbidden(
                    "This connector is recorded from the connectors folder: change its file.",
                    organisation=identity.org,
                )
            holder = await _organisation_of(conn, manifest.name)
            if holder is not None and holder != organisation:
                raise Forbidden("This connector is held by another organisation.")
            stored = _body(data)
            await check_authority(
                conn,
                manifest,
                stored,
                organisation=organisation,
                allow_loopback=state.settings.connectors_allow_loopback,
            )
            version = await add_connector_version(
                conn,
                name=manifest.name,
                organisation=organisation,
                manifest=stored,
                submitted_by=identity.subject,
            )
            await _record(
                conn,
                request,
                state,
                identity,
                action,
                manifest.name,
                version,
                organisation,
                **more,
            )
    except IntegrityError as exc:
        raise Conflict("Another version was submitted at the same time: try again.") from exc
    except SQLAlchemyError as exc:
        raise AuditUnavailable(_NOT_RECORDED) from exc
    return {"name": manifest.name, "version": version, "status": "pending"}


# -- what the routes and the consoles do ---------------------------------------------------


async def submit_version(
    request: Request, state: GatewayState, identity: Identity, manifest: Mapping[str, Any]
) -> dict[str, Any]:
    """An agency admin submits a manifest of their organisation: a new pending version."""
    organisation = _own_org(identity)
    return await _submit(
        request,
        state,
        identity,
        manifest,
        organisation=organisation,
        action="connector_submitted",
    )


async def connector_listing(state: GatewayState, identity: Identity) -> list[dict[str, Any]]:
    """The connectors this member of staff may see (every one for the platform's operators)."""
    rows = await list_connectors(state.engine)
    if not is_platform_operator(state, identity):
        own = _own_org(identity)
        rows = [r for r in rows if r["organisation"] == own]
    return [
        {
            "name": r["name"],
            "kind": r["kind"],
            "status": r["status"],
            "version": r["version"],
            "organisation": r["organisation"],
            "origin": r["origin"],
            "pending": r["pending"],
            "updatedAt": None if r["updated_at"] is None else format_instant(r["updated_at"]),
        }
        for r in rows
    ]


async def connector_detail(state: GatewayState, identity: Identity, name: str) -> dict[str, Any]:
    """One connector: status, versions, last dry run, breaker, this replica's calls."""
    async with state.engine.connect() as conn:
        info = await get_connector(conn, name)
        versions = await list_connector_versions(conn, name)
    if info is None and not versions:
        _may_see(state, identity, None)
        raise NotFound("No connector has this name.", kind="Connector")
    organisation = (
        info.organisation
        if info and info.organisation
        else (versions[-1].organisation if versions else None)
    )
    _may_see(state, identity, organisation)
    registry = getattr(state, "registry", None)
    breakers = registry.breakers() if registry is not None else {}
    calls, errors = _calls_of(name)
    recent, failed = RECENT_CALLS.last(name)
    return {
        "name": name,
        "organisation": organisation,
        "status": info.status if info is not None else "pending",
        "activeVersion": info.version if info is not None and info.status == "active" else None,
        "origin": info.origin if info is not None else API_ORIGIN,
        "breaker": breakers.get(name),
        # This replica's (the database keeps no count of calls): in the last hour,
        # and since it started.
        "calls": {
            "lastHour": recent,
            "errorsLastHour": failed,
            "sinceStart": calls,
            "errors": errors,
        },
        "versions": [_version_view(v) for v in versions],
        "lastDryRun": next(
            (v.last_dry_run for v in reversed(versions) if v.last_dry_run is not None), None
        ),
    }


async def pending_versions(state: GatewayState, identity: Identity) -> list[dict[str, Any]]:
    """Versions awaiting approval that this member of staff may see, oldest first."""
    waiting: list[dict[str, Any]] = []
    for row in await connector_listing(state, identity):
        if not row["pending"]:
            continue
        async with state.engine.connect() as conn:
            found = await list_connector_versions(conn, row["name"])
        waiting.extend(
            {"name": row["name"], "kind": row["kind"], **_version_view(v)}
            for v in found
            if v.status == "pending"
        )
    return sorted(waiting, key=lambda v: v["submittedAt"])


async def approve_version(
    request: Request, state: GatewayState, identity: Identity, name: str, version: int
) -> dict[str, Any]:
    """A platform operator who did not submit it approves a pending version: it serves."""
    require_platform_operator(state, identity)
    async with state.engine.connect() as conn:
        waiting = await _version_or_404(conn, name, version)
    if waiting.status == "pending" and waiting.submitted_by != identity.subject:
        await _must_build(state, waiting)
    generation = None
    try:
        async with state.engine.begin() as conn:
            found = await _version_or_404(conn, name, version)
            if found.submitted_by == identity.subject:
                raise Forbidden(
                    "Four eyes: who submitted a version cannot approve it.",
                    reason="submitter",
                )
            if found.status != "pending":
                raise Conflict(f"This version is {found.status}, not pending.")
            manifest = _parse(found.manifest, state)
            await check_authority(
                conn,
                manifest,
                found.manifest,
                organisation=found.organisation,
                allow_loopback=state.settings.connectors_allow_loopback,
            )
            generation = await approve_connector_version(
                conn, name=name, version=version, approved_by=identity.subject
            )
            await _record(
                conn,
                request,
                state,
                identity,
                "connector_approved",
                name,
                version,
                found.organisation,
            )
    except SQLAlchemyError as exc:
        raise AuditUnavailable(_NOT_RECORDED) from exc
    await _changed(state, generation)
    return {"name": name, "version": version, "status": "approved", "generation": generation}


async def _secrets_of(state: GatewayState, name: str) -> dict[tuple[str, str], str]:
    """The stored secrets of connector `name`, opened (409 if they cannot be)."""
    try:
        every = await stored_secrets(state.engine, state.settings.keys_dir)
    except (KeyRingError, SecretSealError) as exc:
        raise Conflict(f"The connector's stored secrets cannot be opened: {exc}") from None
    return {k: v for k, v in every.items() if k[0] == name}


async def _must_build(state: GatewayState, found: ConnectorVersion) -> None:
    """Refuse (422 `INVALID_MANIFEST`) a version whose connector would not build: approved,
    it would be recorded in use while every replica kept serving the one before."""
    failure = await build_failure(
        found.manifest,
        reserved=[state.settings.database_url.get_secret_value()],
        secrets=await _secrets_of(state, found.connector),
    )
    if failure is not None:
        raise InvalidManifest(
            f"This version does not build against its source, so it was not approved: {failure}",
            field="manifest",
        )


async def reject_version(
    request: Request, state: GatewayState, identity: Identity, name: str, version: int
) -> dict[str, Any]:
    """A platform operator rejects a pending version."""
    require_platform_operator(state, identity)
    try:
        async with state.engine.begin() as conn:
            found = await _version_or_404(conn, name, version)
            if not await reject_connector_version(conn, name=name, version=version):
                raise Conflict(f"This version is {found.status}, not pending.")
            await _record(
                conn,
                request,
                state,
                identity,
                "connector_rejected",
                name,
                version,
                found.organisation,
            )
    except SQLAlchemyError as exc:
        raise AuditUnavailable(_NOT_RECORDED) from exc
    return {"name": name, "version": version, "status": "rejected"}


async def dry_run_version(
    request: Request,
    state: GatewayState,
    identity: Identity,
    name: str,
    version: int,
    *,
    key: str,
    entity: str | None = None,
) -> dict[str, Any]:
    """Ask the source of one version for one sample, as that version would; the report.

    A platform operator may run any version's, an agency admin their organisation's.
    The sample never appears in the report, and the run is recorded.
    """
    async with state.engine.connect() as conn:
        # Who may, first: another organisation's admin learns nothing of its versions.
        _may_change(state, identity, await _organisation_of(conn, name), operators=False)
        found = await _version_or_404(conn, name, version)
    manifest = _parse(found.manifest, state)
    if entity is not None and entity not in manifest.entities:
        raise InvalidManifest(f"The manifest provides no entity kind {entity!r}.", field="entity")
    async with state.engine.connect() as conn:
        await check_authority(
            conn,
            manifest,
            found.manifest,
            organisation=found.organisation,
            allow_loopback=state.settings.connectors_allow_loopback,
        )
    secrets = await _secrets_of(state, name)
    ran_at = datetime.datetime.now(datetime.UTC)
    report = await dry_run(
        found.manifest,
        key=key,
        entity=entity,
        name=name,
        version=version,
        officer=identity.subject,
        reserved=[state.settings.database_url.get_secret_value()],
        secrets=secrets,
    )
    report = {"ranAt": format_instant(ran_at), "version": version, **report}
    try:
        async with state.engine.begin() as conn:
            await set_dry_run(conn, name=name, version=version, report=report)
            await _record(
                conn,
                request,
                state,
                identity,
                "connector_dry_run",
                name,
                version,
                found.organisation,
                outcomes=summary(report),
            )
    except SQLAlchemyError as exc:
        raise AuditUnavailable(_NOT_RECORDED) from exc
    return {"name": name, **report}


async def rollback_version(
    request: Request, state: GatewayState, identity: Identity, name: str, version: int
) -> dict[str, Any]:
    """Submit an earlier version's manifest again: a new pending version, approved as any
    other (an admin of the connector's organisation, or an operator)."""
    async with state.engine.connect() as conn:
        organisation = await _organisation_of(conn, name)
        _may_change(state, identity, organisation, operators=True)
        found = await _version_or_404(conn, name, version)
    return await _submit(
        request,
        state,
        identity,
        found.manifest,
        organisation=found.organisation,
        action="connector_rollback_submitted",
        rollbackTo=version,
    )


async def disable_in_use(
    request: Request, state: GatewayState, identity: Identity, name: str
) -> dict[str, Any]:
    """Stop serving an active connector (an admin of its organisation, or a platform
    operator): its fields have no source until another version is approved."""
    generation = None
    try:
        async with state.engine.begin() as conn:
            info = await get_connector(conn, name)
            organisation = await _organisation_of(conn, name)
            _may_change(state, identity, organisation, operators=False)
            if info is None:
                raise NotFound("No connector has this name.", kind="Connector")
            if info.origin != API_ORIGIN and info.organisation is None:
                raise Conflict(
                    "This connector is recorded from the connectors folder: remove its file."
                )
            generation = await disable_connector(conn, name=name)
            if generation is None:
                raise Conflict(f"This connector is {info.status}, not active.")
            await _record(
                conn,
                request,
                state,
                identity,
                "connector_disabled",
                name,
                info.version,
                organisation,
            )
    except SQLAlchemyError as exc:
        raise AuditUnavailable(_NOT_RECORDED) from exc
    await _changed(state, generation)
    return {"name": name, "status": "disabled", "generation": generation}


async def authority_view(
    state: GatewayState, identity: Identity, organisation: str
) -> dict[str, Any]:
    """What an organisation's connectors may serve and reach (a platform operator, or
    staff of that organisation); `NotFound` when none is set."""
    if not is_platform_operator(state, identity) and identity.org != organisation:
        raise Forbidden("This is not your organisation.", organisation=identity.org)
    return await _authority_view(state, organisation)


def connector_router() -> APIRouter:
    """Routes under `/admin/connectors` and `/admin/authority`."""
    router = APIRouter(prefix="/admin", tags=["connectors"])

    @router.post("/connectors", status_code=201)
    async def submit(
        request: Request, state: State, identity: AgencyAdmin, body: Submission
    ) -> dict[str, Any]:
        return await submit_version(request, state, identity, body.manifest)

    @router.get("/connectors")
    async def listing(state: State, identity: StaffIdentity) -> dict[str, Any]:
        return {"connectors": await connector_listing(state, identity)}

    @router.get("/connectors/{name}")
    async def detail(state: State, identity: StaffIdentity, name: ConnectorName) -> dict[str, Any]:
        return await connector_detail(state, identity, name)

    @router.get("/connectors/{name}/versions")
    async def versions(
        state: State, identity: StaffIdentity, name: ConnectorName
    ) -> dict[str, Any]:
        async with state.engine.connect() as conn:
            organisation = await _organisation_of(conn, name)
            found = await list_connector_versions(conn, name)
        _may_see(state, identity, organisation)
        if not found:
            raise NotFound("No version of this connector was submitted.", kind="Connector")
        return {"name": name, "versions": [_version_view(v) for v in found]}

    @router.post("/connectors/{name}/versions/{version}/approve")
    async def approve(
        request: Request,
        state: State,
        identity: Operator,
        name: ConnectorName,
        version: VersionNumber,
    ) -> dict[str, Any]:
        return await approve_version(request, state, identity, name, version)

    @router.post("/connectors/{name}/versions/{version}/reject")
    async def reject(
        request: Request,
        state: State,
        identity: Operator,
        name: ConnectorName,
        version: VersionNumber,
    ) -> dict[str, Any]:
        return await reject_version(request, state, identity, name, version)

    @router.post("/connectors/{name}/rollback", status_code=201)
    async def rollback(
        request: Request,
        state: State,
        identity: StaffIdentity,
        name: ConnectorName,
        body: Rollback,
    ) -> dict[str, Any]:
        return await rollback_version(request, state, identity, name, body.version)

    @router.post("/connectors/{name}/disable")
    async def disable(
        request: Request, state: State, identity: StaffIdentity, name: ConnectorName
    ) -> dict[str, Any]:
        return await disable_in_use(request, state, identity, name)

    @router.post("/connectors/{name}/versions/{version}/dry-run")
    async def dry(
        request: Request,
        state: State,
        identity: StaffIdentity,
        name: ConnectorName,
        version: VersionNumber,
        body: DryRunBody,
    ) -> dict[str, Any]:
        return await dry_run_version(
            request, state, identity, name, version, key=body.key, entity=body.entity
        )

    @router.put("/authority/{organisation:path}")
    async def put_authority(
        request: Request,
        state: State,
        identity: Operator,
        organisation: str,
        body: AuthorityBody,
    ) -> dict[str, Any]:
        require_platform_operator(state, identity)
        if re.fullmatch(_ORG, organisation) is None:
            raise InvalidManifest("An organisation is VN/GOV/<org>.", field="organisation")
        try:
            async with state.engine.begin() as conn:
                await set_authority(
                    conn,
                    organisation=organisation,
                    fields=body.fields,
                    endpoints=body.endpoints,
                    updated_by=identity.subject,
                )
                await _record(
                    conn,
                    request,
                    state,
                    identity,
                    "authority_set",
                    None,
                    None,
                    organisation,
                    fields=sorted(set(body.fields)),
                    endpoints=sorted(set(body.endpoints)),
                )
        except SQLAlchemyError as exc:
            raise AuditUnavailable(_NOT_RECORDED) from exc
        return await _authority_view(state, organisation)

    @router.get("/authority/{organisation:path}")
    async def get_authority_route(
        state: State, identity: StaffIdentity, organisation: str
    ) -> dict[str, Any]:
        return await authority_view(state, identity, organisation)

    return router


def _calls_of(name: str) -> tuple[int, int]:
    """Calls this process made to the connector's source, and how many failed."""
    calls = errors = 0
    for metric in SOURCE_CALLS.collect():
        for sample in metric.samples:
            if not sample.name.endswith("_total") or sample.labels.get("connector") != name:
                continue
            calls += int(sample.value)
            if sample.labels.get("outcome") not in ANSWERED:
                errors += int(sample.value)
    return calls, errors


async def _authority_view(state: GatewayState, organisation: str) -> dict[str, Any]:
    found = await get_authority(state.engine, organisation)
    if found is None:
        raise NotFound("No authority is set for this organisation.", kind="Authority")
    return {
        "organisation": found.organisation,
        "fields": list(found.fields),
        "endpoints": list(found.endpoints),
        "updatedBy": found.updated_by,
        "updatedAt": format_instant(found.updated_at),
    }
