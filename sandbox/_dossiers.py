"""Dossiers (hồ sơ) of the one-stop shop, made from the same population.

A dossier has the code the procedure-handling systems give it, ``<unit
code>-<yymmdd>-<number>`` (the receiving unit's code, the day it was received and its
number that day, as dossier codes are printed on receipts), the procedure's national
code, the organisation that received it (``VN/GOV/<org>``, as clients are named) and
those it was assigned to, its status and dates, and the persons it concerns with the
part each plays. Same settings, same dossiers; the registry may receive new ones and
change a status while it runs (``DossierBook``).
"""

import random
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

from sandbox._addresses import JSONObject
from sandbox._data import Dataset
from sandbox._dates import REFERENCE_DATE, random_date

__all__ = [
    "OPEN",
    "ORGANISATIONS",
    "PROCEDURES",
    "STATUSES",
    "DossierBook",
    "DossierError",
    "build",
    "unit_code",
]

STATUSES: Final = ("DA_TIEP_NHAN", "DANG_XU_LY", "TRA_LAI", "DA_TRA_KET_QUA", "DA_HUY")
"""Received, in progress, returned to the applicant, result delivered, cancelled."""
OPEN: Final = frozenset({"DA_TIEP_NHAN", "DANG_XU_LY"})

ORGANISATIONS: Final[Mapping[str, str]] = {
    # organisation -> its unit code on dossier codes
    "VN/GOV/DEMO": "000.00.01.H01",
    "VN/GOV/TEST": "000.00.02.H01",
    "VN/GOV/UBND-HN": "000.00.00.H26",
    "VN/GOV/UBND-HCM": "000.00.00.H29",
    "VN/GOV/BCA": "000.00.00.G01",
}
"""Organisations that receive dossiers in the sandbox: the demo's and the tests'
clients' (``VN/GOV/DEMO``, ``VN/GOV/TEST``) and three others."""

PROCEDURES: Final[Mapping[str, tuple[str, int]]] = {
    # national code -> (name, days to handle)
    "1.004222": ("Đăng ký thường trú", 7),
    "1.004194": ("Đăng ký tạm trú", 3),
    "1.013831": ("Đăng ký biến động quyền sử dụng đất do chuyển nhượng", 10),
    "1.000894": ("Đăng ký kết hôn", 5),
    "1.001193": ("Đăng ký khai sinh", 1),
}

_GENERATED_PER_ORGANISATION: Final = 40
_HANDLER: Final = {
    "1.004222": "VN/GOV/BCA",
    "1.004194": "VN/GOV/BCA",
    "1.013831": "VN/GOV/BNNMT",
    "1.000894": "VN/GOV/BTP",
    "1.001193": "VN/GOV/BTP",
}
"""Who handles each procedure's dossiers, beside the desk that received them."""


_ORGANISATION: Final = re.compile(r"VN/GOV/([A-Za-z0-9][A-Za-z0-9-]{0,63})")


def unit_code(organisation: str) -> str:
    """The unit code an organisation's dossier codes start with: its own where the
    sandbox knows it, else one made from its name (``VN/GOV/BENCH`` -> ``000.00.00.BENCH``).

    Raises:
        DossierError: not an organisation ``VN/GOV/<org>``.
    """
    known = ORGANISATIONS.get(organisation)
    if known is not None:
        return known
    found = _ORGANISATION.fullmatch(organisation)
    if found is None:
        raise DossierError("Cơ quan tiếp nhận là VN/GOV/<mã cơ quan>.")
    return "000.00.00." + re.sub(r"[^A-Z0-9]", "", found.group(1).upper())[:10]


class DossierError(ValueError):
    """A dossier that cannot be received or changed; the message says why."""


@dataclass(frozen=True, slots=True)
class _Person:
    identifier: str
    role: str

    def to_json(self) -> JSONObject:
        return {"ma_dinh_danh": self.identifier, "vai_tro": self.role}


def _persons(
    procedure: str, applicant: JSONObject, rng: random.Random, data: Dataset
) -> list[_Person]:
    """The applicant and whom a dossier of `procedure` names besides."""
    persons = [_Person(applicant["so_dinh_danh"], "NGUOI_NOP")]
    household = applicant.get("ho_gia_dinh") or {}
    spouse = (applicant.get("vo_chong") or {}).get("so_dinh_danh")
    if procedure in ("1.004222", "1.004194") and household:
        persons.append(_Person(household["ma_ho"], "HO_GIA_DINH"))
        head = (household.get("chu_ho") or {}).get("so_dinh_danh")
        if head and head != applicant["so_dinh_danh"]:
            persons.append(_Person(head, "CHU_HO"))
    elif procedure == "1.013831":
        if spouse:
            persons.append(_Person(spouse, "VO_CHONG_NGUOI_NOP"))
        other = data.citizens[rng.choice(data.sample.citizens)]
        if other["so_dinh_danh"] != applicant["so_dinh_danh"]:
            persons.append(_Person(other["so_dinh_danh"], "BEN_NHAN_CHUYEN_NHUONG"))
            partner = (other.get("vo_chong") or {}).get("so_dinh_danh")
            if partner:
                persons.append(_Person(partner, "VO_CHONG_BEN_NHAN"))
    elif procedure == "1.000894" and spouse:
        persons.append(_Person(spouse, "BEN_KET_HON"))
    elif procedure == "1.001193":
        for child in applicant.get("con") or []:
            persons.append(_Person(child["so_dinh_danh"], "NGUOI_DUOC_KHAI_SINH"))
            break
    # Each identifier once, at its first place.
    first: dict[str, _Person] = {}
    for person in persons:
        first.setdefault(person.identifier, person)
    return list(first.values())


class DossierBook:
    """The registry's dossiers by code: generated, received, and with statuses changed."""

    def __init__(self) -> None:
        self._dossiers: dict[str, JSONObject] = {}
        self._numbers: dict[tuple[str, date], int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._dossiers)

    def __iter__(self) -> Iterator[JSONObject]:
        return iter(list(self._dossiers.values()))

    def get(self, code: str) -> JSONObject | None:
        return self._dossiers.get(code)

    def receive(
        self,
        *,
        procedure: str,
        organisation: str,
        persons: Sequence[tuple[str, str]],
        received_on: date,
        status: str = "DA_TIEP_NHAN",
        handlers: Sequence[str] | None = None,
    ) -> JSONObject:
        """A new dossier, numbered after the others of its unit and day; its record."""
        if procedure not in PROCEDURES:
            raise DossierError(f"Thủ tục không có trong hệ thống: {', '.join(PROCEDURES)}.")
        unit = unit_code(organisation)
        if status not in STATUSES:
            raise DossierError(f"Trạng thái là một trong: {', '.join(STATUSES)}.")
        if not persons or not all(
            isinstance(i, str) and i and isinstance(r, str) and r for i, r in persons
        ):
            raise DossierError("Hồ sơ nêu ít nhất một người (mã định danh và vai trò).")
        name, days = PROCEDURES[procedure]
        with self._lock:
            number = self._numbers.get((unit, received_on), 0) + 1
            self._numbers[(unit, received_on)] = number
            code = f"{unit}-{received_on:%y%m%d}-{number:04d}"
            record: JSONObject = {
                "ma_ho_so": code,
                "ma_thu_tuc": procedure,
                "ten_thu_tuc": name,
                "co_quan_tiep_nhan": organisation,
                "co_quan_xu_ly": list(handlers if handlers is not None else [_HANDLER[procedure]]),
                "trang_thai": status,
                "ngay_tiep_nhan": received_on.isoformat(),
                "ngay_hen_tra": (received_on + timedelta(days=days)).isoformat(),
                "nguoi_lien_quan": [{"ma_dinh_danh": i, "vai_tro": r} for i, r in persons],
            }
            self._dossiers[code] = record
        return record

    def set_status(self, code: str, status: str) -> JSONObject | None:
        """Change a dossier's status; its record, or `None` when there is no such dossier."""
        if status not in STATUSES:
            raise DossierError(f"Trạng thái là một trong: {', '.join(STATUSES)}.")
        with self._lock:
            record = self._dossiers.get(code)
            if record is None:
                return None
            record = {**record, "trang_thai": status}
            self._dossiers[code] = record
        return record

    def sample(self) -> list[dict[str, Any]]:
        """Every dossier, for ``GET /_sandbox/sample`` (a sandbox's, not a real registry's)."""
        return list(self)


def build(data: Dataset, seed: int) -> DossierBook:
    """The registry's dossiers for the population of `data`.

    Every sample citizen has an open permanent-residence dossier at the demo's
    organisation (the demo's printed query is for one of them). Besides, each
    organisation has dossiers of every procedure in every status, for adults drawn from
    the sample.
    """
    rng = random.Random(seed + 6)  # noqa: S311  # nosec B311 - reproducible, not secret
    book = DossierBook()
    day = REFERENCE_DATE - timedelta(days=3)
    for pid in data.sample.citizens:
        applicant = data.citizens[pid]
        book.receive(
            procedure="1.004222",
            organisation="VN/GOV/DEMO",
            persons=[(p.identifier, p.role) for p in _persons("1.004222", applicant, rng, data)],
            received_on=day,
            status="DANG_XU_LY",
        )
    procedures = list(PROCEDURES)
    for organisation in ORGANISATIONS:
        for n in range(_GENERATED_PER_ORGANISATION):
            procedure = procedures[n % len(procedures)]
            applicant = data.citizens[rng.choice(data.sample.citizens)]
            book.receive(
                procedure=procedure,
                organisation=organisation,
                persons=[(p.identifier, p.role) for p in _persons(procedure, applicant, rng, data)],
                received_on=random_date(rng, REFERENCE_DATE - timedelta(days=60), REFERENCE_DATE),
                status=STATUSES[(n // len(procedures)) % len(STATUSES)],
            )
    return book
