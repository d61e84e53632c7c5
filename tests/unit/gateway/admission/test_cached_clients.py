"""`CachedClients`: tokens are verified from memory, and a change still takes effect.

A change made in this process (any registry of it) is seen by the next lookup; one made
elsewhere (another process writes the table and raises the generation, as the CLI
does) once `poll_seconds` have passed. A lookup read from the database while a change
was made is not kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from joserfc.jwk import OKPKey
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.admission import CachedClients, ClientRegistry
from gateway.errors import AuditUnavailable
from gateway.records import admin_recorder
from gateway.storage import client_generation, client_keys, clients, create_engine, upgrade

CLIENT = "VN/GOV/CA-HN/cu-tru"
RECORD = admin_recorder(pseudonym_key=b"k" * 32, policy_version="v1", operator="op-1",
                        operator_org="VN/GOV/BCA")  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class CountingRegistry(ClientRegistry):
    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.lookups = 0
        self.generations = 0

    async def lookup(self, client_id: str, kid: str):  # type: ignore[no-untyped-def]
        self.lookups += 1
        return await super().lookup(client_id, kid)

    async def generation(self) -> int:
        self.generations += 1
        return await super().generation()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    await upgrade(engine)
    registry = ClientRegistry(engine)
    await registry.add(
        CLIENT, name="n", organisation="o", agency_kinds=["commune_police"], record=RECORD
    )
    await registry.add_key(
        CLIENT, OKPKey.generate_key("Ed25519").as_dict(private=False), kid="ed-1", record=RECORD
    )
    yield engine
    await engine.dispose()


async def _elsewhere(engine: AsyncEngine, status: str) -> None:
    """What another process does: the row and the generation, in one transaction."""
    async with engine.begin() as conn:
        await conn.execute(clients.update().where(clients.c.id == CLIENT).values(status=status))
        await conn.execute(
            client_generation.update().values(generation=client_generation.c.generation + 1)
        )


async def test_a_known_key_is_read_once_while_nothing_changes(engine: AsyncEngine) -> None:
    clock = Clock()
    registry = CountingRegistry(engine)
    cache = CachedClients(registry, poll_seconds=0.25, clock=clock)
    for _ in range(5):
        client, key = await cache.lookup(CLIENT, "ed-1")  # type: ignore[misc]
        assert client.active
        assert key.status == "active"
        clock.now += 0.1
    assert registry.lookups == 1
    # The generation is read again once 0.25 s have passed: twice in 0.5 s.
    assert registry.generations == 2
    # Unknown kids are not kept: each is read again.
    assert await cache.lookup(CLIENT, "nope") is None
    assert await cache.lookup(CLIENT, "nope") is None
    assert registry.lookups == 3


async def test_a_change_made_here_is_seen_by_the_next_lookup(engine: AsyncEngine) -> None:
    clock = Clock()
    cache = CachedClients(ClientRegistry(engine), poll_seconds=60, clock=clock)
    assert (await cache.lookup(CLIENT, "ed-1"))[0].active  # type: ignore[index]
    # Another registry object of this process (the operator's API, a console).
    await ClientRegistry(engine).set_status(CLIENT, "suspended", record=RECORD)
    assert not (await cache.lookup(CLIENT, "ed-1"))[0].active  # type: ignore[index]
    await ClientRegistry(engine).revoke_key(CLIENT, "ed-1", record=RECORD)
    assert (await cache.lookup(CLIENT, "ed-1"))[1].status == "revoked"  # type: ignore[index]


async def test_a_change_made_elsewhere_is_seen_within_poll_seconds(engine: AsyncEngine) -> None:
    clock = Clock()
    cache = CachedClients(ClientRegistry(engine), poll_seconds=0.25, clock=clock)
    assert (await cache.lookup(CLIENT, "ed-1"))[0].active  # type: ignore[index]
    await _elsewhere(engine, "suspended")
    clock.now += 0.1
    # Within the interval the entry may still serve (the bound, not a promise of staleness).
    await cache.lookup(CLIENT, "ed-1")
    clock.now += 0.2
    assert not (await cache.lookup(CLIENT, "ed-1"))[0].active  # type: ignore[index]
    await _elsewhere(engine, "active")
    clock.now += 0.3
    assert (await cache.lookup(CLIENT, "ed-1"))[0].active  # type: ignore[index]


async def test_a_read_under_way_during_a_change_is_not_kept(engine: AsyncEngine) -> None:
    gate = asyncio.Event()
    released = asyncio.Event()

    class SlowRegistry(ClientRegistry):
        async def lookup(self, client_id: str, kid: str):  # type: ignore[no-untyped-def]
            found = await super().lookup(client_id, kid)  # read before the change
            released.set()
            await gate.wait()
            return found

    cache = CachedClients(SlowRegistry(engine), poll_seconds=60, clock=Clock())
    reading = asyncio.ensure_future(cache.lookup(CLIENT, "ed-1"))
    await released.wait()
    await ClientRegistry(engine).set_status(CLIENT, "suspended", record=RECORD)
    gate.set()
    stale = await reading
    assert stale is not None
    assert stale[0].active
    # It was not kept: the next lookup reads the suspension (the gate stays open).
    found = await asyncio.wait_for(cache.lookup(CLIENT, "ed-1"), 5)
    assert found is not None
    assert not found[0].active


async def test_one_generation_read_serves_concurrent_lookups(engine: AsyncEngine) -> None:
    registry = CountingRegistry(engine)
    cache = CachedClients(registry, poll_seconds=0.25, clock=Clock())
    await asyncio.gather(*(cache.lookup(CLIENT, "ed-1") for _ in range(20)))
    assert registry.generations == 1


async def test_a_generation_that_cannot_be_read_is_audit_unavailable(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'gateway.db'}")
    try:
        cache = CachedClients(ClientRegistry(engine), poll_seconds=0.25, clock=Clock())
        with pytest.raises(AuditUnavailable):
            await cache.lookup(CLIENT, "ed-1")
    finally:
        await engine.dispose()


async def test_every_change_raises_the_generation(engine: AsyncEngine) -> None:
    registry = ClientRegistry(engine)

    async def generation() -> int:
        async with engine.connect() as conn:
            return int(await conn.scalar(sa.select(client_generation.c.generation)))

    before = await generation()  # the fixture registered a client and a key
    assert before == 2
    await registry.set_status(CLIENT, "suspended", record=RECORD)
    await registry.set_status(CLIENT, "active", record=RECORD)
    await registry.revoke_key(CLIENT, "ed-1", record=RECORD)
    assert await generation() == before + 3
    async with engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(client_keys)) == 1
