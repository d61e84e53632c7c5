"""GraphQL over HTTP at `/graphql`, after the GraphQL-over-HTTP draft.

- Every request carries a request token signed by a registered client (see
  `gateway.admission`): it is admitted, executed, and recorded before the answer leaves.
- POST with `application/json`; GET for queries only (a mutation over GET is 405).
- `application/graphql-response+json` when the client accepts it: a request error
  (unparsable, invalid) is then a 4xx with no `data`; field errors stay 200.
- `application/json` otherwise, for clients written before that media type.
- Error bodies outside GraphQL use the gateway's REST shape `{code, message, detail}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import orjson
import strawberry
import structlog
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from connectors import FetchContext
from gateway import tracing
from gateway.admission import Admitted
from gateway.errors import (
    AuditUnavailable,
    BadJson,
    GatewayError,
    MethodNotAllowed,
    NotAcceptable,
    PayloadTooLarge,
    RequestError,
    Unauthenticated,
    UnsupportedMediaType,
)
from gateway.logconfig import redact
from gateway.records import INTROSPECTION
from gateway.state import GatewayState
from gateway.web._metrics import GRAPHQL_ERRORS, GRAPHQL_SOURCE_CALLS
from schema import RequestContext, only_introspection

__all__ = [
    "GRAPHQL_RESPONSE",
    "PROVENANCE_COMPACT",
    "PROVENANCE_FULL",
    "GraphQLEndpoint",
    "error_headers",
    "error_response",
    "grouped_provenance",
    "negotiate",
]

log = structlog.get_logger(__name__)

PROVENANCE_FULL: Final = "full"
PROVENANCE_COMPACT: Final = "compact"
"""`extensions: {"provenance": "compact"}` in a request: provenance grouped by origin."""

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
_AFTER_DEADLINE = 2.0
"""Seconds given, once a request's deadline passed, to record its refusal."""
_GET_ONLY = frozenset({OperationType.QUERY})
_POST = frozenset({OperationType.QUERY, OperationType.MUTATION})


def negotiate(accept: str | None) -> str | None:
    """The media type to answer in, or `None` when the client accepts neither.

    No Accept header, or only wildcards, means `application/json`: that is what
    clients written before the graphql-response type expect.
    """
    if not accept:
        return JSON
    best: tuple[float, int, str] | None = None
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        media = media.strip().lower()
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        if media == GRAPHQL_RESPONSE:
            choice = (q, 2, GRAPHQL_RESPONSE)
        elif media == JSON:
            choice = (q, 1, JSON)
        elif media in {"*/*", "application/*"}:
            choice = (q, 0, JSON)
        else:
            continue
        if best is None or choice[:2] > best[:2]:
            best = choice
    return best[2] if best else None


def error_response(error: GatewayError, *, headers: dict[str, str] | None = None) -> Response:
    """The REST error shape, for failures before GraphQL runs."""
    return Response(
        orjson.dumps(error.to_body()),
        status_code=error.http_status,
        media_type=JSON,
        headers=headers,
    )


_TOO_COMPLEX = (
    "exceeds maximum operation depth",
    "aliases found",
    "Maximum introspection depth exceeded",
)
_BAD_VARIABLE = ("got invalid value", "has invalid value", "of required type", "was not provided")
# graphql-core quotes the offending value after these words; values may be personal ids.
_VALUE_FOLLOWS = ("invalid value", "cannot represent", "Expected value of type")


def _request_error_code(error: GraphQLError) -> str:
    message = error.message
    if any(marker in message for marker in _TOO_COMPLEX) or (
        "more than" in message and "tokens" in message
    ):
        return "QUERY_TOO_COMPLEX"
    if message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    if message.startswith("Variable") and any(m in message for m in _BAD_VARIABLE):
        return "INVALID_VARIABLES"
    return "GRAPHQL_VALIDATION_FAILED"


def _without_values(message: str) -> str:
    """The message up to where graphql-core quotes a value the client sent."""
    for marker in _VALUE_FOLLOWS:
        at = message.find(marker)
        if at >= 0:
            return message[: at + len(marker)] + "."
    return message


def _format(error: GraphQLError, *, request_error: bool) -> dict[str, Any]:
    formatted: dict[str, Any] = dict(error.formatted)
    if request_error:
        formatted["message"] = redact(_without_values(error.message))
        if "code" not in (formatted.get("extensions") or {}):
            formatted["extensions"] = {
                **(formatted.get("extensions") or {}),
                "code": _request_error_code(error),
            }
    return formatted


def _until(fetch: FetchContext, deadline: asyncio.Timeout | None) -> FetchContext:
    """`fetch` with the time by which calls to sources end: the request's deadline,
    less what recording the access needs (a fifth of the time, at most a second), so a
    slow source makes its fields `SOURCE_TIMEOUT`, not the whole request 503."""
    when = deadline.when() if deadline is not None else None
    if when is None:
        return fetch
    left = when - asyncio.get_running_loop().time()
    return dataclasses.replace(fetch, deadline=when - min(1.0, max(0.0, left) / 5))


class GraphQLEndpoint:
    """The `/graphql` route: HTTP in, admission, `schema.execute`, record, HTTP out."""

    def __init__(
        self,
        *,
        schema: strawberry.Schema,
        state: Callable[[], GatewayState],
        max_batch: int,
        max_body_bytes: int,
        query_page: Callable[[Request], Awaitable[Response]] | None = None,
    ) -> None:
        self._schema = schema
        self._state = state
        self._max_batch = max_batch
        self._max_body = max_body_bytes
        self._query_page = query_page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The endpoint as an ASGI application, for the middleware to call directly: the
        framework's router and exception layers have nothing to do for it (it answers
        its own errors; what escapes is the middleware's to answer)."""
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        """Answer one request to the endpoint."""
        try:
            return await self._handle(request)
        except GatewayError as exc:
            return error_response(exc, headers=error_headers(exc))

    async def _handle(self, request: Request) -> Response:
        method = request.method
        if method not in {"GET", "POST"}:
            raise MethodNotAllowed(allow="GET, POST")
        accept = request.headers.get("accept")
        if (
            method == "GET"
            and self._query_page is not None
            and "query" not in request.query_params
            and "text/html" in (accept or "")
        ):
            return await self._query_page(request)
        media = negotiate(accept)
        if media is None:
            raise NotAcceptable
        if method == "GET":
            raw: bytes = request.scope.get("query_string", b"")
            params = self._from_query_string(request)
            allowed = _GET_ONLY
        else:
            raw = await self._body(request)
            params = self._from_body(raw)
            allowed = _POST
        return await self._execute(request, raw, params, media, allowed)

    def _from_query_string(self, request: Request) -> dict[str, Any]:
        args = request.query_params
        params: dict[str, Any] = {
            "query": args.get("query"),
            "operationName": args.get("operationName"),
            "variables": None,
        }
        for name in ("variables", "extensions"):
            if args.get(name):
                try:
                    params[name] = orjson.loads(args[name])
                except orjson.JSONDecodeError:
                    raise BadJson(f"The `{name}` parameter is not valid JSON.") from None
        return params

    async def _body(self, request: Request) -> bytes:
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != JSON:
            raise UnsupportedMediaType
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body:
            raise PayloadTooLarge(max_bytes=self._max_body)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self._max_body:
                raise PayloadTooLarge(max_bytes=self._max_body)
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _from_body(raw: bytes) -> dict[str, Any]:
        try:
            params = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise BadJson from None
        if not isinstance(params, dict):
            raise BadJson("The request body must be a JSON object.")
        return params

    async def _execute(
        self,
        request: Request,
        raw: bytes,
        params: dict[str, Any],
        media: str,
        allowed: frozenset[OperationType],
    ) -> Response:
        query, variables, operation = (
            params.get("query"),
            params.get("variables"),
            params.get("operationName"),
        )
        if not isinstance(query, str) or not query.strip():
            raise RequestError("`query` must be a non-empty string.")
        if variables is not None and not isinstance(variables, dict):
            raise RequestError("`variables` must be a JSON object.")
        if operation is not None and not isinstance(operation, str):
            raise RequestError("`operationName` must be a string.")
        compact = _compact_provenance(params.get("extensions"))
        state = self._state()
        request_id: str = getattr(request.state, "request_id", None) or uuid.uuid4().hex
        with tracing.span("admission") as current:
            admitted = await state.admission.admit(
                request_id, request.headers.get("authorization"), raw
            )
            if current is not None:
                # The client's system id and the procedure's code: no person's data.
                purpose = admitted.verified.purpose
                current.set_attributes(
                    {
                        "gateway.client": admitted.verified.client.id,
                        "gateway.procedure": purpose.procedure,
                        "gateway.subjects": len(purpose.subjects),
                    }
                )
        # The connectors in use now serve the whole request, even if others replace
        # them meanwhile: they are closed only once no request holds them.
        with state.live.hold() as served:
            fetch = _until(admitted.fetch, getattr(request.state, "deadline", None))
            recording: list[bool] = []
            try:
                # The case, confirmed by the dossier registry where the procedure asks.
                admitted = await state.admission.confirm_case(
                    request_id, admitted, served.registry, fetch
                )
                ctx = RequestContext(
                    registry=served.registry,
                    fetch=fetch,
                    max_batch=self._max_batch,
                    access=admitted.access,
                    services=state.services_for(admitted.catalogue),
                    versions=served.versions,
                )
                return await self._answer(
                    request,
                    state,
                    admitted,
                    ctx,
                    query,
                    variables,
                    operation,
                    media,
                    allowed,
                    recording,
                    compact=compact,
                )
            except asyncio.CancelledError:
                # The request's deadline passed (or its client left) after admission: the
                # answer is 503 and nothing was served; its token may come once more.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        state.admission.deadline_passed(
                            request_id, admitted, recording=bool(recording)
                        ),
                        _AFTER_DEADLINE,
                    )
                raise

    async def _answer(
        self,
        request: Request,
        state: GatewayState,
        admitted: Admitted,
        ctx: RequestContext,
        query: str,
        variables: dict[str, Any] | None,
        operation: str | None,
        media: str,
        allowed: frozenset[OperationType],
        recording: list[bool],
        *,
        compact: bool = False,
    ) -> Response:
        """Execute an admitted request, record it, and answer it."""
        started = time.perf_counter()
        try:
            result = await self._schema.execute(
                query,
                variable_values=variables,
                context_value=ctx,
                operation_name=operation,
                allowed_operation_types=allowed,
            )
        except (InvalidOperationTypeError, CannotGetOperationTypeError, MissingQueryError) as exc:
            error = _operation_error(exc, request.method)
            await state.admission.record(
                admitted,
                ctx,
                outcome=f"rejected:{error.code}",
                status=error.http_status,
                operation=operation,
                error_codes=[error.code],
            )
            raise error from None
        errors = result.errors or []
        request_error = result.data is None and bool(errors) and all(e.path is None for e in errors)
        body: dict[str, Any] = {}
        if not request_error:
            body["data"] = result.data
        if errors:
            body["errors"] = [_format(e, request_error=request_error) for e in errors]
        codes = [
            item.get("extensions", {}).get("code", "UNKNOWN") for item in body.get("errors", ())
        ]
        status = 400 if request_error and media == GRAPHQL_RESPONSE else 200
        if AuditUnavailable.code in codes:
            # The database failed under a resolver (consents): nothing is answered, and
            # the attempt is recorded without data if the database is back.
            await state.admission.record(
                admitted,
                ctx,
                outcome=f"rejected:{AuditUnavailable.code}",
                status=AuditUnavailable.http_status,
                operation=operation,
                error_codes=codes,
            )
            raise AuditUnavailable
        # The record is committed before the answer leaves; if it cannot be, no data does.
        recording.append(True)
        # An answer with data carries a receipt, signed with its record's commit.
        recorded = await state.admission.record(
            admitted,
            ctx,
            outcome=_outcome(ctx, request_error, query, operation),
            status=status,
            operation=operation,
            error_codes=codes,
            receipts=None if request_error else state.receipts(),
        )
        # Recorded: the answer leaves now, the request's deadline no longer applies (a
        # recorded answer cancelled would be a record of data never delivered).
        deadline = getattr(request.state, "deadline", None)
        if deadline is not None:
            deadline.reschedule(None)
        for code in codes:
            GRAPHQL_ERRORS.labels(code).inc()
        extensions = dict(result.extensions or {})
        if ctx.provenance:
            extensions["provenance"] = (
                grouped_provenance(ctx.provenance) if compact else ctx.provenance
            )
        if recorded.receipt is not None:
            # A signed promise that this request's record is, or soon will be, in the log.
            extensions["receipt"] = recorded.receipt
        if extensions:
            body["extensions"] = extensions
        GRAPHQL_SOURCE_CALLS.observe(ctx.source_calls)
        log.debug(
            "graphql_executed",
            operation=operation,
            errors=len(errors),
            source_calls=ctx.source_calls,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return Response(
            orjson.dumps(body), status_code=status, media_type=f"{media}; charset=utf-8"
        )


def _compact_provenance(extensions: Any) -> bool:
    """Whether the request's `extensions` ask for provenance grouped (`"compact"`)."""
    if extensions is None:
        return False
    if not isinstance(extensions, dict):
        raise RequestError("`extensions` must be a JSON object.")
    asked = extensions.get("provenance", PROVENANCE_FULL)
    if asked not in (PROVENANCE_FULL, PROVENANCE_COMPACT):
        raise RequestError(
            f"`extensions.provenance` is {PROVENANCE_FULL!r} (the default) or "
            f"{PROVENANCE_COMPACT!r}."
        )
    return bool(asked == PROVENANCE_COMPACT)


def grouped_provenance(provenance: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Provenance once per distinct origin, with the response paths it covers.

    `{"citizen.fullName": {"source": ..., "retrievedAt": ..., "basis": ...}, ...}` becomes
    `[{"source": ..., "retrievedAt": ..., "basis": ..., "paths": ["citizen.fullName",
    ...]}, ...]`: the same facts (every path keeps its own source, version, time and
    ground), each written once; groups in the order of their first path.
    """
    groups: dict[tuple[tuple[str, Any], ...], dict[str, Any]] = {}
    for path, entry in provenance.items():
        key = tuple(sorted(entry.items()))
        group = groups.get(key)
        if group is None:
            group = groups[key] = {**entry, "paths": []}
        group["paths"].append(path)
    return list(groups.values())


def _operation_error(exc: Exception, method: str) -> GatewayError:
    if isinstance(exc, InvalidOperationTypeError):
        if method == "GET":
            return MethodNotAllowed(
                "Only queries may be sent with GET; send mutations with POST.", allow="POST"
            )
        return RequestError(f"{exc.operation_type.value} operations are not supported.")
    if isinstance(exc, CannotGetOperationTypeError):
        return RequestError(
            "Name the operation to run with `operationName`; it must exist in the document."
        )
    return RequestError("`query` must be a non-empty string.")


def _outcome(ctx: RequestContext, request_error: bool, query: str, operation: str | None) -> str:
    if request_error:
        # A schema lookup refused (introspection off, too deep) is still no procedure
        # request: the query page in production would otherwise swell the figures.
        return INTROSPECTION if only_introspection(query, operation) else "invalid_request"
    if ctx.provenance:
        return "served"
    decisions = ctx.access.decisions
    if decisions and not any(d.code.startswith("ALLOWED") for d in decisions):
        return "denied"
    # Only a request that decided and did nothing can be a schema lookup (the query
    # document is looked at only then): not a procedure request.
    if not decisions and not ctx.actions and only_introspection(query, operation):
        return INTROSPECTION
    return "no_data"


def error_headers(exc: GatewayError) -> dict[str, str] | None:
    if isinstance(exc, MethodNotAllowed):
        return {"Allow": exc.allow}
    if isinstance(exc, Unauthenticated):
        return {"WWW-Authenticate": f'Bearer error="invalid_token", error_code="{exc.code}"'}
    if exc.retry_after is not None:
        return {"Retry-After": str(exc.retry_after)}
    return None
