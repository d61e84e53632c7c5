"""The civil-status sandbox: certificates of the same citizens, signed, served over GraphQL."""

import hashlib
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from joserfc import jws
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet

from keys import eddsa_allowed
from sandbox import Dataset, DocumentStore, RegistryKey, SandboxSettings, civil, registry_key
from sandbox._civil import DOCUMENT_FIELDS, build
from sandbox._dates import REFERENCE_DATE
from sandbox.cli import main

SIGNED = DOCUMENT_FIELDS.signed
ALL_FIELDS = " ".join((*SIGNED, "chuKy"))
BY_PERSON = "query($id: String!) { giayToTheoNguoi(soDinhDanh: $id) { " + ALL_FIELDS + " } }"
ONE = "query($so: String!) { giayTo(soGiayTo: $so) { " + ALL_FIELDS + " } }"
MANY = "query($ds: [String!]!) { danhSachGiayTo(danhSach: $ds) { soGiayTo } }"


@pytest.fixture(scope="module")
def key() -> RegistryKey:
    return RegistryKey.from_private(Ed25519PrivateKey.generate())


@pytest.fixture(scope="module")
def documents(
    small_settings: SandboxSettings, small_dataset: Dataset, key: RegistryKey
) -> DocumentStore:
    return build(small_settings, small_dataset, key)


@pytest.fixture(scope="module")
def app(
    small_settings: SandboxSettings, small_dataset: Dataset, documents: DocumentStore
) -> FastAPI:
    return civil.create_app(small_settings, small_dataset, documents)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://civil") as client:
        yield client


async def _query(client: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _holders_docs(documents: DocumentStore, pid: str, kind: str) -> list[dict[str, Any]]:
    return [d for d in documents.of_holder(pid) if d["loai"] == kind]


def _verify(token: str, jwks_body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and payload of a document JWS checked against a JWKS, with joserfc."""
    with eddsa_allowed():
        checked = jws.deserialize_compact(
            token, KeySet.import_key_set(jwks_body), algorithms=["EdDSA"]
        )
    return checked.protected, orjson.loads(checked.payload)


def test_same_settings_same_documents(
    small_settings: SandboxSettings, small_dataset: Dataset, key: RegistryKey
) -> None:
    first, again = (
        build(small_settings, small_dataset, key),
        build(small_settings, small_dataset, key),
    )
    assert first.numbers() == again.numbers()
    assert all(first.get(n) == again.get(n) for n in first.numbers())
    other = build(small_settings.model_copy(update={"seed": 7}), small_dataset, key)
    assert [other.get(n) for n in other.numbers()] != [first.get(n) for n in first.numbers()]


def test_every_citizen_has_one_birth_certificate(
    small_dataset: Dataset, documents: DocumentStore
) -> None:
    for pid, citizen in small_dataset.citizens.items():
        (birth,) = _holders_docs(documents, pid, "KHAI_SINH")
        assert birth["nguoiDuocCap"] == [pid]
        assert birth["tenGiayTo"] == "Giấy khai sinh"
        assert birth["maThuTuc"] == "1.001193"
        assert birth["coQuanCap"] == citizen["noi_dang_ky_khai_sinh"]["chi_tiet"]
        assert birth["coQuanCap"].startswith("UBND ")
        born = date.fromisoformat(citizen["ngay_sinh"])
        issued = date.fromisoformat(birth["ngayCap"])
        assert born <= issued <= born + timedelta(days=60)
        assert issued < REFERENCE_DATE
        assert birth["soGiayTo"].startswith(f"KS-{issued.year}-")


def test_married_couples_share_one_marriage_certificate(
    small_dataset: Dataset, documents: DocumentStore
) -> None:
    married = {
        pid: c["vo_chong"]["so_dinh_danh"]
        for pid, c in small_dataset.citizens.items()
        if c["tinh_trang_hon_nhan"] == "Đã kết hôn" and c["vo_chong"] is not None
    }
    assert len(married) > 50
    for pid, spouse in married.items():
        (marriage,) = _holders_docs(documents, pid, "KET_HON")
        assert _holders_docs(documents, spouse, "KET_HON") == [marriage]
        assert sorted(marriage["nguoiDuocCap"]) == sorted([pid, spouse])
        assert marriage["tenGiayTo"] == "Giấy chứng nhận kết hôn"
        assert marriage["maThuTuc"] == "1.000894"
        assert date.fromisoformat(marriage["ngayCap"]) < REFERENCE_DATE
        husband = small_dataset.citizens[marriage["nguoiDuocCap"][0]]
        assert husband["gioi_tinh"] == "Nam"
    kinds = [documents.get(n)["loai"] for n in documents.numbers()]  # type: ignore[index]
    assert kinds.count("KET_HON") == len(married) // 2
    for pid in small_dataset.citizens.keys() - married.keys():
        assert _holders_docs(documents, pid, "KET_HON") == []


def test_the_deceased_have_a_death_extract(
    small_dataset: Dataset, documents: DocumentStore
) -> None:
    deceased = [pid for pid, c in small_dataset.citizens.items() if c["ngay_mat"] is not None]
    assert deceased
    for pid, citizen in small_dataset.citizens.items():
        deaths = _holders_docs(documents, pid, "KHAI_TU")
        if citizen["ngay_mat"] is None:
            assert deaths == []
            continue
        (death,) = deaths
        assert death["tenGiayTo"] == "Trích lục khai tử"
        assert death["maThuTuc"] == "1.000656"
        assert date.fromisoformat(death["ngayCap"]) >= date.fromisoformat(citizen["ngay_mat"])


async def test_a_married_citizen_gets_birth_and_marriage_certificates_signed(
    client: httpx.AsyncClient, small_dataset: Dataset, documents: DocumentStore
) -> None:
    pid = next(
        pid for pid, c in small_dataset.citizens.items() if c["tinh_trang_hon_nhan"] == "Đã kết hôn"
    )
    answer = await _query(client, BY_PERSON, id=pid)
    assert "errors" not in answer
    served = answer["data"]["giayToTheoNguoi"]
    assert [d["loai"] for d in served] == ["KHAI_SINH", "KET_HON"]
    keys = (await client.get("/.well-known/jwks.json")).json()
    (jwk,) = keys["keys"]
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
    assert "d" not in jwk
    for document in served:
        header, payload = _verify(document["chuKy"], keys)
        assert header == {"alg": "EdDSA", "kid": jwk["kid"], "typ": "vn-document+jws"}
        assert payload == {name: document[name] for name in SIGNED}
        assert document["hieuLucDen"] is None
        current = hashlib.sha256(documents.file(document["soGiayTo"])).hexdigest()
        assert document["sha256"] == current


async def test_one_and_many_by_number(client: httpx.AsyncClient, documents: DocumentStore) -> None:
    number = documents.numbers()[3]
    answer = await _query(client, ONE, so=number)
    assert answer["data"]["giayTo"] == documents.get(number)
    assert (await _query(client, ONE, so="KS-1900-0000000"))["data"] == {"giayTo": None}
    many = await _query(client, MANY, ds=["KS-1900-0000000", number])
    assert many["data"]["danhSachGiayTo"] == [None, {"soGiayTo": number}]


async def test_someone_with_no_documents_gets_an_empty_list(client: httpx.AsyncClient) -> None:
    answer = await _query(client, BY_PERSON, id="001099000000")
    assert answer == {"data": {"giayToTheoNguoi": []}}


async def test_an_enterprise_holds_no_civil_status_document(
    client: httpx.AsyncClient, small_dataset: Dataset
) -> None:
    code = next(iter(small_dataset.businesses))
    answer = await _query(client, BY_PERSON, id=code)
    assert answer == {"data": {"giayToTheoNguoi": []}}


@pytest.mark.parametrize("bad", ["12345", "00109900000a", "0010990000001"])
async def test_a_malformed_personal_id_is_bad_user_input(
    client: httpx.AsyncClient, bad: str
) -> None:
    answer = await _query(client, BY_PERSON, id=bad)
    assert answer["data"] is None
    (error,) = answer["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    assert error["path"] == ["giayToTheoNguoi"]
    assert bad not in error["message"]


async def test_a_batch_over_the_limit_is_bad_user_input(
    client: httpx.AsyncClient, small_settings: SandboxSettings
) -> None:
    answer = await _query(client, MANY, ds=["KS-1"] * (small_settings.max_batch + 1))
    assert answer["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT"}


async def test_a_request_that_is_not_graphql_json_is_refused(client: httpx.AsyncClient) -> None:
    assert (await client.post("/graphql", content=b"{")).status_code == 400
    assert (await client.post("/graphql", json={"variables": {}})).status_code == 400


async def test_health_and_counted_calls(
    client: httpx.AsyncClient, documents: DocumentStore
) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok", "records": len(documents)}
    await client.post("/_sandbox/stats/reset")
    await _query(client, BY_PERSON, id="001099000000")
    await _query(client, MANY, ds=["a", "b"])
    stats = (await client.get("/_sandbox/stats")).json()
    assert stats["calls"]["giayToTheoNguoi"] == 1
    assert stats["calls"]["danhSachGiayTo"] == 1
    assert stats["ids_requested"] == 3


# --- Tampering: a fresh registry each time, since it changes what the registry holds ---


@pytest.fixture
async def fresh(
    small_settings: SandboxSettings, small_dataset: Dataset, key: RegistryKey
) -> AsyncIterator[httpx.AsyncClient]:
    app = civil.create_app(small_settings, small_dataset, build(small_settings, small_dataset, key))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://civil") as client:
        yield client


async def _served_and_checked(
    client: httpx.AsyncClient, number: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    document = (await _query(client, ONE, so=number))["data"]["giayTo"]
    _, payload = _verify(document["chuKy"], (await client.get("/.well-known/jwks.json")).json())
    return document, payload


async def test_an_untouched_document_matches_its_signature(
    fresh: httpx.AsyncClient, documents: DocumentStore
) -> None:
    document, payload = await _served_and_checked(fresh, documents.numbers()[0])
    assert payload == {name: document[name] for name in SIGNED}


@pytest.mark.parametrize(("what", "changed"), [("file", "sha256"), ("metadata", "tenGiayTo")])
async def test_a_tampered_document_no_longer_matches_its_signature(
    fresh: httpx.AsyncClient, documents: DocumentStore, what: str, changed: str
) -> None:
    number = documents.numbers()[0]
    before, _ = await _served_and_checked(fresh, number)
    response = await fresh.post(f"/admin/documents/{number}/tamper", json={"what": what})
    assert response.status_code == 200
    after, payload = await _served_and_checked(fresh, number)
    mismatched = [name for name in SIGNED if after[name] != payload[name]]
    assert mismatched == [changed]
    assert after[changed] != before[changed]
    if what == "file":
        assert len(after["sha256"]) == 64
        assert after["sha256"] == after["sha256"].lower()


async def test_a_tampered_signature_does_not_verify(
    fresh: httpx.AsyncClient, documents: DocumentStore
) -> None:
    number = documents.numbers()[0]
    response = await fresh.post(f"/admin/documents/{number}/tamper", json={"what": "signature"})
    assert response.status_code == 200
    document = (await _query(fresh, ONE, so=number))["data"]["giayTo"]
    with pytest.raises(BadSignatureError):
        _verify(document["chuKy"], (await fresh.get("/.well-known/jwks.json")).json())


async def test_tampering_an_unknown_document_or_kind_is_refused(fresh: httpx.AsyncClient) -> None:
    unknown = await fresh.post("/admin/documents/KS-1900-0000000/tamper", json={"what": "file"})
    assert unknown.status_code == 404
    bad = await fresh.post("/admin/documents/KS-1900-0000000/tamper", json={"what": "owner"})
    assert bad.status_code == 422


async def test_tampering_is_for_loopback_callers_only(
    small_settings: SandboxSettings, small_dataset: Dataset, documents: DocumentStore
) -> None:
    app = civil.create_app(small_settings, small_dataset, documents)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://civil") as client:
        number = documents.numbers()[0]
        before = documents.get(number)
        response = await client.post(f"/admin/documents/{number}/tamper", json={"what": "file"})
        assert response.status_code == 403
        assert documents.get(number) == before


def test_the_key_can_live_in_a_pem_file(tmp_path: Path) -> None:
    path = tmp_path / "civil.pem"
    first = registry_key(path)
    assert path.exists()
    assert registry_key(path).kid == first.kid
    assert registry_key(None).kid != first.kid


def test_the_cli_knows_the_civil_service() -> None:
    with pytest.raises(SystemExit) as caught:
        main(["civil", "--help"])
    assert caught.value.code == 0
