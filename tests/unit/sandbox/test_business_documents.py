"""The business registry's signed certificates: enterprises and household businesses."""

import hashlib
from collections.abc import AsyncIterator
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
from sandbox import Dataset, DocumentStore, RegistryKey, SandboxSettings, business
from sandbox._businesses import DOCUMENT_FIELDS, build_documents

SIGNED = DOCUMENT_FIELDS.signed


@pytest.fixture(scope="module")
def key() -> RegistryKey:
    return RegistryKey.from_private(Ed25519PrivateKey.generate())


def _build(settings: SandboxSettings, dataset: Dataset, key: RegistryKey) -> DocumentStore:
    return build_documents(settings.seed, dataset.businesses, dataset.citizens, key)


@pytest.fixture(scope="module")
def documents(
    small_settings: SandboxSettings, small_dataset: Dataset, key: RegistryKey
) -> DocumentStore:
    return _build(small_settings, small_dataset, key)


@pytest.fixture(scope="module")
def app(
    small_settings: SandboxSettings, small_dataset: Dataset, documents: DocumentStore
) -> FastAPI:
    return business.create_app(small_settings, small_dataset, documents)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://business") as client:
        yield client


def _verify(token: str, jwks_body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    with eddsa_allowed():
        checked = jws.deserialize_compact(
            token, KeySet.import_key_set(jwks_body), algorithms=["EdDSA"]
        )
    return checked.protected, orjson.loads(checked.payload)


def test_every_enterprise_has_its_registration_certificate(
    small_dataset: Dataset, documents: DocumentStore
) -> None:
    for code, enterprise in small_dataset.businesses.items():
        (certificate,) = documents.of_holder(code)
        assert certificate["so_giay"] == f"DN-{code}"
        assert certificate["loai"] == "DKDN"
        assert certificate["ten_giay"] == "Giấy chứng nhận đăng ký doanh nghiệp"
        assert certificate["ngay_cap"] == enterprise["ngay_thanh_lap"]
        assert certificate["co_quan_cap"] == (
            "Phòng Đăng ký kinh doanh - Sở Tài chính " + enterprise["dia_chi_tru_so"]["ten_tinh"]
        )
        assert certificate["chu_the"] == [code]


def test_about_one_citizen_in_twenty_runs_a_household_business(
    small_dataset: Dataset, documents: DocumentStore
) -> None:
    owners = {
        pid: docs
        for pid in small_dataset.citizens
        if (docs := [d for d in documents.of_holder(pid) if d["loai"] == "DKHKD"])
    }
    assert 0.02 * len(small_dataset.citizens) < len(owners) < 0.08 * len(small_dataset.citizens)
    for pid, docs in owners.items():
        (certificate,) = docs
        citizen = small_dataset.citizens[pid]
        assert citizen["ngay_mat"] is None
        assert certificate["chu_the"] == [pid]
        assert certificate["ma_thu_tuc"] == "1.001612"
        assert certificate["co_quan_cap"] == f"UBND {citizen['noi_thuong_tru']['ten_xa']}"
        assert certificate["ngay_cap"] > citizen["ngay_sinh"]


def test_same_seed_same_certificates(
    small_settings: SandboxSettings, small_dataset: Dataset, key: RegistryKey
) -> None:
    first, again = (
        _build(small_settings, small_dataset, key),
        _build(small_settings, small_dataset, key),
    )
    assert [first.get(n) for n in first.numbers()] == [again.get(n) for n in again.numbers()]


async def test_certificates_are_signed_over_the_fields_served(
    client: httpx.AsyncClient, small_dataset: Dataset, documents: DocumentStore
) -> None:
    keys = (await client.get("/.well-known/jwks.json")).json()
    (jwk,) = keys["keys"]
    owner = next(n for n in documents.numbers() if n.startswith("HKD-"))
    holders = [next(iter(small_dataset.businesses)), documents.get(owner)["chu_the"][0]]  # type: ignore[index]
    for holder in holders:
        response = await client.get(f"/v1/chu-the/{holder}/giay-chung-nhan")
        assert response.status_code == 200
        (certificate,) = response.json()["ket_qua"]
        header, payload = _verify(certificate["chu_ky"], keys)
        assert header == {"alg": "EdDSA", "kid": jwk["kid"], "typ": "vn-document+jws"}
        assert payload == {name: certificate[name] for name in SIGNED}
        assert set(certificate) == {*SIGNED, "chu_ky"}
        assert (
            certificate["sha256"]
            == hashlib.sha256(documents.file(certificate["so_giay"])).hexdigest()
        )


async def test_one_many_and_none_by_number(
    client: httpx.AsyncClient, documents: DocumentStore
) -> None:
    number = documents.numbers()[0]
    one = await client.get(f"/v1/giay-chung-nhan/{number}")
    assert one.status_code == 200
    assert one.json() == documents.get(number)
    assert (await client.get("/v1/giay-chung-nhan/DN-0000000000")).status_code == 404
    batch = await client.post(
        "/v1/giay-chung-nhan/tra-cuu", json={"danh_sach": [number, "DN-0000000000"]}
    )
    assert batch.json() == {"ket_qua": [documents.get(number)], "khong_tim_thay": ["DN-0000000000"]}


async def test_holders_without_certificates_and_malformed_holders(
    client: httpx.AsyncClient,
) -> None:
    empty = await client.get("/v1/chu-the/001099000000/giay-chung-nhan")
    assert empty.json() == {"ket_qua": []}
    bad = await client.get("/v1/chu-the/12345/giay-chung-nhan")
    assert bad.status_code == 400
    assert bad.json()["ma_loi"] == "SAI_DINH_DANG"


@pytest.fixture
async def fresh(
    small_settings: SandboxSettings, small_dataset: Dataset, key: RegistryKey
) -> AsyncIterator[httpx.AsyncClient]:
    app = business.create_app(
        small_settings, small_dataset, _build(small_settings, small_dataset, key)
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://business") as client:
        yield client


@pytest.mark.parametrize(("what", "changed"), [("file", "sha256"), ("metadata", "ten_giay")])
async def test_tampered_certificates_no_longer_match(
    fresh: httpx.AsyncClient, documents: DocumentStore, what: str, changed: str
) -> None:
    number = documents.numbers()[0]
    tampered = await fresh.post(f"/admin/documents/{number}/tamper", json={"what": what})
    assert tampered.status_code == 200
    certificate = (await fresh.get(f"/v1/giay-chung-nhan/{number}")).json()
    _, payload = _verify(certificate["chu_ky"], (await fresh.get("/.well-known/jwks.json")).json())
    assert [name for name in SIGNED if certificate[name] != payload[name]] == [changed]


async def test_a_tampered_certificate_signature_does_not_verify(
    fresh: httpx.AsyncClient, documents: DocumentStore
) -> None:
    number = documents.numbers()[-1]
    tampered = await fresh.post(f"/admin/documents/{number}/tamper", json={"what": "signature"})
    assert tampered.status_code == 200
    certificate = (await fresh.get(f"/v1/giay-chung-nhan/{number}")).json()
    with pytest.raises(BadSignatureError):
        _verify(certificate["chu_ky"], (await fresh.get("/.well-known/jwks.json")).json())
    missing = await fresh.post("/admin/documents/DN-0/tamper", json={"what": "file"})
    assert missing.status_code == 404


async def test_the_enterprise_lookups_still_answer(
    client: httpx.AsyncClient, small_dataset: Dataset
) -> None:
    code = next(iter(small_dataset.businesses))
    response = await client.get(f"/v1/doanh-nghiep/{code}")
    assert response.json() == small_dataset.businesses[code]
