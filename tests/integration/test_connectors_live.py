"""A connector made active while replicas serve is served by every one, without restart.

An approval (through `/admin/connectors`) writes the version into the database with a
new generation and announces it on Redis; the replicas rebuild their registry from the
database. Without Redis they find the new generation by polling it. Provenance and
the access record name the version that served each answer.
"""

from __future__ import annotations

import asyncio
import datetime
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from redis.asyncio import Redis

import sandbox
from connectors import ConnectorRegistry, load_manifest
from gateway.storage import (
    API_ORIGIN,
    bound_fields,
    bump_generation,
    connectors,
    create_engine,
    events,
    manifest_digest,
    notify_connectors_changed,
)
from gateway.web._live_connectors import LiveConnectors

MANIFESTS = Path(sandbox.__file__).parent / "manifests"
PLATFORM = "VN/GOV/BCA"
"""The platform's operators in development, who approve."""


def _replicas(test: Any) -> Any:
    """PostgreSQL only: replicas share one database; each test records manifests of its own."""
    marked = pytest.mark.own_database(test)
    return pytest.mark.parametrize("backend", ["postgresql"], indirect=True)(marked)


DOCUMENTS = "query($h: String!) { documents(holder: $h) { documentId kind } }"
CITIZEN = "query($p: String!) { citizen(personalId: $p) { fullName } }"
GUARD = 30.0
"""Only against hangs: a change is served well within it."""
UNLIMITED = {"rate_limit_client": 100_000, "rate_limit_officer": 100_000}
"""The tests ask again and again until the change is served."""


def _without(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / "manifests"
    folder.mkdir()
    for path in MANIFESTS.iterdir():
        if path.suffix == ".yaml" and path.stem != name:
            shutil.copy(path, folder / path.name)
    return folder


def _manifest(name: str, url: str | None = None, **changes: Any) -> dict[str, Any]:
    manifest = load_manifest(MANIFESTS / f"{name}.yaml")
    if url is not None:
        manifest = manifest.with_endpoint(url)
    data: dict[str, Any] = manifest.model_dump(mode="json", by_alias=True)
    data.update(changes)
    return data


async def _activate(database_url: str, data: dict[str, Any], *, version: int) -> int:
    """Make `data` the connector's active version, as an approval does (without Redis to
    announce it); the generation."""
    engine = create_engine(database_url)
    now = datetime.datetime.now(datetime.UTC)
    values = {
        "kind": data["kind"],
        "title": data.get("title", ""),
        "agency": data.get("agency", ""),
        "version": version,
        "manifest": data,
        "manifest_sha256": manifest_digest(data),
        "origin": API_ORIGIN,
        "organisation": "VN/GOV/BTP",
        "status": "active",
        "updated_at": now,
    }
    try:
        async with engine.begin() as conn:
            found = await conn.scalar(
                sa.select(connectors.c.name).where(connectors.c.name == data["name"])
            )
            if found is None:
                await conn.execute(
                    connectors.insert().values(name=data["name"], registered_at=now, **values)
                )
            else:
                await conn.execute(
                    connectors.update().where(connectors.c.name == data["name"]).values(**values)
                )
            generation = await bump_generation(conn)
    finally:
        await engine.dispose()
    return generation


async def _envelope(gateway: Any, request_id: str) -> dict[str, Any]:
    engine = create_engine(gateway.settings.database_url.get_secret_value())
    try:
        async with engine.connect() as conn:
            value = await conn.scalar(
                sa.select(events.c.envelope).where(events.c.request_id == request_id)
            )
    finally:
        await engine.dispose()
    assert isinstance(value, dict)
    return value


async def _documents(gateway: Any, person: str) -> tuple[dict[str, Any], str]:
    response = await gateway.post(DOCUMENTS, {"h": person})
    assert response.status_code == 200, response.text
    return response.json(), response.headers["x-request-id"]


def _civil(body: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """The documents of the answer the civil-status registry served, with their index."""
    provenance = body.get("extensions", {}).get("provenance", {})
    return [
        (i, provenance[f"documents.{i}.documentId"])
        for i, _ in enumerate((body.get("data") or {}).get("documents") or [])
        if provenance.get(f"documents.{i}.documentId", {}).get("source") == "civil"
    ]


async def _approve_through(gateway: Any, sign_in: Any, manifest: dict[str, Any]) -> int:
    """An agency registers `manifest` at `gateway`, the platform approves it; its version."""
    org = "VN/GOV/BTP"
    operator = await sign_in.staff("operator", org=PLATFORM, sub="platform-op")
    admin = await sign_in.staff("agency_admin", org=org, sub="civil-admin")
    async with gateway.client(auth=None) as http:
        authority = await http.put(
            f"/admin/authority/{org}",
            json={"fields": sorted(bound_fields(manifest)), "endpoints": ["127.0.0.1"]},
            headers=operator,
        )
        assert authority.status_code == 200, authority.text
        submitted = await http.post("/admin/connectors", json={"manifest": manifest}, headers=admin)
        assert submitted.status_code == 201, submitted.text
        version: int = submitted.json()["version"]
        approved = await http.post(
            f"/admin/connectors/{manifest['name']}/versions/{version}/approve", headers=operator
        )
        assert approved.status_code == 200, approved.text
    return version


@_replicas
async def test_a_connector_approved_at_one_replica_is_served_by_the_other(
    gateway_factory, redis_url, civil_url, dataset, tmp_path, sign_in
) -> None:
    options = {
        **UNLIMITED,
        "redis_url": redis_url,
        "connectors_dir": _without(tmp_path, "civil"),
        "connector_urls": {"civil": None},
        "connectors_allow_loopback": True,  # the sandbox agencies run on this machine
    }
    first = gateway_factory.start(**options)
    second = gateway_factory.start(**options)
    person = dataset.sample.citizens[0]
    before, _ = await _documents(second, person)
    assert _civil(before) == []
    listed = (before.get("data") or {}).get("documents") or []
    assert "BIRTH_CERTIFICATE" not in {d["kind"] for d in listed}

    # Approved through the first, which announces it on Redis. The replicas check the
    # database only every 60 s with Redis: the message is what makes the second serve
    # it within the guard.
    version = await _approve_through(first, sign_in, _manifest("civil", civil_url, priority=500))
    async with asyncio.timeout(GUARD):
        while True:
            body, request_id = await _documents(second, person)
            if _civil(body):
                break
            await asyncio.sleep(0.1)
    kinds = {d["kind"] for d in body["data"]["documents"]}
    assert "BIRTH_CERTIFICATE" in kinds
    assert {p["version"] for _, p in _civil(body)} == {version}
    envelope = await _envelope(second, request_id)
    assert "civil" in envelope["sources"]
    assert envelope["sourceVersions"]["civil"] == version
    assert set(envelope["sourceVersions"]) == set(envelope["sources"])
    # The first serves it too, and the log still verifies with the new field in it.
    served, _ = await _documents(first, person)
    assert _civil(served)
    assert {p["version"] for _, p in _civil(served)} == {version}
    report = await second.audit()
    assert report.ok, report.problem


@_replicas
async def test_without_redis_a_new_version_is_polled_and_one_that_fails_keeps_the_old(
    gateway_factory, dataset, sign_in
) -> None:
    gateway = gateway_factory.start(connectors_poll_seconds=0.2, **UNLIMITED)
    database = gateway.settings.database_url.get_secret_value()
    person = dataset.sample.citizens[0]
    first = await gateway.query(CITIZEN, p=person)
    assert first["extensions"]["provenance"]["citizen.fullName"]["version"] == 1

    population = gateway.settings.connector_urls["population"]
    await _activate(database, _manifest("population", population), version=2)
    async with asyncio.timeout(GUARD):
        while True:
            body = await gateway.query(CITIZEN, p=person)
            if body["extensions"]["provenance"]["citizen.fullName"]["version"] == 2:
                break
            await asyncio.sleep(0.1)
    assert body["data"]["citizen"]["fullName"] == first["data"]["citizen"]["fullName"]

    # A version that does not build (a field the schema lacks): the one before serves on.
    broken = _manifest("population", population)
    broken["entities"]["Citizen"]["fields"]["shoeSize"] = "co_giay"
    generation = await _activate(database, broken, version=3)
    operator = await sign_in.staff("operator")
    async with asyncio.timeout(GUARD), gateway.client(auth=None) as http:
        while True:
            ready = (await http.get("/admin/readiness", headers=operator)).json()
            if ready["connectorsLive"]["failure"] is not None:
                break
            await asyncio.sleep(0.1)
    failure = ready["connectorsLive"]["failure"]
    assert failure["connector"] == "population"
    assert failure["generation"] == generation
    assert "shoeSize" in failure["error"]
    assert "connectorsLive" in ready["degraded"]
    assert ready["connectors"]["population"]["version"] == 2
    still = await gateway.query(CITIZEN, p=person)
    assert still["extensions"]["provenance"]["citizen.fullName"]["version"] == 2
    assert still["data"]["citizen"]["fullName"] == first["data"]["citizen"]["fullName"]


# -- the watcher and Redis, alone ---------------------------------------------------------


class _Store:
    """The connectors in use as a test sets them: one generation after another."""

    def __init__(self) -> None:
        self.number = 1
        self.checks = 0
        self.checked_again = asyncio.Event()

    async def active(self) -> list[Any]:
        return []

    async def generation(self) -> int:
        self.checks += 1
        if self.checks >= 2:
            self.checked_again.set()
        return self.number


async def test_a_message_on_the_channel_wakes_the_watcher(redis_url: str) -> None:
    store = _Store()
    built: list[ConnectorRegistry] = []
    rebuilt = asyncio.Event()

    async def build(_active: Any) -> ConnectorRegistry:
        built.append(ConnectorRegistry([]))
        if len(built) > 1:
            rebuilt.set()
        return built[-1]

    redis = Redis.from_url(redis_url)
    # Checks only every 10 minutes: only the message can make it rebuild in time.
    live = LiveConnectors(store, build, redis=redis, poll_seconds=600)
    try:
        await live.start()
        async with asyncio.timeout(GUARD):
            # Subscribed, it checks once (for a message missed meanwhile); then it waits.
            await store.checked_again.wait()
            store.number = 2
            await notify_connectors_changed(redis, 2)
            await rebuilt.wait()
        assert live.report()["generation"] == 2
        assert len(built) == 2
    finally:
        await live.aclose()
        await redis.aclose()
