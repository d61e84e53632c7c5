"""The auditors' and citizens' search over a large access log.

A database of its own per backend gets `events` synthetic access records spread over
a year (with their subject index, decision index and log leaves), bulk-loaded without
the recorder; then each search of `gateway.records` runs as the routes run it (first
page of 50, newest first) with different values, and the table gives the median and
slowest time and the indexes the database's plan used.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import random
import re
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bench._log import database
from gateway.records import SearchFilter, search_page
from gateway.storage import event_decisions, event_subjects, events, log_leaves, read_snapshot

__all__ = ["measure"]

_END = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)
_YEAR = datetime.timedelta(days=365)
_CHUNK = 20_000
_PROCEDURES = ["1.004222", "1.001193", "1.000894", "2.000046", "1.013831", "LOCAL.x", "2.001"]
_DECISIONS = ["ALLOWED_BY_LAW"] * 90 + ["CONSENT_REQUIRED"] * 8 + ["PURPOSE_NOT_ALLOWED"] * 2


@dataclasses.dataclass(frozen=True)
class Shape:
    """How many distinct values each searchable column has."""

    events: int
    subjects: int
    clients: int = 60
    organisations: int = 20
    officers: int = 3_000
    cases: int = 250_000


def _subject(n: int) -> str:
    return f"{1_000_000_000 + n:012d}"


def _rows(shape: Shape, start: int, stop: int) -> tuple[list[dict[str, Any]], ...]:
    """Events `start..stop` and their index rows; the same for the same `shape`."""
    rng = random.Random(start)  # synthetic data, not secrets
    step = _YEAR / shape.events
    evs, subs, decs, leaves = [], [], [], []
    for i in range(start, stop):
        event_id = f"{i:032x}"
        ts = _END - _YEAR + step * i
        client = rng.randrange(shape.clients)
        kind = "auditor_search" if i % 997 == 0 else "access"
        evs.append(
            {
                "id": event_id,
                "type": kind,
                "ts": ts,
                "request_id": event_id,
                "client_id": f"VN/GOV/C{client}/system",
                "procedure": _PROCEDURES[client % len(_PROCEDURES)],
                "outcome": "served",
                "policy_version": "bench",
                "envelope": '{"v":1,"decisions":[],"subjects":1}',
                "envelope_hash": hashlib.sha256(event_id.encode()).hexdigest(),
                "organisation": f"Agency {client % shape.organisations}",
                "officer": f"{rng.randrange(shape.officers):032x}",
                "case_ref": f"{rng.randrange(shape.cases):032x}",
                "hidden_until": ts + _YEAR if i % 1000 == 1 else None,
                "fields_served": 5,
                "papers_avoided": 1,
            }
        )
        subs.append(
            {"subject": _subject(rng.randrange(shape.subjects)), "event_id": event_id, "ts": ts}
        )
        decs.append({"decision": "ALLOWED_BY_LAW", "event_id": event_id, "ts": ts})
        other = rng.choice(_DECISIONS)
        if other != "ALLOWED_BY_LAW":
            decs.append({"decision": other, "event_id": event_id, "ts": ts})
        leaf = orjson.dumps({"v": 1, "i": i}).decode()
        leaves.append(
            {
                "idx": i,
                "event_id": event_id,
                "leaf": leaf,
                "leaf_hash": hashlib.sha256(leaf.encode()).digest(),
            }
        )
    return evs, subs, decs, leaves


_TABLES = (events, event_subjects, event_decisions, log_leaves)


async def bulk_load(engine: AsyncEngine, shape: Shape) -> float:
    """Load the synthetic records; returns the seconds it took."""
    started = time.perf_counter()
    for start in range(0, shape.events, _CHUNK):
        batches = _rows(shape, start, min(shape.events, start + _CHUNK))
        async with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await _copy(conn, batches)
            else:
                for table, rows in zip(_TABLES, batches, strict=True):
                    await conn.execute(table.insert(), rows)
    async with engine.begin() as conn:
        await conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - started


async def _copy(conn: AsyncConnection, batches: tuple[list[dict[str, Any]], ...]) -> None:
    """PostgreSQL's COPY, through the driver: the fastest way in."""
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    for table, rows in zip(_TABLES, batches, strict=True):
        columns = list(rows[0])
        await driver.copy_records_to_table(
            table.name, records=[tuple(r[c] for c in columns) for r in rows], columns=columns
        )


def _searches(shape: Shape, now: datetime.datetime) -> list[tuple[str, Callable[[int], Any]]]:
    """(name, values -> the filter of the n-th run), as the routes build them."""
    month = (now - datetime.timedelta(days=30), now)
    year = (now - datetime.timedelta(days=366), now)

    def flt(span: tuple[datetime.datetime, datetime.datetime], **kw: Any) -> SearchFilter:
        return SearchFilter(start=span[0], end=span[1], **kw)

    return [
        ("last 30 days, no filter", lambda n: flt(month)),
        ("subject, a year", lambda n: flt(year, subject=_subject(n * 7919 % shape.subjects))),
        (
            "citizen's own view, a year",
            lambda n: flt(
                year,
                subject=_subject(n * 104729 % shape.subjects),
                types=("access", "auditor_search"),
                visible_at=now,
            ),
        ),
        ("client, 30 days", lambda n: flt(month, client=f"VN/GOV/C{n}/system")),
        ("organisation, 30 days", lambda n: flt(month, organisation=f"Agency {n}")),
        # A pseudonym and its form in records written before kinds: the same here.
        ("officer, a year", lambda n: flt(year, officer=(f"{n * 31:032x}",) * 2)),
        ("case, a year", lambda n: flt(year, case=(f"{n * 9973:032x}",) * 2)),
        ("procedure, 30 days", lambda n: flt(month, procedure=_PROCEDURES[n % 7])),
        ("type auditor_search, a year", lambda n: flt(year, type="auditor_search")),
        (
            "decision PURPOSE_NOT_ALLOWED, a year",
            lambda n: flt(year, decision="PURPOSE_NOT_ALLOWED"),
        ),
        (
            "client + decision CONSENT_REQUIRED, 30 days",
            lambda n: flt(month, client=f"VN/GOV/C{n}/system", decision="CONSENT_REQUIRED"),
        ),
    ]


_INDEX = re.compile(r"\b(ix_\w+|uq_\w+|sqlite_autoindex_\w+|\w+_pkey|pk_\w+|\w+_key)\b")


async def _plan(conn: AsyncConnection, query: Any) -> str:
    """The indexes the plan uses, in order."""
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    if conn.dialect.name == "sqlite":
        rows = (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")).all()
        text = "\n".join(str(r[-1]) for r in rows)
        text = text.replace("USING INTEGER PRIMARY KEY", "pk")
        found = _INDEX.findall(text) + (["pk"] if "pk" in text.split() else [])
    else:
        rows = (await conn.exec_driver_sql(f"EXPLAIN {compiled}")).all()
        text = "\n".join(str(r[0]) for r in rows)
        found = _INDEX.findall(text)
        if "Seq Scan" in text:
            found.append("SEQ SCAN")
    return ", ".join(dict.fromkeys(found)) or "(none)"


def _ordered(flt: SearchFilter) -> Any:
    ts_column, id_column = flt.order()
    return flt.query().order_by(ts_column.desc(), id_column.desc()).limit(51)


async def measure_backend(engine: AsyncEngine, shape: Shape, runs: int) -> list[dict[str, Any]]:
    """Time every search `runs` times (different values); plans from the first."""
    out = []
    for name, make in _searches(shape, _END):
        times, found = [], 0
        for n in range(runs):
            flt = make(n)
            async with read_snapshot(engine) as conn:
                started = time.perf_counter()
                page = await search_page(conn, flt, limit=50)
                times.append(time.perf_counter() - started)
                found += len(page.rows)
        async with read_snapshot(engine) as conn:
            plan = await _plan(conn, _ordered(make(0)))
        out.append(
            {
                "search": name,
                "rows": found / runs,
                "median": statistics.median(times) * 1000,
                "max": max(times) * 1000,
                "plan": plan,
            }
        )
    return out


def _table(backend: str, loaded: float, shape: Shape, rows: list[dict[str, Any]]) -> Iterator[str]:
    yield (
        f"\n{backend}: {shape.events:,} records ({shape.subjects:,} subjects) loaded in "
        f"{loaded:.0f} s.\n"
    )
    yield "| search (first page of 50) | rows | median ms | max ms | indexes in the plan |"
    yield "|---|---|---|---|---|"
    for r in rows:
        yield (
            f"| {r['search']} | {r['rows']:.0f} | {r['median']:.1f} | {r['max']:.1f} "
            f"| {r['plan']} |"
        )


async def measure(*, events_count: int, backends: list[str], runs: int = 7) -> str:
    """Load and search on each backend; the Markdown tables."""
    shape = Shape(events=events_count, subjects=max(1, events_count // 10))
    lines = [
        "Search: each search as the auditor and citizen routes run it, "
        f"{runs} runs with different values.",
    ]
    for backend in backends:
        async with database(backend) as engine:
            loaded = await bulk_load(engine, shape)
            rows = await measure_backend(engine, shape, runs)
        lines += list(_table(backend, loaded, shape, rows))
    return "\n".join(lines) + "\n"
