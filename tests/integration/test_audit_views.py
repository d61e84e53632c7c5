"""The access log as auditors, citizens and operators use it.

Auditors search and export (with proofs that verify offline); citizens see who read
their data (never anyone else's), hidden accesses from their date on, and receipts;
operators forget people whose retention is over and read the figures.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json

import pytest

from tests.integration.conftest import gateway_cli

RESIDENCE = "1.004222"  # identity and residence by law, phone by consent
PERMIT = "1.013225"  # building permit: land parcels and the owner, by law
BIRTH = "1.001193"  # birth registration: the parents, the spouse by law
CRIMINAL = "LOCAL.criminal-case-identity-check"  # its accesses may be hidden
POLICE = "VN/GOV/CAHN/investigation"
POLICE_ORG = "Hanoi City Police"


def _lookup(person: str, *extra: str) -> str:
    return f'{{ citizen(personalId: "{person}") {{ fullName {" ".join(extra)} }} }}'


async def _read(gateway, person: str, **purpose) -> dict:
    extra = purpose.pop("extra", ())
    response = await gateway.post(_lookup(person, *extra), **purpose)
    assert response.status_code == 200, response.text
    return response.json()


async def _logged(gateway) -> None:
    """Wait until every recorded event is in a signed checkpoint."""
    from gateway.log.store import TransparencyLog
    from gateway.storage import create_engine

    engine = create_engine(gateway.settings.database_url.get_secret_value())
    try:
        log = TransparencyLog(engine, None, origin=gateway.settings.checkpoint_origin)
        for _ in range(200):
            latest = await log.latest()
            if not await log.queued() and latest and latest.size == await log.size():
                return
            await asyncio.sleep(0.05)
    finally:
        await engine.dispose()
    raise AssertionError("the log did not catch up")


@pytest.fixture
def log_gateway(gateway_factory):
    return gateway_factory(merge_delay=0.2, rate_limit_officer=100_000, rate_limit_client=100_000)


@pytest.fixture
async def police(another_client):
    return await another_client(POLICE, ["provincial_police"], POLICE_ORG)


# -- auditors -----------------------------------------------------------------------------


@pytest.mark.own_database  # it counts every auditor search
async def test_auditors_search_by_every_filter_page_through_and_export_with_proofs(
    log_gateway, dataset, sign_in, police, tmp_path
) -> None:
    gateway = log_gateway
    alice, bob = dataset.sample.citizens[0], dataset.sample.citizens[1]
    first = await _read(
        gateway, alice, procedure=RESIDENCE, case="CASE-A", officer="officer-a", extra=["phone"]
    )
    assert first["errors"][0]["extensions"]["code"] == "CONSENT_REQUIRED"
    await _read(gateway, bob, procedure=RESIDENCE, case="CASE-B", officer="officer-b")
    await _read(gateway, alice, signer=police, procedure=CRIMINAL, case="HS-1", officer="inv-1")
    for _ in range(5):
        await _read(gateway, alice, procedure=RESIDENCE, case="CASE-A", officer="officer-a")
    auditor = await sign_in.staff("auditor", org="VN/GOV/TTCP", sub="auditor-1")

    async with gateway.client(auth=None) as http:

        async def search(**params) -> list[dict]:
            response = await http.get("/audit/events", params=params, headers=auditor)
            assert response.status_code == 200, response.text
            assert alice not in response.text
            assert bob not in response.text
            return response.json()["events"]

        of_alice = await search(subject=alice, type="access")
        assert len(of_alice) == 7
        assert all(e["type"] == "access" and e["envelope"]["subjects"] == 1 for e in of_alice)
        times = [e["time"] for e in of_alice]
        assert times == sorted(times, reverse=True)
        of_bob = await search(subject=bob)
        assert len(of_bob) == 1
        assert not {e["id"] for e in of_bob} & {e["id"] for e in of_alice}
        assert len(await search(client=police.client_id, type="access")) == 1
        # Its registration and its key's are admin records of that client.
        assert len(await search(client=police.client_id, type="admin")) == 2
        assert len(await search(organisation=POLICE_ORG)) == 1
        assert [e["procedure"] for e in await search(procedure=CRIMINAL)] == [CRIMINAL]
        assert len(await search(officer="officer-b")) == 1
        assert len(await search(case="CASE-A")) == 6
        assert len(await search(case="HS-1", officer="inv-1", subject=alice)) == 1
        refused = await search(decision="CONSENT_REQUIRED")
        assert [e["id"] for e in refused] == [of_alice[-1]["id"]]
        assert len(await search(decision="ALLOWED_BY_LAW", subject=bob)) == 1
        tomorrow = (datetime.date.today() + datetime.timedelta(days=2)).isoformat()
        assert await search(**{"from": tomorrow, "to": tomorrow + "T23:00:00+07:00"}) == []

        # Pages of three: the same records, newest first, none twice.
        pages, cursor = [], None
        while True:
            params = {"subject": alice, "type": "access", "limit": 3}
            if cursor:
                params["cursor"] = cursor
            body = (await http.get("/audit/events", params=params, headers=auditor)).json()
            pages.append([e["id"] for e in body["events"]])
            cursor = body["next"]
            if cursor is None:
                break
        assert [len(p) for p in pages] == [3, 3, 1]
        assert [i for p in pages for i in p] == [e["id"] for e in of_alice]

        # Every search above is an auditor_search record, in the log like any other.
        searches = await search(type="auditor_search", limit=100)
        assert len(searches) == 15  # the twelve searches above and the three pages
        with_subject = [s for s in searches if "subject" in s["envelope"]["filter"]]
        assert with_subject
        assert all(len(s["envelope"]["subjectCommitments"]) == 1 for s in with_subject)
        assert {s["envelope"]["auditorOrg"] for s in searches} == {"VN/GOV/TTCP"}

        await _logged(gateway)
        export = await http.get("/audit/export", params={"subject": alice}, headers=auditor)
        assert export.status_code == 200, export.text
        assert export.headers["content-type"].startswith("application/x-ndjson")
        verifier = (await http.get("/log/key")).text.splitlines()[0]
    assert alice not in export.text
    lines = export.text.splitlines()
    head, records, end = (
        json.loads(lines[0]),
        [json.loads(x) for x in lines[1:-1]],
        json.loads(lines[-1]),
    )
    assert head["kind"] == "checkpoint"
    assert end["kind"] == "end"
    assert {r["id"] for r in records if r["type"] == "access"} == {e["id"] for e in of_alice}
    assert end["proven"] == len(records)
    assert end["pending"] == 0

    saved = tmp_path / "export.jsonl"
    saved.write_text(export.text)
    checked = gateway_cli(gateway, "audit", "verify-export", str(saved), "--key", verifier)
    assert checked.returncode == 0, checked.stderr
    assert f"{len(records)} records proven included" in checked.stdout

    # Any edit shows, with the line it is on.
    envelope_edited = [*lines]
    second = json.loads(lines[2])
    second["envelope"]["organisation"] = "Someone else"
    envelope_edited[2] = json.dumps(second)
    proof_edited = [*lines]
    third = json.loads(lines[3])
    third["leafIndex"] = third["leafIndex"] + 1
    proof_edited[3] = json.dumps(third)
    saved.write_text("\n".join(envelope_edited) + "\n")
    failed = gateway_cli(gateway, "audit", "verify-export", str(saved), "--key", verifier)
    assert failed.returncode == 1, failed.stdout
    assert "line 3 of" in failed.stderr
    assert "does not match its hash" in failed.stderr
    # The command runs this function: the other edits, in this process.
    from gateway.log import verify_export
    from keys import parse_verifier_key

    for bad, line, problem in (
        (proof_edited, 4, "does not lead to the checkpoint's root"),
        (lines[:-2], len(lines) - 1, "cut short"),
    ):
        found = verify_export([x.encode() for x in bad], [parse_verifier_key(verifier)])
        assert (found.bad_line, problem in (found.problem or "")) == (line, True)

    report = await gateway.audit()
    assert report.ok, report.problem


async def test_a_search_for_today_finds_what_was_read_today(gateway, dataset, sign_in) -> None:
    from gateway.instants import VIETNAM

    person = dataset.sample.citizens[0]
    await _read(gateway, person, procedure=RESIDENCE, case="HS-TODAY")
    today = datetime.datetime.now(VIETNAM).date().isoformat()
    auditor = await sign_in.staff("auditor", org="VN/GOV/TTCP")
    async with gateway.client(auth=None) as http:
        found = await http.get(
            "/audit/events",
            params={"from": today, "to": today, "subject": person},
            headers=auditor,
        )
        backwards = await http.get(
            "/audit/events", params={"from": today, "to": "2020-01-01"}, headers=auditor
        )
    assert found.status_code == 200, found.text
    assert found.json()["events"]
    assert backwards.json()["message"] == "`from` must be before `to`."


async def test_bad_searches_get_clear_errors(gateway, sign_in, dataset) -> None:
    auditor = await sign_in.staff("auditor")
    citizen = await sign_in.citizen(dataset.sample.citizens[0])
    operator = await sign_in.staff("operator")
    async with gateway.client(auth=None) as http:

        async def refused(params: dict, headers=auditor, route="/audit/events") -> dict:
            response = await http.get(route, params=params, headers=headers)
            assert 400 <= response.status_code < 500, response.text
            return {"status": response.status_code, **response.json()}

        bad_id = await refused({"subject": "00109001234"})
        assert (bad_id["status"], bad_id["code"]) == (400, "INVALID_IDENTIFIER")
        too_long = await refused({"from": "2025-01-01", "to": "2026-06-01"})
        assert (too_long["status"], too_long["code"]) == (400, "INVALID_ARGUMENT")
        assert too_long["detail"]["maxDays"] == 366
        big_page = await refused({"limit": 501})
        assert (big_page["status"], big_page["detail"]["argument"]) == (400, "limit")
        for params in (
            {"from": "2026-01-01T08:00:00"},  # no offset
            {"from": "yesterday"},
            {"type": "everything"},
            {"decision": "MAYBE"},
            {"cursor": "not-ours"},
            {"from": "2026-02-01", "to": "2026-01-01"},
        ):
            assert (await refused(params))["status"] == 400, params
        for route in ("/audit/events", "/audit/export"):
            assert (await refused({}, citizen, route))["status"] == 403
            assert (await refused({}, operator, route))["status"] == 403
        assert (await http.get("/audit/events")).status_code == 401
        # The citizen's own history has the same limits.
        assert (await refused({"limit": 501}, citizen, "/me/accesses"))["status"] == 400


# -- citizens -----------------------------------------------------------------------------


async def test_each_citizen_sees_who_read_their_data_and_nobody_elses(
    log_gateway, dataset, sign_in, police, tmp_path
) -> None:
    gateway = log_gateway
    alice, bob = dataset.sample.citizens[0], dataset.sample.citizens[1]
    await _read(gateway, alice, procedure=RESIDENCE, case="HS-2026-77", extra=["phone"])
    await _read(gateway, bob, procedure=RESIDENCE, case="HS-2026-78")
    auditor = await sign_in.staff("auditor", org="VN/GOV/TTCP")
    as_alice, as_bob = await sign_in.citizen(alice), await sign_in.citizen(bob)
    async with gateway.client(auth=None) as http:
        searched = await http.get("/audit/events", params={"subject": alice}, headers=auditor)
        assert searched.status_code == 200
        await _logged(gateway)
        mine = (await http.get("/me/accesses", headers=as_alice)).json()["accesses"]
        theirs = (await http.get("/me/accesses", headers=as_bob)).json()["accesses"]
        weak = await http.get("/me/accesses", headers=await sign_in.citizen(alice, level=1))
        assert weak.status_code == 403

        assert [a["kind"] for a in mine] == ["audit", "access"]
        audit, access = mine
        assert audit["organisation"] == "Thanh tra Chính phủ"  # VN/GOV/TTCP, by its name
        assert audit["officer"]["role"]["en"] == "Access-log auditor"
        assert access["organisation"] == "Test agency"
        assert access["system"] == {"id": gateway.signer.client_id, "name": "Integration tests"}
        assert access["officer"] == {
            "role": {
                "vi": "Cán bộ Công an cấp xã",
                "en": "Officer of the Commune-level police (residence registration)",
            }
        }
        assert access["procedure"]["name"] == {
            "vi": "Đăng ký thường trú",
            "en": "Permanent residence registration",
        }
        assert access["case"] == "HS-2026-77"
        assert access["fields"] == ["Citizen.fullName"]
        assert [w["code"] for w in access["withheld"]] == ["CONSENT_REQUIRED"]
        assert access["basis"][0]["kind"] == "law"
        assert "Law on Residence" in access["basis"][0]["legalBasis"]
        assert access["outcome"]
        assert access["inLog"] is True

        assert [a["kind"] for a in theirs] == ["access"]
        assert theirs[0]["case"] == "HS-2026-78"
        assert not {a["id"] for a in mine} & {a["id"] for a in theirs}
        # Bob cannot fetch Alice's receipt: to him, her access does not exist.
        other = await http.get(f"/me/accesses/{access['id']}/receipt", headers=as_bob)
        assert (other.status_code, other.json()["code"]) == (404, "NOT_FOUND")

        # A period without accesses, and pages of one.
        old = await http.get(
            "/me/accesses", params={"from": "2025-01-01", "to": "2025-02-01"}, headers=as_alice
        )
        assert old.json() == {"accesses": [], "next": None}
        page = (await http.get("/me/accesses", params={"limit": 1}, headers=as_alice)).json()
        assert [a["id"] for a in page["accesses"]] == [audit["id"]]
        rest = await http.get(
            "/me/accesses", params={"limit": 1, "cursor": page["next"]}, headers=as_alice
        )
        assert [a["id"] for a in rest.json()["accesses"]] == [access["id"]]

        # Alice's receipt verifies offline, with the checkpoint key alone.
        receipt = await http.get(f"/me/accesses/{access['id']}/receipt", headers=as_alice)
        assert receipt.status_code == 200, receipt.text
        verifier = (await http.get("/log/key")).text.splitlines()[0]
        envelope = (
            await http.get(
                "/audit/events", params={"subject": alice, "type": "access"}, headers=auditor
            )
        ).json()["events"][0]
    assert alice not in receipt.text
    from gateway.log import verify_tlog_proof
    from keys import parse_verifier_key

    proven = verify_tlog_proof(receipt.text, [parse_verifier_key(verifier)])
    assert proven.leaf["envelope_hash"] == envelope["envelopeHash"]
    assert proven.index == envelope["leafIndex"]
    saved = tmp_path / "receipt.tlog-proof"
    saved.write_text(receipt.text)
    checked = gateway_cli(gateway, "audit", "verify-proof", str(saved), "--key", verifier)
    assert checked.returncode == 0, checked.stderr
    assert f"leaf {proven.index} is in the checkpoint" in checked.stdout
    saved.write_text(receipt.text.replace(f"index {proven.index}", f"index {proven.index + 1}"))
    broken = gateway_cli(gateway, "audit", "verify-proof", str(saved), "--key", verifier)
    assert broken.returncode == 1
    assert "does not lead to the checkpoint's root" in broken.stderr


async def test_a_citizen_is_told_only_of_fields_a_source_answered(
    gateway_factory, dataset, sign_in, another_client
) -> None:
    # The civil-status registry is cut off here: documents are allowed (by the test
    # procedure) and the business registry answers its part of the list, but a list
    # missing a source fails whole, and nothing of it is told as served.
    gateway = gateway_factory(connector_urls={"civil": "http://127.0.0.1:9"})
    commune = await another_client("VN/GOV/UBND-HN/permits", ["commune_peoples_committee"])
    person = dataset.sample.citizens[0]
    query = (
        f'{{ citizen(personalId: "{person}") {{ fullName }} '
        f'documents(holder: "{person}") {{ documentId title }} }}'
    )
    response = await gateway.post(query, signer=commune, subjects=[person])
    assert response.status_code == 200, response.text
    codes = {e["extensions"]["code"] for e in response.json().get("errors", [])}
    assert "SOURCE_UNAVAILABLE" in codes
    refused = await gateway.post(query, signer=commune, procedure="9.999999", subjects=[person])
    assert refused.json()["code"] == "UNKNOWN_PROCEDURE"
    async with gateway.client(auth=None) as http:
        mine = await http.get("/me/accesses", headers=await sign_in.citizen(person))
    access, rejected = sorted(
        (a for a in mine.json()["accesses"] if a["system"]["id"] == commune.client_id),
        key=lambda a: a["outcome"].startswith("rejected"),
    )
    assert access["fields"] == ["Citizen.fullName"]
    assert access["unanswered"] == ["Document.documentId", "Document.title"]
    assert rejected["outcome"] == "rejected:UNKNOWN_PROCEDURE"
    assert rejected["officer"] == {"role": {"vi": "Không rõ", "en": "Unknown"}}
    assert rejected["fields"] == []


async def test_a_related_person_named_in_an_answer_is_not_told_of_the_read(
    gateway, dataset, sign_in, another_client
) -> None:
    """The reads of a person's record are theirs: a relative it names is not shown them.

    Showing the spouse that the person's record was read (by whom, in which procedure
    and case) would tell the spouse of the person's dealings with the state. The
    relationship is the person's own registered data, decided field by field for
    their procedure; the relative is told of reads where the purpose names them.
    """
    commune = await another_client("VN/GOV/UBND-HN/civil", ["commune_peoples_committee"])
    auditor = await sign_in.staff("auditor", org="VN/GOV/TTCP")
    for person in dataset.sample.citizens:
        response = await gateway.post(
            _lookup(person, "spouse { personalId fullName }"),
            signer=commune,
            procedure=BIRTH,
            subjects=[person],
        )
        assert response.status_code == 200, response.text
        spouse = response.json()["data"]["citizen"]["spouse"]
        if spouse and spouse["personalId"]:
            break
    else:
        pytest.fail("no sample citizen has a spouse")
    related = spouse["personalId"]
    async with gateway.client(auth=None) as http:
        mine = await http.get("/me/accesses", headers=await sign_in.citizen(person))
        theirs = await http.get("/me/accesses", headers=await sign_in.citizen(related))
        searched = await http.get("/audit/events", params={"subject": related}, headers=auditor)
    read = [a for a in mine.json()["accesses"] if a["system"]["id"] == commune.client_id]
    assert [a["fields"] for a in read][-1] == ["Citizen.fullName", "Citizen.spouse"]
    # Other tests on the shared database may read the spouse as their own subject: what
    # matters is that this read, by this client, is not theirs.
    assert not [
        a
        for a in theirs.json()["accesses"]
        if a["kind"] == "access" and a["system"]["id"] == commune.client_id
    ]
    assert [e for e in searched.json()["events"] if e["clientId"] == commune.client_id] == []


@pytest.mark.own_database  # no other gateway's sequencer may integrate its record
async def test_a_receipt_waits_for_the_checkpoint(gateway_factory, dataset, sign_in) -> None:
    slow = gateway_factory(merge_delay=300)
    # Its sequencer's first pass, at start, integrates what was queued before; the next
    # comes a quarter of the merge delay later, long after this read.
    await slow.caught_up()
    alice = dataset.sample.citizens[0]
    await _read(slow, alice, procedure=RESIDENCE)
    as_alice = await sign_in.citizen(alice)
    async with slow.client(auth=None) as http:
        (access,) = (await http.get("/me/accesses", headers=as_alice)).json()["accesses"]
        assert access["inLog"] is False
        early = await http.get(f"/me/accesses/{access['id']}/receipt", headers=as_alice)
    assert (early.status_code, early.json()["code"]) == (409, "CONFLICT")
    assert early.json()["detail"]["retryAfter"] > 0


@pytest.mark.own_database  # it counts every access to its citizen
async def test_hidden_accesses_appear_to_the_citizen_on_their_date_and_to_auditors_always(
    log_gateway, dataset, sign_in, police
) -> None:
    gateway = log_gateway
    alice = dataset.sample.citizens[0]
    # Signed in first: everything between the hidden read and the receipt's 404 must fit
    # in the hiding window, on a busy machine too.
    as_alice = await sign_in.citizen(alice)
    auditor = await sign_in.staff("auditor")
    until = datetime.datetime.now(datetime.UTC).replace(microsecond=0) + datetime.timedelta(
        seconds=6
    )
    hidden = await _read(
        gateway, alice, signer=police, procedure=CRIMINAL, case="HS-9", hidden_until=until
    )
    assert "errors" not in hidden, hidden
    # A procedure that does not allow hiding refuses the request outright.
    not_allowed = await gateway.post(_lookup(alice), procedure=RESIDENCE, hidden_until=until)
    assert not_allowed.status_code == 400
    assert not_allowed.json()["code"] == "INVALID_PURPOSE"

    async with gateway.client(auth=None) as http:
        before = (await http.get("/me/accesses", headers=as_alice)).json()["accesses"]
        seen = (
            await http.get(
                "/audit/events", params={"subject": alice, "type": "access"}, headers=auditor
            )
        ).json()["events"]
        assert sorted((e["procedure"], e["outcome"]) for e in seen) == [
            (RESIDENCE, "rejected:INVALID_PURPOSE"),
            (CRIMINAL, "served"),
        ]
        (hidden_event,) = [e for e in seen if e["procedure"] == CRIMINAL]
        assert hidden_event["hiddenUntil"] == until.isoformat().replace("+00:00", "Z")
        assert all(a["procedure"]["code"] != CRIMINAL for a in before if a["procedure"])
        receipt = await http.get(f"/me/accesses/{hidden_event['id']}/receipt", headers=as_alice)
        assert receipt.status_code == 404
        await asyncio.sleep(max(0.0, (until - datetime.datetime.now(datetime.UTC)).total_seconds()))
        await asyncio.sleep(0.2)
        after = (await http.get("/me/accesses", headers=as_alice)).json()["accesses"]
    shown = [a for a in after if a["procedure"] and a["procedure"]["code"] == CRIMINAL]
    assert [a["id"] for a in shown] == [hidden_event["id"]]
    assert shown[0]["officer"]["role"]["vi"] == "Cán bộ Công an cấp tỉnh"


@pytest.mark.own_database  # it counts every hidden access
async def test_the_hiding_boundary_is_the_instant_itself(migrated) -> None:
    """At `hiddenUntil` exactly the access shows; a microsecond before, it does not."""
    import sqlalchemy as sa

    from gateway.records import Event, SearchFilter, insert_events, search_page
    from gateway.storage import create_engine, event_subjects, events

    until = datetime.datetime(2026, 3, 1, 0, 0, tzinfo=datetime.UTC)
    event = Event(
        type="access",
        request_id="r-1",
        outcome="served",
        policy_version="test",
        envelope={"hiddenUntil": "2026-03-01T00:00:00Z", "procedure": CRIMINAL},
        personal={},
        subjects=["001090012345"],
        procedure=CRIMINAL,
    )
    engine = create_engine(migrated)
    try:
        async with engine.begin() as conn:
            await insert_events(conn, [event])
            assert (
                await conn.scalar(sa.select(events.c.hidden_until).where(events.c.id == event.id))
                is not None
            )
            indexed = sa.select(sa.func.count()).where(event_subjects.c.event_id == event.id)
            assert await conn.scalar(indexed) == 1
        base = SearchFilter(
            start=until - datetime.timedelta(days=3650),
            end=until + datetime.timedelta(days=3650),
            subject="001090012345",
        )
        async with engine.connect() as conn:
            for instant, shown in (
                (until - datetime.timedelta(microseconds=1), 0),
                (until, 1),
                (until + datetime.timedelta(days=1), 1),
            ):
                flt = dataclasses.replace(base, visible_at=instant)
                assert len((await search_page(conn, flt, limit=10)).rows) == shown, instant
            # Auditors (no `visible_at`) always see it.
            assert len((await search_page(conn, base, limit=10)).rows) == 1
    finally:
        await engine.dispose()


# -- retention and forgetting -------------------------------------------------------------


@pytest.mark.own_database  # it counts every forgotten person's parts
async def test_forgetting_waits_for_retention_then_keeps_the_log_verifiable(
    log_gateway, dataset, sign_in, tmp_path
) -> None:
    from gateway.records import forget
    from gateway.storage import create_engine
    from keys import load_secret
    from policies import load_catalogue
    from schema import canonical_fields

    gateway = log_gateway
    alice, bob = dataset.sample.citizens[0], dataset.sample.citizens[1]
    for _ in range(3):
        await _read(gateway, alice, procedure=RESIDENCE, case="CASE-F")
    await _read(gateway, bob, procedure=RESIDENCE, case="CASE-G")
    await _logged(gateway)

    early = gateway_cli(gateway, "audit", "forget", alice, "--operator", "op-1")
    assert early.returncode == 2
    assert "RETENTION_NOT_OVER" in early.stderr
    assert "must be kept until" in early.stderr
    malformed = gateway_cli(gateway, "audit", "forget", "12345", "--operator", "op-1")
    assert malformed.returncode == 2
    assert "INVALID_IDENTIFIER" in malformed.stderr

    settings = gateway.settings
    engine = create_engine(settings.database_url.get_secret_value())
    try:
        later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(
            days=settings.retention_days + 1
        )
        done = await forget(
            engine,
            alice,
            catalogue=load_catalogue(settings.catalogue_dir, canonical=canonical_fields()),
            default_days=settings.retention_days,
            operator="op-1",
            pseudonym_key=load_secret(settings.keys_dir, "pseudonyms", create=False),
            now=later,
        )
    finally:
        await engine.dispose()
    assert done.records == 3

    report = await gateway.audit()
    assert report.ok, report.problem
    # Alice's three records keep their sealed parts, which open for nobody now.
    assert "3 personal parts sealed for people all since forgotten (opened by nobody)" in (
        report.checked
    )
    auditor = await sign_in.staff("auditor")
    async with gateway.client(auth=None) as http:
        assert (await http.get("/me/accesses", headers=await sign_in.citizen(alice))).json()[
            "accesses"
        ] == []
        assert (
            len(
                (await http.get("/me/accesses", headers=await sign_in.citizen(bob))).json()[
                    "accesses"
                ]
            )
            == 1
        )
        found = await http.get(
            "/audit/events", params={"subject": alice, "type": "access"}, headers=auditor
        )
        assert found.json()["events"] == []
        # The envelopes stay: the case's records are all still there, and the forgetting too.
        by_case = await http.get("/audit/events", params={"case": "CASE-F"}, headers=auditor)
        assert len(by_case.json()["events"]) == 3
        admin = await http.get("/audit/events", params={"type": "admin"}, headers=auditor)
    case_records = {e["id"] for e in by_case.json()["events"]}
    (forgotten,) = [e for e in admin.json()["events"] if e["id"] == done.event_id]
    assert forgotten["outcome"] == "forgotten"
    assert forgotten["envelope"]["action"] == "forget"
    # How many records named her, and a salted digest: not which (that would link them).
    assert forgotten["envelope"]["records"] == 3
    assert not {i for i in case_records if i in str(forgotten["envelope"])}
    assert alice not in admin.text


# -- operators ----------------------------------------------------------------------------


@pytest.mark.own_database  # the figures count every agency's requests
async def test_operators_read_the_figures_papers_avoided_included(
    gateway, dataset, sign_in
) -> None:
    alice, bob = dataset.sample.citizens[0], dataset.sample.citizens[1]
    prefill = """query($a: String!) { prefill(procedure: "1.004222", applicant: $a) {
        papersAvoided { paper { en } } } }"""
    filled = await gateway.post(prefill, {"a": alice}, procedure=RESIDENCE)
    avoided = filled.json()["data"]["prefill"]["papersAvoided"]
    assert [p["paper"]["en"] for p in avoided] == [
        "Identity card",
        "Proof of lawful dwelling (land-use certificate)",
    ]
    await _read(gateway, bob, procedure=RESIDENCE, extra=["phone"])
    until = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)).isoformat()
    asked = await gateway.post(
        'mutation($s: String!, $u: DateTime!) { requestConsent(subject: $s, procedure: "1.004222",'
        ' fields: ["Citizen.phone"], validUntil: $u) { id } }',
        {"s": bob, "u": until},
        procedure=RESIDENCE,
    )
    consent = asked.json()["data"]["requestConsent"]["id"]
    operator = await sign_in.staff("operator")
    as_bob = await sign_in.citizen(bob)
    async with gateway.client(auth=None) as http:
        for action in ("approve", "revoke"):
            answered = await http.post(f"/me/consents/{consent}/{action}", headers=as_bob)
            assert answered.status_code == 200, answered.text
        stats = await http.get("/admin/stats", params={"procedure": RESIDENCE}, headers=operator)
        assert stats.status_code == 200, stats.text
        (row,) = stats.json()["rows"]
        auditor = await http.get("/admin/stats", headers=await sign_in.staff("auditor"))
        metrics = (await http.get("/metrics", headers=operator)).text
    assert row["procedure"] == RESIDENCE
    assert row["organisation"] == "Test agency"
    assert row["requests"] == 3  # the consent request is a request too
    assert row["consents"] == {"requested": 1, "approved": 1, "revoked": 1}
    assert row["papersAvoided"] == 2
    # The phone is withheld from the prefill and from the read.
    assert row["denials"] == {"CONSENT_REQUIRED": 2}
    # Prefill: the id, name, birth date, gender, household and relation to the head, and
    # the land parcel's address, certificate serial and holders; the read: the id and the
    # name.
    assert row["fieldsServed"] == 11
    assert auditor.status_code == 403
    assert (
        'gateway_papers_avoided_total{organisation="Test agency",procedure="1.004222"}' in metrics
    )


async def test_a_covert_check_stays_hidden_through_every_kind_of_refusal(
    gateway, dataset, sign_in, police
) -> None:
    """A refused token of a hidden access, whatever refused it, hides like the access."""
    import time

    import orjson

    alice = dataset.sample.citizens[0]
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    until = now + datetime.timedelta(days=30)
    body = orjson.dumps({"query": _lookup(alice)})
    covert = {
        "procedure": CRIMINAL,
        "case": "HS-COVERT",
        "hidden_until": until,
        "subjects": [alice],
    }
    served = police.sign(body, **covert)
    tokens = {
        "served": served,
        "rejected:TOKEN_REPLAYED": served,
        "rejected:TOKEN_EXPIRED": police.sign(body, **covert, now=int(time.time()) - 3600, ttl=60),
        "rejected:REQUEST_MISMATCH": police.sign(b'{"query": "{ __typename }"}', **covert),
        "rejected:INVALID_PURPOSE": police.sign(
            body, **{**covert, "hidden_until": now + datetime.timedelta(days=4000)}
        ),
    }
    auditor = await sign_in.staff("auditor")
    async with gateway.client(auth=None) as http:
        for token in tokens.values():
            await http.post(
                "/graphql",
                content=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
        mine = (await http.get("/me/accesses", headers=await sign_in.citizen(alice))).json()
        seen = (
            await http.get(
                "/audit/events",
                params={"subject": alice, "client": police.client_id},
                headers=auditor,
            )
        ).json()["events"]
    # Auditors see each of them, every one hidden from the person it names.
    assert sorted(e["outcome"] for e in seen) == sorted(tokens)
    assert all(e["hiddenUntil"] for e in seen)
    assert not [
        a for a in mine["accesses"] if a["system"] and a["system"]["id"] == police.client_id
    ]


async def test_an_export_stops_at_its_cap_and_says_so(
    gateway_factory, dataset, sign_in, another_client
) -> None:
    gateway = gateway_factory(audit_max_export=2, merge_delay=0.2)
    client = await another_client("VN/GOV/CA-HN/export", ["commune_police"])
    for person in dataset.sample.citizens[:3]:
        await _read(gateway, person, signer=client, procedure=RESIDENCE)
    await _logged(gateway)
    auditor = await sign_in.staff("auditor")
    async with gateway.client(auth=None) as http:
        capped = await http.get(
            "/audit/export", params={"client": client.client_id}, headers=auditor
        )
        whole = await http.get(
            "/audit/export",
            params={"client": client.client_id, "procedure": RESIDENCE, "type": "access"},
            headers=auditor,
        )
    lines = [json.loads(line) for line in capped.text.splitlines()]
    assert [line["kind"] for line in lines] == ["checkpoint", "record", "record", "end"]
    assert lines[-1]["truncated"] is True
    assert lines[-1]["records"] == 2
    assert "GATEWAY_AUDIT_MAX_EXPORT" in lines[-1]["message"]
    assert json.loads(whole.text.splitlines()[-1])["records"] == 2  # cap applies to every export
