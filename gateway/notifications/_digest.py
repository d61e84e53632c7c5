"""The daily digest: a citizen who asked for it is told, once a day, how often and by
whom their data was read the day before (Vietnam's day).

Only citizens who opted in are read (`notification_preferences`: a handle and the id
sealed). A digest counts the records a citizen sees on "Ai đã đọc dữ liệu của tôi"
(accesses and auditors' searches naming them) of that day, by organisation; an access
hidden until a later date is counted on the day it stops being hidden, never before.
The citizen's own reads through the gateway's portal are not counted. No digest is
written for a day without reads. Its id is derived from the citizen's handle and the
day, so running it twice for a day (a restart, another replica) writes it once.
"""

from __future__ import annotations

import datetime
from typing import Any, Final

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.instants import VIETNAM
from gateway.notifications._outbox import Notification, RecipientSeal, enqueue
from gateway.storage import event_subjects, events, notification_preferences
from policies import ORGANISATION_NAMES

__all__ = ["READ_DIGEST", "ReadDigests", "enqueue_read_digests"]

log = structlog.get_logger(__name__)

READ_DIGEST: Final = "read_digest"
_SELF_SERVICE: Final = "LOCAL.citizen-self-service"
"""The procedure of the citizen's own reads through the portal (`gateway.web`)."""
_AUDIT = {"code": "audit", "vi": "Kiểm tra viên nhật ký truy cập", "en": "Access-log auditor"}
_CHUNK: Final = 500


def day_bounds(day: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    """The instants a day of Vietnam's calendar begins and ends (UTC+7)."""
    start = datetime.datetime.combine(day, datetime.time(), VIETNAM)
    return start, start + datetime.timedelta(days=1)


def _organisation(name: str | None, kind: str) -> dict[str, Any]:
    if kind == "auditor_search" or name is None:
        return dict(_AUDIT)
    names = ORGANISATION_NAMES.get(name)
    return {"code": name, "vi": names[0] if names else name, "en": names[1] if names else name}


async def _opted_in(engine: AsyncEngine, seal: RecipientSeal) -> list[str]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    notification_preferences.c.handle, notification_preferences.c.sealed_subject
                ).where(notification_preferences.c.read_digest.is_(True))
            )
        ).all()
    found = [seal.open(bytes(r.sealed_subject), r.handle) for r in rows]
    return [s for s in found if s is not None]


async def enqueue_read_digests(
    engine: AsyncEngine,
    seal: RecipientSeal,
    day: datetime.date,
    *,
    now: datetime.datetime | None = None,
) -> int:
    """Write the digests of `day` (Vietnam's) for every citizen who asked for one;
    returns how many were new."""
    start, end = day_bounds(day)
    subjects = await _opted_in(engine, seal)
    made = 0
    for offset in range(0, len(subjects), _CHUNK):
        chunk = subjects[offset : offset + _CHUNK]
        query = (
            sa.select(
                event_subjects.c.subject,
                events.c.type,
                events.c.organisation,
                sa.func.count().label("reads"),
            )
            .join(events, events.c.id == event_subjects.c.event_id)
            .where(event_subjects.c.subject.in_(chunk))
            .where(events.c.type.in_(("access", "auditor_search")))
            .where(sa.or_(events.c.procedure.is_(None), events.c.procedure != _SELF_SERVICE))
            .where(
                sa.or_(
                    sa.and_(
                        events.c.hidden_until.is_(None), events.c.ts >= start, events.c.ts < end
                    ),
                    sa.and_(events.c.hidden_until >= start, events.c.hidden_until < end),
                )
            )
            .group_by(event_subjects.c.subject, events.c.type, events.c.organisation)
        )
        async with engine.begin() as conn:
            rows = (await conn.execute(query)).all()
            by_subject: dict[str, dict[str, dict[str, Any]]] = {}
            for row in rows:
                organisation = _organisation(row.organisation, row.type)
                counts = by_subject.setdefault(row.subject, {})
                entry = counts.setdefault(organisation["code"], {**organisation, "count": 0})
                entry["count"] += int(row.reads)
            for subject, counts in by_subject.items():
                listed = sorted(counts.values(), key=lambda o: (-o["count"], o["code"]))
                payload = {
                    "day": day.isoformat(),
                    "count": sum(o["count"] for o in listed),
                    "organisations": listed,
                }
                notification = Notification.to_citizen(
                    seal, subject, READ_DIGEST, day.isoformat(), payload
                )
                made += await enqueue(conn, seal, notification, now=now)
    log.info("read_digests_written", day=day.isoformat(), written=made)
    return made


class ReadDigests:
    """The dispatcher's job: once Vietnam's day has turned, the previous day's digests."""

    def __init__(self, engine: AsyncEngine, seal: RecipientSeal) -> None:
        self._engine = engine
        self._seal = seal
        self._done: datetime.date | None = None

    async def __call__(self, now: datetime.datetime) -> None:
        day = now.astimezone(VIETNAM).date() - datetime.timedelta(days=1)
        if day == self._done:
            return
        await enqueue_read_digests(self._engine, self._seal, day, now=now)
        self._done = day
