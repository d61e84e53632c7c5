"""Forgetting a person once the retention of their records has run out.

Retention is the `retention_days` setting, or the procedure's own `retention_days` in
the catalogue. Forgetting is refused while any record of the person is younger than
its retention, or while a consent of theirs is pending or in force. Then, in one
transaction: the person's entries in the subject index (with the wrapped copies of
their records' data keys), their consents and their subject key are deleted. That is
crypto-shredding: a personal part sealed for them alone opens for nobody any more, one
that also names others stays readable for those others only, and the commitments in
the envelopes (to the person, to their consents) can no longer be linked to them. The
envelopes, the sealed parts and the log's leaves stay, so the log still verifies.

Its notifications and notification preferences go in the same transaction (`also`).

The `admin` record of the forgetting holds how many records named the person and a
salted digest of their ids, not the ids: a list of them would be a lasting "these are
one person's records". SQLite overwrites what is deleted (`secure_delete`); on
PostgreSQL, a deleted key stays in dead tuples until `VACUUM` and in the write-ahead
log and backups for as long as they are kept: keep those as briefly as the law allows.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.errors import Conflict, NotFound, RetentionNotOver
from gateway.records._recorder import Event, insert_events, pseudonym
from gateway.storage import consents, event_subjects, events, subject_keys
from policies import Catalogue, UnknownProcedure

__all__ = ["FORGET_ACTION", "Forgotten", "forget", "records_digest", "retention_of"]

FORGET_ACTION = "forget"


@dataclass(frozen=True, slots=True)
class Forgotten:
    """What forgetting removed (counts only)."""

    records: int
    consents: int
    event_id: str


def records_digest(salt: bytes, ids: Sequence[str]) -> str:
    """The digest a forget record holds of the records it concerned: hex SHA-256."""
    return hashlib.sha256(salt + "\n".join(sorted(ids)).encode()).hexdigest()


def retention_of(catalogue: Catalogue, procedure: str | None, default_days: int) -> int:
    """Days the personal part of a record of `procedure` is kept."""
    if procedure is not None:
        try:
            own = catalogue.get(procedure).retention_days
        except UnknownProcedure:
            own = None
        if own is not None:
            return own
    return default_days


async def forget(
    engine: AsyncEngine,
    subject: str,
    *,
    catalogue: Catalogue,
    default_days: int,
    operator: str,
    pseudonym_key: bytes,
    now: datetime.datetime | None = None,
    also: Callable[[AsyncConnection], Awaitable[Any]] | None = None,
) -> Forgotten:
    """Forget `subject` (a checked id), or raise `RetentionNotOver` / `Conflict`.

    `also` deletes, in the same transaction, what rooms above keep of the person (their
    notifications and notification preferences) and says how many rows: a person of whom
    only those are held is forgotten too.

    Raises `NotFound`, and writes nothing, when the gateway holds nothing on the person
    (no record names them, no consent or subject key of theirs): never seen, or
    forgotten already.
    """
    now = now or datetime.datetime.now(datetime.UTC)
    async with engine.begin() as conn:
        records = (
            await conn.execute(
                sa.select(events.c.id, events.c.ts, events.c.procedure)
                .join(event_subjects, event_subjects.c.event_id == events.c.id)
                .where(event_subjects.c.subject == subject)
            )
        ).all()
        # What rooms above keep (an opt-in alone is something held on the person too).
        held_above = 0 if also is None else int(await also(conn) or 0)
        if not records and not held_above and not await _known(conn, subject):
            raise NotFound(
                "The gateway holds nothing on this person: no record names them and they "
                "have no consent or subject key (never seen, or forgotten already).",
                kind="Person",
            )
        _check_retention(records, catalogue, default_days, now)
        await _check_consents(conn, subject, now)
        ids = sorted(r.id for r in records)
        await conn.execute(event_subjects.delete().where(event_subjects.c.subject == subject))
        await conn.execute(subject_keys.delete().where(subject_keys.c.subject == subject))
        dropped = await conn.execute(consents.delete().where(consents.c.subject == subject))
        salt = secrets.token_bytes(16)
        record = Event(
            type="admin",
            request_id="",
            outcome="forgotten",
            policy_version=catalogue.version,
            envelope={
                "action": FORGET_ACTION,
                "operator": pseudonym(pseudonym_key, operator),
                "records": len(ids),
                "recordsDigest": records_digest(salt, ids),
                "consentsDeleted": dropped.rowcount,
            },
            personal={"operator": operator, "salt": salt.hex()},
        )
        await insert_events(conn, [record])
    return Forgotten(len(ids), dropped.rowcount, record.id)


async def _known(conn: AsyncConnection, subject: str) -> bool:
    """Whether a consent or the subject key of `subject` is kept."""
    for table in (consents, subject_keys):
        found = await conn.scalar(
            sa.select(sa.literal(1)).select_from(table).where(table.c.subject == subject).limit(1)
        )
        if found is not None:
            return True
    return False


def _check_retention(
    records: Sequence[Any],
    catalogue: Catalogue,
    default_days: int,
    now: datetime.datetime,
) -> None:
    until = None
    for record in records:
        ends = record.ts + datetime.timedelta(
            days=retention_of(catalogue, record.procedure, default_days)
        )
        until = ends if until is None else max(until, ends)
    if until is not None and until > now:
        raise RetentionNotOver(
            f"The person's newest record must be kept until {until.date().isoformat()}; "
            f"they can be forgotten from then on.",
            until=until.isoformat(),
        )


async def _check_consents(conn: AsyncConnection, subject: str, now: datetime.datetime) -> None:
    live = await conn.scalar(
        sa.select(sa.func.count())
        .select_from(consents)
        .where(
            consents.c.subject == subject,
            sa.or_(
                sa.and_(consents.c.status == "REQUESTED", consents.c.answer_by > now),
                sa.and_(consents.c.status == "ACTIVE", consents.c.valid_until > now),
            ),
        )
    )
    if live:
        raise Conflict(
            "The person has a consent pending or in force: it must end before they are forgotten.",
            consents=int(live),
        )
