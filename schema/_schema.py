"""The executable schema, its limits and error masking, built once per application.

Validation rules (depth, aliases, introspection) are built here once: the validation
cache is keyed by the rule classes, so rules created per request would never hit it.
The depth counts introspection fields too (`schema._limits`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import strawberry
import structlog
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.types import ExecutionContext

from gateway.errors import GatewayError
from schema._build import canonical_tree, warm_converters
from schema._consent import Mutation
from schema._limits import NoIntrospectionRule, depth_rule
from schema._query import Query
from schema._service import KINDS

__all__ = ["SDL_PATH", "SchemaLimits", "build_schema", "canonical_fields", "export_sdl"]

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


class _Schema(strawberry.Schema):
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
    return _Schema(query=Query, mutation=Mutation, extensions=extensions)


def export_sdl() -> str:
    """The canonical schema as SDL, as checked in at `schema/schema.graphql`."""
    return _Schema(query=Query, mutation=Mutation).as_str() + "\n"


def canonical_fields() -> dict[str, Any]:
    """Canonical field tree per entity kind, to check connector manifests against."""
    return {name: canonical_tree(kind.cls) for name, kind in KINDS.items()}
