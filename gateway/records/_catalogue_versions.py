"""The procedure catalogue as data: versions proposed, approved by another person, kept.

Procedures change with the law. A policy editor (`policy_editor`) proposes a change of
one procedure (a new or replaced entry, or one removed) on the version in effect; the
result is a whole new catalogue, kept under its `policy_version` (the SHA-256 of its
canonical entries, `policies.Catalogue.version`). It takes effect only once a platform
operator who did not propose it approves it, from the instant the approval names
(`effective_from`, now by default); a rejection says why. Every version is kept, so
the `policy_version` of every record names a catalogue an auditor can read whole.

The catalogue files remain the seed and the export format: a gateway that starts with
files no version holds records them as a version of their own (`proposed_by` `files`,
effective from then), as it records connector manifests. Which version is in effect at
an instant is the approved one with the latest `effective_from` not after it.

Each proposal, approval and rejection is an `admin` record naming the version and the
procedure, with the staff member's pseudonym.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.errors import AuditUnavailable, Conflict, Forbidden, InvalidArgument, NotFound
from gateway.instants import utc_now
from gateway.records._envelope import EnvelopeBody
from gateway.records._recorder import Event, insert_events, pseudonym
from gateway.storage import catalogue_versions
from policies import Catalogue, Procedure

__all__ = [
    "KEPT",
    "CatalogueVersion",
    "CatalogueVersions",
    "StaffMember",
    "catalogue_in_effect",
    "catalogue_of",
]

log = structlog.get_logger(__name__)

FILES = "files"
KEPT: frozenset[str] = frozenset({"LOCAL.citizen-self-service"})
"""Procedures the gateway itself runs (the citizen's own pages): never removed."""
_LATEST = datetime.datetime.max.replace(tzinfo=datetime.UTC)
_NOT_RECORDED = "The change could not be recorded, so it was not made."


@dataclass(frozen=True, slots=True)
class StaffMember:
    """Who acts: their id (kept in the record's personal part), organisation."""

    subject: str
    org: str | None


@dataclass(frozen=True, slots=True)
class CatalogueVersion:
    """A version of the catalogue and where it stands."""

    version: str
    entries: list[dict[str, Any]]
    parent: str | None
    change: Mapping[str, Any]
    status: str
    proposed_by: str
    proposed_at: datetime.datetime
    decided_by: str | None
    decided_at: datetime.datetime | None
    effective_from: datetime.datetime | None
    reason: str | None

    def public(self, *, entries: bool = False) -> dict[str, Any]:
        """The version as the API shows it (its entries only when asked)."""
        shown: dict[str, Any] = {
            "version": self.version,
            "parent": self.parent,
            "change": dict(self.change),
            "status": self.status,
            "proposedBy": self.proposed_by,
            "proposedAt": self.proposed_at.isoformat(),
            "decidedBy": self.decided_by,
            "decidedAt": None if self.decided_at is None else self.decided_at.isoformat(),
            "effectiveFrom": (
                None if self.effective_from is None else self.effective_from.isoformat()
            ),
            "reason": self.reason,
            "procedures": len(self.entries),
        }
        if entries:
            shown["entries"] = self.entries
        return shown


def _row(row: Any) -> CatalogueVersion:
    return CatalogueVersion(
        row.version,
        list(row.entries),
        row.parent,
        dict(row.change),
        row.status,
        row.proposed_by,
        row.proposed_at,
        row.decided_by,
        row.decided_at,
        row.effective_from,
        row.reason,
    )


def catalogue_of(
    entries: list[dict[str, Any]], canonical: Mapping[str, Mapping[str, Any]] | None = None
) -> Catalogue:
    """The catalogue of stored or proposed entries, each checked as a procedure file is
    (`InvalidArgument` naming the entry and the place, if one is not valid)."""
    procedures = []
    for entry in entries:
        try:
            procedures.append(
                Procedure.model_validate(entry, context={"canonical": canonical or {}})
                if canonical is not None
                else Procedure.model_validate(entry)
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            code = entry.get("code") if isinstance(entry, dict) else None
            raise InvalidArgument(
                f"procedure {code!r}: {where}: {first['msg']}",
                argument="procedure",
                at=where,
            ) from None
    try:
        return Catalogue(procedures)
    except ValueError as exc:
        raise InvalidArgument(str(exc), argument="procedure") from None


def _entries(catalogue: Catalogue) -> list[dict[str, Any]]:
    return [p.model_dump(mode="json") for p in catalogue]


class CatalogueVersions:
    """Versions of the catalogue in the gateway's database."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        pseudonym_key: bytes,
        canonical: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self._engine = engine
        self._key = pseudonym_key
        self._canonical = canonical

    async def record_files(self, catalogue: Catalogue) -> bool:
        """Keep the files' catalogue as a version, in effect from now, unless one holds it
        already; whether it was recorded."""
        now = utc_now()
        try:
            async with self._engine.begin() as conn:
                known = await conn.scalar(
                    sa.select(catalogue_versions.c.version).where(
                        catalogue_versions.c.version == catalogue.version
                    )
                )
                if known is not None:
                    return False
                parent = await _in_effect(conn, _LATEST)
                # Files never undo a change approved through the API: then they are a
                # proposal like any other, for an operator to approve or reject.
                proposal = parent is not None and parent.proposed_by != FILES
                if proposal:
                    log.warning(
                        "catalogue_files_proposed",
                        version=catalogue.version,
                        in_effect=parent.version if parent else None,
                    )
                await conn.execute(
                    catalogue_versions.insert().values(
                        version=catalogue.version,
                        entries=_entries(catalogue),
                        parent=None if parent is None else parent.version,
                        change={"origin": FILES},
                        status="proposed" if proposal else "approved",
                        proposed_by=FILES,
                        proposed_at=now,
                        decided_by=None if proposal else FILES,
                        decided_at=None if proposal else now,
                        effective_from=None if proposal else now,
                    )
                )
                action = "catalogue_proposed" if proposal else "catalogue_recorded"
                under = parent.version if proposal and parent else catalogue.version
                await insert_events(
                    conn, [self._event(action, catalogue.version, None, None, under=under)]
                )
        except IntegrityError:  # another replica recorded it first
            return False
        return True

    async def in_effect(self, at: datetime.datetime | None = None) -> CatalogueVersion | None:
        """The version in effect at `at` (now), or `None` when none is recorded."""
        async with self._engine.connect() as conn:
            return await _in_effect(conn, at or utc_now())

    async def effective_version(self, at: datetime.datetime | None = None) -> str | None:
        """Only the `policy_version` in effect at `at` (a cheap read, for polling)."""
        async with self._engine.connect() as conn:
            found = await conn.scalar(_effective_query(at or utc_now(), columns=True))
        return None if found is None else str(found)

    async def get(self, version: str) -> CatalogueVersion:
        """One version, or `NotFound`."""
        async with self._engine.connect() as conn:
            return await _get(conn, version)

    async def list(self, *, status: str | None = None) -> list[CatalogueVersion]:
        """Versions, newest proposal first."""
        query = sa.select(catalogue_versions).order_by(catalogue_versions.c.proposed_at.desc())
        if status is not None:
            query = query.where(catalogue_versions.c.status == status)
        async with self._engine.connect() as conn:
            return [_row(r) for r in await conn.execute(query.limit(500))]

    async def propose(
        self,
        *,
        by: StaffMember,
        procedure: dict[str, Any] | None = None,
        remove: str | None = None,
        base: str | None = None,
    ) -> CatalogueVersion:
        """A new version: `base` (the version in effect) with `procedure` added or
        replaced, or the procedure coded `remove` removed."""
        if (procedure is None) == (remove is None):
            raise InvalidArgument(
                "Propose one change: a `procedure` entry, or the code to `remove`.",
                argument="procedure",
            )
        now = utc_now()
        try:
            async with self._engine.begin() as conn:
                parent = await (_get(conn, base) if base else _in_effect(conn, _LATEST))
                if parent is None:
                    raise Conflict("No catalogue is recorded yet: start the gateway once.")
                if parent.status != "approved":
                    raise Conflict(
                        f"A change is proposed on an approved version; {parent.version[:12]} "
                        f"is {parent.status}.",
                        status=parent.status,
                    )
                entries = {e["code"]: e for e in parent.entries}
                if procedure is not None:
                    checked = catalogue_of([procedure], self._canonical)
                    (entry,) = _entries(checked)
                    code = entry["code"]
                    kind = "replace" if code in entries else "add"
                    if entries.get(code) == entry:
                        raise Conflict(
                            f"Procedure {code!r} is already so in {parent.version[:12]}.",
                            procedure=code,
                        )
                    entries[code] = entry
                else:
                    assert remove is not None
                    code, kind = remove, "remove"
                    if code in KEPT:
                        raise InvalidArgument(
                            f"Procedure {code!r} is the gateway's own (the citizen's pages): "
                            f"it is changed, never removed.",
                            argument="remove",
                        )
                    if entries.pop(code, None) is None:
                        raise NotFound(
                            f"Procedure {code!r} is not in version {parent.version[:12]}.",
                            kind="Procedure",
                        )
                    if not entries:
                        raise InvalidArgument(
                            "A catalogue keeps at least one procedure.", argument="remove"
                        )
                catalogue = catalogue_of(list(entries.values()), self._canonical)
                if await conn.scalar(
                    sa.select(catalogue_versions.c.status).where(
                        catalogue_versions.c.version == catalogue.version
                    )
                ):
                    raise Conflict(
                        "This catalogue is proposed or recorded already.",
                        version=catalogue.version,
                    )
                await conn.execute(
                    catalogue_versions.insert().values(
                        version=catalogue.version,
                        entries=_entries(catalogue),
                        parent=parent.version,
                        change={"procedure": code, "kind": kind},
                        status="proposed",
                        proposed_by=by.subject,
                        proposed_at=now,
                    )
                )
                await insert_events(
                    conn,
                    [
                        self._event(
                            "catalogue_proposed", catalogue.version, code, by, under=parent.version
                        )
                    ],
                )
                return await _get(conn, catalogue.version)
        except SQLAlchemyError as exc:
            raise AuditUnavailable(_NOT_RECORDED) from exc

    async def approve(
        self,
        version: str,
        *,
        by: StaffMember,
        effective_from: datetime.datetime | None = None,
    ) -> CatalogueVersion:
        """Approve a proposed version another person proposed, in effect from
        `effective_from` (now by default; never before now)."""
        now = utc_now()
        when = effective_from or now
        if when.tzinfo is None:
            raise InvalidArgument("effectiveFrom needs a time zone.", argument="effectiveFrom")
        when = max(when, now)
        try:
            async with self._engine.begin() as conn:
                latest = await _in_effect(conn, _LATEST)
                waiting = await _get(conn, version)
                if (
                    waiting.status == "proposed"
                    and latest is not None
                    and waiting.parent != latest.version
                ):
                    # Approving it would undo what was approved since it was proposed.
                    raise Conflict(
                        f"This version changes {str(waiting.parent)[:12]}, and "
                        f"{latest.version[:12]} has been approved since: propose the change "
                        f"again on it.",
                        reason="stale",
                        latest=latest.version,
                    )
                if latest is not None and latest.effective_from is not None:
                    when = max(when, latest.effective_from)
                found = await self._decide(conn, version, by, "approved", None, when)
                under = latest.version if latest is not None else version
                await insert_events(
                    conn,
                    [
                        self._event(
                            "catalogue_approved",
                            version,
                            found.change.get("procedure"),
                            by,
                            under=under,
                        )
                    ],
                )
                return await _get(conn, version)
        except SQLAlchemyError as exc:
            raise AuditUnavailable(_NOT_RECORDED) from exc

    async def reject(self, version: str, *, by: StaffMember, reason: str) -> CatalogueVersion:
        """Reject a proposed version, saying why."""
        if not reason.strip():
            raise InvalidArgument("Say why it is rejected (`reason`).", argument="reason")
        try:
            async with self._engine.begin() as conn:
                found = await self._decide(conn, version, by, "rejected", reason.strip(), None)
                latest = await _in_effect(conn, _LATEST)
                await insert_events(
                    conn,
                    [
                        self._event(
                            "catalogue_rejected",
                            version,
                            found.change.get("procedure"),
                            by,
                            under=version if latest is None else latest.version,
                        )
                    ],
                )
                return await _get(conn, version)
        except SQLAlchemyError as exc:
            raise AuditUnavailable(_NOT_RECORDED) from exc

    async def _decide(
        self,
        conn: AsyncConnection,
        version: str,
        by: StaffMember,
        status: str,
        reason: str | None,
        effective_from: datetime.datetime | None,
    ) -> CatalogueVersion:
        found = await _get(conn, version)
        if status == "approved" and found.proposed_by == by.subject:
            raise Forbidden(
                "Four eyes: who proposed a version cannot approve it.", reason="proposer"
            )
        done = await conn.execute(
            catalogue_versions.update()
            .where(
                catalogue_versions.c.version == version,
                catalogue_versions.c.status == "proposed",
            )
            .values(
                status=status,
                decided_by=by.subject,
                decided_at=utc_now(),
                effective_from=effective_from,
                reason=reason,
            )
        )
        if done.rowcount != 1:
            raise Conflict(f"This version is {found.status}, not proposed.", status=found.status)
        return found

    def _event(
        self,
        action: str,
        version: str,
        procedure: str | None,
        by: StaffMember | None,
        *,
        under: str,
    ) -> Event:
        """An `admin` record of `action` on `version`, decided under the version `under`
        (the one approved last: a proposal is no `policy_version` of any decision)."""
        body: EnvelopeBody = {"action": action, "catalogueVersion": version}
        if procedure is not None:
            body["procedure"] = procedure
        personal: dict[str, Any] = {}
        if by is not None:
            body["operator"] = pseudonym(self._key, by.subject)
            body["operatorOrg"] = by.org
            personal["operator"] = by.subject
        return Event(
            type="admin",
            request_id="",
            outcome=action,
            policy_version=under,
            envelope=body,
            personal=personal,
            procedure=procedure,  # found by the procedure too, with its accesses
        )


def _effective_query(at: datetime.datetime, *, columns: bool = False) -> sa.Select[Any]:
    chosen = catalogue_versions.c.version if columns else catalogue_versions
    return (
        sa.select(chosen)
        .where(
            catalogue_versions.c.status == "approved",
            catalogue_versions.c.effective_from <= at,
        )
        .order_by(
            catalogue_versions.c.effective_from.desc(), catalogue_versions.c.decided_at.desc()
        )
        .limit(1)
    )


async def _in_effect(conn: AsyncConnection, at: datetime.datetime) -> CatalogueVersion | None:
    row = (await conn.execute(_effective_query(at))).first()
    return None if row is None else _row(row)


async def _get(conn: AsyncConnection, version: str) -> CatalogueVersion:
    row = (
        await conn.execute(
            sa.select(catalogue_versions).where(catalogue_versions.c.version == version)
        )
    ).first()
    if row is None:
        raise NotFound("No catalogue version has this id.", kind="CatalogueVersion")
    return _row(row)


async def catalogue_in_effect(
    engine: AsyncEngine,
    files: Catalogue,
    canonical: Mapping[str, Mapping[str, Any]] | None = None,
) -> Catalogue:
    """The catalogue in effect now: the stored version's, else (none stored, or one this
    release cannot read) the files'."""
    found = await CatalogueVersions(engine, pseudonym_key=b"", canonical=canonical).in_effect()
    if found is None or found.version == files.version:
        return files
    try:
        return catalogue_of(found.entries, canonical)
    except InvalidArgument:
        log.error("catalogue_in_effect_unreadable", version=found.version)
        return files
