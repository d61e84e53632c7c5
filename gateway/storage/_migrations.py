"""Migrations: Alembic, the same on both backends.

The gateway never migrates on its own at start-up: `gateway db upgrade` does, and
`serve` refuses a database that is not at the newest revision. Alembic is imported when
it is used: what only writes to a database (the recorder's writer process) does not
load it.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["DatabaseNotReady", "current_revision", "head_revision", "require_head", "upgrade"]

log = structlog.get_logger(__name__)


class DatabaseNotReady(RuntimeError):
    """The database is not at the revision this version of the gateway needs."""


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "gateway.storage:migrations")
    return config


@cache
def head_revision() -> str:
    """The newest migration this code knows (read once: it is fixed for a release)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or `None` when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply migrations up to `revision`."""
    from alembic import command

    config = _config()

    def run(sync_conn: sa.Connection) -> None:
        config.attributes["connection"] = sync_conn
        command.upgrade(config, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)
    log.info("database_upgraded", revision=revision, backend=engine.dialect.name)


async def require_head(engine: AsyncEngine) -> None:
    """Raise `DatabaseNotReady` unless the database is at the newest revision."""
    current, head = await current_revision(engine), head_revision()
    if current != head:
        raise DatabaseNotReady(
            f"the database is at revision {current or 'none'}, this gateway needs {head}: "
            "run `gateway db upgrade`"
        )
