"""Which fields of an entity a query selects, fragments and aliases included.

Decisions and fetches are made per canonical field, so the resolver of an entity needs
the names (not the aliases) of the fields selected under it, after `@skip`/`@include`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    BooleanValueNode,
    DirectiveNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLResolveInfo,
    InlineFragmentNode,
    SelectionNode,
    VariableNode,
)

__all__ = ["Selection", "selected_fields", "selection"]


def _condition(directive: DirectiveNode, variables: Mapping[str, Any]) -> bool:
    """The value of a validated `@skip`/`@include` directive's `if: Boolean!` argument."""
    value = (directive.arguments or ())[0].value
    if isinstance(value, VariableNode):
        return bool(variables.get(value.name.value))
    return isinstance(value, BooleanValueNode) and value.value


def _included(node: SelectionNode, variables: Mapping[str, Any]) -> bool:
    for directive in node.directives or ():
        name = directive.name.value
        if name == "skip" and _condition(directive, variables):
            return False
        if name == "include" and not _condition(directive, variables):
            return False
    return True


def _collect(
    selections: Iterable[SelectionNode],
    info: GraphQLResolveInfo[Any],
    variables: Mapping[str, Any],
    out: dict[str, set[str]],
    seen: set[str],
) -> None:
    for node in selections:
        if not _included(node, variables):
            continue
        if isinstance(node, FieldNode):
            key = node.alias.value if node.alias else node.name.value
            out.setdefault(node.name.value, set()).add(key)
        elif isinstance(node, InlineFragmentNode):
            _collect(node.selection_set.selections, info, variables, out, seen)
        elif isinstance(node, FragmentSpreadNode):
            name = node.name.value
            fragment = info.fragments.get(name)
            if fragment is not None and name not in seen:
                seen.add(name)
                _collect(fragment.selection_set.selections, info, variables, out, seen)


@dataclass(frozen=True, slots=True)
class Selection:
    """The fields selected under an entity, and the response keys (aliases) of each."""

    fields: frozenset[str]
    keys: Mapping[str, frozenset[str]]
    path: str
    """The response path of the entity field, dot-separated (`citizen`, `a`)."""


def selection(info: GraphQLResolveInfo[Any]) -> Selection:
    """The selection directly under the field being resolved.

    The schema has no interfaces or unions, so every fragment's type condition is the
    entity's own type; `__typename` is left out.
    """
    out: dict[str, set[str]] = {}
    seen: set[str] = set()
    raw: Any = info.variable_values
    variables: Mapping[str, Any] = getattr(raw, "coerced", raw) or {}
    for field in info.field_nodes:
        if field.selection_set is not None:
            _collect(field.selection_set.selections, info, variables, out, seen)
    out.pop("__typename", None)
    path = ".".join(str(p) for p in info.path.as_list())
    return Selection(frozenset(out), {k: frozenset(v) for k, v in out.items()}, path)


def selected_fields(info: GraphQLResolveInfo[Any]) -> frozenset[str]:
    """Names of the fields selected directly under the field being resolved."""
    return selection(info).fields
