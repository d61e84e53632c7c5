"""The `sql` connector against PostgreSQL, signed in as a role that may only read."""

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from connectors import FetchContext, ManifestError, SqlConnector, SqlManifest, parse_manifest
from gateway.errors import SourceTimeout

CTX = FetchContext(request_id="req-1")
FIELDS = frozenset({"parcelId", "areaM2", "registeredOn", "certificateSerial", "holders"})


@dataclass(frozen=True)
class Land:
    admin: str
    schema: str
    role: str


@pytest.fixture
async def land(postgres_admin: str) -> AsyncIterator[Land]:
    """A schema of parcels and a role that can only read it; both dropped at the end."""
    suffix = secrets.token_hex(4)
    schema, role = f"land_test_{suffix}", f"land_reader_{suffix}"
    admin = await asyncpg.connect(postgres_admin)
    try:
        await admin.execute(
            f"""
            CREATE SCHEMA {schema};
            CREATE TABLE {schema}.certificates (cert_id int PRIMARY KEY, serial text);
            CREATE TABLE {schema}.parcels (
                parcel_id text PRIMARY KEY, area numeric(12, 2), registered_on date,
                cert_id int REFERENCES {schema}.certificates);
            CREATE TABLE {schema}.coholders (
                id serial PRIMARY KEY, parcel_id text REFERENCES {schema}.parcels,
                personal_id text NOT NULL, position int NOT NULL);
            INSERT INTO {schema}.certificates VALUES (1, 'CS 000001'), (2, 'CS 000002');
            INSERT INTO {schema}.parcels VALUES
                ('P1', 120.50, '2021-03-04', 1), ('P2', 300, '2019-12-31', 2),
                ('P3', NULL, NULL, NULL);
            INSERT INTO {schema}.coholders (parcel_id, personal_id, position) VALUES
                ('P1', 'H2', 2), ('P1', 'H1', 1), ('P2', 'H1', 1), ('P3', 'H3', 1);
            CREATE ROLE {role} LOGIN PASSWORD '{suffix}-not-used';
            CREATE ROLE {role}_none LOGIN;
            GRANT USAGE ON SCHEMA {schema} TO {role};
            GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role};
            """
        )
        yield Land(postgres_admin, schema, role)
    finally:
        await admin.execute(
            f"""
            SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE usename IN ('{role}', '{role}_none');
            DROP SCHEMA IF EXISTS {schema} CASCADE;
            DROP ROLE IF EXISTS {role};
            DROP ROLE IF EXISTS {role}_none;
            """
        )
        await admin.close()


def _manifest(land: Land, *, timeout: float = 2.0, role: str = "") -> SqlManifest:
    manifest = parse_manifest(
        {
            "name": "land",
            "kind": "sql",
            "timeout_seconds": timeout,
            "retries": 0,
            "database": {
                "url": "postgresql://127.0.0.1:5432/test",
                "schema": land.schema,
                "user": role or land.role,
                "password": {"ref": "env:LAND_TEST_PASSWORD"},
            },
            "entities": {
                "LandParcel": {
                    "table": "parcels",
                    "key_field": "parcel_id",
                    "joins": {"cert": {"table": "certificates", "match": {"cert_id": "cert_id"}}},
                    "children": {
                        "co": {
                            "table": "coholders",
                            "match": {"parcel_id": "parcel_id"},
                            "order_by": "position",
                        }
                    },
                    "lists": {"holder": {"column": "personal_id", "through": "co"}},
                    "fields": {
                        "parcelId": "parcel_id",
                        "areaM2": "area",
                        "registeredOn": "registered_on",
                        "certificateSerial": "cert.serial",
                        "holders": {"from": "co", "fields": {"personalId": "personal_id"}},
                    },
                }
            },
        }
    )
    assert isinstance(manifest, SqlManifest)
    return manifest


@pytest.fixture
async def connect(land: Land, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    password = secrets.token_urlsafe(12)
    monkeypatch.setenv("LAND_TEST_PASSWORD", password)
    opened: list[SqlConnector] = []

    async def make(**options: Any) -> SqlConnector:
        connector = SqlConnector(_manifest(land, **options))
        opened.append(connector)
        await connector.open()
        assert password not in repr(connector)
        return connector

    yield make
    for connector in opened:
        await connector.aclose()


async def test_parcels_are_read_with_postgres_values_as_json_gives_them(connect: Any) -> None:
    connector = await connect()

    out = await connector.fetch("LandParcel", ["P1", "P2", "P3", "P9"], FIELDS, CTX)

    assert out == {
        "P1": {
            "parcelId": "P1",
            "areaM2": 120.5,
            "registeredOn": "2021-03-04",
            "certificateSerial": "CS 000001",
            "holders": [{"personalId": "H1"}, {"personalId": "H2"}],
        },
        "P2": {
            "parcelId": "P2",
            "areaM2": 300,
            "registeredOn": "2019-12-31",
            "certificateSerial": "CS 000002",
            "holders": [{"personalId": "H1"}],
        },
        "P3": {
            "parcelId": "P3",
            "areaM2": None,
            "registeredOn": None,
            "certificateSerial": None,
            "holders": [{"personalId": "H3"}],
        },
        "P9": None,
    }
    assert connector.queries == 3
    listed = await connector.fetch(
        "LandParcel", ["H1", "H4"], frozenset({"parcelId"}), CTX, by="holder"
    )
    assert listed == {"H1": [{"parcelId": "P1"}, {"parcelId": "P2"}], "H4": []}
    assert (await connector.health()).ok


async def test_writes_are_refused_by_the_session_and_by_the_role(connect: Any) -> None:
    connector = await connect()
    engine = connector._engine
    assert engine is not None
    schema = connector.manifest.database.schema_

    with pytest.raises(DBAPIError, match="read-only transaction"):
        async with engine.connect() as conn:
            await conn.execute(text(f"UPDATE {schema}.parcels SET area = 0"))
    async with engine.connect() as conn:
        await conn.execute(text("SET TRANSACTION READ WRITE"))
        with pytest.raises(DBAPIError, match="permission denied"):
            await conn.execute(text(f"UPDATE {schema}.parcels SET area = 0"))


async def test_a_statement_held_by_a_lock_times_out(land: Land, connect: Any) -> None:
    connector = await connect(timeout=0.5)
    locker = await asyncpg.connect(land.admin)
    try:
        async with locker.transaction():
            await locker.execute(f"LOCK TABLE {land.schema}.parcels IN ACCESS EXCLUSIVE MODE")
            started = time.perf_counter()
            with pytest.raises(SourceTimeout):
                await connector.fetch("LandParcel", ["P1"], FIELDS, CTX)
            assert time.perf_counter() - started < 1.5
            # Nothing of the connector keeps waiting for the lock at the server.
            waiting = await locker.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND state = 'active'",
                land.role,
            )
            assert waiting == 0
    finally:
        await locker.close()

    # The pool is sound after the cancelled statement: the next read answers.
    out = await asyncio.wait_for(
        connector.fetch("LandParcel", ["P1"], frozenset({"parcelId"}), CTX), 5
    )
    assert out == {"P1": {"parcelId": "P1"}}


async def test_a_role_that_may_not_read_the_tables_stops_the_opening(
    land: Land, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAND_TEST_PASSWORD", "whatever")
    connector = SqlConnector(_manifest(land, role=land.role + "_none"))
    try:
        with pytest.raises(ManifestError, match="permission denied") as caught:
            await connector.open()
    finally:
        await connector.aclose()
    assert "entities.LandParcel.table: cannot read table 'parcels'" in str(caught.value)
