"""Demographic realism of the synthetic population: marriage ages and where groups live.

The rules are written out here from the domain reference (domain/vietnam.md §1, "Where
the larger ethnic groups live") and the Law on Marriage and Family 2014, independently
of the generator's own tables, and checked on a sample large enough to show rare cases.
"""

from collections import Counter
from datetime import date
from typing import Any

import pytest
from vietnam_provinces import Province

from sandbox import Dataset, SandboxSettings, generate
from sandbox._dates import REFERENCE_DATE, age_on

LARGE = 12_000

# Law on Marriage and Family No. 52/2014/QH13 Art. 8(1)(a): a man may marry from full
# 20 years of age, a woman from full 18.
MARRIAGE_AGE = {"Nam": 20, "Nữ": 18}
SINGLE = "Độc thân"

# domain/vietnam.md §1: the provinces (2025 names) each group lives in, and its rough
# national share in per cent. Where a row of the reference names several groups, a group
# may keep to a subset of the row's provinces. Codes as on the GSO list of 54 groups.
ETHNIC_PROVINCES: dict[str, tuple[set[str], float]] = {
    "02": ({"Cao Bằng", "Lạng Sơn", "Tuyên Quang", "Thái Nguyên", "Lào Cai"}, 1.9),  # Tày
    "03": ({"Sơn La", "Điện Biên", "Lai Châu", "Thanh Hóa", "Nghệ An"}, 1.9),  # Thái
    "04": ({"Hồ Chí Minh", "Đồng Nai", "Cần Thơ", "An Giang"}, 0.8),  # Hoa
    "05": ({"Cần Thơ", "Vĩnh Long", "An Giang", "Cà Mau"}, 1.4),  # Khmer
    "06": ({"Phú Thọ", "Thanh Hóa"}, 1.5),  # Mường
    "07": ({"Lạng Sơn", "Cao Bằng", "Thái Nguyên", "Tuyên Quang"}, 1.1),  # Nùng
    "08": ({"Tuyên Quang", "Lào Cai", "Điện Biên", "Lai Châu", "Sơn La", "Nghệ An"}, 1.5),
    "09": ({"Tuyên Quang", "Lào Cai", "Cao Bằng", "Quảng Ninh", "Thái Nguyên"}, 0.9),  # Dao
    "10": ({"Gia Lai", "Đắk Lắk"}, 0.5),  # Gia-rai
    "12": ({"Đắk Lắk"}, 0.4),  # Ê-đê
    "13": ({"Gia Lai", "Quảng Ngãi"}, 0.3),  # Ba-na
    "14": ({"Quảng Ngãi", "Đà Nẵng", "Huế"}, 0.2),  # Xơ-đăng
    "16": ({"Lâm Đồng", "Đắk Lắk"}, 0.2),  # Cơ-ho
    "17": ({"Khánh Hòa", "Lâm Đồng", "An Giang"}, 0.2),  # Chăm
    "19": ({"Quảng Ngãi", "Đà Nẵng", "Huế"}, 0.2),  # Hrê
    "20": ({"Lâm Đồng", "Đắk Lắk"}, 0.2),  # Mnông
}
KINH = {"ma": "01", "ten": "Kinh"}


def _short(name: str) -> str:
    return name.removeprefix("Thành phố ")


PROVINCE_NAMES = {int(p.code): _short(p.name) for p in Province.iter_all()}


@pytest.fixture(scope="module")
def large() -> Dataset:
    return generate(SandboxSettings(citizens=LARGE))


def _age(citizen: dict[str, Any]) -> int:
    """Age on the reference day, or at death."""
    until = citizen["ngay_mat"] or REFERENCE_DATE.isoformat()
    return age_on(date.fromisoformat(citizen["ngay_sinh"]), date.fromisoformat(until))


def test_the_domain_provinces_are_real_2025_provinces() -> None:
    for provinces, _ in ETHNIC_PROVINCES.values():
        assert provinces <= set(PROVINCE_NAMES.values())


def test_nobody_below_the_marriage_age_is_married_divorced_or_widowed(large: Dataset) -> None:
    wrong = [
        (c["gioi_tinh"], _age(c), c["tinh_trang_hon_nhan"])
        for c in large.citizens.values()
        if _age(c) < MARRIAGE_AGE[c["gioi_tinh"]] and c["tinh_trang_hon_nhan"] != SINGLE
    ]
    assert wrong == []


def test_people_just_above_the_marriage_age_may_be_married(large: Dataset) -> None:
    # The rule bars the young, not everyone: the sample still has married people of
    # each sex within a few years of their marriage age.
    for sex, age in MARRIAGE_AGE.items():
        assert any(
            c["gioi_tinh"] == sex
            and age <= _age(c) < age + 5
            and c["tinh_trang_hon_nhan"] != SINGLE
            for c in large.citizens.values()
        ), sex


def test_every_persons_ethnic_group_lives_in_their_province(large: Dataset) -> None:
    wrong = []
    for citizen in large.citizens.values():
        group = citizen["dan_toc"]
        if group == KINH:
            continue
        provinces, _ = ETHNIC_PROVINCES.get(group["ma"], (set(), 0.0))
        for key in ("noi_thuong_tru", "noi_o_hien_tai", "noi_dang_ky_khai_sinh"):
            where = PROVINCE_NAMES[citizen[key]["ma_tinh"]]
            if where not in provinces:
                wrong.append((group["ten"], key, where))
    assert wrong == []


def test_kinh_dominate_and_groups_keep_their_national_proportions(large: Dataset) -> None:
    groups = Counter(c["dan_toc"]["ma"] for c in large.citizens.values())
    total = sum(groups.values())
    assert 0.80 < groups["01"] / total < 0.90
    for code, (_, share) in ETHNIC_PROVINCES.items():
        if share >= 1.0:  # the smaller groups are too few in a sample for a ratio
            assert share / 3 < 100 * groups[code] / total < share * 3, code
    assert set(groups) <= {"01", *ETHNIC_PROVINCES}


def test_minorities_are_not_everywhere_but_kinh_are(large: Dataset) -> None:
    kinh, minority = set(), set()
    for citizen in large.citizens.values():
        province = citizen["noi_thuong_tru"]["ma_tinh"]
        (kinh if citizen["dan_toc"] == KINH else minority).add(province)
    assert kinh == set(PROVINCE_NAMES)
    listed = {p for provinces, _ in ETHNIC_PROVINCES.values() for p in provinces}
    assert {PROVINCE_NAMES[p] for p in minority} <= listed
    assert "Hà Nội" not in {PROVINCE_NAMES[p] for p in minority}
