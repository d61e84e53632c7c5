"""Turn built people and households into the JSON-ready records the APIs serve."""

from typing import Any, Final

from sandbox._addresses import JSONObject
from sandbox._demographics import ALIVE, DECEASED
from sandbox._person import Household, Person

_NATIONALITY = ("VN",)

CITIZEN_FIELDS: Final = (
    "so_dinh_danh", "ho_ten", "ten_goi_khac", "ngay_sinh", "gioi_tinh",
    "noi_dang_ky_khai_sinh", "que_quan", "dan_toc", "ton_giao", "quoc_tich", "nhom_mau",
    "so_cmnd", "tinh_trang_hon_nhan", "noi_thuong_tru", "noi_tam_tru", "noi_o_hien_tai",
    "tam_vang", "ho_gia_dinh", "quan_he_voi_chu_ho", "cha", "me", "vo_chong",
    "nguoi_dai_dien", "con", "nguoi_duoc_dai_dien", "so_dien_thoai", "thu_dien_tu",
    "tinh_trang", "ngay_mat",
)  # fmt: skip
"""Source field names of a citizen record, in record order (valid in ``truong``)."""

HOUSEHOLD_FIELDS: Final = ("ma_ho", "chu_ho", "dia_chi", "thanh_vien")
"""Source field names of a household record."""


class Renderer:
    """Renders records, sharing one PERSON dict per citizen across all records."""

    def __init__(self) -> None:
        self._refs: dict[str, JSONObject] = {}
        self._households: dict[str, JSONObject] = {}

    def person(self, person: Person) -> JSONObject:
        """PERSON = {so_dinh_danh, ho_ten, quoc_tich}."""
        ref = self._refs.get(person.pid)
        if ref is None:
            ref = {
                "so_dinh_danh": person.pid,
                "ho_ten": person.full_name,
                "quoc_tich": list(_NATIONALITY),
            }
            self._refs[person.pid] = ref
        return ref

    def _optional(self, person: Person | None) -> JSONObject | None:
        return None if person is None else self.person(person)

    def household(self, household: Household) -> JSONObject:
        """HOUSEHOLD = {ma_ho, chu_ho, dia_chi, thanh_vien}."""
        record = self._households.get(household.ma_ho)
        if record is None:
            record = {
                "ma_ho": household.ma_ho,
                "chu_ho": self.person(household.members[0][0]),
                "dia_chi": household.address,
                "thanh_vien": [
                    {"cong_dan": self.person(member), "quan_he_voi_chu_ho": relation}
                    for member, relation in household.members
                ],
            }
            self._households[household.ma_ho] = record
        return record

    def citizen(self, person: Person) -> JSONObject:
        """The full citizen record, field order as in the API contract."""
        permanent = person.permanent
        record: dict[str, Any] = {
            "so_dinh_danh": person.pid,
            "ho_ten": person.full_name,
            "ten_goi_khac": list(person.other_names),
            "ngay_sinh": person.birth.isoformat(),
            "gioi_tinh": "Nữ" if person.female else "Nam",
            "noi_dang_ky_khai_sinh": person.birth_registration,
            "que_quan": person.hometown,
            "dan_toc": {"ma": person.ethnicity[0], "ten": person.ethnicity[1]},
            "ton_giao": person.religion,
            "quoc_tich": list(_NATIONALITY),
            "nhom_mau": person.blood,
            "so_cmnd": person.cmnd,
            "tinh_trang_hon_nhan": person.marital,
            "noi_thuong_tru": permanent,
            "noi_tam_tru": person.temporary,
            "noi_o_hien_tai": person.temporary or permanent,
            "tam_vang": person.absence,
            "ho_gia_dinh": None if person.household is None else self.household(person.household),
            "quan_he_voi_chu_ho": person.relation,
            "cha": self._optional(person.father),
            "me": self._optional(person.mother),
            "vo_chong": self._optional(person.spouse),
            "nguoi_dai_dien": self._optional(person.representative),
            "con": [self.person(child) for child in person.children],
            "nguoi_duoc_dai_dien": [self.person(p) for p in person.represented],
            "so_dien_thoai": person.phone,
            "thu_dien_tu": person.email,
            "tinh_trang": ALIVE if person.death is None else DECEASED,
            "ngay_mat": None if person.death is None else person.death.isoformat(),
        }
        return record
