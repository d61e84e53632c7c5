"""The unsafe demo token route answers local callers with this start's secret only."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from gateway.errors import GatewayError
from gateway.web._demo_tokens import DEMO_SECRET_HEADER, demo_token_router
from gateway.web._graphql import error_response

SECRET = "Zm9yLXRoZS10ZXN0cy1vbmx5LW5vdC1hLXJlYWwtc2VjcmV0"
ASK = {"body": "{}", "procedure": "1.004222"}


@pytest.fixture
def app() -> FastAPI:
    app = FastAPI()
    app.include_router(demo_token_router(SECRET))

    @app.exception_handler(GatewayError)
    async def handle(_request, exc: GatewayError):  # type: ignore[no-untyped-def]
        return error_response(exc)

    return app


@pytest.mark.parametrize("host", ["10.0.0.5", "192.168.1.20", "2001:db8::1", "unknown"])
async def test_refused_outside_loopback(app: FastAPI, host: str) -> None:
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        response = await http.post(
            "/_unsafe/demo-tokens", json=ASK, headers={DEMO_SECRET_HEADER: SECRET}
        )
    assert response.status_code == 403
    assert response.json()["code"] == "FORBIDDEN"
    assert response.json()["detail"] == {"reason": "not_local"}


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
            json=ASK,
            headers={**headers, DEMO_SECRET_HEADER: SECRET},
        )
    assert response.status_code == 403
    assert response.json()["detail"] == {"reason": "not_local"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {DEMO_SECRET_HEADER: ""},
        {DEMO_SECRET_HEADER: "wrong"},
        {DEMO_SECRET_HEADER: SECRET[:-1]},
        {DEMO_SECRET_HEADER: SECRET + "x"},
        {"Authorization": f"Bearer {SECRET}"},
    ],
    ids=["none", "empty", "wrong", "shorter", "longer", "elsewhere"],
)
async def test_refused_without_this_starts_secret(app: FastAPI, headers: dict[str, str]) -> None:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
        response = await http.post("/_unsafe/demo-tokens", json=ASK, headers=headers)
    assert response.status_code == 403
    assert response.json()["code"] == "FORBIDDEN"
    assert response.json()["detail"] == {"reason": "demo_secret"}
    assert SECRET not in response.text


@pytest.mark.parametrize(
    "header",
    [
        ("X-Forwarded-For", "127.0.0.1"),
        ("X-Forwarded-Host", "127.0.0.1:8000"),
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Port", "8000"),
        ("Forwarded", "for=127.0.0.1"),
        ("X-Real-IP", "127.0.0.1"),
    ],
)
async def test_refused_through_a_proxy_even_with_the_secret(
    app: FastAPI, header: tuple[str, str]
) -> None:
    # A proxy on this machine makes every remote caller a loopback peer.
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
        response = await http.post(
            "/_unsafe/demo-tokens",
            json=ASK,
            headers={header[0]: header[1], DEMO_SECRET_HEADER: SECRET},
        )
    assert response.status_code == 403
    assert response.json()["code"] == "FORBIDDEN"
    assert response.json()["detail"] == {"reason": "forwarded"}


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32"):
        demo_token_router("too-short")
