"""Purpose-bound reads: what a client may read for a procedure, a case and its subjects."""

from __future__ import annotations

import datetime
import uuid

import pytest

from tests.rate_windows import inside_one_window

RESIDENCE = "1.004222"  # permanent residence: identity and household by law, phone by consent
GR = "application/graphql-response+json"


def _codes(body) -> dict[tuple, str]:
    return {tuple(e["path"]): e["extensions"]["code"] for e in body.get("errors", [])}


async def test_the_procedures_fields_are_served_with_provenance(
    gateway, dataset, population_url, stats
) -> None:
    person = dataset.sample.citizens[0]
    response = await gateway.post(
        f'{{ citizen(personalId: "{person}") {{ fullName permanentResidence {{ wardName }} '
        "household { members { relationToHead } } } }",
        procedure=RESIDENCE,
    )
    body = response.json()
    assert "errors" not in body, body
    citizen = body["data"]["citizen"]
    assert citizen["fullName"] == dataset.citizens[person]["ho_ten"]
    provenance = body["extensions"]["provenance"]
    assert set(provenance) == {
        "citizen.fullName",
        "citizen.permanentResidence",
        "citizen.household",
    }
    for entry in provenance.values():
        assert entry["source"] == "population"
        assert entry["basis"] == "law"
        assert "Law on Residence" in entry["legalBasis"]
        datetime.datetime.fromisoformat(entry["retrievedAt"])


async def test_a_field_outside_the_procedure_is_refused_and_never_fetched(
    gateway, dataset, population_url, stats
) -> None:
    person = dataset.sample.citizens[0]
    response = await gateway.post(
        f'{{ citizen(personalId: "{person}") {{ fullName religion ethnicity {{ name }} }} }}',
        procedure=RESIDENCE,
    )
    body = response.json()
    assert "data" in body, body
    assert body["data"]["citizen"]["fullName"]
    assert body["data"]["citizen"]["religion"] is None
    assert _codes(body) == {
        ("citizen", "religion"): "PURPOSE_NOT_ALLOWED",
        ("citizen", "ethnicity"): "PURPOSE_NOT_ALLOWED",
    }
    asked = (await stats.get(population_url))["fields_requested"]
    assert "ton_giao" not in asked
    assert "dan_toc" not in asked
    assert "ho_ten" in asked


async def test_everything_denied_means_no_source_call(
    gateway, dataset, population_url, stats
) -> None:
    person = dataset.sample.citizens[0]
    body = (
        await gateway.post(
            f'{{ citizen(personalId: "{person}") {{ religion phone }} }}', procedure=RESIDENCE
        )
    ).json()
    assert _codes(body) == {
        ("citizen", "religion"): "PURPOSE_NOT_ALLOWED",
        ("citizen", "phone"): "CONSENT_REQUIRED",
    }
    assert await stats.calls(population_url) == 0


async def test_a_subject_not_in_the_token_is_refused_without_a_source_call(
    gateway, dataset, population_url, stats
) -> None:
    named, other = dataset.sample.citizens[0], dataset.sample.citizens[1]
    body = (
        await gateway.post(
            f'{{ citizen(personalId: "{other}") {{ fullName }} }}',
            procedure=RESIDENCE,
            subjects=[named],
        )
    ).json()
    assert body["data"] == {"citizen": None}
    assert _codes(body) == {("citizen",): "SUBJECT_NOT_IN_CASE"}
    assert await stats.calls(population_url) == 0


async def test_related_persons_come_with_the_subject_but_not_their_records(
    gateway, dataset
) -> None:
    person = dataset.sample.citizens[0]
    household = dataset.citizens[person]["ho_gia_dinh"]
    member = next(
        m["cong_dan"]["so_dinh_danh"]
        for m in household["thanh_vien"]
        if m["cong_dan"]["so_dinh_danh"] != person
    )
    body = (
        await gateway.post(
            f'{{ citizen(personalId: "{person}") '
            "{ household { members { person { personalId fullName } } } } "
            f'member: citizen(personalId: "{member}") {{ fullName }} }}',
            procedure=RESIDENCE,
            subjects=[person],
        )
    ).json()
    members = body["data"]["citizen"]["household"]["members"]
    assert member in {m["person"]["personalId"] for m in members}
    assert body["data"]["member"] is None
    assert _codes(body) == {("member",): "SUBJECT_NOT_IN_CASE"}
    both = (
        await gateway.post(
            f'{{ member: citizen(personalId: "{member}") {{ fullName }} }}',
            procedure=RESIDENCE,
            subjects=[person, member],
        )
    ).json()
    assert both["data"]["member"]["fullName"]


async def test_a_client_whose_agency_does_not_run_the_procedure(
    gateway, another_client, dataset, population_url, stats
) -> None:
    tax = await another_client("VN/GOV/TCT/thue", ["tax_authority"])
    person = dataset.sample.citizens[0]
    body = (
        await gateway.post(
            f'{{ citizen(personalId: "{person}") {{ fullName }} }}',
            signer=tax,
            procedure=RESIDENCE,
        )
    ).json()
    assert _codes(body) == {("citizen",): "CLIENT_NOT_AUTHORISED"}
    assert await stats.calls(population_url) == 0


async def test_precedence_of_refusals(gateway, another_client, dataset) -> None:
    # The client may not run the procedure AND the subject is not named AND the field is
    # outside it: the first in the order of precedence is the one reported.
    tax = await another_client("VN/GOV/TCT/thue", ["tax_authority"])
    named, other = dataset.sample.citizens[:2]
    body = (
        await gateway.post(
            f'{{ citizen(personalId: "{other}") {{ religion }} }}',
            signer=tax,
            procedure=RESIDENCE,
            subjects=[named],
        )
    ).json()
    assert _codes(body) == {("citizen",): "CLIENT_NOT_AUTHORISED"}
    body = (
        await gateway.post(
            f'{{ citizen(personalId: "{other}") {{ religion }} }}',
            procedure=RESIDENCE,
            subjects=[named],
        )
    ).json()
    assert _codes(body) == {("citizen",): "SUBJECT_NOT_IN_CASE"}


async def test_a_suspended_client_is_refused_at_once(gateway, dataset, sign_in) -> None:
    person = dataset.sample.citizens[0]
    query = f'{{ citizen(personalId: "{person}") {{ fullName }} }}'
    assert (await gateway.post(query, procedure=RESIDENCE)).status_code == 200
    operator = await sign_in.staff("operator")
    async with gateway.client(auth=None) as http:
        suspended = await http.post(
            f"/admin/clients/{gateway.signer.client_id}/suspend", headers=operator
        )
    assert suspended.json() == {"id": gateway.signer.client_id, "status": "suspended"}
    refused = await gateway.post(query, procedure=RESIDENCE)
    assert refused.status_code == 401
    assert refused.json()["code"] == "UNAUTHENTICATED"
    assert "suspended" in refused.json()["message"]
    # The admin event and the refusal are in the log, and it verifies.
    report = await gateway.audit()
    assert report.ok, report.problem


async def test_staff_routes_need_their_role(gateway, sign_in, dataset) -> None:
    async with gateway.client(auth=None) as http:
        assert (await http.get("/admin/clients")).status_code == 401
        auditor = await http.get("/admin/clients", headers=await sign_in.staff("auditor"))
        assert auditor.status_code == 403
        assert auditor.json()["code"] == "FORBIDDEN"
        citizen = await sign_in.citizen(dataset.sample.citizens[0])
        assert (await http.get("/admin/clients", headers=citizen)).status_code == 403
        listed = await http.get("/admin/clients", headers=await sign_in.staff("operator"))
    assert listed.status_code == 200
    assert gateway.signer.client_id in {c["id"] for c in listed.json()["clients"]}


@pytest.mark.parametrize("counters", ["in process", "in redis"])
async def test_rate_limit_per_officer(gateway_factory, dataset, redis_url, counters) -> None:
    # With Redis, the token's spend and the limits are counted in one round trip.
    redis = {"redis_url": redis_url} if counters == "in redis" else {}
    gateway = gateway_factory(rate_limit_officer=3, **redis)
    await inside_one_window()  # the five requests below are counted in one window
    person = dataset.sample.citizens[0]
    query = f'{{ citizen(personalId: "{person}") {{ fullName }} }}'
    # Officers of their own: Redis keeps counts across gateways for the minute.
    busy, calm = f"busy-{uuid.uuid4().hex}", f"calm-{uuid.uuid4().hex}"
    statuses = [
        (await gateway.post(query, procedure=RESIDENCE, officer=busy)).status_code for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]
    other = await gateway.post(query, procedure=RESIDENCE, officer=calm)
    assert other.status_code == 200
    limited = await gateway.post(query, procedure=RESIDENCE, officer=busy)
    assert limited.json()["code"] == "RATE_LIMITED"
    assert int(limited.headers["retry-after"]) > 0
