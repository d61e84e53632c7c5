"""Prefill: the procedure's form filled from the databases, and the papers avoided."""

from __future__ import annotations

import pytest

from sandbox import Dataset, SandboxSettings, land

RESIDENCE = "1.004222"
PREFILL = """query($p: String!, $a: String!) {
  prefill(procedure: $p, applicant: $a) {
    procedure { code codeStatus name { vi en } onlineLevel }
    fields { name label { vi en } path value error replacesPapers { en }
             provenance { source basis legalBasis consentId retrievedAt } }
    papersAvoided { paper { vi en } fields reasons { path code } }
    papersStillNeeded { paper { en } fields reasons { path code } }
  }
}"""


DWELLING = "Proof of lawful dwelling (land-use certificate)"


@pytest.fixture(scope="module")
def land_url(tmp_path_factory: pytest.TempPathFactory, population_data: Dataset) -> str:
    """The land registry of the test population, in a SQLite file of its own."""
    path = tmp_path_factory.mktemp("land") / "land.db"
    settings = SandboxSettings(citizens=len(population_data.citizens))
    land.write_sqlite(path, land.build(settings, population_data))
    return f"sqlite:///{path}"


@pytest.fixture
def gateway(gateway_factory, land_url: str):
    """A gateway that reads the land registry (`sandbox/manifests/land.yaml`) too."""
    return gateway_factory(connector_urls={"land": land_url})


async def _prefill(gateway, applicant: str, procedure: str = RESIDENCE, **purpose) -> dict:
    response = await gateway.post(
        PREFILL, {"p": procedure, "a": applicant}, procedure=RESIDENCE, **purpose
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_form_is_filled_and_papers_are_avoided(gateway, dataset) -> None:
    person = dataset.sample.citizens[0]
    record = dataset.citizens[person]
    body = await _prefill(gateway, person)
    form = body["data"]["prefill"]
    assert form["procedure"]["code"] == RESIDENCE
    assert form["procedure"]["name"]["vi"] == "Đăng ký thường trú"
    fields = {f["name"]: f for f in form["fields"]}
    assert fields["full_name"]["value"] == record["ho_ten"]
    assert fields["birth_date"]["value"] == record["ngay_sinh"]
    assert fields["household_head_name"]["value"] == record["ho_gia_dinh"]["chu_ho"]["ho_ten"]
    assert fields["full_name"]["provenance"]["source"] == "population"
    assert fields["full_name"]["provenance"]["basis"] == "law"
    assert {p["en"] for p in fields["full_name"]["replacesPapers"]} == {"Identity card"}
    # The phone is read only with the citizen's consent.
    assert fields["phone"]["value"] is None
    assert fields["phone"]["error"] == "CONSENT_REQUIRED"
    avoided = {p["paper"]["en"] for p in form["papersAvoided"]}
    # Residence is read from the database: the procedure asks for no residence paper
    # (the household book was abolished in 2023), so it is not counted as avoided. The
    # land registry shows the parcel the applicant's household holds at its address,
    # which replaces the copy of the land-use certificate.
    assert avoided == {"Identity card", DWELLING}, form["papersStillNeeded"]
    assert form["papersStillNeeded"] == []
    address = record["noi_thuong_tru"]
    # A value per parcel the applicant holds: the home, maybe a field in the same ward.
    wards, details = fields["dwelling_ward"]["value"], fields["dwelling_detail"]["value"]
    assert set(wards) == {address["ten_xa"]}
    assert address["chi_tiet"] in details
    assert fields["dwelling_ward"]["provenance"]["source"] == "land"
    assert {p["en"] for p in fields["dwelling_detail"]["replacesPapers"]} == {DWELLING}
    provenance = body["extensions"]["provenance"]
    assert "prefill.fields.0.value" in provenance, sorted(provenance)
    assert provenance["prefill.fields.0.value"]["source"] == "population"


async def test_an_applicant_not_in_the_case_gets_nothing(
    gateway, dataset, population_url, stats
) -> None:
    person, other = dataset.sample.citizens[:2]
    form = (await _prefill(gateway, other, subjects=[person]))["data"]["prefill"]
    assert {f["error"] for f in form["fields"]} >= {"SUBJECT_NOT_IN_CASE"}
    assert all(f["value"] is None for f in form["fields"])
    assert form["papersAvoided"] == []
    assert await stats.calls(population_url) == 0


async def test_only_the_tokens_procedure_is_prefilled(gateway, dataset) -> None:
    person = dataset.sample.citizens[0]
    body = await _prefill(gateway, person, procedure="1.000894")
    assert body["data"]["prefill"] is None
    assert body["errors"][0]["extensions"]["code"] == "PURPOSE_NOT_ALLOWED"
    unknown = await _prefill(gateway, person, procedure="9.999999")
    assert unknown["errors"][0]["extensions"]["code"] == "UNKNOWN_PROCEDURE"


async def test_a_malformed_applicant(gateway) -> None:
    body = await _prefill(gateway, "12345")
    assert body["errors"][0]["extensions"]["code"] == "INVALID_IDENTIFIER"
