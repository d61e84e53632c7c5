"""Reference values for ethnicity, religion, blood type and marital status.

Ethnic-group codes follow the GSO list of 54 groups (Decision 121-TCTK/PPCĐ); only the
first twenty are used here, with weights near their census shares.
"""

from typing import Final

ETHNIC_GROUPS: Final = (
    ("01", "Kinh", 8530),
    ("02", "Tày", 192),
    ("03", "Thái", 187),
    ("04", "Hoa", 78),
    ("05", "Khơ-me", 136),
    ("06", "Mường", 156),
    ("07", "Nùng", 116),
    ("08", "HMông", 148),
    ("09", "Dao", 93),
    ("10", "Gia-rai", 53),
    ("11", "Ngái", 1),
    ("12", "Ê-đê", 41),
    ("13", "Ba-na", 30),
    ("14", "Xơ-Đăng", 22),
    ("15", "Sán Chay", 21),
    ("16", "Cơ-ho", 21),
    ("17", "Chăm", 18),
    ("18", "Sán Dìu", 20),
    ("19", "Hrê", 15),
    ("20", "Mnông", 13),
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

ALIVE: Final = "Còn sống"
DECEASED: Final = "Đã mất"
