"""`UnsafeDemoTokens`: the query page's way to sign requests, in the demo only.

A real client signs each request with its own key. The demo's query page runs in a
browser that has no key, so this route signs request bodies with the demo client's
local key. Anyone who can reach it can read data as that client, so it is refused in
production, logged as unsafe at start, and answers only a caller that passes all of:

- no `Forwarded`, `X-Forwarded-*` or `X-Real-IP` header. The peer address is only
  the proxy's when a reverse proxy runs on this machine, and uvicorn takes the client
  address from `X-Forwarded-For` when told to trust it: either way a remote caller
  would look local. The demo's browser never sends these headers.
- a loopback peer, addressing this machine by a local name (`Host`, and `Origin` when
  there is one), against DNS rebinding.
- this start's secret (`GATEWAY_UNSAFE_DEMO_SECRET`, at least 32 characters) in the
  `X-Demo-Secret` header. `gateway demo` makes a new random one at each start, gives
  it to the gateway in its environment (readable by the same user only) and prints the
  query page's address with it in the fragment, `/graphql#demo=<secret>`: a browser
  never sends a fragment to a server, so it reaches only whoever reads that terminal,
  and the page's script sends it in the header. The secret is never logged.

    POST /_unsafe/demo-tokens                    X-Demo-Secret: <secret>
    {"body": "<the exact request body>", "procedure": "1.004222",
     "case": "...", "officer": "...", "subjects": ["..."]}   (subjects: optional)

A refusal is 403 `FORBIDDEN` with `detail.reason`: `forwarded`, `not_local` or
`demo_secret`.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from gateway.admission import load_local_key, sign_request
from gateway.errors import Forbidden
from gateway.state import app_state
from policies import Purpose

__all__ = [
    "DEMO_CLIENT",
    "DEMO_SECRET_HEADER",
    "DEMO_SECRET_MIN_LENGTH",
    "demo_token_router",
    "query_page_url",
]

DEMO_CLIENT = "VN/GOV/DEMO/query-page"
# The name of the header that carries the secret, not a secret.
DEMO_SECRET_HEADER = "X-Demo-Secret"  # noqa: S105  # nosec B105
DEMO_SECRET_MIN_LENGTH = 32
_FORWARDING = ("forwarded", "x-real-ip")
_IDS = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])")


class _Ask(BaseModel):
    body: str = Field(max_length=64 * 1024)
    procedure: str = Field(min_length=1, max_length=128)
    case: str = Field(default="DEMO-CASE", min_length=1, max_length=128)
    officer: str = Field(default="demo-officer", min_length=1, max_length=128)
    subjects: list[str] | None = Field(default=None, max_length=50)


_LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})


def _loopback(request: Request) -> bool:
    """A caller on this machine, addressing it by a local name.

    The peer address alone is not enough: a web page on another origin could reach
    the route through DNS rebinding, with its own name in `Host`. So the `Host` (and an
    `Origin`, when the browser sends one) must name this machine too.
    """
    host = request.client.host if request.client else ""
    try:
        if not ipaddress.ip_address(host).is_loopback:
            return False
    except ValueError:
        return False
    named = request.headers.get("host", "").rsplit(":", 1)[0].lower()
    origin = request.headers.get("origin")
    if origin is not None:
        origin_host = origin.split("://", 1)[-1].rsplit(":", 1)[0].lower()
        if origin_host not in _LOCAL_NAMES:
            return False
    return named in _LOCAL_NAMES


def _forwarded(request: Request) -> bool:
    """Whether a proxy says it passed the request on (or a caller pretends one did)."""
    return any(name in _FORWARDING or name.startswith("x-forwarded-") for name in request.headers)


def _has_secret(request: Request, secret: bytes) -> bool:
    presented = request.headers.get(DEMO_SECRET_HEADER, "").encode()
    return hmac.compare_digest(presented, secret)


def query_page_url(gateway_url: str, secret: str) -> str:
    """The query page's address that carries the secret to the page alone (a fragment)."""
    return f"{gateway_url}/graphql#demo={secret}"


def demo_token_router(secret: str) -> APIRouter:
    """The unsafe route, answering callers with `secret`; included only when asked for."""
    if len(secret) < DEMO_SECRET_MIN_LENGTH:
        raise ValueError(
            f"the demo tokens' secret must be at least {DEMO_SECRET_MIN_LENGTH} characters"
        )
    expected = secret.encode()
    router = APIRouter(tags=["demo"])

    @router.post("/_unsafe/demo-tokens", include_in_schema=False)
    async def demo_token(request: Request, ask: _Ask) -> dict[str, Any]:
        # Nothing of the gateway is touched before the caller is known to be local.
        if _forwarded(request):
            raise Forbidden("Demo tokens are not given through a proxy.", reason="forwarded")
        if not _loopback(request):
            raise Forbidden("Demo tokens are given to loopback callers only.", reason="not_local")
        if not _has_secret(request, expected):
            raise Forbidden(
                "Open the query page at the address `gateway demo` printed: it ends in "
                "#demo=<secret>, which the page sends with each demo-token request.",
                reason="demo_secret",
            )
        state = app_state(request)
        key, kid = load_local_key(state.settings.client_keys_dir, DEMO_CLIENT)
        subjects = ask.subjects or list(dict.fromkeys(_IDS.findall(ask.body)))[:50]
        purpose = Purpose(ask.procedure, ask.case, ask.officer, tuple(subjects))
        token = sign_request(
            client_id=DEMO_CLIENT,
            key=key,
            kid=kid,
            audience=state.settings.origin,
            body=ask.body.encode(),
            purpose=purpose,
        )
        return {"token": token}

    return router
