"""`UnsafeDemoTokens`: the query page's way to sign requests, in the demo only.

A real client signs each request with its own key. The demo's query page runs in a
browser that has no key, so this loopback-only route signs request bodies with the
demo client's local key. Anyone who can reach it can read data as that client, so it
is refused outside loopback, refused in production, and logged as unsafe at start.

    POST /_unsafe/demo-tokens
    {"body": "<the exact request body>", "procedure": "1.004222",
     "case": "...", "officer": "...", "subjects": ["..."]}   (subjects: optional)
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from gateway.admission import load_local_key, sign_request
from gateway.errors import Forbidden
from gateway.state import app_state
from policies import Purpose

__all__ = ["DEMO_CLIENT", "demo_token_router"]

DEMO_CLIENT = "VN/GOV/DEMO/query-page"
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


def demo_token_router() -> APIRouter:
    """The unsafe route; included only when the setting asks for it."""
    router = APIRouter(tags=["demo"])

    @router.post("/_unsafe/demo-tokens", include_in_schema=False)
    async def demo_token(request: Request, ask: _Ask) -> dict[str, Any]:
        # Nothing of the gateway is touched before the caller is known to be local.
        if not _loopback(request):
            raise Forbidden("Demo tokens are given to loopback callers only.")
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
