"""The insurance sandbox: deterministic records of the same citizens, served X-Road style."""

import base64
from collections.abc import AsyncIterator
from datetime import date

import httpx
import orjson
import pytest

from sandbox import Dataset, SandboxSettings, generate, insurance
from sandbox._dates import REFERENCE_DATE, age_on
from sandbox._insurance import INSURANCE_FIELDS, build
from sandbox.cli import main

XROAD = {"X-Road-Client": "VN/GOV/BCA/GATEWAY", "X-Road-Id": "req-1"}
PATH = f"{insurance.SERVICE_PATH}/cong-dan"


@pytest.fixture
async def insurance_client(
    small_settings: SandboxSettings, small_dataset: Dataset
) -> AsyncIterator[httpx.AsyncClient]:
    app = insurance.create_app(small_settings, small_dataset)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://insurance") as client:
        yield client


def test_same_settings_same_records(
    small_settings: SandboxSettings, small_dataset: Dataset
) -> None:
    first = build(small_settings, small_dataset).records
    again = build(small_settings, generate(small_settings)).records
    assert orjson.dumps(dict(first)) == orjson.dumps(dict(again))
    other = build(small_settings.model_copy(update={"seed": 7}), small_dataset).records
    assert orjson.dumps(dict(other)) != orjson.dumps(dict(first))


def test_the_population_and_businesses_do_not_change(small_settings: SandboxSettings) -> None:
    before = generate(small_settings)
    build(small_settings, before)
    after = generate(small_settings)
    assert orjson.dumps(dict(before.citizens)) == orjson.dumps(dict(after.citizens))
    assert orjson.dumps(dict(before.businesses)) == orjson.dumps(dict(after.businesses))
    assert before.sample == after.sample


def test_every_citizen_has_one_book_and_each_book_one_citizen(
    small_settings: SandboxSettings, small_dataset: Dataset
) -> None:
    records = build(small_settings, small_dataset).records
    assert set(records) == set(small_dataset.citizens)
    books = [r["so_so_bhxh"] for r in records.values()]
    assert len(set(books)) == len(books)
    assert all(len(b) == 10 and b.isdigit() for b in books)
    assert all(tuple(r) == INSURANCE_FIELDS for r in records.values())


def test_every_adult_of_the_sample_has_a_book_and_a_card(
    small_settings: SandboxSettings, small_dataset: Dataset
) -> None:
    records = build(small_settings, small_dataset).records
    for pid in small_dataset.sample.citizens:
        birth = date.fromisoformat(small_dataset.citizens[pid]["ngay_sinh"])
        assert age_on(birth, REFERENCE_DATE) >= 18
        record = records[pid]
        assert record["so_so_bhxh"]
        card = record["the_bhyt"]
        assert card["ma_the"].endswith(record["so_so_bhxh"])
        assert len(card["ma_the"]) == 15
        assert card["gia_tri_tu"] <= REFERENCE_DATE.isoformat() <= card["gia_tri_den"]
        assert card["noi_dang_ky_kcb_ban_dau"]["ten"]


def test_contributions_are_with_registered_enterprises_in_order(
    small_settings: SandboxSettings, small_dataset: Dataset
) -> None:
    records = build(small_settings, small_dataset).records
    working = [r for r in records.values() if r["qua_trinh_dong"]]
    assert len(working) > len(records) // 5
    for record in working:
        periods = record["qua_trinh_dong"]
        starts = [p["tu_thang"] for p in periods]
        assert starts == sorted(starts)
        for period in periods:
            employer = small_dataset.businesses[period["don_vi"]["ma_so_thue"]]
            assert period["don_vi"]["ten"] == employer["ten_doanh_nghiep"]
            assert period["tu_thang"] >= employer["ngay_thanh_lap"][:7]
            assert period["den_thang"] is None or period["den_thang"] > period["tu_thang"]
        assert record["tong_so_thang_dong"] > 0
        ongoing = periods[-1]["den_thang"] is None
        assert record["don_vi_hien_tai"] == (periods[-1]["don_vi"]["ten"] if ongoing else None)
    # Children have a book and a card, and no contributions.
    children = [
        records[pid]
        for pid, c in small_dataset.citizens.items()
        if age_on(date.fromisoformat(c["ngay_sinh"]), REFERENCE_DATE) < 18
    ]
    assert children
    assert all(not r["qua_trinh_dong"] for r in children)


def test_the_dead_have_no_card(small_settings: SandboxSettings, small_dataset: Dataset) -> None:
    records = build(small_settings, small_dataset).records
    dead = [pid for pid, c in small_dataset.citizens.items() if c["tinh_trang"] != "Còn sống"]
    assert dead
    assert all(records[pid]["the_bhyt"] is None for pid in dead)


async def test_a_call_without_an_xroad_client_is_refused(
    insurance_client: httpx.AsyncClient, small_dataset: Dataset
) -> None:
    pid = small_dataset.sample.citizens[0]
    response = await insurance_client.get(f"{PATH}/{pid}", headers={"X-Road-Id": "r"})
    assert response.status_code == 400
    assert response.headers["x-road-error"] == "Client.InvalidRequest"
    assert response.json()["type"] == "Client.InvalidRequest"


async def test_an_answer_carries_the_request_hash(
    insurance_client: httpx.AsyncClient, small_dataset: Dataset
) -> None:
    pid = small_dataset.sample.citizens[0]
    response = await insurance_client.get(f"{PATH}/{pid}?truong=so_so_bhxh", headers=XROAD)
    assert response.status_code == 200
    assert set(response.json()) == {"so_dinh_danh", "so_so_bhxh"}
    digest = response.headers["x-road-request-hash"]
    assert len(base64.b64decode(digest)) == 64
    assert digest == insurance.request_hash(
        "GET",
        f"{PATH}/{pid}?truong=so_so_bhxh".encode(),
        b"VN/GOV/BCA/GATEWAY",
        b"req-1",
        b"",
    )
    assert response.headers["x-road-id"] == "req-1"


async def test_a_batch_has_a_hash_of_its_body(
    insurance_client: httpx.AsyncClient, small_dataset: Dataset
) -> None:
    pids = list(small_dataset.sample.citizens[:3])
    hashes = set()
    for keys in (pids, pids[:1]):
        response = await insurance_client.post(
            f"{PATH}/tra-cuu", json={"danh_sach": keys}, headers=XROAD
        )
        assert response.status_code == 200
        assert [r["so_dinh_danh"] for r in response.json()["ket_qua"]] == keys
        hashes.add(response.headers["x-road-request-hash"])
    assert len(hashes) == 2


async def test_health_needs_no_xroad_headers(insurance_client: httpx.AsyncClient) -> None:
    response = await insurance_client.get("/healthz")
    assert response.status_code == 200
    assert "x-road-request-hash" not in response.headers


def test_the_cli_knows_the_insurance_service() -> None:
    with pytest.raises(SystemExit) as caught:
        main(["insurance", "--help"])
    assert caught.value.code == 0
