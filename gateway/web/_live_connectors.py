"""The connectors in use, replaced while the gateway serves: no restart.

The database holds the truth: the connectors active now and their versions
(`active_connectors`), and a generation that rises whenever they change
(`connectors_generation`). Each replica builds one registry from that list and
serves it; it watches for the generation to rise, woken by a message on the Redis
channel `gw:connectors` when the gateway has Redis, and polling the generation in
any case (every `GATEWAY_CONNECTORS_POLL_SECONDS`: 5 s without Redis, 60 s with it,
in case a message was missed).

On a change a new registry is built and opened beside the one in use, then swapped
in. When it cannot be built (a manifest that no longer builds against the schema, or
a database lacking what it names), the old one keeps serving and the failure, with
the connector it concerns, is logged and shown in `/admin/readiness`. A request holds
the registry it started with to its end (`hold()`); a registry replaced is closed
when the last request holding it ends. Every connector is built afresh at a change,
those that did not change too: their breakers start closed, which is simpler and
safe, as no connector is shared by two registries. Only a source's rate limit carries
over (`KeptLimits`), so that a rebuild never lets more calls through than the agency
allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import httpx
import structlog
from prometheus_client import Counter, Gauge
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors import (
    Connector,
    ConnectorRegistry,
    ManifestBase,
    ManifestError,
    SourceLimiter,
    SourceLimits,
    build_registry,
    connector_kinds,
    parse_manifest,
)
from gateway.config import GatewaySettings
from gateway.errors import SourceError
from gateway.instants import format_instant
from gateway.storage import (
    CONNECTORS_CHANNEL,
    active_connectors,
    connectors_generation,
    stored_secrets,
)
from keys import KeyRingError
from schema import connector_fields

__all__ = [
    "ActiveManifest",
    "BuildFailure",
    "ConnectorStore",
    "DatabaseStore",
    "KeptLimits",
    "LiveConnectors",
    "Served",
]

log = structlog.get_logger(__name__)

POLL_WITHOUT_REDIS: Final = 5.0
POLL_WITH_REDIS: Final = 60.0
GENERATION = Gauge(
    "gateway_connectors_generation", "Generation of the connectors this process serves."
)
RELOADS = Counter(
    "gateway_connectors_reloads_total",
    "Registries built from a change of the connectors in use, by outcome (served, failed).",
    ["outcome"],
)
_REDIS_RETRY: Final = 5.0
"""Seconds before listening again after Redis failed (polling goes on meanwhile)."""


class ActiveManifest(Protocol):
    """One connector in use, as the database holds it (`gateway.storage.ActiveConnector`)."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def manifest(self) -> Mapping[str, Any]: ...


class ConnectorStore(Protocol):
    """Where the connectors in use are read."""

    async def active(self) -> Sequence[ActiveManifest]:
        """The connectors in use, each at its version."""
        ...

    async def generation(self) -> int:
        """A number that rises whenever what `active` returns changes."""
        ...


class DatabaseStore:
    """The connectors in use as the gateway's database holds them."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def active(self) -> Sequence[ActiveManifest]:
        return await active_connectors(self._engine)

    async def generation(self) -> int:
        return await connectors_generation(self._engine)


@dataclass(eq=False, slots=True)
class Served:
    """One registry, built from one generation of the connectors in use."""

    registry: ConnectorRegistry
    versions: Mapping[str, int]
    """Each connector's version, by name: what provenance and the access record name."""
    generation: int
    holders: int = 0
    """Requests holding it now."""
    retired: bool = False
    """Replaced: it is closed when no request holds it any more."""


@dataclass(frozen=True, slots=True)
class BuildFailure:
    """A generation that could not be built: the registry before it keeps serving."""

    generation: int
    connector: str | None
    error: str
    at: datetime.datetime

    def report(self) -> dict[str, Any]:
        """As `/admin/readiness` shows it."""
        return {
            "generation": self.generation,
            "connector": self.connector,
            "error": self.error,
            "at": format_instant(self.at),
        }


class ConnectorFailed(Exception):
    """A connector (`None`: the stored secrets) could not be built or opened: `error` says why."""

    def __init__(self, connector: str | None, error: Exception) -> None:
        super().__init__(f"connector {connector!r}: {error}")
        self.connector = connector
        self.error = error


Builder = Callable[[Sequence[ActiveManifest]], Awaitable[ConnectorRegistry]]


def _manifest(entry: ActiveManifest, files: Mapping[str, ManifestBase]) -> ManifestBase:
    """The manifest of `entry`; the file's own when the database holds it unchanged.

    A file's manifest reads its `file:` secrets and key sets beside it: one parsed
    from the database for a connector that also has a file here reads them there too.
    """
    data = dict(entry.manifest)
    local = files.get(entry.name)
    if local is not None and local.model_dump(mode="json", by_alias=True) == data:
        return local
    manifest = parse_manifest(data)
    if local is not None:
        manifest._path = local.path
    return manifest


async def _build(
    active: Sequence[ActiveManifest],
    *,
    settings: GatewaySettings,
    engine: AsyncEngine,
    http: httpx.AsyncClient,
    rate_limits: SourceLimits | None,
    files: Mapping[str, ManifestBase],
    strict: bool = False,
) -> ConnectorRegistry:
    """The registry of the connectors `active`, one connector at a time.

    Applies `GATEWAY_CONNECTOR_URLS` and the secrets stored for the connectors; the
    gateway's own database is no source. Raises `ConnectorFailed` naming the connector
    that cannot be built. `strict` (at start-up) also refuses an endpoint override
    naming no connector in use, as a typo.
    """
    try:
        secrets = await stored_secrets(engine, settings.keys_dir)
    except Exception as exc:  # a KEK missing, a secret that does not open: named in it
        raise ConnectorFailed(None, exc) from exc
    overrides = dict(settings.connector_urls)
    unused = sorted(set(overrides) - {entry.name for entry in active})
    if unused:
        if strict:
            raise ManifestError("connector_urls", f"no connector named {', '.join(unused)}")
        log.info("connector_urls_unused", connectors=unused)
    kinds, canonical = connector_kinds(), connector_fields()
    reserved = [settings.database_url.get_secret_value()]
    built: list[tuple[ManifestBase, Connector]] = []
    for entry in active:
        try:
            one = build_registry(
                [_manifest(entry, files)],
                http=http,
                canonical=canonical,
                url_overrides={k: v for k, v in overrides.items() if k == entry.name},
                kinds=kinds,
                reserved=reserved,
                rate_limits=rate_limits,
                stored_secrets=secrets,
            )
        except Exception as exc:
            raise ConnectorFailed(entry.name, exc) from exc
        built.extend(zip(one.manifests.values(), one, strict=True))
    return ConnectorRegistry(built)


async def _open(registry: ConnectorRegistry) -> None:
    """`ConnectorRegistry.open`, naming the connector whose source lacks what it names."""
    for connector in registry:
        try:
            await connector.open()
        except SourceError as exc:
            # Unreachable now: opened at its next read, as a source that is down.
            log.warning("connector_unavailable_at_start", connector=connector.name, code=exc.code)
        except Exception as exc:
            raise ConnectorFailed(connector.name, exc) from exc


def _quietly(registry: ConnectorRegistry) -> Any:
    async def close() -> None:
        try:
            await registry.aclose()
        except Exception:
            log.exception("connector_registry_close_failed")

    return close()


class KeptLimits:
    """A connector's limiter kept from one registry to the next while its `rate_limit`
    stays: a rebuild neither gives the source a fresh burst nor, while requests finish
    on the old registry, a second allowance beside the first."""

    def __init__(self, limits: SourceLimits) -> None:
        self._limits = limits
        self._kept: dict[str, tuple[Any, SourceLimiter | None]] = {}

    def limiter(self, manifest: ManifestBase) -> SourceLimiter | None:
        """See `SourceLimits.limiter`."""
        kept = self._kept.get(manifest.name)
        if kept is not None and kept[0] == manifest.rate_limit:
            return kept[1]
        limiter = self._limits.limiter(manifest)
        self._kept[manifest.name] = (manifest.rate_limit, limiter)
        return limiter


class LiveConnectors:
    """The registry in use, swapped for a new one when the connectors in use change.

    `start()` builds the first one (its failure stops start-up) and starts watching;
    `stop()` stops watching; `aclose()` closes every registry once no request holds it.
    """

    def __init__(
        self,
        store: ConnectorStore,
        build: Builder,
        *,
        redis: Redis | None = None,
        poll_seconds: float | None = None,
    ) -> None:
        self._store = store
        self._build = build
        self._redis = redis
        self.poll_seconds = poll_seconds or (
            POLL_WITHOUT_REDIS if redis is None else POLL_WITH_REDIS
        )
        self._served: Served | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False
        self.failure: BuildFailure | None = None
        """The last generation that could not be built, while none built since."""

    @classmethod
    def for_gateway(
        cls,
        settings: GatewaySettings,
        *,
        engine: AsyncEngine,
        http: httpx.AsyncClient,
        redis: Redis | None,
        rate_limits: SourceLimits | None,
        files: Sequence[ManifestBase],
    ) -> LiveConnectors:
        """The gateway's: the database's connectors, built as `settings` say."""
        by_name = {m.name: m for m in files}
        kept = None if rate_limits is None else KeptLimits(rate_limits)
        live = cls(
            DatabaseStore(engine),
            lambda active: _build(
                active,
                settings=settings,
                engine=engine,
                http=http,
                rate_limits=kept,
                files=by_name,
                strict=live._served is None,
            ),
            redis=redis,
            poll_seconds=settings.connectors_poll_seconds,
        )
        return live

    # -- what requests use ------------------------------------------------------------

    def current(self) -> Served:
        """The registry in use now (not held: for reports, not for serving a request)."""
        if self._served is None:
            raise RuntimeError("the connectors are not started")
        return self._served

    @property
    def registry(self) -> ConnectorRegistry:
        """The registry in use now."""
        return self.current().registry

    @property
    def versions(self) -> Mapping[str, int]:
        """Each connector's version in the registry in use now."""
        return self.current().versions

    @contextlib.contextmanager
    def hold(self) -> Iterator[Served]:
        """Hold the registry in use for one request: it is not closed before the end."""
        served = self.current()
        served.holders += 1
        try:
            yield served
        finally:
            served.holders -= 1
            if served.retired and served.holders == 0:
                self._close_later(served)

    def report(self) -> dict[str, Any]:
        """The generation served, and the last one that could not be built (`failure`)."""
        return {
            "generation": self.current().generation,
            "failure": None if self.failure is None else self.failure.report(),
        }

    # -- changes ----------------------------------------------------------------------

    async def reload(self, *, force: bool = True) -> bool:
        """Build the connectors in use now and serve them; whether it swapped.

        Called after a change made in this process (an approval, a stored secret):
        `force` rebuilds even when the generation did not rise. A registry that cannot
        be built leaves the one in use serving, and is reported (`failure`).
        """
        async with self._lock:
            if self._closed:
                return False
            generation = await self._store.generation()
            served = self._served
            if served is not None and not force:
                failed = self.failure is not None and self.failure.generation == generation
                if generation == served.generation or failed:
                    return False
            active = await self._store.active()
            try:
                registry = await self._built(active)
            except ConnectorFailed as exc:
                if served is None:
                    raise
                RELOADS.labels("failed").inc()
                self.failure = BuildFailure(
                    generation,
                    exc.connector,
                    _describe(exc.error),
                    datetime.datetime.now(datetime.UTC),
                )
                log.error(
                    "connectors_reload_failed",
                    generation=generation,
                    connector=exc.connector,
                    error=self.failure.error,
                    serving=served.generation,
                )
                return False
            self._served = Served(registry, {a.name: a.version for a in active}, generation)
            self.failure = None
            GENERATION.set(generation)
            if served is not None:
                RELOADS.labels("served").inc()
            if served is not None:
                served.retired = True
                if served.holders == 0:
                    self._close_later(served)
            log.info(
                "connectors_live",
                generation=generation,
                connectors={a.name: a.version for a in active},
            )
            return True

    async def _built(self, active: Sequence[ActiveManifest]) -> ConnectorRegistry:
        registry = await self._build(active)
        try:
            await _open(registry)
        except BaseException:
            await _quietly(registry)
            raise
        return registry

    def _close_later(self, served: Served) -> None:
        # Closed off the request's path: the answer does not wait for it.
        task = asyncio.get_running_loop().create_task(_quietly(served.registry))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # -- the watcher ------------------------------------------------------------------

    async def start(self) -> None:
        """Build the first registry (its failure is raised), then watch for changes."""
        try:
            await self.reload()
        except ConnectorFailed as exc:
            raise exc.error from None
        self._tasks.append(asyncio.create_task(self._poll(), name="connectors-poll"))
        if self._redis is not None:
            self._tasks.append(asyncio.create_task(self._listen(), name="connectors-listen"))

    async def stop(self) -> None:
        """Stop watching (the registry in use keeps serving until `aclose`)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def aclose(self) -> None:
        """Stop watching and close every registry (requests have ended by now)."""
        self._closed = True
        await self.stop()
        if self._served is not None:
            await _quietly(self._served.registry)
            self._served = None
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    async def _poll(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            self._wake.clear()
            try:
                await self.reload(force=False)
            except Exception as exc:  # the database is down: the next turn tries again
                log.warning("connectors_check_failed", error=type(exc).__name__)

    async def _listen(self) -> None:
        assert self._redis is not None
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(CONNECTORS_CHANNEL)
                    # A message missed while subscribing is caught by this check.
                    self._wake.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: polling goes on; listen again later
                log.warning("connectors_listen_failed", error=type(exc).__name__)
                await asyncio.sleep(_REDIS_RETRY)


def _describe(error: Exception) -> str:
    """What went wrong, without a secret: a manifest error's text names fields only."""
    if isinstance(error, ManifestError | ValueError | KeyRingError):
        return str(error)
    return type(error).__name__
