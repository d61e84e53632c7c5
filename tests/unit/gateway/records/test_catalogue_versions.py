"""Catalogue versions on a migrated SQLite file: files recorded once, changes proposed
on the version in effect, approved by another person from a time, every one kept."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import Conflict, Forbidden, InvalidArgument
from gateway.records import CatalogueVersions, StaffMember, catalogue_of
from gateway.storage import create_engine, upgrade
from policies import Catalogue, load_catalogue
from schema import canonical_fields

RESIDENCE = "1.004222"
EDITOR = StaffMember("editor-1", "VN/GOV/BCA")
OPERATOR = StaffMember("operator-1", "VN/GOV/BCA")


@pytest.fixture(scope="module")
def files() -> Catalogue:
    return load_catalogue()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    await upgrade(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_versions_follow_their_approval_and_effective_time(
    engine: AsyncEngine, files: Catalogue
) -> None:
    versions = CatalogueVersions(engine, pseudonym_key=b"k" * 32, canonical=canonical_fields())
    assert await versions.in_effect() is None
    assert await versions.record_files(files)
    assert not await versions.record_files(files)  # once
    assert await versions.effective_version() == files.version

    entry = files.get(RESIDENCE).model_dump(mode="json")
    entry["fields"]["Citizen.phone"] = "law"
    proposed = await versions.propose(by=EDITOR, procedure=entry)
    assert proposed.status == "proposed"
    assert proposed.parent == files.version
    changed = catalogue_of(proposed.entries, canonical_fields())
    assert changed.version == proposed.version != files.version
    assert await versions.effective_version() == files.version

    with pytest.raises(Forbidden):
        await versions.approve(proposed.version, by=EDITOR)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    approved = await versions.approve(proposed.version, by=OPERATOR, effective_from=later)
    assert approved.effective_from == later
    assert await versions.effective_version() == files.version
    assert await versions.effective_version(later) == proposed.version
    with pytest.raises(Conflict):
        await versions.approve(proposed.version, by=OPERATOR)
    # An approval never takes effect in the past.
    again = {**entry, "name": {**entry["name"], "en": entry["name"]["en"] + " (amended)"}}
    second = await versions.propose(by=EDITOR, procedure=again, base=proposed.version)
    yesterday = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    done = await versions.approve(second.version, by=OPERATOR, effective_from=yesterday)
    assert done.effective_from is not None
    assert done.effective_from > yesterday
    assert {v.version for v in await versions.list()} == {
        files.version,
        proposed.version,
        second.version,
    }


async def test_a_proposal_is_one_valid_change(engine: AsyncEngine, files: Catalogue) -> None:
    versions = CatalogueVersions(engine, pseudonym_key=b"k" * 32, canonical=canonical_fields())
    with pytest.raises(Conflict):
        await versions.propose(by=EDITOR, remove=RESIDENCE)  # nothing recorded yet
    await versions.record_files(files)
    entry = files.get(RESIDENCE).model_dump(mode="json")
    with pytest.raises(InvalidArgument):
        await versions.propose(by=EDITOR)
    with pytest.raises(Conflict):
        await versions.propose(by=EDITOR, procedure=entry)  # the same
    with pytest.raises(InvalidArgument, match="nowhere"):
        await versions.propose(
            by=EDITOR, procedure={**entry, "fields": {**entry["fields"], "Citizen.nowhere": "law"}}
        )
    removed = await versions.propose(by=EDITOR, remove=RESIDENCE)
    assert removed.change == {"procedure": RESIDENCE, "kind": "remove"}
    assert RESIDENCE not in catalogue_of(removed.entries)
    with pytest.raises(Conflict):
        await versions.propose(by=EDITOR, remove=RESIDENCE)  # proposed already
