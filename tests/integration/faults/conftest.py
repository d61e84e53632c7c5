"""The fault suite: gateways on real PostgreSQL and Redis, each link through a fault proxy.

`faults.database(place)` gives the test's database URL through a proxy of its own,
`faults.redis()` Redis's, `faults.to(url)` any loopback HTTP source's; each proxy can
then `cut`, `pause`, `delay` and `heal` (see `bench/_faults.py`). Tests assert order and
outcome, never timings; a guard of 30 s stops a test that hangs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import sqlalchemy as sa

from bench._faults import FaultProxy
from gateway.storage import create_engine, events

HANG_GUARD = 30.0
"""Seconds after which a wait in a fault test counts as a hang."""


def lookup(person: str) -> dict[str, str]:
    """The body of a GraphQL lookup of one citizen's name."""
    return {"query": f'{{ citizen(personalId: "{person}") {{ fullName }} }}'}


async def post_lookup(client: httpx.AsyncClient, person: str) -> httpx.Response:
    """`lookup(person)` posted with `client`, within the hang guard."""
    return await asyncio.wait_for(
        client.post(
            "/graphql",
            json=lookup(person),
            headers={"Accept": "application/graphql-response+json"},
        ),
        HANG_GUARD,
    )


async def recorded(database_url: str, request_ids: list[str]) -> set[str]:
    """Which of these requests have a record."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.select(events.c.request_id).where(events.c.request_id.in_(request_ids))
            )
            return {row.request_id for row in rows}
    finally:
        await engine.dispose()


class Faults:
    """The proxies of one test, stopped after it."""

    def __init__(self) -> None:
        self._proxies: list[FaultProxy] = []

    def proxy(self, host: str, port: int) -> FaultProxy:
        proxy = FaultProxy(host, port).start()
        self._proxies.append(proxy)
        return proxy

    def to(self, url: str) -> tuple[str, FaultProxy]:
        """`url` rewritten to go through a new proxy, and that proxy."""
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port
        assert port is not None, url
        proxy = self.proxy(host, port)
        netloc = parts.netloc.rsplit("@", 1)
        user = f"{netloc[0]}@" if len(netloc) == 2 else ""
        return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{proxy.port}")), proxy

    def stop(self) -> None:
        for proxy in self._proxies:
            proxy.stop()


@pytest.fixture
def faults() -> Iterator[Faults]:
    found = Faults()
    yield found
    found.stop()


# The fault suite runs on PostgreSQL: replicas share one database in production.
@pytest.fixture(scope="session", params=["postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    request.getfixturevalue("postgres_admin")
    return str(request.param)
