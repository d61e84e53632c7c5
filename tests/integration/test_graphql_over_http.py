"""GraphQL over HTTP: methods, media types and status codes, as a client sees them."""

from __future__ import annotations

import httpx
import pytest

GR = "application/graphql-response+json"
QUERY = '{ citizen(personalId: "001999999999") { fullName } }'


@pytest.fixture
async def client(gateway):
    async with gateway.client() as c:
        yield c


async def test_post_json_answers_in_the_accepted_media_type(client) -> None:
    response = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Accept": GR}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(GR)
    assert response.json()["data"] == {"__typename": "Query"}


async def test_plain_json_clients_get_application_json(client) -> None:
    response = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Accept": "application/json"}
    )
    assert response.headers["content-type"].startswith("application/json")
    no_accept = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Accept": ""}
    )
    assert no_accept.headers["content-type"].startswith("application/json")


async def test_get_runs_queries_without_redirect(client) -> None:
    response = await client.get(
        "/graphql", params={"query": "{ __typename }"}, headers={"Accept": GR}
    )
    assert response.status_code == 200
    assert response.json()["data"] == {"__typename": "Query"}
    assert not response.history


async def test_get_with_variables(client) -> None:
    response = await client.get(
        "/graphql",
        params={
            "query": "query($id: String!) { citizen(personalId: $id) { fullName } }",
            "variables": '{"id": "123"}',
        },
        headers={"Accept": GR},
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_IDENTIFIER"


async def test_mutation_over_get_is_405(client) -> None:
    response = await client.get(
        "/graphql", params={"query": "mutation { x }"}, headers={"Accept": GR}
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["code"] == "METHOD_NOT_ALLOWED"


async def test_other_methods_are_405(client) -> None:
    response = await client.put("/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"'])
async def test_bad_json_is_400(client, body: bytes) -> None:
    response = await client.post(
        "/graphql", content=body, headers={"Content-Type": "application/json", "Accept": GR}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "BAD_JSON"


async def test_bad_variables_in_get_are_400(client) -> None:
    response = await client.get("/graphql", params={"query": "{ __typename }", "variables": "{"})
    assert response.status_code == 400
    assert response.json()["code"] == "BAD_JSON"


@pytest.mark.parametrize(
    "payload", [{}, {"query": ""}, {"query": 3}, {"query": "{ __typename }", "variables": [1]}]
)
async def test_missing_or_wrong_parameters_are_400(client, payload) -> None:
    response = await client.post("/graphql", json=payload, headers={"Accept": GR})
    assert response.status_code == 400
    assert response.json()["code"] == "BAD_REQUEST"


async def test_request_errors_with_graphql_response_json_are_4xx_without_data(client) -> None:
    parse = await client.post("/graphql", json={"query": "{ citizen("}, headers={"Accept": GR})
    assert parse.status_code == 400
    assert "data" not in parse.json()
    assert parse.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    invalid = await client.post("/graphql", json={"query": "{ nope }"}, headers={"Accept": GR})
    assert invalid.status_code == 400
    assert "data" not in invalid.json()
    assert invalid.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_request_errors_with_application_json_are_200(client) -> None:
    response = await client.post(
        "/graphql", json={"query": "{ nope }"}, headers={"Accept": "application/json"}
    )
    assert response.status_code == 200
    assert "data" not in response.json()


async def test_field_errors_stay_200_with_data(client) -> None:
    response = await client.post("/graphql", json={"query": QUERY}, headers={"Accept": GR})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"citizen": None}
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_unacceptable_media_type_is_406(client) -> None:
    response = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Accept": "text/csv"}
    )
    assert response.status_code == 406
    assert response.json()["code"] == "NOT_ACCEPTABLE"


async def test_form_bodies_are_415(client) -> None:
    response = await client.post("/graphql", data={"query": "{ __typename }"})
    assert response.status_code == 415


async def test_oversized_bodies_are_413(client) -> None:
    response = await client.post(
        "/graphql", json={"query": "{ __typename }", "pad": "x" * 70_000}, headers={"Accept": GR}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"


async def test_alias_limit(client) -> None:
    query = "{ " + " ".join(f"a{i}: __typename" for i in range(40)) + " }"
    response = await client.post("/graphql", json={"query": query}, headers={"Accept": GR})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    fewer = "{ " + " ".join(f"a{i}: __typename" for i in range(30)) + " }"
    assert (await client.post("/graphql", json={"query": fewer}, headers={"Accept": GR})).is_success


async def test_depth_and_token_limits(gateway_factory) -> None:
    gateway = gateway_factory(max_depth=2, max_tokens=60)
    async with gateway.client() as client:
        deep = await client.post(
            "/graphql",
            json={"query": '{ citizen(personalId: "1") { household { head { fullName } } } }'},
            headers={"Accept": GR},
        )
        assert deep.status_code == 400
        assert deep.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        long = await client.post(
            "/graphql",
            json={"query": "{ " + " ".join(["__typename"] * 80) + " }"},
            headers={"Accept": GR},
        )
        assert long.status_code == 400
        assert long.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_introspection_can_be_switched_off(gateway_factory) -> None:
    gateway = gateway_factory(introspection=False)
    async with gateway.client() as client:
        response = await client.post(
            "/graphql", json={"query": "{ __schema { types { name } } }"}, headers={"Accept": GR}
        )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "INTROSPECTION_DISABLED"


async def test_request_ids_are_the_gateways_own(client) -> None:
    given = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"X-Request-Id": "079203001234"}
    )
    assert given.headers["x-request-id"] != "079203001234"
    assert len(given.headers["x-request-id"]) == 32


async def test_query_page_is_off_by_default(client) -> None:
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 406
    assert (await client.get("/static/query-page.js")).status_code == 404
    assert (await client.get("/static/graphiql/graphiql.min.js")).status_code == 404
    # The citizen's pages need their own styles and scripts whether or not it is on.
    assert (await client.get("/static/pages.css")).status_code == 200
    assert (await client.get("/static/toi.js")).status_code == 200
    assert isinstance(response, httpx.Response)
