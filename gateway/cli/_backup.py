"""`gateway backup` and `gateway restore`: the database, and what its log holds.

SQLite is copied with its online backup API (a consistent copy while the gateway
writes); PostgreSQL with `pg_dump -Fc` in a snapshot the command exports, so the log
it reports is exactly the one in the dump. Both end with a manifest (JSON on standard
output): the backend, the file, its size and SHA-256, the database revision, and the
log's newest checkpoint (origin, size, root). Keys (`GATEWAY_KEYS_DIR`) are files of
their own, never in a database backup: back them up apart (see docs/operations.md).

`restore` refuses a target that holds tables unless `--force`; PostgreSQL restores in
one transaction (the gateway's tables dropped, then the script `pg_restore` writes,
run by `psql --single-transaction`), so a failed restore leaves the database as it
was. A restored database is checked against what was published of its log
(`gateway log check`): gateways sign nothing until it continues.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import shutil
import sqlite3
import subprocess  # nosec B404
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from gateway.cli._common import print_json, settings_from_environment
from gateway.config import GatewaySettings
from gateway.errors import Conflict, InvalidArgument
from gateway.instants import utc_now

__all__ = ["add_backup_commands"]


def _sqlite_path(url: str) -> Path:
    from gateway.storage import sqlite_file

    database = sqlite_file(make_url(url))
    if database is None:
        raise InvalidArgument("The SQLite database of GATEWAY_DATABASE_URL is not a file.")
    return Path(database)


def _postgres_env(url: str) -> dict[str, str]:
    """libpq's variables for the database of `url` (the password never in argv)."""
    parsed = make_url(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for name, value in (
        ("PGHOST", parsed.host),
        ("PGPORT", parsed.port),
        ("PGUSER", parsed.username),
        ("PGPASSWORD", parsed.password),
        ("PGDATABASE", parsed.database),
    ):
        if value is not None:
            env[name] = str(value)
    return env


def _tool(name: str) -> str:
    """The absolute path of `name` (pg_dump, pg_restore): run with fixed arguments, no shell."""
    found = shutil.which(name)
    if found is None:
        raise InvalidArgument(
            f"`{name}` is not installed: install the PostgreSQL client tools of the "
            f"server's version.",
            tool=name,
        )
    return found


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _log_of(conn: sa.Connection) -> dict[str, Any]:
    """The newest checkpoint and revision of the database open on `conn`."""
    row = conn.execute(
        sa.text("SELECT size, root, note FROM log_checkpoints ORDER BY size DESC LIMIT 1")
    ).first()
    revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    log = (
        None
        if row is None
        else {
            "origin": str(row.note).split("\n", 1)[0],
            "size": int(row.size),
            "root": base64.b64encode(bytes(row.root)).decode(),
        }
    )
    return {"revision": revision, "log": log}


def _manifest(backend: str, path: Path, found: dict[str, Any]) -> dict[str, Any]:
    return {
        "backend": backend,
        "file": str(path),
        "bytes": path.stat().st_size,
        "sha256": _digest(path),
        "createdAt": utc_now().isoformat(timespec="seconds"),
        **found,
    }


def _sqlite_log(path: Path) -> dict[str, Any]:
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            return _log_of(conn)
    finally:
        engine.dispose()


def _backup(args: argparse.Namespace) -> int:
    settings = settings_from_environment()
    target = Path(args.to)
    if target.exists() and not args.force:
        raise Conflict(f"{target} exists: choose another file, or --force to replace it.")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    url = settings.database_url.get_secret_value()
    if settings.is_sqlite:
        source = _sqlite_path(url)
        if not source.exists():
            raise InvalidArgument(f"There is no database at {source}.")
        partial.unlink(missing_ok=True)
        with sqlite3.connect(source) as src, sqlite3.connect(partial) as out:
            src.backup(out)
        src.close()
        out.close()
        found = _sqlite_log(partial)
        backend = "sqlite"
    else:
        found = asyncio.run(_pg_dump(url, partial))
        backend = "postgresql"
    partial.replace(target)
    print_json(_manifest(backend, target, found))
    return 0


async def _pg_dump(url: str, target: Path) -> dict[str, Any]:
    """Dump in a snapshot exported from a transaction that reads the log in it."""
    from gateway.storage import create_engine

    tool = _tool("pg_dump")
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                snapshot = await conn.scalar(sa.text("SELECT pg_export_snapshot()"))
                found = await conn.run_sync(_log_of)
                done = await asyncio.to_thread(
                    subprocess.run,
                    [tool, "-Fc", "--no-owner", f"--snapshot={snapshot}", "-f", str(target)],
                    env=_postgres_env(url),
                    capture_output=True,
                    text=True,
                    check=False,
                )
    finally:
        await engine.dispose()
    if done.returncode != 0:
        await asyncio.to_thread(target.unlink, missing_ok=True)
        raise InvalidArgument(f"pg_dump failed: {done.stderr.strip()}", tool="pg_dump")
    return found


def _restore(args: argparse.Namespace) -> int:
    settings = settings_from_environment()
    source = Path(args.source)
    if not source.is_file():
        raise InvalidArgument(f"There is no backup at {source}.")
    url = settings.database_url.get_secret_value()
    if settings.is_sqlite:
        found = _restore_sqlite(source, _sqlite_path(url), force=args.force)
    else:
        found = _restore_postgres(source, url, force=args.force)
    found["restoredFrom"] = str(source)
    print_json(found)
    _after_restore(settings)
    return 0


def _sqlite_tables(path: Path) -> int:
    if not path.exists() or path.stat().st_size == 0:
        return 0
    with sqlite3.connect(path) as conn:
        count = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()
    conn.close()
    return int(count[0])


def _restore_sqlite(source: Path, target: Path, *, force: bool) -> dict[str, Any]:
    try:
        found = _sqlite_log(source)
    except sa.exc.SQLAlchemyError:
        raise InvalidArgument(
            f"{source} is not a backup of the gateway's SQLite database."
        ) from None
    if _sqlite_tables(target) and not force:
        raise Conflict(
            f"The database {target} is not empty: stop the gateway, then restore with "
            f"--force to replace it (take a backup of it first).",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    # Into the database in place, through SQLite: its journal stays consistent.
    with sqlite3.connect(source) as src, sqlite3.connect(target) as out:
        src.backup(out)
    src.close()
    out.close()
    return {"backend": "sqlite", **found}


def _restore_postgres(source: Path, url: str, *, force: bool) -> dict[str, Any]:
    tool = _tool("pg_restore")
    env = _postgres_env(url)
    listed = subprocess.run(  # noqa: S603  # nosec B603
        [tool, "--list", str(source)], env=env, capture_output=True, text=True, check=False
    )
    if listed.returncode != 0:
        raise InvalidArgument(f"{source} is not a pg_dump archive: {listed.stderr.strip()}")
    tables = asyncio.run(_pg_tables(url))
    if tables and not force:
        raise Conflict(
            "The database is not empty: stop the gateways, then restore with --force to "
            "replace it (take a backup of it first).",
            tables=tables,
        )
    # The script pg_restore writes, after the gateway's tables are dropped, all in one
    # psql transaction: `pg_restore --clean` cannot drop the partitions of a
    # partitioned table one constraint at a time, and a failure must change nothing.
    prelude = asyncio.run(_pg_drop_tables(url))
    script = subprocess.Popen(  # noqa: S603  # nosec B603
        [tool, "--no-owner", "--exit-on-error", "-f", "-", str(source)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    psql = subprocess.Popen(  # noqa: S603  # nosec B603
        [
            _tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
            "-d", env.get("PGDATABASE", "postgres"), "-f", "-",
        ],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert script.stdout is not None
    assert psql.stdin is not None
    try:
        psql.stdin.write(prelude.encode())
        for block in iter(lambda: script.stdout.read(1 << 16), b""):  # type: ignore[union-attr]
            psql.stdin.write(block)
        psql.stdin.close()
    except BrokenPipeError:
        pass  # psql stopped at an error: it says which below
    script.stdout.close()
    script_errors = script.stderr.read().decode(errors="replace") if script.stderr else ""
    psql_errors = psql.stderr.read().decode(errors="replace") if psql.stderr else ""
    if script.wait() != 0 or psql.wait() != 0:
        raise InvalidArgument(
            f"pg_restore failed, the database is as it was: "
            f"{(script_errors + psql_errors).strip()}",
            tool="pg_restore",
        )
    return {"backend": "postgresql", **asyncio.run(_pg_log(url))}


async def _pg_drop_tables(url: str) -> str:
    """The statement that drops every table of the database's schema (partitions with
    their tables), for the restore's transaction."""
    from gateway.storage import create_engine

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            names = list(
                await conn.scalars(
                    sa.text(
                        "SELECT quote_ident(c.relname) FROM pg_class c "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') "
                        "AND NOT c.relispartition ORDER BY 1"
                    )
                )
            )
    finally:
        await engine.dispose()
    return f"DROP TABLE IF EXISTS {', '.join(names)} CASCADE;\n" if names else ""


async def _pg_tables(url: str) -> int:
    from gateway.storage import create_engine

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            found = await conn.scalar(
                sa.text(
                    "SELECT count(*) FROM information_schema.tables "
                    "WHERE table_schema = current_schema()"
                )
            )
    finally:
        await engine.dispose()
    return int(found or 0)


async def _pg_log(url: str) -> dict[str, Any]:
    from gateway.storage import create_engine

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_log_of)
    finally:
        await engine.dispose()


def _after_restore(settings: GatewaySettings) -> None:
    """Say whether the restored log continues what was published of it."""
    from gateway.cli._continuity import opened_guard
    from gateway.errors import LogDiscontinuity
    from gateway.storage import create_engine, head_revision

    async def run() -> tuple[str | None, LogDiscontinuity | None]:
        engine = create_engine(settings.database_url.get_secret_value())
        try:
            async with engine.connect() as conn:
                revision = await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
            async with opened_guard(settings, engine, signing=False) as (_store, guard):
                try:
                    await guard.check(ask_witnesses=True)
                except LogDiscontinuity as found:
                    return revision, found
            return revision, None
        finally:
            await engine.dispose()

    revision, found = asyncio.run(run())
    if revision != head_revision():
        sys.stderr.write(
            f"gateway: the database is at revision {revision}: run `gateway db upgrade` "
            f"before starting the gateway\n"
        )
    if found is not None:
        sys.stderr.write(
            f"gateway: {found.code}: {found.message}\n"
            f"gateway: the gateways will record and serve, and sign nothing, until the "
            f"missing leaves are brought back (a newer backup) or `gateway log declare-loss`\n"
        )


def add_backup_commands(sub: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add `backup` and `restore` to the `gateway` command line."""
    backup = command(
        sub,
        "backup",
        _backup,
        "copy the database (SQLite online backup, PostgreSQL pg_dump -Fc) and print its "
        "manifest: the log's newest checkpoint in it (keys are backed up apart)",
    )
    backup.add_argument("--to", required=True, help="the backup file to write")
    backup.add_argument("--force", action="store_true", help="replace the file if it exists")
    restore = command(
        sub,
        "restore",
        _restore,
        "restore the database from a backup (gateways stopped); then the log is checked "
        "against what was published of it",
    )
    restore.add_argument("--from", dest="source", required=True, help="the backup file")
    restore.add_argument(
        "--force", action="store_true", help="replace a database that is not empty"
    )
