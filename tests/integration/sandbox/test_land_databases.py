"""The sandbox land registry in SQLite and PostgreSQL, read by the `sql` connector."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from connectors import SqlConnector, load_manifest
from connectors._manifest import DatabaseSpec
from sandbox import Dataset, SandboxSettings, generate, land

SETTINGS = SandboxSettings(citizens=300, seed=5)
MANIFEST = Path(land.__file__).parent / "manifests" / "land.yaml"
FIELDS = frozenset(
    {
        "parcelId",
        "wardCode",
        "mapSheetNumber",
        "parcelNumber",
        "areaM2",
        "landUse",
        "address",
        "certificateSerial",
        "certificateIssuedOn",
        "holders",
        "encumbrances",
    }
)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(SETTINGS)


@pytest.fixture(scope="module")
def registry(dataset: Dataset) -> land.LandRegistry:
    return land.build(SETTINGS, dataset)


@pytest.fixture
async def postgres_schema(postgres_admin: str, registry: land.LandRegistry) -> AsyncIterator[str]:
    schema = f"land_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(postgres_admin)
    try:
        await land.write_postgres(connection, schema, registry)
        yield schema
    finally:
        await connection.execute(f"DROP SCHEMA {schema} CASCADE")
        await connection.close()


async def test_write_postgres_holds_every_row(
    postgres_admin: str, postgres_schema: str, registry: land.LandRegistry
) -> None:
    connection = await asyncpg.connect(postgres_admin)
    try:
        for table in land.TABLES:
            count = await connection.fetchval(f"SELECT count(*) FROM {postgres_schema}.{table}")
            assert count == len(registry.rows(table))
        first = await connection.fetchrow(
            f"SELECT * FROM {postgres_schema}.giay_chung_nhan ORDER BY so_seri LIMIT 1"
        )
        assert isinstance(first["ngay_cap"], datetime.date)
        stored = await connection.fetchval(
            f"SELECT gia_tri FROM {postgres_schema}._sandbox WHERE khoa = 'settings'"
        )
        assert '"seed": 5' in stored
    finally:
        await connection.close()


async def _read(connector: SqlConnector, dataset: Dataset) -> list[dict[str, Any]]:
    await connector.open()
    try:
        personal_id = dataset.sample.citizens[0]
        listed = await connector.fetch(
            "LandParcel",
            [personal_id],
            FIELDS,
            None,  # type: ignore[arg-type]  # a database takes no X-Road headers
            by="holder",
        )
        parcels = listed[personal_id]
        assert isinstance(parcels, list)
        by_key = await connector.fetch(
            "LandParcel",
            [p["parcelId"] for p in parcels],
            FIELDS,
            None,  # type: ignore[arg-type]
        )
        assert [by_key[p["parcelId"]] for p in parcels] == parcels
        return [dict(p) for p in parcels]
    finally:
        await connector.aclose()


def _check(parcels: list[dict[str, Any]], dataset: Dataset) -> None:
    personal_id = dataset.sample.citizens[0]
    address = dataset.citizens[personal_id]["noi_thuong_tru"]
    assert parcels
    home = next(p for p in parcels if p["address"]["detail"] == address["chi_tiet"])
    assert home["address"] == {
        "provinceCode": address["ma_tinh"],
        "provinceName": address["ten_tinh"],
        "wardCode": address["ma_xa"],
        "wardName": address["ten_xa"],
        "detail": address["chi_tiet"],
    }
    assert home["wardCode"] == address["ma_xa"]
    assert isinstance(home["areaM2"], int | float)
    assert home["landUse"].endswith(("(ONT)", "(ODT)"))
    assert (
        home["parcelId"]
        == f"{address['ma_xa']:05d}-{home['mapSheetNumber']}-{home['parcelNumber']}"
    )
    datetime.date.fromisoformat(home["certificateIssuedOn"])
    assert personal_id in {h["personalId"] for h in home["holders"]}
    for encumbrance in home["encumbrances"]:
        datetime.date.fromisoformat(encumbrance["registeredOn"])


async def test_the_connector_reads_parcels_from_sqlite(
    tmp_path: Path, dataset: Dataset, registry: land.LandRegistry
) -> None:
    path = tmp_path / "land.db"
    land.write_sqlite(path, registry)
    manifest = load_manifest(MANIFEST).with_endpoint(f"sqlite:///{path}")
    _check(await _read(SqlConnector(manifest), dataset), dataset)


async def test_the_connector_reads_the_same_parcels_from_postgres(
    tmp_path: Path, postgres_schema: str, dataset: Dataset, registry: land.LandRegistry
) -> None:
    path = tmp_path / "land.db"
    land.write_sqlite(path, registry)
    manifest = load_manifest(MANIFEST)
    from_sqlite = await _read(SqlConnector(manifest.with_endpoint(f"sqlite:///{path}")), dataset)
    database = DatabaseSpec.model_validate(
        {"url": "postgresql://127.0.0.1:5432/test", "schema": postgres_schema, "user": "postgres"}
    )
    copy = manifest.model_copy(update={"database": database})
    from_postgres = await _read(SqlConnector(copy), dataset)
    _check(from_postgres, dataset)
    assert from_postgres == from_sqlite
