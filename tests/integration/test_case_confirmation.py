"""Cases confirmed by the dossier registry: `CASE_NOT_CONFIRMED`, fail closed and open.

The sandbox's dossier registry (`sandbox.dossiers`, read through `dossiers.yaml`) runs
over real HTTP; the tests receive the dossiers they need at it, as a one-stop desk
would, and change their statuses there. The test clients are `VN/GOV/TEST/...`, of the
organisation `VN/GOV/TEST`.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa

from gateway.storage import create_engine

TRANSFER = "1.013831"  # land transfer registration: `case_confirmation: required`
RESIDENCE = "1.004222"  # permanent residence: `optional`
MARRIAGE = "1.000894"  # marriage registration: `none`
ORG = "VN/GOV/TEST"
HEX64 = re.compile(r"[0-9a-f]{64}")


async def envelope_of(gateway: Any, response: httpx.Response) -> dict[str, Any]:
    """The envelope of the access record of `response` (by its request id)."""
    request_id = response.headers["x-request-id"]
    engine = create_engine(gateway.settings.database_url.get_secret_value())
    try:
        for _ in range(50):  # a refusal's record is written before its answer, or just after
            async with engine.connect() as conn:
                row = (
                    await conn.execute(
                        sa.text(
                            "SELECT envelope, dossier_status FROM events WHERE request_id = :r"
                        ),
                        {"r": request_id},
                    )
                ).first()
            if row is not None:
                envelope = (
                    row.envelope
                    if isinstance(row.envelope, dict)
                    else __import__("json").loads(row.envelope)
                )
                assert row.dossier_status == (envelope.get("caseConfirmation") or {}).get(
                    "dossierStatus"
                )
                return envelope
            await asyncio.sleep(0.1)
    finally:
        await engine.dispose()
    raise AssertionError("no record of the request")


def _query(*people: str) -> str:
    return (
        "{ "
        + " ".join(f'p{i}: citizen(personalId: "{p}") {{ fullName }}' for i, p in enumerate(people))
        + " }"
    )


def _codes(body: dict[str, Any]) -> dict[tuple[Any, ...], str]:
    return {tuple(e["path"]): e["extensions"]["code"] for e in body.get("errors", [])}


async def test_a_confirmed_dossier_serves_its_persons_and_withholds_others(
    gateway, dataset, dossier_desk
) -> None:
    applicant, spouse, outsider = dataset.sample.citizens[:3]
    code = await dossier_desk.receive([applicant, spouse])
    response = await gateway.post(
        _query(applicant, spouse, outsider),
        procedure=TRANSFER,
        case=code,
        subjects=[applicant, spouse, outsider],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"]["p0"]["fullName"] == dataset.citizens[applicant]["ho_ten"]
    assert body["data"]["p1"]["fullName"] == dataset.citizens[spouse]["ho_ten"]
    # Named by the client, not by the dossier: withheld as a subject outside the case.
    assert body["data"]["p2"] is None
    assert _codes(body) == {("p2",): "SUBJECT_NOT_IN_CASE"}
    case = (await envelope_of(gateway, response))["caseConfirmation"]
    assert case["requirement"] == "required"
    assert case["confirmed"] is True
    assert case["registry"] == "dossiers"
    assert case["dossierStatus"] == "IN_PROGRESS"
    assert HEX64.fullmatch(case["answerHmac"])
    assert "check" not in case


@pytest.mark.parametrize(
    ("dossier", "check"),
    [
        ({"procedure": RESIDENCE}, "OTHER_PROCEDURE"),
        ({"organisation": "VN/GOV/UBND-HN"}, "OTHER_ORGANISATION"),
        ({"status": "DA_HUY"}, "DOSSIER_CLOSED"),
        ({"status": "DA_TRA_KET_QUA"}, "DOSSIER_CLOSED"),
        ({"status": "TRA_LAI"}, "DOSSIER_CLOSED"),
        (None, "NO_SUCH_DOSSIER"),
    ],
)
async def test_a_dossier_that_fails_a_check_refuses_the_request(
    gateway, dataset, dossier_desk, dossier, check
) -> None:
    applicant, spouse = dataset.sample.citizens[:2]
    code = (
        "000.00.02.H01-251001-9999"
        if dossier is None
        else await dossier_desk.receive([applicant, spouse], **dossier)
    )
    response = await gateway.post(
        _query(applicant), procedure=TRANSFER, case=code, subjects=[applicant]
    )
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["code"] == "CASE_NOT_CONFIRMED"
    assert body["detail"] == {"check": check}
    assert "data" not in body
    # The refusal names the check, never the dossier's persons.
    assert spouse not in response.text
    envelope = await envelope_of(gateway, response)
    assert envelope["errors"] == ["CASE_NOT_CONFIRMED"]
    assert envelope["caseConfirmation"]["confirmed"] is False
    assert envelope["caseConfirmation"]["check"] == check
    if dossier is not None:
        assert HEX64.fullmatch(envelope["caseConfirmation"]["answerHmac"])


async def test_a_dossier_assigned_to_the_clients_organisation_confirms(
    gateway, dataset, dossier_desk
) -> None:
    # Received at another organisation's one-stop desk, assigned to ours.
    applicant = dataset.sample.citizens[0]
    code = await dossier_desk.receive(
        [applicant], organisation="VN/GOV/UBND-HCM", handlers=["VN/GOV/TEST"]
    )
    response = await gateway.post(
        _query(applicant), procedure=TRANSFER, case=code, subjects=[applicant]
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["p0"]["fullName"]


async def test_a_required_confirmation_fails_closed_when_no_registry_answers(
    gateway_factory, dataset, dossier_desk
) -> None:
    applicant = dataset.sample.citizens[0]
    code = await dossier_desk.receive([applicant])
    # The registry's address answers nothing: refused connections, the breaker, 503.
    down = gateway_factory(connector_urls={"dossiers": "http://127.0.0.1:9"})
    response = await down.post(
        _query(applicant), procedure=TRANSFER, case=code, subjects=[applicant]
    )
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"]
    assert response.json()["code"] == "CASE_REGISTRY_UNAVAILABLE"
    assert "data" not in response.json()
    envelope = await envelope_of(down, response)
    assert envelope["caseConfirmation"] == {
        "requirement": "required",
        "confirmed": False,
        "check": "REGISTRY_UNAVAILABLE",
        "registry": "dossiers",
    }


async def test_an_optional_confirmation_proceeds_when_no_registry_answers(
    gateway_factory, dataset
) -> None:
    applicant = dataset.sample.citizens[0]
    down = gateway_factory(connector_urls={"dossiers": "http://127.0.0.1:9"})
    response = await down.post(
        _query(applicant), procedure=RESIDENCE, case="HS-2026-0042", subjects=[applicant]
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["p0"]["fullName"]
    case = (await envelope_of(down, response))["caseConfirmation"]
    assert case == {
        "requirement": "optional",
        "confirmed": False,
        "check": "REGISTRY_UNAVAILABLE",
        "registry": "dossiers",
    }


async def test_an_optional_confirmation_limits_a_known_dossier_to_its_persons(
    gateway, dataset, dossier_desk, sign_in
) -> None:
    applicant, outsider = dataset.sample.citizens[:2]
    code = await dossier_desk.receive([applicant], procedure=RESIDENCE)
    response = await gateway.post(
        _query(applicant, outsider),
        procedure=RESIDENCE,
        case=code,
        subjects=[applicant, outsider],
    )
    body = response.json()
    assert body["data"]["p0"]["fullName"]
    assert _codes(body) == {("p1",): "SUBJECT_NOT_IN_CASE"}
    # The dossier is shown to the persons it names only.
    async with gateway.client(auth=None) as http:
        mine = (await http.get("/me/accesses", headers=await sign_in.citizen(applicant))).json()[
            "accesses"
        ]
        theirs = (await http.get("/me/accesses", headers=await sign_in.citizen(outsider))).json()[
            "accesses"
        ]
    [seen] = [a for a in mine if a["case"] == code]
    assert seen["dossier"]["confirmed"] is True
    [told] = [a for a in theirs if a["case"] == code]
    # Named by the client, withheld, told of the read: not shown another person's case.
    assert "dossier" not in told
    # An unknown case of an optional procedure is read as stated, and recorded so.
    response = await gateway.post(
        _query(outsider), procedure=RESIDENCE, case="HS-TAI-QUAY-17", subjects=[outsider]
    )
    assert response.json()["data"]["p0"]["fullName"]
    case = (await envelope_of(gateway, response))["caseConfirmation"]
    assert case["confirmed"] is False
    assert case["check"] == "NO_SUCH_DOSSIER"


async def test_a_procedure_without_confirmation_asks_no_registry(
    gateway, dataset, dossiers_url
) -> None:
    applicant = dataset.sample.citizens[0]
    async with httpx.AsyncClient() as http:
        before = (await http.get(f"{dossiers_url}/_sandbox/stats")).json()
    response = await gateway.post(
        _query(applicant), procedure=MARRIAGE, case="anything", subjects=[applicant]
    )
    assert response.status_code == 200, response.text
    async with httpx.AsyncClient() as http:
        after = (await http.get(f"{dossiers_url}/_sandbox/stats")).json()
    assert after == before
    assert "caseConfirmation" not in await envelope_of(gateway, response)


async def test_a_confirmation_is_kept_until_its_time_runs_out(
    gateway_factory, dataset, dossier_desk, dossiers_url
) -> None:
    applicant = dataset.sample.citizens[0]
    code = await dossier_desk.receive([applicant])
    # Kept three seconds: room for the registry's change between two asks on a loaded
    # machine (with one second, the kept dossier sometimes ran out before the third).
    gateway = gateway_factory(case_confirmation_cache_seconds=3.0)

    async def ask() -> httpx.Response:
        return await gateway.post(
            _query(applicant), procedure=TRANSFER, case=code, subjects=[applicant]
        )

    async def lookups() -> int:
        async with httpx.AsyncClient() as http:
            stats = (await http.get(f"{dossiers_url}/_sandbox/stats")).json()
        return int(stats["calls"]["ho_so.get"])

    first = await lookups()
    assert (await ask()).status_code == 200
    assert (await ask()).status_code == 200
    assert await lookups() == first + 1  # the second was confirmed by the kept dossier
    await dossier_desk.set_status(code, "DA_HUY")
    # Cancelled at the registry, still kept here: at most the cache's time late.
    assert (await ask()).status_code == 200
    await asyncio.sleep(3.1)
    refused = await ask()
    assert refused.status_code == 403, refused.text
    assert refused.json()["detail"] == {"check": "DOSSIER_CLOSED"}
    assert await lookups() == first + 2


async def test_reads_on_a_closed_dossier_are_shown_to_the_citizen_and_found_by_auditors(
    gateway, dataset, dossier_desk, sign_in
) -> None:
    applicant = dataset.sample.citizens[0]
    # Permanent residence confirms where it can: a cancelled dossier does not stop the
    # read, and is what an auditor looks for.
    code = await dossier_desk.receive([applicant], procedure=RESIDENCE, status="DA_HUY")
    response = await gateway.post(
        _query(applicant), procedure=RESIDENCE, case=code, subjects=[applicant]
    )
    assert response.json()["data"]["p0"]["fullName"]
    async with gateway.client(auth=None) as http:
        accesses = (
            await http.get("/me/accesses", headers=await sign_in.citizen(applicant))
        ).json()["accesses"]
        [mine] = [a for a in accesses if a["case"] == code]
        dossier = mine["dossier"]
        assert dossier["code"] == code
        assert dossier["confirmed"] is False
        assert dossier["check"] == "DOSSIER_CLOSED"
        assert dossier["status"] == "CANCELLED"
        assert dossier["procedure"] == RESIDENCE
        assert dossier["receivedBy"] == ORG
        assert dossier["receivedOn"] <= dossier["dueOn"]
        assert "persons" not in dossier  # the dossier's other persons are not hers to see

        auditor = await sign_in.staff("auditor", org="VN/GOV/TTCP")

        async def search(**params: str) -> list[dict[str, Any]]:
            answer = await http.get(
                "/audit/events", params={"case": code, **params}, headers=auditor
            )
            assert answer.status_code == 200, answer.text
            return list(answer.json()["events"])

        [found] = await search(dossierStatus="CANCELLED")
        assert found["envelope"]["caseConfirmation"]["check"] == "DOSSIER_CLOSED"
        assert found["envelope"]["fieldsServed"] >= 1  # served, closed or not
        assert await search(dossierStatus="IN_PROGRESS") == []
        refused = await http.get("/audit/events", params={"dossierStatus": "OPEN"}, headers=auditor)
        assert refused.status_code == 400
        assert refused.json()["code"] == "INVALID_ARGUMENT"
        assert refused.json()["detail"]["argument"] == "dossierStatus"


async def test_a_registry_that_hangs_costs_half_the_time_left_at_most(
    gateway_factory, dataset, dossier_desk
) -> None:
    done = asyncio.Event()

    async def never(_reader: Any, writer: Any) -> None:
        await done.wait()  # answers nothing until the test ends
        writer.close()

    server = await asyncio.start_server(never, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        hung = gateway_factory(
            connector_urls={"dossiers": f"http://127.0.0.1:{port}"}, request_deadline=3.0
        )
        applicant = dataset.sample.citizens[0]
        started = asyncio.get_running_loop().time()
        # Optional: read as stated, within the request's deadline, recorded unconfirmed.
        response = await hung.post(
            _query(applicant), procedure=RESIDENCE, case="HS-TREO-1", subjects=[applicant]
        )
        assert response.status_code == 200, response.text
        assert response.json()["data"]["p0"]["fullName"]
        assert asyncio.get_running_loop().time() - started < 3.0
        case = (await envelope_of(hung, response))["caseConfirmation"]
        assert case["check"] == "REGISTRY_UNAVAILABLE"
        # Required: fails closed with the registry's code, not the deadline's; the same
        # token may come once more, and is refused the same way, not as a replay.
        code = await dossier_desk.receive([applicant])
        body = orjson.dumps({"query": _query(applicant)})
        token = hung.signer.sign(body, procedure=TRANSFER, case=code, subjects=[applicant])
        async with hung.client(auth=None) as http:
            for _ in range(2):
                refused = await http.post(
                    "/graphql",
                    content=body,
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json",
                    },
                )
                assert refused.status_code == 503, refused.text
                assert refused.json()["code"] == "CASE_REGISTRY_UNAVAILABLE"
            third = await http.post(
                "/graphql",
                content=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            assert third.json()["code"] == "TOKEN_REPLAYED"  # once more, not twice
    finally:
        done.set()
        server.close()
        await server.wait_closed()
