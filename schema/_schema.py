"""The executable schema, its limits and error masking, built once per application.

Validation rules (depth, aliases, introspection) are built here once: the validation
cache is keyed by the rule classes, so rules created per request would never hit it.
The depth counts introspection fields too (`schema._limits`).

A document that ran once (it parsed and validated) is kept prepared, by its text and
operation name: the next request of it goes straight to graphql-core's executor,
without strawberry's per-request extension runner, with the same error logging and
masking. Any other document takes strawberry's whole path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import strawberry
import structlog
from graphql import DocumentNode, GraphQLError, get_operation_ast, parse
from strawberry.execution import optimized_is_awaitable
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema._graphql_core import execution_context_class_kwargs
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.utils.await_maybe import await_maybe

from gateway.errors import GatewayError
from schema._build import canonical_tree, warm_converters
from schema._consent import Mutation
from schema._dossier import dossier_tree
from schema._executor import PlannedExecutor
from schema._limits import NoIntrospectionRule, depth_rule
from schema._query import Query
from schema._service import KINDS

__all__ = [
    "SDL_PATH",
    "SchemaLimits",
    "build_schema",
    "canonical_fields",
    "connector_fields",
    "export_sdl",
]

log = structlog.get_logger(__name__)

SDL_PATH = Path(__file__).with_name("schema.graphql")


@dataclass(frozen=True, slots=True)
class SchemaLimits:
    """Limits applied to every operation before it runs."""

    max_depth: int = 10
    max_aliases: int = 30
    max_tokens: int = 2000
    parser_cache_size: int = 1024
    introspection: bool = True


def is_unexpected(error: GraphQLError) -> bool:
    """Whether an error came from a bug rather than from the request or a source.

    Parse and validation errors have no original error; errors the gateway raises on
    purpose are `GatewayError`s. Everything else is masked as `INTERNAL`.
    """
    original = error.original_error
    return original is not None and not isinstance(original, GatewayError | GraphQLError)


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A document that parsed and validated, with the type of the operation it runs."""

    document: DocumentNode
    operation_type: OperationType


class _Schema(strawberry.Schema):
    prepared_size = 1024
    """Documents kept prepared; the oldest is dropped for a new one beyond."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prepared: dict[tuple[str, str | None], _Prepared] = {}

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        prepared = self._prepared.get((query, operation_name)) if query else None
        allowed = set(OperationType) if allowed_operation_types is None else allowed_operation_types
        if prepared is None or prepared.operation_type not in allowed:
            result = await super().execute(
                query,
                variable_values,
                context_value,
                root_value,
                operation_name,
                allowed_operation_types,
                operation_extensions,
            )
            if query and result.data is not None:
                # It ran: it parsed and validated, and will again (the rules are fixed).
                self._prepare(query, operation_name)
            return result
        try:
            ran = await await_maybe(
                self._get_execute_function()(
                    self._schema,
                    prepared.document,
                    root_value=root_value,
                    middleware=self._get_middleware_manager([]),
                    variable_values=variable_values,
                    operation_name=operation_name,
                    context_value=context_value,
                    is_awaitable=optimized_is_awaitable,
                    **execution_context_class_kwargs(self.execution_context_class),
                    **self._get_custom_context_kwargs(operation_extensions),
                )
            )
            data, errors = ran.data, ran.errors
        except Exception as exc:  # as strawberry answers one: an error of the request
            data, errors = (
                None,
                [
                    exc
                    if isinstance(exc, GraphQLError)
                    else GraphQLError(str(exc), original_error=exc)
                ],
            )
        if errors:
            # Logged as they are, then masked (what `MaskErrors` does on the other path).
            self._process_errors(errors)
            errors = [_masked(e) if is_unexpected(e) else e for e in errors]
        return ExecutionResult(data=data, errors=errors, extensions={})

    def _prepare(self, query: str, operation_name: str | None) -> None:
        document = parse(query)
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            return
        if len(self._prepared) >= self.prepared_size:
            self._prepared.pop(next(iter(self._prepared)))
        self._prepared[query, operation_name] = _Prepared(
            document, OperationType(operation.operation.value)
        )

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Expected errors (bad ids, sources down) are answers, not incidents: log only bugs.
        for error in errors:
            if is_unexpected(error):
                log.error(
                    "resolver_failed",
                    path=[str(p) for p in error.path or ()],
                    exc_info=error.original_error,
                )


def _masked(error: GraphQLError) -> GraphQLError:
    return GraphQLError(
        "Internal error.",
        nodes=error.nodes,
        path=error.path,
        extensions={"code": "INTERNAL"},
    )


class _MaskUnexpected(MaskErrors):
    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        return _masked(error)


def build_schema(limits: SchemaLimits) -> strawberry.Schema:
    """The executable schema with caches, limits and masking as extension factories."""
    rules: list[Any] = [
        depth_rule(limits.max_depth),
        *MaxAliasesLimiter(max_alias_count=limits.max_aliases).validation_rules,
    ]
    if not limits.introspection:
        rules.append(NoIntrospectionRule)
    for kind in KINDS.values():
        warm_converters(kind.cls)
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        lambda: ParserCache(maxsize=limits.parser_cache_size),
        lambda: AddValidationRules(rules),
        lambda: ValidationCache(maxsize=limits.parser_cache_size),
        lambda: _MaskUnexpected(should_mask_error=is_unexpected),
    ]
    return _Schema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,
        execution_context_class=PlannedExecutor,
    )


def export_sdl() -> str:
    """The canonical schema as SDL, as checked in at `schema/schema.graphql`."""
    return _Schema(query=Query, mutation=Mutation).as_str() + "\n"


def canonical_fields() -> dict[str, Any]:
    """Canonical field tree per entity kind clients read, for the catalogue's paths."""
    return {name: canonical_tree(kind.cls) for name, kind in KINDS.items()}


def connector_fields() -> dict[str, Any]:
    """Canonical field tree per kind connectors may serve, to check manifests against:
    the kinds clients read, and `Dossier`, which the gateway reads to confirm cases."""
    return {**canonical_fields(), "Dossier": dossier_tree()}
