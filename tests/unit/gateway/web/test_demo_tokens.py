"""The unsafe demo token route answers loopback callers only."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from gateway.errors import GatewayError
from gateway.web._demo_tokens import demo_token_router
from gateway.web._graphql import error_response


@pytest.fixture
def app() -> FastAPI:
    app = FastAPI()
    app.include_router(demo_token_router())

    @app.exception_handler(GatewayError)
    async def handle(_request, exc: GatewayError):  # type: ignore[no-untyped-def]
        return error_response(exc)

    return app


@pytest.mark.parametrize("host", ["10.0.0.5", "192.168.1.20", "2001:db8::1", "unknown"])
async def test_refused_outside_loopback(app: FastAPI, host: str) -> None:
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        response = await http.post(
            "/_unsafe/demo-tokens", json={"body": "{}", "procedure": "1.004222"}
        )
    assert response.status_code == 403
    assert response.json()["code"] == "FORBIDDEN"


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "rebind.attacker.example:8000"},
        {"Host": "127.0.0.1:8000", "Origin": "http://rebind.attacker.example:8000"},
    ],
)
async def test_refused_to_pages_of_other_origins_even_from_loopback(
    app: FastAPI, headers: dict[str, str]
) -> None:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
        response = await http.post(
            "/_unsafe/demo-tokens",
            json={"body": "{}", "procedure": "1.004222"},
            headers=headers,
        )
    assert response.status_code == 403
