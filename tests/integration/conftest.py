"""Real servers for integration tests: sandboxes, gateways, PostgreSQL, Redis.

Every server is a real uvicorn on an ephemeral loopback port, so the gateway talks
HTTP to the sandboxes exactly as in production. PostgreSQL and Redis tests run when the
service answers; under CI=true a missing service fails the run instead of skipping.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

import sandbox
from gateway.app import create_app
from gateway.config import GatewaySettings
from gateway.storage import create_engine, upgrade
from sandbox import SandboxSettings, business, generate, population

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
MANIFESTS = Path(sandbox.__file__).parent / "manifests"
CITIZENS = 2_000


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def require_service(name: str, port: int) -> None:
    """Skip when the service is down, except under CI, where that is a failure."""
    if _answers(port):
        return
    message = f"{name} does not answer on 127.0.0.1:{port}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI requires it", pytrace=False)
    pytest.skip(message)


class ServerThread:
    """A uvicorn server in a thread of its own, on an ephemeral loopback port."""

    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ServerThread:
        self.thread.start()
        for _ in range(600):
            if self.server.started:
                break
            if not self.thread.is_alive():
                raise RuntimeError("server failed to start")
            threading.Event().wait(0.05)
        else:
            raise RuntimeError("server did not start in 30 s")
        return self

    @property
    def url(self) -> str:
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture(scope="session")
def manifests() -> Path:
    """The sandbox agencies' connector manifests."""
    return MANIFESTS


@pytest.fixture(scope="session")
def sandbox_settings() -> SandboxSettings:
    return SandboxSettings(citizens=CITIZENS)


@pytest.fixture(scope="session")
def dataset() -> sandbox.Dataset:
    return generate(SandboxSettings(citizens=CITIZENS))


@pytest.fixture(scope="session")
def start_server() -> Iterator[Callable[[Any], ServerThread]]:
    started: list[ServerThread] = []

    def start(app: Any) -> ServerThread:
        server = ServerThread(app).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def population_url(dataset: sandbox.Dataset, start_server: Callable[[Any], ServerThread]) -> str:
    return start_server(population.create_app(SandboxSettings(citizens=CITIZENS), dataset)).url


@pytest.fixture(scope="session")
def business_url(dataset: sandbox.Dataset, start_server: Callable[[Any], ServerThread]) -> str:
    return start_server(business.create_app(SandboxSettings(citizens=CITIZENS), dataset)).url


@pytest.fixture(scope="session")
def postgres_admin() -> str:
    require_service("PostgreSQL", 5432)
    return POSTGRES_ADMIN


@pytest.fixture(scope="session")
def redis_url() -> str:
    require_service("Redis", 6379)
    return REDIS_URL


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database of each backend (PostgreSQL: a database of its own)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
        return
    request.getfixturevalue("postgres_admin")
    name = f"gw_test_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def migrated(database_url: str) -> str:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    return database_url


@dataclass
class Gateway:
    url: str
    settings: GatewaySettings
    server: ServerThread

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10.0, **kwargs)

    async def query(self, query: str, **variables: Any) -> dict[str, Any]:
        async with self.client() as client:
            response = await client.post(
                "/graphql",
                json={"query": query, "variables": variables or None},
                headers={"Accept": "application/graphql-response+json"},
            )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def gateway_factory(
    migrated: str,
    tmp_path: Path,
    population_url: str,
    business_url: str,
) -> Iterator[Callable[..., Gateway]]:
    """Start gateways on the migrated database; all are stopped after the test."""
    servers: list[ServerThread] = []

    def make(**overrides: Any) -> Gateway:
        urls = {"population": population_url, "business": business_url}
        urls.update(overrides.pop("connector_urls", {}))
        urls = {name: url for name, url in urls.items() if url is not None}
        options: dict[str, Any] = {
            "database_url": migrated,
            "keys_dir": tmp_path / "keys",
            "connectors_dir": MANIFESTS,
            "connector_urls": urls,
            "environment": "development",
            **overrides,
        }
        settings = GatewaySettings(_env_file=None, **options)  # type: ignore[call-arg]
        server = ServerThread(create_app(settings)).start()
        servers.append(server)
        return Gateway(server.url, settings, server)

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def gateway(gateway_factory: Callable[..., Gateway]) -> Gateway:
    return gateway_factory()


class SandboxStats:
    """Reads and resets the call counters a sandbox keeps of the lookups it served."""

    async def get(self, url: str) -> dict[str, Any]:
        async with httpx.AsyncClient() as client:
            stats: dict[str, Any] = (await client.get(f"{url}/_sandbox/stats")).json()
            return stats

    async def calls(self, url: str) -> int:
        return sum((await self.get(url))["calls"].values())

    async def reset(self, *urls: str) -> None:
        async with httpx.AsyncClient() as client:
            await asyncio.gather(*(client.post(f"{u}/_sandbox/stats/reset") for u in urls))


@pytest.fixture
async def stats(population_url: str, business_url: str) -> SandboxStats:
    counters = SandboxStats()
    await counters.reset(population_url, business_url)
    return counters
