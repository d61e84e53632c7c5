"""The embedded SQLite engine: every connection is set up for an access log."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.storage import create_engine


@pytest.mark.parametrize(
    ("pragma", "wanted"),
    [
        ("journal_mode", "wal"),
        ("synchronous", 2),  # FULL: a commit that returned survives a power cut
        ("foreign_keys", 1),
        # What forgetting deletes is overwritten, whatever the build's default is.
        ("secure_delete", 1),
    ],
)
async def test_every_connection_is_set_up(tmp_path: Path, pragma: str, wanted: object) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    try:
        for _ in range(2):  # a new connection each time
            async with engine.connect() as conn:
                assert (await conn.exec_driver_sql(f"PRAGMA {pragma}")).scalar() == wanted
            await engine.dispose()
    finally:
        await engine.dispose()


async def test_personal_parts_are_read_by_record_through_an_index(tmp_path: Path) -> None:
    """The audit reads every record's part: by the record's id, never scanning the index."""
    import sqlalchemy as sa

    from gateway.storage import event_personal, event_subjects, upgrade

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    try:
        await upgrade(engine)
        query = (
            sa.select(event_personal.c.event_id, event_subjects.c.wrapped_key)
            .select_from(event_personal)
            .outerjoin(event_subjects, event_subjects.c.event_id == event_personal.c.event_id)
            .where(event_personal.c.event_id.in_(["a", "b"]))
        )
        compiled = query.compile(engine.sync_engine, compile_kwargs={"literal_binds": True})
        async with engine.connect() as conn:
            plan = " ".join(
                str(row[-1]) for row in await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")
            )
    finally:
        await engine.dispose()
    assert "ix_event_subjects_event_id" in plan, plan
