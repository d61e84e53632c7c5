"""Migration 0016 on PostgreSQL: years of personal parts move into monthly partitions.

A database at 0015 holding records of three months (one of them a year back) is
upgraded: every part and subject-index entry is kept, with its record's time, each in
its month's partition; the coming months have theirs; and downgrading gives the plain
tables back with every row.
"""

from __future__ import annotations

import datetime

import sqlalchemy as sa
from alembic import command

from gateway.storage import upgrade
from gateway.storage._migrations import _config

UTC = datetime.UTC


async def _downgrade(engine, revision: str) -> None:
    config = _config()

    def run(sync_conn: sa.Connection) -> None:
        config.attributes["connection"] = sync_conn
        command.downgrade(config, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def _rows(conn, table: str) -> set[tuple]:
    found = await conn.execute(sa.text(f"SELECT * FROM {table}"))
    return {tuple(row) for row in found}


async def test_the_upgrade_moves_every_part_into_its_months_partition_and_back(
    blank_postgres,
) -> None:
    engine = blank_postgres
    await upgrade(engine, "0015")
    now = datetime.datetime.now(UTC)
    times = [
        now - datetime.timedelta(days=366),
        now - datetime.timedelta(days=40),
        now - datetime.timedelta(days=40, hours=1),
        now,
    ]
    async with engine.begin() as conn:
        for n, ts in enumerate(times):
            await conn.execute(
                sa.text(
                    "INSERT INTO events (id, type, ts, request_id, outcome, policy_version, "
                    "envelope, envelope_hash) VALUES (:id, 'access', :ts, 'r', 'served', 'v', "
                    "'{}', 'h')"
                ),
                {"id": f"e{n}", "ts": ts},
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO event_personal (event_id, salt, personal, sealed) "
                    "VALUES (:id, 's', NULL, :sealed)"
                ),
                {"id": f"e{n}", "sealed": b"sealed-%d" % n},
            )
            for subject in ("079203001234", "001185000777")[: 1 + n % 2]:
                await conn.execute(
                    sa.text(
                        "INSERT INTO event_subjects (subject, event_id, wrapped_key) "
                        "VALUES (:s, :id, :k)"
                    ),
                    {"s": subject, "id": f"e{n}", "k": b"k" * 60},
                )
        before = {t: await _rows(conn, t) for t in ("event_personal", "event_subjects")}

    await upgrade(engine)
    async with engine.connect() as conn:
        placed = (
            await conn.execute(
                sa.text(
                    "SELECT p.event_id, p.ts, p.tableoid::regclass::text AS part, e.ts AS at "
                    "FROM event_personal p JOIN events e ON e.id = p.event_id"
                )
            )
        ).all()
        entries = (
            await conn.execute(
                sa.text(
                    "SELECT s.event_id, s.tableoid::regclass::text AS part, s.ts, e.ts AS at "
                    "FROM event_subjects s JOIN events e ON e.id = s.event_id"
                )
            )
        ).all()
        partitions = set(
            await conn.scalars(
                sa.text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = 'event_personal'::regclass"
                )
            )
        )
        sealed = dict(
            (await conn.execute(sa.text("SELECT event_id, sealed FROM event_personal"))).all()
        )
        kind = await conn.scalar(
            sa.text("SELECT relkind FROM pg_class WHERE relname = 'event_personal'")
        )
    assert kind == b"p"  # partitioned (a "char")
    assert len(placed) == 4
    assert len(entries) == len(before["event_subjects"]) == 6
    for row in [*placed, *entries]:
        assert row.ts == row.at
        assert row.part.endswith(f"_y{row.at.astimezone(UTC):%Y}m{row.at.astimezone(UTC):%m}")
    assert sealed == {f"e{n}": b"sealed-%d" % n for n in range(4)}
    month = datetime.datetime(now.year, now.month, 1, tzinfo=UTC)
    for _ in range(2):  # two months ahead
        month = (month + datetime.timedelta(days=32)).replace(day=1)
    assert f"event_personal_y{month:%Y}m{month:%m}" in partitions
    assert "event_personal_default" in partitions

    await _downgrade(engine, "0015")
    async with engine.connect() as conn:
        after = {t: await _rows(conn, t) for t in ("event_personal", "event_subjects")}
        kind = await conn.scalar(
            sa.text("SELECT relkind FROM pg_class WHERE relname = 'event_personal'")
        )
    assert kind == b"r"  # a plain table again
    assert after == before
