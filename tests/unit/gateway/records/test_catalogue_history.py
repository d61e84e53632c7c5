"""Catalogue versions on a migrated SQLite file: files recorded once, changes proposed
on the version in effect, approved by another person from a time, every one kept."""

from __future__ import annotations

import datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import Conflict, Forbidden, InvalidArgument
from gateway.records import CatalogueVersions, StaffMember, catalogue_of
from policies import Catalogue, load_catalogue
from schema import canonical_fields

RESIDENCE = "1.004222"
EDITOR = StaffMember("editor-1", "VN/GOV/BCA")
OPERATOR = StaffMember("operator-1", "VN/GOV/BCA")


@pytest.fixture(scope="module")
def files() -> Catalogue:
    return load_catalogue()


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
    # Never in the past, nor before the version it changes takes effect.
    assert done.effective_from == later
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


async def test_history_is_a_line_an_approval_never_undoes_another(
    engine: AsyncEngine, files: Catalogue
) -> None:
    versions = CatalogueVersions(engine, pseudonym_key=b"k" * 32, canonical=canonical_fields())
    await versions.record_files(files)
    entry = files.get(RESIDENCE).model_dump(mode="json")
    phone = await versions.propose(
        by=EDITOR, procedure={**entry, "fields": {**entry["fields"], "Citizen.phone": "law"}}
    )
    renamed = await versions.propose(
        by=EDITOR, procedure={**entry, "name": {**entry["name"], "en": "Residence (2027)"}}
    )
    await versions.approve(phone.version, by=OPERATOR)
    with pytest.raises(Conflict) as stale:
        await versions.approve(renamed.version, by=OPERATOR)
    assert stale.value.detail["reason"] == "stale"
    assert await versions.effective_version() == phone.version
    # Proposed again on what is approved now, it keeps both changes.
    again = await versions.propose(
        by=EDITOR,
        procedure={
            **entry,
            "fields": {**entry["fields"], "Citizen.phone": "law"},
            "name": {**entry["name"], "en": "Residence (2027)"},
        },
    )
    assert again.parent == phone.version
    # A rejected version is no base: what it held would slip in unseen.
    await versions.reject(renamed.version, by=OPERATOR, reason="superseded")
    with pytest.raises(Conflict):
        await versions.propose(by=EDITOR, remove="1.001193", base=renamed.version)
    with pytest.raises(InvalidArgument, match="never removed"):
        await versions.propose(by=EDITOR, remove="LOCAL.citizen-self-service")


async def test_changed_files_never_undo_a_change_approved_through_the_api(
    engine: AsyncEngine, files: Catalogue
) -> None:
    versions = CatalogueVersions(engine, pseudonym_key=b"k" * 32, canonical=canonical_fields())
    await versions.record_files(files)
    entry = files.get(RESIDENCE).model_dump(mode="json")
    approved = await versions.propose(
        by=EDITOR, procedure={**entry, "fields": {**entry["fields"], "Citizen.phone": "law"}}
    )
    await versions.approve(approved.version, by=OPERATOR)
    # A release whose files changed (here: another entry's name) starts.
    other = files.get("1.001193").model_dump(mode="json")
    other["name"] = {**other["name"], "en": other["name"]["en"] + " (new release)"}
    released = catalogue_of(
        [other if e.code == "1.001193" else e.model_dump(mode="json") for e in files],
        canonical_fields(),
    )
    assert await versions.record_files(released)
    assert await versions.effective_version() == approved.version
    (waiting,) = await versions.list(status="proposed")
    assert (waiting.version, waiting.proposed_by) == (released.version, "files")
