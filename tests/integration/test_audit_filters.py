"""The search filters the auditor's patterns link to, on SQLite and PostgreSQL:
`officerPseudonym`, `hours=outside` (Vietnam's time, computed in SQL) and `code`; and
the patterns themselves, computed alike by both databases.

Through `/audit/events` after real signed requests, and on records of chosen times
written as the recorder writes them (the hours' edges cannot wait for the clock).
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import pytest

from gateway.records import (
    Event,
    PatternSettings,
    SearchFilter,
    insert_events,
    patterns,
    pseudonym,
    subject_handle,
)
from gateway.records._search import is_outside_hours
from gateway.storage import create_engine

RESIDENCE = "1.004222"  # identity and residence by law, phone by consent
UTC = datetime.UTC
KEY = b"f" * 32


def _lookup(person: str, fields: str = "fullName") -> str:
    return f'{{ citizen(personalId: "{person}") {{ {fields} }} }}'


async def test_auditors_search_by_officer_pseudonym_hours_and_code(
    gateway: Any, dataset: Any, sign_in: Any
) -> None:
    officer = f"kiem-tra-bo-loc-{uuid.uuid4().hex[:8]}"
    alice, bob = dataset.sample.citizens[0], dataset.sample.citizens[1]
    purpose = {"procedure": RESIDENCE, "officer": officer}
    # Phone needs consent (CONSENT_REQUIRED); bob is not in the case (SUBJECT_NOT_IN_CASE).
    for query, subjects in (
        (_lookup(alice, "fullName phone"), [alice]),
        (_lookup(bob), [alice]),
        (_lookup(alice), [alice]),
    ):
        response = await gateway.post(query, subjects=subjects, **purpose)
        assert response.status_code == 200, response.text
    auditor = await sign_in.staff("auditor", org="VN/GOV/TTCP", sub="bo-loc-1")
    async with gateway.client(auth=None) as http:

        async def search(**params: str) -> list[dict[str, Any]]:
            response = await http.get("/audit/events", params=params, headers=auditor)
            assert response.status_code == 200, response.text
            found: list[dict[str, Any]] = response.json()["events"]
            return found

        by_id = await search(officer=officer)
        assert len(by_id) == 3
        alias = by_id[0]["envelope"]["officer"]
        assert {e["id"] for e in await search(officerPseudonym=alias)} == {e["id"] for e in by_id}
        consent = await search(officerPseudonym=alias, code="CONSENT_REQUIRED")
        assert [e["id"] for e in consent] == [by_id[2]["id"]]  # newest first: the first read
        not_in_case = await search(officerPseudonym=alias, code="SUBJECT_NOT_IN_CASE")
        assert [e["id"] for e in not_in_case] == [by_id[1]["id"]]
        outside = {
            e["id"]
            for e in by_id
            if is_outside_hours(datetime.datetime.fromisoformat(e["time"]), (7, 17))
        }
        assert {e["id"] for e in await search(officerPseudonym=alias, hours="outside")} == outside
        for params, argument in (
            ({"officerPseudonym": "ABC"}, "officerPseudonym"),
            ({"hours": "night"}, "hours"),
            ({"code": "consent required"}, "code"),
        ):
            refused = await http.get("/audit/events", params=params, headers=auditor)
            assert refused.status_code == 400
            assert refused.json()["detail"]["argument"] == argument


@pytest.mark.own_database
async def test_outside_hours_is_computed_in_vietnams_time_by_the_database(migrated: str) -> None:
    # Tuesday 2026-03-03 in Vietnam (UTC+7); Saturday 2026-02-28.
    instants = {
        datetime.datetime(2026, 3, 3, 3, 0, tzinfo=UTC): False,  # 10:00
        datetime.datetime(2026, 3, 3, 0, 0, tzinfo=UTC): False,  # 07:00, the first hour in
        datetime.datetime(2026, 3, 2, 23, 59, tzinfo=UTC): True,  # 06:59
        datetime.datetime(2026, 3, 3, 9, 59, tzinfo=UTC): False,  # 16:59
        datetime.datetime(2026, 3, 3, 10, 0, tzinfo=UTC): True,  # 17:00, the first hour out
        datetime.datetime(2026, 3, 3, 16, 30, tzinfo=UTC): True,  # 23:30
        datetime.datetime(2026, 3, 3, 17, 30, tzinfo=UTC): True,  # Wednesday 00:30
        datetime.datetime(2026, 2, 28, 3, 0, tzinfo=UTC): True,  # Saturday 10:00
        datetime.datetime(2026, 3, 1, 16, 59, tzinfo=UTC): True,  # Sunday 23:59
        datetime.datetime(2026, 3, 2, 1, 0, tzinfo=UTC): False,  # Monday 08:00
    }
    assert all(is_outside_hours(ts, (7, 17)) is out for ts, out in instants.items())
    batch = [
        Event(
            type="access",
            request_id="r",
            outcome="served",
            policy_version="test",
            envelope={"organisation": "Sở A", "officer": pseudonym(KEY, "o", "officer")},
            personal={"officer": "o"},
            client_id="VN/GOV/A/b",
            ts=ts,
        )
        for ts in instants
    ]
    engine = create_engine(migrated)
    try:
        async with engine.begin() as conn:
            await insert_events(conn, batch)
        for work, expected in (
            ((7, 17), {e.id for e in batch if instants[e.ts]}),
            ((0, 24), {e.id for e in batch if e.ts.astimezone(_vn()).weekday() >= 5}),
        ):
            flt = SearchFilter.build(
                start="2026-02-25",
                end="2026-03-05",
                max_days=366,
                pseudonym_key=KEY,
                hours="outside",
                work_hours=work,
            )
            async with engine.connect() as conn:
                found = {row.id for row in await conn.execute(flt.query())}
            assert found == expected, work
    finally:
        await engine.dispose()


def _vn() -> datetime.timezone:
    return datetime.timezone(datetime.timedelta(hours=7))


@pytest.mark.own_database
async def test_the_patterns_are_computed_alike_by_both_databases(migrated: str) -> None:
    at = datetime.datetime(2026, 3, 3, 3, 0, tzinfo=UTC)

    def read(people: list[str], officer: str, org: str = "Sở A", **extra: Any) -> Event:
        return Event(
            type="access",
            request_id="r",
            outcome=extra.pop("outcome", "served"),
            policy_version="test",
            envelope={
                "organisation": org,
                "officer": pseudonym(KEY, officer, "officer"),
                "decisions": extra.pop("decisions", []),
                **extra,  # type: ignore[typeddict-item]
            },
            personal={"officer": officer, "subjects": people},
            subjects=people,
            client_id=f"VN/GOV/{len(org)}/he-thong",
            ts=at,
        )

    pids = [f"0011990{n:05d}" for n in range(80)]
    withheld = [
        {"path": "Citizen.phone", "decision": "CONSENT_REQUIRED", "basis": None, "subjects": [0]}
    ]
    batch = [
        read(pids[:60], "ban-ron"),
        *(read(pids[60 + n * 3 : 63 + n * 3], f"dong-nghiep-{n}") for n in range(3)),
        read([pids[60]], "b", org="Sở Bắc"),
        read([pids[60]], "c", org="Sở Cầu"),
        *(read([pids[70]], "hoi-nhieu", decisions=withheld) for _ in range(10)),
    ]
    engine = create_engine(migrated)
    try:
        async with engine.begin() as conn:
            await insert_events(conn, batch)
        async with engine.connect() as conn:
            found = await patterns(
                conn,
                at - datetime.timedelta(days=1),
                at + datetime.timedelta(days=1),
                settings=PatternSettings(),
                pseudonym_key=KEY,
            )
            assert [(b.officer, b.reads, b.peers_median) for b in found.busy] == [
                (pseudonym(KEY, "ban-ron", "officer"), 60, 3)
            ]
            # pids[60] was read by Sở A (a colleague), Sở Bắc and Sở Cầu.
            assert [(s.organisations, s.records) for s in found.shared] == [(3, 3)]
            assert subject_handle(KEY, pids[60]) == found.shared[0].handle
            assert {(r.kind, r.total) for r in found.refusals} == {("client", 10), ("officer", 10)}
            assert found.outside == []
    finally:
        await engine.dispose()
