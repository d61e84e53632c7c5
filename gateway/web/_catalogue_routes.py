"""The catalogue as data: policy editors propose, operators approve, the gateway follows.

    POST /admin/catalogue/proposals              policy_editor: {"procedure": {...}} (a
                                                 new or replaced entry) or {"remove":
                                                 "<code>"}, on the version in effect (or
                                                 `base`)
    GET  /admin/catalogue/versions[?status=]     policy_editor, operator, auditor
    GET  /admin/catalogue/versions/{version}     the same, with every entry
    POST /admin/catalogue/versions/{v}/approve   platform operator, not the proposer:
                                                 {"effectiveFrom": RFC 3339} (now if absent)
    POST /admin/catalogue/versions/{v}/reject    platform operator: {"reason": "..."}
    GET  /audit/catalogue/{version}              auditor: the catalogue a record's
                                                 `policyVersion` names, whole

An entry is the JSON of a procedure file (`policies/catalogue/*.yaml`), checked as one
(`INVALID_ARGUMENT` naming the place). Every gateway reads which version is in effect
every `GATEWAY_CATALOGUE_POLL_SECONDS` and decides under it from the next request on
(`CatalogueSwitch`); a request admitted before keeps the version it was admitted under,
and its record names it. See `gateway.records._catalogue_versions`.
"""

from __future__ import annotations

import asyncio
import datetime
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from gateway.admission import Identity
from gateway.background import Background
from gateway.records import CatalogueVersions, StaffMember, catalogue_of
from gateway.state import GatewayState, State
from gateway.web._admin_routes import require_platform_operator
from gateway.web._signin import require_role
from policies import Catalogue

__all__ = ["CatalogueSwitch", "catalogue_router"]

log = structlog.get_logger(__name__)

_EDITOR, _OPERATOR, _AUDITOR = "policy_editor", "operator", "auditor"
Editor = Annotated[Identity, Depends(require_role(_EDITOR))]
Reader = Annotated[Identity, Depends(require_role(_EDITOR, _OPERATOR, _AUDITOR))]
Operator = Annotated[Identity, Depends(require_role(_OPERATOR))]
Auditor = Annotated[Identity, Depends(require_role(_AUDITOR))]
Version = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")]
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class Proposal(BaseModel):
    """One change of the catalogue: an entry added or replaced, or a code removed."""

    model_config = ConfigDict(extra="forbid")
    procedure: dict[str, Any] | None = Field(default=None, description="A procedure entry.")
    remove: str | None = Field(default=None, max_length=64, pattern=_CODE.pattern)
    base: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class Approval(BaseModel):
    """When an approved version takes effect."""

    model_config = ConfigDict(extra="forbid")
    effectiveFrom: datetime.datetime | None = None  # noqa: N815


class Rejection(BaseModel):
    """Why a version is rejected."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


def _versions(state: GatewayState) -> CatalogueVersions:
    from schema import canonical_fields

    return CatalogueVersions(
        state.engine, pseudonym_key=state.pseudonym_key, canonical=canonical_fields()
    )


def _staff(identity: Identity) -> StaffMember:
    return StaffMember(identity.subject, identity.org)


def catalogue_router() -> APIRouter:
    """Routes under `/admin/catalogue`, and the auditor's `/audit/catalogue/{version}`."""
    router = APIRouter(tags=["catalogue"])

    @router.post("/admin/catalogue/proposals", status_code=201)
    async def propose(body: Proposal, state: State, identity: Editor) -> dict[str, Any]:
        found = await _versions(state).propose(
            by=_staff(identity), procedure=body.procedure, remove=body.remove, base=body.base
        )
        return found.public()

    @router.get("/admin/catalogue/versions")
    async def listing(
        state: State,
        identity: Reader,
        status: Annotated[str | None, Query(pattern="^(proposed|approved|rejected)$")] = None,
    ) -> dict[str, Any]:
        found = await _versions(state).list(status=status)
        return {
            "inEffect": state.catalogue.version,
            "versions": [v.public() for v in found],
        }

    @router.get("/admin/catalogue/versions/{version}")
    async def one(version: Version, state: State, identity: Reader) -> dict[str, Any]:
        return (await _versions(state).get(version)).public(entries=True)

    @router.post("/admin/catalogue/versions/{version}/approve")
    async def approve(
        version: Version, state: State, identity: Operator, body: Approval | None = None
    ) -> dict[str, Any]:
        require_platform_operator(state, identity)
        when = body.effectiveFrom if body is not None else None
        found = await _versions(state).approve(version, by=_staff(identity), effective_from=when)
        return found.public()

    @router.post("/admin/catalogue/versions/{version}/reject")
    async def reject(
        version: Version, body: Rejection, state: State, identity: Operator
    ) -> dict[str, Any]:
        require_platform_operator(state, identity)
        found = await _versions(state).reject(version, by=_staff(identity), reason=body.reason)
        return found.public()

    @router.get("/audit/catalogue/{version}")
    async def audited(version: Version, state: State, identity: Auditor) -> dict[str, Any]:
        return (await _versions(state).get(version)).public(entries=True)

    return router


class CatalogueSwitch(Background):
    """Follows the version in effect: reads it every `poll_seconds`, and when another
    version has come into effect, builds its catalogue and hands it to `use`."""

    def __init__(
        self,
        versions: CatalogueVersions,
        *,
        current: Callable[[], Catalogue],
        use: Callable[[Catalogue], None],
        poll_seconds: float,
        canonical: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self._versions = versions
        self._current = current
        self._use = use
        self._poll = poll_seconds
        self._canonical = canonical

    async def follow(self) -> bool:
        """Switch now if another version is in effect; whether it switched."""
        version = await self._versions.effective_version()
        if version is None or version == self._current().version:
            return False
        found = await self._versions.get(version)
        catalogue = catalogue_of(found.entries, self._canonical)
        if catalogue.version != version:  # entries changed under their version: refused
            log.error("catalogue_version_mismatch", version=version)
            return False
        self._use(catalogue)
        log.info("catalogue_in_effect", policy_version=version)
        return True

    _name = "catalogue"

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._poll)
            try:
                await self.follow()
            except Exception as exc:  # tried again on the next turn
                log.error("catalogue_follow_failed", error=type(exc).__name__)
