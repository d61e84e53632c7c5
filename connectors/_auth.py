"""Credentials towards a source over HTTP: an API key, OAuth 2.0 tokens, mutual TLS.

Every kind that speaks HTTP (`rest`, later `xroad` and `graphql`) builds one
`HttpCredentials` from its manifest. Secrets are read when it is built, so a secret
that cannot be read stops start-up with a `ManifestError` naming the file, the line
and the field. Values are held by `Secret` and revealed only into the header or the
TLS context that needs them: no log line, error, metric or record carries one.

- `api_key`: the key goes in the manifest's header on every call.
- `oauth2_client_credentials`: a token is asked for at `token_url` (RFC 6749 §4.4),
  the client authenticated by HTTP Basic (§2.3.1), and kept until shortly before it
  expires; one refresh at a time however many calls wait. A source answering 401
  drops the token (`expire`), and the caller asks again once.
- `tls`: the connector gets a client of its own presenting the client certificate
  and verifying the source by `ca_file`; without `tls` the injected client is used.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import ssl
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import httpx
import orjson

from connectors._http import NoCookies
from connectors._manifest import (
    ApiKeyAuth,
    HttpManifest,
    HttpTls,
    OAuth2ClientCredentials,
)
from connectors._secrets import Secret, resolve_secret
from gateway.errors import SourceRejected, SourceUnavailable

__all__ = ["HttpCredentials", "tls_context"]

_MAX_TOKEN_ANSWER = 64 * 1024
_DEFAULT_LIFETIME = 300.0
"""Seconds a token without `expires_in` is kept (a 401 drops it sooner)."""
_MARGIN = 30.0
"""A token is renewed this long before it expires (or at 90% of a shorter lifetime)."""
_LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=16, keepalive_expiry=5.0)


class HttpCredentials:
    """How one connector authenticates to its source; built from its manifest."""

    def __init__(
        self, manifest: HttpManifest, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._source = manifest.name
        self._timeout = manifest.timeout_seconds
        self._clock = clock
        self._api_key: tuple[str, Secret] | None = None
        self._oauth2: OAuth2ClientCredentials | None = None
        self._client_secret: Secret | None = None
        self._token: Secret | None = None
        self._token_until = 0.0
        self._lock = asyncio.Lock()
        auth = manifest.auth
        if isinstance(auth, ApiKeyAuth):
            self._api_key = (
                auth.header,
                resolve_secret(manifest, ("auth", "key", "ref"), auth.key),
            )
        elif isinstance(auth, OAuth2ClientCredentials):
            self._oauth2 = auth
            self._client_secret = resolve_secret(
                manifest, ("auth", "client_secret", "ref"), auth.client_secret
            )
        self._ssl = tls_context(manifest) if manifest.tls is not None else None
        self._own: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        kind = "none" if self._api_key is None and self._oauth2 is None else "set"
        return f"HttpCredentials(source={self._source!r}, auth={kind}, tls={self._ssl is not None})"

    @property
    def refreshes(self) -> bool:
        """Whether a 401 from the source is worth one more try with a new token."""
        return self._oauth2 is not None

    def client(self, shared: httpx.AsyncClient) -> httpx.AsyncClient:
        """The client to call the source with: the connector's own with `tls`, else `shared`."""
        if self._ssl is None:
            return shared
        if self._own is None:
            # httpx's own transport, which takes the context with the client certificate.
            self._own = httpx.AsyncClient(
                verify=self._ssl,
                limits=_LIMITS,
                follow_redirects=False,
                trust_env=False,
                cookies=NoCookies(),  # as the shared client: one citizen's cookie is no other's
            )
        return self._own

    async def aclose(self) -> None:
        """Close the client of its own, if one was made."""
        if self._own is not None:
            await self._own.aclose()
            self._own = None

    async def headers(self, http: httpx.AsyncClient) -> dict[str, str]:
        """The headers that authenticate a call (a token is asked for when needed).

        Raises `SourceRejected` when the token endpoint refuses the credentials and
        `SourceUnavailable` when it fails otherwise; neither names a secret.
        """
        if self._api_key is not None:
            header, key = self._api_key
            return {header: key.reveal()}
        if self._oauth2 is None:
            return {}
        token = self._token
        if token is None or self._clock() >= self._token_until:
            async with self._lock:
                token = self._token
                if token is None or self._clock() >= self._token_until:
                    token = await self._fetch_token(http)
        return {"Authorization": f"Bearer {token.reveal()}"}

    def expire(self, sent: dict[str, str]) -> None:
        """Drop the token sent in `sent` (the source answered 401), unless already renewed."""
        token = self._token
        if token is not None and sent.get("Authorization") == f"Bearer {token.reveal()}":
            self._token = None
            self._token_until = 0.0

    async def _fetch_token(self, http: httpx.AsyncClient) -> Secret:
        oauth2 = self._oauth2
        assert oauth2 is not None
        assert self._client_secret is not None
        form = {"grant_type": "client_credentials"}
        if oauth2.scope:
            form["scope"] = oauth2.scope
        # RFC 6749 §2.3.1: id and secret form-encoded, then joined for Basic.
        pair = f"{quote_plus(oauth2.client_id)}:{quote_plus(self._client_secret.reveal())}"
        basic = base64.b64encode(pair.encode()).decode("ascii")
        try:
            async with asyncio.timeout(self._timeout):
                request = http.build_request(
                    "POST",
                    oauth2.token_url,
                    data=form,
                    headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
                    timeout=httpx.Timeout(self._timeout),
                )
                response = await http.send(request, stream=True)
                try:
                    status = response.status_code
                    body = await _read_small(response) if status == 200 else b""
                finally:
                    await response.aclose()
        except TimeoutError:
            raise self._unavailable("the token endpoint did not answer in time") from None
        except httpx.HTTPError as exc:
            raise self._unavailable(f"the token endpoint failed ({type(exc).__name__})") from None
        if status in (400, 401, 403):
            # The client's credentials were refused (RFC 6749 §5.2): asking again with
            # the same ones would be refused again, so this is not retried.
            raise SourceRejected(
                f"The source's token endpoint refused the gateway's credentials ({status}).",
                source=self._source,
                status=status,
            )
        if status != 200:
            raise self._unavailable(f"the token endpoint answered {status}", status=status)
        access, lifetime = self._parse(body)
        self._token = Secret(f"oauth2:{oauth2.token_url}", access)
        margin = min(_MARGIN, lifetime * 0.1)
        self._token_until = self._clock() + lifetime - margin
        return self._token

    def _parse(self, body: bytes) -> tuple[str, float]:
        try:
            answer: Any = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise self._unavailable("the token endpoint did not answer JSON") from None
        if not isinstance(answer, dict):
            raise self._unavailable("the token endpoint did not answer a JSON object")
        access = answer.get("access_token")
        if not isinstance(access, str) or not access or not access.isprintable():
            raise self._unavailable("the token endpoint's answer lacks access_token")
        token_type = answer.get("token_type")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise self._unavailable("the token endpoint's answer is not a Bearer token")
        lifetime = answer.get("expires_in", _DEFAULT_LIFETIME)
        if isinstance(lifetime, str) and lifetime.isdigit():
            lifetime = int(lifetime)
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
            raise self._unavailable("the token endpoint's answer has no valid expires_in")
        return access, float(lifetime)

    def _unavailable(self, reason: str, **detail: Any) -> SourceUnavailable:
        return SourceUnavailable(
            f"The source is unavailable: {reason}.", source=self._source, **detail
        )


async def _read_small(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > _MAX_TOKEN_ANSWER:
            return b""  # not a token answer; refused as not JSON
        chunks.append(chunk)
    return b"".join(chunks)


def tls_context(manifest: HttpManifest) -> ssl.SSLContext:
    """The TLS context of `manifest.tls`: the CAs to trust and the client certificate.

    Relative paths are read from the manifest's folder. A key given by `file:` is
    loaded from its path; one given otherwise (`env:` holding a PEM) through a file
    only its owner may read, in a private folder, deleted as soon as it is loaded.
    Raises `ManifestError` naming the field when a file or key cannot be loaded.
    """
    tls = manifest.tls
    assert tls is not None
    try:
        context = ssl.create_default_context(
            cafile=None if tls.ca_file is None else str(manifest.local_path(tls.ca_file))
        )
    except (OSError, ssl.SSLError) as exc:
        raise manifest.error(("tls", "ca_file"), f"cannot load: {_why(exc)}") from None
    if tls.client_cert is not None:
        _load_client_pair(manifest, tls, context)
    return context


def _load_client_pair(manifest: HttpManifest, tls: HttpTls, context: ssl.SSLContext) -> None:
    assert tls.client_cert is not None
    assert tls.client_key is not None
    cert = str(manifest.local_path(tls.client_cert))
    if not Path(cert).is_file():
        raise manifest.error(("tls", "client_cert"), f"cannot read {cert}")
    loc: tuple[str, ...] = ("tls", "client_key", "ref")
    if tls.client_key.provider == "file":
        try:
            context.load_cert_chain(cert, manifest.local_path(tls.client_key.name))
        except (OSError, ssl.SSLError) as exc:
            raise manifest.error(
                loc, f"cannot load the client certificate and key: {_why(exc)}"
            ) from None
        return
    key = resolve_secret(manifest, loc, tls.client_key)
    with tempfile.TemporaryDirectory(prefix="gateway-key-") as folder:  # mode 0700
        path = Path(folder) / "client.key"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(key.reveal())
                file.write("\n")
            context.load_cert_chain(cert, str(path))
        except (OSError, ssl.SSLError) as exc:
            raise manifest.error(
                loc, f"cannot load the client certificate and key: {_why(exc)}"
            ) from None
        finally:
            with contextlib.suppress(OSError):
                path.unlink()


def _why(exc: OSError | ssl.SSLError) -> str:
    """Why loading failed, without the contents of any file."""
    if isinstance(exc, ssl.SSLError):
        return exc.reason or "not a valid PEM certificate or key"
    return exc.strerror or type(exc).__name__
