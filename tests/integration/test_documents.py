"""Digitized results through the gateway: signed by their registries, checked, withheld
when changed, and read by the land-use right transfer prefill.

The civil-status registry here is one of this module's own (its documents are tampered
with); the business registry and the land registry are the shared ones.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from sandbox import Dataset, SandboxSettings, civil

DOCUMENTS = """query($h: String!) {
  documents(holder: $h) {
    documentId kind title issuer issuedOn sha256 procedureCode
    signature { status keyId algorithm }
  }
}"""
TRANSFER = "1.013831"
PREFILL = """query($a: String!) {
  prefill(procedure: "1.013831", applicant: $a) {
    fields { name value error provenance { source version } }
    papersAvoided { paper { en } }
    papersStillNeeded { paper { en } reasons { path code } }
  }
}"""
MARRIAGE = "Marriage certificate (certified copy)"


class Civil:
    """This module's civil-status registry: its URL and its documents."""

    def __init__(self, url: str, app: Any) -> None:
        self.url = url
        self.store = app.state.documents
        self.tampered: set[str] = set()

    def untouched(self, people: list[str]) -> str:
        """A person none of whose documents was tampered with yet (each test run its own)."""
        person = next(p for p in people[:-1] if p not in self.tampered)
        self.tampered.add(person)
        return person

    def of(self, person: str, kind: str) -> list[dict[str, Any]]:
        return [
            record
            for number in self.store.numbers()
            if (record := self.store.get(number))["loai"] == kind
            and person in record["nguoiDuocCap"]
        ]

    async def tamper(self, number: str, what: str) -> None:
        async with httpx.AsyncClient(base_url=self.url) as client:
            response = await client.post(f"/admin/documents/{number}/tamper", json={"what": what})
            response.raise_for_status()


@pytest.fixture(scope="module")
def civil_registry(population_data: Dataset, start_server: Callable[[Any], Any]) -> Civil:
    app = civil.create_app(SandboxSettings(citizens=len(population_data.citizens)), population_data)
    return Civil(start_server(app).url, app)


@pytest.fixture(scope="module")
def married_landholders(civil_registry: Civil, land_url: str) -> list[str]:
    """Citizens who hold land and have a marriage certificate, in a stable order."""
    path = land_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        holders = {row[0] for row in db.execute("SELECT ma_dinh_danh FROM chu_su_dung")}
    married = {
        person
        for number in civil_registry.store.numbers()
        if (record := civil_registry.store.get(number))["loai"] == "KET_HON"
        for person in record["nguoiDuocCap"]
    }
    found = sorted(holders & married)
    assert len(found) >= 10, "the test population has married landholders"
    return found


@pytest.fixture
def gateway(gateway_factory, civil_registry: Civil):
    return gateway_factory(connector_urls={"civil": civil_registry.url})


async def test_a_persons_documents_come_from_both_registries_verified(
    gateway, civil_registry: Civil, married_landholders: list[str], dataset
) -> None:
    person = married_landholders[0]
    body = await gateway.query(DOCUMENTS, h=person)
    assert "errors" not in body, body["errors"]
    documents = body["data"]["documents"]
    kinds = {d["kind"] for d in documents}
    assert {"BIRTH_CERTIFICATE", "MARRIAGE_CERTIFICATE"} <= kinds
    (marriage,) = [d for d in documents if d["kind"] == "MARRIAGE_CERTIFICATE"]
    (issued,) = civil_registry.of(person, "KET_HON")
    assert marriage["documentId"] == issued["soGiayTo"]
    assert marriage["sha256"] == issued["sha256"]
    assert marriage["signature"]["status"] == "VERIFIED"
    assert marriage["signature"]["algorithm"] == "EdDSA"
    assert {d["signature"]["status"] for d in documents} == {"VERIFIED"}
    provenance = body["extensions"]["provenance"]
    index = documents.index(marriage)
    assert provenance[f"documents.{index}.documentId"]["source"] == "civil"
    # An enterprise's registration certificate comes from the business registry.
    enterprise = dataset.sample.businesses[0].ma_so_doanh_nghiep
    body = await gateway.query(DOCUMENTS, h=enterprise)
    (certificate,) = body["data"]["documents"]
    assert certificate["kind"] == "ENTERPRISE_REGISTRATION_CERTIFICATE"
    assert certificate["signature"]["status"] == "VERIFIED"
    assert body["extensions"]["provenance"]["documents.0.documentId"]["source"] == "business"


@pytest.mark.parametrize("what", ["file", "metadata", "signature"])
async def test_a_document_changed_by_one_byte_is_withheld_with_a_code(
    gateway, civil_registry: Civil, married_landholders: list[str], what: str, dossier_desk
) -> None:
    person = civil_registry.untouched(married_landholders[1:])
    (issued,) = civil_registry.of(person, "KET_HON")
    await civil_registry.tamper(issued["soGiayTo"], what)
    body = await gateway.query(DOCUMENTS, h=person)
    documents = body["data"]["documents"]
    withheld = [d for d in documents if d["signature"]["status"] != "VERIFIED"]
    assert len(withheld) == 1
    assert withheld[0]["signature"]["status"] == "INVALID"
    assert withheld[0]["documentId"] is None
    assert withheld[0]["sha256"] is None
    position = documents.index(withheld[0])
    codes = {
        tuple(e["path"]): e["extensions"]["code"]
        for e in body["errors"]
        if e["path"][:2] == ["documents", position]
    }
    assert codes[("documents", position, "documentId")] == "DOCUMENT_SIGNATURE_INVALID"
    assert set(codes.values()) == {"DOCUMENT_SIGNATURE_INVALID"}
    # The prefill does not count the paper as avoided on a document that was changed.
    case = await dossier_desk.receive([person])  # a transfer's case is a confirmed dossier
    form = (
        await gateway.post(PREFILL, {"a": person}, procedure=TRANSFER, case=case, subjects=[person])
    ).json()
    needed = {p["paper"]["en"]: p["reasons"] for p in form["data"]["prefill"]["papersStillNeeded"]}
    assert {r["code"] for r in needed[MARRIAGE]} == {"DOCUMENT_SIGNATURE_INVALID"}


async def test_the_land_transfer_prefill_reads_the_parcel_and_the_marriage_certificate(
    gateway, civil_registry: Civil, married_landholders: list[str], dossier_desk
) -> None:
    person = married_landholders[-1]
    (issued,) = civil_registry.of(person, "KET_HON")
    case = await dossier_desk.receive([person])
    response = await gateway.post(
        PREFILL, {"a": person}, procedure=TRANSFER, case=case, subjects=[person]
    )
    assert response.status_code == 200, response.text
    form = response.json()["data"]["prefill"]
    fields = {f["name"]: f for f in form["fields"]}
    assert fields["marriage_certificate_number"]["value"] == [issued["soGiayTo"]]
    assert fields["marriage_certificate_issuer"]["value"] == [issued["coQuanCap"]]
    assert fields["marriage_certificate_signature"]["value"] == ["VERIFIED"]
    assert fields["marriage_certificate_number"]["provenance"] == {"source": "civil", "version": 1}
    assert fields["parcel_number"]["value"]
    assert fields["parcel_number"]["error"] is None
    assert fields["parcel_number"]["provenance"]["source"] == "land"
    avoided = {p["paper"]["en"] for p in form["papersAvoided"]}
    assert MARRIAGE in avoided
    assert "Land-use right certificate" in avoided
    # An enterprise's paper does not concern a person: in neither list.
    needed = {p["paper"]["en"] for p in form["papersStillNeeded"]}
    assert "Enterprise registration certificate" not in avoided | needed
