"""`insert_many` stores exactly what SQLAlchemy's own INSERT stores, on SQLite and on
PostgreSQL (where the recorder writes on the event loop), and so does
`insert_many_through` on PostgreSQL's driver connection itself (the recorder's commits).

The recorder's rows (records with and without subjects, consents, decisions, the log's
queue) go once through `conn.execute(table.insert(), rows)` and once through
`insert_many`: every column of every row reads back the same, with its type (SQLite's
`typeof` and `quote()`; PostgreSQL's `pg_typeof` and the value as text), times and JSON
included.
"""

from __future__ import annotations

import asyncio
import datetime
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.records import Event
from gateway.records._recorder import commit_through_driver, commitment
from gateway.storage import (
    event_decisions,
    event_personal,
    event_subjects,
    events,
    insert_many,
    insert_many_through,
    log_queue,
    metadata,
    subject_keys,
    upgrade,
)

AN, BINH = "079203001234", "001185000777"
TABLES = (events, event_personal, event_subjects, event_decisions, log_queue)


def _events() -> list[Event]:
    when = datetime.datetime(2026, 12, 7, 10, 52, 39, 123456, tzinfo=datetime.UTC)
    envelope: dict[str, Any] = {
        "client": "VN/GOV/UBND-HCM/mot-cua",
        "organisation": "UBND-HCM",
        "procedure": "1.004222",
        "decisions": [
            {
                "path": "Citizen.fullName",
                "decision": "ALLOWED_BY_LAW",
                "basis": "L",
                "subjects": [0],
            },
            {
                "path": "Citizen.gender",
                "decision": "DENIED_NO_CONSENT",
                "basis": None,
                "subjects": [1],
            },
        ],
        "fieldsServed": 3,
        "papersAvoided": 1,
        "hiddenUntil": "2027-01-01T00:00:00Z",
    }
    return [
        Event(
            type="access",
            request_id="r-1",
            outcome="served",
            policy_version="v1",
            envelope=envelope,
            personal={"subjects": [AN, BINH], "officer": "cán bộ 1", "token": "t"},
            subjects=[AN, BINH],
            client_id="VN/GOV/UBND-HCM/mot-cua",
            procedure="1.004222",
            consents={"consent-1": BINH},
            ts=when,
        ),
        Event(
            type="admin",
            request_id="r-2",
            outcome="done",
            policy_version="v1",
            envelope={"action": "client_registered"},
            personal={"operator": "op-1", "note": None},
            # A time in another zone is stored as UTC, as the column does.
            ts=when.astimezone(datetime.timezone(datetime.timedelta(hours=7))),
        ),
    ]


def _rows() -> dict[str, list[Mapping[str, Any]]]:
    keys = {AN: secrets.token_bytes(32), BINH: secrets.token_bytes(32)}
    rows: dict[str, list[Mapping[str, Any]]] = {table.name: [] for table in TABLES}
    for event in _events():
        made = event.rows(keys)
        rows["events"].append(made.event)
        rows["event_personal"].append(made.personal)
        rows["event_subjects"].extend(made.subjects)
        rows["event_decisions"].extend(made.decisions)
        rows["log_queue"].append({"event_id": event.id, "leaf_hash": event.leaf_hash})
    return rows


def _stored(
    write: Callable[[sa.Connection, sa.Table, Sequence[Mapping[str, Any]]], None],
    rows: dict[str, list[Mapping[str, Any]]],
) -> dict[str, list[tuple[Any, ...]]]:
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as conn:
        for table in TABLES:
            write(conn, table, rows[table.name])
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in TABLES:
            quoted = ", ".join(f"typeof({c.name}) || ':' || quote({c.name})" for c in table.c)
            found = conn.exec_driver_sql(f"SELECT {quoted} FROM {table.name}")
            out[table.name] = sorted(tuple(row) for row in found)
    engine.dispose()
    return out


def _core(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        conn.execute(table.insert(), rows)


def test_sqlite_rows_are_stored_as_sqlalchemys_insert_stores_them() -> None:
    rows = _rows()
    assert all(rows[table.name] for table in TABLES)
    assert _stored(insert_many, rows) == _stored(_core, rows)


async def _stored_postgres(
    engine: AsyncEngine,
    write: Callable[[sa.Connection, sa.Table, Sequence[Mapping[str, Any]]], None] | None,
    rows: dict[str, list[Mapping[str, Any]]],
) -> dict[str, list[tuple[Any, ...]]]:
    """What `write` stores of `rows`, read back with types; `None`: `insert_many_through`
    on the driver's connection, in a transaction of the driver's own."""
    names = ", ".join(table.name for table in TABLES)
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        if write is not None:
            for table in TABLES:
                await conn.run_sync(write, table, rows[table.name])
    if write is None:
        async with engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            async with driver.transaction():
                for table in TABLES:
                    await insert_many_through(driver, conn.dialect, table, rows[table.name])
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with engine.connect() as conn:
        for table in TABLES:
            typed = ", ".join(
                f"pg_typeof({c.name})::text || ':' || coalesce({c.name}::text, 'NULL')"
                for c in table.c
            )
            found = await conn.exec_driver_sql(f"SELECT {typed} FROM {table.name}")
            out[table.name] = sorted(tuple(row) for row in found)
    return out


async def test_postgres_rows_are_stored_as_sqlalchemys_insert_stores_them(
    blank_postgres: AsyncEngine,
) -> None:
    await upgrade(blank_postgres)  # the tables as migrations make them, partitions included
    rows = _rows()
    by_core = await _stored_postgres(blank_postgres, _core, rows)
    assert all(by_core[table.name] for table in TABLES)
    assert await _stored_postgres(blank_postgres, insert_many, rows) == by_core
    assert await _stored_postgres(blank_postgres, None, rows) == by_core


def test_rows_naming_other_columns_take_sqlalchemys_path() -> None:
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    first, second = _rows()["event_personal"]
    with engine.begin() as conn:
        insert_many(conn, event_personal, [])  # nothing to insert: no statement
        lacking = {name: value for name, value in second.items() if name != "salt"}
        # Refused as SQLAlchemy's own INSERT refuses it, with nothing stored.
        with pytest.raises(sa.exc.StatementError, match="salt"):
            insert_many(conn, event_personal, [first, lacking])
        assert conn.execute(sa.select(sa.func.count()).select_from(event_personal)).scalar() == 0
    engine.dispose()


async def test_commits_through_the_driver_that_race_for_a_new_key_use_the_one_made(
    blank_postgres: AsyncEngine,
) -> None:
    await upgrade(blank_postgres)
    first, second = _events()[0], _events()[0]  # both name AN and BINH, new to the database
    second.id = "another-record"
    async with blank_postgres.connect() as one, blank_postgres.connect() as two:
        await asyncio.gather(
            commit_through_driver(one, [first]), commit_through_driver(two, [second])
        )
    async with blank_postgres.connect() as conn:
        keys = dict(
            (await conn.execute(sa.select(subject_keys.c.subject, subject_keys.c.key))).all()
        )
        stored = (await conn.execute(sa.select(events.c.id).order_by(events.c.id))).scalars().all()
        queued = (await conn.execute(sa.select(log_queue.c.event_id))).scalars().all()
    assert set(keys) == {AN, BINH}
    assert sorted(stored) == sorted([first.id, second.id])
    assert sorted(queued) == sorted(stored)
    # Each record commits to its subjects with the key stored, not one made and lost.
    for event in (first, second):
        assert event.commitments == [commitment(bytes(keys[s]), event.id) for s in (AN, BINH)]
