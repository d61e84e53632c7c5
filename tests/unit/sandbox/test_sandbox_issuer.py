"""The sandbox identity issuer: discovery, JWKS, demo logins, its key on disk."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import FastAPI
from structlog.testing import capture_logs

from sandbox import SandboxSettings, issuer
from sandbox.cli import main

ISSUER = "http://issuer.test"
AUDIENCE = "http://gateway.test"
PERSONAL_ID = "001099012345"


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _thumbprint(x: str) -> str:
    """RFC 7638 thumbprint of an Ed25519 JWK, computed without joserfc."""
    members = {"crv": "Ed25519", "kty": "OKP", "x": x}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    return _b64(hashlib.sha256(canonical).digest())


def _settings(**changes: Any) -> SandboxSettings:
    return SandboxSettings(issuer_url=ISSUER, issuer_audience=AUDIENCE, **changes)


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with _client(issuer.create_app(_settings())) as c:
        yield c


def _verify(token: str, jwk: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims, after checking the Ed25519 signature with pyca directly."""
    header, payload, signature = token.split(".")
    public = Ed25519PublicKey.from_public_bytes(_b64decode(jwk["x"]))
    public.verify(_b64decode(signature), f"{header}.{payload}".encode())
    return json.loads(_b64decode(header)), json.loads(_b64decode(payload))


async def _jwk(client: httpx.AsyncClient) -> dict[str, Any]:
    keys: list[dict[str, Any]] = (await client.get("/jwks.json")).json()["keys"]
    assert len(keys) == 1
    return keys[0]


async def test_discovery_document(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    document = response.json()
    assert document["issuer"] == ISSUER
    assert document["jwks_uri"] == f"{ISSUER}/jwks.json"
    assert document["token_endpoint"].startswith(ISSUER)
    assert document["id_token_signing_alg_values_supported"] == ["EdDSA"]
    assert document["sandbox_issuer"] is True


async def test_jwks_publishes_the_public_key(client: httpx.AsyncClient) -> None:
    response = await client.get("/jwks.json")
    assert response.headers["content-type"].startswith("application/jwk-set+json")
    jwk = await _jwk(client)
    assert {k: jwk[k] for k in ("kty", "crv", "alg", "use")} == {
        "kty": "OKP",
        "crv": "Ed25519",
        "alg": "EdDSA",
        "use": "sig",
    }
    assert jwk["kid"] == _thumbprint(jwk["x"])
    assert "d" not in jwk


@pytest.mark.parametrize(("level", "acr"), [(1, "vneid-level-1"), (2, "vneid-level-2")])
async def test_citizen_login(client: httpx.AsyncClient, level: int, acr: str) -> None:
    response = await client.post(
        "/demo/citizen-login", json={"personal_id": PERSONAL_ID, "level": level}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 600)
    jwk = await _jwk(client)
    header, claims = _verify(body["access_token"], jwk)
    # RFC 9068's access-token type, which the gateway's sign-in requires (or `JWT`).
    assert header == {"alg": "EdDSA", "kid": jwk["kid"], "typ": "at+jwt"}
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["sub"] == PERSONAL_ID
    assert claims["roles"] == ["citizen"]
    assert claims["acr"] == acr
    assert claims["exp"] - claims["iat"] == 600
    assert isinstance(claims["jti"], str)
    assert claims["jti"]
    assert "org" not in claims


async def test_every_token_has_its_own_jti(client: httpx.AsyncClient) -> None:
    jtis = set()
    for _ in range(3):
        response = await client.post("/demo/citizen-login", json={"personal_id": PERSONAL_ID})
        jtis.add(_verify(response.json()["access_token"], await _jwk(client))[1]["jti"])
    assert len(jtis) == 3


@pytest.mark.parametrize(
    "personal_id",
    ["12345", "0010990123456", "00109901234a", "".join(chr(0xFF10 + int(d)) for d in PERSONAL_ID)],
)
async def test_malformed_personal_id_is_400(client: httpx.AsyncClient, personal_id: str) -> None:
    response = await client.post(
        "/demo/citizen-login", json={"personal_id": personal_id, "level": 2}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_IDENTIFIER"
    assert personal_id not in response.text


@pytest.mark.parametrize(
    "body",
    [{"level": 2}, {"personal_id": PERSONAL_ID, "level": 3}, {"personal_id": 1099012345}],
)
async def test_malformed_citizen_login_is_400(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await client.post("/demo/citizen-login", json=body)
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_ARGUMENT"


async def test_staff_login(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/demo/staff-login",
        json={"sub": "tran.thi.b", "roles": ["operator", "auditor"], "org": "VN/GOV/BCA"},
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 600)
    _, claims = _verify(body["access_token"], await _jwk(client))
    assert claims["sub"] == "tran.thi.b"
    assert claims["roles"] == ["operator", "auditor"]
    assert claims["org"] == "VN/GOV/BCA"
    assert (claims["iss"], claims["aud"]) == (ISSUER, AUDIENCE)
    assert "acr" not in claims


async def test_staff_login_with_acr(client: httpx.AsyncClient) -> None:
    body = {"sub": "a", "roles": ["agency_admin"], "org": "VN/GOV/BTC/TCT", "acr": "mfa"}
    response = await client.post("/demo/staff-login", json=body)
    _, claims = _verify(response.json()["access_token"], await _jwk(client))
    assert claims["acr"] == "mfa"
    assert claims["roles"] == ["agency_admin"]


@pytest.mark.parametrize(
    ("body", "argument"),
    [
        ({"sub": "a", "roles": ["auditor", "root"], "org": "VN/GOV/BCA"}, "roles"),
        ({"sub": "a", "roles": ["citizen"], "org": "VN/GOV/BCA"}, "roles"),
        ({"sub": "a", "roles": ["auditor"], "org": "BCA"}, "org"),
        ({"sub": "a", "roles": ["auditor"], "org": "VN/GOV/"}, "org"),
    ],
)
async def test_staff_login_refuses_unknown_roles_and_bad_org(
    client: httpx.AsyncClient, body: dict[str, Any], argument: str
) -> None:
    response = await client.post("/demo/staff-login", json=body)
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_ARGUMENT"
    assert response.json()["detail"]["argument"] == argument


@pytest.mark.parametrize(
    "body",
    [
        {"sub": "a", "roles": [], "org": "VN/GOV/BCA"},
        {"sub": "", "roles": ["auditor"], "org": "VN/GOV/BCA"},
        {"roles": ["auditor"], "org": "VN/GOV/BCA"},
    ],
)
async def test_staff_login_needs_sub_and_roles(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await client.post("/demo/staff-login", json=body)
    assert response.status_code == 400


async def test_token_lifetime_is_a_setting() -> None:
    async with _client(issuer.create_app(_settings(issuer_token_lifetime=60))) as c:
        response = await c.post("/demo/citizen-login", json={"personal_id": PERSONAL_ID})
        _, claims = _verify(response.json()["access_token"], await _jwk(c))
    assert response.json()["expires_in"] == 60
    assert claims["exp"] - claims["iat"] == 60


async def test_start_up_warns_that_it_signs_for_anyone() -> None:
    app = issuer.create_app(_settings())
    with capture_logs() as logs:
        async with app.router.lifespan_context(app):
            pass
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [e["event"] for e in warnings] == ["sandbox_issuer_signs_for_anyone"]
    assert "no passwords" in warnings[0]["hint"]
    assert "sandbox" in (issuer.__doc__ or "").lower()
    assert "no passwords" in app.title


# --- the key ------------------------------------------------------------------------


async def test_key_file_is_written_0600_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "issuer" / "key.pem"
    async with _client(issuer.create_app(_settings(issuer_key_file=path))) as first:
        before = await _jwk(first)
        token = (await first.post("/demo/citizen-login", json={"personal_id": PERSONAL_ID})).json()[
            "access_token"
        ]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    async with _client(issuer.create_app(_settings(issuer_key_file=path))) as second:
        after = await _jwk(second)
    assert after == before
    _verify(token, after)  # tokens from before the restart still verify


async def test_without_a_key_file_each_process_has_its_own_key() -> None:
    async with (
        _client(issuer.create_app(_settings())) as a,
        _client(issuer.create_app(_settings())) as b,
    ):
        assert (await _jwk(a))["kid"] != (await _jwk(b))["kid"]


def test_a_key_file_that_is_not_ed25519_fails_at_start(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(
        generate_private_key(SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ValueError, match="not an Ed25519 private key"):
        issuer.create_app(_settings(issuer_key_file=path))
    path.write_text("garbage", encoding="utf-8")
    with pytest.raises(ValueError, match="not an unencrypted PEM private key"):
        issuer.create_app(_settings(issuer_key_file=path))


# --- settings and command line ------------------------------------------------------


def test_issuer_url_defaults_to_host_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HOST", "ISSUER_PORT", "ISSUER_URL", "ISSUER_AUDIENCE", "ISSUER_KEY_FILE"):
        monkeypatch.delenv(f"SANDBOX_{name}", raising=False)
    defaults = SandboxSettings()
    assert defaults.issuer_port == 8103
    assert defaults.issuer_base_url == "http://127.0.0.1:8103"
    assert defaults.issuer_audience == "http://127.0.0.1:8000"
    assert defaults.issuer_key_file is None
    assert SandboxSettings(issuer_port=9000).issuer_base_url == "http://127.0.0.1:9000"
    assert SandboxSettings(issuer_url="https://id.test/").issuer_base_url == "https://id.test"
    monkeypatch.setenv("SANDBOX_ISSUER_URL", "http://sandbox-issuer:8103")
    assert SandboxSettings().issuer_base_url == "http://sandbox-issuer:8103"


async def test_cli_serves_the_issuer_on_its_port(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("HOST", "ISSUER_PORT", "ISSUER_URL", "ISSUER_KEY_FILE"):
        monkeypatch.delenv(f"SANDBOX_{name}", raising=False)
    served: dict[str, Any] = {}

    def run(app: FastAPI, **options: Any) -> None:
        served.update(options, app=app)

    monkeypatch.setattr("sandbox.cli.uvicorn.run", run)
    key = tmp_path / "key.pem"
    assert main(["issuer", "--port", "9103", "--key-file", str(key)]) == 0
    assert (served["host"], served["port"]) == ("127.0.0.1", 9103)
    assert key.exists()
    async with _client(served["app"]) as c:
        document = (await c.get("/.well-known/openid-configuration")).json()
    assert document["issuer"] == "http://127.0.0.1:9103"
