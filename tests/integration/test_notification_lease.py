"""The notifications' lease on PostgreSQL is timed by the database's clock: a replica
whose clock runs far ahead never takes the lease another holds."""

from __future__ import annotations

import datetime

import httpx

from gateway.notifications import Dispatcher, HttpSender, RecipientSeal
from gateway.storage import upgrade

SEAL = RecipientSeal(b"k" * 32)


def _dispatcher(engine, clock) -> Dispatcher:
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(201)))
    return Dispatcher(
        engine,
        HttpSender("https://channel.example/notifications", http=http),
        SEAL,
        origin="https://gateway.example.gov.vn",
        clock=clock,
        lease_seconds=30,
    )


async def test_a_replica_whose_clock_runs_ahead_does_not_take_the_lease(blank_postgres) -> None:
    engine = blank_postgres
    await upgrade(engine)
    now = datetime.datetime.now(datetime.UTC)
    holder = _dispatcher(engine, lambda: now)
    ahead = _dispatcher(engine, lambda: now + datetime.timedelta(hours=1))
    assert await holder._take_lease()
    assert not await ahead._take_lease()  # its clock says the lease ran out: it did not
    assert await holder._take_lease()  # renewed by its holder
