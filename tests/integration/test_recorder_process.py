"""The recorder's commits in a process of their own (`recorder_process`).

A real child process on a fresh migrated database, SQLite and PostgreSQL: what it
commits is what the recorder commits in the gateway's process (the caller's leaf
hash is the one queued for the log, the citizen's view opens the sealed personal
part; an answer's receipt is signed there too); a commit the database refuses
refuses its callers and keeps the process; a process killed in the middle of a
commit (waiting for a lock another session holds) fails that commit at once, leaves
nothing of it stored, and the next commit starts another; the recorder is ready once
its process can commit (a process that cannot is given up); and the process ends
with the recorder.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import signal
import sqlite3
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from lienthong_client.log import read_b64
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.errors import AuditUnavailable
from gateway.log import Receipts, verify_receipt
from gateway.records import (
    CITIZEN_VISIBLE_TYPES,
    Event,
    EventRecorder,
    SearchFilter,
    citizen_items,
    search_page,
)
from gateway.storage import create_engine, events, log_queue, sqlite_file
from keys import KeyRing
from policies import load_catalogue
from tests.access_events import READ, access_event

PEOPLE = ["079203001234", "001090012345", "038185000123"]
GUARD = 30.0  # seconds: a wait longer than this is a hang, not a slow machine


pytestmark = pytest.mark.own_database  # each test counts what its database holds


@pytest.fixture
async def engine(migrated: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(migrated)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def recorder(engine: AsyncEngine) -> AsyncIterator[EventRecorder]:
    recorder = EventRecorder(engine, write_timeout=GUARD, process=True)
    await recorder.start()
    try:
        yield recorder
    finally:
        await recorder.stop()


async def _queued(engine: AsyncEngine) -> dict[str, bytes]:
    """By event id: the leaf hash queued for the log."""
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(log_queue.c.event_id, log_queue.c.leaf_hash))
        return {event_id: bytes(leaf) for event_id, leaf in rows}


async def _seen_by(engine: AsyncEngine, person: str) -> list[tuple[str, list[str]]]:
    """What `person` sees of their accesses: (id, the fields read), opened with their key."""
    now = datetime.datetime.now(datetime.UTC)
    mine = SearchFilter(
        start=now - datetime.timedelta(hours=1),
        end=now + datetime.timedelta(hours=1),
        subject=person,
        types=CITIZEN_VISIBLE_TYPES,
    )
    async with engine.connect() as conn:
        page = await search_page(conn, mine, limit=50)
        items = await citizen_items(conn, page.rows, person, load_catalogue())
    return sorted((item["id"], item["fields"]) for item in items)


_FAULT = {
    "sqlite": [
        "CREATE TRIGGER fail_events BEFORE INSERT ON events "
        "BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION fail_events() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'injected fault'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER fail_events BEFORE INSERT ON events "
        "FOR EACH ROW EXECUTE FUNCTION fail_events()",
    ],
}
"""A trigger that refuses every event."""
_ON = {"sqlite": "", "postgresql": " ON events"}


@contextlib.asynccontextmanager
async def _locked(engine: AsyncEngine) -> AsyncIterator[None]:
    """Another session holding what a commit of events needs: SQLite's write lock, or
    PostgreSQL's lock on the events table; released on leaving."""
    if engine.dialect.name == "sqlite":
        path = sqlite_file(engine.url)
        assert path is not None
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    async with engine.connect() as conn, conn.begin():
        await conn.execute(sa.text("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE"))
        yield  # leaving rolls the transaction back, which releases the lock


async def _waiting_for_the_lock(engine: AsyncEngine) -> None:
    """Return once the process's commit waits for the lock `_locked` holds: PostgreSQL
    shows the waiting session; SQLite's busy wait shows nowhere, so half a second."""
    if engine.dialect.name == "sqlite":
        await asyncio.sleep(0.5)
        return
    waiting = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(int(GUARD / 0.05)):
        # A transaction of its own each time: within one, the activity is a snapshot.
        async with engine.connect() as conn:
            if await conn.scalar(waiting):
                return
        await asyncio.sleep(0.05)
    raise AssertionError("no commit waits for the lock")


def _pid(recorder: EventRecorder) -> int:
    process = recorder._process  # the test looks at the child it runs
    assert process is not None
    pid = process.pid
    assert pid is not None
    return pid


async def _committed_first(recorder: EventRecorder) -> tuple[str, Event, int]:
    """The catalogue's version, a first record committed by the recorder's process, and
    that process's pid."""
    version = load_catalogue().version
    first = access_event(PEOPLE[0], version)
    await recorder.record(first)
    return version, first, _pid(recorder)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_the_process_commits_what_the_thread_would(
    engine: AsyncEngine, recorder: EventRecorder
) -> None:
    version = load_catalogue().version
    batch = [
        access_event(person, version, request_id=f"req-{i}") for i, person in enumerate(PEOPLE)
    ]
    # At once: they share commits, as requests do.
    hashes = await asyncio.gather(*(recorder.record(event) for event in batch))
    assert _pid(recorder) != os.getpid()
    queued = await _queued(engine)
    assert {event.id: leaf for event, leaf in zip(batch, hashes, strict=True)} == queued
    for event, person in zip(batch, PEOPLE, strict=True):
        # The commitments the process made are the caller's too (the answer's receipt).
        assert len(event.commitments) == 1
        assert await _seen_by(engine, person) == [(event.id, [READ])]

    # An event recorded in the gateway's process (the writer thread on SQLite, the
    # event loop on PostgreSQL): stored alike.
    threaded = EventRecorder(engine, write_timeout=GUARD)
    await threaded.start()
    try:
        again = access_event(PEOPLE[0], version, request_id="req-thread")
        leaf = await threaded.record(again)
    finally:
        await threaded.stop()
    assert (await _queued(engine))[again.id] == leaf
    assert len(await _seen_by(engine, PEOPLE[0])) == 2


async def test_receipts_are_signed_with_the_commit_in_the_process(
    engine: AsyncEngine, recorder: EventRecorder, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answer's receipt is signed where its record is committed: in the writer
    process, not on the gateway's event loop; one that asks for none gets none."""
    ring = KeyRing.ensure(tmp_path)
    receipts = Receipts.of(ring, origin="test/log", merge_delay=30.0)
    version = load_catalogue().version
    asked = [access_event(p, version, request_id=f"r-{i}") for i, p in enumerate(PEOPLE)]
    for event in asked:
        event.receipts = receipts
    unasked = access_event(PEOPLE[0], version, request_id="r-none")

    def not_here(*_args: object, **_kwargs: object) -> dict[str, object]:
        raise AssertionError("a receipt was signed in the gateway's process")

    with monkeypatch.context() as patched:
        patched.setattr(Receipts, "sign", not_here)
        hashes = await asyncio.gather(*(recorder.record(e) for e in [*asked, unasked]))

    public = ring.signing("receipts").public
    for event, leaf in zip(asked, hashes, strict=False):
        assert event.receipt is not None
        assert read_b64(event.receipt["leafHash"]) == leaf
        assert event.receipt["origin"] == "test/log"
        assert event.receipt["maxMergeDelaySeconds"] == 30
        assert verify_receipt(event.receipt, public)
    assert unasked.receipt is None

    # Recorded in the gateway's process (no writer process): signed there, alike.
    threaded = EventRecorder(engine, write_timeout=GUARD)
    await threaded.start()
    try:
        again = access_event(PEOPLE[1], version, request_id="r-thread")
        again.receipts = receipts
        leaf = await threaded.record(again)
    finally:
        await threaded.stop()
    assert again.receipt is not None
    assert read_b64(again.receipt["leafHash"]) == leaf
    assert verify_receipt(again.receipt, public)


async def test_a_commit_the_database_refuses_keeps_the_process(
    engine: AsyncEngine, recorder: EventRecorder
) -> None:
    version, _, pid = await _committed_first(recorder)
    async with engine.begin() as conn:
        for statement in _FAULT[engine.dialect.name]:
            await conn.execute(sa.text(statement))
    refused = access_event(PEOPLE[1], version)
    with pytest.raises(AuditUnavailable):
        await recorder.record(refused)
    async with engine.begin() as conn:
        await conn.execute(sa.text("DROP TRIGGER fail_events" + _ON[engine.dialect.name]))
    after = access_event(PEOPLE[2], version)
    await recorder.record(after)
    assert _pid(recorder) == pid
    assert refused.id not in await _queued(engine)
    assert after.id in await _queued(engine)


async def test_a_process_killed_in_a_commit_fails_it_and_the_next_starts_another(
    engine: AsyncEngine, recorder: EventRecorder
) -> None:
    version, first, pid = await _committed_first(recorder)
    # Another session holds a lock the process's next commit waits for.
    async with _locked(engine):
        caught = access_event(PEOPLE[1], version)
        waiting = asyncio.create_task(recorder.record(caught))
        await _waiting_for_the_lock(engine)
        assert not waiting.done()
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(AuditUnavailable):
            # At once, not at the write timeout.
            await asyncio.wait_for(waiting, GUARD / 3)
    later = access_event(PEOPLE[2], version)
    await recorder.record(later)
    assert _pid(recorder) != pid
    queued = await _queued(engine)
    assert first.id in queued
    assert later.id in queued
    assert caught.id not in queued
    async with engine.connect() as conn:
        stored = set((await conn.execute(sa.select(events.c.id))).scalars())
    # Nothing of the killed commit; its caller was refused, so no mark follows it.
    assert stored == {first.id, later.id}


async def test_stopping_waits_for_the_commit_in_flight(engine: AsyncEngine) -> None:
    recorder = EventRecorder(engine, write_timeout=GUARD, process=True)
    await recorder.start()
    version = load_catalogue().version
    event = access_event(PEOPLE[0], version)
    async with _locked(engine):
        waiting = asyncio.create_task(recorder.record(event))
        await _waiting_for_the_lock(engine)
        stopping = asyncio.create_task(recorder.stop())
        await asyncio.sleep(0.5)
        assert not stopping.done()  # it waits for the commit, which waits for the lock
    # The lock released: the commit returns, its caller is released, then it stops.
    leaf = await asyncio.wait_for(waiting, GUARD / 3)
    await asyncio.wait_for(stopping, GUARD / 3)
    assert (await _queued(engine))[event.id] == leaf
    async with engine.connect() as conn:
        stored = set((await conn.execute(sa.select(events.c.id))).scalars())
    assert stored == {event.id}  # and no record marks it undelivered


async def test_a_process_killed_while_idle_is_replaced_before_the_next_commit(
    engine: AsyncEngine, recorder: EventRecorder
) -> None:
    version, _, pid = await _committed_first(recorder)
    os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(0.3)  # the loop sees its end of the socket close
    after = access_event(PEOPLE[1], version)
    await asyncio.wait_for(recorder.record(after), GUARD / 3)  # not refused
    assert _pid(recorder) != pid
    assert after.id in await _queued(engine)


async def test_a_silent_process_is_given_up(
    engine: AsyncEngine, recorder: EventRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.records import _writer_process

    version, _, pid = await _committed_first(recorder)
    patience = _writer_process._REPLY_TIMEOUT
    monkeypatch.setattr(_writer_process, "_REPLY_TIMEOUT", 1.0)
    os.kill(pid, signal.SIGSTOP)  # alive, and answers nothing
    try:
        with pytest.raises(AuditUnavailable):
            # Refused after the second waited for, not after the process was asked to
            # end and given time to (it cannot: it is stopped).
            await asyncio.wait_for(recorder.record(access_event(PEOPLE[1], version)), 4.0)
        for _ in range(20):  # killed at once, not left to end, and reaped
            if _gone(pid):
                break
            await asyncio.sleep(0.05)
        assert _gone(pid)
    finally:
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)
    # The usual patience for the next process's commit on a busy machine (its start
    # is waited for apart, `_READY_TIMEOUT`).
    monkeypatch.setattr(_writer_process, "_REPLY_TIMEOUT", patience)
    after = access_event(PEOPLE[2], version)
    await asyncio.wait_for(recorder.record(after), GUARD / 3)
    assert _pid(recorder) != pid
    assert after.id in await _queued(engine)


async def _sessions(engine: AsyncEngine) -> int:
    """Sessions open on the test's PostgreSQL database."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    async with engine.connect() as conn:
        return int((await conn.execute(sa.text(query))).scalar_one())


async def test_ready_waits_until_the_process_can_commit(engine: AsyncEngine) -> None:
    # The gateway serves only once its process has imported what it commits with and,
    # on PostgreSQL, opened its connection: a first request does not wait for them.
    server = engine.dialect.name == "postgresql"
    before = await _sessions(engine) if server else 0
    recorder = EventRecorder(engine, write_timeout=GUARD, process=True)
    await recorder.start()
    try:
        await asyncio.wait_for(recorder.ready(), GUARD)
        process = recorder._process
        assert process is not None
        assert process._readied
        if server:
            assert await _sessions(engine) == before + 1
        event = access_event(PEOPLE[0], load_catalogue().version)
        await recorder.record(event)
        assert event.id in await _queued(engine)
    finally:
        await recorder.stop()


async def test_a_process_that_does_not_get_ready_is_given_up(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.records import _writer_process

    monkeypatch.setattr(_writer_process, "_READY_TIMEOUT", 1.0)
    recorder = EventRecorder(engine, write_timeout=GUARD, process=True)
    await recorder.start()
    pid = _pid(recorder)
    os.kill(pid, signal.SIGSTOP)  # alive, and never says it is ready
    try:
        await asyncio.wait_for(recorder.ready(), 4.0)  # the gateway starts all the same
        for _ in range(20):  # killed and reaped
            if _gone(pid):
                break
            await asyncio.sleep(0.05)
        assert _gone(pid)
        monkeypatch.setattr(_writer_process, "_READY_TIMEOUT", GUARD)
        event = access_event(PEOPLE[0], load_catalogue().version)
        await asyncio.wait_for(recorder.record(event), GUARD / 3)  # by another process
        assert _pid(recorder) != pid
        assert event.id in await _queued(engine)
    finally:
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)
        await recorder.stop()


async def test_the_process_ends_with_the_recorder(engine: AsyncEngine) -> None:
    recorder = EventRecorder(engine, write_timeout=GUARD, process=True)
    await recorder.start()
    await recorder.record(access_event(PEOPLE[0], load_catalogue().version))
    pid = _pid(recorder)
    await recorder.stop()
    for _ in range(100):
        if _gone(pid):
            break
        await asyncio.sleep(0.05)
    assert _gone(pid)


async def test_an_engine_in_memory_keeps_its_commits_in_process() -> None:
    # Another process cannot see a database in memory: the option does nothing there.
    engine = create_async_engine("sqlite+aiosqlite://")
    try:
        recorder = EventRecorder(engine, process=True)
        assert recorder._process is None
    finally:
        await engine.dispose()
