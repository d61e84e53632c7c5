"""The application factory: `create_app(settings)` builds one gateway."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import structlog
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from connectors import (
    ConnectorRegistry,
    Manifest,
    ManifestError,
    build_registry,
    connector_kinds,
    load_manifests,
)
from gateway._graphql_http import GraphQLEndpoint, error_response
from gateway._health import health_routes
from gateway._http import source_client
from gateway._middleware import RequestIdMiddleware
from gateway._query_page import STATIC_DIR, QueryPage
from gateway.config import GatewaySettings
from gateway.errors import GatewayError, InvalidArgument
from gateway.storage import create_engine, record_connectors, require_head
from keys import KeyRing
from schema import SchemaLimits, build_schema, canonical_fields

__all__ = ["GatewayState", "create_app", "create_app_from_environment", "preflight"]

log = structlog.get_logger(__name__)

_ROUTES = frozenset(
    {"/graphql", "/healthz", "/readyz", "/metrics", "/.well-known/jwks.json", "/openapi.json"}
)
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@dataclass(slots=True)
class GatewayState:
    """What the running gateway holds between requests."""

    settings: GatewaySettings
    engine: AsyncEngine
    http: httpx.AsyncClient
    keyring: KeyRing
    registry: ConnectorRegistry
    connector_versions: dict[str, int] = field(default_factory=dict)
    redis: Redis | None = None


def _manifests(settings: GatewaySettings) -> list[Manifest]:
    if settings.connectors_dir is None:
        log.warning("no_connectors", hint="set GATEWAY_CONNECTORS_DIR; every field is NO_SOURCE")
        return []
    return load_manifests(settings.connectors_dir)


def _limits(settings: GatewaySettings) -> SchemaLimits:
    return SchemaLimits(
        max_depth=settings.max_depth,
        max_aliases=settings.max_aliases,
        max_tokens=settings.max_tokens,
        parser_cache_size=settings.parser_cache_size,
        introspection=settings.introspection,
    )


def create_app(settings: GatewaySettings) -> FastAPI:
    """A gateway application; resources are opened when it starts and closed when it stops.

    Start-up fails, naming the cause, when the database is not migrated, a key is
    missing or unusable, or a connector manifest is invalid.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        manifests = _manifests(settings)
        if settings.environment == "production":
            keyring = KeyRing.load(settings.keys_dir)
        else:
            keyring = KeyRing.ensure(settings.keys_dir)
        async with contextlib.AsyncExitStack() as stack:
            # Closed in reverse order, each even if another fails to close.
            engine = create_engine(settings.database_url.get_secret_value())
            stack.push_async_callback(engine.dispose)
            http = source_client(settings.http_transport)
            stack.push_async_callback(http.aclose)
            await require_head(engine)
            registry = build_registry(
                manifests,
                http=http,
                canonical=canonical_fields(),
                url_overrides=settings.connector_urls,
            )
            stack.push_async_callback(registry.aclose)
            origin = str(settings.connectors_dir) if settings.connectors_dir else "none"
            versions = await record_connectors(engine, manifests, origin=origin)
            redis = None
            if settings.redis_url is not None:
                redis = Redis.from_url(settings.redis_url.get_secret_value())
                stack.push_async_callback(redis.aclose)
            app.state.gateway = GatewayState(
                settings, engine, http, keyring, registry, versions, redis
            )
            log.info(
                "gateway_started",
                environment=settings.environment,
                database=engine.dialect.name,
                connectors=sorted(versions),
            )
            yield

    app = FastAPI(
        title="Data-sharing gateway",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # the docs pages load their assets from a CDN: not on closed networks
        redoc_url=None,
        redirect_slashes=False,
    )

    query_page = None
    if settings.query_page:
        query_page = QueryPage(example=settings.query_example)
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
        log.warning("query_page_enabled", hint="development and demo only")

    endpoint = GraphQLEndpoint(
        schema=build_schema(_limits(settings)),
        registry=lambda: app.state.gateway.registry,
        max_batch=settings.max_batch,
        max_body_bytes=settings.max_body_bytes,
        query_page=query_page,
    )
    app.add_route("/graphql", endpoint.handle, methods=_ALL_METHODS, include_in_schema=False)
    for path, handler in health_routes().items():
        app.add_route(path, handler, methods=["GET"], include_in_schema=False)

    async def jwks(request: Request) -> Response:
        state: GatewayState = request.app.state.gateway
        return Response(
            orjson.dumps(state.keyring.jwks()),
            media_type="application/jwk-set+json",
            headers={"Cache-Control": "public, max-age=300"},
        )

    app.add_route("/.well-known/jwks.json", jwks, methods=["GET"], include_in_schema=False)

    @app.exception_handler(GatewayError)
    async def gateway_error(_request: Request, exc: GatewayError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> Response:
        fields = [".".join(str(p) for p in e["loc"]) for e in exc.errors()]
        return error_response(InvalidArgument("The request is not valid.", fields=fields))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled_error", exc_info=exc)
        body: dict[str, Any] = GatewayError().to_body()
        body["detail"] = {"requestId": getattr(request.state, "request_id", None)}
        return Response(orjson.dumps(body), status_code=500, media_type="application/json")

    app.add_middleware(RequestIdMiddleware, routes=_ROUTES)
    return app


def create_app_from_environment() -> FastAPI:
    """Settings from `GATEWAY_*` variables; for `uvicorn --factory` and several workers."""
    from gateway._logging import configure_logging

    settings = GatewaySettings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    return create_app(settings)


async def preflight(settings: GatewaySettings) -> None:
    """Check, before listening, what start-up would fail on, to report it plainly.

    Raises `ManifestError`, `DatabaseNotReady` or `KeyRingError`.
    """
    from connectors import check_manifest

    canonical, kinds = canonical_fields(), connector_kinds()
    for manifest in _manifests(settings):
        check_manifest(manifest, canonical)
        if manifest.kind not in kinds:
            raise ManifestError(f"manifest {manifest.name!r}", f"unknown kind {manifest.kind!r}")
    if settings.environment == "production":
        KeyRing.load(settings.keys_dir)
    engine = create_engine(settings.database_url.get_secret_value())
    try:
        await require_head(engine)
    finally:
        await engine.dispose()
