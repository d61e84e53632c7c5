"""The `xroad` connector kind: REST services behind an X-Road security server.

An X-Road REST service is a REST source whose paths are
`/r1/{instance}/{class}/{member}/{subsystem}/{service}[/{version}]/...` on the
gateway's own security server, so the kind is the `rest` kind with three differences:

- every call names the gateway's client subsystem (`client` in the manifest) in
  `X-Road-Client`, beside `X-Road-Id`, `X-Road-UserId` and `X-Road-Issue`, each
  percent-encoded as `connectors._headers.header_value` does;
- the security server's `X-Road-Request-Hash` answer header is evidence of what was
  asked: the hash of every answered call (an X-Road error's too, retries included) goes,
  in the order the answers came, to the request's `FetchContext.evidence` as
  `xroadRequestHashes`, and from there into the sealed personal part of its access
  record. It is the hash of a request naming a person, so it is never logged, and it is
  kept nowhere else: an auditor compares it with the security server's log of the
  message whose `X-Road-Id` is the record's `requestId`;
- an X-Road error (an `X-Road-Error` header, and a body `{"type": ..., "message": ...}`)
  becomes a stable gateway error: a timeout `SOURCE_TIMEOUT`; a refused client, service
  or request `SOURCE_REJECTED`; anything else (the service failed, the network, the
  security server) `SOURCE_UNAVAILABLE`. Only the X-Road error type is kept in the
  error's detail; the message is the source's text and is not passed on.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import httpx
import orjson
import structlog

from connectors._headers import header_value
from connectors._manifest import XroadManifest
from connectors._rest import RestConnector
from connectors.base import EvidenceSink, FetchContext, FetchResult
from gateway.errors import SourceError, SourceRejected, SourceTimeout, SourceUnavailable

__all__ = ["REQUEST_HASHES", "XroadConnector", "xroad_error"]

log = structlog.get_logger(__name__)

REQUEST_HASHES: Final = "xroadRequestHashes"
"""The kind of evidence the security server's request hashes are kept as."""
_SINK: contextvars.ContextVar[EvidenceSink | None] = contextvars.ContextVar(
    "xroad_evidence", default=None
)
"""The evidence sink of the fetch being made (and of the tasks it starts): the `rest`
kind's hooks see the request and its answer, not the fetch's context."""
_ERROR_BODY_MAX: Final = 64 * 1024
_ERROR_TYPE: Final = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,199}")
_HASH: Final = re.compile(r"[A-Za-z0-9+/=_-]{1,256}")

_REJECTED: Final = (
    "AccessDenied",
    "UnknownMember",
    "UnknownService",
    "UnknownSubsystem",
    "InvalidClientIdentifier",
    "InvalidServiceIdentifier",
    "InvalidRequest",
    "InvalidMessage",
    "InvalidHttpHeader",
    "MissingHeaderField",
    "InvalidSignatureValue",
    "SslAuthenticationFailed",
)
"""X-Road fault codes that say the request itself, or this client, is refused: asking
again does not help."""


def xroad_error(kind: str, *, source: str, status: int | None = None) -> SourceError:
    """The gateway error for an X-Road error type (`Server.ServerProxy.ServiceFailed`).

    A type naming a timeout is `SourceTimeout`; one of the refusals (access denied, an
    unknown member or service, a malformed request) or any `Client.*` type is
    `SourceRejected`; any other, `SourceUnavailable` (retriable).
    """
    kind = kind if _ERROR_TYPE.fullmatch(kind) else "Unknown"
    parts = kind.split(".")
    detail: dict[str, Any] = {"xroad_error": kind}
    if status is not None:
        detail["status"] = status
    if any("timeout" in part.lower() for part in parts):
        return SourceTimeout(source=source, **detail)
    if parts[0] == "Client" or any(part in _REJECTED for part in parts):
        return SourceRejected(source=source, **detail)
    return SourceUnavailable(source=source, **detail)


async def _error_type(response: httpx.Response) -> str | None:
    """The `type` of an X-Road error body, if the answer is one."""
    content_type = response.headers.get("content-type", "")
    if "json" not in content_type:
        return None
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > _ERROR_BODY_MAX:
        return None
    body = await response.aread()
    if len(body) > _ERROR_BODY_MAX:
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    kind = data.get("type") if isinstance(data, dict) else None
    if isinstance(kind, str) and kind.startswith(("Server.", "Client.")):
        return kind
    return None


class XroadConnector(RestConnector):
    """Reads canonical entities from X-Road REST services (the `rest` kind's machinery)."""

    def __init__(self, manifest: XroadManifest, *, http: httpx.AsyncClient) -> None:
        super().__init__(manifest.rest_manifest(), http=http)
        self.xroad = manifest
        self._client_header = header_value(manifest.client)

    def __repr__(self) -> str:
        return (
            f"XroadConnector(name={self.name!r}, base_url={self.manifest.base_url!r}, "
            f"client={self.xroad.client!r})"
        )

    @classmethod
    def from_manifest(  # type: ignore[override]
        cls, manifest: XroadManifest, *, http: httpx.AsyncClient
    ) -> XroadConnector:
        """Build from a validated manifest (the plug-in entry point)."""
        return cls(manifest, http=http)

    async def fetch(
        self,
        kind: str,
        keys: Sequence[str],
        fields: frozenset[str],
        ctx: FetchContext,
        *,
        by: str | None = None,
    ) -> Mapping[str, FetchResult]:
        """Look up as the `rest` kind does; each answer's request hash goes to
        `ctx.evidence`."""
        token = _SINK.set(ctx.evidence)
        try:
            return await super().fetch(kind, keys, fields, ctx, by=by)
        finally:
            _SINK.reset(token)

    def _source_headers(self, ctx: FetchContext) -> dict[str, str]:
        # The security server grants access to the gateway's client subsystem; the
        # calling system stays in the gateway's own record, linked by X-Road-Id.
        return {**super()._source_headers(ctx), "X-Road-Client": self._client_header}

    async def _check_answer(self, request: httpx.Request, response: httpx.Response) -> None:
        """Keep the answer's request hash; raise what an X-Road error means."""
        self._answered(response)
        header = response.headers.get("x-road-error")
        if header is None and response.status_code < 500:
            return
        kind = header or await _error_type(response)
        if kind is None:
            return  # a 5xx of the service itself, classified by its status
        log.warning("xroad_error", connector=self.name, xroad_error=kind)
        raise xroad_error(kind, source=self.name, status=response.status_code)

    def _answered(self, response: httpx.Response) -> None:
        """Hand the answer's request hash, if it carries a well-formed one, to the sink."""
        sink = _SINK.get()
        digest = response.headers.get("x-road-request-hash")
        if sink is None or digest is None or not _HASH.fullmatch(digest):
            return
        sink.add(self.name, REQUEST_HASHES, digest)
