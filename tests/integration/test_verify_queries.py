"""What `gateway audit verify` counts with anti-joins, on SQLite and PostgreSQL.

Records lost on their way to the log, records still queued for it, and sealed parts
nobody can open any more are found by `NOT EXISTS` and outer joins (a `NOT IN
(subquery)` turns quadratic on PostgreSQL beyond `work_mem`); these tests pin what
those queries find. `make bench` times them over a million records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bench._log import access_event
from gateway.log import Report, checkpoint_verifiers
from gateway.log.store import TransparencyLog
from gateway.records import insert_events, verify_database
from gateway.storage import create_engine, event_subjects, log_queue
from keys import KeyRing

ORIGIN = "127.0.0.1:8000/log"

pytestmark = pytest.mark.own_database


async def _verify(engine: Any, ring: KeyRing) -> Report:
    return await verify_database(engine, checkpoint_verifiers(ring, ORIGIN), origin=ORIGIN)


async def test_verify_counts_queued_records_finds_a_lost_one_and_unopenable_parts(
    migrated: str, tmp_path: Path
) -> None:
    KeyRing.generate(tmp_path / "keys")
    ring = KeyRing.load(tmp_path / "keys")
    engine = create_engine(migrated)
    try:
        recorded = [access_event(i) for i in range(7)]
        async with engine.begin() as conn:
            await insert_events(conn, recorded)
        store = TransparencyLog(engine, ring, origin=ORIGIN)
        await store.ensure_checkpoint()
        assert await store.integrate(max_batch=4) == 4

        # Three recorded and queued, not yet in the log: no fault.
        statements: list[str] = []

        def capture(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)

        sa.event.listen(engine.sync_engine, "before_cursor_execute", capture)
        report = await _verify(engine, ring)
        sa.event.remove(engine.sync_engine, "before_cursor_execute", capture)
        # No `NOT IN (subquery)`: beyond work_mem PostgreSQL rescans it for every record.
        assert statements
        assert not [s for s in statements if "NOT IN (SELECT" in " ".join(s.upper().split())]
        assert report.ok, report.problem
        assert "every event is in the log or queued (3 queued)" in report.checked

        # A record kept out of the queue is neither in the log nor queued.
        lost = access_event(7)
        async with engine.begin() as conn:
            await insert_events(conn, [lost], queue=False)
        report = await _verify(engine, ring)
        assert not report.ok
        assert report.problem is not None
        assert "1 recorded events are neither in the log nor queued" in report.problem

        # Queued after all, it is found there; once integrated, nothing is queued.
        async with engine.begin() as conn:
            await conn.execute(
                log_queue.insert().values(event_id=lost.id, leaf_hash=lost.leaf_hash)
            )
        report = await _verify(engine, ring)
        assert report.ok, report.problem
        assert "every event is in the log or queued (4 queued)" in report.checked
        while await store.integrate(max_batch=4):
            pass
        report = await _verify(engine, ring)
        assert report.ok, report.problem
        assert "every event is in the log or queued (0 queued)" in report.checked
        assert not any("opened by nobody" in line for line in report.checked)

        # Two records whose people's wrapped keys are all gone (as forgetting leaves
        # them): counted as parts nobody can open, and no fault.
        async with engine.begin() as conn:
            await conn.execute(
                event_subjects.update()
                .where(event_subjects.c.event_id.in_([recorded[1].id, recorded[5].id]))
                .values(wrapped_key=None)
            )
        report = await _verify(engine, ring)
        assert report.ok, report.problem
        assert (
            "2 personal parts sealed for people all since forgotten (opened by nobody)"
            in report.checked
        )
    finally:
        await engine.dispose()
