import hashlib
import os
import subprocess
import sys
import time
from datetime import date
from typing import Any

import orjson
import pytest
from vietnam_provinces import Province, ProvinceCode, Ward, WardCode

from sandbox import (
    OLD_PROVINCES,
    OLD_TO_2025,
    Dataset,
    SandboxSettings,
    century_sex_digit,
    generate,
    is_tax_code,
)
from sandbox._dates import REFERENCE_DATE, REFORM_DATE, age_on

SMALL = 500  # the size of the session's small_dataset fixture


def _digest(dataset: Dataset) -> str:
    payload = orjson.dumps(
        [
            dict(dataset.citizens),
            dict(dataset.households),
            dict(dataset.businesses),
            dataset.sample.to_json(),
        ]
    )
    return hashlib.sha256(payload).hexdigest()


def _age(record: dict[str, Any]) -> int:
    return age_on(date.fromisoformat(record["ngay_sinh"]), REFERENCE_DATE)


def _addresses(dataset: Dataset) -> list[dict[str, Any]]:
    found = []
    for citizen in dataset.citizens.values():
        found.append(citizen["noi_dang_ky_khai_sinh"])
        found.append(citizen["noi_thuong_tru"])
        found.append(citizen["noi_o_hien_tai"])
        if citizen["noi_tam_tru"] is not None:
            found.append(citizen["noi_tam_tru"])
    found.extend(b["dia_chi_tru_so"] for b in dataset.businesses.values())
    return found


def test_same_settings_same_bytes(small_settings: SandboxSettings, small_dataset: Dataset) -> None:
    assert _digest(generate(small_settings)) == _digest(small_dataset)


def test_same_bytes_in_another_process_with_another_hash_seed(small_dataset: Dataset) -> None:
    script = (
        "import hashlib, orjson\n"
        "from sandbox import SandboxSettings, generate\n"
        f"d = generate(SandboxSettings(citizens={SMALL}))\n"
        "p = orjson.dumps([dict(d.citizens), dict(d.households), dict(d.businesses),"
        " d.sample.to_json()])\n"
        "print(hashlib.sha256(p).hexdigest())\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_")}
    env["PYTHONHASHSEED"] = "12345"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip() == _digest(small_dataset)


def test_another_seed_gives_other_data(small_dataset: Dataset) -> None:
    other = generate(SandboxSettings(citizens=SMALL, seed=1))
    assert len(other.citizens) == SMALL
    assert _digest(other) != _digest(small_dataset)


def test_dataset_is_read_only(small_dataset: Dataset) -> None:
    with pytest.raises(TypeError):
        small_dataset.citizens["000000000000"] = {}  # type: ignore[index]


def test_fixture_size(small_settings: SandboxSettings) -> None:
    assert small_settings.citizens == SMALL


def test_counts(small_dataset: Dataset) -> None:
    assert len(small_dataset.citizens) == SMALL
    assert len(small_dataset.businesses) == SMALL // 10
    members = sum(len(h["thanh_vien"]) for h in small_dataset.households.values())
    deceased = [c for c in small_dataset.citizens.values() if c["tinh_trang"] == "Đã mất"]
    assert members + len(deceased) == SMALL
    assert len(deceased) == SMALL // 100


def test_business_count_setting() -> None:
    assert len(generate(SandboxSettings(citizens=200, businesses=7)).businesses) == 7


def test_default_size_generates_quickly() -> None:
    settings = SandboxSettings(citizens=10_000)
    started = time.perf_counter()
    dataset = generate(settings)
    elapsed = time.perf_counter() - started
    assert len(dataset.citizens) == 10_000
    assert len(dataset.businesses) == 1_000
    assert 2_000 < len(dataset.households) < 5_000
    assert elapsed < 20, f"took {elapsed:.1f}s"


def test_personal_id_structure(small_dataset: Dataset) -> None:
    for pid, citizen in small_dataset.citizens.items():
        assert pid == citizen["so_dinh_danh"]
        assert len(pid) == 12
        assert pid.isdigit()
        born = date.fromisoformat(citizen["ngay_sinh"])
        female = citizen["gioi_tinh"] == "Nữ"
        assert pid[:3] in OLD_PROVINCES
        assert int(pid[3]) == century_sex_digit(born.year, female=female)
        assert int(pid[4:6]) == born.year % 100
        registration = citizen["noi_dang_ky_khai_sinh"]
        assert registration["ma_tinh"] == OLD_TO_2025[pid[:3]]
        assert registration["dia_chi_cu"].endswith(OLD_PROVINCES[pid[:3]])


def test_addresses_are_real_wards_of_the_stated_province(small_dataset: Dataset) -> None:
    for address in _addresses(small_dataset):
        ward = Ward.from_code(WardCode(address["ma_xa"]))
        province = Province.from_code(ProvinceCode(address["ma_tinh"]))
        assert int(ward.province_code) == address["ma_tinh"]
        assert address["ten_xa"] == " ".join(ward.name.split())
        assert address["ten_tinh"] == province.name
        assert address["chi_tiet"]
        assert address["hieu_luc_tu"] >= REFORM_DATE.isoformat()
        legacy = address["dia_chi_cu"]
        if legacy is not None:
            old = [c for c, name in OLD_PROVINCES.items() if legacy.endswith(name)]
            assert any(OLD_TO_2025[c] == address["ma_tinh"] for c in old), legacy


def test_households_are_coherent(small_dataset: Dataset) -> None:
    citizens = small_dataset.citizens
    for ma_ho, household in small_dataset.households.items():
        assert ma_ho == household["ma_ho"]
        assert len(ma_ho) == 12
        assert ma_ho.startswith("HO")
        members = household["thanh_vien"]
        assert 1 <= len(members) <= 7
        heads = [m for m in members if m["quan_he_voi_chu_ho"] == "Chủ hộ"]
        assert len(heads) == 1
        assert heads[0]["cong_dan"] == household["chu_ho"]
        for member in members:
            record = citizens[member["cong_dan"]["so_dinh_danh"]]
            assert record["ho_ten"] == member["cong_dan"]["ho_ten"]
            assert record["ho_gia_dinh"]["ma_ho"] == ma_ho
            assert record["quan_he_voi_chu_ho"] == member["quan_he_voi_chu_ho"]
            assert record["noi_thuong_tru"] == household["dia_chi"]
            assert record["tinh_trang"] == "Còn sống"


def test_parents_and_children_are_coherent(small_dataset: Dataset) -> None:
    citizens = small_dataset.citizens
    children = [c for c in citizens.values() if c["quan_he_voi_chu_ho"] == "Con"]
    assert children
    for child in children:
        assert child["cha"] or child["me"]
        for role in ("cha", "me"):
            if child[role] is None:
                continue
            parent = citizens[child[role]["so_dinh_danh"]]
            assert parent["gioi_tinh"] == ("Nam" if role == "cha" else "Nữ")
            assert parent["ho_gia_dinh"]["ma_ho"] == child["ho_gia_dinh"]["ma_ho"]
            assert child["so_dinh_danh"] in {c["so_dinh_danh"] for c in parent["con"]}
            gap = int(child["ngay_sinh"][:4]) - int(parent["ngay_sinh"][:4])
            assert 20 <= gap <= 45
        if child["cha"] is not None:
            assert child["ho_ten"].split()[0] == child["cha"]["ho_ten"].split()[0]
    for citizen in citizens.values():
        for listed in citizen["con"]:
            kid = citizens[listed["so_dinh_danh"]]
            role = "me" if citizen["gioi_tinh"] == "Nữ" else "cha"
            assert kid[role]["so_dinh_danh"] == citizen["so_dinh_danh"]


def test_spouses_point_to_each_other(small_dataset: Dataset) -> None:
    citizens = small_dataset.citizens
    married = [c for c in citizens.values() if c["tinh_trang_hon_nhan"] == "Đã kết hôn"]
    assert married
    for citizen in married:
        spouse = citizens[citizen["vo_chong"]["so_dinh_danh"]]
        assert spouse["vo_chong"]["so_dinh_danh"] == citizen["so_dinh_danh"]
        assert spouse["tinh_trang_hon_nhan"] == "Đã kết hôn"
        assert spouse["gioi_tinh"] != citizen["gioi_tinh"]
        assert spouse["ho_gia_dinh"]["ma_ho"] == citizen["ho_gia_dinh"]["ma_ho"]
    assert all(
        c["vo_chong"] is None for c in citizens.values() if c["tinh_trang_hon_nhan"] != "Đã kết hôn"
    )


def test_minors_are_represented_by_a_parent(small_dataset: Dataset) -> None:
    citizens = small_dataset.citizens
    minors = [c for c in citizens.values() if _age(c) < 18]
    assert minors
    for minor in minors:
        representative = minor["nguoi_dai_dien"]
        assert representative in (minor["cha"], minor["me"])
        parent = citizens[representative["so_dinh_danh"]]
        assert minor["so_dinh_danh"] in {p["so_dinh_danh"] for p in parent["nguoi_duoc_dai_dien"]}
    for citizen in citizens.values():
        if _age(citizen) >= 18:
            assert citizen["nguoi_dai_dien"] is None
        for listed in citizen["nguoi_duoc_dai_dien"]:
            assert (
                citizens[listed["so_dinh_danh"]]["nguoi_dai_dien"]["so_dinh_danh"]
                == (citizen["so_dinh_danh"])
            )


def test_vital_status_and_other_fields(small_dataset: Dataset) -> None:
    cmnd = []
    for citizen in small_dataset.citizens.values():
        assert 0 <= _age(citizen) <= 100
        if citizen["tinh_trang"] == "Đã mất":
            assert citizen["ho_gia_dinh"] is None
            assert citizen["quan_he_voi_chu_ho"] is None
            assert citizen["ngay_sinh"] < citizen["ngay_mat"] < REFERENCE_DATE.isoformat()
        else:
            assert citizen["tinh_trang"] == "Còn sống"
            assert citizen["ngay_mat"] is None
        if citizen["so_cmnd"] is not None:
            assert len(citizen["so_cmnd"]) == 9
            assert citizen["so_cmnd"].isdigit()
            assert citizen["ngay_sinh"] < "2000"
            cmnd.append(citizen["so_cmnd"])
        expected_current = citizen["noi_tam_tru"] or citizen["noi_thuong_tru"]
        assert citizen["noi_o_hien_tai"] == expected_current
        assert citizen["nhom_mau"] in (None, "A", "B", "AB", "O")
        assert citizen["quoc_tich"] == ["VN"]
        phone = citizen["so_dien_thoai"]
        assert phone is None or (len(phone) == 10 and phone.startswith("0"))
    assert len(cmnd) == len(set(cmnd)) > 0
    values = list(small_dataset.citizens.values())
    kinh = sum(c["dan_toc"] == {"ma": "01", "ten": "Kinh"} for c in values)
    assert 0.7 * len(values) < kinh < len(values)
    assert any(c["noi_tam_tru"] for c in values)
    assert any(c["nhom_mau"] for c in values)


def test_businesses(small_dataset: Dataset) -> None:
    citizens = small_dataset.citizens
    names = set()
    for code, record in small_dataset.businesses.items():
        assert code == record["ma_so_doanh_nghiep"]
        assert is_tax_code(code)
        assert len(code) == 10
        assert record["ten_doanh_nghiep"].startswith(("CÔNG TY TNHH ", "CÔNG TY CỔ PHẦN "))
        names.add(record["ten_doanh_nghiep"])
        representative = record["nguoi_dai_dien_phap_luat"]
        person = citizens[representative["so_dinh_danh"]]
        assert person["ho_ten"] == representative["ho_ten"]
        assert person["tinh_trang"] == "Còn sống"
        assert _age(person) >= 18
        assert representative["chuc_danh"] in (
            "Giám đốc",
            "Tổng giám đốc",
            "Chủ tịch Hội đồng thành viên",
        )
        assert record["tinh_trang"] in ("Đang hoạt động", "Tạm ngừng kinh doanh", "Đã giải thể")
        assert record["ngay_thanh_lap"] < REFERENCE_DATE.isoformat()
        assert isinstance(record["von_dieu_le"], int)
        assert record["von_dieu_le"] > 0
        industry = record["nganh_nghe_chinh"]
        assert len(industry["ma"]) == 4
        assert industry["ma"].isdigit()
        assert industry["ten"]
    assert len(names) == len(small_dataset.businesses)
    assert any(b["von_dieu_le"] > 2**31 for b in small_dataset.businesses.values())


def test_sample(small_dataset: Dataset) -> None:
    sample = small_dataset.sample
    for ids in (sample.citizens, sample.households, sample.businesses):
        assert 5 <= len(ids) <= 20
    for pid in sample.citizens:
        citizen = small_dataset.citizens[pid]
        assert citizen["tinh_trang"] == "Còn sống"
        assert _age(citizen) >= 18
        assert len(citizen["ho_gia_dinh"]["thanh_vien"]) >= 3
    for ma_ho in sample.households:
        assert len(small_dataset.households[ma_ho]["thanh_vien"]) >= 3
    for entry in sample.businesses:
        record = small_dataset.businesses[entry.ma_so_doanh_nghiep]
        representative = record["nguoi_dai_dien_phap_luat"]["so_dinh_danh"]
        assert representative == entry.so_dinh_danh_nguoi_dai_dien
