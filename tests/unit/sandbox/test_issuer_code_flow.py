"""The sandbox issuer's authorization code flow: login page, codes, PKCE, ID tokens."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from keys import eddsa_allowed
from sandbox import SandboxSettings, issuer

ISSUER = "http://issuer.test"
CLIENT = "gateway-test"
REDIRECT = "http://gateway.test/dang-nhap/callback"


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = SandboxSettings(
        issuer_url=ISSUER,
        issuer_audience="http://gateway.test",
        citizens=60,
        issuer_clients={CLIENT: [REDIRECT]},
    )
    app = issuer.create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as c:
        yield c


def _request(verifier: str, **changes: str) -> dict[str, str]:
    params = {
        "client_id": CLIENT,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "openid",
        "state": "state-1",
        "nonce": "nonce-1",
        "code_challenge": _challenge(verifier),
        "code_challenge_method": "S256",
    }
    return {k: v for k, v in {**params, **changes}.items() if v}


def _query(location: str) -> dict[str, str]:
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def _code(client: httpx.AsyncClient, verifier: str, **form: str) -> str:
    answer = await client.post(
        "/authorize", data={**_request(verifier), "kind": "citizen", "level": "2", **form}
    )
    assert answer.status_code == 303
    back = _query(answer.headers["location"])
    assert back["state"] == "state-1"
    assert back["iss"] == ISSUER
    return back["code"]


async def _exchange(client: httpx.AsyncClient, code: str, verifier: str) -> httpx.Response:
    return await client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": CLIENT,
            "code_verifier": verifier,
        },
    )


async def test_discovery_names_the_code_flow(client: httpx.AsyncClient) -> None:
    document = (await client.get("/.well-known/openid-configuration")).json()
    assert document["authorization_endpoint"] == f"{ISSUER}/authorize"
    assert document["token_endpoint"] == f"{ISSUER}/token"
    assert document["response_types_supported"] == ["code"]
    assert document["code_challenge_methods_supported"] == ["S256"]


async def test_the_login_page_offers_sample_citizens(client: httpx.AsyncClient) -> None:
    page = await client.get("/authorize", params=_request(secrets.token_urlsafe(32)))
    assert page.status_code == 200
    assert "Số định danh cá nhân" in page.text
    assert re.search(r'<option value="[0-9]{12}">', page.text)
    assert "<script" not in page.text
    # Level 2 asked for: preselected.
    asked = await client.get("/authorize", params=_request("v" * 43, acr_values="vneid-level-2"))
    assert 'value="2" checked' in asked.text


@pytest.mark.parametrize(
    "changes",
    [{"client_id": "someone-else"}, {"redirect_uri": "http://evil.test/cb"}, {"client_id": ""}],
)
async def test_an_unregistered_client_or_redirect_gets_a_page_not_a_redirect(
    client: httpx.AsyncClient, changes: dict[str, str]
) -> None:
    answer = await client.get("/authorize", params=_request("v" * 43, **changes))
    assert answer.status_code == 400
    assert "location" not in answer.headers


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "profile"}, "invalid_scope"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": ""}, "invalid_request"),
        ({"nonce": ""}, "invalid_request"),
    ],
)
async def test_a_bad_request_is_sent_back_as_an_oauth_error(
    client: httpx.AsyncClient, changes: dict[str, str], error: str
) -> None:
    answer = await client.get("/authorize", params=_request("v" * 43, **changes))
    assert answer.status_code == 303
    back = _query(answer.headers["location"])
    assert back["error"] == error
    assert back["state"] == "state-1"
    assert "code" not in back


async def test_a_code_gives_tokens_once(client: httpx.AsyncClient) -> None:
    verifier = secrets.token_urlsafe(48)
    code = await _code(client, verifier, personal_id="001090000001")
    assert len(code) >= 43
    answer = await _exchange(client, code, verifier)
    assert answer.status_code == 200
    tokens = answer.json()
    assert set(tokens) == {"access_token", "id_token", "token_type", "expires_in"}
    jwks = KeySet.import_key_set((await client.get("/jwks.json")).json())
    with eddsa_allowed():
        decoded = jwt.decode(tokens["id_token"], jwks, algorithms=["EdDSA"])
    assert decoded.header["typ"] == "JWT"
    claims = decoded.claims
    assert claims["iss"] == ISSUER
    assert claims["aud"] == CLIENT
    assert claims["sub"] == "001090000001"
    assert claims["nonce"] == "nonce-1"
    assert claims["acr"] == "vneid-level-2"
    assert claims["roles"] == ["citizen"]
    assert claims["exp"] > claims["iat"]
    replayed = await _exchange(client, code, verifier)
    assert replayed.status_code == 400
    assert replayed.json()["error"] == "invalid_grant"


async def test_a_wrong_verifier_is_invalid_grant(client: httpx.AsyncClient) -> None:
    verifier = secrets.token_urlsafe(48)
    code = await _code(client, verifier, personal_id="001090000001")
    answer = await _exchange(client, code, secrets.token_urlsafe(48))
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"
    # And the code is spent.
    assert (await _exchange(client, code, verifier)).json()["error"] == "invalid_grant"


async def test_staff_sign_in_carries_role_and_org(client: httpx.AsyncClient) -> None:
    verifier = secrets.token_urlsafe(48)
    answer = await client.post(
        "/authorize",
        data={
            **_request(verifier),
            "kind": "staff",
            "sub": "kt-01",
            "role": "auditor",
            "org": "VN/GOV/TTCP",
        },
    )
    code = _query(answer.headers["location"])["code"]
    tokens = (await _exchange(client, code, verifier)).json()
    payload: dict[str, Any] = orjson.loads(
        base64.urlsafe_b64decode(tokens["id_token"].split(".")[1] + "==")
    )
    assert payload["roles"] == ["auditor"]
    assert payload["org"] == "VN/GOV/TTCP"


async def test_a_malformed_personal_id_shows_the_page_again(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/authorize",
        data={**_request("v" * 43), "kind": "citizen", "personal_id": "12ab", "level": "1"},
    )
    assert answer.status_code == 400
    assert "12 chữ số" in answer.text
