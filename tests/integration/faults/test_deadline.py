"""Every request has a deadline: a silent database answers 503 in time, with no data;
a silent source makes only its fields time out, in an answer given in time.

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
from conftest import HANG_GUARD, lookup, post_lookup, recorded

from gateway.storage import create_engine, events

# The proxy silences the database's link: a database of the test's own.
pytestmark = pytest.mark.own_database

DEADLINE = 1.5


def _refused_in_time(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    body = orjson.loads(response.content)
    assert "data" not in body, body
    assert body["code"] in {"DEADLINE_EXCEEDED", "AUDIT_UNAVAILABLE"}, body


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
        first = await post_lookup(client, people[0])
        assert first.status_code == 200, first.text
        served.append(first.headers["x-request-id"])

        proxy.pause()
        # One after the other, and several at once: each is refused, none hangs.
        _refused_in_time(await post_lookup(client, people[1]))
        for response in await asyncio.gather(*(post_lookup(client, p) for p in people[2:5])):
            _refused_in_time(response)

        proxy.heal()
        for attempt in range(60):
            response = await post_lookup(client, people[attempt % len(people)])
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
    assert await recorded(place.database_url, served) == set(served)
    report = await gateway.audit()
    assert report.ok, report


async def test_a_source_silent_past_the_deadline_times_out_its_fields_in_time(
    gateway_factory, faults, population_url, redis_url, signer, dataset
) -> None:
    """A source that never answers: its fields are `SOURCE_TIMEOUT`, the answer in time.

    Its call is cut at the request's deadline less the time kept to record the access,
    so the request is answered 200 with the field's error, not 503, and recorded; its
    token is spent like any served request's.
    """
    from gateway.records import read_envelope

    source_url, source = faults.to(population_url)
    gateway = gateway_factory.start(
        connector_urls={"population": source_url},
        redis_url=redis_url,
        request_deadline=DEADLINE,
    )
    person = str(dataset.sample.citizens[0])
    body = orjson.dumps(lookup(person))
    token = signer.sign(body, procedure="1.004222", subjects=[person])
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    async with gateway.client(auth=None) as http:
        source.pause()  # admitted, then the source never answers
        late = await asyncio.wait_for(
            http.post("/graphql", content=body, headers=headers), HANG_GUARD
        )
        source.heal()
        again = await http.post("/graphql", content=body, headers=headers)
    assert late.status_code == 200, late.text
    assert late.json()["data"]["citizen"] is None
    assert [e["extensions"]["code"] for e in late.json()["errors"]] == ["SOURCE_TIMEOUT"]
    assert (again.status_code, again.json()["code"]) == (401, "TOKEN_REPLAYED")
    engine = create_engine(gateway.settings.database_url.get_secret_value())
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(events.c.outcome, events.c.envelope).where(
                        events.c.request_id == late.headers["x-request-id"]
                    )
                )
            ).one()
    finally:
        await engine.dispose()
    envelope = read_envelope(row.envelope)
    assert row.outcome == "no_data"  # recorded: nothing was served, the source timed out
    assert envelope["status"] == 200
