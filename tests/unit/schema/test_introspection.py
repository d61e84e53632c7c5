"""`only_introspection`: a request that only looks up the schema is not a procedure request."""

from __future__ import annotations

import pytest
from graphql import get_introspection_query

from schema import only_introspection


@pytest.mark.parametrize(
    "query",
    [
        get_introspection_query(descriptions=True),
        "{ __typename }",
        '{ __type(name: "Citizen") { fields { name } } }',
        "query Q { ...Meta } fragment Meta on Query { __schema { queryType { name } } }",
        "{ ... on Query { __typename } }",
        'query A { __typename } query B { citizen(personalId: "1") { fullName } }',
    ],
)
def test_schema_lookups_are_introspection(query: str) -> None:
    name = "A" if "query A" in query else ("Q" if "query Q" in query else None)
    assert only_introspection(query, name)


@pytest.mark.parametrize(
    ("query", "operation"),
    [
        ('{ citizen(personalId: "1") { fullName } }', None),
        ('{ __typename citizen(personalId: "1") { __typename } }', None),
        ('query Q { ...Data } fragment Data on Query { consent(id: "c") { id } }', "Q"),
        ('{ ... on Query { __typename business(enterpriseCode: "1") { name } } }', None),
        ('query A { __typename } query B { citizen(personalId: "1") { fullName } }', "B"),
        ("query A { __typename } query B { __typename }", None),  # which one is unknown
        ("query A { __typename }", "Missing"),
        ("{ __typename ", None),  # does not parse
        ("{ ...Missing }", None),  # a fragment that is not there
    ],
)
def test_anything_else_is_not(query: str, operation: str | None) -> None:
    assert not only_introspection(query, operation)


def test_a_fragment_spread_in_a_cycle_ends() -> None:
    query = "{ ...A } fragment A on Query { __typename ...B } fragment B on Query { ...A }"
    assert only_introspection(query, None)
