"""Retention on schedule, against a migrated SQLite database."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.log import Report
from gateway.records import RETENTION_OUTCOME, Event, clear_expired, insert_events
from gateway.records._verify import _personal_parts
from gateway.storage import consents, event_personal, event_subjects, events
from policies import Catalogue, load_catalogue

RESIDENCE = "1.004222"  # the default retention
CRIMINAL = "LOCAL.criminal-case-identity-check"  # 3650 days of its own
AN, BINH = "079203001234", "001185000777"
KEY = b"p" * 32
T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def _event(
    catalogue: Catalogue, subjects: list[str], *, procedure: str | None, ts: datetime.datetime
) -> Event:
    return Event(
        type="access" if procedure else "admin",
        request_id="req",
        outcome="served",
        policy_version=catalogue.version,
        envelope={"organisation": "Commune Police", "decisions": []},
        personal={"subjects": subjects, "officer": "officer-1"},
        subjects=subjects,
        procedure=procedure,
        ts=ts,
    )


def _consent(status: str, *, until: datetime.datetime, n: int) -> dict[str, Any]:
    return {
        "id": f"consent-{n}",
        "subject": AN,
        "consumer": "VN/GOV/CA-HN/cu-tru",
        "procedure": RESIDENCE,
        "fields": ["Citizen.phone"],
        "case": "CASE-1",
        "status": status,
        "requested_at": T0,
        "answer_by": until,
        "valid_until": until,
    }


async def _kept(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.scalars(sa.select(event_personal.c.event_id)))


async def _run(engine: AsyncEngine, catalogue: Catalogue, **options: Any) -> Any:
    arguments: dict[str, Any] = {
        "catalogue": catalogue,
        "default_days": 30,
        "pseudonym_key": KEY,
        "now": T0 + 100 * DAY,
    }
    arguments.update(options)
    return await clear_expired(engine, **arguments)


async def test_each_record_is_kept_for_its_procedures_retention(
    engine: AsyncEngine, catalogue: Catalogue
) -> None:
    old, young = T0, T0 + 80 * DAY  # at T0 + 100 days: past 30 days, and within
    batch = [
        _event(catalogue, [AN], procedure=RESIDENCE, ts=old),
        _event(catalogue, [AN, BINH], procedure=RESIDENCE, ts=old + DAY),
        _event(catalogue, [], procedure=None, ts=old),  # a staff record: the default
        _event(catalogue, [AN], procedure=CRIMINAL, ts=old),  # ten years of its own
        _event(catalogue, [BINH], procedure=RESIDENCE, ts=young),
        _event(catalogue, [BINH], procedure="9.999999", ts=old),  # unknown: the longest
    ]
    async with engine.begin() as conn:
        await insert_events(conn, batch)
    due = {batch[i].id for i in (0, 1, 2)}

    dry = await _run(engine, catalogue, dry_run=True)
    assert set(dry.records) == due
    assert dry.subject_entries == 3  # AN; AN and BINH
    assert dry.event_id is None
    assert len(await _kept(engine)) == 6

    done = await _run(engine, catalogue)
    assert set(done.records) == due
    assert await _kept(engine) == {batch[3].id, batch[4].id, batch[5].id, done.event_id}
    async with engine.connect() as conn:
        indexed = set(await conn.scalars(sa.select(event_subjects.c.event_id)))
        (envelope,) = await conn.scalars(
            sa.select(events.c.envelope).where(events.c.outcome == RETENTION_OUTCOME)
        )
    assert indexed == {batch[3].id, batch[4].id, batch[5].id}
    assert sorted(envelope["events"]) == sorted(due)
    assert envelope["subjectEntries"] == 3
    assert envelope["schedule"] is True
    assert "operator" not in envelope

    report = Report()
    async with engine.connect() as conn:
        assert await _personal_parts(conn, report)
    assert "3 personal parts cleared after their retention" in report.checked
    # Past the longest retention (ten years), the unknown procedure's record goes too.
    later = await _run(engine, catalogue, now=T0 + 3700 * DAY)
    assert set(later.records) >= {batch[3].id, batch[5].id}


async def test_a_run_is_bounded_and_says_when_more_are_due(
    engine: AsyncEngine, catalogue: Catalogue
) -> None:
    batch = [_event(catalogue, [AN], procedure=RESIDENCE, ts=T0 + n * DAY) for n in range(7)]
    async with engine.begin() as conn:
        await insert_events(conn, batch)
    first = await _run(engine, catalogue, batch_size=2, max_records=5)
    assert first.more
    # Oldest first.
    assert set(first.records) == {e.id for e in batch[:5]}
    second = await _run(engine, catalogue, batch_size=2, max_records=5)
    assert not second.more
    assert set(second.records) == {e.id for e in batch[5:]}
    assert await _kept(engine) == {first.event_id, second.event_id}


async def test_consents_past_their_end_expire_and_others_stay(
    engine: AsyncEngine, catalogue: Catalogue
) -> None:
    now = T0 + 100 * DAY
    rows = [
        _consent("REQUESTED", until=now - DAY, n=1),  # unanswered past answer-by
        _consent("ACTIVE", until=now - DAY, n=2),  # past valid-until
        _consent("ACTIVE", until=now + DAY, n=3),
        _consent("REQUESTED", until=now + DAY, n=4),
        _consent("REVOKED", until=now - DAY, n=5),
    ]
    async with engine.begin() as conn:
        await conn.execute(consents.insert(), rows)
    done = await _run(engine, catalogue, now=now, operator="op-7")
    assert done.consents_expired == 2
    assert not done.records
    assert done.event_id is not None  # the expiries are recorded too
    async with engine.connect() as conn:
        statuses = {r.id: r.status for r in await conn.execute(sa.select(consents))}
        (row,) = await conn.execute(
            sa.select(events.c.envelope).where(events.c.outcome == RETENTION_OUTCOME)
        )
    assert statuses == {
        "consent-1": "EXPIRED",
        "consent-2": "EXPIRED",
        "consent-3": "ACTIVE",
        "consent-4": "REQUESTED",
        "consent-5": "REVOKED",
    }
    assert row.envelope["consentsExpired"] == 2
    assert row.envelope["schedule"] is False
    assert row.envelope["operator"] != "op-7"  # pseudonymised
    nothing = await _run(engine, catalogue, now=now)
    assert nothing.event_id is None  # nothing to do: no record


async def test_a_part_deleted_without_a_record_saying_so_fails_the_audit(
    engine: AsyncEngine, catalogue: Catalogue
) -> None:
    batch = [_event(catalogue, [AN], procedure=RESIDENCE, ts=T0) for _ in range(2)]
    async with engine.begin() as conn:
        await insert_events(conn, batch)
    await _run(engine, catalogue, max_records=1)
    async with engine.begin() as conn:
        await conn.execute(event_subjects.delete())
        await conn.execute(event_personal.delete())  # the second, and the run's own
    report = Report()
    async with engine.connect() as conn:
        assert not await _personal_parts(conn, report)
    assert report.problem is not None
    assert "no forget or retention record says so" in report.problem


@pytest.mark.parametrize("options", [{"batch_size": 0}, {"max_records": 0}])
async def test_sizes_below_one_are_refused(
    engine: AsyncEngine, catalogue: Catalogue, options: dict[str, int]
) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        await _run(engine, catalogue, **options)
