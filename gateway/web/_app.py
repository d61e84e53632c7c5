"""The application factory: `create_app(settings)` builds one gateway."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import gc
from collections.abc import AsyncIterator
from typing import Any

import orjson
import structlog
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from redis.asyncio import Redis
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from connectors import (
    LocalLimits,
    ManifestBase,
    RedisLimits,
    SourceLimits,
    check_kind,
    check_manifest,
    connector_kinds,
    source_client,
)
from gateway import tracing
from gateway.admission import (
    MAX_LIFETIME,
    SKEW,
    Admission,
    CachedClients,
    Cases,
    ClientRegistry,
    IdentityVerifier,
    Limit,
    Limits,
    MemoryRateLimiter,
    MemoryReplayCache,
    PublishedKeys,
    RateLimiter,
    RedisRateLimiter,
    RedisReplayCache,
    ReplayCache,
    RequestVerifier,
)
from gateway.config import ConfigurationError, GatewaySettings
from gateway.errors import GatewayError, InvalidArgument
from gateway.instants import utc_now
from gateway.log import checkpoint_verifiers
from gateway.log.continuity import ContinuityGuard, PublishedFile
from gateway.log.sequencer import Sequencer
from gateway.log.store import TransparencyLog
from gateway.log.witnessing import Witness, Witnessing
from gateway.notifications import (
    BreakerWatch,
    Dispatcher,
    HttpSender,
    ReadDigests,
    RecipientSeal,
    consent_requested,
    enqueue,
)
from gateway.records import (
    CatalogueVersions,
    ClientConsentRequests,
    ConsentStore,
    EventRecorder,
    RetentionSchedule,
)
from gateway.resources import load_keys, load_manifests_of, load_procedures, load_pseudonym_key
from gateway.state import GatewayState, app_state
from gateway.storage import (
    WalCheckpoints,
    create_engine,
    create_sequencer_engine,
    ensure_months,
    record_connectors,
    require_head,
)
from gateway.web._admin_routes import admin_router
from gateway.web._agency_console import agency_console_router
from gateway.web._audit_routes import audit_router
from gateway.web._auditor_console import auditor_console_router
from gateway.web._auditor_patterns import auditor_patterns_router
from gateway.web._browser_signin import browser_signin_router, failure_page
from gateway.web._catalogue_routes import CatalogueSwitch, catalogue_router
from gateway.web._citizen_pages import citizen_pages_router
from gateway.web._citizen_routes import citizen_router, consent_status_router
from gateway.web._client_routes import client_change_router
from gateway.web._connector_routes import connector_router
from gateway.web._consoles import (
    CrossSiteRead,
    cross_site_page,
    invalid_request_page,
    is_console_page,
    staff_forbidden_page,
)
from gateway.web._demo_tokens import DEMO_SECRET_MIN_LENGTH, demo_token_router
from gateway.web._graphql import GraphQLEndpoint, error_headers, error_response
from gateway.web._health import health_routes, readiness_router
from gateway.web._live_connectors import LiveConnectors
from gateway.web._log_routes import log_router
from gateway.web._middleware import RequestIdMiddleware, html_policy
from gateway.web._operator_console import operator_console_router
from gateway.web._query_page import LABELS_PATH, QueryPage, StaticAssets, labels_json
from gateway.web._secret_routes import require_kek, secret_router
from gateway.web._sessions import (
    CsrfFailed,
    SignInRequired,
    StaffForbidden,
    sign_in_required_response,
)
from policies import Catalogue, Consent, default_policy
from schema import SchemaLimits, Services, build_schema, canonical_fields, connector_fields

__all__ = ["create_app", "create_app_from_environment", "preflight"]

log = structlog.get_logger(__name__)

_ROUTES = frozenset(
    {"/graphql", "/healthz", "/readyz", "/metrics", "/.well-known/jwks.json", "/openapi.json"}
)
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _limits(settings: GatewaySettings) -> SchemaLimits:
    return SchemaLimits(
        max_depth=settings.max_depth,
        max_aliases=settings.max_aliases,
        max_tokens=settings.max_tokens,
        parser_cache_size=settings.parser_cache_size,
        introspection=settings.introspection,
    )


def _check_files(manifests: list[ManifestBase]) -> None:
    """Raise `ManifestError` for a manifest file the registry could not build."""
    canonical, kinds = connector_fields(), connector_kinds()
    for manifest in manifests:
        check_kind(manifest, kinds)
        check_manifest(manifest, canonical)


def _dispatcher(
    settings: GatewaySettings,
    url: str,
    engine: AsyncEngine,
    seal: RecipientSeal,
    live: LiveConnectors,
) -> Dispatcher:
    """The notifications' dispatcher: the HTTP sender to `url` (`GATEWAY_NOTIFY_URL`),
    the daily digests (on the replica delivering) and the watch of this replica's
    breakers."""
    token = settings.notify_token.get_secret_value() if settings.notify_token else None
    return Dispatcher(
        engine,
        HttpSender(url, token=token),
        seal,
        origin=settings.origin,
        interval=settings.notify_interval,
        max_attempts=settings.notify_max_attempts,
        backoff_base=settings.notify_retry_seconds,
        backoff_max=settings.notify_retry_max_seconds,
        keep_days=settings.notify_keep_days,
        jobs=[ReadDigests(engine, seal)],
        watches=[
            BreakerWatch(
                engine,
                seal,
                lambda: live.registry.breakers(),
                threshold=datetime.timedelta(seconds=settings.notify_breaker_seconds),
            )
        ],
    )


def create_app(settings: GatewaySettings) -> FastAPI:
    """A gateway application; resources are opened when it starts and closed when it stops.

    Start-up fails, naming the cause, when the database is not migrated, a key is
    missing or unusable, a connector manifest or the procedure catalogue is invalid.
    """
    catalogue = load_procedures(settings)
    if not settings.is_sqlite and settings.redis_url is None:
        # Replicas sharing PostgreSQL must share the replay cache and the limits.
        if settings.environment == "production":
            raise ConfigurationError(
                "PostgreSQL in production needs Redis (GATEWAY_REDIS_URL): replicas must share "
                "the replay cache and the rate limits"
            )
        log.warning("no_redis", hint="one gateway process only: replay cache in process")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        manifests = load_manifests_of(settings)
        require_kek(settings, manifests)
        keyring, pseudonym_key = load_keys(settings), load_pseudonym_key(settings)
        async with contextlib.AsyncExitStack() as stack:
            # Closed in reverse order, each even if another fails to close.
            if settings.otlp_endpoint is not None and not tracing.enabled():
                tracing.start(settings.otlp_endpoint)
                stack.callback(tracing.stop)
            engine = create_engine(settings.database_url.get_secret_value())
            stack.push_async_callback(engine.dispose)
            http = source_client(settings.http_transport)
            stack.push_async_callback(http.aclose)
            await require_head(engine)
            try:
                async with engine.begin() as conn:  # PostgreSQL: the coming months' partitions
                    await ensure_months(conn, utc_now())
            except SQLAlchemyError as exc:  # busy tables: retention makes them on its runs
                log.warning("partitions_not_made", error=type(exc).__name__)
            redis = None
            if settings.redis_url is not None:
                redis = Redis.from_url(settings.redis_url.get_secret_value())
                stack.push_async_callback(redis.aclose)
            # The sources' rate limits: shared by every replica through Redis.
            rate_limits: SourceLimits = LocalLimits() if redis is None else RedisLimits(redis)
            # Files that cannot build are not recorded: replicas would try them.
            _check_files(manifests)
            origin = str(settings.connectors_dir) if settings.connectors_dir else "none"
            await record_connectors(engine, manifests, origin=origin)
            # The connectors in use are the database's (files and the admin API's), and
            # change while serving. A database's schema is read and checked here.
            live = LiveConnectors.for_gateway(
                settings,
                engine=engine,
                http=http,
                redis=redis,
                rate_limits=rate_limits,
                files=manifests,
            )
            stack.push_async_callback(live.aclose)
            await live.start()
            replay: ReplayCache
            limiter: RateLimiter
            if redis is not None:
                replay, limiter = RedisReplayCache(redis), RedisRateLimiter(redis)
            else:
                memory = MemoryReplayCache()
                restored = await memory.restore(engine, lifetime=MAX_LIFETIME + SKEW)
                replay, limiter = memory, MemoryRateLimiter()
                log.info("replay_cache_in_process", restored=restored)
            # SQLite: the write-ahead log copied into the file off the commits' path.
            checkpoints = WalCheckpoints(engine)
            await checkpoints.start()
            stack.push_async_callback(checkpoints.stop)
            recorder = EventRecorder(
                engine,
                write_timeout=settings.recorder_timeout,
                process=settings.recorder_process,
            )
            await recorder.start()
            stack.push_async_callback(recorder.stop)
            access_log = TransparencyLog(engine, keyring, origin=settings.checkpoint_origin)
            await access_log.ensure_checkpoint()
            # PostgreSQL: the sequencer has sessions of its own, which the database ends
            # when they hold the log's lock and stop answering.
            sequencer_engine = create_sequencer_engine(
                settings.database_url.get_secret_value(), settings.sequencer_timeout
            )
            if sequencer_engine is not None:
                stack.push_async_callback(sequencer_engine.dispose)
            sequencer_log = TransparencyLog(
                sequencer_engine or engine, keyring, origin=settings.checkpoint_origin
            )
            # Nothing is signed that does not continue what was published of the log
            # (the published file, the witnesses): a database restored from an older
            # backup waits for an operator's choice.
            continuity = ContinuityGuard(
                sequencer_log,
                checkpoint_verifiers(keyring, settings.checkpoint_origin),
                published=(
                    None
                    if settings.log_published_file is None
                    else PublishedFile(settings.log_published_file)
                ),
                witnesses=[Witness.of(w.url, w.key) for w in settings.witnesses],
                ask_every=settings.log_continuity_seconds,
            )
            sequencer = Sequencer(
                sequencer_log,
                merge_delay=settings.merge_delay,
                guard=continuity,
                readers=(access_log,),
            )
            await sequencer.start()
            stack.push_async_callback(sequencer.stop)
            if settings.witnesses:
                # Each new checkpoint to the witnesses, for their cosignatures; read back
                # after its commit, and never in the way of recording.
                witnessing = Witnessing(
                    access_log,
                    [Witness.of(w.url, w.key) for w in settings.witnesses],
                    interval=max(0.25, settings.merge_delay / 2),
                )
                await witnessing.start()
                stack.push_async_callback(witnessing.stop)
            if settings.retention_schedule:
                retention = RetentionSchedule(
                    engine,
                    catalogue=lambda: app.state.gateway.catalogue,
                    default_days=settings.retention_days,
                    pseudonym_key=pseudonym_key,
                    interval=settings.retention_interval_seconds,
                    batch_size=settings.retention_batch_size,
                    max_records=settings.retention_max_records,
                )
                await retention.start()
                stack.push_async_callback(retention.stop)
            clients = ClientRegistry(engine)
            seal = RecipientSeal(pseudonym_key)
            on_request = None
            if settings.notify_url is not None:
                dispatcher = _dispatcher(settings, settings.notify_url, engine, seal, live)
                await dispatcher.start()
                stack.push_async_callback(dispatcher.stop)

                async def on_request(conn: AsyncConnection, consent: Consent) -> None:
                    await enqueue(
                        conn, seal, consent_requested(seal, consent, app.state.gateway.catalogue)
                    )

            consents = ConsentStore(engine, keyring, on_request=on_request)
            admission = Admission(
                verifier=RequestVerifier(
                    clients=CachedClients(
                        clients,
                        poll_seconds=settings.clients_poll_seconds,
                        published=PublishedKeys(
                            http,
                            ttl=settings.clients_jwks_ttl_seconds,
                            min_refetch=settings.clients_jwks_refetch_seconds,
                            max_stale=settings.clients_jwks_ttl_seconds * 12,
                        ),
                        published_seconds=min(60.0, settings.clients_jwks_ttl_seconds),
                    ),
                    replay=replay,
                    audience=settings.origin,
                    known_procedure=catalogue.get,
                    hiding_allowed=lambda code: catalogue.get(code).hidden_access_allowed,
                    max_hidden=datetime.timedelta(days=settings.hidden_max_days),
                ),
                limiter=limiter,
                limits=Limits(settings.rate_limit_client, settings.rate_limit_officer),
                policy=default_policy(catalogue),
                catalogue=catalogue,
                consents=consents,
                recorder=recorder,
                pseudonym_key=pseudonym_key,
                cases=Cases(key=pseudonym_key, ttl=settings.case_confirmation_cache_seconds),
            )
            # Summaries of refusals are written as minutes close, and the rest at stop,
            # before the recorder stops.
            await admission.refusals.start()
            stack.push_async_callback(admission.refusals.stop)
            asking = ClientConsentRequests(
                consents,
                policy_version=catalogue.version,
                answer_within=datetime.timedelta(days=settings.consent_answer_days),
                max_validity=datetime.timedelta(days=settings.consent_max_days),
            )
            services = Services(
                catalogue=catalogue,
                consents=asking,
                consent_requests=Limit(
                    limiter, "consent-request", settings.consent_requests_per_minute
                ),
            )
            app.state.gateway = GatewayState(
                settings=settings,
                engine=engine,
                http=http,
                keyring=keyring,
                live=live,
                catalogue=catalogue,
                clients=clients,
                consents=consents,
                recorder=recorder,
                admission=admission,
                services=services,
                identity=IdentityVerifier.from_settings(settings, http),
                log=access_log,
                pseudonym_key=pseudonym_key,
                notify_seal=seal,
                redis=redis,
                continuity=continuity,
            )

            def use_catalogue(chosen: Catalogue) -> None:
                """Decide under `chosen` from the next request on (see `CatalogueSwitch`)."""
                state: GatewayState = app.state.gateway
                state.catalogue = chosen
                asking.policy_version = chosen.version
                state.services = dataclasses.replace(state.services, catalogue=chosen)
                state.admission.use_catalogue(chosen, default_policy(chosen))

            # The files are the seed: recorded as a version when none holds them; then
            # the version in effect (perhaps one approved through the admin API) rules.
            versions = CatalogueVersions(
                engine, pseudonym_key=pseudonym_key, canonical=canonical_fields()
            )
            await versions.record_files(catalogue)
            switch = CatalogueSwitch(
                versions,
                current=lambda: app.state.gateway.catalogue,
                use=use_catalogue,
                poll_seconds=settings.catalogue_poll_seconds,
                canonical=canonical_fields(),
            )
            try:
                await switch.follow()
            except Exception as exc:  # e.g. fields this release does not have: the files
                log.error("catalogue_not_followed", error=type(exc).__name__)
            await switch.start()
            stack.push_async_callback(switch.stop)
            await recorder.ready()  # its process started beside the rest of the start
            log.info(
                "gateway_started",
                environment=settings.environment,
                database=engine.dialect.name,
                connectors=sorted(live.versions),
                policy_version=app.state.gateway.catalogue.version,
            )
            yield

    app = GatewayApp(
        title="Data-sharing gateway",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # the docs pages load their assets from a CDN: not on closed networks
        redoc_url=None,
        redirect_slashes=False,
    )

    query_page = None
    if settings.query_page:
        query_page = QueryPage(
            example=settings.query_example,
            demo_tokens=settings.unsafe_demo_tokens,
            procedures=list(catalogue),
            default_procedure=settings.query_procedure,
        )
        log.warning("query_page_enabled", hint="development and demo only")
    # The pages' styles and scripts always; the query page's only when it is on.
    app.mount("/static", StaticAssets(query_page=query_page is not None), name="static")

    endpoint = GraphQLEndpoint(
        schema=build_schema(_limits(settings)),
        state=lambda: app.state.gateway,
        max_batch=settings.max_batch,
        max_body_bytes=settings.max_body_bytes,
        query_page=query_page,
    )
    app.add_route("/graphql", endpoint.handle, methods=_ALL_METHODS, include_in_schema=False)
    app.add_route(LABELS_PATH, labels_json, methods=["GET"], include_in_schema=False)
    for path, handler in health_routes().items():
        app.add_route(path, handler, methods=["GET"], include_in_schema=False)
    app.include_router(citizen_router())
    app.include_router(citizen_pages_router())
    app.include_router(consent_status_router())
    app.include_router(admin_router())
    app.include_router(connector_router())
    app.include_router(client_change_router())
    app.include_router(catalogue_router())
    app.include_router(readiness_router())
    app.include_router(audit_router())
    app.include_router(log_router())
    app.include_router(secret_router())
    app.include_router(browser_signin_router())
    app.include_router(auditor_console_router())
    app.include_router(auditor_patterns_router())
    app.include_router(operator_console_router())
    app.include_router(agency_console_router())
    if settings.unsafe_demo_tokens:
        if settings.environment == "production":
            raise ConfigurationError("unsafe demo tokens are refused in production")
        secret = settings.unsafe_demo_secret
        if secret is None or len(secret.get_secret_value()) < DEMO_SECRET_MIN_LENGTH:
            raise ConfigurationError(
                "unsafe demo tokens need GATEWAY_UNSAFE_DEMO_SECRET, a random secret of at "
                f"least {DEMO_SECRET_MIN_LENGTH} characters made at each start (`gateway demo` "
                "makes one and prints the query page's address with it)"
            )
        app.include_router(demo_token_router(secret.get_secret_value()))
        log.warning(
            "unsafe_demo_tokens_enabled",
            route="/_unsafe/demo-tokens",
            hint="whoever has the query page's address with its #demo= secret can read data",
        )

    async def jwks(request: Request) -> Response:
        state = app_state(request)
        return Response(
            orjson.dumps(state.keyring.jwks()),
            media_type="application/jwk-set+json",
            headers={"Cache-Control": "public, max-age=300"},
        )

    app.add_route("/.well-known/jwks.json", jwks, methods=["GET"], include_in_schema=False)

    @app.exception_handler(GatewayError)
    async def gateway_error(_request: Request, exc: GatewayError) -> Response:
        return error_response(exc, headers=error_headers(exc))

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, exc: CsrfFailed) -> Response:
        # A browser's form gets a page; htmx and scripts the JSON error.
        if "text/html" in request.headers.get("accept", "") and "hx-request" not in request.headers:
            return failure_page(exc.code, "Biểu mẫu đã hết hạn; tải lại trang rồi thử lại.", 403)
        return error_response(exc)

    @app.exception_handler(StaffForbidden)
    async def staff_forbidden(request: Request, exc: StaffForbidden) -> Response:
        return await staff_forbidden_page(request, exc)

    @app.exception_handler(CrossSiteRead)
    async def cross_site_read(request: Request, exc: CrossSiteRead) -> Response:
        return await cross_site_page(request, exc)

    @app.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, exc: SignInRequired) -> Response:
        return sign_in_required_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        fields = [".".join(str(p) for p in e["loc"]) for e in exc.errors()]
        if is_console_page(request):
            return await invalid_request_page(request, fields)
        return error_response(InvalidArgument("The request is not valid.", fields=fields))

    # What no handler answers (a database down under a route, a bug) is answered by the
    # middleware: an `Exception` handler here would answer, and then re-raise it to
    # uvicorn, which logs it again and closes the connection unannounced.
    plumbing = functools.partial(
        RequestIdMiddleware,
        routes=_ROUTES,
        deadline=settings.request_deadline,
        page_policy=html_policy(settings.oidc_issuer),
    )
    app.add_middleware(plumbing)
    app.direct = {"/graphql": plumbing(endpoint)}
    return app


class GatewayApp(FastAPI):
    """FastAPI, with a few paths answered past the framework's own middleware.

    `direct` maps a path to the application that answers it whole, with the gateway's
    request plumbing (`RequestIdMiddleware`) around it: the GraphQL endpoint routes,
    bounds its body and answers its own errors, so the framework's error, telemetry and
    body-limit layers and its router only cost it time (a tenth of a request's CPU on
    the event loop). Every other path goes through the framework as before.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.direct: dict[str, ASGIApp] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (app := self.direct.get(scope["path"])) is not None:
            scope["app"] = self
            scope.setdefault("router", self.router)
            await app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app_from_environment() -> FastAPI:
    """Settings from `GATEWAY_*` variables; for `uvicorn --factory` and several workers."""
    from gateway.logconfig import configure_logging

    settings = GatewaySettings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    app = create_app(settings)
    tune_collector()
    return app


GC_THRESHOLDS = (50_000, 20, 100)
"""The collector's thresholds while serving (Python's own are 700, 10, 10)."""


def tune_collector() -> None:
    """Set the cyclic garbage collector for serving, once the application is built.

    What exists now (modules, the schema, the application) lives as long as the
    process: frozen, it is out of every pass. A request leaves almost no cycles behind
    (its objects are freed as it ends), but a pass scans every object of the requests
    in flight; with Python's thresholds a pass ran every few requests and took a sixth
    of the CPU at 32 concurrent requests. Passes fifty times rarer cost a few percent.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def preflight(settings: GatewaySettings) -> FastAPI:
    """Check, before listening, what start-up would fail on, to report it plainly; the
    application it built, to serve (the catalogue and the schema are then read once).

    Raises `ManifestError`, `CatalogueError`, `DatabaseNotReady`, `KeyRingError` or
    `ConfigurationError`.
    """
    from connectors import check_kind, check_manifest

    # What create_app refuses: settings that cannot work together, the catalogue.
    app = create_app(settings)
    canonical, kinds = connector_fields(), connector_kinds()
    for manifest in load_manifests_of(settings):
        check_manifest(manifest, canonical)
        check_kind(manifest, kinds)
    if settings.environment == "production":
        load_keys(settings)
        load_pseudonym_key(settings)
        require_kek(settings, load_manifests_of(settings))
    engine = create_engine(settings.database_url.get_secret_value())
    try:
        await require_head(engine)
    finally:
        await engine.dispose()
    return app
