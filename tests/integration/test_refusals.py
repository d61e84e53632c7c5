"""The rule for recording refusals, and one definition of a request for stats and metrics.

Every request whose signature verified is recorded, whatever refused it; per client,
refusal code and minute the first is recorded in full and the rest in one summary.
`/admin/stats` and `/metrics` count procedure requests and refusals alike, and the
query page's schema lookups are neither.
"""

from __future__ import annotations

import uuid

import orjson
import sqlalchemy as sa
from graphql import get_introspection_query
from prometheus_client.parser import text_string_to_metric_families

from gateway.records import read_envelope
from gateway.storage import create_engine, events

RESIDENCE = "1.004222"


def _read(person: str) -> bytes:
    return orjson.dumps({"query": f'{{ citizen(personalId: "{person}") {{ fullName }} }}'})


async def _post(http, body: bytes, token: str):
    return await http.post(
        "/graphql",
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )


async def _records(gateway, client_id: str) -> list[tuple[str, dict]]:
    engine = create_engine(gateway.settings.database_url.get_secret_value())
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.select(events.c.outcome, events.c.envelope)
                .where(events.c.client_id == client_id, events.c.type == "access")
                .order_by(events.c.ts)
            )
            return [(row.outcome, dict(read_envelope(row.envelope))) for row in rows]
    finally:
        await engine.dispose()


async def test_a_suspended_clients_request_is_recorded(
    gateway, dataset, sign_in, another_client
) -> None:
    client = await another_client("VN/GOV/CA-HN/suspended", ["commune_police"])
    person = dataset.sample.citizens[0]
    operator = await sign_in.staff("operator")
    async with gateway.client(auth=None) as http:
        suspended = await http.post(f"/admin/clients/{client.client_id}/suspend", headers=operator)
        assert suspended.status_code == 200, suspended.text
        body = _read(person)
        refused = await _post(http, body, client.sign(body, procedure=RESIDENCE))
    assert (refused.status_code, refused.json()["code"]) == (401, "UNAUTHENTICATED")
    [(outcome, envelope)] = await _records(gateway, client.client_id)
    assert outcome == "rejected:UNAUTHENTICATED"
    assert (envelope["procedure"], envelope["status"]) == (RESIDENCE, 401)


async def test_a_flood_of_replays_is_a_record_and_a_summary(
    gateway_factory, dataset, another_client
) -> None:
    gateway = gateway_factory.start()
    client = await another_client("VN/GOV/CA-HN/flood", ["commune_police"])
    body = _read(dataset.sample.citizens[0])
    token = client.sign(body, procedure=RESIDENCE)
    async with gateway.client(auth=None) as http:
        statuses = [(await _post(http, body, token)).status_code for _ in range(30)]
    assert statuses == [200] + [401] * 29
    gateway.server.stop()  # a gateway that stops writes the summary of the open minute
    found = await _records(gateway, client.client_id)
    refusals = [(o, e) for o, e in found if o == "rejected:TOKEN_REPLAYED"]
    # A first record in full and a summary per minute the flood touched (one, or two).
    assert 2 <= len(refusals) <= 4
    assert sum(e.get("refused", 1) for _, e in refusals) == 29
    firsts = [e for _, e in refusals if "refused" not in e]
    assert firsts
    assert all(e["procedure"] == RESIDENCE for e in firsts)
    summaries = [e for _, e in refusals if "refused" in e]
    assert summaries
    assert all(set(e) >= {"minute", "client", "errors"} for e in summaries)
    report = await gateway.audit()
    assert report.ok, report.problem


def _metric(metrics: str, name: str, **labels: str) -> float:
    """The sum of the samples `name` whose labels include `labels`."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


async def test_stats_and_metrics_count_the_same_requests(
    gateway, dataset, sign_in, another_client
) -> None:
    organisation = f"Stats agency {uuid.uuid4().hex[:8]}"  # its metrics are this test's
    client = await another_client("VN/GOV/CA-HN/stats", ["commune_police"], organisation)
    person = dataset.sample.citizens[0]
    page_lookup = orjson.dumps({"query": get_introspection_query(descriptions=True)})
    async with gateway.client(auth=None) as http:
        # The query page looks up the schema, signed for the procedure chosen on it.
        looked_up = await _post(
            http, page_lookup, client.sign(page_lookup, procedure=RESIDENCE, subjects=[])
        )
        assert looked_up.status_code == 200, looked_up.text
        assert looked_up.json()["data"]["__schema"]["queryType"]
        for _ in range(2):
            body = _read(person)
            read = await _post(http, body, client.sign(body, procedure=RESIDENCE))
            assert read.status_code == 200, read.text
        body = _read(person)
        token = client.sign(body, procedure=RESIDENCE)
        assert (await _post(http, body, token)).status_code == 200
        assert (await _post(http, body, token)).json()["code"] == "TOKEN_REPLAYED"
        stats = await http.get(
            "/admin/stats",
            params={"procedure": RESIDENCE, "organisation": organisation},
            headers=await sign_in.staff("operator"),
        )
        metrics = (await http.get("/metrics", headers=await sign_in.staff("operator"))).text
    assert stats.status_code == 200, stats.text
    [row] = stats.json()["rows"]
    labels = {"procedure": RESIDENCE, "organisation": organisation}
    assert row["requests"] == 3 == _metric(metrics, "gateway_accesses_total", **labels)
    assert row["refused"] == {"TOKEN_REPLAYED": 1}
    assert _metric(metrics, "gateway_requests_refused_total", code="TOKEN_REPLAYED", **labels) == 1
    # The schema lookup is recorded, as every signed request is, but as what it was.
    outcomes = [outcome for outcome, _ in await _records(gateway, client.client_id)]
    assert outcomes.count("introspection") == 1
