"""When Redis goes: the refusals it causes are recorded, and a token it refused can retry.

Every link to Redis goes through a fault proxy of the test's own; the gateway is the
test's own too, so that stopping it flushes the summaries of its refusals. A Redis that
refuses connections or never answers makes admission answer 503 `SERVICE_UNAVAILABLE`
itself, recorded by the rule for refusals, and not the request's deadline (unrecorded);
the token of a request the gateway answered 503 may come once more, and a token that
was served never again.
"""

from __future__ import annotations

import asyncio
import base64

import orjson
import sqlalchemy as sa
from conftest import HANG_GUARD

from gateway.admission import sign_request
from gateway.records import read_envelope
from gateway.storage import create_engine, events
from policies import Purpose

RESIDENCE = "1.004222"
DEADLINE = 3.0
"""Shorter than the Redis client's own socket timeout (5 s): only admission's bound on
its wait for Redis makes a silent Redis a refusal rather than the request's deadline."""


def _read(person: str) -> bytes:
    return orjson.dumps({"query": f'{{ citizen(personalId: "{person}") {{ fullName }} }}'})


def _sign(signer, body: bytes, person: str) -> str:
    return sign_request(
        client_id=signer.client_id,
        key=signer.key,
        kid=signer.kid,
        audience=signer.audience,
        body=body,
        purpose=Purpose(RESIDENCE, "C-1", "o-1", (person,)),
    )


async def _post(http, body: bytes, token: str):
    return await asyncio.wait_for(
        http.post(
            "/graphql",
            content=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        ),
        HANG_GUARD,
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


def _refused_503(answer) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "SERVICE_UNAVAILABLE"
    assert int(answer.headers["Retry-After"]) > 0


async def test_refusals_while_redis_is_down_are_recorded_by_the_rule(
    gateway_factory, redis_url, faults, signer, dataset
) -> None:
    proxied, link = faults.to(redis_url)
    gateway = gateway_factory.start(redis_url=proxied, request_deadline=DEADLINE)
    person = dataset.sample.citizens[0]
    body = _read(person)
    async with gateway.client(auth=None) as http:
        # Redis refuses connections, then takes them and never answers: each request
        # is answered 503 by the gateway, never held until nobody can record it.
        link.cut()
        cut = [await _post(http, body, _sign(signer, body, person)) for _ in range(3)]
        link.pause()
        paused = [await _post(http, body, _sign(signer, body, person)) for _ in range(2)]
        link.heal()
    for answer in cut + paused:
        _refused_503(answer)
    gateway.server.stop()  # a gateway that stops writes the summary of the open minute
    found = await _records(gateway, signer.client_id)
    assert {outcome for outcome, _ in found} == {"rejected:SERVICE_UNAVAILABLE"}
    firsts = [e for _, e in found if "refused" not in e]
    summaries = [e for _, e in found if "refused" in e]
    # The first of each minute in full (one, or two if the minute turned), the rest counted.
    assert 1 <= len(firsts) <= 2
    assert len(firsts) + sum(e["refused"] for e in summaries) == 5
    assert all(e["procedure"] == RESIDENCE and e["status"] == 503 for e in firsts)


async def test_a_token_refused_with_503_while_redis_is_silent_is_served_once_on_retry(
    gateway_factory, redis_url, faults, signer, dataset
) -> None:
    proxied, link = faults.to(redis_url)
    gateway = gateway_factory.start(redis_url=proxied, request_deadline=DEADLINE)
    person = dataset.sample.citizens[0]
    body = _read(person)
    token = _sign(signer, body, person)
    async with gateway.client(auth=None) as http:
        # Served first: the gateway holds a connection to Redis, open when it goes silent.
        warm = await _post(http, body, _sign(signer, body, person))
        link.pause()
        refused = await _post(http, body, token)
        # The spend held in the link reaches Redis now, after the 503 was answered.
        link.heal()
        retried = await _post(http, body, token)
        again = await _post(http, body, token)
    assert warm.status_code == 200, warm.text
    _refused_503(refused)
    assert retried.status_code == 200, retried.text
    assert retried.json()["data"]["citizen"]["fullName"]
    assert (again.status_code, again.json()["code"]) == (401, "TOKEN_REPLAYED")
    jti = _jti(token)
    found = await _records(gateway, signer.client_id)
    assert [outcome for outcome, _ in found] == [
        "served",
        "rejected:SERVICE_UNAVAILABLE",
        "served",
        "rejected:TOKEN_REPLAYED",
    ]
    _, (_, first), (_, served), _ = found
    assert first["jti"] == jti
    assert (served["jti"], served["reusesRefusedToken"]) == (jti, True)
    assert "reusesRefusedToken" not in first


async def test_a_served_token_refused_with_503_stays_spent(
    gateway_factory, redis_url, faults, signer, dataset
) -> None:
    proxied, link = faults.to(redis_url)
    gateway = gateway_factory.start(redis_url=proxied, request_deadline=DEADLINE)
    person = dataset.sample.citizens[0]
    body = _read(person)
    token = _sign(signer, body, person)
    async with gateway.client(auth=None) as http:
        served = await _post(http, body, token)
        link.cut()
        refused = await _post(http, body, token)  # a replay the gateway cannot check
        link.heal()
        replayed = await _post(http, body, token)
    assert served.status_code == 200, served.text
    _refused_503(refused)
    assert (replayed.status_code, replayed.json()["code"]) == (401, "TOKEN_REPLAYED")
    found = await _records(gateway, signer.client_id)
    assert [outcome for outcome, _ in found] == [
        "served",
        "rejected:SERVICE_UNAVAILABLE",
        "rejected:TOKEN_REPLAYED",
    ]
    assert not any(e.get("reusesRefusedToken") for _, e in found)


def _jti(token: str) -> str:
    claims = token.split(".")[1]
    return str(orjson.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["jti"])
