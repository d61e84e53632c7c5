"""The connectors table and its generation, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from redis.asyncio import Redis

from connectors import load_manifests, parse_manifest
from gateway.storage import (
    CONNECTORS_CHANNEL,
    active_connectors,
    add_connector_version,
    approve_connector_version,
    connectors_generation,
    create_engine,
    disable_connector,
    get_connector,
    list_connector_versions,
    notify_connectors_changed,
    record_connectors,
)


@pytest.mark.own_database  # it records manifests of its own
async def test_the_generation_rises_with_every_change_of_what_is_active(
    migrated: str, manifests: Path, tmp_path: Path
) -> None:
    files = load_manifests(manifests)
    engine = create_engine(migrated)
    try:
        start = await connectors_generation(engine)
        await record_connectors(engine, files, origin="folder")
        recorded = await connectors_generation(engine)
        await record_connectors(engine, files, origin="folder")  # nothing changed
        same = await connectors_generation(engine)
        await record_connectors(engine, files[1:], origin="folder")  # one dropped
        dropped = await connectors_generation(engine)
        data = yaml.safe_load((manifests / "population.yaml").read_text(encoding="utf-8"))
        data = {k: v for k, v in data.items() if not k.startswith("x-")}
        data["name"] = "registered"
        assert parse_manifest(data).name == "registered"
        async with engine.begin() as conn:
            version = await add_connector_version(
                conn, name="registered", organisation="VN/GOV/T", manifest=data, submitted_by="a"
            )
        pending = await connectors_generation(engine)
        async with engine.begin() as conn:
            approved = await approve_connector_version(
                conn, name="registered", version=version, approved_by="b"
            )
        active = {c.name: c for c in await active_connectors(engine)}
        info = await get_connector(engine, "registered")
        async with engine.begin() as conn:
            disabled = await disable_connector(conn, name="registered")
            again = await disable_connector(conn, name="registered")
        history = await list_connector_versions(engine, "registered")
        # A file of the name of a connector registered through the API does not replace it.
        (tmp_path / "registered.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
        versions = await record_connectors(engine, load_manifests(tmp_path), origin="other")
        still = await get_connector(engine, "registered")
    finally:
        await engine.dispose()
    assert start < recorded == same < dropped == pending < approved < (disabled or 0)
    assert again is None
    assert active["registered"].version == 1
    assert active["registered"].organisation == "VN/GOV/T"
    assert active["registered"].manifest == data
    assert files[0].name not in active
    assert info is not None
    assert (info.status, info.organisation, info.origin) == ("active", "VN/GOV/T", "api")
    assert [(v.status, v.submitted_by, v.approved_by) for v in history] == [("approved", "a", "b")]
    assert versions == {}
    assert still is not None
    assert (still.status, still.origin) == ("disabled", "api")


async def test_a_change_is_announced_on_redis(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        pubsub = redis.pubsub()
        await pubsub.subscribe(CONNECTORS_CHANNEL)
        await pubsub.get_message(timeout=1.0)  # the subscription's confirmation
        await notify_connectors_changed(redis, 42)
        message = None
        for _ in range(20):
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if message is not None:
                break
            await asyncio.sleep(0.05)
        await pubsub.aclose()
    finally:
        await redis.aclose()
    assert message is not None
    assert message["data"] == b"42"
    await notify_connectors_changed(None, 43)  # without Redis: nothing, no error
