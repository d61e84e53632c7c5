"""Validation rules that bound an operation before it runs: its depth, and introspection.

Strawberry's `QueryDepthLimiter` skips every field whose name begins with `__`. The
canonical types are not recursive, but the introspection types are (`__Type.ofType`,
`fields { type { fields … } }`), so an introspection chain passed any depth limit. Here
every field counts, introspection ones too, with one exception: a run of `ofType`
(how a type is wrapped: non-null of list of non-null …) counts as one level and may be
at most `OF_TYPE_LIMIT` long. The standard introspection query, which GraphiQL sends,
nests `ofType` 9 deep and, so counted, is 6 deep: within the default limit of 10.
Lists of types within lists (`types { fields { type { fields …`) are bounded besides
by graphql-core's `MaxIntrospectionDepthRule`, one of its specified rules.

Each refusal here carries its code in `extensions.code`: `QUERY_TOO_COMPLEX` for the
depth, `INTROSPECTION_DISABLED` when introspection is switched off.
"""

from __future__ import annotations

from typing import Any, Final

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    NoSchemaIntrospectionCustomRule,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from graphql.language import SKIP, VisitorAction

__all__ = [
    "INTROSPECTION_DISABLED",
    "OF_TYPE_LIMIT",
    "QUERY_TOO_COMPLEX",
    "NoIntrospectionRule",
    "depth_rule",
]

QUERY_TOO_COMPLEX: Final = "QUERY_TOO_COMPLEX"
INTROSPECTION_DISABLED: Final = "INTROSPECTION_DISABLED"
OF_TYPE_LIMIT: Final = 10
"""Longest run of `ofType`: the standard introspection query nests 9."""


def depth_rule(max_depth: int) -> type[ValidationRule]:
    """A rule refusing operations nested deeper than `max_depth`, counted as above.

    The top-level fields are at depth 0, as for strawberry's limiter: with a limit of
    2, `{ a { b { c } } }` passes and `{ a { b { c { d } } } }` does not.
    """

    class DepthRule(ValidationRule):
        def enter_operation_definition(
            self, node: OperationDefinitionNode, *_args: Any
        ) -> VisitorAction:
            error = _too_deep(node, self.context, max_depth)
            if error is not None:
                self.report_error(error)
            return SKIP

    return DepthRule


def _too_deep(
    operation: OperationDefinitionNode, context: ValidationContext, max_depth: int
) -> GraphQLError | None:
    """The first place the operation goes too deep, or `None`.

    Walked with a stack, not recursion. A fragment is walked once per depth and
    `ofType` run it is entered at: that ends fragment cycles (a cycle that nests
    deeper reaches a limit) and keeps a fragment spread many times from being walked
    once per path to it.
    """
    name = operation.name.value if operation.name else "anonymous"
    stack: list[tuple[SelectionSetNode, int, int]] = [(operation.selection_set, 0, 0)]
    entered: set[tuple[str, int, int]] = set()
    while stack:
        selections, depth, run = stack.pop()
        if depth > max_depth:
            return GraphQLError(
                f"'{name}' exceeds maximum operation depth of {max_depth}",
                selections.selections[0],
                extensions={"code": QUERY_TOO_COMPLEX},
            )
        for node in selections.selections:
            if isinstance(node, FieldNode):
                if node.selection_set is None:
                    continue
                of_type = node.name.value == "ofType"
                # `run`: the `ofType` fields right above; only the first of a run counts.
                inner_run = run + 1 if of_type else 0
                if inner_run > OF_TYPE_LIMIT:
                    return GraphQLError(
                        f"'{name}' nests `ofType` more than {OF_TYPE_LIMIT} deep",
                        node,
                        extensions={"code": QUERY_TOO_COMPLEX},
                    )
                inner_depth = depth if of_type and run else depth + 1
                stack.append((node.selection_set, inner_depth, inner_run))
            elif isinstance(node, InlineFragmentNode):
                stack.append((node.selection_set, depth, run))
            elif isinstance(node, FragmentSpreadNode):
                key = (node.name.value, depth, run)
                fragment = context.get_fragment(node.name.value)
                if key in entered or fragment is None:
                    continue  # an unknown fragment is KnownFragmentNamesRule's to report
                entered.add(key)
                stack.append((fragment.selection_set, depth, run))
    return None


class NoIntrospectionRule(NoSchemaIntrospectionCustomRule):
    """Refuses `__schema` and `__type` (`__typename` still answers), with its own code."""

    def report_error(self, error: GraphQLError) -> None:
        coded = GraphQLError(
            error.message, error.nodes, extensions={"code": INTROSPECTION_DISABLED}
        )
        super().report_error(coded)
