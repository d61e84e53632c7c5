"""Times go into the database in UTC and come back aware, on SQLite as on PostgreSQL."""

from __future__ import annotations

import datetime
from pathlib import Path

import sqlalchemy as sa

from gateway.storage import Instant, create_engine

UTC7 = datetime.timezone(datetime.timedelta(hours=7))


async def test_sqlite_keeps_utc_and_gives_aware_values_back(tmp_path: Path) -> None:
    table = sa.Table("t", sa.MetaData(), sa.Column("at", Instant()))
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 't.db'}")
    local = datetime.datetime(2026, 1, 31, 15, 0, 0, 123456, tzinfo=UTC7)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.create_all)
            await conn.execute(table.insert(), [{"at": local}, {"at": None}])
            raw = await conn.scalar(sa.text("SELECT at FROM t WHERE at IS NOT NULL"))
            back = (await conn.execute(sa.select(table.c.at).order_by(table.c.at))).scalars()
            values = list(back)
            # A comparison binds through the same type: +07:00 finds the UTC row.
            found = await conn.scalar(
                sa.select(sa.func.count()).select_from(table).where(table.c.at >= local)
            )
    finally:
        await engine.dispose()
    assert raw == "2026-01-31 08:00:00.123456"
    assert values[1] == local
    assert values[1].utcoffset() == datetime.timedelta(0)
    assert values[0] is None
    assert found == 1
