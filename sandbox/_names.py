"""Vietnamese personal names: family name, middle name, given name, in that order.

Faker's ``vi_VN`` person provider writes names in Western order from short lists, so
the pools are kept here. Family-name weights follow the commonly cited shares
(Nguyễn about 38 %, Trần 11 %, Lê 9.5 %, ...).
"""

import random
import unicodedata
from typing import Final

_FAMILY: Final = (
    ("Nguyễn", 380),
    ("Trần", 110),
    ("Lê", 95),
    ("Phạm", 70),
    ("Hoàng", 30),
    ("Huỳnh", 20),
    ("Phan", 45),
    ("Vũ", 22),
    ("Võ", 18),
    ("Đặng", 21),
    ("Bùi", 20),
    ("Đỗ", 14),
    ("Hồ", 13),
    ("Ngô", 13),
    ("Dương", 10),
    ("Lý", 5),
    ("Đinh", 6),
    ("Trương", 6),
    ("Lương", 4),
    ("Mai", 4),
    ("Trịnh", 4),
    ("Đào", 4),
    ("Cao", 3),
    ("Lâm", 3),
    ("Tạ", 2),
    ("Hà", 3),
    ("Tô", 2),
    ("Quách", 1),
    ("Vương", 1),
    ("Lò", 1),
)
FAMILY_NAMES: Final = tuple(name for name, _ in _FAMILY)
_FAMILY_WEIGHTS: Final = tuple(weight for _, weight in _FAMILY)

MIDDLE_MALE: Final = (
    "Văn", "Văn", "Văn", "Đức", "Minh", "Quang", "Hữu", "Thành", "Công", "Xuân",
    "Gia", "Anh", "Hoàng", "Ngọc", "Trọng", "Thanh", "Quốc", "Tiến", "Bảo", "Đình",
)  # fmt: skip
MIDDLE_FEMALE: Final = (
    "Thị", "Thị", "Thị", "Ngọc", "Thu", "Thanh", "Minh", "Phương", "Kim", "Bảo",
    "Hồng", "Khánh", "Mai", "Thùy", "Diệu", "Hoài", "Bích", "Kiều", "Ánh", "Tuyết",
)  # fmt: skip
GIVEN_MALE: Final = (
    "An", "Anh", "Bảo", "Bình", "Cường", "Dũng", "Duy", "Đạt", "Đức", "Giang",
    "Hải", "Hiếu", "Hòa", "Hoàng", "Hùng", "Huy", "Hưng", "Khang", "Khánh", "Khoa",
    "Kiên", "Lâm", "Long", "Luân", "Minh", "Nam", "Nghĩa", "Nhân", "Phát", "Phong",
    "Phúc", "Quân", "Quang", "Sơn", "Tài", "Thắng", "Thành", "Thiện", "Thịnh", "Toàn",
    "Trí", "Trung", "Tuấn", "Tùng", "Việt", "Vinh", "Vũ",
)  # fmt: skip
GIVEN_FEMALE: Final = (
    "Anh", "Ánh", "Bích", "Châu", "Chi", "Dung", "Duyên", "Giang", "Hà", "Hạnh",
    "Hằng", "Hiền", "Hoa", "Hồng", "Huyền", "Hương", "Lan", "Linh", "Loan", "Ly",
    "Mai", "My", "Nga", "Ngân", "Ngọc", "Nhung", "Oanh", "Phương", "Quỳnh", "Tâm",
    "Thảo", "Thu", "Thúy", "Trang", "Trinh", "Tuyết", "Uyên", "Vân", "Vy", "Xuân",
    "Yến",
)  # fmt: skip


def family_name(rng: random.Random) -> str:
    """A family name drawn with realistic weights."""
    return rng.choices(FAMILY_NAMES, weights=_FAMILY_WEIGHTS)[0]


def given_names(rng: random.Random, *, female: bool) -> tuple[str, str]:
    """A (middle, given) pair for the given sex."""
    if female:
        return rng.choice(MIDDLE_FEMALE), rng.choice(GIVEN_FEMALE)
    return rng.choice(MIDDLE_MALE), rng.choice(GIVEN_MALE)


def ascii_fold(text: str) -> str:
    """Lower-case ASCII without diacritics ("Đặng Thị Ánh" -> "dang thi anh")."""
    text = text.replace("Đ", "D").replace("đ", "d")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
