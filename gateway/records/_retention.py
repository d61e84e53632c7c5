"""Retention on schedule: personal parts past their retention are cleared in batches.

A record's personal part (the sealed subjects, officer id and token, or a staff record's
part in clear) and its entries in the subject index (with the wrapped copies of its data
key) are kept for the retention of its procedure (`retention_of`), counted from the
record's time. A run clears, oldest first (listed by id), at most `max_records` parts
past their retention, `batch_size` a transaction, and expires the consents past their
end (`REQUESTED` unanswered past `answer_by`, `ACTIVE` past `valid_until`: their
effective status already said so; now the table does too).

Each run that clears or expires anything writes one `admin` record (`action`
`retention`, outcome `cleared`) in the transaction of its first batch, before any part
is deleted: it lists the records whose parts the run clears (`events`), how many
subject-index entries they had, and how many consents expired. The records are those of
many people, sorted by id, so the list says nothing of any one person. A run that stops
half-way leaves listed parts that the next run finds, clears and lists again: every part
missing is explained by a record, which is what `gateway audit verify` checks. The
envelopes and the log's leaves stay, so the log still verifies.

On PostgreSQL the personal parts and the subject index are partitioned by month
(`gateway.storage._partitions`): a run first drops whole the months whose every record
is past the longest retention of any procedure, and its record names them (`months`,
with how many parts they held, `monthRecords`); then it clears the rest row by row. Each
run also makes the partitions of the coming months. Dropping waits half a second at most
for the tables' lock; if it cannot have it, the months wait for the next run. A record of
a procedure the catalogue does not know is kept for the longest retention.

Runs take turns across replicas: on PostgreSQL through an advisory lock held by the
run's session (a replica that dies releases it); SQLite serves one process.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
import structlog
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.background import Background
from gateway.records._envelope import EnvelopeBody
from gateway.records._forget import retention_of
from gateway.records._recorder import Event, insert_events, pseudonym
from gateway.storage import (
    consents,
    count_month,
    drop_month,
    ensure_months,
    event_personal,
    event_subjects,
    events,
    lock_not_available,
    month_range,
    monthly_partitions,
    short_lock_wait,
)
from policies import Catalogue

__all__ = [
    "RETENTION_ACTION",
    "RETENTION_OUTCOME",
    "Cleared",
    "RetentionSchedule",
    "clear_expired",
    "due_records",
]

log = structlog.get_logger(__name__)

RETENTION_ACTION = "retention"
RETENTION_OUTCOME = "cleared"

# pg_try_advisory_lock's key for the retention run: any constant the gateway uses
# for nothing else ("retentio" in ASCII).
_LOCK_KEY = 0x726574656E74696F


@dataclass(frozen=True, slots=True)
class Cleared:
    """What a run of retention did (counts and the ids of records, no personal data)."""

    records: Sequence[str] = field(default=())
    """The records whose personal part and subject-index entries the run cleared."""
    months: Sequence[str] = field(default=())
    """PostgreSQL: the months (`YYYY-MM`) whose partitions the run dropped whole."""
    month_records: int = 0
    """How many personal parts those months held."""
    subject_entries: int = 0
    consents_expired: int = 0
    event_id: str | None = None
    """The run's `admin` record; `None` when it had nothing to do (or was a dry run)."""
    more: bool = False
    """More records are past their retention than the run could clear."""
    skipped: bool = False
    """Another replica was running retention: this run did nothing."""


def _codes_by_retention(catalogue: Catalogue, default_days: int) -> dict[int, list[str]]:
    """The procedures' codes, by their retention in days."""
    codes: dict[int, list[str]] = {}
    for procedure in catalogue:
        days = retention_of(catalogue, procedure.code, default_days)
        codes.setdefault(days, []).append(procedure.code)
    return codes


def _longest(catalogue: Catalogue, default_days: int) -> int:
    """The longest retention of any procedure (and the default)."""
    return max([default_days, *_codes_by_retention(catalogue, default_days)])


def _classes(
    catalogue: Catalogue, default_days: int, now: datetime.datetime
) -> list[tuple[datetime.datetime, sa.ColumnElement[bool]]]:
    """For each retention in use: the time before which a record's part is due, and
    which records have that retention (by procedure). A record of a procedure the
    catalogue no longer knows (removed, renamed, or of a newer catalogue) is kept for
    the longest retention: nothing is cleared on a guess."""
    known = sorted(p.code for p in catalogue)
    which: dict[int, list[sa.ColumnElement[bool]]] = {}
    for days, codes in _codes_by_retention(catalogue, default_days).items():
        which.setdefault(days, []).append(events.c.procedure.in_(codes))
    which.setdefault(default_days, []).append(events.c.procedure.is_(None))
    which.setdefault(_longest(catalogue, default_days), []).append(events.c.procedure.not_in(known))
    return [
        (now - datetime.timedelta(days=days), sa.or_(*conditions))
        for days, conditions in sorted(which.items())
    ]


async def due_records(
    conn: AsyncConnection,
    *,
    catalogue: Catalogue,
    default_days: int,
    now: datetime.datetime,
    limit: int,
    besides: Sequence[str] = (),
) -> list[str]:
    """The ids of at most `limit` records whose personal part is past its retention and
    still kept, oldest first; none of the months `besides` (those dropped whole)."""
    found: list[tuple[datetime.datetime, str]] = []
    outside = [
        sa.not_(sa.and_(events.c.ts >= start, events.c.ts < end))
        for start, end in map(month_range, besides)
    ]
    for before, which in _classes(catalogue, default_days, now):
        rows = await conn.execute(
            sa.select(events.c.ts, events.c.id)
            .join(
                event_personal,
                sa.and_(
                    event_personal.c.event_id == events.c.id, event_personal.c.ts == events.c.ts
                ),
            )
            .where(events.c.ts < before, which, *outside)
            .order_by(events.c.ts, events.c.id)
            .limit(limit)
        )
        found.extend((row.ts, row.id) for row in rows)
    found.sort()
    return [event_id for _, event_id in found[:limit]]


async def _expire_consents(conn: AsyncConnection, now: datetime.datetime) -> int:
    expired = 0
    for status, end in (("REQUESTED", consents.c.answer_by), ("ACTIVE", consents.c.valid_until)):
        done = await conn.execute(
            consents.update()
            .where(consents.c.status == status, end <= now)
            .values(status="EXPIRED")
        )
        expired += done.rowcount
    return expired


async def _take_turn(conn: AsyncConnection) -> bool:
    """Whether this run may go on: on PostgreSQL, the session's advisory lock."""
    if conn.dialect.name != "postgresql":
        return True
    return bool(await conn.scalar(sa.select(sa.func.pg_try_advisory_lock(_LOCK_KEY))))


async def _end_turn(conn: AsyncConnection) -> None:
    if conn.dialect.name == "postgresql":
        await conn.scalar(sa.select(sa.func.pg_advisory_unlock(_LOCK_KEY)))


def _chunks(ids: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


async def clear_expired(
    engine: AsyncEngine,
    *,
    catalogue: Catalogue,
    default_days: int,
    pseudonym_key: bytes,
    batch_size: int = 500,
    max_records: int = 5000,
    operator: str | None = None,
    now: datetime.datetime | None = None,
    dry_run: bool = False,
) -> Cleared:
    """One run of retention (see the module's text).

    `operator`: who ran it by hand (recorded pseudonymised, and in its personal part);
    `None` for the schedule. `dry_run`: count what is due, change nothing.
    """
    if batch_size < 1 or max_records < 1:
        raise ValueError("batch_size and max_records must be at least 1")
    now = now or datetime.datetime.now(datetime.UTC)
    async with engine.connect() as conn:
        if not await _take_turn(conn):
            await conn.rollback()
            return Cleared(skipped=True)
        try:
            return await _run(
                conn,
                catalogue=catalogue,
                default_days=default_days,
                pseudonym_key=pseudonym_key,
                batch_size=batch_size,
                max_records=max_records,
                operator=operator,
                now=now,
                dry_run=dry_run,
            )
        finally:
            if conn.in_transaction():
                await conn.rollback()
            await _end_turn(conn)
            await conn.commit()


async def _run(
    conn: AsyncConnection,
    *,
    catalogue: Catalogue,
    default_days: int,
    pseudonym_key: bytes,
    batch_size: int,
    max_records: int,
    operator: str | None,
    now: datetime.datetime,
    dry_run: bool,
) -> Cleared:
    await conn.commit()  # the lock's statement; each batch is a transaction of its own
    if not dry_run:
        try:
            async with conn.begin():
                await ensure_months(conn, datetime.datetime.now(datetime.UTC))
        except sa.exc.DBAPIError as exc:
            if not lock_not_available(exc):
                raise
            log.warning("partitions_not_made", reason="lock_timeout")
    whole_before = now - datetime.timedelta(days=_longest(catalogue, default_days))
    async with conn.begin():  # what is due: read only
        months = [m for m in await monthly_partitions(conn) if month_range(m)[1] <= whole_before]
        due = await due_records(
            conn,
            catalogue=catalogue,
            default_days=default_days,
            now=now,
            limit=max_records + 1,
            besides=months,
        )
        more, due = len(due) > max_records, sorted(due[:max_records])
        batches = list(_chunks(due, batch_size))
        entries = 0
        for chunk in batches:
            entries += (
                await conn.scalar(
                    sa.select(sa.func.count())
                    .select_from(event_subjects)
                    .where(event_subjects.c.event_id.in_(chunk))
                )
                or 0
            )
        if dry_run:
            month_records = 0
            for month in months:
                parts, indexed = await count_month(conn, month)
                month_records, entries = month_records + parts, entries + indexed
            return Cleared(due, months, month_records, entries, 0, None, more)
    # The months' tables may be busy (a long reader): then they wait for the next run,
    # and the rest goes on now, never holding the recorder up.
    for attempt in (months, []):
        try:
            record, expired, month_records, month_entries = await _first_transaction(
                conn,
                months=attempt,
                batches=batches,
                body=_body(due, entries, operator, pseudonym_key),
                catalogue=catalogue,
                operator=operator,
                now=now,
            )
        except sa.exc.DBAPIError as exc:
            if not attempt or not lock_not_available(exc):
                raise
            log.warning("retention_months_deferred", months=len(attempt), reason="lock_timeout")
            continue
        months = attempt
        break
    if record is None:
        return Cleared(more=more)
    for chunk in batches[1:]:
        async with conn.begin():
            await _clear(conn, chunk)
    return Cleared(due, months, month_records, entries + month_entries, expired, record.id, more)


def _body(
    due: Sequence[str], entries: int, operator: str | None, pseudonym_key: bytes
) -> EnvelopeBody:
    body: EnvelopeBody = {
        "action": RETENTION_ACTION,
        "events": list(due),
        "subjectEntries": entries,
        "schedule": operator is None,
    }
    if operator is not None:
        body["operator"] = pseudonym(pseudonym_key, operator)
    return body


async def _first_transaction(
    conn: AsyncConnection,
    *,
    months: Sequence[str],
    batches: Sequence[Sequence[str]],
    body: EnvelopeBody,
    catalogue: Catalogue,
    operator: str | None,
    now: datetime.datetime,
) -> tuple[Event | None, int, int, int]:
    """In one short transaction: the months dropped, the consents expired, the run's
    record and its first batch cleared. (record or `None` when nothing was to do,
    consents expired, personal parts and subject entries of the months)."""
    async with conn.begin():
        # Dropping a month locks its tables whole: never wait long for that lock (a
        # long reader would hold every recording behind it), nor deadlock with a
        # forgetting that took them in the other order.
        await short_lock_wait(conn)
        month_records = month_entries = 0
        for month in months:
            parts, indexed = await drop_month(conn, month)
            month_records, month_entries = month_records + parts, month_entries + indexed
        expired = await _expire_consents(conn, now)
        if not batches and not expired and not months:
            return None, 0, 0, 0
        body = {**body, "consentsExpired": expired}
        body["subjectEntries"] = body.get("subjectEntries", 0) + month_entries
        if months:
            body["months"] = list(months)
            body["monthRecords"] = month_records
        record = Event(
            type="admin",
            request_id="",
            outcome=RETENTION_OUTCOME,
            policy_version=catalogue.version,
            envelope=body,
            personal={} if operator is None else {"operator": operator},
        )
        # The record first, in the first batch's transaction: no part is ever missing
        # without a record that lists it.
        await insert_events(conn, [record])
        if batches:
            await _clear(conn, batches[0])
    return record, expired, month_records, month_entries


async def _clear(conn: AsyncConnection, ids: Sequence[str]) -> None:
    await conn.execute(event_subjects.delete().where(event_subjects.c.event_id.in_(ids)))
    await conn.execute(event_personal.delete().where(event_personal.c.event_id.in_(ids)))


CLEARED = Counter(
    "gateway_retention_cleared_total",
    "Personal parts cleared after their retention by the schedule.",
)
EXPIRED = Counter(
    "gateway_retention_consents_expired_total",
    "Consents marked expired by the schedule, past their answer-by or valid-until time.",
)
RUNS = Counter(
    "gateway_retention_runs_total",
    "Runs of the retention schedule, by result (done, idle, skipped: another replica "
    "ran it; failed).",
    ["result"],
)
DUE = Gauge(
    "gateway_retention_backlog",
    "1 when the last run left records past their retention for the next (it cleared its "
    "most), else 0.",
)


class RetentionSchedule(Background):
    """Runs `clear_expired` every `interval` seconds (the first after one interval),
    and at once again while a run leaves records past their retention; `catalogue`
    gives the catalogue in effect at each run."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        catalogue: Callable[[], Catalogue],
        default_days: int,
        pseudonym_key: bytes,
        interval: float,
        batch_size: int,
        max_records: int,
    ) -> None:
        self._engine = engine
        self._catalogue = catalogue
        self._default_days = default_days
        self._key = pseudonym_key
        self._interval = interval
        self._batch_size = batch_size
        self._max_records = max_records

    async def run_once(self) -> Cleared:
        """One run, counted in the metrics."""
        try:
            done = await clear_expired(
                self._engine,
                catalogue=self._catalogue(),  # the one in effect now
                default_days=self._default_days,
                pseudonym_key=self._key,
                batch_size=self._batch_size,
                max_records=self._max_records,
            )
        except Exception:
            RUNS.labels("failed").inc()
            raise
        RUNS.labels("skipped" if done.skipped else "done" if done.event_id else "idle").inc()
        CLEARED.inc(len(done.records) + done.month_records)
        EXPIRED.inc(done.consents_expired)
        DUE.set(1 if done.more else 0)
        if done.event_id is not None:
            log.info(
                "retention_cleared",
                records=len(done.records),
                months=len(done.months),
                month_records=done.month_records,
                consents_expired=done.consents_expired,
                more=done.more,
            )
        return done

    _name = "retention"

    async def _run(self) -> None:
        # Stopped, a batch in progress rolls back, and the next run takes it again.
        wait = self._interval
        while True:
            await asyncio.sleep(wait)
            wait = self._interval
            try:
                done = await self.run_once()
            except Exception as exc:  # retried on the next turn
                log.error("retention_failed", error=type(exc).__name__)
                continue
            if done.more:
                wait = 0
