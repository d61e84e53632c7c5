"""Retention on schedule: personal parts past their retention are cleared, the log stays.

Records of a procedure with the default retention (five years) and of one with its own
(ten years) are read, then retention runs "six years later": the first lose their
personal parts and subject-index entries, the second keep theirs, a consent request
left unanswered expires, one `admin` record lists what was cleared, `gateway audit
verify` still passes, and the citizen's and the auditor's views agree with it.
"""

from __future__ import annotations

import asyncio
import datetime

import pytest
import sqlalchemy as sa

from tests.integration.conftest import gateway_cli

RESIDENCE = "1.004222"  # the default retention
CRIMINAL = "LOCAL.criminal-case-identity-check"  # ten years of its own
POLICE = "VN/GOV/CAHN/investigation"
DAYS = datetime.timedelta(days=1)


def _lookup(person: str) -> str:
    return f'{{ citizen(personalId: "{person}") {{ fullName }} }}'


async def _read(gateway, person: str, **purpose) -> None:
    response = await gateway.post(_lookup(person), **purpose)
    assert response.status_code == 200, response.text
    assert "errors" not in response.json(), response.text


def _context(gateway):
    from gateway.resources import load_procedures, load_pseudonym_key
    from gateway.storage import create_engine

    settings = gateway.settings
    return (
        create_engine(settings.database_url.get_secret_value()),
        load_procedures(settings),
        load_pseudonym_key(settings),
    )


async def _kept(engine, ids) -> set[str]:
    """Which of the records `ids` still have a personal part."""
    from gateway.storage import event_personal

    async with engine.connect() as conn:
        found = await conn.scalars(
            sa.select(event_personal.c.event_id).where(event_personal.c.event_id.in_(ids))
        )
        return set(found)


@pytest.mark.own_database  # it counts every record past its retention
async def test_retention_clears_what_is_past_it_and_keeps_the_log_and_the_views_consistent(
    gateway_factory, dataset, sign_in, another_client
) -> None:
    from gateway.records import RETENTION_OUTCOME, clear_expired

    gateway = gateway_factory(merge_delay=0.2)
    police = await another_client(POLICE, ["provincial_police"], "Hanoi City Police")
    alice, bob = dataset.sample.citizens[0], dataset.sample.citizens[1]
    for _ in range(2):
        await _read(gateway, alice, procedure=RESIDENCE, case="CASE-R")
    await _read(gateway, bob, procedure=RESIDENCE, case="CASE-S")
    await _read(gateway, alice, signer=police, procedure=CRIMINAL, case="HS-9", officer="inv-9")
    until = (datetime.datetime.now(datetime.UTC) + 30 * DAYS).isoformat()
    asked = await gateway.post(
        'mutation($s: String!, $u: DateTime!) { requestConsent(subject: $s, procedure: "1.004222",'
        ' fields: ["Citizen.phone"], validUntil: $u) { id } }',
        {"s": bob, "u": until},
        procedure=RESIDENCE,
    )
    consent = asked.json()["data"]["requestConsent"]["id"]

    # Today nothing is past its retention: the operator's run says so and writes nothing.
    dry = gateway_cli(gateway, "audit", "retention", "--operator", "op-1", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("due: 0 records past their retention"), dry.stdout
    idle = gateway_cli(gateway, "audit", "retention", "--operator", "op-1")
    assert idle.returncode == 0, idle.stderr
    assert "nothing past its retention" in idle.stdout

    auditor = await sign_in.staff("auditor")
    async with gateway.client(auth=None) as http:
        before = await http.get("/audit/events", params={"type": "access"}, headers=auditor)
    accesses = {e["id"]: e for e in before.json()["events"]}
    residence = {i for i, e in accesses.items() if e["envelope"].get("procedure") == RESIDENCE}
    criminal = {i for i, e in accesses.items() if e["envelope"].get("procedure") == CRIMINAL}
    assert len(residence) == 4  # three reads, and the consent request
    assert len(criminal) == 1

    engine, catalogue, key = _context(gateway)
    later = datetime.datetime.now(datetime.UTC) + (gateway.settings.retention_days + 100) * DAYS
    try:
        dry_later = await clear_expired(
            engine,
            catalogue=catalogue,
            default_days=gateway.settings.retention_days,
            pseudonym_key=key,
            now=later,
            dry_run=True,
        )
        assert residence <= set(dry_later.records)
        assert not criminal & set(dry_later.records)
        assert await _kept(engine, residence) == residence  # a dry run changes nothing
        # Bounded: two records a batch, at most three a run; the run says more are due.
        runs = []
        while not runs or runs[-1].more:
            runs.append(
                await clear_expired(
                    engine,
                    catalogue=catalogue,
                    default_days=gateway.settings.retention_days,
                    pseudonym_key=key,
                    batch_size=2,
                    max_records=3,
                    operator="op-1",
                    now=later,
                )
            )
            assert len(runs) < 20
        cleared = {i for run in runs for i in run.records}
        # What the dry run counted, and ("six years later") the earlier runs' own records.
        assert cleared - set(dry_later.records) <= {run.event_id for run in runs}
        assert set(dry_later.records) <= cleared
        assert all(len(run.records) <= 3 for run in runs)
        assert sum(run.consents_expired for run in runs) == 1
        assert await _kept(engine, residence) == set()
        assert await _kept(engine, criminal) == criminal
        again = await clear_expired(
            engine,
            catalogue=catalogue,
            default_days=gateway.settings.retention_days,
            pseudonym_key=key,
            operator="op-1",
            now=later,
        )
        # Only the last run's own record is due then ("six years later").
        assert list(again.records) == [runs[-1].event_id]
        runs.append(again)
        cleared.update(again.records)
    finally:
        await engine.dispose()

    report = await gateway.audit()
    assert report.ok, report.problem
    assert any(
        line.endswith("personal parts cleared after their retention") for line in report.checked
    ), report.checked

    async with gateway.client(auth=None) as http:
        as_alice = await sign_in.citizen(alice)
        seen = (await http.get("/me/accesses", headers=as_alice)).json()["accesses"]
        # Alice sees the police's read (within its ten years), not the residence reads.
        assert {a["id"] for a in seen} == criminal
        as_bob = await sign_in.citizen(bob)
        assert (await http.get("/me/accesses", headers=as_bob)).json()["accesses"] == []
        consents = (await http.get("/me/consents", headers=as_bob)).json()["consents"]
        (asked_consent,) = [c for c in consents if c["id"] == consent]
        assert asked_consent["status"] == "EXPIRED"
        by_subject = await http.get(
            "/audit/events", params={"subject": alice, "type": "access"}, headers=auditor
        )
        assert {e["id"] for e in by_subject.json()["events"]} == criminal
        # The envelopes stay: the case's records are still found by the case.
        by_case = await http.get("/audit/events", params={"case": "CASE-R"}, headers=auditor)
        assert len(by_case.json()["events"]) == 2
        admin = await http.get("/audit/events", params={"type": "admin"}, headers=auditor)
    ran = [e for e in admin.json()["events"] if e["outcome"] == RETENTION_OUTCOME]
    assert len(ran) == len([r for r in runs if r.event_id])
    listed = {i for e in ran for i in e["envelope"]["events"]}
    assert listed == cleared
    assert all(e["envelope"]["action"] == "retention" for e in ran)
    assert all(e["envelope"]["schedule"] is False for e in ran)
    assert alice not in admin.text
    assert bob not in admin.text
    assert "op-1" not in admin.text  # the operator is pseudonymised


@pytest.mark.own_database  # it counts the records the schedule clears
async def test_the_schedule_clears_records_past_retention_in_runs_of_bounded_size(
    gateway_factory, dataset
) -> None:
    from prometheus_client import REGISTRY

    from gateway.records import RETENTION_OUTCOME, Event, insert_events

    def cleared_so_far() -> float:
        return REGISTRY.get_sample_value("gateway_retention_cleared_total") or 0.0

    gateway = gateway_factory(merge_delay=0.2)
    alice = dataset.sample.citizens[0]
    await _read(gateway, alice, procedure=RESIDENCE, case="CASE-T")  # within retention
    engine, catalogue, _ = _context(gateway)
    old = datetime.datetime.now(datetime.UTC) - (gateway.settings.retention_days + 10) * DAYS
    written = [
        Event(
            type="access",
            request_id=f"old-{n}",
            outcome="ok",
            policy_version=catalogue.version,
            envelope={"procedure": RESIDENCE, "subjects": 1},
            personal={"subjects": [alice]},
            subjects=[alice],
            procedure=RESIDENCE,
            ts=old + n * DAYS,
        )
        for n in range(5)
    ]
    counted = cleared_so_far()
    try:
        async with engine.begin() as conn:
            await insert_events(conn, written)
        # A replica with the schedule on: three records a run, a run at once after one
        # that left some.
        scheduled = gateway_factory.start(
            merge_delay=0.2,
            retention_interval_seconds=0.3,
            retention_batch_size=2,
            retention_max_records=3,
        )
        ids = {e.id for e in written}
        for _ in range(100):
            if not await _kept(engine, ids):
                break
            await asyncio.sleep(0.1)
        assert await _kept(engine, ids) == set()
        async with engine.connect() as conn:
            from gateway.storage import events

            runs = (
                await conn.execute(
                    sa.select(events.c.envelope).where(
                        events.c.type == "admin", events.c.outcome == RETENTION_OUTCOME
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    listed = [i for (envelope,) in runs for i in envelope["events"]]
    assert sorted(listed) == sorted(ids)  # each once: runs take turns and lists are exact
    assert all(len(envelope["events"]) <= 3 for (envelope,) in runs)
    assert all(envelope["schedule"] is True for (envelope,) in runs)
    report = await scheduled.audit()
    assert report.ok, report.problem
    assert cleared_so_far() - counted == 5


@pytest.mark.own_database  # it drops whole months of its own records
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_postgresql_drops_a_month_past_every_retention_at_once(
    gateway_factory, dataset, sign_in
) -> None:
    """Records of a month eleven years back (past the ten years of the longest
    retention) go with their partitions; those of six years back (past the default
    only) row by row; a month's partitions for the coming months are made."""
    from gateway.records import RETENTION_OUTCOME, Event, clear_expired, insert_events
    from gateway.storage import ensure_months, events, month_of, monthly_partitions

    gateway = gateway_factory(merge_delay=0.2)
    alice, bob = dataset.sample.citizens[0], dataset.sample.citizens[1]
    engine, catalogue, key = _context(gateway)
    now = datetime.datetime.now(datetime.UTC)
    eleven = (now - 11 * 366 * DAYS).replace(day=2, hour=0)  # well inside its month
    six = now - 6 * 366 * DAYS

    def event(ts: datetime.datetime, person: str, n: int) -> Event:
        return Event(
            type="access",
            request_id=f"old-{n}",
            outcome="ok",
            policy_version=catalogue.version,
            envelope={"procedure": RESIDENCE, "subjects": 1},
            personal={"subjects": [person]},
            subjects=[person],
            procedure=RESIDENCE,
            ts=ts,
        )

    whole = [event(eleven + n * datetime.timedelta(hours=1), alice, n) for n in range(4)]
    rows = [event(six + n * datetime.timedelta(hours=1), bob, 10 + n) for n in range(3)]
    try:
        async with engine.begin() as conn:
            # As the migration does for a database holding records of that month.
            assert await ensure_months(conn, eleven, ahead=0) == [month_of(eleven)]
            await insert_events(conn, whole + rows)
        await _read(gateway, alice, procedure=RESIDENCE, case="CASE-U")  # today's
        # A long reader (an export, an audit) holds the personal parts: the months wait
        # for the next run rather than hold recording up; the rest goes on.
        import asyncpg

        reader = await asyncpg.connect(
            gateway.settings.database_url.get_secret_value().replace("+asyncpg", "")
        )
        try:
            await reader.execute("BEGIN; SELECT count(*) FROM event_personal")
            deferred = await clear_expired(
                engine,
                catalogue=catalogue,
                default_days=gateway.settings.retention_days,
                pseudonym_key=key,
            )
        finally:
            await reader.close()
        assert list(deferred.months) == []
        assert set(deferred.records) == {e.id for e in rows}
        assert await _kept(engine, {e.id for e in whole}) == {e.id for e in whole}
        done = await clear_expired(
            engine,
            catalogue=catalogue,
            default_days=gateway.settings.retention_days,
            pseudonym_key=key,
        )
        assert list(done.months) == [month_of(eleven)]
        assert done.month_records == 4
        assert not done.records
        assert done.subject_entries == 4
        assert await _kept(engine, {e.id for e in whole + rows}) == set()
        async with engine.connect() as conn:
            months = await monthly_partitions(conn)
            first, second = (
                await conn.scalars(
                    sa.select(events.c.envelope)
                    .where(events.c.outcome == RETENTION_OUTCOME)
                    .order_by(events.c.ts)
                )
            ).all()
        assert month_of(eleven) not in months
        coming = month_of(now + 40 * DAYS)
        assert month_of(now) in months
        assert coming in months
        assert "months" not in first
        assert sorted(first["events"]) == sorted(e.id for e in rows)
        assert second["months"] == [month_of(eleven)]
        assert second["monthRecords"] == 4
    finally:
        await engine.dispose()

    report = await gateway.audit()
    assert report.ok, report.problem
    assert "7 personal parts cleared after their retention" in report.checked
    async with gateway.client(auth=None) as http:
        seen = (await http.get("/me/accesses", headers=await sign_in.citizen(alice))).json()
        assert len(seen["accesses"]) == 1  # today's read only
        seen = (await http.get("/me/accesses", headers=await sign_in.citizen(bob))).json()
        assert seen["accesses"] == []
