"""The database: engine, migrations and the connector registry table.

SQLite (embedded, one process) and PostgreSQL (production) run the same Alembic
migrations. The gateway never migrates on its own at start-up: `gateway db upgrade`
does, and `serve` refuses a database that is not at the newest revision.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
from collections.abc import AsyncIterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from connectors import Manifest
from gateway._tables import connectors as connectors_table

__all__ = [
    "DatabaseNotReady",
    "create_engine",
    "current_revision",
    "head_revision",
    "list_connectors",
    "read_snapshot",
    "record_connectors",
    "require_head",
    "upgrade",
]

log = structlog.get_logger(__name__)


_RECORD_LOCK = 0x6777_636F  # advisory lock id for recording connectors


class DatabaseNotReady(RuntimeError):
    """The database is not at the revision this version of the gateway needs."""


def create_engine(url: str, **options: Any) -> AsyncEngine:
    """An async engine; for a SQLite file, its folder is created first.

    SQLite runs in WAL mode with `synchronous=FULL`: a commit is one append and one
    fsync of the write-ahead log (the rollback journal needs several), and a commit
    that returned survives a power cut, as an access record must.
    """
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        options.setdefault("pool_pre_ping", True)
        return create_async_engine(parsed, **options)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    options.setdefault("connect_args", {"timeout": 30})
    engine = create_async_engine(parsed, **options)

    @sa.event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


@contextlib.asynccontextmanager
async def read_snapshot(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection whose reads all see one snapshot, while writers go on.

    Without it each statement sees the database as of its own start (PostgreSQL's READ
    COMMITTED; SQLite outside a transaction), so a reader of several tables, such as the
    audit, could see a batch's leaves but not its checkpoint.
    """
    async with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            # The driver begins transactions only before writes: begin one to read in.
            await conn.exec_driver_sql("BEGIN")
        else:
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            await conn.begin()
        try:
            yield conn
        finally:
            await conn.rollback()


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", "gateway:migrations")
    return config


@cache
def head_revision() -> str:
    """The newest migration this code knows (read once: it is fixed for a release)."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or `None` when it was never migrated."""
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply migrations up to `revision`."""
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


def _digest(manifest: Manifest) -> tuple[dict[str, Any], str]:
    data = manifest.model_dump(mode="json", by_alias=True)
    canonical = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    return data, hashlib.sha256(canonical).hexdigest()


async def record_connectors(
    engine: AsyncEngine, manifests: Sequence[Manifest], *, origin: str
) -> dict[str, int]:
    """Record the manifests in use: new ones at version 1, changed ones a version up.

    Connectors recorded before but absent now are marked `removed`. Returns the
    version of each manifest in use.
    """
    now = datetime.datetime.now(datetime.UTC)
    versions: dict[str, int] = {}
    table = connectors_table
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Replicas starting together: one records at a time (released at commit).
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _RECORD_LOCK})
        rows = {
            r.name: r
            for r in (
                await conn.execute(
                    sa.select(
                        table.c.name, table.c.version, table.c.manifest_sha256, table.c.status
                    )
                )
            )
        }
        for manifest in manifests:
            data, digest = _digest(manifest)
            row = rows.get(manifest.name)
            values = {
                "kind": manifest.kind,
                "title": manifest.title,
                "agency": manifest.agency,
                "manifest": data,
                "manifest_sha256": digest,
                "origin": origin,
                "status": "active",
                "updated_at": now,
            }
            if row is None:
                versions[manifest.name] = 1
                await conn.execute(
                    table.insert().values(
                        name=manifest.name, version=1, registered_at=now, **values
                    )
                )
            elif row.manifest_sha256 != digest or row.status != "active":
                versions[manifest.name] = row.version + (row.manifest_sha256 != digest)
                await conn.execute(
                    table.update()
                    .where(table.c.name == manifest.name)
                    .values(version=versions[manifest.name], **values)
                )
            else:
                versions[manifest.name] = row.version
        gone = set(rows) - {m.name for m in manifests}
        if gone:
            await conn.execute(
                table.update()
                .where(table.c.name.in_(gone), table.c.status == "active")
                .values(status="removed", updated_at=now)
            )
    return versions


async def list_connectors(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Every recorded connector, newest change first."""
    table = connectors_table
    async with engine.connect() as conn:
        result = await conn.execute(
            sa.select(
                table.c.name,
                table.c.kind,
                table.c.version,
                table.c.status,
                table.c.title,
                table.c.origin,
                table.c.updated_at,
            ).order_by(table.c.name)
        )
        return [dict(r._mapping) for r in result]
