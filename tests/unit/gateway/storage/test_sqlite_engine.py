"""The embedded SQLite engine: every connection is set up for an access log."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

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
        # The gateway's own loop copies the log into the file (WalCheckpoints).
        ("wal_autocheckpoint", 10_000),
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


def _size(path: Path) -> int:
    return path.stat().st_size


async def _fill(engine: Any, pages: int) -> None:
    """One commit of about `pages` pages of rows."""
    async with engine.begin() as conn:
        await conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS filler (blob BLOB)")
        await conn.exec_driver_sql(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO filler SELECT randomblob(3000) FROM n",
            (pages,),
        )


async def test_commits_leave_the_log_to_the_checkpoint_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit appends to the write-ahead log and copies nothing into the file (below
    the 10,000 pages mark); `WalCheckpoints` copies it, in a thread, without a writer."""
    from gateway.storage import WalCheckpoints, _engine

    # What each of the loop's checkpoints did: (the log's pages, those copied).
    done: list[tuple[int, int]] = []
    real = _engine.checkpoint
    monkeypatch.setattr(_engine, "checkpoint", lambda path: done.append(real(path)) or done[-1])
    path = tmp_path / "gateway.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    loop = WalCheckpoints(engine, every=0.05)
    try:
        await _fill(engine, 2_000)  # about 8 MB
        wal = Path(f"{path}-wal")
        assert _size(wal) > 2_000 * 3_000
        assert _size(path) < 1_000_000, "a commit copied the log into the file"
        await loop.start()
        # Until one checkpoint copied the whole log (a passive one leaves what a reader
        # still sees to the next; on a busy machine the first may copy only part).
        for _ in range(400):
            if done and done[-1][0] == done[-1][1] > 2_000:
                break
            await asyncio.sleep(0.05)
        assert done, "the loop ran no checkpoint"
        assert done[-1][0] == done[-1][1] > 2_000, f"the loop copied part of the log: {done}"
        assert _size(path) > 2_000 * 3_000
        # The log is used again from its start: it does not grow with every commit.
        size = _size(wal)
        await _fill(engine, 200)
        assert _size(wal) == size
    finally:
        await loop.stop()
        await engine.dispose()


async def test_no_checkpoint_loop_without_a_file() -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from gateway.storage import WalCheckpoints

    for url in ("sqlite+aiosqlite://", "postgresql+asyncpg://postgres@127.0.0.1/none"):
        loop = WalCheckpoints(create_async_engine(url), every=0.01)
        await loop.start()
        await asyncio.sleep(0.05)
        await loop.stop()  # it ran nothing and did not fail


def test_checkpoint_failures_are_logged_and_retried(tmp_path: Path) -> None:
    """A checkpoint that cannot run (here: no file at all) raises for the loop to log."""
    import sqlite3

    from gateway.storage._engine import checkpoint

    with pytest.raises(sqlite3.Error):
        checkpoint(str(tmp_path / "missing" / "gateway.db"))


def test_json_columns_are_written_by_orjson_with_the_standard_library_behind() -> None:
    from gateway.storage._engine import json_text

    assert json_text({"b": "Nguyễn", "a": [1, None]}) == '{"b":"Nguyễn","a":[1,null]}'
    assert json_text({1: "x"}) == '{"1":"x"}'  # as the standard library writes it
    assert json.loads(json_text({"n": 2**70})) == {"n": 2**70}  # beyond orjson's integers
