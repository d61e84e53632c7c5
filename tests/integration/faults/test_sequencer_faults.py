"""A sequencer that holds the log's lock and stops answering cannot hold the log.

The holder is cut off by the fault proxy (a partition: its socket stays open, nothing
moves) or frozen with SIGSTOP in a process of its own, each time just before it
commits a batch. The database ends its silent session (the sequencer's own session
settings, `GATEWAY_SEQUENCER_TIMEOUT`), the other sequencer integrates the same
events and signs the next checkpoint, and the old holder's late commit fails: no gap,
no duplicate, and the log verifies. Order and outcome are asserted, not timings.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import HANG_GUARD
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from bench._log import access_event, database, locks_lost
from bench._takeover import FROZEN_EXIT, frozen_holder
from gateway.log import checkpoint_verifiers
from gateway.log.store import TransparencyLog
from gateway.records import insert_events, verify_database
from gateway.storage import create_sequencer_engine
from keys import KeyRing

ORIGIN = "127.0.0.1:8000/log"
TIMEOUT = 1.0  # the sequencer's session timeout here (the default is 5 s)
QUEUED = 40

pytestmark = pytest.mark.own_database


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    KeyRing.generate(tmp_path / "keys")
    return tmp_path / "keys"


@pytest.fixture
async def engine(postgres_admin: str) -> AsyncIterator[AsyncEngine]:
    async with database("postgresql") as engine:
        async with engine.begin() as conn:
            await insert_events(conn, [access_event(i) for i in range(QUEUED)])
        yield engine


def _url(engine: AsyncEngine) -> str:
    return engine.url.render_as_string(hide_password=False)


async def _takes_over(other: TransparencyLog) -> int:
    """Integrate with `other` until it gets the lock (the holder's session ended).

    As the sequencer does, a pass that fails is tried again: on a loaded machine the
    taker's own session may sit idle past the timeout too, and the database ends it.
    """
    async with asyncio.timeout(HANG_GUARD):
        while True:
            try:
                done = await other.integrate()
            except DBAPIError:
                done = 0
            if done:
                return done
            await asyncio.sleep(0.1)


async def _log_is_whole(engine: AsyncEngine, keys_dir: Path) -> None:
    async with engine.connect() as conn:
        size = await conn.scalar(sa.text("SELECT size FROM log_state"))
        leaves = await conn.scalar(sa.text("SELECT count(DISTINCT event_id) FROM log_leaves"))
        sizes = (await conn.scalars(sa.text("SELECT size FROM log_checkpoints"))).all()
    assert size == leaves == QUEUED
    assert sorted(sizes) == [0, QUEUED]  # one batch signed, by the one that took over
    report = await verify_database(
        engine, checkpoint_verifiers(KeyRing.load(keys_dir), ORIGIN), origin=ORIGIN
    )
    assert report.ok, report.problem


async def test_a_partitioned_holder_loses_its_turn_and_its_late_commit_fails(
    engine: AsyncEngine, keys_dir: Path, faults: Any
) -> None:
    ring = KeyRing.load(keys_dir)
    proxied, link = faults.to(_url(engine))
    holder_engine = create_sequencer_engine(proxied, TIMEOUT)
    other_engine = create_sequencer_engine(_url(engine), TIMEOUT)
    assert holder_engine is not None
    assert other_engine is not None
    holder = TransparencyLog(holder_engine, ring, origin=ORIGIN)
    other = TransparencyLog(other_engine, ring, origin=ORIGIN)
    await other.ensure_checkpoint()
    # The holder has written its batch and is about to sign and commit when its link
    # goes silent.
    partitioned = asyncio.Event()
    signing_key = holder._signing_key

    def partition_then_sign() -> Any:
        link.pause()
        partitioned.set()
        return signing_key()

    holder._signing_key = partition_then_sign  # type: ignore[method-assign]
    lost = locks_lost()
    late = asyncio.create_task(holder.integrate())
    try:
        async with asyncio.timeout(HANG_GUARD):
            await partitioned.wait()
        assert await other.integrate() == 0  # the holder still has the lock
        assert await _takes_over(other) == QUEUED
        link.heal()
        with pytest.raises(Exception):  # noqa: B017 - the driver's own error
            async with asyncio.timeout(HANG_GUARD):
                await late
        assert locks_lost() == lost + 1
        await _log_is_whole(engine, keys_dir)
    finally:
        late.cancel()
        for made in (holder_engine, other_engine):
            await made.dispose()


async def test_a_frozen_holder_loses_its_turn_and_its_late_commit_fails(
    engine: AsyncEngine, keys_dir: Path
) -> None:
    ring = KeyRing.load(keys_dir)
    other_engine = create_sequencer_engine(_url(engine), TIMEOUT)
    assert other_engine is not None
    other = TransparencyLog(other_engine, ring, origin=ORIGIN)
    await other.ensure_checkpoint()
    try:
        async with frozen_holder(_url(engine), keys_dir, TIMEOUT, ORIGIN) as holder:
            assert await other.integrate() == 0  # frozen, it still has the lock
            assert await _takes_over(other) == QUEUED
            holder.send_signal(signal.SIGCONT)
            async with asyncio.timeout(HANG_GUARD):
                out, err = await holder.communicate()
            assert holder.returncode == FROZEN_EXIT, (out, err)
            assert b"late commit failed" in out
        await _log_is_whole(engine, keys_dir)
    finally:
        await other_engine.dispose()
