"""Patterns worth a look and the search filters behind their links, on a migrated SQLite.

Records are inserted as the recorder writes them (`insert_events`), with chosen times:
a busy officer against peers, reads outside working hours, repeated refusals and
withheld fields, one person read by three organisations; then a citizen's question
and an auditor's answer.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import InvalidArgument
from gateway.records import (
    Event,
    PatternSettings,
    SearchFilter,
    answer_event,
    citizen_questions,
    insert_events,
    open_question,
    patterns,
    pseudonym,
    questions,
    subject_handle,
    subject_of_handle,
)
from gateway.records._search import is_outside_hours

KEY = b"p" * 32
UTC = datetime.UTC
# Tuesday 2026-03-03, 10:00 in Vietnam (03:00 UTC): within working hours.
WORKDAY = datetime.datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
NIGHT = datetime.datetime(2026, 3, 3, 15, 30, tzinfo=UTC)  # 22:30 in Vietnam
SUNDAY = datetime.datetime(2026, 3, 1, 3, 0, tzinfo=UTC)  # Sunday 10:00 in Vietnam
START = datetime.datetime(2026, 2, 25, tzinfo=UTC)
END = datetime.datetime(2026, 3, 4, tzinfo=UTC)
ORG = "Công an xã A"


def _pid(n: int) -> str:
    return f"0011990{n:05d}"


def _access(
    subjects: list[str],
    *,
    officer: str = "officer-1",
    org: str = ORG,
    client: str = "VN/GOV/CA-A/cu-tru",
    ts: datetime.datetime = WORKDAY,
    outcome: str = "served",
    decisions: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> Event:
    return Event(
        type="access",
        request_id="req",
        outcome=outcome,
        policy_version="test",
        envelope={
            "client": client,
            "organisation": org,
            "officer": pseudonym(KEY, officer, "officer") if officer else None,
            "procedure": "1.004222",
            "subjects": len(subjects),
            "decisions": decisions or [],
            **(extra or {}),  # type: ignore[typeddict-item]
        },
        personal={"subjects": subjects, "officer": officer},
        subjects=subjects,
        client_id=client,
        procedure="1.004222",
        ts=ts,
    )


async def _insert(engine: AsyncEngine, batch: list[Event]) -> None:
    async with engine.begin() as conn:
        await insert_events(conn, batch)


async def _patterns(engine: AsyncEngine, **settings: Any) -> Any:
    async with engine.connect() as conn:
        return await patterns(
            conn, START, END, settings=PatternSettings(**settings), pseudonym_key=KEY
        )


async def _search(engine: AsyncEngine, **given: Any) -> list[str]:
    flt = SearchFilter.build(
        start="2026-02-25T00:00:00Z",
        end="2026-03-04T00:00:00Z",
        max_days=366,
        pseudonym_key=KEY,
        **given,
    )
    async with engine.connect() as conn:
        return [row.id for row in await conn.execute(flt.query().order_by(sa.text("ts")))]


# -- working hours ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "outside"),
    [
        (WORKDAY, False),
        (NIGHT, True),
        (SUNDAY, True),
        (datetime.datetime(2026, 3, 3, 0, 0, tzinfo=UTC), False),  # 07:00: the first hour in
        (datetime.datetime(2026, 3, 2, 23, 59, tzinfo=UTC), True),  # 06:59
        (datetime.datetime(2026, 3, 3, 9, 59, tzinfo=UTC), False),  # 16:59
        (datetime.datetime(2026, 3, 3, 10, 0, tzinfo=UTC), True),  # 17:00: the first hour out
        (datetime.datetime(2026, 2, 28, 3, 0, tzinfo=UTC), True),  # Saturday 10:00
    ],
)
async def test_outside_hours_is_vietnams_time_in_sql_as_in_python(
    engine: AsyncEngine, instant: datetime.datetime, outside: bool
) -> None:
    event = _access([_pid(1)], ts=instant)
    await _insert(engine, [event])
    assert is_outside_hours(instant, (7, 17)) is outside
    assert (await _search(engine, hours="outside")) == ([event.id] if outside else [])


async def test_the_new_filters_are_checked_and_described() -> None:
    cases: tuple[tuple[dict[str, Any], str], ...] = (
        ({"officer_pseudonym": "not-a-pseudonym"}, "officerPseudonym"),
        ({"hours": "inside"}, "hours"),
        ({"code": "lower"}, "code"),
    )
    for given, argument in cases:
        with pytest.raises(InvalidArgument) as caught:
            SearchFilter.build(start=None, end=None, max_days=30, pseudonym_key=KEY, **given)
        assert caught.value.detail["argument"] == argument
    described = SearchFilter.build(
        start=None,
        end=None,
        max_days=30,
        pseudonym_key=KEY,
        officer_pseudonym="a" * 32,
        hours="outside",
        work_hours=(8, 18),
        code="CONSENT_REQUIRED",
    ).described()
    assert described["officerPseudonym"] == "a" * 32
    assert described["hours"] == "outside"
    assert described["workHours"] == "08-18"
    assert described["code"] == "CONSENT_REQUIRED"


async def test_code_finds_decisions_and_refusals_and_officer_pseudonym_finds_the_officer(
    engine: AsyncEngine,
) -> None:
    withheld = _access(
        [_pid(1)],
        decisions=[
            {
                "path": "Citizen.phone",
                "decision": "CONSENT_REQUIRED",
                "basis": None,
                "subjects": [0],
            }
        ],
    )
    refused = _access([], outcome="rejected:CONSENT_REQUIRED", officer="officer-2")
    other = _access([_pid(2)], officer="officer-3")
    await _insert(engine, [withheld, refused, other])
    assert sorted(await _search(engine, code="CONSENT_REQUIRED")) == sorted(
        [withheld.id, refused.id]
    )
    assert await _search(engine, code="SUBJECT_NOT_IN_CASE") == []
    officer = pseudonym(KEY, "officer-3", "officer")
    assert await _search(engine, officer_pseudonym=officer) == [other.id]


# -- patterns ---------------------------------------------------------------------------


async def test_a_busy_officer_is_flagged_against_the_median_of_their_peers(
    engine: AsyncEngine,
) -> None:
    busy = [_access([_pid(n) for n in range(i * 50, i * 50 + 50)]) for i in range(4)]
    peers = [
        _access([_pid(1000 + i * 10 + n) for n in range(5)], officer=f"peer-{i}") for i in range(3)
    ]
    # Another organisation's officer reads as much, with no peer to be compared with.
    alone = [_access([_pid(n) for n in range(300, 400)], officer="alone", org="Sở B")]
    refused = [_access([_pid(1)], outcome="rejected:TOKEN_EXPIRED") for _ in range(3)]
    await _insert(engine, [*busy, *peers, *alone, *refused])
    found = await _patterns(engine)
    assert len(found.busy) == 1
    flagged = found.busy[0]
    assert flagged.organisation == ORG
    assert flagged.officer == pseudonym(KEY, "officer-1", "officer")
    assert (flagged.reads, flagged.requests, flagged.peers, flagged.peers_median) == (200, 4, 3, 5)
    assert flagged.search["officerPseudonym"] == flagged.officer
    assert flagged.search["organisation"] == ORG
    # Under the minimum of reads, however far above the peers: not flagged.
    assert (await _patterns(engine, min_reads=201)).busy == []
    # The search the finding links to finds its records.
    assert sorted(await _search(engine, officer_pseudonym=flagged.officer)) == sorted(
        e.id for e in [*busy, *refused]
    )


async def test_reads_outside_working_hours_per_officer_and_per_client(
    engine: AsyncEngine,
) -> None:
    night = [_access([_pid(n)], ts=NIGHT + datetime.timedelta(minutes=n)) for n in range(10)]
    sunday = [_access([_pid(n)], officer="", client="VN/GOV/X/batch", ts=SUNDAY) for n in range(12)]
    few = [_access([_pid(n)], officer="officer-2", ts=NIGHT) for n in range(9)]
    day = [_access([_pid(n)], officer="officer-2") for n in range(20)]
    await _insert(engine, [*night, *sunday, *few, *day])
    found = await _patterns(engine)
    assert [(o.officer, o.client, o.records) for o in found.outside] == [
        (None, "VN/GOV/X/batch", 12),
        (pseudonym(KEY, "officer-1", "officer"), None, 10),
    ]
    assert found.outside[1].search["hours"] == "outside"
    assert len(await _search(engine, **_search_args(found.outside[0].search))) == 12


def _search_args(search: dict[str, str]) -> dict[str, Any]:
    names = {"officerPseudonym": "officer_pseudonym"}
    return {names.get(k, k): v for k, v in search.items() if k not in ("from", "to")}


async def test_repeated_refusals_count_withheld_records_and_summaries(
    engine: AsyncEngine,
) -> None:
    def withheld(n: int) -> Event:
        return _access(
            [_pid(n)],
            decisions=[
                {
                    "path": "Citizen.x",
                    "decision": "SUBJECT_NOT_IN_CASE",
                    "basis": None,
                    "subjects": [-1],
                }
            ],
        )

    first = _access([], outcome="rejected:CONSENT_REQUIRED", officer="officer-9")
    summary = _access([], outcome="rejected:CONSENT_REQUIRED", officer="", extra={"refused": 6})
    await _insert(engine, [*(withheld(n) for n in range(5)), first, summary])
    found = await _patterns(engine)
    by_client = [r for r in found.refusals if r.kind == "client"]
    assert [(r.client, r.total, r.codes) for r in by_client] == [
        ("VN/GOV/CA-A/cu-tru", 12, {"CONSENT_REQUIRED": 7, "SUBJECT_NOT_IN_CASE": 5})
    ]
    assert by_client[0].searches["SUBJECT_NOT_IN_CASE"]["code"] == "SUBJECT_NOT_IN_CASE"
    # Per officer: 5 and 1, under the threshold.
    assert [r for r in found.refusals if r.kind == "officer"] == []
    assert len((await _patterns(engine, min_refusals=5)).refusals) == 2


async def test_one_person_read_by_three_organisations_is_a_handle(engine: AsyncEngine) -> None:
    person = _pid(7)
    reads = [
        _access([person], org=org, client=f"VN/GOV/{n}/he-thong", officer=f"o-{n}")
        for n, org in enumerate(["Sở A", "Sở B", "Sở C"])
    ]
    twice = [_access([_pid(8)], org=org) for org in ("Sở A", "Sở B")]
    await _insert(engine, [*reads, *twice])
    found = await _patterns(engine)
    assert [(s.organisations, s.records) for s in found.shared] == [(3, 3)]
    handle = found.shared[0].handle
    assert handle == subject_handle(KEY, person)
    assert person not in repr(found)
    async with engine.connect() as conn:
        assert (
            await subject_of_handle(conn, START, END, handle, min_orgs=3, pseudonym_key=KEY)
            == person
        )
        assert (
            await subject_of_handle(conn, START, END, "0" * 32, min_orgs=3, pseudonym_key=KEY)
            is None
        )
        # Outside the period, the handle finds no one.
        later = END + datetime.timedelta(days=1)
        assert (
            await subject_of_handle(conn, END, later, handle, min_orgs=3, pseudonym_key=KEY) is None
        )


# -- questions --------------------------------------------------------------------------


async def test_a_question_is_listed_by_its_envelope_and_answered(engine: AsyncEngine) -> None:
    person = _pid(5)
    access = _access([person])
    question = Event(
        type="admin",
        request_id="q",
        outcome="citizen_question",
        policy_version="test",
        envelope={"action": "citizen_question", "actor": "citizen", "client": access.client_id},  # type: ignore[typeddict-item]
        personal={"subject": person, "access": access.id, "question": "Vì sao?"},
        subjects=[person],
        client_id=access.client_id,
        ts=WORKDAY + datetime.timedelta(minutes=5),
    )
    await _insert(engine, [access, question])
    async with engine.connect() as conn:
        listed = await questions(conn, START, END)
        assert [(q.id, q.answered, q.client_id) for q in listed] == [
            (question.id, False, access.client_id)
        ]
        opened = await open_question(conn, question.id)
        assert opened is not None
        assert (opened.subject, opened.access, opened.text) == (person, access.id, "Vì sao?")
        assert await open_question(conn, access.id) is None
    answer = answer_event(
        request_id="a",
        policy_version="test",
        question=opened.question,
        subject=person,
        answer="Để giải quyết hồ sơ cư trú.",
        auditor="auditor-1",
        auditor_pseudonym=pseudonym(KEY, "auditor-1", "auditor"),
        auditor_org="VN/GOV/TTCP",
    )
    answer.ts = WORKDAY + datetime.timedelta(minutes=10)
    await _insert(engine, [answer])
    async with engine.connect() as conn:
        listed = await questions(conn, START, END)
        assert listed[0].answered
        assert listed[0].answers[0].auditor_org == "VN/GOV/TTCP"
        mine = await citizen_questions(conn, person, access.id)
        assert [(q["question"], [a["answer"] for a in q["answers"]]) for q in mine] == [
            ("Vì sao?", ["Để giải quyết hồ sơ cư trú."])
        ]
        assert await citizen_questions(conn, _pid(6), access.id) == []
        reopened = await open_question(conn, question.id)
        assert reopened is not None
        assert reopened.question.answers[0].text == "Để giải quyết hồ sơ cư trú."
    envelope = answer.rows({person: b"k" * 32}).event["envelope"]
    assert "Để giải quyết" not in str(envelope)
    assert person not in str(envelope)
