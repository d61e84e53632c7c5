"""Whether an operation only asks about the schema (`__schema`, `__type`, `__typename`).

Such a request (the query page looking up the schema) reads nobody's data: it is
recorded like every signed request, but it is not a procedure request, neither in
`/admin/stats` nor in `/metrics`.
"""

from __future__ import annotations

from functools import lru_cache

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
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
    operation = _operation(document, operation_name)
    if operation is None:
        return False
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return _root_fields_are_meta(operation.selection_set, fragments, set())


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == name), None)


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
