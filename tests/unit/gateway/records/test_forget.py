"""Forgetting a person after retention, against a migrated SQLite database."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import Conflict, NotFound, RetentionNotOver
from gateway.log import canonical_hash
from gateway.records import Event, Forgotten, forget, insert_events, pseudonym, retention_of
from gateway.records._forget import records_digest
from gateway.records._personal import personal_parts
from gateway.storage import (
    consents,
    event_personal,
    event_subjects,
    events,
    log_queue,
    subject_keys,
)
from policies import Catalogue, load_catalogue

RESIDENCE = "1.004222"  # the default retention
CRIMINAL = "LOCAL.criminal-case-identity-check"  # 3650 days of its own
AN, BINH = "079203001234", "001185000777"
KEY = b"p" * 32
T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)
FAR = T0 + datetime.timedelta(days=20 * 366)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


# -- retention --------------------------------------------------------------------------


def test_a_procedure_keeps_its_records_for_its_own_retention(catalogue: Catalogue) -> None:
    assert catalogue.get(CRIMINAL).retention_days == 3650
    assert retention_of(catalogue, CRIMINAL, 30) == 3650


@pytest.mark.parametrize("procedure", [RESIDENCE, "9.999999", None])
def test_other_records_are_kept_for_the_default(
    catalogue: Catalogue, procedure: str | None
) -> None:
    assert retention_of(catalogue, procedure, 1826) == 1826
    assert retention_of(catalogue, procedure, 7) == 7


# -- forgetting -------------------------------------------------------------------------


def _event(
    catalogue: Catalogue,
    subjects: list[str],
    *,
    procedure: str = RESIDENCE,
    ts: datetime.datetime = T0,
) -> Event:
    return Event(
        type="access",
        request_id="req",
        outcome="served",
        policy_version=catalogue.version,
        envelope={"organisation": "Commune Police", "decisions": []},
        personal={"subjects": subjects, "officer": "officer-1", "case": "CASE-1"},
        subjects=subjects,
        client_id="VN/GOV/CA-HN/cu-tru",
        procedure=procedure,
        ts=ts,
    )


def _consent(subject: str, status: str, *, until: datetime.datetime, n: int) -> dict[str, Any]:
    return {
        "id": f"consent-{n}",
        "subject": subject,
        "consumer": "VN/GOV/CA-HN/cu-tru",
        "procedure": RESIDENCE,
        "fields": ["Citizen.phone"],
        "case": "CASE-1",
        "status": status,
        "requested_at": T0,
        "answer_by": until,
        "valid_until": until,
    }


async def _insert(
    engine: AsyncEngine, batch: list[Event], rows: Sequence[dict[str, Any]] = ()
) -> None:
    async with engine.begin() as conn:
        await insert_events(conn, batch)
        if rows:
            await conn.execute(consents.insert(), list(rows))


async def _column(engine: AsyncEngine, column: sa.ColumnElement[Any]) -> list[Any]:
    async with engine.connect() as conn:
        return sorted((await conn.execute(sa.select(column))).scalars())


async def _forget(
    engine: AsyncEngine, catalogue: Catalogue, subject: str = AN, **options: Any
) -> Forgotten:
    arguments: dict[str, Any] = {
        "catalogue": catalogue,
        "default_days": 30,
        "operator": "operator-9",
        "pseudonym_key": KEY,
        "now": FAR,
    }
    arguments.update(options)
    return await forget(engine, subject, **arguments)


async def test_forgetting_removes_the_person_and_leaves_everyone_else(
    engine: AsyncEngine, catalogue: Catalogue
) -> None:
    an_1 = _event(catalogue, [AN])
    an_2 = _event(catalogue, [AN], procedure=CRIMINAL, ts=T0 + DAY)
    both = _event(catalogue, [BINH, AN], ts=T0 + 2 * DAY)
    binh = _event(catalogue, [BINH], ts=T0 + 3 * DAY)
    await _insert(
        engine,
        [an_1, an_2, both, binh],
        [
            _consent(AN, "REVOKED", until=FAR + DAY, n=1),
            _consent(AN, "ACTIVE", until=T0 + 30 * DAY, n=2),  # ran out long ago
            _consent(BINH, "ACTIVE", until=FAR + DAY, n=3),
        ],
    )
    envelopes_before = {row.id: row.envelope_hash for row in (await _rows(engine, events))}

    forgotten = await _forget(engine, catalogue)

    assert (forgotten.records, forgotten.consents) == (3, 2)
    mine = sorted([an_1.id, an_2.id, both.id])
    # Every personal part stays, sealed: the person's own open for nobody now, the
    # shared one still for the other person it names, and only with their key.
    assert await _column(engine, event_personal.c.event_id) == sorted(
        [an_1.id, an_2.id, both.id, binh.id, forgotten.event_id]
    )
    async with engine.connect() as conn:
        parts = await personal_parts(conn, [an_1.id, an_2.id, both.id, binh.id])
        of_an = await personal_parts(conn, mine, subject=AN)
        of_binh = await personal_parts(conn, [both.id], subject=BINH)
    assert [parts[i].canonical for i in (an_1.id, an_2.id)] == [None, None]
    assert not any(part.altered for part in parts.values())
    assert {i: p.canonical for i, p in of_an.items()} == dict.fromkeys(mine)
    assert of_binh[both.id].value() == {
        "subjects": [BINH, AN],
        "officer": "officer-1",
        "case": "CASE-1",
    }
    # The subject index (with the wrapped keys), keys and consents: only the other's.
    index = {(r.subject, r.event_id) for r in await _rows(engine, event_subjects)}
    assert index == {(BINH, both.id), (BINH, binh.id)}
    assert await _column(engine, subject_keys.c.subject) == [BINH]
    assert await _column(engine, consents.c.id) == ["consent-3"]
    # The envelopes stay as they were, so the log still verifies.
    after = {row.id: row for row in await _rows(engine, events)}
    for event_id, digest in envelopes_before.items():
        assert after[event_id].envelope_hash == digest
        assert canonical_hash(after[event_id].envelope) == digest
    # One admin record of the forgetting, naming no one: a count and a salted digest
    # of the records, not their ids (a list of them would link them for ever).
    [admin] = [row for row in after.values() if row.id not in envelopes_before]
    assert admin.id == forgotten.event_id
    assert (admin.type, admin.outcome, admin.policy_version) == (
        "admin",
        "forgotten",
        catalogue.version,
    )
    envelope = admin.envelope
    assert envelope["action"] == "forget"
    assert "events" not in envelope
    assert envelope["records"] == 3
    assert envelope["consentsDeleted"] == 2
    assert envelope["operator"] == pseudonym(KEY, "operator-9")
    assert envelope["subjectCommitments"] == []
    shown = str(envelope)
    for secret in (AN, BINH, "operator-9", *mine):
        assert secret not in shown
    [personal] = [r for r in await _rows(engine, event_personal) if r.event_id == admin.id]
    assert personal.personal["operator"] == "operator-9"
    salt = bytes.fromhex(personal.personal["salt"])
    assert envelope["recordsDigest"] == records_digest(salt, mine)
    assert forgotten.event_id in await _column(engine, log_queue.c.event_id)


async def test_a_forgotten_person_is_nowhere_in_the_database_file(
    engine: AsyncEngine, catalogue: Catalogue, tmp_path: Path
) -> None:
    """SQLite overwrites what forgetting deletes: no id or key is left in free space."""
    await _insert(
        engine,
        [_event(catalogue, [AN]), _event(catalogue, [BINH, AN]), _event(catalogue, [BINH])],
        [_consent(AN, "REVOKED", until=T0, n=1)],
    )
    async with engine.connect() as conn:
        key = await conn.scalar(sa.select(subject_keys.c.key).where(subject_keys.c.subject == AN))
    await _forget(engine, catalogue)
    async with engine.begin() as conn:
        await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    await engine.dispose()
    stored = b"".join(path.read_bytes() for path in sorted(tmp_path.glob("gateway.db*")))  # noqa: ASYNC240
    assert BINH.encode() in stored  # the other person is still known
    assert AN.encode() not in stored
    assert bytes(key) not in stored


async def _rows(engine: AsyncEngine, table: sa.Table) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(sa.select(table))).all())


async def test_forgetting_someone_twice_finds_nothing_the_second_time(
    engine: AsyncEngine, catalogue: Catalogue
) -> None:
    await _insert(engine, [_event(catalogue, [AN])])
    first = await _forget(engine, catalogue)
    assert first.records == 1
    written = await _rows(engine, events), await _rows(engine, log_queue)
    with pytest.raises(NotFound):
        await _forget(engine, catalogue)
    assert (await _rows(engine, events), await _rows(engine, log_queue)) == written


async def test_forgetting_someone_never_seen_is_not_found_and_writes_nothing(
    engine: AsyncEngine, catalogue: Catalogue
) -> None:
    await _insert(engine, [_event(catalogue, [BINH])])
    written = await _rows(engine, events), await _rows(engine, log_queue)
    with pytest.raises(NotFound) as caught:
        await _forget(engine, catalogue)
    assert (caught.value.code, caught.value.http_status) == ("NOT_FOUND", 404)
    assert (await _rows(engine, events), await _rows(engine, log_queue)) == written


async def test_someone_known_only_by_a_consent_can_be_forgotten(
    engine: AsyncEngine, catalogue: Catalogue
) -> None:
    async with engine.begin() as conn:
        await conn.execute(consents.insert(), [_consent(AN, "EXPIRED", until=T0, n=1)])
    forgotten = await _forget(engine, catalogue)
    assert (forgotten.records, forgotten.consents) == (0, 1)


async def test_forgetting_is_refused_before_the_retention_ends(
    engine: AsyncEngine, catalogue: Catalogue
) -> None:
    await _insert(engine, [_event(catalogue, [AN]), _event(catalogue, [AN], ts=T0 + 10 * DAY)])
    with pytest.raises(RetentionNotOver) as caught:
        await _forget(engine, catalogue, now=T0 + 39 * DAY)
    error = caught.value
    assert (error.code, error.http_status) == ("RETENTION_NOT_OVER", 409)
    assert isinstance(error, Conflict)
    ends = T0 + 40 * DAY  # the newest record, plus 30 days
    assert error.detail == {"until": ends.isoformat()}
    assert error.message == (
        "The person's newest record must be kept until 2026-02-10; "
        "they can be forgotten from then on."
    )
    await _nothing_was_deleted(engine, records=2)


async def test_forgetting_is_allowed_the_instant_the_retention_ends(
    engine: AsyncEngine, catalogue: Catalogue
) -> None:
    await _insert(engine, [_event(catalogue, [AN])])
    forgotten = await _forget(engine, catalogue, now=T0 + 30 * DAY)
    assert forgotten.records == 1


async def test_a_procedures_own_retention_holds_back_the_forgetting(
    engine: AsyncEngine, catalogue: Catalogue
) -> None:
    await _insert(
        engine,
        [_event(catalogue, [AN]), _event(catalogue, [AN], procedure=CRIMINAL, ts=T0 - 100 * DAY)],
    )
    with pytest.raises(RetentionNotOver) as caught:
        await _forget(engine, catalogue, now=T0 + 3000 * DAY)
    assert caught.value.detail == {"until": (T0 + 3550 * DAY).isoformat()}
    await _nothing_was_deleted(engine, records=2)


async def test_another_persons_recent_records_do_not_hold_back_the_forgetting(
    engine: AsyncEngine, catalogue: Catalogue
) -> None:
    await _insert(engine, [_event(catalogue, [AN]), _event(catalogue, [BINH], ts=T0 + 365 * DAY)])
    forgotten = await _forget(engine, catalogue, now=T0 + 31 * DAY)
    assert forgotten.records == 1


@pytest.mark.parametrize(
    ("status", "ends"),
    [("ACTIVE", T0 + 60 * DAY), ("REQUESTED", T0 + 60 * DAY)],
)
async def test_forgetting_is_refused_while_a_consent_is_pending_or_in_force(
    engine: AsyncEngine, catalogue: Catalogue, status: str, ends: datetime.datetime
) -> None:
    await _insert(engine, [_event(catalogue, [AN])], [_consent(AN, status, until=ends, n=1)])
    with pytest.raises(Conflict) as caught:
        await _forget(engine, catalogue, now=T0 + 45 * DAY)
    error = caught.value
    assert type(error) is Conflict
    assert (error.code, error.http_status) == ("CONFLICT", 409)
    assert error.detail == {"consents": 1}
    await _nothing_was_deleted(engine, records=1, kept=1)
    # Once it has run out, the person can be forgotten.
    forgotten = await _forget(engine, catalogue, now=ends)
    assert (forgotten.records, forgotten.consents) == (1, 1)


@pytest.mark.parametrize("status", ["DENIED", "REVOKED", "EXPIRED"])
async def test_ended_consents_do_not_hold_back_the_forgetting(
    engine: AsyncEngine, catalogue: Catalogue, status: str
) -> None:
    await _insert(
        engine, [_event(catalogue, [AN])], [_consent(AN, status, until=T0 + 60 * DAY, n=1)]
    )
    forgotten = await _forget(engine, catalogue, now=T0 + 45 * DAY)
    assert (forgotten.records, forgotten.consents) == (1, 1)


async def _nothing_was_deleted(engine: AsyncEngine, *, records: int, kept: int = 0) -> None:
    assert len(await _rows(engine, event_personal)) == records
    assert {r.subject for r in await _rows(engine, event_subjects)} == {AN}
    assert await _column(engine, subject_keys.c.subject) == [AN]
    assert len(await _rows(engine, consents)) == kept
    assert {r.type for r in await _rows(engine, events)} == {"access"}
