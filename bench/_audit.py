"""`gateway audit verify` over a large access log, on SQLite and PostgreSQL.

A database of its own per backend gets `records` access records made by the gateway's
own code: `insert_events` seals each personal part for the people it names and queues
the record, as a request's commit does, and the sequencer (`TransparencyLog.integrate`)
puts them in the log in large batches, signing a checkpoint after each. No HTTP: the
records are made in this process, in bulk. Then `verify_database`, what
`gateway audit verify` runs, checks the whole log, and the table gives the time.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from bench._log import access_event, database, keyring
from gateway.log import checkpoint_verifiers
from gateway.log.store import TransparencyLog
from gateway.records import insert_events, verify_database
from keys import KeyRing

__all__ = ["build", "measure"]

ORIGIN = "bench/log"
_CHUNK = 5_000
_BATCH = 16_384
"""Events a batch integrates: its queue rows are deleted in one statement, under
PostgreSQL's limit of 32,767 parameters."""
_SUBJECTS_PER_RECORD = 10
"""A person is named by ten records on average, as in the search benchmark."""


@dataclass(frozen=True)
class Built:
    records: int
    insert_seconds: float
    integrate_seconds: float


async def build(engine: AsyncEngine, ring: KeyRing, records: int) -> Built:
    """Record `records` access records and integrate them all into the log."""
    people = max(1, records // _SUBJECTS_PER_RECORD)
    started = time.perf_counter()
    for first in range(0, records, _CHUNK):
        batch = [access_event(i % people) for i in range(first, min(records, first + _CHUNK))]
        async with engine.begin() as conn:
            await insert_events(conn, batch)
    inserted = time.perf_counter()
    store = TransparencyLog(engine, ring, origin=ORIGIN)
    await store.ensure_checkpoint()
    while await store.integrate(max_batch=_BATCH):
        pass
    if await store.size() != records:
        raise RuntimeError("the sequencer did not integrate every record")
    return Built(records, inserted - started, time.perf_counter() - inserted)


async def verify_seconds(engine: AsyncEngine, ring: KeyRing) -> float:
    """The time of one whole `verify_database`; fails if the log does not verify."""
    started = time.perf_counter()
    report = await verify_database(engine, checkpoint_verifiers(ring, ORIGIN), origin=ORIGIN)
    seconds = time.perf_counter() - started
    if not report.ok:
        raise RuntimeError(f"the bench log does not verify: {report.problem}")
    return seconds


async def table_bytes(engine: AsyncEngine) -> list[tuple[str, int]]:
    """PostgreSQL: each table's whole size (rows, TOAST and indexes), largest first."""
    async with engine.connect() as conn:
        rows = await conn.exec_driver_sql(
            "SELECT relname, pg_total_relation_size(relid) FROM pg_stat_user_tables ORDER BY 2 DESC"
        )
        found: list[Any] = list(rows)
        return [(str(name), int(size)) for name, size in found]


def _bytes_table(records: int, sizes: list[tuple[str, int]]) -> list[str]:
    total = sum(size for _, size in sizes)
    lines = [
        f"\nPostgreSQL, what {records:,} records take on disk (rows, TOAST and indexes):\n",
        "| table | MB | bytes a record |",
        "|---|---|---|",
    ]
    for name, size in sizes:
        if size >= 64 * 1024:
            lines.append(f"| {name} | {size / 1e6:.1f} | {size / records:.0f} |")
    lines.append(f"| all | {total / 1e6:.1f} | {total / records:.0f} |")
    return lines


async def measure(*, records: int, backends: list[str]) -> str:
    """Build and verify on each backend; the Markdown table."""
    lines = [
        f"`gateway audit verify` (in process) over {records:,} access records, each sealed "
        f"for the person it names ({max(1, records // _SUBJECTS_PER_RECORD):,} people), "
        f"integrated in batches of at most {_BATCH}.\n",
        "| backend | records | insert s | integrate s | verify s | records/s verified |",
        "|---|---|---|---|---|---|",
    ]
    on_disk: list[str] = []
    with tempfile.TemporaryDirectory(prefix="gateway-bench-keys-") as tmp:
        ring = keyring(Path(tmp))
        for backend in backends:
            async with database(backend) as engine:
                built = await build(engine, ring, records)
                sys.stderr.write(
                    f"  built: {records} records on {backend} in "
                    f"{built.insert_seconds + built.integrate_seconds:.0f} s; verifying\n"
                )
                if engine.dialect.name == "postgresql":
                    async with engine.begin() as conn:
                        await conn.exec_driver_sql("ANALYZE")
                seconds = await verify_seconds(engine, ring)
                sizes = await table_bytes(engine) if engine.dialect.name == "postgresql" else []
            lines.append(
                f"| {backend} | {records} | {built.insert_seconds:.0f} "
                f"| {built.integrate_seconds:.0f} | {seconds:.1f} | {records / seconds:.0f} |"
            )
            if sizes:
                on_disk = _bytes_table(records, sizes)
    return "\n".join(lines + on_disk) + "\n"
