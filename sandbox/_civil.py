"""Civil-status documents of the population's citizens, signed by the civil registry.

Every citizen has a birth certificate (Giấy khai sinh) from the People's Committee
where the birth was registered (the population record's ``noi_dang_ky_khai_sinh``),
issued within 60 days of the birth. Every married couple (``vo_chong``) has one
marriage certificate (Giấy chứng nhận kết hôn) naming both spouses, issued by the
committee of their ward once both were of marriage age and before their first child's
birth when they have one; every deceased citizen a death extract (Trích lục khai tử).
Dates come from a ``random.Random(seed + 3)`` of their own, so the population,
business, land and insurance data stay as they are.
"""

import random
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any, Final

from sandbox._addresses import JSONObject
from sandbox._data import Dataset
from sandbox._dates import REFERENCE_DATE, add_years, random_date
from sandbox._documents import DocumentFields, DocumentStore, render_file
from sandbox._signing import RegistryKey
from sandbox.config import SandboxSettings

SEED_OFFSET: Final = 3
"""The civil registry's own generator is seeded with ``settings.seed + 3``."""

BIRTH: Final = "KHAI_SINH"
MARRIAGE: Final = "KET_HON"
DEATH: Final = "KHAI_TU"

# (number prefix, title, national procedure code from policies/catalogue)
_KINDS: Final = {
    BIRTH: ("KS", "Giấy khai sinh", "1.001193"),
    MARRIAGE: ("KH", "Giấy chứng nhận kết hôn", "1.000894"),
    DEATH: ("KT", "Trích lục khai tử", "1.000656"),
}

DOCUMENT_FIELDS: Final = DocumentFields(
    number="soGiayTo",
    title="tenGiayTo",
    holders="nguoiDuocCap",
    sha256="sha256",
    signature="chuKy",
    signed=(
        "soGiayTo",
        "loai",
        "tenGiayTo",
        "coQuanCap",
        "ngayCap",
        "hieuLucDen",
        "maThuTuc",
        "nguoiDuocCap",
        "sha256",
    ),
)
"""The upstream names of a civil-status document and the fields its JWS covers."""

_MARRIAGE_AGE: Final = {False: 20, True: 18}  # men 20, women 18
_MARRIED: Final = "Đã kết hôn"
_LAST_DAY: Final = REFERENCE_DATE - timedelta(days=1)


def build(settings: SandboxSettings, dataset: Dataset, key: RegistryKey) -> DocumentStore:
    """The civil registry's documents of ``dataset`` (same settings, same documents)."""
    rng = random.Random(settings.seed + SEED_OFFSET)  # noqa: S311  # nosec B311
    store = DocumentStore(key, DOCUMENT_FIELDS)
    numbers = _Numbers()
    citizens = dataset.citizens
    pids = sorted(citizens)
    for pid in pids:
        store.issue(*_birth(rng, numbers, citizens[pid]))
    for husband, wife in _couples(citizens, pids):
        store.issue(*_marriage(rng, numbers, citizens, husband, wife))
    for pid in pids:
        if citizens[pid]["ngay_mat"] is not None:
            store.issue(*_death(rng, numbers, citizens[pid]))
    return store


class _Numbers:
    """Document numbers `KS-2019-0000001`: a sequence per kind and year of issue."""

    def __init__(self) -> None:
        self._next: dict[tuple[str, int], int] = {}

    def issue(self, kind: str, day: date) -> str:
        prefix = _KINDS[kind][0]
        seq = self._next.get((prefix, day.year), 1)
        self._next[(prefix, day.year)] = seq + 1
        return f"{prefix}-{day.year}-{seq:07d}"


def _couples(citizens: Any, pids: list[str]) -> Iterator[tuple[JSONObject, JSONObject]]:
    """Each married couple once, husband first (or the smaller id first)."""
    for pid in pids:
        citizen = citizens[pid]
        spouse_ref = citizen["vo_chong"]
        if spouse_ref is None or citizen["tinh_trang_hon_nhan"] != _MARRIED:
            continue
        spouse = citizens.get(spouse_ref["so_dinh_danh"])
        if spouse is None or spouse["so_dinh_danh"] < pid:
            continue  # met already, from the other spouse
        if citizen["gioi_tinh"] == "Nữ" and spouse["gioi_tinh"] != "Nữ":
            yield spouse, citizen
        else:
            yield citizen, spouse


def _record(
    numbers: _Numbers, kind: str, issuer: str, issued: date, holders: list[str]
) -> JSONObject:
    _, title, code = _KINDS[kind]
    return {
        "soGiayTo": numbers.issue(kind, issued),
        "loai": kind,
        "tenGiayTo": title,
        "coQuanCap": issuer,
        "ngayCap": issued.isoformat(),
        "hieuLucDen": None,
        "maThuTuc": code,
        "nguoiDuocCap": holders,
    }


def _file(record: JSONObject, lines: list[str]) -> bytes:
    return render_file(
        record["tenGiayTo"], record["soGiayTo"], lines, record["coQuanCap"], record["ngayCap"]
    )


def _committee(address: JSONObject | None) -> str:
    """The People's Committee of an address's ward: "UBND Phường Bến Thành"."""
    assert address is not None, "a citizen without an address"
    return f"UBND {address['ten_xa']}"


def _birth(rng: random.Random, numbers: _Numbers, citizen: JSONObject) -> tuple[JSONObject, bytes]:
    born = date.fromisoformat(citizen["ngay_sinh"])
    issued = min(born + timedelta(days=rng.randint(1, 60)), max(born, _LAST_DAY))
    # `chi_tiet` of the registration place is the committee's name itself.
    issuer = citizen["noi_dang_ky_khai_sinh"]["chi_tiet"]
    record = _record(numbers, BIRTH, issuer, issued, [citizen["so_dinh_danh"]])
    lines = [
        f"Họ, chữ đệm, tên: {citizen['ho_ten']}",
        f"Ngày, tháng, năm sinh: {citizen['ngay_sinh']}",
        f"Giới tính: {citizen['gioi_tinh']}",
        f"Số định danh cá nhân: {citizen['so_dinh_danh']}",
        *(
            f"Họ, chữ đệm, tên {who}: {parent['ho_ten']}"
            for who, parent in (("cha", citizen["cha"]), ("mẹ", citizen["me"]))
            if parent is not None
        ),
    ]
    return record, _file(record, lines)


def _marriage(
    rng: random.Random,
    numbers: _Numbers,
    citizens: Any,
    husband: JSONObject,
    wife: JSONObject,
) -> tuple[JSONObject, bytes]:
    earliest = max(
        add_years(date.fromisoformat(husband["ngay_sinh"]), _MARRIAGE_AGE[False]),
        add_years(date.fromisoformat(wife["ngay_sinh"]), _MARRIAGE_AGE[True]),
    )
    births = [
        date.fromisoformat(citizens[c["so_dinh_danh"]]["ngay_sinh"])
        for c in (*husband["con"], *wife["con"])
        if c["so_dinh_danh"] in citizens
    ]
    # Within a few years of both coming of age, and before the first child's birth.
    latest = min(_LAST_DAY, add_years(earliest, 12), *births)
    issued = random_date(rng, min(earliest, latest), latest)
    record = _record(
        numbers,
        MARRIAGE,
        _committee(husband["noi_thuong_tru"]),
        issued,
        [husband["so_dinh_danh"], wife["so_dinh_danh"]],
    )
    lines = [
        f"Họ, chữ đệm, tên chồng: {husband['ho_ten']}",
        f"Số định danh cá nhân: {husband['so_dinh_danh']}",
        f"Họ, chữ đệm, tên vợ: {wife['ho_ten']}",
        f"Số định danh cá nhân: {wife['so_dinh_danh']}",
        f"Ngày đăng ký: {issued.isoformat()}",
    ]
    return record, _file(record, lines)


def _death(rng: random.Random, numbers: _Numbers, citizen: JSONObject) -> tuple[JSONObject, bytes]:
    died = date.fromisoformat(citizen["ngay_mat"])
    issued = min(died + timedelta(days=rng.randint(1, 15)), max(died, _LAST_DAY))
    record = _record(
        numbers,
        DEATH,
        _committee(citizen["noi_thuong_tru"]),
        issued,
        [citizen["so_dinh_danh"]],
    )
    lines = [
        f"Họ, chữ đệm, tên người đã chết: {citizen['ho_ten']}",
        f"Số định danh cá nhân: {citizen['so_dinh_danh']}",
        f"Ngày chết: {citizen['ngay_mat']}",
    ]
    return record, _file(record, lines)
