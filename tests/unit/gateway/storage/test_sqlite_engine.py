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
