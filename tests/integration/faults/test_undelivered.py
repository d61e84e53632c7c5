"""A record that commits after its request was answered 503 is marked undelivered.

The gateway's link to PostgreSQL goes through a fault proxy that slows it, so that
the commit of a request's access record outlives the recorder's wait
(`GATEWAY_RECORDER_TIMEOUT`): the request is answered 503 `AUDIT_UNAVAILABLE` with no
data, yet the record still commits, saying served. A second record, of outcome
`undelivered`, then names it; the citizen, the auditor and the figures see a read
that reached no one, and the log still verifies.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from conftest import HANG_GUARD, post_lookup
from prometheus_client.parser import text_string_to_metric_families

from gateway.storage import create_engine, events

# The proxy slows the database's link: a database of the test's own.
pytestmark = pytest.mark.own_database

RECORDER_TIMEOUT = 1.0
SLOW = 0.4
"""Seconds each chunk on the database's link waits: a commit takes several round trips."""


async def _records(database_url: str, request_id: str) -> list[tuple[str, str, Any, int]]:
    """The request's records in order: (id, outcome, envelope, fields served).

    Waits (at most `HANG_GUARD`) until a record marks the request's undelivered.
    """
    engine = create_engine(database_url)
    # In the order they were written (the sequencer may have taken the first already).
    query = (
        sa.select(events.c.id, events.c.outcome, events.c.envelope, events.c.fields_served)
        .where(events.c.request_id == request_id)
        .order_by(events.c.ts)
    )

    async def marked() -> list[tuple[str, str, Any, int]]:
        while True:
            async with engine.connect() as conn:
                rows = [tuple(row) for row in await conn.execute(query)]
            if any(outcome == "undelivered" for _, outcome, _, _ in rows):
                return rows
            await asyncio.sleep(0.1)

    try:
        return await asyncio.wait_for(marked(), HANG_GUARD)
    finally:
        await engine.dispose()


def _envelope(value: Any) -> dict[str, Any]:
    found: dict[str, Any] = value if isinstance(value, dict) else orjson.loads(value)
    return found


def _fields_served(metrics: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "gateway_fields_served"
        for sample in family.samples
        if sample.name == "gateway_fields_served_total"
    )


async def test_a_record_that_commits_after_its_503_is_marked_undelivered(
    gateway_factory, faults, place, redis_url, dataset, sign_in
) -> None:
    database_url, proxy = faults.to(place.database_url)
    gateway = gateway_factory.start(
        database_url=database_url, redis_url=redis_url, recorder_timeout=RECORDER_TIMEOUT
    )
    alice, bob = (str(p) for p in dataset.sample.citizens[:2])
    operator = await sign_in.staff("operator")
    async with gateway.client() as client, gateway.client(auth=None) as http:
        served = await post_lookup(client, alice)
        assert served.status_code == 200, served.text
        before = _fields_served((await http.get("/metrics", headers=operator)).text)

        proxy.delay(SLOW)
        refused = await post_lookup(client, bob)
        proxy.heal()

        # The answer: 503, no data.
        assert refused.status_code == 503, refused.text
        body = orjson.loads(refused.content)
        assert "data" not in body, body
        assert body["code"] == "AUDIT_UNAVAILABLE", body

        # The record committed all the same, then the one that says it was not delivered.
        (first, outcome, _, fields), (mark, marked, envelope, _) = await _records(
            place.database_url, refused.headers["x-request-id"]
        )
        assert (outcome, marked) == ("served", "undelivered")
        assert fields > 0  # as written, it would have counted
        assert _envelope(envelope)["undelivered"] == first
        await gateway.caught_up()
        after = _fields_served((await http.get("/metrics", headers=operator)).text)

        mine = await http.get("/me/accesses", headers=await sign_in.citizen(bob))
        assert mine.status_code == 200, mine.text
        [access] = mine.json()["accesses"]
        assert access["id"] == first
        assert access["outcome"] == "undelivered"
        assert access["fields"] == []
        assert access["notDelivered"] == ["Citizen.fullName"]

        auditor = await sign_in.staff("auditor")
        searched = await http.get(
            "/audit/events", params={"client": gateway.signer.client_id}, headers=auditor
        )
        assert searched.status_code == 200, searched.text
        shown = {item["id"]: item["outcome"] for item in searched.json()["events"]}
        assert shown[first] == shown[mark] == "undelivered"

        stats = await http.get("/admin/stats", headers=operator)
        assert stats.status_code == 200, stats.text
    rows = stats.json()["rows"]
    assert sum(r["requests"] for r in rows) == 2
    # Only Alice's read served anything (as much as Bob's would have); Bob's reached no one.
    assert sum(r["fieldsServed"] for r in rows) == fields
    assert after == before  # the counters never counted it
    report = await gateway.audit()
    assert report.ok, report
