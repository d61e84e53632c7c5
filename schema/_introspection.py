"""Whether an operation only asks about the schema (`__schema`, `__type`, `__typename`).

Such a request (the query page looking up the schema) reads nobody's data: it is
recorded like every signed request, but it is not a procedure request, neither in
`/admin/stats` nor in `/metrics`.
"""

from __future__ import annotations

from functools import lru_cache

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    SelectionSetNode,
    get_operation_ast,
    parse,
)

__all__ = ["only_introspection"]


def only_introspection(query: str, operation_name: str | None) -> bool:
    """Whether the operation run from `query` selects only `__` fields at its root.

    Meant for a request that has run: the document parses and the operation exists.
    """
    return _only_introspection(query, operation_name)


@lru_cache(maxsize=64)
def _only_introspection(query: str, operation_name: str | None) -> bool:
    try:
        document = parse(query, no_location=True)
    except GraphQLError:
        return False
    # The operation graphql-core would run: the named one, or the only one.
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return False
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return _root_fields_are_meta(operation.selection_set, fragments, set())


def _root_fields_are_meta(
    selections: SelectionSetNode,
    fragments: dict[str, FragmentDefinitionNode],
    seen: set[str],
) -> bool:
    for node in selections.selections:
        if isinstance(node, FieldNode):
            if not node.name.value.startswith("__"):
                return False
        elif isinstance(node, InlineFragmentNode):
            if not _root_fields_are_meta(node.selection_set, fragments, seen):
                return False
        elif isinstance(node, FragmentSpreadNode):
            name = node.name.value
            if name in seen:
                continue
            seen.add(name)
            fragment = fragments.get(name)
            if fragment is None or not _root_fields_are_meta(
                fragment.selection_set, fragments, seen
            ):
                return False
    return True
