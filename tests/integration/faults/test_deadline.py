"""Every request has a deadline: a silent database answers 503 in time, with no data.

The gateway's link to PostgreSQL goes through a fault proxy that pauses it: nothing
tells the gateway the database is gone, every query waits. A request is then answered
503 (`DEADLINE_EXCEEDED`, or `AUDIT_UNAVAILABLE` when the record was cancelled in
flight) with `Retry-After` and no data, within `GATEWAY_REQUEST_DEADLINE` rather than
never; once the link heals, the gateway serves again and every answer that carried
data has its record.
"""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest
import sqlalchemy as sa

from gateway.storage import create_engine, events

# The proxy silences the database's link: a database of the test's own.
pytestmark = pytest.mark.own_database

HANG_GUARD = 30.0  # as in the suite's conftest: a wait longer than this is a hang
DEADLINE = 1.5


def _query(person: str) -> dict[str, str]:
    return {"query": f'{{ citizen(personalId: "{person}") {{ fullName }} }}'}


async def _post(client: httpx.AsyncClient, person: str) -> httpx.Response:
    return await asyncio.wait_for(
        client.post(
            "/graphql",
            json=_query(person),
            headers={"Accept": "application/graphql-response+json"},
        ),
        HANG_GUARD,
    )


def _refused_in_time(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    body = orjson.loads(response.content)
    assert "data" not in body, body
    assert body["code"] in {"DEADLINE_EXCEEDED", "AUDIT_UNAVAILABLE"}, body


async def _recorded(database_url: str, request_ids: list[str]) -> set[str]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.select(events.c.request_id).where(events.c.request_id.in_(request_ids))
            )
            return {row.request_id for row in rows}
    finally:
        await engine.dispose()


async def test_a_silent_database_is_503_within_the_deadline_and_the_gateway_recovers(
    gateway_factory, faults, place, redis_url, dataset
) -> None:
    database_url, proxy = faults.to(place.database_url)
    gateway = gateway_factory.start(
        database_url=database_url, redis_url=redis_url, request_deadline=DEADLINE
    )
    people = [str(p) for p in dataset.sample.citizens]
    served: list[str] = []
    async with gateway.client() as client:
        first = await _post(client, people[0])
        assert first.status_code == 200, first.text
        served.append(first.headers["x-request-id"])

        proxy.pause()
        # One after the other, and several at once: each is refused, none hangs.
        _refused_in_time(await _post(client, people[1]))
        for response in await asyncio.gather(*(_post(client, p) for p in people[2:5])):
            _refused_in_time(response)

        proxy.heal()
        for attempt in range(60):
            response = await _post(client, people[attempt % len(people)])
            if response.status_code == 200:
                assert response.json()["data"]["citizen"]["fullName"], response.text
                served.append(response.headers["x-request-id"])
                if len(served) == 3:
                    break
            else:
                _refused_in_time(response)
            await asyncio.sleep(0.25)
        else:
            raise AssertionError("the gateway did not recover")
    # No answer with data went without its record.
    assert await _recorded(place.database_url, served) == set(served)
    report = await gateway.audit()
    assert report.ok, report
