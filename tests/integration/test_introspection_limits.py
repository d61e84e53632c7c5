"""Introspection over HTTP: bounded like any query, and off in production unless asked for."""

from __future__ import annotations

from graphql import get_introspection_query

GR = "application/graphql-response+json"


def _of_type_chain(depth: int) -> str:
    """`__schema { types { fields { type { ofType { … } } } } }`, `depth` fields deep."""
    inner = "name"
    for _ in range(depth - 4):
        inner = f"ofType {{ {inner} }}"
    return f"{{ __schema {{ types {{ fields {{ type {{ {inner} }} }} }} }} }}"


async def _post(gateway, query: str):
    async with gateway.client() as client:
        return await client.post("/graphql", json={"query": query}, headers={"Accept": GR})


async def test_a_depth_50_introspection_chain_is_refused_by_the_depth_limit(gateway) -> None:
    response = await _post(gateway, _of_type_chain(50))
    assert response.status_code == 400
    body = response.json()
    assert "data" not in body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["QUERY_TOO_COMPLEX"]


async def test_the_standard_introspection_query_is_answered(gateway) -> None:
    response = await _post(gateway, get_introspection_query(descriptions=True))
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body
    names = {t["name"] for t in body["data"]["__schema"]["types"]}
    assert {"Query", "Citizen", "__Type"} <= names


async def test_production_answers_introspection_only_when_turned_on(
    gateway_factory, gateway, redis_url
) -> None:
    # `gateway` first: in development it makes the keys a production gateway requires.
    production = gateway_factory(environment="production", redis_url=redis_url)
    assert production.settings.introspection is False
    refused = await _post(production, "{ __schema { queryType { name } } }")
    assert refused.status_code == 400
    assert {e["extensions"]["code"] for e in refused.json()["errors"]} == {"INTROSPECTION_DISABLED"}
    typename = await _post(production, "{ __typename }")
    assert typename.json()["data"] == {"__typename": "Query"}

    turned_on = gateway_factory(environment="production", redis_url=redis_url, introspection=True)
    answered = await _post(turned_on, get_introspection_query(descriptions=True))
    assert answered.status_code == 200, answered.text
    assert "errors" not in answered.json()
