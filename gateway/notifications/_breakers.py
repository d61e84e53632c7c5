"""Breakers that stay open: the agency that owns the connector is told, once.

Each replica watches its own circuit breakers (they are per process). A breaker not
closed (open, or half-open between trials that fail) for `threshold` is an outage
worth a person's attention: one `breaker_open` notification goes to the
administrators of the connector's organisation (the one that registered it, else the
`VN/GOV/<org>` of its manifest's `agency`). Once per outage: not again while it stays
open, and not from another replica that sees the same outage, while the organisation
has been told of this connector within `quiet` (default: a day). A breaker that closes
ends the outage.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Final

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.instants import format_instant
from gateway.notifications._outbox import AGENCY, Notification, RecipientSeal, enqueue
from gateway.storage import connectors, notifications

__all__ = ["BREAKER_OPEN", "BreakerWatch"]

log = structlog.get_logger(__name__)

BREAKER_OPEN: Final = "breaker_open"


def organisation_of(registered: str | None, agency: str) -> str | None:
    """The organisation whose administrators answer for a connector."""
    if registered:
        return registered
    parts = agency.split("/")
    return "/".join(parts[:3]) if len(parts) >= 3 and parts[0] == "VN" else None


class BreakerWatch:
    """A dispatcher's watch: tells an agency of its connector's breaker that stays open."""

    def __init__(
        self,
        engine: AsyncEngine,
        seal: RecipientSeal,
        breakers: Callable[[], Mapping[str, str]],
        *,
        threshold: datetime.timedelta,
        quiet: datetime.timedelta = datetime.timedelta(days=1),
    ) -> None:
        self._engine = engine
        self._seal = seal
        self._breakers = breakers
        self._threshold = threshold
        self._quiet = quiet
        self._since: dict[str, datetime.datetime] = {}
        """When each connector's breaker was first seen not closed, in this outage."""
        self._told: set[str] = set()
        """Connectors whose outage now was notified (or found notified)."""

    async def __call__(self, now: datetime.datetime) -> None:
        states = self._breakers()
        for name, state in states.items():
            if state == "closed":
                self._since.pop(name, None)
                self._told.discard(name)
                continue
            since = self._since.setdefault(name, now)
            if name in self._told or now - since < self._threshold:
                continue
            await self._tell(name, since, now)
            self._told.add(name)
        for gone in set(self._since) - set(states):
            self._since.pop(gone, None)
            self._told.discard(gone)

    async def _tell(self, name: str, since: datetime.datetime, now: datetime.datetime) -> None:
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.select(connectors.c.organisation, connectors.c.agency).where(
                        connectors.c.name == name
                    )
                )
            ).first()
            organisation = None if row is None else organisation_of(row.organisation, row.agency)
            if organisation is None:
                log.warning("breaker_open_no_agency", connector=name)
                return
            recent = await conn.execute(
                sa.select(notifications.c.payload).where(
                    notifications.c.recipient == AGENCY + organisation,
                    notifications.c.kind == BREAKER_OPEN,
                    notifications.c.created_at >= now - self._quiet,
                )
            )
            if any(dict(p).get("connector") == name for (p,) in recent):
                return  # told already, by this replica before a restart or by another
            minutes = max(1, int((now - since).total_seconds() // 60))
            notification = Notification.to_agency(
                organisation,
                BREAKER_OPEN,
                f"{name}\x00{format_instant(since)}",
                {"connector": name, "openSince": format_instant(since), "minutes": minutes},
            )
            if await enqueue(conn, self._seal, notification, now=now):
                log.warning("breaker_open_notified", connector=name, organisation=organisation)
