"""The demo's token route, over real HTTP: this start's secret, from this machine, unproxied."""

from __future__ import annotations

import secrets

import httpx
import pytest

from gateway.web._demo_tokens import DEMO_SECRET_HEADER

# The route does not depend on the backend.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture
def secret() -> str:
    return secrets.token_urlsafe(32)


@pytest.fixture
def demo_gateway(gateway_factory, demo_client, secret):  # type: ignore[no-untyped-def]
    return gateway_factory(query_page=True, unsafe_demo_tokens=True, unsafe_demo_secret=secret)


def _ask(person: str) -> dict[str, str]:
    body = f'{{"query": "{{ citizen(personalId: \\"{person}\\") {{ fullName }} }}"}}'
    return {"body": body, "procedure": "1.004222"}


async def test_the_secret_from_this_machine_gets_a_token_that_reads(
    demo_gateway, dataset, secret
) -> None:
    person = dataset.sample.citizens[0]
    ask = _ask(person)
    async with httpx.AsyncClient(base_url=demo_gateway.url, timeout=10.0) as http:
        signed = await http.post(
            "/_unsafe/demo-tokens", json=ask, headers={DEMO_SECRET_HEADER: secret}
        )
        assert signed.status_code == 200, signed.text
        answer = await http.post(
            "/graphql",
            content=ask["body"],
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {signed.json()['token']}",
            },
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["citizen"]["fullName"] == dataset.citizens[person]["ho_ten"]


@pytest.mark.parametrize(
    "headers", [{}, {DEMO_SECRET_HEADER: "wrong"}], ids=["no secret", "wrong secret"]
)
async def test_no_token_without_the_secret(demo_gateway, dataset, headers) -> None:
    async with httpx.AsyncClient(base_url=demo_gateway.url, timeout=10.0) as http:
        refused = await http.post(
            "/_unsafe/demo-tokens", json=_ask(dataset.sample.citizens[0]), headers=headers
        )
    assert refused.status_code == 403
    assert refused.json()["code"] == "FORBIDDEN"
    assert refused.json()["detail"] == {"reason": "demo_secret"}


@pytest.mark.parametrize(
    "header",
    [("X-Forwarded-For", "127.0.0.1"), ("Forwarded", "for=127.0.0.1"), ("X-Forwarded-Host", "x")],
)
async def test_no_token_through_a_proxy_even_with_the_secret(
    demo_gateway, dataset, secret, header
) -> None:
    # uvicorn believes X-Forwarded-For from a loopback peer: a proxy on this machine
    # would make any remote caller look local.
    async with httpx.AsyncClient(base_url=demo_gateway.url, timeout=10.0) as http:
        refused = await http.post(
            "/_unsafe/demo-tokens",
            json=_ask(dataset.sample.citizens[0]),
            headers={header[0]: header[1], DEMO_SECRET_HEADER: secret},
        )
    assert refused.status_code == 403
    assert refused.json()["detail"] == {"reason": "forwarded"}
