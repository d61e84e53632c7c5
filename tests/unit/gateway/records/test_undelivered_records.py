"""A record whose caller stopped waiting, then committed, is followed by one saying so.

The recorder on a migrated SQLite database, its commit held back (a slow write)
past its caller's wait, or its caller cancelled meanwhile. The caller releases
nothing; the first record commits all the same, an `undelivered` record naming it
follows, and the citizen's view, the auditor's search and the figures show a read
that reached no one: nothing read, nothing served, no paper avoided.
"""

from __future__ import annotations

import asyncio
import datetime
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import AuditUnavailable
from gateway.records import (
    CITIZEN_VISIBLE_TYPES,
    Event,
    EventRecorder,
    SearchFilter,
    _recorder,
    citizen_items,
    figures,
    is_procedure_request,
    read_envelope,
    search_page,
)
from gateway.records._recorder import UNDELIVERED, undelivered_id
from gateway.storage import events, log_queue
from policies import Catalogue, load_catalogue
from tests.access_events import CLIENT, READ, access_event

AN = "079203001234"
GUARD = 30.0  # seconds: a wait longer than this is a hang, not a slow machine


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


class SlowWrite:
    """The recorder's commit held back until `release()`: slower than any wait.

    The recorder commits in a thread of its own (SQLite): its commit waits there."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, then_fail: bool = False) -> None:
        self._entered = threading.Event()
        self._gate = threading.Event()
        self._real = _recorder.commit_in_thread
        self._then_fail = then_fail
        self._calls = 0
        monkeypatch.setattr(_recorder, "commit_in_thread", self._commit)

    def release(self) -> None:
        self._gate.set()

    async def entered(self) -> None:
        """Return once a commit began (and waits)."""
        await asyncio.to_thread(self._entered.wait, GUARD)

    def _commit(self, transactions: Any, batch: Sequence[Event], marks: Any, **kw: Any) -> Any:
        self._calls += 1
        first = self._calls == 1
        self._entered.set()
        self._gate.wait(GUARD)
        done = self._real(transactions, batch, marks, **kw)
        if first and self._then_fail:
            # Committed by the database, but the gateway hears of a failure (the link
            # broke as the commit's answer came back).
            raise OSError("connection lost during commit")
        return done


async def _until(engine: AsyncEngine, event_id: str) -> None:
    """Wait until a record marks `event_id` undelivered (at most `GUARD` seconds)."""

    async def found() -> None:
        while True:
            async with engine.connect() as conn:
                query = sa.select(events.c.id).where(events.c.id == undelivered_id(event_id))
                if (await conn.execute(query)).first() is not None:
                    return
            await asyncio.sleep(0.02)

    await asyncio.wait_for(found(), GUARD)


async def _records(engine: AsyncEngine) -> list[tuple[str, str, str | None]]:
    """Every record in the log's queue order: (id, outcome, the id it marks undelivered)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(events.c.id, events.c.outcome, events.c.envelope)
            .join(log_queue, log_queue.c.event_id == events.c.id)
            .order_by(log_queue.c.seq)
        )
        return [(i, o, read_envelope(e).get("undelivered")) for i, o, e in rows]


async def _shown(engine: AsyncEngine, catalogue: Catalogue) -> dict[str, Any]:
    """What the citizen, the auditor and the figures show."""
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(hours=1)
    mine = SearchFilter(start=start, end=end, subject=AN, types=CITIZEN_VISIBLE_TYPES)
    async with engine.connect() as conn:
        page = await search_page(conn, mine, limit=50)
        items = await citizen_items(conn, page.rows, AN, catalogue)
        audited = await search_page(
            conn, SearchFilter(start=start, end=end, client=CLIENT), limit=50
        )
    stats = await figures(engine, start, end)
    return {
        "citizen": items,
        "auditor": sorted((r.id, r.outcome) for r in audited.rows),
        "figures": [(s["requests"], s["fieldsServed"], s["papersAvoided"]) for s in stats],
    }


async def _check_marked(engine: AsyncEngine, catalogue: Catalogue, first: Event) -> None:
    mark = undelivered_id(first.id)
    # The first as written, then the record that says it never reached anyone.
    assert await _records(engine) == [(first.id, "served", None), (mark, UNDELIVERED, first.id)]
    shown = await _shown(engine, catalogue)
    [item] = shown["citizen"]
    assert item["id"] == first.id
    assert item["outcome"] == UNDELIVERED
    assert item["fields"] == []
    assert item["basis"] == []
    assert item["notDelivered"] == [READ]
    assert shown["auditor"] == sorted([(first.id, UNDELIVERED), (mark, UNDELIVERED)])
    # Still a request (it was asked and decided), but nothing served, no paper avoided.
    assert shown["figures"] == [(1, 0, 0)]


async def test_an_access_recorded_in_time_is_served(
    engine: AsyncEngine, catalogue: Catalogue
) -> None:
    recorder = EventRecorder(engine)
    await recorder.start()
    try:
        first = access_event(AN, catalogue.version)
        await recorder.record(first)
    finally:
        await recorder.stop()
    shown = await _shown(engine, catalogue)
    assert [i["outcome"] for i in shown["citizen"]] == ["served"]
    assert shown["citizen"][0]["fields"] == [READ]
    assert shown["figures"] == [(1, 1, 1)]


Leave = Callable[[EventRecorder, Event, SlowWrite], Awaitable[None]]


async def _times_out(recorder: EventRecorder, event: Event, slow: SlowWrite) -> None:
    with pytest.raises(AuditUnavailable):
        await recorder.record(event)


async def _is_cancelled(recorder: EventRecorder, event: Event, slow: SlowWrite) -> None:
    # The write is under way when the request's task is cancelled (its deadline).
    waiting = asyncio.create_task(recorder.record(event))
    await asyncio.wait_for(slow.entered(), GUARD)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def _give_up(
    engine: AsyncEngine, catalogue: Catalogue, slow: SlowWrite, leave: Leave, *, wait: float
) -> Event:
    recorder = EventRecorder(engine, write_timeout=wait)
    await recorder.start()
    try:
        first = access_event(AN, catalogue.version)
        await leave(recorder, first, slow)
        slow.release()
        await _until(engine, first.id)
    finally:
        await recorder.stop()
    return first


async def test_a_commit_that_outlives_the_wait_is_marked_undelivered(
    engine: AsyncEngine, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = SlowWrite(monkeypatch)
    first = await _give_up(engine, catalogue, slow, _times_out, wait=0.05)
    await _check_marked(engine, catalogue, first)


async def test_a_commit_whose_caller_is_cancelled_is_marked_undelivered(
    engine: AsyncEngine, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = SlowWrite(monkeypatch)
    first = await _give_up(engine, catalogue, slow, _is_cancelled, wait=GUARD)
    await _check_marked(engine, catalogue, first)


async def test_a_record_still_waiting_for_its_batch_is_marked_once_written(
    engine: AsyncEngine, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A first batch holds the writer; the access waits behind it, its caller leaves.
    slow = SlowWrite(monkeypatch)
    recorder = EventRecorder(engine, write_timeout=0.05)
    await recorder.start()
    try:
        ahead = access_event(AN, catalogue.version)
        with pytest.raises(AuditUnavailable):
            await recorder.record(ahead)
        first = access_event(AN, catalogue.version)
        with pytest.raises(AuditUnavailable):
            await recorder.record(first)
        slow.release()
        await _until(engine, first.id)
        await _until(engine, ahead.id)
    finally:
        await recorder.stop()
    outcomes = [(i, o) for i, o, _ in await _records(engine)]
    assert outcomes[:2] == [(ahead.id, "served"), (first.id, "served")]
    assert sorted(outcomes[2:]) == sorted(
        [(undelivered_id(ahead.id), UNDELIVERED), (undelivered_id(first.id), UNDELIVERED)]
    )
    shown = await _shown(engine, catalogue)
    assert [i["outcome"] for i in shown["citizen"]] == [UNDELIVERED, UNDELIVERED]
    assert shown["figures"] == [(2, 0, 0)]


async def test_a_commit_reported_failed_that_happened_is_marked_undelivered(
    engine: AsyncEngine, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = SlowWrite(monkeypatch, then_fail=True)
    slow.release()
    recorder = EventRecorder(engine)
    await recorder.start()
    try:
        first = access_event(AN, catalogue.version)
        with pytest.raises(AuditUnavailable):
            await recorder.record(first)
        await _until(engine, first.id)
    finally:
        await recorder.stop()
    await _check_marked(engine, catalogue, first)


async def test_a_commit_that_failed_leaves_no_mark(
    engine: AsyncEngine, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures = iter([OSError("database away")])
    real = _recorder.commit_in_thread

    def failing(transactions: Any, batch: Sequence[Event], marks: Any, **kw: Any) -> Any:
        if (failure := next(failures, None)) is not None:
            raise failure
        return real(transactions, batch, marks, **kw)

    monkeypatch.setattr(_recorder, "commit_in_thread", failing)
    recorder = EventRecorder(engine)
    await recorder.start()
    try:
        with pytest.raises(AuditUnavailable):
            await recorder.record(access_event(AN, catalogue.version))
        # The next commit settles the first's mark: it was not there, nothing to say.
        second = access_event(AN, catalogue.version)
        await recorder.record(second)
    finally:
        await recorder.stop()
    assert await _records(engine) == [(second.id, "served", None)]


async def test_a_refusal_whose_caller_left_is_not_marked(
    engine: AsyncEngine, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A refusal delivers nothing: its record is true however its answer went.
    slow = SlowWrite(monkeypatch)
    recorder = EventRecorder(engine, write_timeout=0.05)
    await recorder.start()
    try:
        refusal = access_event(AN, catalogue.version)
        refusal.outcome = "rejected:RATE_LIMITED"
        with pytest.raises(AuditUnavailable):
            await recorder.record(refusal)
        slow.release()
        # Only the refusal's wait was meant to run out: the next waits as a request does,
        # however long the held-back batch and its own commit take on a busy machine.
        monkeypatch.setattr(recorder, "_write_timeout", 10.0)
        after = access_event(AN, catalogue.version)
        await recorder.record(after)  # committed after the refusal's batch
    finally:
        await recorder.stop()
    outcomes = [(i, o) for i, o, _ in await _records(engine)]
    assert outcomes == [(refusal.id, "rejected:RATE_LIMITED"), (after.id, "served")]


def test_a_mark_is_not_a_procedure_request() -> None:
    assert not is_procedure_request(UNDELIVERED)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_a_writer_that_ended_refuses_what_waits_and_stops(
    engine: AsyncEngine, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The writer thread ends in the middle of a commit (here: it is made to exit):
    # what was waiting behind it is refused at once, and stopping does not wait for it.
    entered, gate = threading.Event(), threading.Event()

    def dying(*_args: Any, **_kw: Any) -> Any:
        entered.set()
        gate.wait(GUARD)
        raise SystemExit  # ends the thread, as nothing the writer catches

    monkeypatch.setattr(_recorder, "commit_in_thread", dying)
    recorder = EventRecorder(engine, write_timeout=GUARD)
    await recorder.start()
    first = asyncio.create_task(recorder.record(access_event(AN, catalogue.version)))
    await asyncio.to_thread(entered.wait, GUARD)
    behind = asyncio.create_task(recorder.record(access_event(AN, catalogue.version)))
    await asyncio.sleep(0.05)  # `behind` is pending, the writer still in its commit
    gate.set()
    with pytest.raises(AuditUnavailable):
        await asyncio.wait_for(behind, GUARD / 2)
    with pytest.raises(AuditUnavailable):  # no longer running: refused at once
        await recorder.record(access_event(AN, catalogue.version))
    await asyncio.wait_for(recorder.stop(), GUARD / 2)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await _records(engine) == []
