"""A land registry (cơ sở dữ liệu đất đai) derived from the synthetic population.

Every household holds its home parcel at its own address, jointly by its adult members
(co-holders of a "hộ gia đình sử dụng đất"); about 30 % of households also hold an
agricultural parcel in their ward (the head alone, or with the spouse); some active
enterprises hold the parcel of their head office. About 20 % of home parcels carry a
mortgage that is still registered, a few more one that was released.

The draws come from a ``random.Random`` of their own, seeded ``settings.seed + 1``: the
population and business records, drawn from the dataset's generator, stay as they were.
A parcel is identified by ward code, map sheet number (số tờ bản đồ) and parcel number
(số thửa), unique together, and by the text ``ma_thua`` made from the three.

The tables are written with plain SQL that SQLite and PostgreSQL both read: into a SQLite
file (``write_sqlite``, the demo's land database) or a PostgreSQL schema
(``write_postgres``, for tests).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import os
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from sandbox._addresses import JSONObject
from sandbox._businesses import ACTIVE
from sandbox._data import Dataset, generate
from sandbox._dates import REFERENCE_DATE, add_years, age_on, random_date
from sandbox._person import ADULT_AGE
from sandbox.config import SandboxSettings

FORMAT: Final = 1
"""Bumped when the tables or the way they are drawn change: an older file is rewritten."""

LAND_USES: Final = {
    "ODT": "Đất ở tại đô thị",
    "ONT": "Đất ở tại nông thôn",
    "LUC": "Đất chuyên trồng lúa nước",
    "BHK": "Đất bằng trồng cây hằng năm khác",
    "CLN": "Đất trồng cây lâu năm",
    "NTS": "Đất nuôi trồng thủy sản",
    "RSX": "Đất rừng sản xuất",
    "TMD": "Đất thương mại, dịch vụ",
    "SKC": "Đất cơ sở sản xuất phi nông nghiệp",
}
"""Land-use codes (mục đích sử dụng đất) the registry uses, with their Vietnamese names."""

PERSON: Final = "CN"
"""`loai_chu` of an individual holder (cá nhân): `ma_dinh_danh` is a personal id."""
ORGANISATION: Final = "TC"
"""`loai_chu` of an organisation (tổ chức): `ma_dinh_danh` is a tax code."""
MORTGAGE: Final = "Thế chấp"

_FARM_USES: Final = ("LUC", "LUC", "BHK", "CLN", "CLN", "NTS", "RSX")
_FIELD_PLACES: Final = (
    "Đồng Sau", "Đồng Trước", "Gò Cao", "Bãi Dài", "Bàu Sen", "Cửa Đình", "Đồng Chiêm",
    "Ruộng Trũng", "Gò Mả", "Bãi Bồi", "Đồng Mới", "Cây Đa",
)  # fmt: skip
_BANKS: Final = (
    "Ngân hàng TMCP Ngoại thương Việt Nam (Vietcombank)",
    "Ngân hàng TMCP Đầu tư và Phát triển Việt Nam (BIDV)",
    "Ngân hàng Nông nghiệp và Phát triển Nông thôn Việt Nam (Agribank)",
    "Ngân hàng TMCP Công Thương Việt Nam (VietinBank)",
    "Ngân hàng TMCP Kỹ thương Việt Nam (Techcombank)",
    "Ngân hàng TMCP Quân đội (MB)",
    "Ngân hàng TMCP Á Châu (ACB)",
    "Ngân hàng TMCP Việt Nam Thịnh Vượng (VPBank)",
)
_BANK_WEIGHTS: Final = (20, 18, 25, 15, 7, 6, 5, 4)
_SERIAL_PREFIXES: Final = ("AA", "AB", "AC", "AD", "AE", "AG", "AH", "AK", "BA", "BB")
_FIRST_CERTIFICATES: Final = datetime.date(1994, 1, 1)
_HOME_MORTGAGED: Final = 0.20
_HOME_RELEASED: Final = 0.10
_FARM_SHARE: Final = 0.30
_ENTERPRISE_SHARE: Final = 0.40
_ENTERPRISE_MORTGAGED: Final = 0.35
_KEPT_RELATIONS: Final = frozenset({"Chủ hộ", "Vợ", "Chồng"})

TABLES: Final = ("thua_dat", "giay_chung_nhan", "chu_su_dung", "the_chap")
"""The registry's tables, in the order they are written."""

_DDL: Final = (
    """CREATE TABLE {p}thua_dat (
    ma_thua VARCHAR(40) PRIMARY KEY,
    ma_tinh VARCHAR(2) NOT NULL,
    ten_tinh VARCHAR(100) NOT NULL,
    ma_xa VARCHAR(5) NOT NULL,
    ten_xa VARCHAR(100) NOT NULL,
    so_to_ban_do INTEGER NOT NULL,
    so_thua INTEGER NOT NULL,
    dia_chi_chi_tiet VARCHAR(200) NOT NULL,
    dien_tich NUMERIC(12, 1) NOT NULL,
    muc_dich_su_dung VARCHAR(3) NOT NULL,
    thoi_han_su_dung VARCHAR(40) NOT NULL,
    UNIQUE (ma_xa, so_to_ban_do, so_thua)
)""",
    """CREATE TABLE {p}giay_chung_nhan (
    so_seri VARCHAR(20) PRIMARY KEY,
    so_vao_so VARCHAR(20) NOT NULL,
    ngay_cap DATE NOT NULL,
    co_quan_cap VARCHAR(200) NOT NULL,
    ma_thua VARCHAR(40) NOT NULL UNIQUE REFERENCES {p}thua_dat (ma_thua)
)""",
    """CREATE TABLE {p}chu_su_dung (
    ma_thua VARCHAR(40) NOT NULL REFERENCES {p}thua_dat (ma_thua),
    thu_tu INTEGER NOT NULL,
    loai_chu VARCHAR(2) NOT NULL CHECK (loai_chu IN ('CN', 'TC')),
    ma_dinh_danh VARCHAR(14) NOT NULL,
    ho_ten VARCHAR(200) NOT NULL,
    quan_he VARCHAR(60),
    PRIMARY KEY (ma_thua, thu_tu)
)""",
    """CREATE TABLE {p}the_chap (
    ma_dang_ky VARCHAR(20) PRIMARY KEY,
    ma_thua VARCHAR(40) NOT NULL REFERENCES {p}thua_dat (ma_thua),
    loai VARCHAR(40) NOT NULL,
    ben_nhan VARCHAR(200) NOT NULL,
    ngay_dang_ky DATE NOT NULL,
    ngay_xoa DATE
)""",
    "CREATE INDEX ix_chu_su_dung_ma_dinh_danh ON {p}chu_su_dung (ma_dinh_danh)",
    "CREATE INDEX ix_chu_su_dung_ma_thua ON {p}chu_su_dung (ma_thua)",
    "CREATE INDEX ix_the_chap_ma_thua ON {p}the_chap (ma_thua)",
    "CREATE INDEX ix_giay_chung_nhan_ma_thua ON {p}giay_chung_nhan (ma_thua)",
)
_META: Final = "CREATE TABLE {p}_sandbox (khoa VARCHAR(40) PRIMARY KEY, gia_tri TEXT NOT NULL)"

Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class LandRegistry:
    """The registry's rows, table by table, in column order of the DDL."""

    settings: JSONObject
    """What it was made from: citizens, businesses, seed and the format."""
    thua_dat: tuple[Row, ...]
    giay_chung_nhan: tuple[Row, ...]
    chu_su_dung: tuple[Row, ...]
    the_chap: tuple[Row, ...]

    def rows(self, table: str) -> tuple[Row, ...]:
        """The rows of ``table`` (one of :data:`TABLES`)."""
        if table not in TABLES:
            raise KeyError(table)
        rows: tuple[Row, ...] = getattr(self, table)
        return rows

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        return {table: len(self.rows(table)) for table in TABLES}


def made_from(settings: SandboxSettings) -> JSONObject:
    """The settings a registry depends on, as stored in its ``_sandbox`` table."""
    return {
        "citizens": settings.citizens,
        "businesses": settings.businesses,
        "seed": settings.seed,
        "format": FORMAT,
    }


def build(settings: SandboxSettings, dataset: Dataset | None = None) -> LandRegistry:
    """The land registry of ``dataset`` (generated from ``settings`` when not given)."""
    data = dataset if dataset is not None else generate(settings)
    return _Builder(random.Random(settings.seed + 1)).build(data, made_from(settings))  # noqa: S311  # nosec B311


class _Builder:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[tuple[str, int, int]] = set()
        self._serials: set[str] = set()
        self._book: dict[str, int] = {}
        self.parcels: list[Row] = []
        self.certificates: list[Row] = []
        self.holders: list[Row] = []
        self.mortgages: list[Row] = []

    def build(self, data: Dataset, settings: JSONObject) -> LandRegistry:
        rng = self._rng
        for household in data.households.values():
            adults = [
                (member["cong_dan"], member["quan_he_voi_chu_ho"])
                for member in household["thanh_vien"]
                if _adult(data.citizens[member["cong_dan"]["so_dinh_danh"]])
            ]
            if not adults:
                continue
            address = household["dia_chi"]
            urban = address["ten_xa"].startswith("Phường")
            area = rng.uniform(40, 160) if urban else rng.uniform(150, 700)
            home = self._parcel(
                address, address["chi_tiet"], area, "ODT" if urban else "ONT", "Lâu dài"
            )
            for order, (person, relation) in enumerate(adults, 1):
                kept = relation if relation in _KEPT_RELATIONS else "Thành viên"
                self._holder(home, order, PERSON, person["so_dinh_danh"], person["ho_ten"], kept)
            issued = self._certificate(home, address)
            roll = rng.random()
            if roll < _HOME_MORTGAGED:
                self._mortgage(home, address["ten_tinh"], issued, released=False)
            elif roll < _HOME_MORTGAGED + _HOME_RELEASED:
                self._mortgage(home, address["ten_tinh"], issued, released=True)
            if rng.random() < _FARM_SHARE:
                self._farm(address, adults)
        for business in data.businesses.values():
            code = business["ma_so_doanh_nghiep"]
            if business["tinh_trang"] != ACTIVE or len(code) != 10:
                continue
            if rng.random() >= _ENTERPRISE_SHARE:
                continue
            office = business["dia_chi_tru_so"]
            use = rng.choice(("TMD", "TMD", "SKC"))
            area = rng.uniform(80, 2000) if use == "TMD" else rng.uniform(1000, 20000)
            parcel = self._parcel(office, office["chi_tiet"], area, use, "Đến năm 2070")
            self._holder(parcel, 1, ORGANISATION, code, business["ten_doanh_nghiep"], None)
            founded = datetime.date.fromisoformat(business["ngay_thanh_lap"])
            issued = self._certificate(parcel, office, earliest=founded)
            if rng.random() < _ENTERPRISE_MORTGAGED:
                self._mortgage(parcel, office["ten_tinh"], issued, released=False)
        return LandRegistry(
            settings=settings,
            thua_dat=tuple(self.parcels),
            giay_chung_nhan=tuple(self.certificates),
            chu_su_dung=tuple(self.holders),
            the_chap=tuple(self.mortgages),
        )

    def _farm(self, address: JSONObject, adults: list[tuple[JSONObject, str]]) -> None:
        rng = self._rng
        head = next(((p, r) for p, r in adults if r == "Chủ hộ"), None)
        if head is None:
            return
        spouse = next(((p, r) for p, r in adults if r in ("Vợ", "Chồng")), None)
        use = rng.choice(_FARM_USES)
        detail = f"{rng.choice(('Xứ đồng', 'Cánh đồng', 'Khu'))} {rng.choice(_FIELD_PLACES)}"
        term = "Đến năm 2063" if use != "RSX" else "Đến năm 2074"
        parcel = self._parcel(address, detail, rng.uniform(300, 5000), use, term)
        holders = [head] if spouse is None or rng.random() < 0.4 else [head, spouse]
        for order, (person, relation) in enumerate(holders, 1):
            self._holder(parcel, order, PERSON, person["so_dinh_danh"], person["ho_ten"], relation)
        issued = self._certificate(parcel, address)
        if rng.random() < 0.08:
            self._mortgage(parcel, address["ten_tinh"], issued, released=rng.random() < 0.3)

    def _parcel(self, address: JSONObject, detail: str, area: float, use: str, term: str) -> str:
        rng = self._rng
        ward = f"{address['ma_xa']:05d}"
        while True:
            sheet, number = rng.randint(1, 90), rng.randint(1, 900)
            if (ward, sheet, number) not in self._used:
                self._used.add((ward, sheet, number))
                break
        ma_thua = f"{ward}-{sheet}-{number}"
        self.parcels.append(
            (
                ma_thua,
                f"{address['ma_tinh']:02d}",
                address["ten_tinh"],
                ward,
                address["ten_xa"],
                sheet,
                number,
                detail,
                round(area, 1),
                use,
                term,
            )
        )
        return ma_thua

    def _holder(
        self, parcel: str, order: int, kind: str, ident: str, name: str, relation: str | None
    ) -> None:
        self.holders.append((parcel, order, kind, ident, name, relation))

    def _certificate(
        self, parcel: str, address: JSONObject, *, earliest: datetime.date | None = None
    ) -> datetime.date:
        rng = self._rng
        while True:
            serial = f"{rng.choice(_SERIAL_PREFIXES)} {rng.randrange(100_000_000):08d}"
            if serial not in self._serials:
                self._serials.add(serial)
                break
        last = REFERENCE_DATE - datetime.timedelta(days=1)
        start = min(max(earliest or _FIRST_CERTIFICATES, _FIRST_CERTIFICATES), last)
        issued = random_date(rng, start, last)
        ward = parcel.split("-", 1)[0]
        self._book[ward] = self._book.get(ward, 0) + 1
        entry = f"CS {self._book[ward]:05d}"
        office = f"Văn phòng đăng ký đất đai {address['ten_tinh']}"
        self.certificates.append((serial, entry, issued, office, parcel))
        return issued

    def _mortgage(
        self, parcel: str, province: str, issued: datetime.date, *, released: bool
    ) -> None:
        rng = self._rng
        bank = rng.choices(_BANKS, weights=_BANK_WEIGHTS)[0]
        branch = rng.choice(("Chi nhánh", "Phòng giao dịch"))
        holder = f"{bank} - {branch} {province}"
        registered = random_date(rng, issued, REFERENCE_DATE - datetime.timedelta(days=1))
        cleared = None
        if released:
            end = min(add_years(registered, 10), REFERENCE_DATE - datetime.timedelta(days=1))
            cleared = random_date(rng, registered, end)
        code = f"TC{len(self.mortgages) + 1:08d}"
        self.mortgages.append((code, parcel, MORTGAGE, holder, registered, cleared))


def _adult(citizen: JSONObject) -> bool:
    birth = datetime.date.fromisoformat(citizen["ngay_sinh"])
    return citizen["ngay_mat"] is None and age_on(birth, REFERENCE_DATE) >= ADULT_AGE


# -- writing --------------------------------------------------------------------------------


def ddl(schema: str | None = None) -> list[str]:
    """The statements that create the tables (in ``schema``, for PostgreSQL)."""
    prefix = "" if schema is None else f"{schema}."
    return [statement.format(p=prefix) for statement in (*_DDL, _META)]


def _insert(table: str, width: int, prefix: str = "", marker: str = "?") -> str:
    if marker == "?":
        values = ", ".join("?" * width)
    else:
        values = ", ".join(f"${i}" for i in range(1, width + 1))
    return f"INSERT INTO {prefix}{table} VALUES ({values})"  # noqa: S608  # nosec B608


def _sqlite_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime.date) else value


def _meta_rows(land: LandRegistry) -> list[tuple[str, str]]:
    return [("settings", json.dumps(land.settings, sort_keys=True))]


def stored_settings(path: Path) -> JSONObject | None:
    """The settings a SQLite land database was made from, or None (missing, not one)."""
    if not path.is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT gia_tri FROM _sandbox WHERE khoa = 'settings'").fetchone()
    except sqlite3.Error:
        return None
    if row is None:
        return None
    value = json.loads(row[0])
    return value if isinstance(value, dict) else None


def write_sqlite(path: Path, land: LandRegistry) -> None:
    """Write ``land`` to a SQLite file at ``path``: a temporary file, renamed when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    try:
        with contextlib.closing(sqlite3.connect(temporary)) as db:
            db.execute("PRAGMA journal_mode = OFF")
            db.execute("PRAGMA synchronous = OFF")
            with db:
                for statement in ddl():
                    db.execute(statement)
                for table in TABLES:
                    rows = land.rows(table)
                    if rows:
                        db.executemany(
                            _insert(table, len(rows[0])),
                            ([_sqlite_value(v) for v in row] for row in rows),
                        )
                db.executemany(_insert("_sandbox", 2), _meta_rows(land))
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def _postgres_value(value: Any) -> Any:
    return Decimal(str(value)) if isinstance(value, float) else value


async def write_postgres(target: Any, schema: str, land: LandRegistry) -> None:
    """Create ``schema`` and the registry's tables in PostgreSQL and fill them.

    ``target`` is a ``postgresql://`` URL or an open ``asyncpg`` connection. The schema
    must not hold the tables yet.
    """
    import asyncpg

    if not schema.isidentifier() or not schema.isascii():
        raise ValueError(f"not a plain schema name: {schema!r}")
    connection = await asyncpg.connect(target) if isinstance(target, str) else target
    try:
        async with connection.transaction():
            await connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            for statement in ddl(schema):
                await connection.execute(statement)
            for table in TABLES:
                rows = land.rows(table)
                if rows:
                    await connection.executemany(
                        _insert(table, len(rows[0]), f"{schema}.", "$"),
                        [tuple(_postgres_value(v) for v in row) for row in rows],
                    )
            await connection.executemany(
                _insert("_sandbox", 2, f"{schema}.", "$"), _meta_rows(land)
            )
    finally:
        if isinstance(target, str):
            await connection.close()


def holders_of(land: LandRegistry, holder: str) -> Iterator[str]:
    """The ``ma_thua`` of every parcel ``holder`` (personal id or tax code) co-holds."""
    for row in land.chu_su_dung:
        if row[3] == holder:
            yield row[0]


@functools.cache
def columns(table: str) -> tuple[str, ...]:
    """The column names of ``table``, in order (as the DDL creates them)."""
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        for statement in ddl():
            db.execute(statement)
        found = tuple(row[1] for row in db.execute(f"PRAGMA table_info({table})"))
    if not found:
        raise KeyError(table)
    return found
