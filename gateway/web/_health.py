"""Liveness, readiness and metrics endpoints.

`/healthz` says the process answers. `/readyz` says whether it can serve: the database
answers at the right revision, Redis answers when configured, and the keys are loaded
(503 otherwise). In public it says only that (`{"status": "ready"}` or `"not_ready"`):
the details name the sources, the revision and the log's size, which are for
operators, at `/admin/readiness` (an operator's staff sign-in). There connectors are
reported too, but a source that is down does not make the gateway unready, because
every other field still resolves. The access log reports its size and the sequencer's
lag: a lag beyond the maximum merge delay breaks the receipts' promise, so it shows in
`degraded` (and in `gateway_log_lag_seconds`), but the gateway still records and serves.
So it does while the sequencer signs nothing because the log does not continue what
was published of it (a restored database): `log.halted` (and `logHalted` in `/readyz`)
gives the code, the sizes and the leaves missing, until an operator chooses.

`/metrics` counts by procedure and organisation, so it is not public either: it needs
the bearer secret `GATEWAY_METRICS_TOKEN` (for a scraper, which has no staff sign-in)
or an operator's staff sign-in.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import sqlalchemy as sa
import structlog
from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import Forbidden
from gateway.state import GatewayState, app_state
from gateway.storage import head_revision
from gateway.web._signin import OperatorIdentity, current_identity
from keys import PURPOSES

__all__ = ["access_log_status", "connector_health", "health_routes", "readiness_router"]

OPERATOR_ROLE = "operator"

log = structlog.get_logger(__name__)

_CHECK_TIMEOUT = 2.0
LOG_LAG = Gauge(
    "gateway_log_lag_seconds",
    "Age of the oldest event not yet integrated into the access log (at the last /readyz).",
)

Handler = Callable[[Request], Awaitable[Response]]


def _json(body: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


async def _database(state: GatewayState) -> dict[str, Any]:
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT), state.engine.connect() as conn:
            revision = await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
    except Exception as exc:  # any failure means "not ready"; the type says which
        return {"ok": False, "error": type(exc).__name__}
    head = head_revision()
    return {"ok": revision == head, "revision": revision, "expected": head}


async def _redis(state: GatewayState) -> dict[str, Any] | None:
    if state.redis is None:
        return None
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT):
            await state.redis.ping()
    except Exception as exc:  # any failure means "not ready"; the type says which
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True}


async def connector_health(state: GatewayState) -> dict[str, Any]:
    """Each connector in use: whether its source answers its health check, the check's
    detail and latency, its version and its breaker's state (this replica's)."""
    # Held: a registry replaced meanwhile is not closed under the check.
    with state.live.hold() as served:
        registry, versions = served.registry, served.versions
        try:
            async with asyncio.timeout(_CHECK_TIMEOUT):
                health = await registry.health()
        except TimeoutError:
            return {name: {"ok": False, "detail": "timeout"} for name in registry.manifests}
        breakers = registry.breakers()
    return {
        name: {
            "ok": h.ok and breakers.get(name) != "open",
            "detail": h.detail,
            "latencyMs": h.latency_ms,
            "version": versions.get(name),
            "breaker": breakers.get(name),
        }
        for name, h in health.items()
    }


async def access_log_status(state: GatewayState) -> dict[str, Any]:
    """The access log: its size, the events queued for it and the sequencer's lag."""
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT):
            size, queued, lag = (
                await state.log.size(),
                await state.log.queued(),
                await state.log.lag(),
            )
    except Exception as exc:  # reported; the database check says whether it is ready
        return {"ok": False, "error": type(exc).__name__}
    LOG_LAG.set(lag)
    delay = state.settings.merge_delay
    halted = None if state.continuity is None else state.continuity.halted
    status: dict[str, Any] = {
        "ok": lag <= delay and halted is None,
        "size": size,
        "queued": queued,
        "lagSeconds": round(lag, 3),
        "maxMergeDelaySeconds": delay,
    }
    if halted is not None:
        # Nothing is signed until an operator chooses (docs/operations.md): the sizes,
        # the leaves missing and who published the larger tree.
        status["halted"] = halted.to_body()
    if state.settings.witnesses:
        # Where each witness stands: a witness behind delays cosigning, never recording.
        try:
            async with asyncio.timeout(_CHECK_TIMEOUT):
                known = await state.log.witnesses()
        except Exception as exc:
            status["witnesses"] = {"error": type(exc).__name__}
        else:
            status["witnesses"] = {}
            for name in state.settings.witness_names:
                cosigned, signed_newest = known.get(name, (0, False))
                status["witnesses"][name] = {
                    "cosignedSize": cosigned,
                    "lagLeaves": 0 if signed_newest else max(0, size - cosigned),
                }
            status["cosignaturesNeeded"] = state.settings.cosignatures_needed
    return status


async def _readiness(state: GatewayState) -> tuple[bool, dict[str, Any]]:
    """Whether the gateway can serve, and the details of every check."""
    database, redis, connectors, access_log = await asyncio.gather(
        _database(state), _redis(state), connector_health(state), access_log_status(state)
    )
    keys = {p: bool(state.keyring.verifying(p)) for p in PURPOSES}
    # Connectors approved but not served: the ones before them still are.
    live = state.live.report()
    ready = database["ok"] and all(keys.values()) and (redis is None or redis["ok"])
    body = {
        "status": "ready" if ready else "not_ready",
        "database": database,
        "redis": redis,
        "keys": keys,
        "connectors": connectors,
        "connectorsLive": live,
        "log": access_log,
        "degraded": [name for name, c in connectors.items() if not c["ok"]]
        + ([] if access_log["ok"] else ["log"])
        + ([] if live["failure"] is None else ["connectorsLive"]),
    }
    if not ready:
        log.warning(
            "not_ready",
            database=database["ok"],
            database_error=database.get("error"),
            redis_error=None if redis is None else redis.get("error"),
            keys=keys,
        )
    return ready, body


async def _may_read_metrics(request: Request) -> None:
    """Passes the metrics token or a platform operator's sign-in; else 401 (or 403).

    The counters are every agency's: an operator scoped to one organisation (see the
    operator routes) would read the others' through them, so only the platform's do.
    """
    state = app_state(request)
    secret = state.settings.metrics_token
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if secret is not None and scheme.lower() == "bearer" and presented.strip():
        expected = secret.get_secret_value().encode()
        if hmac.compare_digest(presented.strip().encode(), expected):
            return
    identity = await current_identity(request)
    if OPERATOR_ROLE not in identity.roles:
        raise Forbidden("This needs the role operator.", required=[OPERATOR_ROLE])
    platform = state.settings.platform_organisation
    if platform is None or identity.org != platform:
        raise Forbidden(
            "Metrics hold every agency's figures: they need an operator of the platform's "
            "organisation, or the metrics token.",
            required=[OPERATOR_ROLE],
        )


def readiness_router() -> APIRouter:
    """`GET /admin/readiness`: the readiness checks in detail, for operators."""
    router = APIRouter(prefix="/admin", tags=["admin"])

    @router.get("/readiness")
    async def readiness(request: Request, _operator: OperatorIdentity) -> Response:
        ready, body = await _readiness(app_state(request))
        return _json(body, 200 if ready else 503)

    return router


def health_routes() -> dict[str, Handler]:
    """The handlers by path."""

    async def healthz(_request: Request) -> Response:
        return _json({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ready, details = await _readiness(app_state(request))
        body: dict[str, Any] = {"status": "ready" if ready else "not_ready"}
        halted = details["log"].get("halted")
        if isinstance(halted, dict):
            # Public, as the log's sizes are: it records and serves, and signs nothing.
            body["logHalted"] = halted
        witnesses = details["log"].get("witnesses")
        if isinstance(witnesses, dict):
            # Public, as the log is: how far each witness's cosignature is behind.
            body["witnessLagLeaves"] = {
                name: w.get("lagLeaves") for name, w in witnesses.items() if isinstance(w, dict)
            }
        return _json(body, 200 if ready else 503)

    async def metrics(request: Request) -> Response:
        await _may_read_metrics(request)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics}
