"""Synthetic enterprises from the business registry, with adult citizens as representatives,
and the registration certificates the registry signs (enterprises, household businesses)."""

import itertools
import random
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Final

from sandbox._addresses import AddressMaker, JSONObject
from sandbox._dates import REFERENCE_DATE, add_years, random_date
from sandbox._documents import DocumentFields, DocumentStore, render_file
from sandbox._geography import province_by_code
from sandbox._identifiers import TaxCodeIssuer
from sandbox._names import ascii_fold
from sandbox._person import Person
from sandbox._signing import RegistryKey

# (loai_hinh, Vietnamese name prefix, English suffix, abbreviation, weight, titles)
_KINDS: Final = (
    (
        "Công ty trách nhiệm hữu hạn một thành viên",
        "CÔNG TY TNHH",
        "COMPANY LIMITED",
        "CO., LTD",
        45,
        ("Giám đốc",),
    ),
    (
        "Công ty trách nhiệm hữu hạn hai thành viên trở lên",
        "CÔNG TY TNHH",
        "COMPANY LIMITED",
        "CO., LTD",
        25,
        ("Giám đốc", "Chủ tịch Hội đồng thành viên"),
    ),
    (
        "Công ty cổ phần",
        "CÔNG TY CỔ PHẦN",
        "JOINT STOCK COMPANY",
        "JSC",
        30,
        ("Giám đốc", "Tổng giám đốc"),
    ),
)
_KIND_WEIGHTS: Final = tuple(kind[4] for kind in _KINDS)

# (VSIC 2018 code, its title, trade words in the Vietnamese name, in the English name)
_INDUSTRIES: Final = (
    ("4610", "Đại lý, môi giới, đấu giá hàng hóa", "THƯƠNG MẠI DỊCH VỤ", "TRADING SERVICES"),
    ("4101", "Xây dựng nhà để ở", "XÂY DỰNG", "CONSTRUCTION"),
    ("4102", "Xây dựng nhà không để ở", "ĐẦU TƯ XÂY DỰNG", "CONSTRUCTION INVESTMENT"),
    (
        "4663",
        "Bán buôn vật liệu, thiết bị lắp đặt khác trong xây dựng",
        "VẬT LIỆU XÂY DỰNG",
        "BUILDING MATERIALS",
    ),
    ("4632", "Bán buôn thực phẩm", "THỰC PHẨM", "FOOD"),
    ("4933", "Vận tải hàng hóa bằng đường bộ", "VẬN TẢI", "TRANSPORT"),
    (
        "5610",
        "Nhà hàng và các dịch vụ ăn uống phục vụ lưu động",
        "DỊCH VỤ ĂN UỐNG",
        "FOOD SERVICES",
    ),
    ("5510", "Dịch vụ lưu trú ngắn ngày", "DU LỊCH KHÁCH SẠN", "HOTEL AND TOURISM"),
    ("6201", "Lập trình máy vi tính", "CÔNG NGHỆ PHẦN MỀM", "SOFTWARE TECHNOLOGY"),
    (
        "6202",
        "Tư vấn máy vi tính và quản trị hệ thống máy vi tính",
        "GIẢI PHÁP CÔNG NGHỆ",
        "TECHNOLOGY SOLUTIONS",
    ),
    ("7020", "Hoạt động tư vấn quản lý", "TƯ VẤN QUẢN LÝ", "MANAGEMENT CONSULTING"),
    (
        "7110",
        "Hoạt động kiến trúc và tư vấn kỹ thuật có liên quan",
        "TƯ VẤN THIẾT KẾ",
        "DESIGN CONSULTING",
    ),
    (
        "6810",
        "Kinh doanh bất động sản, quyền sử dụng đất thuộc chủ sở hữu, chủ sử dụng hoặc đi thuê",
        "BẤT ĐỘNG SẢN",
        "REAL ESTATE",
    ),
    ("1410", "May trang phục (trừ trang phục từ da lông thú)", "MAY MẶC", "GARMENT"),
    (
        "4520",
        "Bảo dưỡng, sửa chữa ô tô và xe có động cơ khác",
        "DỊCH VỤ Ô TÔ",
        "AUTOMOBILE SERVICES",
    ),
    ("8559", "Giáo dục khác chưa được phân vào đâu", "GIÁO DỤC", "EDUCATION"),
    ("0118", "Trồng rau, đậu các loại và trồng hoa", "NÔNG NGHIỆP", "AGRICULTURE"),
    (
        "4669",
        "Bán buôn chuyên doanh khác chưa được phân vào đâu",
        "XUẤT NHẬP KHẨU",
        "IMPORT EXPORT",
    ),
)
_BRAND_FIRST: Final = (
    "An", "Hưng", "Thành", "Minh", "Phú", "Việt", "Đại", "Tân", "Hoàng", "Kim",
    "Nam", "Bảo", "Trường", "Thiên", "Phúc", "Sao", "Đông", "Hải", "Quang", "Gia",
)  # fmt: skip
_BRAND_SECOND: Final = (
    "Phát", "Thịnh", "Long", "Quý", "Tiến", "Khang", "Lộc", "Thành", "Hưng", "Việt",
    "An", "Minh", "Sơn", "Phong", "Nguyên", "Đạt", "Mai", "Á", "Hòa", "Vinh",
)  # fmt: skip
_STATUSES: Final = ("Đang hoạt động", "Tạm ngừng kinh doanh", "Đã giải thể")
_STATUS_WEIGHTS: Final = (88, 7, 5)
ACTIVE: Final = _STATUSES[0]
# Provincial tax-office prefixes of the four biggest cities; others get a stable number.
_TAX_PREFIXES: Final = {1: "01", 31: "02", 79: "03", 48: "04"}
_FIRST_FOUNDING: Final = date(1995, 1, 1)

BUSINESS_FIELDS: Final = (
    "ma_so_doanh_nghiep",
    "ten_doanh_nghiep",
    "ten_nuoc_ngoai",
    "ten_viet_tat",
    "loai_hinh",
    "ngay_thanh_lap",
    "tinh_trang",
    "dia_chi_tru_so",
    "von_dieu_le",
    "nganh_nghe_chinh",
    "nguoi_dai_dien_phap_luat",
)
"""Source field names of an enterprise record, in record order (valid in ``truong``)."""


def _tax_prefix(province_code: int) -> str:
    if province_code in _TAX_PREFIXES:
        return _TAX_PREFIXES[province_code]
    others = [code for code in sorted(province_by_code()) if code not in _TAX_PREFIXES]
    return f"{10 + others.index(province_code):02d}"


class BusinessBuilder:
    """Builds enterprise records; one use per instance."""

    def __init__(self, rng: random.Random, addresses: AddressMaker) -> None:
        self._rng = rng
        self._addresses = addresses
        self._tax_codes = TaxCodeIssuer(rng)
        self._names: set[str] = set()

    def build(self, count: int, representatives: list[Person]) -> list[JSONObject]:
        """``count`` enterprises whose legal representatives are drawn from ``representatives``."""
        if count and not representatives:
            raise ValueError("no adult citizen to act as legal representative")
        return [self._business(self._rng.choice(representatives)) for _ in range(count)]

    def _business(self, representative: Person) -> JSONObject:
        rng = self._rng
        kind_name, prefix, english_kind, abbreviation, _, titles = rng.choices(
            _KINDS, weights=_KIND_WEIGHTS
        )[0]
        code, industry, trade_vi, trade_en = rng.choice(_INDUSTRIES)
        ward = self._addresses.ward(business=True)
        brand = self._brand(prefix, trade_vi, ward.short_name)
        brand_ascii = ascii_fold(brand).upper()
        last_day = REFERENCE_DATE - timedelta(days=1)
        earliest = min(max(_FIRST_FOUNDING, add_years(representative.birth, 18)), last_day)
        founded = random_date(rng, earliest, last_day)
        capital = round(10 ** rng.uniform(8.5, 12.5), -6)
        return {
            "ma_so_doanh_nghiep": self._tax_codes.issue(_tax_prefix(ward.province_code)),
            "ten_doanh_nghiep": f"{prefix} {trade_vi} {brand.upper()}",
            "ten_nuoc_ngoai": (
                f"{brand_ascii} {trade_en} {english_kind}" if rng.random() < 0.75 else None
            ),
            "ten_viet_tat": f"{brand_ascii} {abbreviation}" if rng.random() < 0.7 else None,
            "loai_hinh": kind_name,
            "ngay_thanh_lap": founded.isoformat(),
            "tinh_trang": rng.choices(_STATUSES, weights=_STATUS_WEIGHTS)[0],
            "dia_chi_tru_so": self._addresses.address(ward, moved_in=rng.random() < 0.05),
            "von_dieu_le": int(capital),
            "nganh_nghe_chinh": {"ma": code, "ten": industry},
            "nguoi_dai_dien_phap_luat": {
                "so_dinh_danh": representative.pid,
                "ho_ten": representative.full_name,
                "chuc_danh": rng.choice(titles),
                "quoc_tich": ["VN"],
            },
        }

    def _brand(self, prefix: str, trade: str, place: str) -> str:
        """A brand that makes the full name unique (the registry refuses duplicates)."""
        rng = self._rng
        first = rng.choice(_BRAND_FIRST)
        second = rng.choice([b for b in _BRAND_SECOND if b != first])
        numbered = (f"{first} {second} {n}" for n in range(2, 10_000))
        for brand in itertools.chain((f"{first} {second}", f"{first} {second} {place}"), numbered):
            name = f"{prefix} {trade} {brand.upper()}"
            if name not in self._names:
                self._names.add(name)
                return brand
        raise RuntimeError("ran out of business names")


# --- Signed registration certificates -------------------------------------------------

ENTERPRISE_CERTIFICATE: Final = "DKDN"
HOUSEHOLD_CERTIFICATE: Final = "DKHKD"
DOCUMENT_SEED_OFFSET: Final = 4
"""Household businesses are drawn from a ``random.Random(seed + 4)`` of their own."""
HOUSEHOLD_SHARE: Final = 1 / 20
"""About one adult living citizen in twenty runs a registered household business."""
_HOUSEHOLD_CODE: Final = "1.001612"
"""National code of household business registration (policies/catalogue)."""
_HOUSEHOLD_FIRST: Final = date(2010, 1, 1)

DOCUMENT_FIELDS: Final = DocumentFields(
    number="so_giay",
    title="ten_giay",
    holders="chu_the",
    sha256="sha256",
    signature="chu_ky",
    signed=(
        "so_giay",
        "loai",
        "ten_giay",
        "co_quan_cap",
        "ngay_cap",
        "ma_thu_tuc",
        "chu_the",
        "sha256",
    ),
)
"""The source names of a registration certificate and the fields its JWS covers."""


def build_documents(
    seed: int,
    businesses: Mapping[str, JSONObject],
    citizens: Mapping[str, JSONObject],
    key: RegistryKey,
) -> DocumentStore:
    """The registry's certificates: one per enterprise, one per household business.

    An enterprise's certificate (number ``DN-`` and its code) was issued on its founding
    day by the business registration office of its head office's province; there is no
    national code of the first registration in the catalogue, so ``ma_thu_tuc`` is null.
    """
    store = DocumentStore(key, DOCUMENT_FIELDS)
    for code in sorted(businesses):
        business = businesses[code]
        office = f"Phòng Đăng ký kinh doanh - Sở Tài chính {business['dia_chi_tru_so']['ten_tinh']}"
        record = {
            "so_giay": f"DN-{code}",
            "loai": ENTERPRISE_CERTIFICATE,
            "ten_giay": "Giấy chứng nhận đăng ký doanh nghiệp",
            "co_quan_cap": office,
            "ngay_cap": business["ngay_thanh_lap"],
            "ma_thu_tuc": None,
            "chu_the": [code],
        }
        lines = [
            f"Tên doanh nghiệp: {business['ten_doanh_nghiep']}",
            f"Mã số doanh nghiệp: {code}",
            f"Loại hình: {business['loai_hinh']}",
            f"Vốn điều lệ: {business['von_dieu_le']} đồng",
        ]
        store.issue(record, _certificate_file(record, lines))
    rng = random.Random(seed + DOCUMENT_SEED_OFFSET)  # noqa: S311  # nosec B311
    numbers: dict[int, int] = {}
    last_day = REFERENCE_DATE - timedelta(days=1)
    for pid in sorted(citizens):
        citizen = citizens[pid]
        drawn = rng.random() < HOUSEHOLD_SHARE
        address = citizen["noi_thuong_tru"]
        born = date.fromisoformat(citizen["ngay_sinh"])
        if not drawn or citizen["ngay_mat"] is not None or address is None:
            continue
        earliest = max(add_years(born, 18), _HOUSEHOLD_FIRST)
        if earliest > last_day:
            continue
        issued = random_date(rng, earliest, last_day)
        province = address["ma_tinh"]
        numbers[province] = numbers.get(province, 0) + 1
        record = {
            "so_giay": f"HKD-{province:02d}-{numbers[province]:06d}",
            "loai": HOUSEHOLD_CERTIFICATE,
            "ten_giay": "Giấy chứng nhận đăng ký hộ kinh doanh",
            "co_quan_cap": f"UBND {address['ten_xa']}",
            "ngay_cap": issued.isoformat(),
            "ma_thu_tuc": _HOUSEHOLD_CODE,
            "chu_the": [pid],
        }
        lines = [
            f"Chủ hộ kinh doanh: {citizen['ho_ten']}",
            f"Số định danh cá nhân: {pid}",
            f"Địa điểm kinh doanh: {address['chi_tiet']}, {address['ten_xa']}, "
            f"{address['ten_tinh']}",
        ]
        store.issue(record, _certificate_file(record, lines))
    return store


def _certificate_file(record: JSONObject, lines: list[str]) -> bytes:
    return render_file(
        record["ten_giay"], record["so_giay"], lines, record["co_quan_cap"], record["ngay_cap"]
    )
