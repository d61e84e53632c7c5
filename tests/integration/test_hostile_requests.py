"""Hostile or careless requests: clear codes, and nothing personal echoed back."""

from __future__ import annotations

import asyncio
import json

import pytest

from gateway.storage import create_engine, list_connectors, record_connectors

GR = "application/graphql-response+json"


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("query($id: String!) { citizen(personalId: $id) { fullName } }", {"id": ["{id}"]}),
        ("query($id: String!) { citizen(personalId: $id) { fullName } }", {"id": {"x": "{id}"}}),
        ('{ citizen(personalId: ["{id}"]) { fullName } }', None),
        (
            "query($ids: [String!]!) { citizens(personalIds: $ids) { fullName } }",
            {"ids": [1, "{id}", 2]},
        ),
    ],
)
async def test_error_messages_never_quote_a_personal_id(gateway, dataset, query, variables) -> None:
    personal_id = dataset.sample.citizens[0]
    query = query.replace("{id}", personal_id)
    if variables is not None:
        variables = json.loads(json.dumps(variables).replace("{id}", personal_id))
    async with gateway.client() as client:
        response = await client.post(
            "/graphql", json={"query": query, "variables": variables}, headers={"Accept": GR}
        )
    assert response.status_code == 400
    assert personal_id not in response.text
    codes = {e["extensions"]["code"] for e in response.json()["errors"]}
    assert codes <= {"INVALID_VARIABLES", "GRAPHQL_VALIDATION_FAILED"}


async def test_an_unknown_variable_name_is_a_validation_error(gateway) -> None:
    async with gateway.client() as client:
        response = await client.post(
            "/graphql",
            json={"query": "query($x: String) { __typename }"},
            headers={"Accept": GR},
        )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_over_the_cap_keeps_the_other_fields(gateway, dataset) -> None:
    ids = list(dataset.citizens)[:51]
    body = await gateway.query(
        """query($ids: [String!]!, $one: String!) {
             citizens(personalIds: $ids) { fullName }
             citizen(personalId: $one) { fullName } }""",
        ids=ids,
        one=ids[0],
    )
    assert body["data"]["citizens"] is None
    assert body["data"]["citizen"]["fullName"]
    assert body["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT"


async def test_replicas_recording_connectors_at_once_do_not_collide(
    postgres_admin, tmp_path, manifests
) -> None:
    import uuid

    import asyncpg

    from connectors import load_manifests
    from gateway.storage import upgrade

    name = f"gw_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_admin)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
        engines = [create_engine(url) for _ in range(4)]
        await upgrade(engines[0])
        found = load_manifests(manifests)
        results = await asyncio.gather(
            *(record_connectors(e, found, origin="test") for e in engines), return_exceptions=True
        )
        assert [r for r in results if isinstance(r, BaseException)] == []
        rows = await list_connectors(engines[0])
        assert {(r["name"], r["version"]) for r in rows} == {
            ("population", 1),
            ("business", 1),
            ("insurance", 1),
            ("civil", 1),
            ("land", 1),
            ("dossiers", 1),
        }
        for engine in engines:
            await engine.dispose()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
