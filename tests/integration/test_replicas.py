"""Several gateway replicas on one PostgreSQL database share Redis for tokens and limits."""

from __future__ import annotations

import uuid

import orjson
import pytest

from gateway.admission import sign_request
from policies import Purpose
from tests.rate_windows import inside_one_window

RESIDENCE = "1.004222"


# PostgreSQL only: several processes share one database in production.
pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


async def test_a_token_spent_at_one_replica_is_refused_at_another(
    gateway_factory, redis_url, signer, dataset, sign_in
) -> None:
    first = gateway_factory.start(redis_url=redis_url)
    second = gateway_factory.start(redis_url=redis_url)
    person = dataset.sample.citizens[0]
    body = orjson.dumps({"query": f'{{ citizen(personalId: "{person}") {{ fullName }} }}'})
    token = sign_request(
        client_id=signer.client_id,
        key=signer.key,
        kid=signer.kid,
        audience=signer.audience,
        body=body,
        purpose=Purpose(RESIDENCE, "C-1", "o-1", (person,)),
    )
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    async with first.client(auth=None) as http:
        assert (await http.post("/graphql", content=body, headers=headers)).status_code == 200
    async with second.client(auth=None) as http:
        replayed = await http.post("/graphql", content=body, headers=headers)
        ready = (await http.get("/admin/readiness", headers=await sign_in.staff("operator"))).json()
    assert replayed.status_code == 401
    assert replayed.json()["code"] == "TOKEN_REPLAYED"
    assert ready["redis"] == {"ok": True}


async def test_limits_per_client_count_across_replicas(
    gateway_factory, redis_url, dataset, another_client
) -> None:
    # Redis outlives tests: a client of its own starts this minute's count at zero.
    own = await another_client(f"VN/GOV/TEST/rl-{uuid.uuid4().hex[:8]}", ["commune_police"])
    first = gateway_factory.start(redis_url=redis_url, rate_limit_client=4)
    second = gateway_factory.start(redis_url=redis_url, rate_limit_client=4)
    person = dataset.sample.citizens[0]
    query = f'{{ citizen(personalId: "{person}") {{ fullName }} }}'
    await inside_one_window()  # the six are counted in one minute's window
    statuses = []
    for i in range(6):
        gateway = first if i % 2 == 0 else second
        # A fresh officer each time: only the client's own limit can be reached.
        response = await gateway.post(
            query, signer=own, procedure=RESIDENCE, officer=f"officer-{i}"
        )
        statuses.append(response.status_code)
    assert statuses == [200, 200, 200, 200, 429, 429]
