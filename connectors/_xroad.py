"""The `xroad` connector kind: REST services behind an X-Road security server.

An X-Road REST service is a REST source whose paths are
`/r1/{instance}/{class}/{member}/{subsystem}/{service}[/{version}]/...` on the
gateway's own security server, so the kind is the `rest` kind with three differences:

- every call names the gateway's client subsystem (`client` in the manifest) in
  `X-Road-Client`, beside `X-Road-Id`, `X-Road-UserId` and `X-Road-Issue`, each
  percent-encoded as `connectors._headers.header_value` does;
- the security server's `X-Road-Request-Hash` answer header is evidence of what was
  asked: it is kept per request id (`X-Road-Id`) and read with
  `XroadConnector.evidence(request_id)`, the hashes of every call made for it, in order
  (the last `EVIDENCE_KEPT` request ids are kept);
- an X-Road error (an `X-Road-Error` header, and a body `{"type": ..., "message": ...}`)
  becomes a stable gateway error: a timeout `SOURCE_TIMEOUT`; a refused client, service
  or request `SOURCE_REJECTED`; anything else (the service failed, the network, the
  security server) `SOURCE_UNAVAILABLE`. Only the X-Road error type is kept in the
  error's detail; the message is the source's text and is not passed on.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any, Final
from urllib.parse import unquote

import httpx
import orjson
import structlog

from connectors._headers import header_value
from connectors._manifest import XroadManifest
from connectors._rest import RestConnector
from connectors.base import FetchContext
from gateway.errors import SourceError, SourceRejected, SourceTimeout, SourceUnavailable

__all__ = ["EVIDENCE_KEPT", "XroadConnector", "xroad_error"]

log = structlog.get_logger(__name__)

EVIDENCE_KEPT: Final = 10_000
"""How many request ids' request hashes a connector keeps."""
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
        self._evidence: OrderedDict[str, list[str]] = OrderedDict()

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

    def evidence(self, request_id: str) -> tuple[str, ...]:
        """The `X-Road-Request-Hash` of every call made for `request_id`, in order."""
        return tuple(self._evidence.get(request_id, ()))

    def _source_headers(self, ctx: FetchContext) -> dict[str, str]:
        # The security server grants access to the gateway's client subsystem; the
        # calling system stays in the gateway's own record, linked by X-Road-Id.
        return {**super()._source_headers(ctx), "X-Road-Client": self._client_header}

    async def _check_answer(self, request: httpx.Request, response: httpx.Response) -> None:
        """Keep the answer's request hash; raise what an X-Road error means."""
        self._answered(request, response)
        header = response.headers.get("x-road-error")
        if header is None and response.status_code < 500:
            return
        kind = header or await _error_type(response)
        if kind is None:
            return  # a 5xx of the service itself, classified by its status
        log.warning("xroad_error", connector=self.name, xroad_error=kind)
        raise xroad_error(kind, source=self.name, status=response.status_code)

    def _answered(self, request: httpx.Request, response: httpx.Response) -> None:
        digest = response.headers.get("x-road-request-hash")
        sent_id = request.headers.get("x-road-id")
        if digest is None or sent_id is None or not _HASH.fullmatch(digest):
            return
        request_id = unquote(sent_id)
        kept = self._evidence.get(request_id)
        if kept is None:
            kept = self._evidence[request_id] = []
            while len(self._evidence) > EVIDENCE_KEPT:
                self._evidence.popitem(last=False)
        kept.append(digest)
