"""The dossier registry sandbox: dossiers of the same people, received and changed."""

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from sandbox import Dataset, SandboxSettings, dossiers
from sandbox._dossiers import OPEN, ORGANISATIONS, PROCEDURES, STATUSES, build

CODE = re.compile(r"[0-9A-Z.]+-[0-9]{6}-[0-9]{4}")


@pytest.fixture
async def registry(
    small_settings: SandboxSettings, small_dataset: Dataset
) -> AsyncIterator[httpx.AsyncClient]:
    app = dossiers.create_app(small_settings, small_dataset)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dossiers") as client:
        yield client


def test_the_same_settings_make_the_same_dossiers(small_dataset: Dataset) -> None:
    one, two = build(small_dataset, 1), build(small_dataset, 1)
    assert list(one) == list(two)
    assert list(one) != list(build(small_dataset, 2))


def test_every_sample_citizen_has_an_open_residence_dossier_at_the_demo(
    small_dataset: Dataset,
) -> None:
    book = build(small_dataset, 1)
    for pid in small_dataset.sample.citizens:
        mine = [
            d
            for d in book
            if d["nguoi_lien_quan"][0]["ma_dinh_danh"] == pid
            and d["ma_thu_tuc"] == "1.004222"
            and d["co_quan_tiep_nhan"] == "VN/GOV/DEMO"
            and d["trang_thai"] in OPEN
        ]
        assert mine, pid
        persons = {p["vai_tro"]: p["ma_dinh_danh"] for p in mine[0]["nguoi_lien_quan"]}
        household = small_dataset.citizens[pid]["ho_gia_dinh"]
        assert persons["HO_GIA_DINH"] == household["ma_ho"]


def test_each_organisation_has_every_procedure_in_every_status(small_dataset: Dataset) -> None:
    book = list(build(small_dataset, 1))
    for organisation in ORGANISATIONS:
        mine = [d for d in book if d["co_quan_tiep_nhan"] == organisation]
        assert {d["ma_thu_tuc"] for d in mine} == set(PROCEDURES)
        assert {d["trang_thai"] for d in mine} == set(STATUSES)
    for d in book:
        assert CODE.fullmatch(d["ma_ho_so"]), d["ma_ho_so"]
        assert d["ma_ho_so"].startswith(ORGANISATIONS[d["co_quan_tiep_nhan"]] + "-")
        ids = [p["ma_dinh_danh"] for p in d["nguoi_lien_quan"]]
        assert len(ids) == len(set(ids))
        assert d["ngay_tiep_nhan"] <= d["ngay_hen_tra"]
    assert len({d["ma_ho_so"] for d in book}) == len(book)


async def test_a_dossier_is_received_numbered_changed_and_looked_up(
    registry: httpx.AsyncClient, small_dataset: Dataset
) -> None:
    person = small_dataset.sample.citizens[0]
    body: dict[str, Any] = {
        "ma_thu_tuc": "1.013831",
        "co_quan_tiep_nhan": "VN/GOV/BENCH",
        "ngay_tiep_nhan": "2026-12-07",
        "nguoi_lien_quan": [{"ma_dinh_danh": person, "vai_tro": "NGUOI_NOP"}],
    }
    first = (await registry.post("/_sandbox/ho-so", json=body)).json()
    second = (await registry.post("/_sandbox/ho-so", json=body)).json()
    assert first["ma_ho_so"] == "000.00.00.BENCH-261207-0001"
    assert second["ma_ho_so"] == "000.00.00.BENCH-261207-0002"
    assert first["trang_thai"] == "DA_TIEP_NHAN"
    assert first["co_quan_xu_ly"] == ["VN/GOV/BNNMT"]
    assert first["ngay_hen_tra"] == "2026-12-17"
    found = await registry.get(f"/v1/ho-so/{first['ma_ho_so']}")
    assert found.json() == first
    changed = await registry.post(
        f"/_sandbox/ho-so/{first['ma_ho_so']}/trang-thai", json={"trang_thai": "DA_HUY"}
    )
    assert changed.json()["trang_thai"] == "DA_HUY"
    assert (await registry.get(f"/v1/ho-so/{first['ma_ho_so']}")).json()["trang_thai"] == "DA_HUY"
    listed = (await registry.get("/_sandbox/sample")).json()["ho_so"]
    assert first["ma_ho_so"] in {d["ma_ho_so"] for d in listed}
    stats = (await registry.get("/_sandbox/stats")).json()
    assert stats["calls"]["ho_so.get"] == 2


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"ma_thu_tuc": "9.999999"}, 400),
        ({"co_quan_tiep_nhan": "not an organisation"}, 400),
        ({"trang_thai": "KHONG_RO"}, 400),
        ({"nguoi_lien_quan": []}, 400),
        ({"nguoi_lien_quan": [{"ma_dinh_danh": "", "vai_tro": "NGUOI_NOP"}]}, 400),
        ({"ngay_tiep_nhan": "yesterday"}, 400),
    ],
)
async def test_a_dossier_that_cannot_be_received_is_a_coded_error(
    registry: httpx.AsyncClient, change: dict[str, Any], status: int
) -> None:
    body = {
        "ma_thu_tuc": "1.004222",
        "co_quan_tiep_nhan": "VN/GOV/TEST",
        "nguoi_lien_quan": [{"ma_dinh_danh": "001099012345", "vai_tro": "NGUOI_NOP"}],
    }
    answer = await registry.post("/_sandbox/ho-so", json={**body, **change})
    assert answer.status_code == status
    assert answer.json()["ma_loi"] == "YEU_CAU_KHONG_HOP_LE"


async def test_an_unknown_code_of_any_form_is_not_found(registry: httpx.AsyncClient) -> None:
    for code in ("000.00.02.H01-251001-9999", "HS 2026/17 Nguyễn"):
        answer = await registry.get(f"/v1/ho-so/{quote(code, safe='')}")
        assert answer.status_code == 404
        assert answer.json()["ma_loi"] == "KHONG_TIM_THAY"
    missing = await registry.post("/_sandbox/ho-so/NOPE/trang-thai", json={"trang_thai": "DA_HUY"})
    assert missing.status_code == 404
    bad = await registry.post("/_sandbox/ho-so/NOPE/trang-thai", content=b"{")
    assert bad.status_code == 400
