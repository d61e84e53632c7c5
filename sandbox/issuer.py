"""Sandbox identity issuer: an OpenID Connect issuer WITHOUT PASSWORDS, for demo and tests.

It signs a token for anyone who asks: any personal id as a citizen of level 1 or 2,
any name as staff with any role. It exists so that the demo and the tests sign in the
way production does (a JWT from an OIDC issuer, verified against its JWKS), with
VNeID replaced by something that runs on a laptop. Never point a production gateway
at it.

```
GET  /.well-known/openid-configuration   discovery
GET  /jwks.json                          the public key (Ed25519, kid = RFC 7638 thumbprint)
GET  /authorize                          login page: a synthetic citizen or demo staff
POST /token                              code + PKCE verifier -> access token, ID token
POST /demo/citizen-login                 {"personal_id", "level": 1|2}    -> access token
POST /demo/staff-login                   {"sub", "roles", "org", "acr"?}  -> access token
```
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Final, Literal

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from sandbox._data import generate
from sandbox._issuer_keys import ALGORITHM, IssuerKey, load_or_create
from sandbox._issuer_oidc import add_code_flow
from sandbox.config import SandboxSettings

__all__ = ["CITIZEN_ACR", "STAFF_ROLES", "create_app"]

log = structlog.get_logger(__name__)

STAFF_ROLES: Final = frozenset({"agency_admin", "auditor", "operator", "policy_editor"})
"""Roles a staff token may carry."""
CITIZEN_ACR: Final = {1: "vneid-level-1", 2: "vneid-level-2"}
"""The `acr` of a citizen token, by identity level."""

_PERSONAL_ID: Final = re.compile(r"[0-9]{12}")
_ORG: Final = re.compile(r"VN/GOV/[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")

_Text = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class CitizenLogin(BaseModel):
    """Sign in as the citizen with this personal id."""

    model_config = ConfigDict(extra="forbid")

    personal_id: str
    level: Literal[1, 2] = 2


class StaffLogin(BaseModel):
    """Sign in as a member of staff with these roles, of this organisation."""

    model_config = ConfigDict(extra="forbid")

    sub: _Text
    roles: list[str] = Field(min_length=1, max_length=3)
    org: _Text
    acr: _Text | None = None


def _error(status: int, code: str, message: str, **detail: Any) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "detail": detail}, status_code=status)


def create_app(settings: SandboxSettings) -> FastAPI:
    """The issuer app; it signs with the key in ``settings.issuer_key_file`` (or a fresh one)."""
    key = load_or_create(settings.issuer_key_file)
    issuer = settings.issuer_base_url

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        log.warning(
            "sandbox_issuer_signs_for_anyone",
            issuer=issuer,
            audience=settings.issuer_audience,
            kid=key.kid,
            hint="no passwords: demo and tests only, never production",
        )
        yield

    app = FastAPI(
        title="Sandbox identity issuer (no passwords: signs for anyone)",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.key = key

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Field names only: the rejected values may be personal ids.
        fields = [".".join(str(p) for p in e["loc"][1:]) for e in exc.errors()]
        return _error(400, "INVALID_ARGUMENT", "The request is not valid.", fields=fields)

    @app.get("/.well-known/openid-configuration")
    async def discovery() -> dict[str, Any]:
        return {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/jwks.json",
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "token_endpoint_auth_methods_supported": ["none"],
            "authorization_response_iss_parameter_supported": True,
            "acr_values_supported": sorted(CITIZEN_ACR.values()),
            "claims_supported": [
                "iss",
                "aud",
                "sub",
                "roles",
                "org",
                "acr",
                "nonce",
                "iat",
                "exp",
                "jti",
            ],
            "sandbox_issuer": True,
            "demo_citizen_login_endpoint": f"{issuer}/demo/citizen-login",
            "demo_staff_login_endpoint": f"{issuer}/demo/staff-login",
        }

    @app.get("/jwks.json")
    async def jwks() -> JSONResponse:
        return JSONResponse(
            {"keys": [key.public_jwk()]},
            media_type="application/jwk-set+json",
            headers={"Cache-Control": "public, max-age=60"},
        )

    add_code_flow(
        app,
        key=key,
        settings=settings,
        acr=CITIZEN_ACR,
        samples=lambda: list(generate(settings).sample.citizens),
        access_token=lambda claims: _token(key, settings, claims),
    )

    @app.post("/demo/citizen-login", response_model=None)
    async def citizen_login(body: CitizenLogin) -> dict[str, Any] | JSONResponse:
        if _PERSONAL_ID.fullmatch(body.personal_id) is None:
            return _error(
                400,
                "INVALID_IDENTIFIER",
                "A personal id is 12 digits.",
                argument="personal_id",
                expected="12 digits",
            )
        claims = {"sub": body.personal_id, "roles": ["citizen"], "acr": CITIZEN_ACR[body.level]}
        return _token(key, settings, claims)

    @app.post("/demo/staff-login", response_model=None)
    async def staff_login(body: StaffLogin) -> dict[str, Any] | JSONResponse:
        unknown = sorted(set(body.roles) - STAFF_ROLES)
        if unknown:
            return _error(
                400,
                "INVALID_ARGUMENT",
                "Unknown staff role.",
                argument="roles",
                unknown=unknown,
                expected=sorted(STAFF_ROLES),
            )
        if _ORG.fullmatch(body.org) is None:
            return _error(
                400,
                "INVALID_ARGUMENT",
                "The organisation is VN/GOV/<org>.",
                argument="org",
                expected="VN/GOV/<org>",
            )
        claims: dict[str, Any] = {
            "sub": body.sub,
            "roles": list(dict.fromkeys(body.roles)),
            "org": body.org,
        }
        if body.acr is not None:
            claims["acr"] = body.acr
        return _token(key, settings, claims)

    return app


def _token(key: IssuerKey, settings: SandboxSettings, claims: dict[str, Any]) -> dict[str, Any]:
    now = int(time.time())
    lifetime = settings.issuer_token_lifetime
    signed = key.sign(
        {
            "iss": settings.issuer_base_url,
            "aud": settings.issuer_audience,
            **claims,
            "iat": now,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
        }
    )
    # OAuth 2.0's token type (RFC 6750), not a secret.
    scheme = "Bearer"
    return {"access_token": signed, "token_type": scheme, "expires_in": lifetime}
