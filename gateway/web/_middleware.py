"""Per-request plumbing: request id, deadline, one access line without query string,
metrics, the headers of HTML pages, and the answer to what nothing else answered.

Every HTML answer gets a strict Content-Security-Policy (`html_policy`: scripts and
styles of the gateway only, never inline; forms to the gateway and the sign-in issuer;
no framing; no `<base>`), `X-Content-Type-Options: nosniff` and `Referrer-Policy:
no-referrer`, unless the page set its own.

Every request has a deadline (`GATEWAY_REQUEST_DEADLINE`) until its answer starts:
admission, sources and recording run within it, and past it the work is cancelled
(a record being committed sees `CancelledError`) and the answer is 503
`DEADLINE_EXCEEDED`, without data. A database that fails under a route is 503
`AUDIT_UNAVAILABLE`; anything else unexpected is 500 `INTERNAL`. Either is one log
line (a traceback only for the unexpected), and a complete answer on a connection
that stays open: uvicorn closes a kept-alive connection, unannounced, after an
exception escapes the application, and the client's next request on it is lost.

A NUL in the path or the query string is refused here, before any route: no id, name
or argument of the gateway holds one, and PostgreSQL can neither store nor compare
text that does, so a NUL reaching a query would fail as a 500 on every route that
looks a path parameter up (`GET /consents/%00/status`).
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from typing import Any
from urllib.parse import urlsplit

import orjson
import structlog
import uuid_utils
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import tracing
from gateway.errors import AuditUnavailable, DeadlineExceeded, GatewayError, RequestError
from gateway.web._metrics import HTTP_LATENCY, HTTP_REQUESTS

__all__ = ["RequestIdMiddleware", "database_failure", "html_policy"]

log = structlog.get_logger(__name__)

_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def html_policy(issuer: str | None) -> str:
    """The Content-Security-Policy of the gateway's HTML pages.

    Scripts, styles and images from the gateway only, never inline; forms post to the
    gateway, or to the issuer (`issuer`'s origin) when sign-in goes there.
    """
    form_action = "'self'"
    if issuer is not None:
        parts = urlsplit(issuer)
        if parts.scheme in {"http", "https"} and parts.netloc:
            form_action += f" {parts.scheme}://{parts.netloc}"
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            f"form-action {form_action}",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        )
    )


@functools.lru_cache(maxsize=256)
def _http_metrics(route: str, status: int) -> tuple[Any, Any]:
    """The request counter and latency histogram of a route and status, looked up once
    (routes are the gateway's own, statuses few)."""
    return HTTP_REQUESTS.labels(route, str(status)), HTTP_LATENCY.labels(route)


class RequestIdMiddleware:
    """Gives each request an id of the gateway's own, returned in `X-Request-Id`.

    The id is bound to every log line of the request, returned in `X-Request-Id`, and
    sent to sources as `X-Road-Id`. The access line names the route, never the query
    string: GET /graphql carries identifiers there.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: frozenset[str],
        deadline: float | None = None,
        page_policy: str | None = None,
    ) -> None:
        self.app = app
        self.routes = routes
        self.deadline = deadline
        self.html_headers = _html_headers(page_policy or html_policy(None))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The gateway's own id, never the caller's: it goes into the access record, and
        # a caller's id could carry anything. The caller's is logged beside it.
        request_id = uuid_utils.uuid4().hex
        given = _header(scope, b"x-request-id")
        client_request_id = given if given and _VALID_ID.match(given) else None
        scope.setdefault("state", {})["request_id"] = request_id
        path: str = scope["path"]
        route = (
            path if path in self.routes else ("/static" if path.startswith("/static/") else "other")
        )
        status = 500
        answering = bounded = False
        started = time.perf_counter()
        deadline = asyncio.timeout(self.deadline)

        async def send_with_id(message: Message) -> None:
            nonlocal status, answering
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                message["headers"] = _with_html_headers(headers, self.html_headers)
                # The answer is decided: it is sent whatever time that takes.
                answering = True
                if bounded:
                    deadline.reschedule(None)
            await send(message)

        traced = tracing.request_span(
            _trace_headers(scope) if tracing.enabled() else {},
            {"http.route": route, "http.request.method": scope["method"]},
        )
        with structlog.contextvars.bound_contextvars(request_id=request_id), traced as current:
            try:
                if _carries_nul(scope):
                    await _refused_nul()(scope, receive, send_with_id)
                else:
                    # Routes that decide their answer before it starts (the GraphQL
                    # endpoint, once its record is committed) lift the deadline here.
                    scope["state"]["deadline"] = deadline
                    try:
                        async with deadline:
                            bounded = True
                            try:
                                await self.app(scope, receive, send_with_id)
                            finally:
                                bounded = False
                    except Exception as exc:
                        if answering:
                            # Half an answer: uvicorn closes the connection, which is
                            # what tells the client; the failure is logged here, once.
                            log.error("answer_failed", exc_info=exc)
                            return
                        error = _failure(exc, request_id, expired=deadline.expired())
                        await _answer(error)(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - started
                if current is not None:
                    current.set_attribute("http.response.status_code", status)
                requests, latency = _http_metrics(route, status)
                requests.inc()
                latency.observe(elapsed)
                log.info(
                    "request",
                    client_request_id=client_request_id,
                    method=scope["method"],
                    route=route,
                    status=status,
                    ms=round(elapsed * 1000, 2),
                )


def database_failure(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached or stopped answering.

    Such a failure is the database's, not the request's: the answer is 503 and the
    request may be retried. A statement the database refused (a bug) is not one.
    """
    if isinstance(exc, OSError | PoolTimeout | OperationalError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return type(exc).__module__.startswith("asyncpg") and isinstance(
        exc, _asyncpg_connection_errors()
    )


def _asyncpg_connection_errors() -> tuple[type[BaseException], ...]:
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - SQLite only
        return ()
    return (asyncpg.PostgresConnectionError, asyncpg.InterfaceError)


def _failure(exc: Exception, request_id: str, *, expired: bool) -> GatewayError:
    """The error to answer for `exc`, logged once."""
    if expired:
        log.warning("request_deadline_exceeded", error=type(exc).__name__)
        return DeadlineExceeded()
    if database_failure(exc):
        # An outage, not a bug: one line naming the failure, no traceback.
        cause = exc.__cause__ or getattr(exc, "orig", None)
        log.warning(
            "database_unavailable",
            error=type(exc).__name__,
            cause=type(cause).__name__ if cause is not None else None,
        )
        return AuditUnavailable()
    log.error("unhandled_error", exc_info=exc)
    error = GatewayError()
    error.detail["requestId"] = request_id
    return error


def _answer(error: GatewayError) -> Response:
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
    return Response(
        orjson.dumps(error.to_body()),
        status_code=error.http_status,
        media_type="application/json",
        headers=headers,
    )


def _carries_nul(scope: Scope) -> bool:
    query: bytes = scope.get("query_string", b"")
    return "\x00" in scope["path"] or b"%00" in query


def _refused_nul() -> Response:
    error = RequestError("The path or the query string holds a NUL character.")
    return Response(
        orjson.dumps(error.to_body()), status_code=error.http_status, media_type="application/json"
    )


def _html_headers(policy: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", policy.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
    ]


def _with_html_headers(
    headers: list[tuple[bytes, bytes]], html_headers: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """`headers`, with the HTML page headers added when the answer is HTML.

    A page that set its own (the query page's policy) keeps it.
    """
    names = {name.lower() for name, _ in headers}
    content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
    if not content_type.lower().startswith(b"text/html"):
        return headers
    return [*headers, *(h for h in html_headers if h[0] not in names)]


def _trace_headers(scope: Scope) -> dict[str, str]:
    """The caller's W3C trace context headers, if it sent them."""
    found = {}
    for name in (b"traceparent", b"tracestate"):
        value = _header(scope, name)
        if value is not None:
            found[name.decode()] = value
    return found


def _header(scope: Scope, name: bytes) -> str | None:
    headers: Any = scope.get("headers", ())
    for key, value in headers:
        if key == name:
            return str(value.decode("latin-1"))
    return None
