"""Engines for the two backends, and reads that see one snapshot.

SQLite (embedded, one process) and PostgreSQL (production) hold the same tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gateway.background import Background

__all__ = [
    "Transactions",
    "WalCheckpoints",
    "create_engine",
    "create_sequencer_engine",
    "insert_many",
    "insert_many_through",
    "read_snapshot",
    "sqlite_file",
    "sqlite_sync_engine",
]

T = TypeVar("T")
log = structlog.get_logger(__name__)

_AUTOCHECKPOINT_PAGES = 10_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # What is deleted (a forgotten person's key) is overwritten, not left in free pages.
    cursor.execute("PRAGMA secure_delete=ON")
    # The gateway copies the log into the file from a loop of its own (`WalCheckpoints`),
    # off every commit's path; a connection does it at its commit only past this many
    # pages (about 40 MB), should no such loop run (the command line's connections).
    cursor.execute(f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT_PAGES}")
    cursor.close()


_DRIVER_INSERTS = frozenset({"sqlite", "postgresql"})
"""Backends whose inserts `insert_many` hands to the driver (both take positional
parameters: SQLite's `?`, asyncpg's `$1`)."""


def insert_many(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """`conn.execute(table.insert(), rows)`: rows that all name the same columns.

    On SQLite and PostgreSQL the rows go to the driver's `executemany` as SQLAlchemy
    would send them (the same statement, each column through its type's own conversion:
    times, JSON), without the statement's work for every row: the recorder writes a
    dozen rows a record, and on PostgreSQL it does so on the event loop.
    """
    if not rows:
        return
    columns = frozenset(rows[0])
    if conn.dialect.name not in _DRIVER_INSERTS or any(row.keys() != columns for row in rows):
        conn.execute(table.insert(), rows)
        return
    conn.exec_driver_sql(*_driver_rows(conn.dialect, table, columns, rows))


async def insert_many_through(
    driver: Any,
    dialect: sa.Dialect,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    then: str = "",
) -> None:
    """`insert_many` on PostgreSQL's driver connection itself (asyncpg's), in the
    transaction it holds: the same statement and conversions, without SQLAlchemy's work
    for each statement (half a round trip's cost here, on the event loop). The rows all
    name the same columns. `then`: a clause after the values (`ON CONFLICT ...`)."""
    if not rows:
        return
    columns = frozenset(rows[0])
    if any(row.keys() != columns for row in rows):
        raise ValueError(f"rows for {table.name} name different columns")
    sql, values = _driver_rows(dialect, table, columns, rows)
    await driver.executemany(f"{sql} {then}" if then else sql, values)


def _driver_rows(
    dialect: sa.Dialect,
    table: sa.Table,
    columns: frozenset[str],
    rows: Sequence[Mapping[str, Any]],
) -> tuple[str, list[tuple[Any, ...]]]:
    """The driver's INSERT of `rows` (each naming `columns`) into `table`, and each
    row's parameters in order."""
    sql, order = _driver_insert(dialect, table, columns)
    return sql, [
        tuple(row[name] if convert is None else convert(row[name]) for name, convert in order)
        for row in rows
    ]


@functools.lru_cache(maxsize=64)
def _driver_insert(
    dialect: sa.Dialect, table: sa.Table, columns: frozenset[str]
) -> tuple[str, tuple[tuple[str, Callable[[Any], Any] | None], ...]]:
    """The INSERT of `columns` into `table` as the driver takes it, and its parameters
    in order, each with its column's conversion (its type's bind processor, if any)."""
    statement = table.insert().values({name: sa.bindparam(name) for name in columns})
    compiled = statement.compile(dialect=dialect)
    assert compiled.positiontup is not None  # the parameters are positional
    order = tuple(
        (name, table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
        for name in compiled.positiontup
    )
    return str(compiled), order


def sqlite_file(url: sa.URL) -> str | None:
    """The path of the SQLite file `url` names; `None` for another backend or memory."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return url.database


def json_text(value: Any) -> str:
    """A JSON column's text, written by orjson (a record's envelope and personal part
    are dumped on every commit); what orjson refuses (an integer beyond 64 bits, say)
    is written by the standard library, as before."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value)


def create_engine(url: str, **options: Any) -> AsyncEngine:
    """An async engine; for a SQLite file, its folder is created first.

    SQLite runs in WAL mode with `synchronous=FULL`: a commit is one append and one
    fsync of the write-ahead log (the rollback journal needs several), and a commit
    that returned survives a power cut, as an access record must.
    """
    parsed = sa.make_url(url)
    options.setdefault("json_serializer", json_text)
    if parsed.get_backend_name() != "sqlite":
        options.setdefault("pool_pre_ping", True)
        return create_async_engine(parsed, **options)
    if (path := sqlite_file(parsed)) is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    options.setdefault("connect_args", {"timeout": 30})
    # Connections to a file are cheap to keep and dear to open (a thread, the pragmas,
    # the schema read again): enough are kept for the requests in flight, so that a
    # burst does not open and close one per request.
    options.setdefault("pool_size", 32)
    engine = create_async_engine(parsed, **options)
    sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def sqlite_sync_engine(url: str | sa.URL, connections: int = 1) -> sa.Engine:
    """An engine of the standard driver to the SQLite file of `url` (an async engine's
    too), with the gateway's pragmas: at most `connections` connections, each usable
    from any thread (one at a time)."""
    engine = sa.create_engine(
        sa.make_url(url).set(drivername="sqlite"),
        connect_args={"timeout": 30, "check_same_thread": False},
        pool_size=connections,
        max_overflow=0,
        json_serializer=json_text,
    )
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class Transactions:
    """Transactions run whole: `await run(work, ...)` calls `work(conn, ...)` with a
    synchronous connection in a transaction of its own, committed when it returns.

    For a SQLite file the transaction runs in a worker thread, on a connection of the
    standard driver to the same file (same pragmas): one hop from the event loop for
    the whole transaction. Its statements awaited one by one on the loop would each
    wait for the loop to come round, which under load stretches a commit (and the
    write lock held by it) many times over. For PostgreSQL it runs on the async
    engine's connection (`run_sync`), statement by statement as before.
    """

    def __init__(self, engine: AsyncEngine, *, connections: int = 1) -> None:
        """`connections`: how many transactions may run at once (a writer needs one)."""
        self._engine = engine
        self._connections = connections
        self._file = sqlite_file(engine.url) is not None
        self._threaded: sa.Engine | None = None

    @property
    def threaded(self) -> bool:
        """Whether transactions run in a worker thread (a SQLite file)."""
        return self._file

    async def run(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`work(conn, *args, **kwargs)` in a transaction, committed when it returns."""
        if self._file:
            return await asyncio.to_thread(self._in_thread, work, *args, **kwargs)
        async with self._engine.begin() as conn:
            return await conn.run_sync(work, *args, **kwargs)

    async def read(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`work(conn, *args, **kwargs)` that only reads: no transaction is committed
        (each statement sees the database as of its start, as outside a transaction)."""
        if self._file:
            return await asyncio.to_thread(self._read_in_thread, work, *args, **kwargs)
        async with self._engine.connect() as conn:
            return await conn.run_sync(work, *args, **kwargs)

    def _read_in_thread(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self._sync().connect() as conn:
            return work(conn, *args, **kwargs)

    def run_here(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`run` in the calling thread (a SQLite file only): for a writer with a
        thread of its own, never the event loop's."""
        if not self._file:
            raise RuntimeError("run_here is for a SQLite file")
        return self._in_thread(work, *args, **kwargs)

    def _in_thread(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self._sync().begin() as conn:
            return work(conn, *args, **kwargs)

    def _sync(self) -> sa.Engine:
        if self._threaded is None:
            # Each connection is used by one thread at a time (it may move between the
            # pool's threads); a writer (the recorder, the sequencer) has one of its own.
            self._threaded = sqlite_sync_engine(self._engine.url, self._connections)
        return self._threaded

    def dispose(self) -> None:
        """Close the worker's connection (it is opened again when needed)."""
        if self._threaded is not None:
            self._threaded.dispose()


class WalCheckpoints(Background):
    """A SQLite file's write-ahead log copied into the file twice a second, in a thread.

    With SQLite's own checkpoints (every 1,000 pages) the commit that crossed the mark
    copied them and synced the file before it returned: the recorder's, so a request's
    answer waited for it. A passive checkpoint here waits for no writer and no reader
    (what a reader still sees is copied by the next); commits only append to the log
    and sync it, as before. Nothing for PostgreSQL or a database in memory.
    """

    _name = "wal-checkpoints"

    def __init__(self, engine: AsyncEngine, *, every: float = 0.5) -> None:
        self._path = sqlite_file(engine.url)
        self._every = every

    async def _run(self) -> None:
        path = self._path
        if path is None:
            return
        while True:
            await asyncio.sleep(self._every)
            try:
                await asyncio.to_thread(checkpoint, path)
            except sqlite3.Error as exc:  # the next one copies what this one could not
                log.warning("wal_checkpoint_failed", error=type(exc).__name__)


def checkpoint(path: str) -> tuple[int, int]:
    """A passive checkpoint of the SQLite file at `path`: the log's pages, and those
    copied into the file."""
    with contextlib.closing(sqlite3.connect(path, timeout=1)) as conn:
        _busy, pages, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(pages), int(copied)


def create_sequencer_engine(url: str, timeout: float) -> AsyncEngine | None:
    """PostgreSQL: the sequencer's own engine, whose sessions cannot hold the log's lock
    for long once they stop answering; `None` for SQLite (one process: the main engine).

    A holder that is partitioned away or frozen keeps its transaction, and the row lock
    of `log_state` with it, until the server notices: here the server ends such a
    session after `timeout` idle in its transaction (`idle_in_transaction_session_timeout`),
    a statement after twice that (`statement_timeout`), and a connection whose sent data
    stays unacknowledged that long (`tcp_user_timeout`); the client gives up on a
    statement or a connection after twice `timeout`. These apply to the sequencer's
    sessions only, never database-wide: `gateway audit verify` reads one long snapshot.
    """
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return None
    ms = str(int(timeout * 1000))
    return create_async_engine(
        parsed,
        pool_size=1,
        max_overflow=0,
        pool_pre_ping=True,
        connect_args={
            "server_settings": {
                "idle_in_transaction_session_timeout": ms,
                "statement_timeout": str(int(timeout * 2000)),
                "tcp_user_timeout": ms,
                "application_name": "gateway-sequencer",
            },
            "command_timeout": timeout * 2,
            "timeout": timeout * 2,
        },
    )


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
