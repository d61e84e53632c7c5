"""Changes to an agency's client systems: submitted by its admin, approved by an operator.

An agency admin (`agency_admin`, of organisation `VN/GOV/<org>`) submits changes to
the case-handling systems under it (`VN/GOV/<org>/<system>`):

- `register`: a new system, with its name, its agency kinds and optionally the JWKS
  URL it publishes its keys at;
- `add_key`: a public key (Ed25519 or P-256 JWK), for rotation next to the old one;
- `revoke_key`: a key to refuse from now on (one of a published set too);
- `jwks_url`: the URL its keys are published at (or none: registered keys only).

A change waits, `pending`, until a platform operator who did not submit it approves
(it is applied, in the same transaction, as the registry would: the client or key is
written, its `admin` record too, the registry's generation rises, so it takes effect
on the next request here and within `GATEWAY_CLIENTS_POLL_SECONDS` on other replicas)
or rejects it (with a reason). Each submission, approval and rejection is an `admin`
record. Nothing is checked only at submission: what could have changed meanwhile (an
id taken, a key's kid, the agency's endpoints) is checked again at approval.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.admission._clients import (
    _changed,
    _forget_here,
    check_client,
    check_client_id,
    check_kid,
    checked_key,
    insert_client,
    insert_key,
    revoke,
)
from gateway.errors import AuditUnavailable, Conflict, Forbidden, InvalidArgument, NotFound
from gateway.instants import utc_now
from gateway.records import AdminRecorder, insert_events
from gateway.storage import CLIENT_CHANGE_ACTIONS, client_changes, client_keys, clients

__all__ = ["ClientChange", "ClientChanges", "UrlCheck"]

_NOT_RECORDED = "The change could not be recorded, so it was not made."

UrlCheck = Callable[[AsyncConnection, str, str], Awaitable[None]]
"""Refuse (raise) a JWKS URL for an organisation: (connection, organisation, url)."""

_APPLIED = {
    "register": "client_registered",
    "add_key": "key_added",
    "revoke_key": "key_revoked",
    "jwks_url": "client_jwks_url_set",
}


@dataclass(frozen=True, slots=True)
class ClientChange:
    """A submitted change and where it stands."""

    id: str
    client_id: str
    organisation: str
    action: str
    detail: Mapping[str, Any]
    status: str
    submitted_by: str
    submitted_at: datetime.datetime
    decided_by: str | None
    decided_at: datetime.datetime | None
    reason: str | None

    def public(self) -> dict[str, Any]:
        """The change as the API shows it (staff ids included: staff see staff)."""
        return {
            "id": self.id,
            "client": self.client_id,
            "organisation": self.organisation,
            "action": self.action,
            "detail": dict(self.detail),
            "status": self.status,
            "submittedBy": self.submitted_by,
            "submittedAt": self.submitted_at.isoformat(),
            "decidedBy": self.decided_by,
            "decidedAt": None if self.decided_at is None else self.decided_at.isoformat(),
            "reason": self.reason,
        }


def _change(row: Any) -> ClientChange:
    return ClientChange(
        row.id,
        row.client_id,
        row.organisation,
        row.action,
        dict(row.detail),
        row.status,
        row.submitted_by,
        row.submitted_at,
        row.decided_by,
        row.decided_at,
        row.reason,
    )


def _detail(
    action: str, client_id: str, organisation: str, given: Mapping[str, Any]
) -> dict[str, Any]:
    """The change's detail, checked: what it will apply (public data only)."""
    if action not in CLIENT_CHANGE_ACTIONS:
        raise InvalidArgument(
            f"An action is one of {', '.join(CLIENT_CHANGE_ACTIONS)}.", argument="action"
        )
    check_client_id(client_id)
    if not client_id.startswith(f"{organisation}/"):
        raise Forbidden(
            f"A system is registered under its agency: its id is {organisation}/<system>.",
            organisation=organisation,
        )
    if action == "register":
        name = given.get("name")
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200:
            raise InvalidArgument("A system has a name (1-200 characters).", argument="name")
        kinds = check_client(client_id, given.get("agencyKinds") or [])
        detail: dict[str, Any] = {"name": name.strip(), "agencyKinds": kinds}
        if given.get("jwksUrl") is not None:
            detail["jwksUrl"] = _url(given["jwksUrl"])
        return detail
    if action == "add_key":
        jwk = given.get("jwk")
        if not isinstance(jwk, dict):
            raise InvalidArgument("An added key is a public JWK (`jwk`).", argument="jwk")
        public, alg, kid = checked_key(jwk, given.get("kid"))
        return {"kid": kid, "alg": alg, "jwk": public}
    if action == "revoke_key":
        revoked = given.get("kid")
        if not isinstance(revoked, str) or not revoked:
            raise InvalidArgument("Name the key to revoke (`kid`).", argument="kid")
        check_kid(revoked)
        return {"kid": revoked}
    url = given.get("jwksUrl")
    return {"jwksUrl": None if url is None else _url(url)}


def _url(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise InvalidArgument("A JWKS URL is an https:// URL.", argument="jwksUrl")
    if len(value) > 2000:
        raise InvalidArgument("A JWKS URL is at most 2,000 characters.", argument="jwksUrl")
    return value


class ClientChanges:
    """Submitted changes to agencies' client systems, in the gateway's database."""

    def __init__(self, engine: AsyncEngine, *, check_url: UrlCheck) -> None:
        self._engine = engine
        self._check_url = check_url

    async def submit(
        self,
        *,
        organisation: str,
        client_id: str,
        action: str,
        given: Mapping[str, Any],
        submitted_by: str,
        record: AdminRecorder,
    ) -> ClientChange:
        """A pending change, with its `client_change_submitted` record."""
        detail = _detail(action, client_id, organisation, given)
        try:
            async with self._engine.begin() as conn:
                await self._applicable(conn, client_id, action, detail, organisation)
                change_id = uuid.uuid4().hex
                row = {
                    "id": change_id,
                    "client_id": client_id,
                    "organisation": organisation,
                    "action": action,
                    "detail": detail,
                    "status": "pending",
                    "submitted_by": submitted_by,
                    "submitted_at": utc_now(),
                }
                await conn.execute(client_changes.insert().values(**row))
                await insert_events(
                    conn, [record("client_change_submitted", client_id, detail.get("kid"))]
                )
                return await _get(conn, change_id)
        except SQLAlchemyError as exc:
            raise AuditUnavailable(_NOT_RECORDED) from exc

    async def list(
        self, *, organisation: str | None = None, status: str | None = None
    ) -> list[ClientChange]:
        """Changes, newest first: of one organisation (`None`: every one), of one status."""
        query = sa.select(client_changes).order_by(client_changes.c.submitted_at.desc())
        if organisation is not None:
            query = query.where(client_changes.c.organisation == organisation)
        if status is not None:
            query = query.where(client_changes.c.status == status)
        async with self._engine.connect() as conn:
            return [_change(row) for row in await conn.execute(query.limit(500))]

    async def get(self, change_id: str) -> ClientChange:
        """One change, or `NotFound`."""
        async with self._engine.connect() as conn:
            return await _get(conn, change_id)

    async def approve(
        self, change_id: str, *, operator: str, record: AdminRecorder
    ) -> ClientChange:
        """Apply a pending change another person submitted (see the module's text)."""
        try:
            async with self._engine.begin() as conn:
                found = await self._decide(conn, change_id, operator, "approved", None)
                detail = found.detail
                await self._applicable(
                    conn, found.client_id, found.action, detail, found.organisation
                )
                await self._apply(conn, found)
                await insert_events(
                    conn, [record(_APPLIED[found.action], found.client_id, detail.get("kid"))]
                )
                await _changed(conn)
                decided = await _get(conn, change_id)
        except SQLAlchemyError as exc:
            raise AuditUnavailable(_NOT_RECORDED) from exc
        finally:
            _forget_here()
        return decided

    async def reject(
        self, change_id: str, *, operator: str, reason: str, record: AdminRecorder
    ) -> ClientChange:
        """Reject a pending change, saying why; nothing is applied."""
        if not reason.strip():
            raise InvalidArgument("Say why the change is rejected (`reason`).", argument="reason")
        try:
            async with self._engine.begin() as conn:
                found = await self._decide(conn, change_id, operator, "rejected", reason.strip())
                await insert_events(
                    conn,
                    [record("client_change_rejected", found.client_id, found.detail.get("kid"))],
                )
                decided = await _get(conn, change_id)
        except SQLAlchemyError as exc:
            raise AuditUnavailable(_NOT_RECORDED) from exc
        return decided

    async def _decide(
        self, conn: AsyncConnection, change_id: str, operator: str, status: str, reason: str | None
    ) -> ClientChange:
        found = await _get(conn, change_id)
        if status == "approved" and found.submitted_by == operator:
            raise Forbidden(
                "Four eyes: who submitted a change cannot approve it.", reason="submitter"
            )
        done = await conn.execute(
            client_changes.update()
            .where(client_changes.c.id == change_id, client_changes.c.status == "pending")
            .values(status=status, decided_by=operator, decided_at=utc_now(), reason=reason)
        )
        if done.rowcount != 1:
            raise Conflict(f"This change is {found.status}, not pending.", status=found.status)
        return found

    async def _applicable(
        self,
        conn: AsyncConnection,
        client_id: str,
        action: str,
        detail: Mapping[str, Any],
        organisation: str,
    ) -> None:
        """Refuse a change that cannot apply now (at submission and again at approval)."""
        existing = (await conn.execute(sa.select(clients).where(clients.c.id == client_id))).first()
        if action == "register":
            if existing is not None:
                raise Conflict("A client with this id is already registered.")
        elif existing is None:
            raise NotFound("No client has this id.", kind="Client")
        elif existing.organisation != organisation:
            raise Forbidden("This client is not of your organisation.")
        url = detail.get("jwksUrl")
        if url is not None:
            await self._check_url(conn, organisation, url)
        if action == "add_key":
            taken = await conn.scalar(
                sa.select(client_keys.c.kid).where(
                    client_keys.c.client_id == client_id, client_keys.c.kid == detail["kid"]
                )
            )
            if taken is not None:
                raise Conflict("This client already has a key with this kid.", kid=detail["kid"])
        if action == "revoke_key" and existing is not None and existing.jwks_url is None:
            status = await conn.scalar(
                sa.select(client_keys.c.status).where(
                    client_keys.c.client_id == client_id, client_keys.c.kid == detail["kid"]
                )
            )
            if status is None:
                raise NotFound("This client has no key with this kid.", kind="ClientKey")

    async def _apply(self, conn: AsyncConnection, change: ClientChange) -> None:
        detail = change.detail
        if change.action == "register":
            await insert_client(
                conn,
                change.client_id,
                detail["name"],
                change.organisation,
                list(detail["agencyKinds"]),
                jwks_url=detail.get("jwksUrl"),
            )
        elif change.action == "add_key":
            await insert_key(conn, change.client_id, detail["kid"], detail["alg"], detail["jwk"])
        elif change.action == "revoke_key":
            await revoke(conn, change.client_id, detail["kid"])
        else:
            await conn.execute(
                clients.update()
                .where(clients.c.id == change.client_id)
                .values(jwks_url=detail.get("jwksUrl"), updated_at=utc_now())
            )


async def _get(conn: AsyncConnection, change_id: str) -> ClientChange:
    row = (
        await conn.execute(sa.select(client_changes).where(client_changes.c.id == change_id))
    ).first()
    if row is None:
        raise NotFound("No change has this id.", kind="ClientChange")
    return _change(row)
