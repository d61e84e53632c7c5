"""The sandbox land registry: derived from the population, deterministic, coherent."""

from __future__ import annotations

import datetime
import sqlite3
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest

from connectors import check_manifest, load_manifest
from connectors._mapping import compile_fields, map_record
from sandbox import Dataset, SandboxSettings, generate, land
from sandbox.cli import main
from schema import canonical_fields

SETTINGS = SandboxSettings(citizens=300, seed=11)
MANIFEST = Path(land.__file__).parent / "manifests" / "land.yaml"


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(SETTINGS)


@pytest.fixture(scope="module")
def registry(dataset: Dataset) -> land.LandRegistry:
    return land.build(SETTINGS, dataset)


def _table(registry: land.LandRegistry, table: str) -> list[dict[str, object]]:
    names = land.columns(table)
    return [dict(zip(names, row, strict=True)) for row in registry.rows(table)]


def test_same_settings_same_rows_and_same_bytes(
    registry: land.LandRegistry, tmp_path: Path
) -> None:
    again = land.build(SETTINGS)
    assert again == registry
    land.write_sqlite(tmp_path / "a.db", registry)
    land.write_sqlite(tmp_path / "b.db", again)
    assert (tmp_path / "a.db").read_bytes() == (tmp_path / "b.db").read_bytes()
    other = land.build(SandboxSettings(citizens=300, seed=12))
    assert other.thua_dat != registry.thua_dat


def test_the_population_is_the_same_with_or_without_land(dataset: Dataset) -> None:
    before = generate(SETTINGS)
    land.build(SETTINGS, before)
    after = generate(SETTINGS)
    for name in ("citizens", "households", "businesses"):
        assert (
            dict(getattr(before, name))
            == dict(getattr(after, name))
            == dict(getattr(dataset, name))
        )
    assert before.sample == after.sample


def test_every_sample_citizen_and_every_adult_member_holds_the_home_parcel(
    dataset: Dataset, registry: land.LandRegistry
) -> None:
    parcels = {row["ma_thua"]: row for row in _table(registry, "thua_dat")}
    for personal_id in dataset.sample.citizens:
        assert list(land.holders_of(registry, personal_id)), personal_id
    holders = _table(registry, "chu_su_dung")
    by_parcel: dict[str, set[object]] = {}
    for row in holders:
        by_parcel.setdefault(str(row["ma_thua"]), set()).add(row["ma_dinh_danh"])
    for household in dataset.households.values():
        adults = {
            m["cong_dan"]["so_dinh_danh"]
            for m in household["thanh_vien"]
            if datetime.date.fromisoformat(
                dataset.citizens[m["cong_dan"]["so_dinh_danh"]]["ngay_sinh"]
            )
            <= datetime.date(2007, 10, 1)
        }
        if not adults:
            continue
        address = household["dia_chi"]
        homes = [
            code
            for code, row in parcels.items()
            if row["ma_xa"] == f"{address['ma_xa']:05d}"
            and row["dia_chi_chi_tiet"] == address["chi_tiet"]
            and row["muc_dich_su_dung"] in ("ODT", "ONT")
            and by_parcel.get(code) == adults
        ]
        assert homes, household["ma_ho"]
        home = parcels[homes[0]]
        assert home["ten_xa"] == address["ten_xa"]
        assert home["ma_tinh"] == f"{address['ma_tinh']:02d}"
        assert home["ten_tinh"] == address["ten_tinh"]


def test_holders_are_citizens_or_enterprises_of_the_dataset(
    dataset: Dataset, registry: land.LandRegistry
) -> None:
    kinds = Counter()
    for row in _table(registry, "chu_su_dung"):
        ident = str(row["ma_dinh_danh"])
        kinds[row["loai_chu"]] += 1
        if row["loai_chu"] == land.PERSON:
            citizen = dataset.citizens[ident]
            assert citizen["ho_ten"] == row["ho_ten"]
            assert citizen["ngay_mat"] is None
            assert len(ident) == 12
        else:
            assert row["loai_chu"] == land.ORGANISATION
            assert dataset.businesses[ident]["ten_doanh_nghiep"] == row["ho_ten"]
            assert len(ident) == 10
    assert kinds[land.PERSON] > 0
    assert kinds[land.ORGANISATION] > 0
    orders: dict[object, list[object]] = {}
    for row in _table(registry, "chu_su_dung"):
        orders.setdefault(row["ma_thua"], []).append(row["thu_tu"])
    assert all(o == list(range(1, len(o) + 1)) for o in orders.values())


def test_identities_are_unique_and_every_parcel_has_a_certificate(
    registry: land.LandRegistry,
) -> None:
    parcels = _table(registry, "thua_dat")
    codes = [p["ma_thua"] for p in parcels]
    assert len(set(codes)) == len(codes)
    places = {(p["ma_xa"], p["so_to_ban_do"], p["so_thua"]) for p in parcels}
    assert len(places) == len(parcels)
    for p in parcels:
        assert p["ma_thua"] == f"{p['ma_xa']}-{p['so_to_ban_do']}-{p['so_thua']}"
        assert p["muc_dich_su_dung"] in land.LAND_USES
        assert isinstance(p["dien_tich"], float)
        assert p["dien_tich"] > 0
    certificates = _table(registry, "giay_chung_nhan")
    assert sorted(c["ma_thua"] for c in certificates) == sorted(codes)
    serials = [str(c["so_seri"]) for c in certificates]
    assert len(set(serials)) == len(serials)
    assert all(len(s) == 11 and s[2] == " " and s[3:].isdigit() for s in serials)
    uses = Counter(p["muc_dich_su_dung"] for p in parcels)
    assert uses["ONT"] + uses["ODT"] > 0
    assert sum(uses[u] for u in ("LUC", "BHK", "CLN", "NTS", "RSX")) > 0


def test_mortgages_are_on_parcels_after_their_certificate(registry: land.LandRegistry) -> None:
    issued = {c["ma_thua"]: c["ngay_cap"] for c in _table(registry, "giay_chung_nhan")}
    mortgages = _table(registry, "the_chap")
    assert mortgages
    for m in mortgages:
        assert m["loai"] == land.MORTGAGE
        assert m["ma_thua"] in issued
        registered = m["ngay_dang_ky"]
        assert isinstance(registered, datetime.date)
        assert issued[m["ma_thua"]] <= registered < datetime.date(2025, 10, 1)
        released = m["ngay_xoa"]
        assert released is None or registered <= released
        assert "Ngân hàng" in str(m["ben_nhan"])
    homes = {
        p["ma_thua"]
        for p in _table(registry, "thua_dat")
        if p["muc_dich_su_dung"] in ("ODT", "ONT")
    }
    standing = {m["ma_thua"] for m in mortgages if m["ngay_xoa"] is None} & homes
    assert 0.08 < len(standing) / len(homes) < 0.35


def test_the_sqlite_file_holds_the_tables_indexes_and_settings(
    registry: land.LandRegistry, tmp_path: Path
) -> None:
    path = tmp_path / "var" / "land.db"
    land.write_sqlite(path, registry)
    assert [p.name for p in path.parent.iterdir()] == ["land.db"]
    with closing(sqlite3.connect(path)) as db:
        for table in land.TABLES:
            (count,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()
            assert count == len(registry.rows(table))
        indexes = {
            row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
        assert {
            "ix_chu_su_dung_ma_dinh_danh",
            "ix_chu_su_dung_ma_thua",
            "ix_the_chap_ma_thua",
            "ix_giay_chung_nhan_ma_thua",
        } <= indexes
        (day,) = db.execute("SELECT ngay_cap FROM giay_chung_nhan LIMIT 1").fetchone()
        datetime.date.fromisoformat(day)
    assert land.stored_settings(path) == land.made_from(SETTINGS)
    assert land.stored_settings(tmp_path / "missing.db") is None


def test_the_cli_writes_once_per_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "land.db"
    args = ["land", "--database", str(path), "--citizens", "300", "--seed", "11"]
    assert main(args) == 0
    assert "wrote" in capsys.readouterr().out
    written = path.stat().st_mtime_ns
    assert main(args) == 0
    assert "up to date" in capsys.readouterr().out
    assert path.stat().st_mtime_ns == written
    assert main([*args[:-1], "12"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert land.stored_settings(path) == land.made_from(SandboxSettings(citizens=300, seed=12))


def test_the_manifest_maps_a_parcel_from_its_rows(
    dataset: Dataset, registry: land.LandRegistry, tmp_path: Path
) -> None:
    manifest = load_manifest(MANIFEST)
    check_manifest(manifest, canonical_fields())
    assert manifest.kind == "sql"
    path = tmp_path / "land.db"
    land.write_sqlite(path, registry)
    # The rows as a `sql` connector hands them to the mapping: the parcel's columns,
    # its joined certificate as an object, its children as lists of objects.
    personal_id = dataset.sample.citizens[0]
    with closing(sqlite3.connect(path)) as db:
        db.row_factory = sqlite3.Row
        code = next(land.holders_of(registry, personal_id))
        record = dict(db.execute("SELECT * FROM thua_dat WHERE ma_thua = ?", (code,)).fetchone())
        record["giay_chung_nhan"] = dict(
            db.execute("SELECT * FROM giay_chung_nhan WHERE ma_thua = ?", (code,)).fetchone()
        )
        record["chu_su_dung"] = [
            dict(r)
            for r in db.execute(
                "SELECT * FROM chu_su_dung WHERE ma_thua = ? ORDER BY thu_tu", (code,)
            )
        ]
        record["the_chap"] = [
            dict(r) for r in db.execute("SELECT * FROM the_chap WHERE ma_thua = ?", (code,))
        ]
    entity = manifest.entities["LandParcel"]
    mapped = map_record(
        compile_fields(entity.fields, source="land", tables=manifest.tables).values(), record
    )
    address = dataset.citizens[personal_id]["noi_thuong_tru"]
    assert mapped["parcelId"] == code
    assert mapped["wardCode"] == address["ma_xa"]
    assert mapped["address"] == {
        "provinceCode": address["ma_tinh"],
        "provinceName": address["ten_tinh"],
        "wardCode": address["ma_xa"],
        "wardName": address["ten_xa"],
        "detail": address["chi_tiet"],
    }
    assert mapped["landUse"] in {f"{name} ({c})" for c, name in land.LAND_USES.items()}
    assert str(mapped["certificateSerial"]).startswith(
        str(record["giay_chung_nhan"]["so_seri"])[:2]
    )
    datetime.date.fromisoformat(str(mapped["certificateIssuedOn"]))
    assert {
        "personalId": personal_id,
        "fullName": dataset.citizens[personal_id]["ho_ten"],
    } in mapped["holders"]
    assert isinstance(mapped["encumbrances"], list)
    for encumbrance in mapped["encumbrances"]:
        assert set(encumbrance) == {"kind", "holder", "registeredOn", "releasedOn"}
    assert manifest.tables["muc_dich_su_dung"].keys() == land.LAND_USES.keys()
