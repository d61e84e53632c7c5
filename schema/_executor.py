"""graphql-core's executor, completing plain objects from a plan kept across requests.

Every entity the gateway answers is an object of plain fields: strawberry's default
resolver reads an attribute, a leaf is coerced by its type. graphql-core completes each
such field through its general machinery (resolve info, argument values, a path, the
abstract and list cases) once per field per entity. Here a selection that cannot vary
between requests (plain fields of one node: no directives, no fragments, no arguments)
is planned once, by its type and its node in the prepared document, and completed by
the plan: the same resolver is called, the same coercion applied, an error located and
handled by graphql-core's own `handle_field_error`. A non-null leaf (an entity's own
identifier) takes the plan when its value is there and coerces; when it is null, fails
or does not coerce, graphql-core executes it again from the start, so that the error
and the null it carries to the parent are its own. Anything else (a list, a non-null
object, `__typename`, a field with a resolver of its own) is executed by graphql-core
field by field, and a selection that cannot be planned is completed as before.

The answers are the same, errors and their paths included: `tests/unit/schema/
test_executor.py` runs documents through both executors and compares them.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, Final

from graphql import (
    FieldNode,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLResolveInfoHelpers,
    Undefined,
    is_leaf_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.execution.incremental.incremental_executor import IncrementalExecutor
from graphql.pyutils import Path, gather_with_cancel
from strawberry.types.field import StrawberryField

__all__ = ["PlannedExecutor"]

_GENERIC: Final = 0
_LEAF: Final = 1
_OBJECT: Final = 2
_NON_NULL_LEAF: Final = 3

_Step = tuple[str, Callable[..., Any], str | None, GraphQLOutputType, int, FieldDetailsList]
_Plan = tuple[_Step, ...]


def _plain(node: FieldNode) -> bool:
    """Whether `node`'s sub-selection is the same whatever the variables: plain fields."""
    selection_set = node.selection_set
    if selection_set is None or node.directives:
        return False
    keys: set[str] = set()
    for child in selection_set.selections:
        if not isinstance(child, FieldNode) or child.directives:
            return False
        key = child.alias.value if child.alias else child.name.value
        if key in keys:  # the same key twice: graphql-core merges them
            return False
        keys.add(key)
    return True


class PlannedExecutor(IncrementalExecutor):
    """`IncrementalExecutor` with plain objects completed by a plan (see the module)."""

    _plans: ClassVar[dict[tuple[int, int], tuple[GraphQLObjectType, FieldNode, _Plan | None]]] = {}
    _plans_lock: ClassVar[threading.Lock] = threading.Lock()
    plans_size = 4096
    """Plans kept; all are dropped beyond (documents are kept prepared up to 1,024)."""

    def __init__(self, *args: Any, operation_extensions: Any = None, **kwargs: Any) -> None:
        # strawberry hands a custom executor the operation's extensions.
        super().__init__(*args, **kwargs)
        self.operation_extensions = operation_extensions
        # graphql-core's helpers are bound methods of the executor: a cycle that keeps it,
        # and the request's context with everything decided and fetched, until the
        # collector's next pass. Through a weak reference they free it as it ends.
        executor = weakref.ref(self)

        def gather(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
            return _alive(executor).gather_async_work(values)

        def track(values: Sequence[Any]) -> None:
            _alive(executor).track_async_work(values)

        self.async_helpers = GraphQLResolveInfoHelpers(gather=gather, track=track)

    def _plan(self, return_type: GraphQLObjectType, field_details_list: FieldDetailsList) -> Any:
        manager = self.middleware_manager
        if len(field_details_list) != 1 or (manager is not None and manager.middlewares):
            return None
        details = field_details_list[0]
        node = details.node
        key = (id(return_type), id(node))
        kept = self._plans.get(key)
        # The type and node are kept with their plan: their ids cannot be reused while
        # it is kept.
        if kept is not None and kept[0] is return_type and kept[1] is node:
            return kept[2]
        plan = None
        if (
            details.defer_usage is None
            and details.fragment_variable_values is None
            and return_type.is_type_of is None
            and _plain(node)
        ):
            plan = self._make_plan(return_type, field_details_list)
        with self._plans_lock:
            if len(self._plans) >= self.plans_size:
                self._plans.clear()
            self._plans[key] = (return_type, node, plan)
        return plan

    def _make_plan(
        self, return_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> _Plan | None:
        grouped, new_defer_usages, _ = self.collect_subfields(return_type, field_details_list)
        if new_defer_usages:
            return None
        steps: list[_Step] = []
        for response_key, sub in grouped.items():
            sub_node = sub[0].node
            field_def = return_type.fields.get(sub_node.name.value) if len(sub) == 1 else None
            kind = _GENERIC
            if (
                field_def is not None
                and not field_def.args
                and not sub_node.arguments
                and getattr(field_def.resolve, "_is_default", False)
            ):
                if is_leaf_type(field_def.type):
                    kind = _LEAF
                elif is_object_type(field_def.type):
                    kind = _OBJECT
                elif is_non_null_type(field_def.type) and is_leaf_type(field_def.type.of_type):
                    kind = _NON_NULL_LEAF
            if kind == _GENERIC or field_def is None:
                steps.append((response_key, _unused, None, return_type, _GENERIC, sub))
            else:
                field = field_def.extensions.get("strawberry-definition")
                # strawberry's default resolver of a plain field reads the attribute.
                attribute = (
                    field.python_name
                    if isinstance(field, StrawberryField) and field.default_resolver is getattr
                    else None
                )
                steps.append(
                    (response_key, field_def.resolve, attribute, field_def.type, kind, sub)
                )
        return tuple(steps)

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        plan = self._plan(return_type, field_details_list)
        if plan is None:
            return super().complete_object_value(
                return_type, field_details_list, info, path, result, position_context
            )
        results: dict[str, Any] = {}
        pending: list[str] = []
        is_awaitable = self.is_awaitable
        type_name = return_type.name
        try:
            for response_key, resolve, attribute, field_type, kind, sub in plan:
                generic = kind == _GENERIC
                if not generic:
                    try:
                        value = (
                            resolve(result, None)
                            if attribute is None
                            else getattr(result, attribute)
                        )
                    except Exception as raw_error:
                        value = raw_error
                    if kind == _NON_NULL_LEAF:
                        coerced = self._non_null_leaf(value, field_type)
                        if coerced is not None:
                            results[response_key] = coerced
                            continue
                        # Null, an error or not coercible: graphql-core's own way, from
                        # the start, for its error and the null it gives the parent.
                        generic = True
                    elif value is None or value is Undefined:
                        results[response_key] = None
                        continue
                    else:
                        if kind == _LEAF and not isinstance(value, Exception):
                            # The common case at once: no path is made for a value that
                            # needs none.
                            try:
                                coerced = field_type.coerce_output_value(value)
                            except Exception:
                                coerced = None
                            if coerced is not None and coerced is not Undefined:
                                results[response_key] = coerced
                                continue
                        completed = self._complete_planned(
                            value,
                            field_type,
                            kind,
                            sub,
                            Path(path, response_key, type_name),
                            position_context,
                        )
                if generic:
                    completed = self.execute_field(
                        return_type,
                        result,
                        sub,
                        Path(path, response_key, type_name),
                        position_context,
                    )
                    if completed is Undefined:
                        continue
                results[response_key] = completed
                if is_awaitable(completed):
                    pending.append(response_key)
        except Exception:
            if pending:
                self.settle_in_background([results[key] for key in pending])
            raise
        if not pending:
            return results
        return self._gather(results, pending)

    @staticmethod
    def _non_null_leaf(value: Any, field_type: Any) -> Any:
        """`value` coerced for a non-null leaf field, or `None` if it cannot be at once."""
        if value is None or value is Undefined or isinstance(value, Exception):
            return None
        try:
            coerced = field_type.of_type.coerce_output_value(value)
        except Exception:
            return None
        return None if coerced is Undefined else coerced

    def _complete_planned(
        self,
        value: Any,
        field_type: Any,
        kind: int,
        sub: FieldDetailsList,
        field_path: Path,
        position_context: Any,
    ) -> Any:
        """The rest of `execute_field` for a nullable leaf or object field of a default
        resolver that gave `value`, not null (an exception it raised is its value)."""
        try:
            if isinstance(value, Exception):
                raise value
            if kind == _LEAF:
                return self.complete_leaf_value(field_type, value)
            no_info: Any = None  # read only for `is_type_of`, which a planned type has not
            completed = self.complete_object_value(
                field_type, sub, no_info, field_path, value, position_context
            )
            if self.is_awaitable(completed):
                return self._awaited(completed, field_type, sub, field_path)
            return completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, field_type, sub, field_path)
            return None

    async def _awaited(
        self,
        completed: Awaitable[Any],
        field_type: GraphQLOutputType,
        sub: FieldDetailsList,
        field_path: Path,
    ) -> Any:
        try:
            return await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, field_type, sub, field_path)
            return None

    @staticmethod
    async def _gather(results: dict[str, Any], pending: list[str]) -> dict[str, Any]:
        if len(pending) == 1:
            results[pending[0]] = await results[pending[0]]
        else:
            awaited = await gather_with_cancel(*(results[key] for key in pending))
            results.update(zip(pending, awaited, strict=True))
        return results


def _alive(executor: weakref.ref[PlannedExecutor]) -> PlannedExecutor:
    alive = executor()
    assert alive is not None, "the execution's helpers outlived it"
    return alive


def _unused(*_args: Any) -> Any:  # pragma: no cover - generic steps never call it
    raise AssertionError("a generic step is executed by graphql-core")
