"""The dispatcher: one replica at a time delivers the outbox, at least once each.

Every gateway process runs it; the replicas take turns through a lease in the database
(`notification_lease`, one row): a replica delivers while it holds a lease that has
not expired, renewing it before each delivery, and another takes over once it
expires (the holder stopped, froze or lost the database). Before its turn, the holder
runs the jobs that write notifications once for everyone (the daily digests).

A notification leaves with its id as the idempotency key. It is marked delivered only
after the channel took it: a replica stopped between the two, or a lease lost during a
delivery, sends it again, and the channel keeps it once. A failure is recorded on the
row (`attempts`, `last_error`, a code, never content) and the notification waits
`backoff_base * 2^(attempts - 1)` seconds (at most `backoff_max`, less a random part
of up to a quarter) before the next attempt; a refusal (`DeliveryFailed` not
retriable), or `max_attempts` failures, leave it `failed`. Nothing pending is deleted: a
restart finds every pending notification where it was; a settled one is deleted
`keep_days` after it was written.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import secrets
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import sqlalchemy as sa
import structlog
from prometheus_client import Counter, Gauge
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.background import Background
from gateway.instants import format_instant
from gateway.notifications._outbox import AGENCY, CITIZEN, RecipientSeal
from gateway.notifications._senders import Delivery, DeliveryFailed, NotificationSender
from gateway.notifications._texts import link_of, texts_of
from gateway.storage import notification_lease, notifications

__all__ = ["Clock", "Dispatcher", "Job"]

log = structlog.get_logger(__name__)

DELIVERIES = Counter(
    "gateway_notifications_total",
    "Delivery attempts of notifications, by kind and outcome.",
    ["kind", "outcome"],
)

PENDING = Gauge(
    "gateway_notifications_pending",
    "Notifications waiting for delivery, as the replica delivering last counted them.",
)

Clock = Callable[[], datetime.datetime]
Job = Callable[[datetime.datetime], Awaitable[Any]]
"""Work done at the start of a pass, given the pass's time."""


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Dispatcher(Background):
    """Delivers the outbox in the background; see the module's description."""

    def __init__(
        self,
        engine: AsyncEngine,
        sender: NotificationSender,
        seal: RecipientSeal,
        *,
        origin: str,
        interval: float = 5.0,
        lease_seconds: float = 30.0,
        send_timeout: float = 15.0,
        max_attempts: int = 20,
        backoff_base: float = 5.0,
        backoff_max: float = 3600.0,
        batch: int = 100,
        keep_days: float = 90.0,
        jobs: Sequence[Job] = (),
        watches: Sequence[Job] = (),
        clock: Clock = _utcnow,
    ) -> None:
        """`jobs` run on the lease holder only, `watches` on every replica, each pass."""
        self._engine = engine
        self._sender = sender
        self._seal = seal
        self._origin = origin.rstrip("/")
        self._interval = interval
        self._lease = datetime.timedelta(seconds=lease_seconds)
        self._send_timeout = send_timeout
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._batch = batch
        self._keep = datetime.timedelta(days=keep_days)
        self._jobs = tuple(jobs)
        self._watches = tuple(watches)
        self._clock = clock
        self.holder = uuid.uuid4().hex
        self._wakeup = asyncio.Event()

    _name = "notifications"

    async def stop(self) -> None:
        """Stop; give the lease up so that another replica delivers at once."""
        if await self._cancel():
            with contextlib.suppress(Exception):  # it expires anyway
                async with self._engine.begin() as conn:
                    await conn.execute(
                        notification_lease.update()
                        .where(notification_lease.c.id == 1)
                        .where(notification_lease.c.holder == self.holder)
                        .values(expires_at=self._clock() - datetime.timedelta(seconds=1))
                    )
        await self._sender.aclose()

    def wake(self) -> None:
        """Run a pass now (something was just written to the outbox)."""
        self._wakeup.set()

    async def _run(self) -> None:
        while True:
            try:
                await self.once()
            except Exception as exc:  # the next pass tries again
                log.error("notifications_pass_failed", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._interval)
            self._wakeup.clear()

    async def once(self) -> int:
        """One pass: the watches; then, holding the lease, the jobs and the deliveries
        due. Returns how many were delivered."""
        for watch in self._watches:
            try:
                await watch(self._clock())
            except Exception as exc:  # one watch failing stops neither another nor delivery
                log.error("notification_watch_failed", error=type(exc).__name__)
        if not await self._take_lease():
            return 0
        for job in self._jobs:
            try:
                await job(self._clock())
            except Exception as exc:  # the deliveries go on; the job runs again next pass
                log.error("notification_job_failed", error=type(exc).__name__)
        delivered = await self._deliver_due()
        await self._purge()
        return delivered

    async def _purge(self) -> None:
        """Count what waits; delete what was settled (delivered or failed) `keep_days`
        ago, so that the outbox keeps no lasting list of whom it told what."""
        now = self._clock()
        async with self._engine.begin() as conn:
            await conn.execute(
                notifications.delete()
                .where(notifications.c.status.in_(("delivered", "failed")))
                .where(notifications.c.created_at < now - self._keep)
            )
            pending = await conn.scalar(
                sa.select(sa.func.count()).where(notifications.c.status == "pending")
            )
        PENDING.set(pending or 0)

    async def _take_lease(self) -> bool:
        """Take or renew the lease; whether this replica holds it now.

        On PostgreSQL the lease is timed by the database's clock, so that replicas whose
        clocks disagree never both hold it; SQLite serves one process, on its clock.
        """
        async with self._engine.begin() as conn:
            now: Any
            until: Any
            if conn.dialect.name == "postgresql":
                now = sa.func.now()
                until = sa.func.now() + self._lease
            else:
                now = self._clock()
                until = now + self._lease
            moved = await conn.execute(
                notification_lease.update()
                .where(notification_lease.c.id == 1)
                .where(
                    sa.or_(
                        notification_lease.c.holder == self.holder,
                        notification_lease.c.expires_at < now,
                    )
                )
                .values(holder=self.holder, expires_at=until)
            )
            if moved.rowcount == 1:
                return True
            insert = (
                postgresql_insert(notification_lease)
                if conn.dialect.name == "postgresql"
                else sqlite_insert(notification_lease)
            )
            made = await conn.execute(
                insert.values(id=1, holder=self.holder, expires_at=until).on_conflict_do_nothing(
                    index_elements=["id"]
                )
            )
            return bool(made.rowcount)

    async def _deliver_due(self) -> int:
        now = self._clock()
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(notifications)
                    .where(notifications.c.status == "pending")
                    .where(notifications.c.next_attempt_at <= now)
                    .order_by(notifications.c.next_attempt_at, notifications.c.id)
                    .limit(self._batch)
                )
            ).all()
        delivered = 0
        for row in rows:
            # The lease again before each: a replica that lost it stops here.
            if not await self._take_lease():
                break
            delivered += await self._deliver(row)
        return delivered

    def _delivery(self, row: Any) -> Delivery | None:
        recipient: dict[str, str]
        if row.recipient.startswith(CITIZEN):
            subject = (
                None
                if row.sealed_recipient is None
                else self._seal.open(bytes(row.sealed_recipient), row.id)
            )
            if subject is None:
                return None
            recipient = {"type": "citizen", "personalId": subject}
        elif row.recipient.startswith(AGENCY):
            recipient = {"type": "agency_admins", "organisation": row.recipient[len(AGENCY) :]}
        else:
            return None
        payload = dict(row.payload)
        link = link_of(row.kind, payload, self._origin)
        words = texts_of(row.kind, payload, link)
        return Delivery(
            id=row.id,
            kind=row.kind,
            recipient=recipient,
            title=words["title"],
            text=words["text"],
            link=link,
            data=payload,
            created_at=format_instant(row.created_at),
        )

    async def _deliver(self, row: Any) -> int:
        attempts = int(row.attempts) + 1
        try:
            delivery = self._delivery(row)
        except Exception as exc:
            # (a kind or payload of another version): settled, never in the others' way.
            await self._settle(row.id, attempts, "failed", "unrenderable")
            DELIVERIES.labels(row.kind, "failed").inc()
            log.error("notification_failed", notification=row.id, kind=row.kind,
                      error="unrenderable", detail=type(exc).__name__)  # fmt: skip
            return 0
        if delivery is None:
            # The sealed id does not open (another pseudonym secret): nobody to tell.
            await self._settle(row.id, attempts, "failed", "recipient_unknown")
            DELIVERIES.labels(row.kind, "failed").inc()
            log.error("notification_failed", notification=row.id, kind=row.kind,
                      error="recipient_unknown")  # fmt: skip
            return 0
        try:
            async with asyncio.timeout(self._send_timeout):
                await self._sender.send(delivery)
        except DeliveryFailed as exc:
            return await self._failed(row, attempts, exc.code, retriable=exc.retriable)
        except TimeoutError:
            return await self._failed(row, attempts, "timeout", retriable=True)
        except Exception as exc:  # a sender's bug: recorded, tried again later
            return await self._failed(row, attempts, type(exc).__name__[:64], retriable=True)
        now = self._clock()
        async with self._engine.begin() as conn:
            await conn.execute(
                notifications.update()
                .where(notifications.c.id == row.id, notifications.c.status == "pending")
                .values(
                    status="delivered",
                    attempts=attempts,
                    delivered_at=now,
                    last_error=None,
                    # The channel has it: the outbox no longer needs the citizen's id.
                    sealed_recipient=None,
                )
            )
        DELIVERIES.labels(row.kind, "delivered").inc()
        log.info("notification_delivered", notification=row.id, kind=row.kind, attempts=attempts)
        return 1

    async def _failed(self, row: Any, attempts: int, code: str, *, retriable: bool) -> int:
        if not retriable or attempts >= self._max_attempts:
            await self._settle(row.id, attempts, "failed", code)
            DELIVERIES.labels(row.kind, "failed").inc()
            log.error("notification_failed", notification=row.id, kind=row.kind, error=code,
                      attempts=attempts)  # fmt: skip
            return 0
        delay = min(self._backoff_max, self._backoff_base * 2 ** (attempts - 1))
        delay *= 1 - secrets.randbelow(250) / 1000  # replicas' retries do not line up
        await self._settle(
            row.id,
            attempts,
            "pending",
            code,
            next_at=self._clock() + datetime.timedelta(seconds=delay),
        )
        DELIVERIES.labels(row.kind, "retry").inc()
        log.warning("notification_retry", notification=row.id, kind=row.kind, error=code,
                    attempts=attempts, in_seconds=round(delay, 1))  # fmt: skip
        return 0

    async def _settle(
        self,
        notification: str,
        attempts: int,
        status: str,
        code: str,
        *,
        next_at: datetime.datetime | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status, "attempts": attempts, "last_error": code}
        if status == "failed":
            values["sealed_recipient"] = None  # given up: the citizen's id is not kept
        if next_at is not None:
            values["next_attempt_at"] = next_at
        async with self._engine.begin() as conn:
            await conn.execute(
                notifications.update()
                .where(notifications.c.id == notification, notifications.c.status == "pending")
                .values(**values)
            )
