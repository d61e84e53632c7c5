"""Synthetic social and health insurance records of the population's citizens.

Every citizen has a social insurance book (`so_so_bhxh`, ten digits: the province of
permanent residence and eight more); a living one has a health-insurance card for the
year of the reference date, registered at a clinic of their ward or province; adults
who work have contribution periods with enterprises of the business registry. The
records come from the dataset and a `random.Random(seed + 2)` of their own, so the
population and business data stay as they are.
"""

import random
from dataclasses import dataclass
from datetime import date, timedelta
from types import MappingProxyType
from typing import Final

from sandbox._addresses import JSONObject
from sandbox._data import Dataset
from sandbox._dates import REFERENCE_DATE, add_years, age_on, random_date
from sandbox.config import SandboxSettings

INSURANCE_FIELDS: Final = (
    "so_dinh_danh",
    "so_so_bhxh",
    "the_bhyt",
    "qua_trinh_dong",
    "tong_so_thang_dong",
    "don_vi_hien_tai",
)
"""Source field names of an insurance record, in record order (valid in ``truong``)."""

SEED_OFFSET: Final = 2
"""The insurance data's own generator is seeded with ``settings.seed + 2``."""

_ALIVE: Final = "Còn sống"
_WORKING_AGE: Final = (18, 62)
_EMPLOYED_SHARE: Final = 0.65
_MIN_WAGE: Final = 4_960_000  # regional minimum wage, region I, from 2024-07-01
_CARD_FROM: Final = date(REFERENCE_DATE.year, 1, 1)
_CARD_UNTIL: Final = date(REFERENCE_DATE.year, 12, 31)
# (card group, benefit level): what the holder is insured as.
_EMPLOYEE: Final = ("DN", 4)
_PENSIONER: Final = ("HT", 3)
_CHILD: Final = ("TE", 1)
_PUPIL: Final = ("HS", 4)
_HOUSEHOLD: Final = ("GD", 4)
_CLINICS: Final = (
    "Trạm Y tế {ward}",
    "Trung tâm Y tế khu vực {ward}",
    "Bệnh viện Đa khoa {province}",
)


@dataclass(frozen=True, slots=True)
class Insurance:
    """Insurance records keyed by personal id; read-only mappings."""

    records: MappingProxyType[str, JSONObject]


def build(settings: SandboxSettings, dataset: Dataset) -> Insurance:
    """The insurance records of ``dataset``'s citizens (same settings, same records)."""
    rng = random.Random(settings.seed + SEED_OFFSET)  # noqa: S311  # nosec B311
    employers = sorted(
        (
            (
                date.fromisoformat(b["ngay_thanh_lap"]),
                b["ma_so_doanh_nghiep"],
                b["ten_doanh_nghiep"],
            )
            for b in dataset.businesses.values()
        ),
        key=lambda e: e[1],
    )
    books: set[str] = set()
    records: dict[str, JSONObject] = {}
    for pid in sorted(dataset.citizens):
        citizen = dataset.citizens[pid]
        records[pid] = _record(rng, citizen, employers, books)
    return Insurance(records=MappingProxyType(records))


def _book_number(rng: random.Random, province: int, books: set[str]) -> str:
    while True:
        number = f"{province:02d}{rng.randrange(10**8):08d}"
        if number not in books:
            books.add(number)
            return number


def _record(
    rng: random.Random,
    citizen: JSONObject,
    employers: list[tuple[date, str, str]],
    books: set[str],
) -> JSONObject:
    residence = citizen["noi_thuong_tru"] or citizen["noi_o_hien_tai"] or {}
    province = int(residence.get("ma_tinh") or 1)
    birth = date.fromisoformat(citizen["ngay_sinh"])
    alive = citizen["tinh_trang"] == _ALIVE
    death = date.fromisoformat(citizen["ngay_mat"]) if citizen.get("ngay_mat") else None
    end = REFERENCE_DATE if death is None else death
    age = age_on(birth, end)
    book = _book_number(rng, province, books)
    periods = _periods(rng, birth, end, age, employers) if age >= _WORKING_AGE[0] else []
    current = periods[-1] if periods and periods[-1]["den_thang"] is None else None
    months = sum(_months(p) for p in periods)
    card = _card(rng, book, province, residence, age, current, months) if alive else None
    return {
        "so_dinh_danh": citizen["so_dinh_danh"],
        "so_so_bhxh": book,
        "the_bhyt": card,
        "qua_trinh_dong": periods,
        "tong_so_thang_dong": months,
        "don_vi_hien_tai": None if current is None else current["don_vi"]["ten"],
    }


def _periods(
    rng: random.Random,
    birth: date,
    end: date,
    age: int,
    employers: list[tuple[date, str, str]],
) -> list[JSONObject]:
    if not employers or rng.random() >= _EMPLOYED_SHARE:
        return []
    retired = age > _WORKING_AGE[1]
    last = min(end, add_years(birth, _WORKING_AGE[1])) if retired else end
    start = max(add_years(birth, 18 + rng.randint(0, 6)), date(1995, 1, 1))
    periods: list[JSONObject] = []
    for _ in range(rng.randint(1, 3)):
        if start >= last - timedelta(days=60):
            break
        opened = [e for e in employers if e[0] <= start]
        if not opened:
            opened = [e for e in employers if e[0] < last - timedelta(days=60)]
            if not opened:
                break
        founded, tax_code, name = rng.choice(opened)
        begin = _month_start(max(start, founded))
        stop = random_date(rng, begin + timedelta(days=31), max(last, begin + timedelta(days=31)))
        ongoing = not retired and end == REFERENCE_DATE and rng.random() < 0.5
        salary = int(round(_MIN_WAGE * rng.uniform(1.0, 6.0), -4)) if rng.random() < 0.9 else None
        periods.append(
            {
                "don_vi": {"ma_so_thue": tax_code, "ten": name},
                "tu_thang": begin.isoformat(),
                "den_thang": None if ongoing else _month_end(stop).isoformat(),
                "muc_luong_dong": salary,
            }
        )
        if ongoing:
            break
        start = _month_end(stop) + timedelta(days=1 + rng.randint(0, 400))
    return periods


def _card(
    rng: random.Random,
    book: str,
    province: int,
    residence: JSONObject,
    age: int,
    current: JSONObject | None,
    months: int,
) -> JSONObject:
    if age < 6:
        group = _CHILD
    elif age < 18:
        group = _PUPIL
    elif current is not None:
        group = _EMPLOYEE
    elif age > _WORKING_AGE[1] and months >= 240:
        group = _PENSIONER
    else:
        group = _HOUSEHOLD
    ward = residence.get("ten_xa") or "Trung tâm"
    place = rng.choice(_CLINICS).format(
        ward=ward.removeprefix("Xã ").removeprefix("Phường "),
        province=residence.get("ten_tinh") or "tỉnh",
    )
    return {
        "ma_the": f"{group[0]}{group[1]}{province:02d}{book}",
        "gia_tri_tu": _CARD_FROM.isoformat(),
        "gia_tri_den": _CARD_UNTIL.isoformat(),
        "noi_dang_ky_kcb_ban_dau": {"ma": f"{province:02d}{rng.randrange(1000):03d}", "ten": place},
    }


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _month_end(day: date) -> date:
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def _months(period: JSONObject) -> int:
    begin = date.fromisoformat(period["tu_thang"])
    end = date.fromisoformat(period["den_thang"]) if period["den_thang"] else REFERENCE_DATE
    return (end.year - begin.year) * 12 + end.month - begin.month + 1
