"""Every answer that carries data has its access record, committed first (fail closed)."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import hmac
import json
import re

import pytest
import sqlalchemy as sa

from gateway.log import canonical_hash
from gateway.records import commitment, personal_parts
from gateway.storage import create_engine

RESIDENCE = "1.004222"

_SQLITE_FAULT = [
    "CREATE TABLE fault (broken INTEGER NOT NULL)",
    "INSERT INTO fault VALUES (0)",
    """CREATE TRIGGER fail_events BEFORE INSERT ON events
       WHEN (SELECT broken FROM fault) = 1
       BEGIN SELECT RAISE(ABORT, 'injected fault'); END""",
]
_POSTGRES_FAULT = [
    "CREATE TABLE fault (broken INTEGER NOT NULL)",
    "INSERT INTO fault VALUES (0)",
    """CREATE FUNCTION fail_events() RETURNS trigger AS $$
       BEGIN
         IF (SELECT broken FROM fault) = 1 THEN RAISE EXCEPTION 'injected fault'; END IF;
         RETURN NEW;
       END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER fail_events BEFORE INSERT ON events
       FOR EACH ROW EXECUTE FUNCTION fail_events()""",
]


class Store:
    """The gateway's database, seen from outside: events, and a switch that breaks it."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)

    async def install_fault(self) -> None:
        statements = _POSTGRES_FAULT if self.engine.dialect.name == "postgresql" else _SQLITE_FAULT
        async with self.engine.begin() as conn:
            for statement in statements:
                await conn.execute(sa.text(statement))

    async def broken(self, value: bool) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sa.text("UPDATE fault SET broken = :b"), {"b": int(value)})

    async def request_ids(self) -> set[str]:
        async with self.engine.connect() as conn:
            # Access records: registering the test's client is recorded too, as `admin`.
            rows = await conn.execute(
                sa.text("SELECT request_id FROM events WHERE type = 'access'")
            )
            return {r.request_id for r in rows}


@pytest.fixture
async def store(migrated):
    store = Store(migrated)
    await store.install_fault()
    yield store
    await store.engine.dispose()


def _metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@pytest.mark.own_database  # it breaks the database
async def test_failing_store_under_concurrent_load(gateway_factory, dataset, store) -> None:
    gateway = gateway_factory(rate_limit_officer=10_000)
    people = list(dataset.sample.citizens)

    async def one(i: int):
        person = people[i % len(people)]
        return await gateway.post(
            f'{{ citizen(personalId: "{person}") {{ fullName }} }}', procedure=RESIDENCE
        )

    async def wave(start: int, size: int):
        return await asyncio.gather(*(one(start + i) for i in range(size)))

    responses = list(await wave(0, 20))
    await store.broken(True)
    failing = await wave(20, 20)
    responses += failing
    # Switch the store back while a wave is in flight: each answer is one or the other.
    toggled = asyncio.gather(*(one(40 + i) for i in range(30)))
    await asyncio.sleep(0.05)
    await store.broken(False)
    responses += await toggled
    responses += await wave(70, 20)

    recorded = await store.request_ids()
    served = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert {r.status_code for r in failing} == {503}
    for response in failing:
        assert response.json()["code"] == "AUDIT_UNAVAILABLE"
        assert "data" not in response.json()
    for response in refused:
        assert response.status_code == 503
        assert response.headers["x-request-id"] not in recorded
    for response in served:
        assert response.json()["data"]["citizen"]["fullName"]
        assert response.headers["x-request-id"] in recorded
    assert len(served) >= 40
    assert len(recorded) == len(served)


async def test_concurrent_requests_share_commits(gateway, dataset, sign_in) -> None:
    operator = await sign_in.staff("operator")
    async with gateway.client(auth=None) as http:
        before = (await http.get("/metrics", headers=operator)).text
    people = list(dataset.sample.citizens)
    responses = await asyncio.gather(
        *(
            gateway.post(
                f'{{ citizen(personalId: "{people[i % len(people)]}") {{ fullName }} }}',
                procedure=RESIDENCE,
            )
            for i in range(60)
        )
    )
    assert {r.status_code for r in responses} == {200}
    async with gateway.client(auth=None) as http:
        after = (await http.get("/metrics", headers=operator)).text
    events = _metric(after, "gateway_events_per_commit_sum") - _metric(
        before, "gateway_events_per_commit_sum"
    )
    commits = _metric(after, "gateway_events_per_commit_count") - _metric(
        before, "gateway_events_per_commit_count"
    )
    # The counters are the process's: another gateway of this test process may commit
    # meanwhile (a minute's summary of refusals), one event per commit at most.
    extra = events - 60
    assert 0 <= extra <= 5
    assert commits - extra < 60


async def test_the_record_holds_no_personal_data_in_its_envelope(
    gateway, dataset, migrated
) -> None:
    person = dataset.sample.citizens[0]
    response = await gateway.post(
        f'{{ citizen(personalId: "{person}") {{ fullName religion }} }}',
        procedure=RESIDENCE,
        officer="nguyen.van.a",
    )
    assert response.status_code == 200
    engine = create_engine(migrated)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.text(
                        "SELECT id, envelope, envelope_hash FROM events "
                        "WHERE client_id = :c AND type = 'access'"
                    ),
                    {"c": gateway.signer.client_id},
                )
            ).one()
            stored = (
                await conn.execute(
                    sa.text("SELECT personal, sealed FROM event_personal WHERE event_id = :e"),
                    {"e": row.id},
                )
            ).one()
            # Stored sealed, it opens with the person's key.
            personal = (await personal_parts(conn, [row.id], subject=person))[row.id].value()
            subjects = (
                (
                    await conn.execute(
                        sa.text("SELECT subject FROM event_subjects WHERE event_id = :e"),
                        {"e": row.id},
                    )
                )
                .scalars()
                .all()
            )
            key = await conn.scalar(
                sa.text("SELECT key FROM subject_keys WHERE subject = :s"), {"s": person}
            )
    finally:
        await engine.dispose()
    envelope = row.envelope if isinstance(row.envelope, dict) else json.loads(row.envelope)
    assert stored.personal is None
    assert person.encode() not in bytes(stored.sealed)
    assert b"nguyen.van.a" not in bytes(stored.sealed)
    text = str(envelope)
    assert person not in text
    assert "nguyen.van.a" not in text
    assert envelope["officer"] != "nguyen.van.a"
    assert {(d["path"], d["decision"], tuple(d["subjects"])) for d in envelope["decisions"]} == {
        ("Citizen.fullName", "ALLOWED_BY_LAW", (0,)),
        ("Citizen.religion", "PURPOSE_NOT_ALLOWED", (0,)),
    }
    assert envelope["sources"] == ["population"]
    assert personal["subjects"] == [person]
    assert personal["officer"] == "nguyen.van.a"
    assert subjects == [person]
    assert row.envelope_hash == canonical_hash(envelope)
    # The envelope commits to the person with a key of theirs, not with their id.
    assert envelope["subjectCommitments"] == [commitment(bytes(key), row.id)]
    assert (
        envelope["subjectCommitments"][0]
        == hmac.new(bytes(key), row.id.encode(), hashlib.sha256).hexdigest()[:32]
    )


@pytest.mark.own_database  # it breaks the database
async def test_a_consent_answer_that_cannot_be_recorded_does_not_happen(
    gateway, dataset, store, sign_in
) -> None:
    person = dataset.sample.citizens[0]
    requested = await gateway.post(
        """mutation($s: String!, $u: DateTime!) { requestConsent(subject: $s,
             procedure: "1.004222", fields: ["Citizen.phone"], validUntil: $u) { id } }""",
        {
            "s": person,
            "u": (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)).isoformat(),
        },
        procedure=RESIDENCE,
    )
    consent = requested.json()["data"]["requestConsent"]["id"]
    citizen = await sign_in.citizen(person)
    await store.broken(True)
    async with gateway.client(auth=None) as http:
        approved = await http.post(f"/me/consents/{consent}/approve", headers=citizen)
        await store.broken(False)
        after = (await http.get(f"/consents/{consent}/status")).json()
    assert approved.status_code == 503
    assert approved.json()["code"] == "AUDIT_UNAVAILABLE"
    assert after["status"] == "REQUESTED"
    phone = await gateway.post(
        f'{{ citizen(personalId: "{person}") {{ phone }} }}', procedure=RESIDENCE
    )
    assert phone.json()["errors"][0]["extensions"]["code"] == "CONSENT_REQUIRED"
