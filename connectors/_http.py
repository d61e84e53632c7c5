"""The HTTP client the gateway injects into connectors that speak HTTP.

One `httpx.AsyncClient` is shared by every connector. Its transport is a setting: the
aiohttp transport (the default) costs about a third of the CPU per source call of
httpx's own pool, which matters because source calls dominate the gateway's work;
`httpcore` is httpx's own. Either way connectors see the same httpx API and errors,
and each call is bounded by the connector's own deadline.

Cookies a source sets are never kept: the client is shared by every request, so a
cookie kept from one citizen's call would go out with another's.
"""

from __future__ import annotations

from http.cookiejar import CookieJar
from typing import Any, Literal

import httpx

__all__ = ["source_client"]

_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=5.0)


class _NoCookies(CookieJar):
    """A cookie jar that keeps nothing."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def set_cookie(self, cookie: Any) -> None:
        return None


def source_client(transport: Literal["aiohttp", "httpcore"]) -> httpx.AsyncClient:
    """A client for source calls: no redirects, no proxies from the environment, no
    cookies kept."""
    if transport == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        return httpx.AsyncClient(
            transport=AiohttpTransport(limits=_LIMITS, trust_env=False),
            follow_redirects=False,
            trust_env=False,
            cookies=_NoCookies(),
        )
    return httpx.AsyncClient(
        limits=_LIMITS, follow_redirects=False, trust_env=False, cookies=_NoCookies()
    )
