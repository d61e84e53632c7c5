"""A log written by an earlier version still verifies and reads the same.

`tests/data/log-v1/` holds a small access log as the gateway wrote it before its
modules were rearranged (envelope version 1): the database as SQL, an auditor's export,
a citizen's receipt, the checkpoint verifier key, and `views.json`, what the figures and
each citizen's view showed of it then. Whatever later versions change, these records
must keep verifying, and reading them must give the same views.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.log import verify_export, verify_tlog_proof
from gateway.records import (
    CITIZEN_VISIBLE_TYPES,
    SearchFilter,
    citizen_items,
    figures,
    search_page,
    verify_database,
)
from gateway.storage import create_engine, upgrade
from keys import parse_verifier_key
from policies import ORGANISATION_NAMES, load_catalogue

DATA = Path(__file__).parents[3] / "data" / "log-v1"
START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
END = datetime.datetime(2027, 1, 1, tzinfo=datetime.UTC)


def _text(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    path = tmp_path / "gateway.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(_text("gateway.sql"))
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await upgrade(engine)  # whatever migrations came since apply to it
    try:
        yield engine
    finally:
        await engine.dispose()


def _verifiers() -> list[Any]:
    return [parse_verifier_key(_text("verifier.txt").strip())]


async def test_the_database_still_verifies(engine: AsyncEngine) -> None:
    report = await verify_database(engine, _verifiers(), origin=_text("origin.txt").strip())
    assert report.ok, report.problem
    assert "16 leaves recomputed from their envelopes" in report.checked
    assert "1 personal parts deleted by early forget records" in report.checked


async def test_the_old_personal_parts_are_sealed_for_the_people_they_name(
    engine: AsyncEngine,
) -> None:
    """Upgrading seals every part that names someone; the audit opens each with their key."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text(
                    "SELECT p.event_id, p.personal IS NULL AS sealed_only, "
                    "EXISTS (SELECT 1 FROM event_subjects s WHERE s.event_id = p.event_id) "
                    "AS names_someone FROM event_personal p"
                )
            )
        ).all()
        unwrapped = await conn.scalar(
            sa.text("SELECT count(*) FROM event_subjects WHERE wrapped_key IS NULL")
        )
    named = [row for row in rows if row.names_someone]
    assert len(named) >= 10
    assert all(row.sealed_only for row in named)
    assert not any(row.sealed_only for row in rows if not row.names_someone)
    # Every index entry of a record whose part was kept holds its wrapped key.
    assert unwrapped == await _index_entries_without_part(engine)
    report = await verify_database(engine, _verifiers(), origin=_text("origin.txt").strip())
    assert report.ok, report.problem


async def _index_entries_without_part(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        found = await conn.scalar(
            sa.text(
                "SELECT count(*) FROM event_subjects s WHERE NOT EXISTS "
                "(SELECT 1 FROM event_personal p WHERE p.event_id = s.event_id)"
            )
        )
    return int(found or 0)


def test_the_export_and_the_receipt_still_verify() -> None:
    report = verify_export(_text("export.jsonl").encode().splitlines(), _verifiers())
    assert report.ok, report.problem
    assert (report.proven, report.pending) == (15, 0)
    proven = verify_tlog_proof(_text("receipt.tlog-proof"), _verifiers())
    assert proven.index == 0
    assert proven.leaf is not None
    assert proven.leaf["v"] == 1


async def _views(engine: AsyncEngine) -> dict[str, Any]:
    catalogue = load_catalogue()
    out: dict[str, Any] = {"figures": await figures(engine, START, END), "citizens": {}}
    async with engine.connect() as conn:
        subjects = sorted(set(await conn.scalars(sa.text("SELECT subject FROM event_subjects"))))
        for subject in subjects:
            flt = SearchFilter(start=START, end=END, subject=subject, types=CITIZEN_VISIBLE_TYPES)
            page = await search_page(conn, flt, limit=100)
            out["citizens"][subject] = await citizen_items(conn, page.rows, subject, catalogue)
    return out


def _as_changed_since(views: dict[str, Any]) -> dict[str, Any]:
    """The views of `views.json` with the changes made on purpose since it was written.

    Each is a change in what the views say of records, never in the records:
    - a citizen's item lists `unanswered`: the fields allowed that no source answered
      (records of that version did not keep which were answered: none);
    - an officer is "unknown" when the catalogue does not know the procedure, rather
      than a role guessed from the system's kinds;
    - an auditor's search names the auditor's body by its name where it is known;
    - a refused request is not a procedure request: the figures count it under
      `refused`, by code, and no longer under `requests`.
    """
    catalogue = load_catalogue()
    for items in views["citizens"].values():
        for item in items:
            item["unanswered"] = []
            procedure = item["procedure"]
            if item["kind"] == "access" and procedure and procedure["code"] not in catalogue:
                item["officer"] = {"role": {"vi": "Không rõ", "en": "Unknown"}}
            if item["kind"] == "audit" and item["organisation"] in ORGANISATION_NAMES:
                item["organisation"] = ORGANISATION_NAMES[item["organisation"]][0]
    refused: dict[tuple[str, str], dict[str, int]] = {}
    for line in _text("export.jsonl").splitlines():
        record = json.loads(line)
        if record.get("type") == "access" and record["outcome"].startswith("rejected:"):
            counts = refused.setdefault((record["procedure"], record["organisation"]), {})
            code = record["outcome"].removeprefix("rejected:")
            counts[code] = counts.get(code, 0) + 1
    for row in views["figures"]:
        row["refused"] = refused.get((row["procedure"], row["organisation"]), {})
        row["requests"] -= sum(row["refused"].values())
    return views


async def test_the_views_read_the_old_records_as_they_did(engine: AsyncEngine) -> None:
    assert await _views(engine) == _as_changed_since(json.loads(_text("views.json")))
