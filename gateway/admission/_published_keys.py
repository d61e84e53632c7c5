"""Keys a client system publishes (a JWKS URL) rather than registers one by one.

An agency may run its own key rotation: its system's record holds a JWKS URL (approved
by a platform operator, its host among the agency's endpoints), and the gateway reads
the keys there. A key set is kept `ttl` seconds (and, while it cannot be read again,
`max_stale` seconds more at most); a kid it does not hold makes the
gateway read the set again, at most once every `min_refetch` seconds per URL (so a
flood of made-up kids costs one read), and one read at a time per URL. A set that
cannot be read, is too large or is not a JWKS keeps the keys read before, if any.
Only Ed25519 and P-256 public keys with a kid the registry could hold are taken
(`public_jwk`, `KID`); others are skipped. One read takes `timeout` seconds at most.

A key the agency stops publishing stops working once the set is read again; one the
gateway must refuse at once is revoked in the registry (`revoke`), whatever the set says.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import structlog

from gateway.admission._clients import KID, public_jwk
from gateway.errors import InvalidArgument

__all__ = ["PublishedKeys"]

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class _Set:
    keys: dict[str, dict[str, Any]]
    read_at: float
    tried_at: float


class PublishedKeys:
    """The key sets of clients' JWKS URLs, read over HTTP and kept for a while."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        ttl: float = 300.0,
        min_refetch: float = 30.0,
        max_stale: float = 3600.0,
        max_bytes: int = 65_536,
        timeout: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._ttl = ttl
        self._max_stale = max_stale
        self._min_refetch = min_refetch
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._clock = clock
        self._sets: dict[str, _Set] = {}
        self._reads: dict[str, asyncio.Future[None]] = {}

    async def key(self, url: str, kid: str) -> dict[str, Any] | None:
        """The public JWK `kid` of the set at `url`, or `None`."""
        now = self._clock()
        found = self._sets.get(url)
        if found is not None and now - found.read_at < self._ttl and kid in found.keys:
            return found.keys[kid]
        if found is None or now - found.tried_at >= self._min_refetch:
            await self._read(url)
            found = self._sets.get(url)
        if found is None or self._clock() - found.read_at > self._ttl + self._max_stale:
            return None  # a set not read for so long is not trusted any more
        return found.keys.get(kid)

    def forget(self, url: str | None = None) -> None:
        """Drop the set read from `url` (every set: `None`)."""
        if url is None:
            self._sets.clear()
        else:
            self._sets.pop(url, None)

    async def _read(self, url: str) -> None:
        waiting = self._reads.get(url)
        if waiting is None:
            waiting = asyncio.ensure_future(self._fetch(url))
            self._reads[url] = waiting
            waiting.add_done_callback(lambda _: self._reads.pop(url, None))
        await asyncio.shield(waiting)

    async def _fetch(self, url: str) -> None:
        now = self._clock()
        before = self._sets.get(url)
        try:
            async with asyncio.timeout(self._timeout):  # the whole read, not each step
                keys = await self._keys_at(url)
        except Exception as exc:
            log.warning("published_keys_unreadable", error=type(exc).__name__)
            if before is not None:
                before.tried_at = now
            else:
                self._sets[url] = _Set({}, read_at=-float("inf"), tried_at=now)
            return
        self._sets[url] = _Set(keys, read_at=now, tried_at=now)

    async def _keys_at(self, url: str) -> dict[str, dict[str, Any]]:
        async with self._http.stream(
            "GET", url, timeout=self._timeout, headers={"Accept": "application/json"}
        ) as response:
            if response.status_code != 200:
                raise ValueError(f"status {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self._max_bytes:
                    raise ValueError("key set too large")
        document = orjson.loads(bytes(body))
        listed = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(listed, list):
            raise ValueError("not a JWKS")
        keys: dict[str, dict[str, Any]] = {}
        for jwk in listed:
            kid = jwk.get("kid") if isinstance(jwk, dict) else None
            # A kid the registry could not hold could not be revoked there either.
            if not isinstance(kid, str) or not KID.fullmatch(kid):
                continue
            try:
                public, _, _ = public_jwk(jwk)
            except InvalidArgument:
                continue
            keys.setdefault(jwk["kid"], public)
        return keys
