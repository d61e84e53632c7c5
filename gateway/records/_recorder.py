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
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import structlog
from prometheus_client import Counter, Histogram
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.errors import AuditUnavailable
from gateway.log import leaf_hash, public_leaf
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
from gateway.storage import (
    event_decisions,
    event_personal,
    event_subjects,
    events,
    log_queue,
    subject_keys,
)
from keys import seal as seal_personal
from keys import wrap_key

__all__ = [
    "AdminRecorder",
    "Event",
    "EventRecorder",
    "admin_event",
    "admin_recorder",
    "commitment",
    "consent_commitment",
    "insert_events",
    "pseudonym",
    "pseudonyms",
]

log = structlog.get_logger(__name__)

EVENTS_PER_COMMIT = Histogram(
    "gateway_events_per_commit",
    "Events written by one commit of the recorder.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
RECORD_FAILURES = Counter(
    "gateway_event_record_failures_total", "Commits of events that failed (requests refused)."
)

_WRITE_TIMEOUT = 10.0


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
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    ts: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.UTC))
    leaf_hash: bytes = field(default=b"", repr=False)
    """Set by `rows`: the hash of the event's public leaf, for its receipt."""
    commitments: list[str] = field(default_factory=list, repr=False)
    """Set by `rows`: `HMAC(subject_key, id)` of each subject, in order."""

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
            personal_row = {"event_id": self.id, "salt": salt, "personal": None, "sealed": sealed}
            subject_rows = [
                {
                    "subject": s,
                    "event_id": self.id,
                    "wrapped_key": wrap_key(keys[s], data_key, self.id),
                }
                for s in subjects
            ]
        else:
            # Naming nobody, the part holds staff ids only (an operator, an auditor).
            personal_row = {"event_id": self.id, "salt": salt, "personal": personal, "sealed": None}
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


def commitment(key: bytes, event_id: str) -> str:
    """The commitment to a subject in an event's envelope: hex HMAC-SHA-256, 32 chars."""
    return hmac.new(key, event_id.encode(), hashlib.sha256).hexdigest()[:32]


def consent_commitment(key: bytes, consent_id: str) -> str:
    """What an envelope holds for a consent: HMAC-SHA-256 of its id under the giver's key."""
    return hmac.new(key, f"consent\x00{consent_id}".encode(), hashlib.sha256).hexdigest()[:32]


async def subject_keys_for(conn: AsyncConnection, subjects: set[str]) -> dict[str, bytes]:
    """The key of each subject, made on first use (several writers may race: one wins)."""
    if not subjects:
        return {}
    query = sa.select(subject_keys.c.subject, subject_keys.c.key)
    keys: dict[str, bytes] = {}
    for chunk in _chunks(sorted(subjects)):
        rows = await conn.execute(query.where(subject_keys.c.subject.in_(chunk)))
        keys.update({s: bytes(k) for s, k in rows})
    missing = sorted(subjects - set(keys))
    if missing:
        now = datetime.datetime.now(datetime.UTC)
        insert = (
            postgresql_insert(subject_keys)
            if conn.dialect.name == "postgresql"
            else sqlite_insert(subject_keys)
        )
        await conn.execute(
            insert.on_conflict_do_nothing(index_elements=["subject"]),
            [{"subject": s, "key": secrets.token_bytes(32), "created_at": now} for s in missing],
        )
        for chunk in _chunks(missing):
            rows = await conn.execute(query.where(subject_keys.c.subject.in_(chunk)))
            keys.update({s: bytes(k) for s, k in rows})
    return keys


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def insert_events(
    conn: AsyncConnection, batch: Sequence[Event], *, queue: bool = True
) -> None:
    """Insert events (both parts and the subject index) in the caller's transaction.

    Each envelope commits to its subjects with their keys (made here on first use).
    `queue=False` leaves them out of the verifiable log: only to measure what the log
    costs (`make bench`); the gateway always queues.
    """
    keys = await subject_keys_for(conn, {s for event in batch for s in event.people()})
    event_rows, personal_rows, subject_rows, decision_rows = [], [], [], []
    for event in batch:
        rows = event.rows(keys)
        event_rows.append(rows.event)
        personal_rows.append(rows.personal)
        subject_rows.extend(rows.subjects)
        decision_rows.extend(rows.decisions)
    await conn.execute(events.insert(), event_rows)
    await conn.execute(event_personal.insert(), personal_rows)
    if subject_rows:
        await conn.execute(event_subjects.insert(), subject_rows)
    if decision_rows:
        await conn.execute(event_decisions.insert(), decision_rows)
    # Queued for the verifiable log, in this order, by the same commit.
    if queue:
        await conn.execute(
            log_queue.insert(),
            [{"event_id": event.id, "leaf_hash": event.leaf_hash} for event in batch],
        )


class EventRecorder:
    """Writes events in shared commits; `record` waits for the commit of its event."""

    def __init__(self, engine: AsyncEngine, *, max_batch: int = 256, queue: bool = True) -> None:
        """`queue=False` only to measure the log's cost (see `insert_events`)."""
        self._engine = engine
        self._max_batch = max_batch
        self._queue = queue
        self._pending: list[tuple[Event, asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: AsyncConnection | None = None
        self.commits = 0

    async def start(self) -> None:
        """Start the writer."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="recorder")

    async def stop(self) -> None:
        """Write what is queued, then stop the writer."""
        task, self._task = self._task, None
        if task is None:
            return
        while self._pending:
            self._wakeup.set()
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self._drop_connection()

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # it is being thrown away anyway
                await conn.close()

    async def record(self, event: Event) -> bytes:
        """Return once `event` is committed: its leaf hash; `AuditUnavailable` if it cannot be."""
        if self._task is None or self._task.done():
            raise AuditUnavailable("The recorder is not running.")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((event, future))
        self._wakeup.set()
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout=_WRITE_TIMEOUT)
        except TimeoutError:
            RECORD_FAILURES.inc()
            raise AuditUnavailable("Recording the access took too long.") from None
        return event.leaf_hash

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._commit(batch)

    async def _commit(self, batch: list[tuple[Event, asyncio.Future[None]]]) -> None:
        try:
            # The writer keeps its connection: no pool round trip on every commit.
            if self._conn is None:
                self._conn = await self._engine.connect()
            async with self._conn.begin():
                await insert_events(self._conn, [event for event, _ in batch], queue=self._queue)
        except Exception as exc:  # any failure to commit means: nothing is released
            await self._drop_connection()
            RECORD_FAILURES.inc()
            log.error("events_not_recorded", count=len(batch), error=type(exc).__name__)
            for _, future in batch:
                if not future.done():
                    future.set_exception(AuditUnavailable())
            return
        self.commits += 1
        EVENTS_PER_COMMIT.observe(len(batch))
        for _, future in batch:
            if not future.done():
                future.set_result(None)
