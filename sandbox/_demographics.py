"""Reference values for ethnicity, religion, blood type and marital status.

Ethnic-group codes follow the GSO list of 54 groups (Decision 121-TCTK/PPCĐ). Only the
groups whose home provinces the domain reference gives are used (domain/vietnam.md §1,
"Where the larger ethnic groups live"), with weights near their census shares: Kinh live
everywhere, every other group only in its provinces (2025 codes). Where the reference
names one row of provinces for several groups (Xơ-đăng, Hrê, Cơ-tu; Mnông, Cơ-ho), each
group keeps to the part of the row it is best known for. Groups the reference does not
place (Ngái, Sán Chay, Sán Dìu among the first twenty codes) are left out.
"""

from typing import Final, NamedTuple


class EthnicGroup(NamedTuple):
    """A group of the GSO list, its weight, and the provinces it lives in (None: all)."""

    code: str
    name: str
    weight: int
    provinces: frozenset[int] | None


# The 2025 provinces (their codes) that the groups live in, by the names of the reference.
_PROVINCE_CODES: Final = {
    "Cao Bằng": 4, "Tuyên Quang": 8, "Điện Biên": 11, "Lai Châu": 12, "Sơn La": 14,
    "Lào Cai": 15, "Thái Nguyên": 19, "Lạng Sơn": 20, "Quảng Ninh": 22, "Phú Thọ": 25,
    "Thanh Hóa": 38, "Nghệ An": 40, "Đà Nẵng": 48, "Quảng Ngãi": 51, "Gia Lai": 52,
    "Khánh Hòa": 56, "Đắk Lắk": 66, "Lâm Đồng": 68, "Đồng Nai": 75, "Hồ Chí Minh": 79,
    "Vĩnh Long": 86, "An Giang": 91, "Cần Thơ": 92, "Cà Mau": 96,
}  # fmt: skip


def _in(*names: str) -> frozenset[int]:
    return frozenset(_PROVINCE_CODES[name] for name in names)


ETHNIC_GROUPS: Final = (
    EthnicGroup("01", "Kinh", 8530, None),
    EthnicGroup(
        "02", "Tày", 192, _in("Cao Bằng", "Lạng Sơn", "Tuyên Quang", "Thái Nguyên", "Lào Cai")
    ),
    EthnicGroup("03", "Thái", 187, _in("Sơn La", "Điện Biên", "Lai Châu", "Thanh Hóa", "Nghệ An")),
    EthnicGroup("04", "Hoa", 78, _in("Hồ Chí Minh", "Đồng Nai", "Cần Thơ", "An Giang")),
    EthnicGroup("05", "Khơ-me", 136, _in("Cần Thơ", "Vĩnh Long", "An Giang", "Cà Mau")),
    EthnicGroup("06", "Mường", 156, _in("Phú Thọ", "Thanh Hóa")),
    EthnicGroup("07", "Nùng", 116, _in("Lạng Sơn", "Cao Bằng", "Thái Nguyên", "Tuyên Quang")),
    EthnicGroup(
        "08",
        "HMông",
        148,
        _in("Tuyên Quang", "Lào Cai", "Điện Biên", "Lai Châu", "Sơn La", "Nghệ An"),
    ),
    EthnicGroup(
        "09", "Dao", 93, _in("Tuyên Quang", "Lào Cai", "Cao Bằng", "Quảng Ninh", "Thái Nguyên")
    ),
    EthnicGroup("10", "Gia-rai", 53, _in("Gia Lai", "Đắk Lắk")),
    EthnicGroup("12", "Ê-đê", 41, _in("Đắk Lắk")),
    EthnicGroup("13", "Ba-na", 30, _in("Gia Lai", "Quảng Ngãi")),
    EthnicGroup("14", "Xơ-Đăng", 22, _in("Quảng Ngãi", "Đà Nẵng")),
    EthnicGroup("16", "Cơ-ho", 21, _in("Lâm Đồng")),
    EthnicGroup("17", "Chăm", 18, _in("Khánh Hòa", "Lâm Đồng", "An Giang")),
    EthnicGroup("19", "Hrê", 15, _in("Quảng Ngãi")),
    EthnicGroup("20", "Mnông", 13, _in("Lâm Đồng", "Đắk Lắk")),
)

RELIGIONS: Final = (
    ("Không", 8600),
    ("Công giáo", 620),
    ("Phật giáo", 490),
    ("Tin Lành", 100),
    ("Cao Đài", 100),
    ("Phật giáo Hòa Hảo", 90),
)

BLOOD_TYPES: Final = (("O", 42), ("B", 30), ("A", 21), ("AB", 7))

SINGLE: Final = "Độc thân"
MARRIED: Final = "Đã kết hôn"
DIVORCED: Final = "Ly hôn"
WIDOWED: Final = "Góa"

MARRIAGE_AGE_MAN: Final = 20
MARRIAGE_AGE_WOMAN: Final = 18
"""Law on Marriage and Family No. 52/2014/QH13 Art. 8(1)(a): a man may marry from full
20 years of age, a woman from full 18. Below it a person is single: never married, so
never divorced or widowed either."""


def may_have_married(*, female: bool, age: int) -> bool:
    """Whether someone of this sex and age (on the day the status is read) can have married."""
    return age >= (MARRIAGE_AGE_WOMAN if female else MARRIAGE_AGE_MAN)


ALIVE: Final = "Còn sống"
DECEASED: Final = "Đã mất"
