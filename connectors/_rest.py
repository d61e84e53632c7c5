"""The `rest` connector kind: a source with JSON lookup endpoints over HTTP.

Lookups of several keys go to the source's batch endpoint in one call (split only when
a batch exceeds the source's `max_size`); single keys, or sources without a batch
endpoint, use the `get` path. Only the source fields behind the requested canonical
fields are asked for when the source supports field selection.

Every call, each retry included, first takes a permit of the source's rate limit
(`connectors._ratelimit`); the xroad and graphql kinds call through here too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import httpx
import orjson
import structlog
from aiohttp.http_exceptions import ContentEncodingError

from connectors._auth import HttpCredentials
from connectors._headers import purpose_headers
from connectors._manifest import RestEntity, RestList, RestManifest
from connectors._mapping import FieldMapper, compile_fields, source_roots
from connectors._metrics import count_call, observe_latency
from connectors._ratelimit import LocalLimiter, SourceLimiter, take_permit
from connectors._resilience import CircuitBreaker, backoff, time_left
from connectors._signatures import DocumentSignatures, document_signatures, map_checked
from connectors.base import FetchContext, FetchResult, Health
from gateway import tracing
from gateway.awaiting import all_of
from gateway.errors import (
    SourceDataInvalid,
    SourceError,
    SourceRateLimited,
    SourceTimeout,
    SourceUnavailable,
    classify_status,
)

__all__ = ["RestConnector"]

log = structlog.get_logger(__name__)

_BACKOFF_SECONDS = 0.05
_MIN_ATTEMPT = 0.1
"""Seconds a retry needs left after its pause to be worth starting."""


class _Entity:
    __slots__ = ("mappers", "signatures", "spec")

    def __init__(self, spec: RestEntity, *, manifest: RestManifest) -> None:
        self.spec = spec
        self.mappers: dict[str, FieldMapper] = compile_fields(
            spec.fields, source=manifest.name, tables=manifest.tables
        )
        self.signatures = document_signatures(
            spec.signature,
            source=manifest.name,
            base_url=manifest.base_url,
            local=manifest.local_path,
        )

    def source_fields(self, fields: frozenset[str], *, by_key: bool) -> list[str] | None:
        """The source fields to ask for, or `None` for all (an expression reads `@`)."""
        roots = source_roots(self.mappers[f] for f in fields if f in self.mappers)
        if roots is None:
            return None
        if by_key:
            # Needed to match answers to keys; a list is asked for by holder instead.
            roots |= {self.spec.key_field}
        if self.signatures is not None:
            roots |= self.signatures.wanted  # checked whatever is asked
        return sorted(roots)

    def mappers_for(self, fields: frozenset[str]) -> list[FieldMapper]:
        return [m for name, m in self.mappers.items() if name in fields]


_SPENT = httpx.ByteStream(b"")
"""What a closed response's stream is replaced with."""
_CHUNK = 64 * 1024


def _usable(status: int) -> bool:
    """Whether an answer with `status` has a body to read (`classify_status`)."""
    return status < 400


class RestConnector:
    """Reads canonical entities from a JSON-over-HTTP source."""

    def __init__(self, manifest: RestManifest, *, http: httpx.AsyncClient) -> None:
        self.name = manifest.name
        self.manifest = manifest
        # Secrets are read now: one that cannot be read stops start-up (ManifestError).
        self._credentials = HttpCredentials(manifest)
        # With `tls`, a client of the connector's own (closed by `aclose`).
        self._http = self._credentials.client(http)
        # Calls go to the aiohttp session directly when the client has one and the kind
        # needs no httpx answer to look at (`_check_answer`).
        plain = type(self)._check_answer is RestConnector._check_answer
        self._session = getattr(self._http, "session", None) if plain else None
        self._timeout = httpx.Timeout(manifest.timeout_seconds)
        self._limit = asyncio.Semaphore(manifest.max_concurrency)
        self.breaker = CircuitBreaker(
            manifest.name,
            failures=manifest.breaker.failures,
            reset_seconds=manifest.breaker.reset_seconds,
        )
        # This process's own permits until the registry gives shared ones (`limit_rate`).
        spec = manifest.rate_limit
        self._rate: SourceLimiter | None = None if spec is None else LocalLimiter(spec)
        self._entities = self._rest_entities(manifest)

    def _rest_entities(self, manifest: RestManifest) -> dict[str, _Entity]:
        """How each entity is read here; a kind with lookups of its own reads none so."""
        return {kind: _Entity(spec, manifest=manifest) for kind, spec in manifest.entities.items()}

    def _signed(self) -> Iterator[DocumentSignatures]:
        """The checks of this connector's signed entities."""
        for entity in self._entities.values():
            if entity.signatures is not None:
                yield entity.signatures

    def __repr__(self) -> str:
        return f"RestConnector(name={self.name!r}, base_url={self.manifest.base_url!r})"

    @classmethod
    def from_manifest(cls, manifest: RestManifest, *, http: httpx.AsyncClient) -> RestConnector:
        """Build from a validated manifest (the plug-in entry point)."""
        return cls(manifest, http=http)

    def limit_rate(self, limiter: SourceLimiter | None) -> None:
        """Take permits from `limiter` (the registry's, shared by replicas) from now on."""
        self._rate = limiter

    async def open(self) -> None:
        """Fetch the issuers' keys of signed entities (secrets were read at build)."""
        for signatures in self._signed():
            await signatures.ready(self._http)

    async def fetch(
        self,
        kind: str,
        keys: Sequence[str],
        fields: frozenset[str],
        ctx: FetchContext,
        *,
        by: str | None = None,
    ) -> Mapping[str, FetchResult]:
        """Look up `keys` of `kind` for the canonical `fields` (by another key: lists)."""
        entity = self._entities[kind]
        wanted = entity.source_fields(fields, by_key=by is None)
        mappers = entity.mappers_for(fields)
        headers = self._source_headers(ctx)
        unique = list(dict.fromkeys(keys))
        if by is not None:
            way = entity.spec.lists[by]  # type: ignore[index]
            lists = await all_of([self._get_many(way, k, wanted, headers, entity) for k in unique])
            if entity.signatures is not None:
                await entity.signatures.ready(
                    self._http, (item for items in lists for item in items or ())
                )
            return {
                k: None
                if items is None
                else [map_checked(entity.signatures, mappers, item, fields) for item in items]
                for k, items in zip(unique, lists, strict=True)
            }
        batch = entity.spec.batch
        if batch is not None and (len(unique) > 1 or entity.spec.get is None):
            chunks = [unique[i : i + batch.max_size] for i in range(0, len(unique), batch.max_size)]
            parts = await all_of([self._batch(entity, chunk, wanted, headers) for chunk in chunks])
            raw: dict[str, Mapping[str, Any] | None] = {
                k: v for part in parts for k, v in part.items()
            }
        else:
            found = await all_of([self._get(entity, k, wanted, headers) for k in unique])
            raw = dict(zip(unique, found, strict=True))
        if entity.signatures is not None:
            await entity.signatures.ready(self._http, raw.values())
        return {
            k: None if rec is None else map_checked(entity.signatures, mappers, rec, fields)
            for k, rec in raw.items()
        }

    def _source_headers(self, ctx: FetchContext) -> dict[str, str]:
        """The headers every call made for `ctx` carries: who asks and why."""
        return purpose_headers(ctx)

    async def _check_answer(self, request: httpx.Request, response: httpx.Response) -> None:
        """Look at an answer before its status is read; a kind may raise a `SourceError`
        (the caller closes the answer)."""

    async def _get_body(
        self,
        path: str,
        key: str,
        wanted: list[str] | None,
        headers: dict[str, str],
        entity: _Entity,
    ) -> Any:
        url = self.manifest.base_url + path.replace("{key}", quote(key, safe=""))
        if entity.spec.fields_param and wanted is not None:
            url += ("&" if "?" in url else "?") + urlencode(
                {entity.spec.fields_param: ",".join(wanted)}
            )
        return await self._call("GET", url, headers=headers, route="get")

    async def _get(
        self, entity: _Entity, key: str, wanted: list[str] | None, headers: dict[str, str]
    ) -> Mapping[str, Any] | None:
        assert entity.spec.get is not None
        body = await self._get_body(entity.spec.get, key, wanted, headers, entity)
        if body is None:
            return None
        if not isinstance(body, dict):
            raise SourceDataInvalid("Expected a JSON object.", source=self.name)
        # Never serve one person's record under another's id, whatever the source did.
        if body.get(entity.spec.key_field) != key:
            raise SourceDataInvalid("The source answered for another key.", source=self.name)
        return body

    async def _get_many(
        self,
        way: RestList,
        key: str,
        wanted: list[str] | None,
        headers: dict[str, str],
        entity: _Entity,
    ) -> list[Mapping[str, Any]] | None:
        body = await self._get_body(way.get, key, wanted, headers, entity)
        if body is None:
            return None
        field = way.list_field
        items = body.get(field) if field is not None and isinstance(body, dict) else body
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise SourceDataInvalid("Expected a list of JSON objects.", source=self.name)
        return items

    async def _batch(
        self, entity: _Entity, keys: list[str], wanted: list[str] | None, headers: dict[str, str]
    ) -> dict[str, Mapping[str, Any]]:
        spec = entity.spec.batch
        assert spec is not None
        payload: dict[str, Any] = {spec.keys_field: keys}
        if spec.fields_field and wanted is not None:
            payload[spec.fields_field] = wanted
        body = await self._call(
            "POST", self.manifest.base_url + spec.path, headers=headers, json=payload, route="batch"
        )
        results = body.get(spec.results_field) if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise SourceDataInvalid(f"Expected a list in {spec.results_field!r}.", source=self.name)
        key_field = entity.spec.key_field
        out: dict[str, Mapping[str, Any]] = {}
        for item in results:
            if not isinstance(item, dict) or not isinstance(item.get(key_field), str):
                raise SourceDataInvalid("A batch result lacks its key.", source=self.name)
            out[item[key_field]] = item
        return out

    async def _call(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        route: str,
        json: Any = None,
    ) -> Any:
        attempt = 0
        failed: SourceError | None = None
        timeout = self.manifest.timeout_seconds
        while True:
            try:
                # Each attempt: the breaker lets it go, the rate limit gives it a permit in
                # time, and it ends by the request's deadline.
                with self.breaker.attempt(timeout) as budget:
                    budget = await take_permit(
                        self._rate, source=self.name, call_timeout=timeout, budget=budget
                    )
                    return await self._once(
                        method, url, headers=headers, json=json, route=route, budget=budget
                    )
            except SourceRateLimited:
                if failed is not None:
                    raise failed from None  # no permit for a retry: the source's answer stands
                raise
            except SourceError as exc:
                failed = exc
                if not exc.retriable or attempt >= self.manifest.retries:
                    raise
                attempt += 1
                pause = backoff(attempt, _BACKOFF_SECONDS)
                left = time_left()
                if left is not None and left < pause + _MIN_ATTEMPT:
                    raise  # a retry could not end in time: this answer stands
                await asyncio.sleep(pause)

    async def _once(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        route: str,
        json: Any,
        budget: float,
    ) -> Any:
        """One call, within `budget` seconds (waiting for a slot included), in a span of
        its own when tracing, with the outcome its metrics count."""
        attributes = {"gateway.connector": self.name, "gateway.route": route}
        with tracing.span("source_call", attributes) as current:
            started = time.perf_counter()
            outcome = "ok"
            try:
                # A 401 with an OAuth2 token: the token is dropped and the call made once more
                # (with a permit of its own).
                for turn, may_renew in enumerate((self._credentials.refreshes, False)):
                    if turn:
                        budget = await take_permit(
                            self._rate,
                            source=self.name,
                            call_timeout=self.manifest.timeout_seconds,
                            budget=budget,
                        )
                    # A token is asked for, when needed, within a deadline of its own.
                    auth = await self._credentials.headers(self._http)
                    # The deadline covers waiting for a slot, connecting and reading the whole
                    # answer: a source that trickles bytes cannot hold a request any longer.
                    async with asyncio.timeout(budget), self._limit:
                        content = orjson.dumps(json) if json is not None else None
                        sent = {**headers, **auth}
                        if content is not None:
                            sent["content-type"] = "application/json"
                        tracing.inject(sent)
                        status, body = await self._exchange(method, url, sent, content, budget)
                    if status == 401 and may_renew:
                        self._credentials.expire(auth)
                        continue
                    error = classify_status(status, source=self.name)
                    if error is not None:
                        raise error
                    if status == 404:
                        outcome = "not_found"
                        return None
                    break
                try:
                    return orjson.loads(body)
                except orjson.JSONDecodeError:
                    raise SourceDataInvalid(
                        "The source did not answer JSON.", source=self.name
                    ) from None
            except SourceError as exc:
                outcome = exc.code
                raise
            except httpx.DecodingError:
                outcome = SourceDataInvalid.code
                raise SourceDataInvalid(
                    "The source's answer cannot be decoded.", source=self.name
                ) from None
            except (httpx.HTTPError, aiohttp.ClientError, TimeoutError) as exc:
                error = _transport_error(exc, source=self.name)
                outcome = error.code
                raise error from None
            finally:
                count_call(self.name, route, outcome)
                observe_latency(self.name, route, time.perf_counter() - started)
                if current is not None:
                    current.set_attribute("gateway.outcome", outcome)

    async def _exchange(
        self, method: str, url: str, headers: dict[str, str], content: bytes | None, budget: float
    ) -> tuple[int, bytes]:
        """Send one call: the answer's status, and its body when the status says the
        answer is usable (else empty)."""
        session = self._session
        if session is None:
            request = self._http.build_request(
                method, url, headers=headers, content=content, timeout=httpx.Timeout(budget)
            )
            response = await self._http.send(request, stream=True)
            try:
                await self._check_answer(request, response)
                status = response.status_code
                if not _usable(status):
                    return status, b""
                declared = response.headers.get("content-length")
                return status, await self._read(declared, response.aiter_bytes())
            finally:
                await response.aclose()
                # httpx's stream refers back to its response: a cycle that keeps the
                # answer (and the transport's) until the collector's next pass.
                response.stream = _SPENT
        async with session.request(
            method, url, headers=headers, data=content, allow_redirects=False
        ) as answer:
            status = answer.status
            if not _usable(status):
                return status, b""
            declared = answer.headers.get("content-length")
            try:
                return status, await self._read(declared, answer.content.iter_chunked(_CHUNK))
            except aiohttp.ClientPayloadError as exc:
                if isinstance(exc.__cause__, ContentEncodingError):
                    raise httpx.DecodingError(str(exc)) from exc
                raise

    async def _read(self, declared: str | None, chunks_in: AsyncIterator[bytes]) -> bytes:
        """The whole answer, refusing one larger than the manifest allows."""
        limit = self.manifest.max_response_bytes
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise SourceDataInvalid(
                "The source's answer is too large.", source=self.name, max=limit
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in chunks_in:
            size += len(chunk)
            if size > limit:
                raise SourceDataInvalid(
                    "The source's answer is too large.", source=self.name, max=limit
                )
            chunks.append(chunk)
        return b"".join(chunks)

    async def health(self) -> Health:
        """Call the source's health path with the connector's timeout.

        Only with a permit of the rate limit free now: at its limit the source is not
        called for a check (`rate_limited`); its breaker tells how its calls go.
        """
        if self._rate is not None and await self._rate.reserve(0) is None:
            return Health(ok=True, detail="rate_limited")
        started = time.perf_counter()
        try:
            for may_renew in (self._credentials.refreshes, False):
                auth = await self._credentials.headers(self._http)
                async with asyncio.timeout(self.manifest.timeout_seconds):
                    response = await self._http.get(
                        self.manifest.base_url + self.manifest.health_path,
                        headers=auth,
                        timeout=self._timeout,
                    )
                if response.status_code == 401 and may_renew:
                    self._credentials.expire(auth)
                    continue
                break
        except SourceError as exc:  # the token endpoint failed
            return Health(ok=False, detail=exc.code)
        except TimeoutError:
            return Health(ok=False, detail="timeout")
        except httpx.HTTPError as exc:
            return Health(ok=False, detail=type(exc).__name__)
        latency = (time.perf_counter() - started) * 1000
        return Health(ok=response.is_success, detail=str(response.status_code), latency_ms=latency)

    async def aclose(self) -> None:
        """Close the client of the connector's own (with `tls`); the injected one is the
        caller's."""
        await self._credentials.aclose()


def _transport_error(exc: Exception, *, source: str) -> SourceError:
    """A timeout only when time ran out; a refused or dropped connection is unavailable.

    The aiohttp transport reports a refused or reset connection as
    `httpx.ConnectTimeout`; the cause it chains says what really happened.
    """
    cause = exc.__cause__
    timed_out = isinstance(exc, TimeoutError) or (
        isinstance(exc, httpx.TimeoutException)
        and (cause is None or isinstance(cause, TimeoutError))
    )
    if timed_out:
        return SourceTimeout(source=source)
    return SourceUnavailable(source=source, reason=type(cause or exc).__name__)
