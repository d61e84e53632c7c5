"""Monthly partitions of the personal parts and the subject index (PostgreSQL).

On PostgreSQL `event_personal` and `event_subjects` are partitioned by range of `ts`,
the time of their record (migration 0016): one partition a month, named
`<table>_yYYYYmMM`, each month from 00:00 UTC on its first day, and a default partition
for rows of a month that has none. A month whose every record is past the longest
retention can then be dropped at once (`drop_month`), instead of deleted row by row.

Partitions are made ahead (`ensure_months`: this month and the next `ahead`), at start
and by each run of retention; a row whose month has none lands in the default partition,
so recording never fails for want of one. Making or dropping a partition locks its table
whole: both wait half a second at most for that lock (`short_lock_wait`) and are tried
again on the next run, so recording is held up that long at most. A month that already
has rows in the default partition gets no partition of its own (PostgreSQL would refuse
it): its rows stay there, and retention clears them row by row. SQLite keeps one table
each.
"""

from __future__ import annotations

import datetime
import re

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = [
    "PARTITIONED",
    "count_month",
    "drop_month",
    "ensure_months",
    "lock_not_available",
    "month_of",
    "month_range",
    "monthly_partitions",
    "short_lock_wait",
]

log = structlog.get_logger(__name__)

PARTITIONED = ("event_personal", "event_subjects")
"""The tables partitioned by month on PostgreSQL; the first is the one read for months."""

# pg_try_advisory_xact_lock's key while partitions are made ("partitio" in ASCII).
_LOCK_KEY = 0x7061727469746F

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def month_of(instant: datetime.datetime) -> str:
    """`YYYY-MM` of an instant, in UTC."""
    return instant.astimezone(datetime.UTC).strftime("%Y-%m")


def month_range(month: str) -> tuple[datetime.datetime, datetime.datetime]:
    """The first instant of `month` (`YYYY-MM`, UTC) and of the month after it."""
    found = _MONTH.match(month)
    if found is None:
        raise ValueError(f"not a month: {month!r} (YYYY-MM)")
    year, number = int(found[1]), int(found[2])
    if not 1 <= number <= 12:
        raise ValueError(f"not a month: {month!r} (YYYY-MM)")
    start = datetime.datetime(year, number, 1, tzinfo=datetime.UTC)
    end = datetime.datetime(year + number // 12, number % 12 + 1, 1, tzinfo=datetime.UTC)
    return start, end


def _name(table: str, month: str) -> str:
    year, number = month.split("-")
    return f"{table}_y{year}m{number}"


def _next(month: str) -> str:
    return month_of(month_range(month)[1])


async def monthly_partitions(conn: AsyncConnection) -> list[str]:
    """The months (`YYYY-MM`) that have a partition of `event_personal`, oldest first."""
    if conn.dialect.name != "postgresql":
        return []
    names = await conn.scalars(
        sa.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'event_personal'::regclass"
        )
    )
    months = []
    for name in names:
        found = re.fullmatch(r"event_personal_y(\d{4})m(\d{2})", name)
        if found:
            months.append(f"{found[1]}-{found[2]}")
    return sorted(months)


async def ensure_months(
    conn: AsyncConnection, now: datetime.datetime, *, ahead: int = 2
) -> list[str]:
    """Make the partitions of this month and the next `ahead` that are missing; the
    months made. In the caller's transaction; nothing on SQLite, nor while another
    transaction is making them."""
    if conn.dialect.name != "postgresql":
        return []
    # Replicas starting together: one makes them, the others find them made next time.
    if not await conn.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(_LOCK_KEY))):
        return []
    await short_lock_wait(conn)  # making one locks its table: never hold recording long
    have = set(await monthly_partitions(conn))
    made, month = [], month_of(now)
    for _ in range(ahead + 1):
        if month not in have and await _make(conn, month):
            made.append(month)
        month = _next(month)
    return made


async def _make(conn: AsyncConnection, month: str) -> bool:
    start, end = month_range(month)
    for table in PARTITIONED:
        stranded = await conn.scalar(
            sa.text(
                f"SELECT 1 FROM {table}_default WHERE ts >= :start AND ts < :end LIMIT 1"  # noqa: S608  # nosec B608
            ),
            {"start": start, "end": end},
        )
        if stranded:
            log.warning("partition_not_made", month=month, reason="rows_in_default_partition")
            return False
    for table in PARTITIONED:
        await conn.execute(
            sa.text(
                f"CREATE TABLE IF NOT EXISTS {_name(table, month)} PARTITION OF {table} "
                f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
            )
        )
    return True


async def count_month(conn: AsyncConnection, month: str) -> tuple[int, int]:
    """How many personal parts and subject-index entries `month`'s partitions hold (a
    partition missing holds none)."""
    counts = []
    for table in PARTITIONED:
        name = _name(table, month_of(month_range(month)[0]))
        if await conn.scalar(sa.text("SELECT to_regclass(:name)"), {"name": name}) is None:
            counts.append(0)
            continue
        counts.append(int(await conn.scalar(sa.text(f"SELECT count(*) FROM {name}")) or 0))  # noqa: S608  # nosec B608
    return counts[0], counts[1]


async def drop_month(conn: AsyncConnection, month: str) -> tuple[int, int]:
    """Drop `month`'s partitions, in the caller's transaction; how many personal parts
    and subject-index entries they held. (It locks both tables whole while it waits:
    call `short_lock_wait` first.)"""
    counts = await count_month(conn, month)
    for table in PARTITIONED:
        await conn.execute(sa.text(f"DROP TABLE IF EXISTS {_name(table, month)}"))
    return counts


async def short_lock_wait(conn: AsyncConnection, seconds: float = 0.5) -> None:
    """PostgreSQL: let the rest of the caller's transaction wait `seconds` at most for a
    lock (`lock_not_available` tells the error), below the database's deadlock check."""
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.text(f"SET LOCAL lock_timeout = '{int(seconds * 1000)}ms'"))


def lock_not_available(exc: BaseException) -> bool:
    """Whether a database error is a lock not taken in time (SQLSTATE 55P03)."""
    seen: BaseException | None = exc
    while seen is not None:
        for name in ("sqlstate", "pgcode"):
            if getattr(seen, name, None) == "55P03":
                return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False
