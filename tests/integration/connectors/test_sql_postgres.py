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
from gateway.errors import SourceTimeout, SourceUnavailable

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


def _manifest(
    land: Land,
    *,
    timeout: float = 2.0,
    role: str = "",
    user: Any = None,
    entities: dict[str, Any] | None = None,
) -> SqlManifest:
    manifest = parse_manifest(
        {
            "name": "land",
            "kind": "sql",
            "timeout_seconds": timeout,
            "retries": 0,
            "database": {
                "url": "postgresql://127.0.0.1:5432/test",
                "schema": land.schema,
                "user": user or role or land.role,
                "password": {"ref": "env:SOURCE_LAND_TEST_PASSWORD"},
            },
            "entities": entities
            or {
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
    monkeypatch.setenv("SOURCE_LAND_TEST_PASSWORD", password)
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
    monkeypatch.setenv("SOURCE_LAND_TEST_PASSWORD", "whatever")
    connector = SqlConnector(_manifest(land, role=land.role + "_none"))
    try:
        with pytest.raises(ManifestError, match="permission denied") as caught:
            await connector.open()
    finally:
        await connector.aclose()
    assert "entities.LandParcel.table: cannot read table 'parcels'" in str(caught.value)


async def _keyed_tables(land: Land) -> None:
    """Tables keyed by uuid, char(5) and date (in the fixture's schema, dropped with it)."""
    admin = await asyncpg.connect(land.admin)
    try:
        await admin.execute(
            f"""
            CREATE TABLE {land.schema}.ids (id uuid PRIMARY KEY, name text);
            CREATE TABLE {land.schema}.codes (code char(5) PRIMARY KEY, name text);
            CREATE TABLE {land.schema}.days (day date PRIMARY KEY, name text);
            CREATE TABLE {land.schema}.events (
                id int PRIMARY KEY, day date NOT NULL, what text, position int);
            CREATE TABLE {land.schema}.stamps (at timestamp PRIMARY KEY);
            INSERT INTO {land.schema}.ids VALUES ('{_UUID}', 'by uuid');
            INSERT INTO {land.schema}.codes VALUES ('AB', 'by char');
            INSERT INTO {land.schema}.days VALUES ('2021-03-04', 'by date');
            INSERT INTO {land.schema}.events VALUES
                (1, '2021-03-04', 'later', 2), (2, '2021-03-04', 'unordered', NULL),
                (3, '2021-03-04', 'first', 1), (4, '2021-03-05', 'other day', 1);
            GRANT SELECT ON ALL TABLES IN SCHEMA {land.schema} TO {land.role};
            """
        )
    finally:
        await admin.close()


_UUID = "6f1c9b1e-8d2a-4c3b-9e7f-0a1b2c3d4e5f"
_KEYED = {
    "ById": {"table": "ids", "key_field": "id", "fields": {"id": "id", "name": "name"}},
    "ByCode": {"table": "codes", "key_field": "code", "fields": {"name": "name"}},
    "ByDay": {
        "table": "days",
        "key_field": "day",
        "children": {
            "events": {"table": "events", "match": {"day": "day"}, "order_by": "position"}
        },
        "joins": {"one": {"table": "events", "match": {"day": "day"}}},
        "fields": {
            "day": "day",
            "name": "name",
            "events": {"from": "events", "fields": {"what": "what"}},
            "oneOf": "one.what",
        },
    },
    "Certificate": {"table": "certificates", "key_field": "cert_id", "fields": {"s": "serial"}},
}


async def test_uuid_keys_are_found_however_the_uuid_is_written(land: Land, connect: Any) -> None:
    await _keyed_tables(land)
    connector = await connect(entities=_KEYED)
    keys = [
        _UUID,
        _UUID.upper(),
        _UUID.replace("-", ""),
        "not-a-uuid",
        "6f1c9b1e",
        _UUID[:-1] + "0",
    ]

    out = await connector.fetch("ById", keys, frozenset({"id", "name"}), CTX)

    found = {"id": _UUID, "name": "by uuid"}
    assert out == {
        _UUID: found,
        _UUID.upper(): found,
        _UUID.replace("-", ""): found,
        "not-a-uuid": None,
        "6f1c9b1e": None,
        _UUID[:-1] + "0": None,
    }


async def test_char_keys_are_found_without_their_padding(land: Land, connect: Any) -> None:
    await _keyed_tables(land)
    connector = await connect(entities=_KEYED)

    out = await connector.fetch("ByCode", ["AB", "AB   ", "ABC"], frozenset({"name"}), CTX)

    assert out == {"AB": {"name": "by char"}, "AB   ": {"name": "by char"}, "ABC": None}


async def test_date_keys_are_bound_as_dates_with_their_joins_and_children(
    land: Land, connect: Any
) -> None:
    await _keyed_tables(land)
    connector = await connect(entities=_KEYED)
    fields = frozenset({"day", "name", "events", "oneOf"})

    out = await connector.fetch(
        "ByDay", ["2021-03-04", "2021-03-05", "2021-02-30", "04.03.2021", "x"], fields, CTX
    )

    assert out == {
        "2021-03-04": {
            "day": "2021-03-04",
            "name": "by date",
            "events": [{"what": "first"}, {"what": "later"}, {"what": "unordered"}],
            "oneOf": "later",  # a join without order_by: the first by primary key
        },
        "2021-03-05": None,
        "2021-02-30": None,
        "04.03.2021": None,
        "x": None,
    }


async def test_integer_keys_outside_the_column_range_are_not_found(
    land: Land, connect: Any
) -> None:
    await _keyed_tables(land)
    connector = await connect(entities=_KEYED)
    keys = ["1", str(2**31), str(2**40), "01"]

    out = await connector.fetch("Certificate", keys, frozenset({"s"}), CTX)

    assert out == {"1": {"s": "CS 000001"}, str(2**31): None, str(2**40): None, "01": None}


async def test_a_key_column_of_a_type_keys_do_not_match_stops_the_opening(
    land: Land, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _keyed_tables(land)
    monkeypatch.setenv("SOURCE_LAND_TEST_PASSWORD", "whatever")
    entities = {"Stamp": {"table": "stamps", "key_field": "at", "fields": {"at": "at"}}}
    connector = SqlConnector(_manifest(land, entities=entities))
    try:
        with pytest.raises(ManifestError) as caught:
            await connector.open()
    finally:
        await connector.aclose()
    assert "entities.Stamp.key_field: column 'at' of table 'stamps' is of type TIMESTAMP" in str(
        caught.value
    )


async def test_a_user_name_given_by_reference_is_in_no_error(
    land: Land, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = f"s3cr3t-user-{secrets.token_hex(4)}"  # no such role
    monkeypatch.setenv("SOURCE_LAND_TEST_PASSWORD", "whatever")
    monkeypatch.setenv("SOURCE_LAND_TEST_USER", user)
    connector = SqlConnector(_manifest(land, user={"ref": "env:SOURCE_LAND_TEST_USER"}))
    try:
        with pytest.raises(SourceUnavailable) as caught:
            await connector.open()
    finally:
        await connector.aclose()
    assert "***" in str(caught.value)
    assert user not in str(caught.value)
    assert user not in repr(caught.value)
