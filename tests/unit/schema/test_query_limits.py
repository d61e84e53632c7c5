"""Query limits on introspection: depth counts `__` fields too, and it can be switched off.

The canonical types are not recursive, but the introspection types are
(`__Type.ofType`, `__Type.fields.type`), so without counting them a client could nest
introspection as deep as the token limit lets it. The standard introspection query,
which GraphiQL sends, must still pass with the default limits.
"""

from __future__ import annotations

from typing import Any

import pytest
from graphql import get_introspection_query

from schema import SchemaLimits, build_schema

DEFAULT = build_schema(SchemaLimits())
NO_INTROSPECTION = build_schema(SchemaLimits(introspection=False))


def _of_type_chain(depth: int) -> str:
    """`__schema { types { fields { type { ofType { … } } } } }`, `depth` fields deep."""
    inner = "name"
    for _ in range(depth - 4):
        inner = f"ofType {{ {inner} }}"
    return f"{{ __schema {{ types {{ fields {{ type {{ {inner} }} }} }} }} }}"


async def _codes(schema: Any, query: str) -> list[str]:
    result = await schema.execute(query)
    assert result.data is None, "refused before it ran"
    return [e.extensions["code"] for e in result.errors or []]


async def test_a_depth_50_of_type_chain_is_refused_as_too_complex() -> None:
    assert await _codes(DEFAULT, _of_type_chain(50)) == ["QUERY_TOO_COMPLEX"]


@pytest.mark.parametrize("runs", [10, 11, 30])
async def test_of_type_runs_longer_than_ten_are_refused(runs: int) -> None:
    inner = "name"
    for _ in range(runs):
        inner = f"ofType {{ {inner} }}"
    query = f'{{ __type(name: "Citizen") {{ {inner} }} }}'
    result = await DEFAULT.execute(query)
    if runs <= 10:
        assert result.errors is None
    else:
        assert [e.extensions["code"] for e in result.errors or []] == ["QUERY_TOO_COMPLEX"]


async def test_introspection_fields_count_towards_the_depth() -> None:
    shallow = build_schema(SchemaLimits(max_depth=3))
    within = "{ __schema { types { fields { name } } } }"
    beyond = "{ __schema { types { fields { type { name } } } } }"
    assert (await shallow.execute(within)).errors is None
    assert await _codes(shallow, beyond) == ["QUERY_TOO_COMPLEX"]


async def test_depth_through_fragments_is_counted() -> None:
    shallow = build_schema(SchemaLimits(max_depth=3))
    query = """
        { __schema { ...Types } }
        fragment Types on __Schema { types { ...Fields } }
        fragment Fields on __Type { fields { type { name } } }
    """
    assert await _codes(shallow, query) == ["QUERY_TOO_COMPLEX"]


async def test_fragment_cycles_are_refused_without_recursing_forever() -> None:
    query = """
        { __schema { types { ...A } } }
        fragment A on __Type { ofType { ...B } }
        fragment B on __Type { ofType { ...A } }
    """
    result = await DEFAULT.execute(query)
    assert result.data is None
    assert result.errors


async def test_nested_type_lists_are_refused() -> None:
    # Lists within lists multiply: types times fields times fields (graphql-core's rule,
    # whose message the endpoint answers as QUERY_TOO_COMPLEX).
    query = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
    result = await DEFAULT.execute(query)
    assert result.data is None
    assert [e.message for e in result.errors or []] == ["Maximum introspection depth exceeded"]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {
            "descriptions": True,
            "specified_by_url": True,
            "directive_is_repeatable": True,
            "schema_description": True,
            "input_value_deprecation": True,
        },
    ],
)
async def test_the_standard_introspection_query_is_answered(options: dict[str, bool]) -> None:
    result = await DEFAULT.execute(get_introspection_query(**options))
    assert result.errors is None
    names = {t["name"] for t in result.data["__schema"]["types"]}
    assert {"Query", "Citizen", "__Type"} <= names


@pytest.mark.parametrize(
    "query",
    [
        "{ __schema { queryType { name } } }",
        '{ __type(name: "Citizen") { name } }',
        get_introspection_query(),
    ],
)
async def test_switched_off_introspection_is_refused_with_its_code(query: str) -> None:
    codes = await _codes(NO_INTROSPECTION, query)
    assert codes
    assert set(codes) == {"INTROSPECTION_DISABLED"}


async def test_typename_still_answers_when_introspection_is_off() -> None:
    result = await NO_INTROSPECTION.execute("{ __typename }")
    assert result.errors is None
    assert result.data == {"__typename": "Query"}
