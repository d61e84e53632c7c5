import time
from typing import Any

import httpx
import orjson
import pytest

from sandbox import Dataset, SandboxSettings, population
from sandbox._businesses import BUSINESS_FIELDS
from sandbox._render import CITIZEN_FIELDS, HOUSEHOLD_FIELDS

XROAD = {
    "X-Road-Client": "VN/GOV/000.00.00.H29/dichvucong",
    "X-Road-Id": "8f2b1c4e-0000-4000-8000-000000000001",
    "X-Road-UserId": "VN:canbo-0001",
    "X-Road-Issue": "1.004222/HS-2025-000123",
}


async def _stats(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/_sandbox/stats")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_record_fields_match_the_declared_field_lists(small_dataset: Dataset) -> None:
    assert all(tuple(c) == CITIZEN_FIELDS for c in small_dataset.citizens.values())
    assert all(tuple(h) == HOUSEHOLD_FIELDS for h in small_dataset.households.values())
    assert all(tuple(b) == BUSINESS_FIELDS for b in small_dataset.businesses.values())


async def test_healthz(population_client: httpx.AsyncClient, small_dataset: Dataset) -> None:
    response = await population_client.get("/healthz")
    assert response.json() == {"status": "ok", "records": len(small_dataset.citizens)}


async def test_get_citizen_full_record(
    population_client: httpx.AsyncClient, small_dataset: Dataset
) -> None:
    pid = small_dataset.sample.citizens[0]
    response = await population_client.get(f"/v1/cong-dan/{pid}", headers=XROAD)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == orjson.loads(orjson.dumps(small_dataset.citizens[pid]))


async def test_get_citizen_with_truong(
    population_client: httpx.AsyncClient, small_dataset: Dataset
) -> None:
    pid = small_dataset.sample.citizens[1]
    response = await population_client.get(
        f"/v1/cong-dan/{pid}", params={"truong": "ho_ten, ngay_sinh,ho_ten"}
    )
    record = small_dataset.citizens[pid]
    assert response.json() == {
        "so_dinh_danh": pid,
        "ho_ten": record["ho_ten"],
        "ngay_sinh": record["ngay_sinh"],
    }


@pytest.mark.parametrize("bad", ["12345678901", "1234567890123", "07920300123a", "abc"])
async def test_get_citizen_malformed_id(population_client: httpx.AsyncClient, bad: str) -> None:
    response = await population_client.get(f"/v1/cong-dan/{bad}")
    assert response.status_code == 400
    assert response.json()["ma_loi"] == "SAI_DINH_DANG"
    assert bad not in response.text


async def test_get_citizen_not_found(population_client: httpx.AsyncClient) -> None:
    response = await population_client.get("/v1/cong-dan/999999999999")
    assert response.status_code == 404
    body = response.json()
    assert body["ma_loi"] == "KHONG_TIM_THAY"
    assert body["thong_bao"]


async def test_get_citizen_unknown_field(
    population_client: httpx.AsyncClient, small_dataset: Dataset
) -> None:
    pid = small_dataset.sample.citizens[0]
    response = await population_client.get(
        f"/v1/cong-dan/{pid}", params={"truong": "ho_ten,fullName"}
    )
    assert response.status_code == 400
    assert response.json()["ma_loi"] == "TRUONG_KHONG_HOP_LE"
    assert response.json()["truong"] == ["fullName"]


async def test_batch_order_duplicates_and_missing(
    population_client: httpx.AsyncClient, small_dataset: Dataset
) -> None:
    a, b = small_dataset.sample.citizens[:2]
    missing = "999999999999"
    response = await population_client.post(
        "/v1/cong-dan/tra-cuu",
        json={"danh_sach": [b, missing, a, b, missing], "truong": ["ho_ten"]},
        headers=XROAD,
    )
    assert response.status_code == 200
    assert response.json() == {
        "ket_qua": [
            {"so_dinh_danh": b, "ho_ten": small_dataset.citizens[b]["ho_ten"]},
            {"so_dinh_danh": a, "ho_ten": small_dataset.citizens[a]["ho_ten"]},
        ],
        "khong_tim_thay": [missing],
    }


@pytest.mark.parametrize("body", [{"danh_sach": None}, {"truong": None}])
async def test_batch_without_list_is_rejected(
    population_client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await population_client.post("/v1/cong-dan/tra-cuu", json=body)
    assert response.status_code == 400
    assert response.json()["ma_loi"] == "YEU_CAU_KHONG_HOP_LE"


async def test_batch_full_records(
    population_client: httpx.AsyncClient, small_dataset: Dataset
) -> None:
    ids = list(small_dataset.sample.citizens[:3])
    for body in ({"danh_sach": ids, "truong": None}, {"danh_sach": ids}):
        response = await population_client.post("/v1/cong-dan/tra-cuu", json=body)
        expected = [orjson.loads(orjson.dumps(small_dataset.citizens[i])) for i in ids]
        assert response.json() == {"ket_qua": expected, "khong_tim_thay": []}


async def test_batch_empty(population_client: httpx.AsyncClient) -> None:
    response = await population_client.post("/v1/cong-dan/tra-cuu", json={"danh_sach": []})
    assert response.json() == {"ket_qua": [], "khong_tim_thay": []}


async def test_batch_malformed_id_named_by_position(
    population_client: httpx.AsyncClient, small_dataset: Dataset
) -> None:
    pid = small_dataset.sample.citizens[0]
    response = await population_client.post(
        "/v1/cong-dan/tra-cuu", json={"danh_sach": [pid, "12-34", pid, 42], "truong": None}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["ma_loi"] == "SAI_DINH_DANG"
    assert body["vi_tri"] == [1, 3]
    assert "12-34" not in response.text


async def test_batch_limit(
    population_client: httpx.AsyncClient, small_settings: SandboxSettings
) -> None:
    ids = [f"{n:012d}" for n in range(small_settings.max_batch + 1)]
    response = await population_client.post("/v1/cong-dan/tra-cuu", json={"danh_sach": ids})
    assert response.status_code == 400
    assert response.json()["ma_loi"] == "VUOT_GIOI_HAN"
    at_limit = await population_client.post("/v1/cong-dan/tra-cuu", json={"danh_sach": ids[:-1]})
    assert at_limit.status_code == 200


async def test_batch_unknown_field(
    population_client: httpx.AsyncClient, small_dataset: Dataset
) -> None:
    response = await population_client.post(
        "/v1/cong-dan/tra-cuu",
        json={"danh_sach": list(small_dataset.sample.citizens[:1]), "truong": ["birthDate"]},
    )
    assert response.status_code == 400
    assert response.json()["ma_loi"] == "TRUONG_KHONG_HOP_LE"


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        b'{"danh_sach": "079203001234"}',
        b'{"danh_sach": [], "truong": "ho_ten"}',
    ],
)
async def test_batch_malformed_body(population_client: httpx.AsyncClient, content: bytes) -> None:
    response = await population_client.post("/v1/cong-dan/tra-cuu", content=content)
    assert response.status_code == 400
    assert response.json()["ma_loi"] == "YEU_CAU_KHONG_HOP_LE"


async def test_households(population_client: httpx.AsyncClient, small_dataset: Dataset) -> None:
    ma_ho = small_dataset.sample.households[0]
    full = await population_client.get(f"/v1/ho-gia-dinh/{ma_ho}")
    assert full.json() == orjson.loads(orjson.dumps(small_dataset.households[ma_ho]))
    head = await population_client.get(f"/v1/ho-gia-dinh/{ma_ho}", params={"truong": "chu_ho"})
    assert head.json() == {"ma_ho": ma_ho, "chu_ho": small_dataset.households[ma_ho]["chu_ho"]}
    bad = await population_client.get("/v1/ho-gia-dinh/079203001234")
    assert bad.status_code == 400
    assert bad.json()["ma_loi"] == "SAI_DINH_DANG"
    absent = await population_client.get("/v1/ho-gia-dinh/HO0000000000")
    assert absent.status_code == 404
    assert absent.json()["ma_loi"] == "KHONG_TIM_THAY"
    batch = await population_client.post(
        "/v1/ho-gia-dinh/tra-cuu",
        json={"danh_sach": [ma_ho, "HO0000000000"], "truong": ["thanh_vien"]},
    )
    assert batch.json() == {
        "ket_qua": [{"ma_ho": ma_ho, "thanh_vien": small_dataset.households[ma_ho]["thanh_vien"]}],
        "khong_tim_thay": ["HO0000000000"],
    }


async def test_businesses(business_client: httpx.AsyncClient, small_dataset: Dataset) -> None:
    entry = small_dataset.sample.businesses[0]
    code = entry.ma_so_doanh_nghiep
    full = await business_client.get(f"/v1/doanh-nghiep/{code}", headers=XROAD)
    assert full.json() == orjson.loads(orjson.dumps(small_dataset.businesses[code]))
    part = await business_client.get(
        f"/v1/doanh-nghiep/{code}", params={"truong": "nguoi_dai_dien_phap_luat"}
    )
    representative = part.json()["nguoi_dai_dien_phap_luat"]
    assert representative["so_dinh_danh"] == entry.so_dinh_danh_nguoi_dai_dien
    corrupted = code[:9] + str((int(code[9]) + 1) % 10)
    bad = await business_client.get(f"/v1/doanh-nghiep/{corrupted}")
    assert bad.status_code == 400
    assert bad.json()["ma_loi"] == "SAI_DINH_DANG"
    branch = await business_client.get(f"/v1/doanh-nghiep/{code}-001")
    assert branch.status_code == 404
    batch = await business_client.post(
        "/v1/doanh-nghiep/tra-cuu",
        json={"danh_sach": [code, "0100109106", code], "truong": ["ten_doanh_nghiep"]},
    )
    assert batch.json() == {
        "ket_qua": [
            {
                "ma_so_doanh_nghiep": code,
                "ten_doanh_nghiep": small_dataset.businesses[code]["ten_doanh_nghiep"],
            }
        ],
        "khong_tim_thay": ["0100109106"],
    }
    health = await business_client.get("/healthz")
    assert health.json() == {"status": "ok", "records": len(small_dataset.businesses)}


async def test_stats_count_calls_ids_and_fields(
    population_client: httpx.AsyncClient, small_dataset: Dataset
) -> None:
    assert await _stats(population_client) == {
        "calls": {
            "cong_dan.get": 0,
            "cong_dan.batch": 0,
            "ho_gia_dinh.get": 0,
            "ho_gia_dinh.batch": 0,
        },
        "ids_requested": 0,
        "fields_requested": {},
    }
    pid = small_dataset.sample.citizens[0]
    await population_client.get(f"/v1/cong-dan/{pid}")
    await population_client.get(f"/v1/cong-dan/{pid}", params={"truong": "ho_ten,ngay_sinh"})
    await population_client.get("/v1/cong-dan/999999999999", params={"truong": "ho_ten"})
    await population_client.post(
        "/v1/cong-dan/tra-cuu", json={"danh_sach": [pid, pid, pid], "truong": ["ho_ten"]}
    )
    await population_client.post(
        "/v1/ho-gia-dinh/tra-cuu", json={"danh_sach": list(small_dataset.sample.households[:2])}
    )
    await population_client.get("/healthz")
    await population_client.get("/_sandbox/sample")
    stats = await _stats(population_client)
    assert stats == {
        "calls": {
            "cong_dan.get": 3,
            "cong_dan.batch": 1,
            "ho_gia_dinh.get": 0,
            "ho_gia_dinh.batch": 1,
        },
        "ids_requested": 3 + 3 + 2,
        "fields_requested": {"ho_ten": 3, "ngay_sinh": 1},
    }
    reset = await population_client.post("/_sandbox/stats/reset")
    assert reset.json()["ids_requested"] == 0
    after = await _stats(population_client)
    assert after["calls"]["cong_dan.get"] == 0
    assert after["fields_requested"] == {}


async def test_business_stats_routes(business_client: httpx.AsyncClient) -> None:
    await business_client.get("/v1/doanh-nghiep/0100109106")
    stats = await _stats(business_client)
    assert stats["calls"] == {"doanh_nghiep.get": 1, "doanh_nghiep.batch": 0}


async def test_both_apps_serve_the_same_sample(
    population_client: httpx.AsyncClient,
    business_client: httpx.AsyncClient,
    small_dataset: Dataset,
) -> None:
    for client in (population_client, business_client):
        response = await client.get("/_sandbox/sample")
        assert response.json() == small_dataset.sample.to_json()


async def test_latency_is_added_to_lookups(small_dataset: Dataset) -> None:
    settings = SandboxSettings(citizens=500, latency_ms=60)
    app = population.create_app(settings, small_dataset)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://population") as client:
        started = time.perf_counter()
        await client.get("/healthz")
        quick = time.perf_counter() - started
        started = time.perf_counter()
        await client.get(f"/v1/cong-dan/{small_dataset.sample.citizens[0]}")
        slow = time.perf_counter() - started
    assert slow >= 0.06
    assert quick < 0.06
