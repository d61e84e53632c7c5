"""The gateway over real HTTP, against the sandbox agencies, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

DEMO_QUERY = """
query Demo($id: String!) {
  citizen(personalId: $id) {
    personalId fullName birthDate
    permanentResidence { provinceName wardName }
    household { members { person { fullName } relationToHead } }
  }
}"""


def _sample(dataset: Any) -> str:
    return dataset.sample.citizens[0]


async def _source_record(population_url: str, personal_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{population_url}/v1/cong-dan/{personal_id}")
    response.raise_for_status()
    record: dict[str, Any] = response.json()
    return record


async def test_demo_query_matches_the_sandbox_record(gateway, dataset, population_url) -> None:
    personal_id = _sample(dataset)
    body = await gateway.query(DEMO_QUERY, id=personal_id)
    assert "errors" not in body, body
    citizen = body["data"]["citizen"]
    source = await _source_record(population_url, personal_id)
    assert citizen["personalId"] == personal_id
    assert citizen["fullName"] == source["ho_ten"]
    assert citizen["birthDate"] == source["ngay_sinh"]
    assert citizen["permanentResidence"] == {
        "provinceName": source["noi_thuong_tru"]["ten_tinh"],
        "wardName": source["noi_thuong_tru"]["ten_xa"],
    }
    members = citizen["household"]["members"]
    assert [(m["person"]["fullName"], m["relationToHead"]) for m in members] == [
        (m["cong_dan"]["ho_ten"], m["quan_he_voi_chu_ho"])
        for m in source["ho_gia_dinh"]["thanh_vien"]
    ]
    assert len(members) >= 3


async def test_twenty_citizens_cost_one_call_to_the_population_source(
    gateway, dataset, population_url, business_url, stats
) -> None:
    ids = list(dataset.citizens)[:20]
    body = await gateway.query(
        "query($ids: [String!]!) { citizens(personalIds: $ids) { personalId fullName gender } }",
        ids=ids,
    )
    assert "errors" not in body, body
    assert [c["personalId"] for c in body["data"]["citizens"]] == ids
    assert all(
        c["fullName"] and c["gender"] in {"MALE", "FEMALE"} for c in body["data"]["citizens"]
    )
    calls = (await stats.get(population_url))["calls"]
    assert {route: n for route, n in calls.items() if n} == {"cong_dan.batch": 1}
    assert await stats.calls(business_url) == 0


async def test_only_the_fields_asked_for_are_requested_from_the_source(
    gateway, dataset, population_url, stats
) -> None:
    await gateway.query(
        "query($id: String!) { citizen(personalId: $id) { fullName } }", id=_sample(dataset)
    )
    asked = (await stats.get(population_url))["fields_requested"]
    assert set(asked) == {"ho_ten", "so_dinh_danh"}


async def test_citizen_and_business_in_one_query_call_each_source_once(
    gateway, dataset, population_url, business_url, stats
) -> None:
    pair = dataset.sample.businesses[0]
    body = await gateway.query(
        """query($id: String!, $code: String!) {
             citizen(personalId: $id) { fullName }
             business(enterpriseCode: $code) {
               enterpriseCode name status legalRepresentative { personalId fullName }
             }
           }""",
        id=pair.so_dinh_danh_nguoi_dai_dien,
        code=pair.ma_so_doanh_nghiep,
    )
    assert "errors" not in body, body
    business = body["data"]["business"]
    assert business["enterpriseCode"] == pair.ma_so_doanh_nghiep
    assert business["legalRepresentative"]["personalId"] == pair.so_dinh_danh_nguoi_dai_dien
    assert business["legalRepresentative"]["fullName"] == body["data"]["citizen"]["fullName"]
    assert await stats.calls(population_url) == 1
    assert await stats.calls(business_url) == 1


async def test_malformed_ids_are_refused_without_a_source_call(
    gateway, population_url, business_url, stats
) -> None:
    full_width = "".join(chr(0xFF10 + int(d)) for d in "079203001234")
    body = await gateway.query(
        """query($wide: String!) {
             a: citizen(personalId: "12345") { fullName }
             b: citizen(personalId: $wide) { fullName }
             c: business(enterpriseCode: "0100109107") { name }
             d: citizens(personalIds: ["bad"]) { fullName } }""",
        wide=full_width,
    )
    codes = {tuple(e["path"]): e["extensions"]["code"] for e in body["errors"]}
    assert codes == {
        ("a",): "INVALID_IDENTIFIER",
        ("b",): "INVALID_IDENTIFIER",
        ("c",): "INVALID_IDENTIFIER",
        ("d", 0): "INVALID_IDENTIFIER",
    }
    assert body["data"] == {"a": None, "b": None, "c": None, "d": [None]}
    assert await stats.calls(population_url) == 0
    assert await stats.calls(business_url) == 0


async def test_unknown_citizen_is_not_found_and_others_still_resolve(gateway, dataset) -> None:
    known = _sample(dataset)
    body = await gateway.query(
        "query($ids: [String!]!) { citizens(personalIds: $ids) { personalId fullName } }",
        ids=[known, "001999999999"],
    )
    assert body["data"]["citizens"][0]["personalId"] == known
    assert body["data"]["citizens"][1] is None
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [
        (["citizens", 1], "NOT_FOUND")
    ]


async def test_too_many_ids_is_an_invalid_argument(gateway, dataset) -> None:
    ids = list(dataset.citizens)[:51]
    body = await gateway.query(
        "query($ids: [String!]!) { citizens(personalIds: $ids) { fullName } }", ids=ids
    )
    assert body["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT"
    assert body["errors"][0]["extensions"]["max"] == 50


async def test_every_kind_is_read_from_the_sandbox_agencies(gateway, dataset) -> None:
    body = await gateway.query(
        """query($id: String!) {
             insurance(personalId: $id) { socialInsuranceNumber }
             landParcels(holder: $id) { parcelId }
             documents(holder: $id) { title signature { status } }
             citizen(personalId: $id) { fullName }
           }""",
        id=_sample(dataset),
    )
    assert "errors" not in body, body
    assert body["data"]["citizen"]["fullName"]
    # The civil-status registry (sandbox/manifests/civil.yaml): every citizen's birth
    # certificate, its signature checked.
    assert {"title": "Giấy khai sinh", "signature": {"status": "VERIFIED"}} in body["data"][
        "documents"
    ]
    # The insurance agency (sandbox/manifests/insurance.yaml), read over X-Road.
    assert body["data"]["insurance"]["socialInsuranceNumber"]
    assert body["data"]["landParcels"]  # the land registry (sandbox/manifests/land.yaml)


async def test_fragments_aliases_and_skip_select_the_right_fields(
    gateway, dataset, population_url, stats
) -> None:
    body = await gateway.query(
        """query($id: String!, $no: Boolean!) {
             person: citizen(personalId: $id) { ...Names born: birthDate email @include(if: $no) }
           }
           fragment Names on Citizen { name: fullName ... on Citizen { otherNames } }""",
        id=_sample(dataset),
        no=False,
    )
    assert "errors" not in body, body
    assert set(body["data"]["person"]) == {"name", "otherNames", "born"}
    asked = set((await stats.get(population_url))["fields_requested"])
    assert asked == {"so_dinh_danh", "ho_ten", "ten_goi_khac", "ngay_sinh"}


@pytest.mark.parametrize("with_household", [True, False])
async def test_household_by_id(gateway, dataset, with_household: bool) -> None:
    household_id = dataset.sample.households[0]
    query = (
        "query($id: String!) { household(householdId: $id) { householdId head { fullName } %s } }"
    )
    body = await gateway.query(
        query % ("members { relationToHead }" if with_household else ""), id=household_id
    )
    assert "errors" not in body, body
    assert body["data"]["household"]["householdId"] == household_id
    assert body["data"]["household"]["head"]["fullName"]


async def test_insurance_is_read_over_xroad_with_its_contribution_periods(
    gateway, dataset, insurance_url
) -> None:
    from sandbox.insurance import SERVICE_PATH

    personal_id = _sample(dataset)
    body = await gateway.query(
        """query($id: String!) {
             insurance(personalId: $id) {
               socialInsuranceNumber
               healthInsurance { cardCode validFrom validUntil registeredFacility }
               contributionPeriods { employer { taxCode name } from to salaryBasis }
             }
           }""",
        id=personal_id,
    )
    assert "errors" not in body, body
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"{insurance_url}{SERVICE_PATH}/cong-dan/{personal_id}",
            headers={"X-Road-Client": "VN/GOV/TEST/CHECK", "X-Road-Id": "check"},
        )
    source = response.json()
    insurance = body["data"]["insurance"]
    assert insurance["socialInsuranceNumber"] == source["so_so_bhxh"]
    card = source["the_bhyt"]
    assert insurance["healthInsurance"] == {
        "cardCode": card["ma_the"],
        "validFrom": card["gia_tri_tu"],
        "validUntil": card["gia_tri_den"],
        "registeredFacility": card["noi_dang_ky_kcb_ban_dau"]["ten"],
    }
    assert insurance["contributionPeriods"] == [
        {
            "employer": {"taxCode": p["don_vi"]["ma_so_thue"], "name": p["don_vi"]["ten"]},
            "from": p["tu_thang"],
            "to": p["den_thang"],
            "salaryBasis": p["muc_luong_dong"],
        }
        for p in source["qua_trinh_dong"]
    ]
