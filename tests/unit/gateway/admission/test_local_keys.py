"""Private client keys kept on this machine: under the kid the registry gave them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.admission import ClientRegistry, add_local_key, load_local_key
from gateway.errors import Conflict
from gateway.records import admin_recorder
from gateway.storage import create_engine, upgrade

CLIENT = "VN/GOV/UBND-HN/mot-cua"
RECORD = admin_recorder(
    pseudonym_key=b"tests", policy_version="tests", operator="tests", operator_org=None
)


Registries = Callable[[str], Awaitable[ClientRegistry]]


@pytest.fixture
async def registry_in(tmp_path: Path) -> AsyncIterator[Registries]:
    """A registry in a new database `name`, with the client registered; disposed after."""
    engines: list[AsyncEngine] = []

    async def make(name: str) -> ClientRegistry:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / name}")
        engines.append(engine)
        await upgrade(engine)
        registry = ClientRegistry(engine)
        await registry.add(
            CLIENT,
            name="Một cửa",
            organisation="UBND",
            agency_kinds=["commune_police"],
            record=RECORD,
        )
        return registry

    yield make
    for engine in engines:
        await engine.dispose()


async def test_a_key_is_kept_under_the_kid_asked_for(
    tmp_path: Path, registry_in: Registries
) -> None:
    registry = await registry_in("a.db")
    _, kid = await add_local_key(
        registry, tmp_path / "keys", CLIENT, kid="mot-cua-1", record=RECORD
    )
    assert kid == "mot-cua-1"
    assert load_local_key(tmp_path / "keys", CLIENT, "mot-cua-1")[1] == "mot-cua-1"


async def test_a_stale_private_key_of_that_kid_is_refused_before_anything_is_registered(
    tmp_path: Path, registry_in: Registries
) -> None:
    first = await registry_in("first.db")
    await add_local_key(first, tmp_path / "keys", CLIENT, kid="mot-cua-1", record=RECORD)
    # A database made anew, the key folder kept (a demo reset).
    again = await registry_in("again.db")
    with pytest.raises(Conflict) as caught:
        await add_local_key(again, tmp_path / "keys", CLIENT, kid="mot-cua-1", record=RECORD)
    assert "already kept" in caught.value.message
    [listed] = [c for c in await again.list() if c["id"] == CLIENT]
    assert listed["keys"] == []
