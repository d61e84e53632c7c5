"""Recording events durably before any answer leaves (fail closed, group commit).

An event has two parts stored apart: the envelope (who, why, which fields, what was
decided, outcome: no personal data; its SHA-256 is what the verifiable log will
publish) and the personal part (subject ids, the officer's id, the signed token),
whose salted hash is in the envelope. A private index maps subjects to their events.
The personal part of a record that names people is sealed under a data key of its
own, wrapped in the index under each named person's key (`keys.seal`): forgetting a
person deletes their key and their wrapped copies (see `gateway.records._forget`).

`EventRecorder.record` returns only once the event is committed. Concurrent requests
share commits: while one batch is being written, the next one gathers. If the write
fails, every waiting request gets `AuditUnavailable` and must not release data.
A commit runs in the writer process (`WriterProcess`, the gateway's default), or else
on the event loop (PostgreSQL) or in a writer thread of its own (a SQLite file).

A caller that stops waiting (the write outlived its timeout, or the request was
cancelled) releases nothing, but its event may still commit: it is already in a batch
being written, or a commit that reported failure may have happened all the same.
So the log never says served when nothing was, the recorder then writes a second
record, of the same type, outcome `undelivered`, whose envelope names the first by
its id (`undelivered`). It is written as soon as the database answers again, and
only if the first is there (a first that never committed needs no correction; nor
does a refusal, which delivers nothing). Its
id is derived from the first's (`undelivered_id`), so that readers find it by
primary key and it is never written twice. The first record is kept as written:
the request was signed and decided, and sources were read; only its delivery failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import structlog
import uuid_utils
from prometheus_client import Counter, Histogram
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.errors import AuditUnavailable
from gateway.instants import utc_now
from gateway.log import Receipts, leaf_hash, public_leaf
from gateway.records._envelope import (
    EnvelopeBody,
    canonical_personal,
    commit_consents,
    decision_codes,
    envelope_hash,
    indexed_columns,
    personal_hash,
    seal,
)
from gateway.records._writer_process import WriterFailed, WriterProcess
from gateway.storage import (
    Transactions,
    event_decisions,
    event_personal,
    event_subjects,
    events,
    insert_many,
    insert_many_through,
    log_queue,
    subject_keys,
)
from keys import seal as seal_personal
from keys import wrap_key

__all__ = [
    "UNDELIVERED",
    "AdminRecorder",
    "Event",
    "EventRecorder",
    "admin_event",
    "admin_recorder",
    "commit_batch",
    "commit_events",
    "commit_on",
    "commitment",
    "consent_commitment",
    "insert_events",
    "marks_to_write",
    "pseudonym",
    "pseudonyms",
    "undelivered",
    "undelivered_event",
    "undelivered_id",
    "write_events",
]

log = structlog.get_logger(__name__)

EVENTS_PER_COMMIT = Histogram(
    "gateway_events_per_commit",
    "Events written by one commit of the recorder.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
COMMIT_SECONDS = Histogram(
    "gateway_recorder_commit_seconds",
    "Time one commit of the recorder took, from its start to its events' release.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
RECORD_FAILURES = Counter(
    "gateway_event_record_failures_total", "Commits of events that failed (requests refused)."
)

_WRITE_TIMEOUT = 10.0
"""Seconds `record` waits for its commit before the request is refused (default)."""
_MARK_RETRY = 0.5
"""Seconds between tries to write `undelivered` records while the database is away."""

UNDELIVERED = "undelivered"
"""The outcome of a record saying that another record's answer never left."""
_REFUSED = "rejected:"
"""The outcomes of refusals: they deliver nothing, so none is marked undelivered."""


PSEUDONYM_KINDS = ("officer", "case", "auditor")
"""What is pseudonymised in a domain of its own (operators keep the first form)."""


def pseudonym(key: bytes, value: str, kind: str | None = None) -> str:
    """A stable pseudonym of an id: HMAC-SHA-256, hex, 32 characters.

    `kind` (one of `PSEUDONYM_KINDS`) separates domains: the same text as an officer id
    and as a case number gives two pseudonyms, so one cannot be matched with the other.
    Records written before kinds were used hold the pseudonym without a kind; a search
    matches both (`pseudonyms`).
    """
    message = value.encode() if kind is None else f"{kind}\x00{value}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def pseudonyms(key: bytes, value: str, kind: str) -> tuple[str, str]:
    """The pseudonym of `value` as `kind`, and as records before kinds wrote it."""
    return pseudonym(key, value, kind), pseudonym(key, value)


def record_id() -> str:
    """A new record's id: 32 hex digits of a UUIDv7 (RFC 9562), its time first.

    Every index keyed by a record's id (the records', their personal parts', their
    decisions', the subject index's) then grows at its end: a random id (UUIDv4) put
    each record's entries on pages of their own, each written again by every commit
    that touched it. 74 of its bits are random; the time it shows is the record's own.
    """
    return uuid_utils.uuid7().hex


@dataclass(slots=True)
class Event:
    """One event to record."""

    type: str
    request_id: str
    outcome: str
    policy_version: str
    envelope: EnvelopeBody
    """The fields of its type; `rows` adds the header (see `gateway.records._envelope`)."""
    personal: dict[str, Any] = field(repr=False)
    subjects: Sequence[str] = field(default=(), repr=False)
    client_id: str | None = None
    procedure: str | None = None
    consents: Mapping[str, str] = field(default_factory=dict, repr=False)
    """The consents its envelope names: consent id -> the subject who gave it. The
    envelope holds their commitments; the personal part maps commitments to ids."""
    id: str = field(default_factory=record_id)
    ts: datetime.datetime = field(default_factory=utc_now)
    leaf_hash: bytes = field(default=b"", repr=False)
    """Set by `rows`: the hash of the event's public leaf, for its receipt."""
    commitments: list[str] = field(default_factory=list, repr=False)
    """Set by `rows`: `HMAC(subject_key, id)` of each subject, in order."""
    receipts: Receipts | None = field(default=None, repr=False)
    """What signs the receipt of its answer, if its answer carries one."""
    receipt: dict[str, Any] | None = field(default=None, repr=False)
    """Set by `rows` when `receipts` is: the receipt of its leaf, signed with its commit
    (in the writer process where there is one), not on the event loop."""

    def people(self) -> set[str]:
        """Everyone whose key the event's rows need: its subjects, and who gave its consents."""
        return {*self.subjects, *self.consents.values()}

    def rows(self, keys: Mapping[str, bytes] | None = None) -> EventRows:
        """The rows of `events`, `event_personal`, `event_subjects`, `event_decisions`.

        `keys`: the key of everyone in `people()` (none for an event naming nobody).
        """
        keys = keys or {}
        subjects = list(dict.fromkeys(self.subjects))
        body, personal = self.envelope, self.personal
        if self.consents:
            refs = {c: consent_commitment(keys[s], c) for c, s in self.consents.items()}
            body = commit_consents(body, refs)
            personal = {**personal, "consents": {ref: c for c, ref in refs.items()}}
        self.commitments = [commitment(keys[s], self.id) for s in subjects]
        salt = secrets.token_hex(16)
        canonical = canonical_personal(personal)
        envelope = seal(
            body,
            id=self.id,
            type=self.type,
            ts=self.ts,
            request_id=self.request_id,
            outcome=self.outcome,
            policy_version=self.policy_version,
            subject_commitments=self.commitments,
            personal_hash=personal_hash(salt, canonical),
        )
        digest = envelope_hash(envelope)
        self.leaf_hash = leaf_hash(
            public_leaf(
                type=self.type,
                ts=self.ts,
                envelope_hash=digest,
                policy_version=self.policy_version,
            )
        )
        if self.receipts is not None:
            self.receipt = self.receipts.sign(self.leaf_hash)
        event_row = {
            "id": self.id,
            "type": self.type,
            "ts": self.ts,
            "request_id": self.request_id,
            "client_id": self.client_id,
            "procedure": self.procedure,
            "outcome": self.outcome,
            "policy_version": self.policy_version,
            "envelope": envelope,
            "envelope_hash": digest,
            **indexed_columns(envelope),
        }
        personal_row: dict[str, Any]
        if subjects:
            data_key, sealed = seal_personal(canonical, self.id)
            personal_row = {
                "event_id": self.id,
                "ts": self.ts,
                "salt": salt,
                "personal": None,
                "sealed": sealed,
            }
            subject_rows = [
                {
                    "subject": s,
                    "event_id": self.id,
                    "ts": self.ts,
                    "wrapped_key": wrap_key(keys[s], data_key, self.id),
                }
                for s in subjects
            ]
        else:
            # Naming nobody, the part holds staff ids only (an operator, an auditor).
            personal_row = {
                "event_id": self.id,
                "ts": self.ts,
                "salt": salt,
                "personal": personal,
                "sealed": None,
            }
            subject_rows = []
        decision_rows = [
            {"decision": code, "event_id": self.id, "ts": self.ts}
            for code in decision_codes(envelope)
        ]
        return EventRows(event_row, personal_row, subject_rows, decision_rows)


@dataclass(frozen=True, slots=True)
class EventRows:
    """The rows one event is stored as."""

    event: dict[str, Any]
    personal: dict[str, Any]
    subjects: list[dict[str, Any]]
    decisions: list[dict[str, Any]]


def admin_event(
    *,
    request_id: str,
    policy_version: str,
    action: str,
    client_id: str,
    operator: str,
    operator_org: str | None,
    personal: dict[str, Any],
    kid: str | None = None,
) -> Event:
    """The `admin` event of a change to a client or its keys.

    `action`: `client_registered`, `client_suspended`, `client_activated`, `key_added`,
    `key_revoked`. The envelope names the client and, for a key, its `kid` (public
    identifiers) and the operator's pseudonym; the operator's id is in the personal part.
    """
    envelope: EnvelopeBody = {
        "action": action,
        "client": client_id,
        "operator": operator,
        "operatorOrg": operator_org,
    }
    if kid is not None:
        envelope["kid"] = kid
    return Event(
        type="admin",
        request_id=request_id,
        outcome=action,
        policy_version=policy_version,
        envelope=envelope,
        personal=personal,
        client_id=client_id,
    )


AdminRecorder = Callable[[str, str, str | None], Event]
"""Makes the `admin` event of a change to the client registry: (action, client id, kid)."""


def admin_recorder(
    *,
    pseudonym_key: bytes,
    policy_version: str,
    operator: str,
    operator_org: str | None,
    request_id: str | None = None,
) -> AdminRecorder:
    """The `admin` events of the changes one operator makes (`operator`: their id).

    The envelope holds the operator's pseudonym and organisation; their id goes into
    the personal part. Without `request_id`, each event gets a new one.
    """
    named = pseudonym(pseudonym_key, operator)

    def record(action: str, client_id: str, kid: str | None) -> Event:
        return admin_event(
            request_id=request_id if request_id is not None else uuid.uuid4().hex,
            policy_version=policy_version,
            action=action,
            client_id=client_id,
            operator=named,
            operator_org=operator_org,
            personal={"operator": operator},
            kid=kid,
        )

    return record


def undelivered_id(event_id: str) -> str:
    """The id of the record that marks `event_id` not delivered: one for each record."""
    return hashlib.sha256(f"{UNDELIVERED}\x00{event_id}".encode()).hexdigest()[:32]


def undelivered_event(event: Event) -> Event:
    """The record that marks `event` not delivered (its caller did not get its answer).

    It names the client, organisation and procedure of the first (to be found by
    them) and no person: the first names them, and readers show it as not delivered.
    """
    body: EnvelopeBody = {"undelivered": event.id}
    for name in ("client", "organisation", "procedure", "auditorOrg"):
        if name in event.envelope:
            body[name] = event.envelope[name]
    return Event(
        type=event.type,
        request_id=event.request_id,
        outcome=UNDELIVERED,
        policy_version=event.policy_version,
        envelope=body,
        personal={},
        client_id=event.client_id,
        procedure=event.procedure,
        id=undelivered_id(event.id),
    )


async def undelivered(conn: AsyncConnection, ids: Sequence[str]) -> set[str]:
    """Those of the records `ids` that a later record marks as not delivered."""
    marks = {undelivered_id(event_id): event_id for event_id in ids}
    found: set[str] = set()
    for chunk in _chunks(sorted(marks)):
        rows = await conn.execute(sa.select(events.c.id).where(events.c.id.in_(chunk)))
        found.update(marks[mark] for (mark,) in rows)
    return found


def commitment(key: bytes, event_id: str) -> str:
    """The commitment to a subject in an event's envelope: hex HMAC-SHA-256, 32 chars."""
    return hmac.new(key, event_id.encode(), hashlib.sha256).hexdigest()[:32]


def consent_commitment(key: bytes, consent_id: str) -> str:
    """What an envelope holds for a consent: HMAC-SHA-256 of its id under the giver's key."""
    return hmac.new(key, f"consent\x00{consent_id}".encode(), hashlib.sha256).hexdigest()[:32]


_SUBJECT_KEYS = sa.select(subject_keys.c.subject, subject_keys.c.key).where(
    subject_keys.c.subject.in_(sa.bindparam("subjects", expanding=True))
)
"""The keys of some subjects: one statement, built and compiled once (a statement made
for every commit cost a quarter of a one-record commit's work)."""


def subject_keys_in(conn: sa.Connection, subjects: set[str]) -> dict[str, bytes]:
    """The key of each subject, made on first use (several writers may race: one wins)."""
    if not subjects:
        return {}
    keys = _stored_keys(conn, sorted(subjects))
    missing = sorted(subjects - set(keys))
    if missing:
        insert = (
            postgresql_insert(subject_keys)
            if conn.dialect.name == "postgresql"
            else sqlite_insert(subject_keys)
        )
        conn.execute(insert.on_conflict_do_nothing(index_elements=["subject"]), _new_keys(missing))
        keys.update(_stored_keys(conn, missing))
    return keys


def _new_keys(subjects: list[str]) -> list[dict[str, Any]]:
    """Rows of `subject_keys` making a fresh key for each of `subjects`."""
    now = utc_now()
    return [{"subject": s, "key": secrets.token_bytes(32), "created_at": now} for s in subjects]


def _stored_keys(conn: sa.Connection, subjects: list[str]) -> dict[str, bytes]:
    """The stored key of each of `subjects` that has one."""
    keys: dict[str, bytes] = {}
    for chunk in _chunks(subjects):
        rows = conn.execute(_SUBJECT_KEYS, {"subjects": chunk})
        keys.update({s: bytes(k) for s, k in rows})
    return keys


async def subject_keys_for(conn: AsyncConnection, subjects: set[str]) -> dict[str, bytes]:
    """`subject_keys_in` on an async connection."""
    return await conn.run_sync(subject_keys_in, subjects)


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def write_events(conn: sa.Connection, batch: Sequence[Event], *, queue: bool = True) -> None:
    """Insert events (both parts and the subject index) in the caller's transaction.

    Each envelope commits to its subjects with their keys (made here on first use).
    `queue=False` leaves them out of the verifiable log: only to measure what the log
    costs (`make bench`); the gateway always queues.
    """
    keys = subject_keys_in(conn, {s for event in batch for s in event.people()})
    for table, rows in _tables_rows(batch, keys, queue=queue):
        insert_many(conn, table, rows)


def _tables_rows(
    batch: Sequence[Event], keys: Mapping[str, bytes], *, queue: bool
) -> list[tuple[sa.Table, list[dict[str, Any]]]]:
    """The rows `batch` is stored as, table by table in the order they are inserted."""
    event_rows, personal_rows, subject_rows, decision_rows = [], [], [], []
    for event in batch:
        rows = event.rows(keys)
        event_rows.append(rows.event)
        personal_rows.append(rows.personal)
        subject_rows.extend(rows.subjects)
        decision_rows.extend(rows.decisions)
    tables = [
        (events, event_rows),
        (event_personal, personal_rows),
        (event_subjects, subject_rows),
        (event_decisions, decision_rows),
    ]
    if queue:
        # Queued for the verifiable log, in this order, by the same commit.
        tables.append(
            (log_queue, [{"event_id": event.id, "leaf_hash": event.leaf_hash} for event in batch])
        )
    return tables


async def commit_through_driver(
    conn: AsyncConnection, batch: Sequence[Event], *, queue: bool = True
) -> None:
    """`write_events` committed on PostgreSQL's driver connection under `conn` itself,
    in a transaction of its own: the same statements, keys made on first use alike.

    The recorder commits on the event loop: SQLAlchemy's work for each of a commit's
    eight statements cost about as much of the loop as the round trip itself.
    """
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None  # an open connection
    dialect = conn.dialect
    people = sorted({s for event in batch for s in event.people()})
    async with driver.transaction():
        keys = await _driver_keys(driver, people)
        missing = [s for s in people if s not in keys]
        if missing:
            await insert_many_through(
                driver,
                dialect,
                subject_keys,
                _new_keys(missing),
                then="ON CONFLICT (subject) DO NOTHING",
            )
            keys.update(await _driver_keys(driver, missing))  # several writers may race
        for table, rows in _tables_rows(batch, keys, queue=queue):
            await insert_many_through(driver, dialect, table, rows)


_DRIVER_KEYS = "SELECT subject, key FROM subject_keys WHERE subject = ANY($1::text[])"
"""`_SUBJECT_KEYS` as asyncpg takes it."""


async def _driver_keys(driver: Any, subjects: list[str]) -> dict[str, bytes]:
    """The stored key of each of `subjects` that has one, read through the driver."""
    if not subjects:
        return {}
    return {subject: bytes(key) for subject, key in await driver.fetch(_DRIVER_KEYS, subjects)}


async def insert_events(
    conn: AsyncConnection, batch: Sequence[Event], *, queue: bool = True
) -> None:
    """`write_events` on an async connection, in the caller's transaction."""
    await conn.run_sync(write_events, batch, queue=queue)


def marks_to_write(
    conn: sa.Connection, marks: Mapping[str, tuple[Event, bool]]
) -> tuple[list[str], list[Event]]:
    """The marks settled now (by first id), and the records of those to write.

    `marks`: by the id of a record not delivered, its `undelivered` record and whether
    the first is known to be committed. A mark is written once (its id may already be
    there, from a commit that was reported failed), and only for a first that committed.
    """
    wanted = {mark.id for mark, _ in marks.values()}
    wanted.update(first for first, (_, committed) in marks.items() if not committed)
    found: set[str] = set()
    for chunk in _chunks(sorted(wanted)):
        rows = conn.execute(sa.select(events.c.id).where(events.c.id.in_(chunk)))
        found.update(event_id for (event_id,) in rows)
    now = utc_now()
    records = []
    for first, (mark, committed) in marks.items():
        if mark.id not in found and (committed or first in found):
            mark.ts = now
            records.append(mark)
    return list(marks), records


def commit_events(
    conn: sa.Connection,
    batch: Sequence[Event],
    marks: Mapping[str, tuple[Event, bool]],
    *,
    queue: bool = True,
) -> tuple[list[str], list[Event]]:
    """One commit of the recorder, in the caller's transaction: the `undelivered` records
    due (see `marks_to_write`) and `batch`. Returns the marks settled and those written."""
    settled, written_marks = marks_to_write(conn, marks) if marks else ([], [])
    written = [*batch, *written_marks]
    if written:
        write_events(conn, written, queue=queue)
    return settled, written_marks


async def commit_batch(
    run: Callable[..., Awaitable[Any]],
    batch: Sequence[Event],
    marks: Mapping[str, tuple[Event, bool]],
    *,
    queue: bool = True,
) -> tuple[list[str], list[Event]]:
    """`commit_events` through `run` (`Transactions.run`, or a connection's `run_sync`
    inside its transaction): one commit of the recorder."""
    done: tuple[list[str], list[Event]] = await run(commit_events, batch, marks, queue=queue)
    return done


async def commit_on(
    conn: AsyncConnection,
    batch: Sequence[Event],
    marks: Mapping[str, tuple[Event, bool]],
    *,
    queue: bool = True,
) -> tuple[list[str], list[Event]]:
    """One commit of the recorder on PostgreSQL, on `conn` in a transaction of its own:
    through asyncpg itself (`commit_through_driver`), or SQLAlchemy's way when
    `undelivered` records are due too (seldom). The gateway's loop and the writer
    process both commit so."""
    if marks:
        async with conn.begin():
            return await commit_batch(conn.run_sync, batch, marks, queue=queue)
    await commit_through_driver(conn, batch, queue=queue)
    return [], []


def commit_in_thread(
    transactions: Transactions,
    batch: Sequence[Event],
    marks: Mapping[str, tuple[Event, bool]],
    *,
    queue: bool = True,
) -> tuple[list[str], list[Event]]:
    """`commit_events` in a transaction of its own, committed in the calling thread (the
    SQLite recorder's writer): one commit of the recorder."""
    return transactions.run_here(commit_events, batch, marks, queue=queue)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., Any], *args: Any) -> None:
    """`callback(*args)` on `loop`, from another thread; nothing once the loop closed."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class EventRecorder:
    """Writes events in shared commits; `record` waits for the commit of its event."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_batch: int = 256,
        queue: bool = True,
        write_timeout: float = _WRITE_TIMEOUT,
        process: bool = False,
    ) -> None:
        """`queue=False` only to measure the log's cost (see `insert_events`).

        `write_timeout`: seconds `record` waits for its commit before refusing.
        `process`: commits run in a process of their own (`WriterProcess`) rather
        than in the writer thread (SQLite) or on the event loop (PostgreSQL).
        """
        self._engine = engine
        self._transactions = Transactions(engine)
        # A database another process can open: a SQLite file, or a server's.
        shared = self._transactions.threaded or engine.dialect.name != "sqlite"
        self._process = (
            WriterProcess(engine.url.render_as_string(hide_password=False), queue=queue)
            if process and shared
            else None
        )
        self._max_batch = max_batch
        self._queue = queue
        self._write_timeout = write_timeout
        self._pending: list[tuple[Event, asyncio.Future[None]]] = []
        self._given_up: set[str] = set()
        """Events whose caller stopped waiting, in a batch not yet written."""
        self._marks: dict[str, tuple[Event, bool]] = {}
        """By the id of a record not delivered: its `undelivered` record, and whether
        the first is known to be committed (else: only if it is found)."""
        self._wakeup = asyncio.Event()
        self._committing = False
        """A commit is in flight on the loop (the writer process's, or PostgreSQL's)."""
        self._task: asyncio.Task[None] | None = None
        self._conn: AsyncConnection | None = None
        self.commits = 0
        # SQLite: a writer thread of its own takes what is pending under this lock.
        self._ready = threading.Condition()
        self._stopping = False

    async def start(self) -> None:
        """Start the writer (and its process, which the first commit would start)."""
        if self._process is not None:
            await self._process.start()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="recorder")

    async def ready(self) -> None:
        """Wait until the writer process started is ready to commit: a gateway that
        serves before it would make its first requests wait for the process's imports
        and connection within `write_timeout`."""
        if self._process is not None:
            await self._process.ready()

    async def stop(self, *, marks_timeout: float = 2.0) -> None:
        """Write what is queued, then stop the writer.

        `undelivered` records still waiting for the database get `marks_timeout`
        seconds more; those still unwritten are logged.
        """
        task, self._task = self._task, None
        if task is None:
            return
        # A commit in flight is waited for too (its callers are released by it), up
        # to the write timeout its callers wait themselves.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._write_timeout
        while (self._pending or self._committing) and not task.done():
            if loop.time() > deadline:
                break
            self._wakeup.set()
            await asyncio.sleep(0.01)
        self._refuse_pending()
        deadline = loop.time() + marks_timeout
        while self._marks and not task.done() and loop.time() < deadline:
            self._wakeup.set()
            await asyncio.sleep(0.01)
        if self._marks:
            log.error("undelivered_not_recorded", count=len(self._marks))
        self._stop_writer()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self._drop_connection()

    def _refuse_pending(self) -> None:
        """The writer ended (it failed, or stops): what is still pending is never
        written, and its callers are refused now rather than at their timeout."""
        with self._ready:
            pending, self._pending = self._pending, []
        if pending:
            log.error("events_not_recorded", count=len(pending), error="RecorderStopped")
        for _event, future in pending:
            if not future.done():
                future.set_exception(AuditUnavailable("The recorder is not running."))

    def _stop_writer(self) -> None:
        with self._ready:
            self._stopping = True
            self._ready.notify()

    async def _drop_connection(self) -> None:
        self._transactions.dispose()
        if self._process is not None:
            await self._process.close()
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # it is being thrown away anyway
                await conn.close()

    async def record(self, event: Event) -> bytes:
        """Return once `event` is committed: its leaf hash; `AuditUnavailable` if it cannot be.

        A caller that stops waiting (timeout, cancellation) must release nothing; if
        the event commits all the same, an `undelivered` record follows it.
        """
        if self._task is None or self._task.done():
            raise AuditUnavailable("The recorder is not running.")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._ready:
            self._pending.append((event, future))
            self._ready.notify()
        self._wakeup.set()
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout=self._write_timeout)
        except TimeoutError:
            RECORD_FAILURES.inc()
            self._give_up(event, future)
            raise AuditUnavailable("Recording the access took too long.") from None
        except asyncio.CancelledError:
            self._give_up(event, future)
            raise
        return event.leaf_hash

    def undelivered(self, event: Event) -> None:
        """Mark a committed `event` not delivered: its answer never left after all."""
        self._mark(event, committed=True)

    def _give_up(self, event: Event, future: asyncio.Future[None]) -> None:
        """The caller of `event` stopped waiting: it releases nothing."""
        if not future.done():
            # Still to be written, or being written: settled when its batch is.
            self._given_up.add(event.id)
        elif not future.cancelled() and future.exception() is None:
            # Committed just as the caller left.
            self._mark(event, committed=True)
        # Else its batch failed, and every event of it is marked if it is found.

    def _mark(self, event: Event, *, committed: bool) -> None:
        if event.outcome.startswith(_REFUSED):
            return  # a refusal delivers nothing: its record is true either way
        with self._ready:
            self._marks[event.id] = (undelivered_event(event), committed)
            self._ready.notify()
        self._wakeup.set()

    async def _run(self) -> None:
        if self._transactions.threaded and self._process is None:
            await self._run_writer()
            self._refuse_pending()  # the writer ended: nothing more is written
            return
        while True:
            if self._marks and not self._pending:
                # `undelivered` records wait for the database: try again now and then.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), timeout=_MARK_RETRY)
            else:
                await self._wakeup.wait()
            self._wakeup.clear()
            if self._marks and not self._pending:
                await self._commit([])
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._commit(batch)

    async def _commit(self, batch: list[tuple[Event, asyncio.Future[None]]]) -> None:
        """One commit in the writer process, or on the writer's connection
        (PostgreSQL), awaited on the loop."""
        due = dict(self._marks)
        written = [event for event, _ in batch]
        started = time.perf_counter()
        self._committing = True
        try:
            if self._process is not None:
                settled, marks = await self._process.commit(written, due)
            else:
                # The writer keeps its connection: no pool round trip on every commit.
                if self._conn is None:
                    self._conn = await self._engine.connect()
                settled, marks = await commit_on(self._conn, written, due, queue=self._queue)
        except Exception as exc:  # any failure to commit means: nothing is released
            if self._process is None:
                await self._drop_connection()
            # (A commit the writer process could not make leaves it running: if it was
            # lost instead, it is replaced by the next commit.)
            self._failed(batch, exc)
            return
        finally:
            self._committing = False
        self._settle_marks(settled)
        self._committed(batch, marks, started)

    async def _run_writer(self) -> None:
        """SQLite: commits one after another in a thread of the recorder's own.

        The thread takes what is pending as soon as its last commit returned, and
        hands each commit's outcome to the loop; a commit never waits for a busy loop
        to come round before the next one starts (through `asyncio.to_thread` the
        loop's turn came between every two commits: about a third of each cycle at
        16 requests in flight).
        """
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[None] = loop.create_future()
        with self._ready:
            self._stopping = False
        writer = threading.Thread(
            target=self._write, args=(loop, ended), name="recorder", daemon=True
        )
        writer.start()
        try:
            await asyncio.shield(ended)
        except asyncio.CancelledError:
            self._stop_writer()
            await asyncio.shield(ended)
            raise

    def _write(self, loop: asyncio.AbstractEventLoop, ended: asyncio.Future[None]) -> None:
        """The writer thread: a commit of what is pending (and of the `undelivered`
        records due) at a time, until `_stop_writer`."""
        try:
            while True:
                with self._ready:
                    if not self._pending and not self._stopping:
                        # `undelivered` records wait for the database: again now and then.
                        self._ready.wait(timeout=_MARK_RETRY if self._marks else None)
                    if self._stopping and not self._pending:
                        return
                    batch = self._pending[: self._max_batch]
                    del self._pending[: self._max_batch]
                    due = dict(self._marks)
                if not batch and not due:
                    continue
                started = time.perf_counter()
                written = [event for event, _ in batch]
                try:
                    settled, marks = commit_in_thread(
                        self._transactions, written, due, queue=self._queue
                    )
                except Exception as exc:  # any failure to commit means: nothing is released
                    self._transactions.dispose()
                    _call_soon(loop, self._failed, batch, exc)
                else:
                    self._settle_marks(settled)  # not due again, whenever the loop hears
                    _call_soon(loop, self._committed, batch, marks, started)
        finally:
            _call_soon(loop, _settle, ended)

    def _failed(self, batch: list[tuple[Event, asyncio.Future[None]]], exc: Exception) -> None:
        """On the loop: a commit failed; its callers are refused, its events marked."""
        RECORD_FAILURES.inc()
        error = exc.kind if isinstance(exc, WriterFailed) else type(exc).__name__
        log.error("events_not_recorded", count=len(batch), error=error)
        for event, future in batch:
            # The commit may have happened all the same: marked if it is found.
            self._mark(event, committed=False)
            if event.id in self._given_up:
                self._given_up.discard(event.id)
            elif not future.done():
                future.set_exception(AuditUnavailable())

    def _settle_marks(self, settled: list[str]) -> None:
        """The `undelivered` records just written are due no more."""
        with self._ready:
            for first in settled:
                self._marks.pop(first, None)

    def _committed(
        self, batch: list[tuple[Event, asyncio.Future[None]]], marks: list[Event], started: float
    ) -> None:
        """On the loop: a commit returned; its callers are released."""
        if marks:
            log.warning("undelivered_recorded", count=len(marks))
        if not batch:
            return
        self.commits += 1
        EVENTS_PER_COMMIT.observe(len(batch))
        COMMIT_SECONDS.observe(time.perf_counter() - started)
        for event, future in batch:
            if event.id in self._given_up:
                self._given_up.discard(event.id)
                self._mark(event, committed=True)
            elif not future.done():
                future.set_result(None)
