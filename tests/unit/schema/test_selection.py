"""Which fields a query selects under an entity: fragments, aliases and directives."""

from typing import Any

import pytest
import strawberry
from strawberry.types import Info

from schema import selected_fields


@strawberry.type
class Person:
    name: str | None = None
    age: int | None = None
    email: str | None = None
    friend: "Person | None" = None


@strawberry.type
class Query:
    @strawberry.field
    def person(self, info: Info) -> Person:
        info.context["seen"].append(selected_fields(info._raw_info))
        return Person(friend=Person())


SCHEMA = strawberry.Schema(query=Query)


def _selected(query: str, variables: dict[str, Any] | None = None) -> frozenset[str]:
    seen: list[frozenset[str]] = []
    result = SCHEMA.execute_sync(query, variable_values=variables, context_value={"seen": seen})
    assert result.errors is None, result.errors
    [fields] = seen
    return fields


def test_plain_fields() -> None:
    assert _selected("{ person { name age } }") == {"name", "age"}


def test_aliases_give_field_names() -> None:
    assert _selected("{ person { n: name a1: age a2: age } }") == {"name", "age"}


def test_nested_selections_are_not_top_level_fields() -> None:
    assert _selected("{ person { friend { email } } }") == {"friend"}


def test_fragment_spread() -> None:
    query = "{ person { ...Parts } } fragment Parts on Person { email age }"
    assert _selected(query) == {"email", "age"}


def test_fragment_inside_fragment() -> None:
    query = """
        { person { ...Outer } }
        fragment Outer on Person { name ...Inner }
        fragment Inner on Person { email }
    """
    assert _selected(query) == {"name", "email"}


def test_fragment_spread_twice() -> None:
    query = "{ person { ...P friend { name } ...P } } fragment P on Person { age }"
    assert _selected(query) == {"age", "friend"}


def test_inline_fragment() -> None:
    assert _selected("{ person { name ... on Person { email } ... { age } } }") == {
        "name",
        "email",
        "age",
    }


def test_typename_is_left_out() -> None:
    assert _selected("{ person { __typename name } }") == {"name"}


def test_skip_true_literal() -> None:
    assert _selected("{ person { name email @skip(if: true) } }") == {"name"}


def test_skip_false_literal() -> None:
    assert _selected("{ person { name email @skip(if: false) } }") == {"name", "email"}


def test_include_false_literal() -> None:
    assert _selected("{ person { name email @include(if: false) } }") == {"name"}


def test_include_true_literal() -> None:
    assert _selected("{ person { name email @include(if: true) } }") == {"name", "email"}


@pytest.mark.parametrize(("flag", "expected"), [(True, {"name", "email"}), (False, {"name"})])
def test_include_with_variable(flag: bool, expected: set[str]) -> None:
    query = "query Q($on: Boolean!) { person { name email @include(if: $on) } }"
    assert _selected(query, {"on": flag}) == expected


@pytest.mark.parametrize(("flag", "expected"), [(True, {"name"}), (False, {"name", "email"})])
def test_skip_with_variable(flag: bool, expected: set[str]) -> None:
    query = "query Q($off: Boolean!) { person { name email @skip(if: $off) } }"
    assert _selected(query, {"off": flag}) == expected


def test_skip_with_defaulted_variable() -> None:
    query = "query Q($off: Boolean! = true) { person { name email @skip(if: $off) } }"
    assert _selected(query) == {"name"}


def test_skipped_fragment_spread() -> None:
    query = "{ person { name ...P @skip(if: true) } } fragment P on Person { email }"
    assert _selected(query) == {"name"}


def test_skipped_inline_fragment() -> None:
    query = "{ person { name ... @include(if: false) { email } } }"
    assert _selected(query) == {"name"}


def test_field_in_a_skipped_and_an_included_spot_is_selected() -> None:
    query = "{ person { email @skip(if: true) ... { email } } }"
    assert _selected(query) == {"email"}


def test_same_field_twice_at_the_root_merges_selections() -> None:
    assert _selected("{ person { name } person { age } }") == {"name", "age"}
