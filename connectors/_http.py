"""The HTTP client the gateway injects into connectors that speak HTTP.

One `SourceClient` (an `httpx.AsyncClient`) is shared by every connector. Its transport
is a setting: aiohttp (the default) costs about a third of the CPU per source call of
httpx's own pool, which matters because source calls dominate the gateway's work;
`httpcore` is httpx's own. Connectors see httpx's API and errors; on the aiohttp
transport the `rest` kind's lookups go to the aiohttp session under it directly
(`SourceClient.session`), without httpx's request and response objects around each call.
Either way each call is bounded by the connector's own deadline.

Cookies a source sets are never kept, by httpx or by aiohttp: the client is shared by
every request, so a cookie kept from one citizen's call would go out with another's.
"""

from __future__ import annotations

from http.cookiejar import CookieJar
from typing import Any, Literal

import aiohttp
import httpx

__all__ = ["NoCookies", "SourceClient", "source_client"]

_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=5.0)


class NoCookies(CookieJar):
    """A cookie jar that keeps nothing."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def set_cookie(self, cookie: Any) -> None:
        return None


class SourceClient(httpx.AsyncClient):
    """An `httpx.AsyncClient` for source calls that keeps no cookie; on the aiohttp
    transport, `session` is the aiohttp session it sends through."""

    def __init__(self, *, aiohttp_transport: bool) -> None:
        self._session: aiohttp.ClientSession | None = None
        if aiohttp_transport:
            from httpx_aiohttp import AiohttpTransport

            # The transport asks for its session on its first call: the same one.
            transport = AiohttpTransport(client=self._aiohttp_session, trust_env=False)
            super().__init__(
                transport=transport, follow_redirects=False, trust_env=False, cookies=NoCookies()
            )
        else:
            super().__init__(
                limits=_LIMITS, follow_redirects=False, trust_env=False, cookies=NoCookies()
            )
        self._aiohttp = aiohttp_transport

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The aiohttp session calls go through (made on first use, in the running
        loop), or `None` on httpx's own transport."""
        return self._aiohttp_session() if self._aiohttp else None

    def _aiohttp_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=_LIMITS.max_connections or 0,
                    keepalive_timeout=_LIMITS.keepalive_expiry or 0,
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                raise_for_status=False,
            )
        return self._session

    async def aclose(self) -> None:
        await super().aclose()  # closes the session if the transport has used it
        if self._session is not None and not self._session.closed:
            await self._session.close()


def source_client(transport: Literal["aiohttp", "httpcore"]) -> SourceClient:
    """A client for source calls: no redirects, no proxies from the environment, no
    cookies kept."""
    return SourceClient(aiohttp_transport=transport == "aiohttp")
