"""What the gateway's unit tests share: a migrated SQLite database of the test's own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.storage import create_engine, upgrade


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on a new SQLite file, migrated to the newest revision (a module may
    define its own `engine`: a copied or seeded database)."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    await upgrade(engine)
    try:
        yield engine
    finally:
        await engine.dispose()
