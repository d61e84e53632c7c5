"""The planned executor answers exactly as graphql-core's own, errors and their paths included."""

import datetime
from enum import Enum
from typing import Any

import pytest
import strawberry
from graphql import parse
from graphql.execution import execute

from gateway.errors import NotFound, PolicyDenied
from schema._executor import PlannedExecutor


@strawberry.enum
class Colour(Enum):
    RED = "RED"
    BLUE = "BLUE"


@strawberry.type
class Inner:
    a: str | None = None
    b: int | None = None
    must: str = "here"


@strawberry.type
class Outer:
    x: str | None = None
    colour: Colour | None = None
    day: datetime.date | None = None
    inner: Inner | None = None
    items: list[Inner | None] | None = None
    names: list[str] | None = None
    required: str = "always"

    @strawberry.field
    def computed(self) -> str | None:
        return f"[{self.x}]"


def _outers() -> list[Any]:
    return [
        Outer(
            x="one",
            colour=Colour.RED,
            day=datetime.date(2001, 2, 3),
            inner=Inner(a="a1", b=1),
            items=[Inner(a="i1"), None, Inner(b=PolicyDenied("no", field="Inner.b"))],  # type: ignore[arg-type]
            names=["n1", "n2"],
        ),
        Outer(
            x=PolicyDenied("withheld", field="Outer.x"),  # type: ignore[arg-type]
            colour=NotFound("gone"),  # type: ignore[arg-type]
            inner=Inner(a=ValueError("a bug"), b="not a number"),  # type: ignore[arg-type]
        ),
        # A non-null field that is null: the error nulls its parent, the nullable `inner`.
        Outer(x="three", inner=Inner(a="a3", must=None)),  # type: ignore[arg-type]
        # A non-null field that fails at the top of an entity: the entity is null.
        Outer(x="four", required=PolicyDenied("no", field="Outer.required")),  # type: ignore[arg-type]
        NotFound("no such entity"),
        None,
        # Non-null leaves whose values do not coerce: the error is graphql-core's own.
        Outer(x="six", required=["not", "text"], inner=Inner(a="a6", must=object())),  # type: ignore[arg-type]
        Outer(x="seven", required=7, inner=Inner(must=Colour.RED)),  # type: ignore[arg-type]
    ]


@strawberry.type
class Query:
    @strawberry.field
    def outers(self) -> list[Outer | None]:
        return _outers()

    @strawberry.field
    async def one(self, index: int) -> Outer | None:
        return _outers()[index]  # type: ignore[no-any-return]


SCHEMA = strawberry.Schema(query=Query)._schema

DOCUMENTS = [
    "{ outers { x colour day required } }",
    "{ outers { x inner { a b } } }",
    "{ outers { x inner { a b must } } }",
    "{ outers { required inner { must } } }",
    "{ outers { x items { a b } names computed } }",
    "{ outers { __typename x y: x inner { __typename a } } }",
    "{ outers { ...F } } fragment F on Outer { x inner { a } }",
    "{ outers { x ... on Outer { colour } } }",
    "query($on: Boolean!) { outers { x inner @include(if: $on) { a } colour @skip(if: $on) } }",
    "{ outers { x x inner { a } inner { b } } }",
    "{ a: one(index: 0) { x inner { a b } } b: one(index: 1) { x inner { a b } } "
    "c: one(index: 2) { inner { must } } d: one(index: 3) { required } e: one(index: 4) { x } }",
    "{ f: one(index: 6) { x required inner { a must } } "
    "g: one(index: 7) { required inner { must } } }",
]


@pytest.mark.parametrize("document", DOCUMENTS)
@pytest.mark.parametrize("on", [True, False])
async def test_the_planned_executor_answers_as_graphql_core(document: str, on: bool) -> None:
    parsed = parse(document)  # one document, as a prepared one is: plans are kept by its nodes
    answers = []
    for executor in (None, PlannedExecutor, PlannedExecutor):  # the second one uses kept plans
        result = execute(SCHEMA, parsed, variable_values={"on": on}, executor_class=executor)
        if hasattr(result, "__await__"):
            result = await result
        answers.append((result.data, [e.formatted for e in result.errors or []]))
    assert answers[1] == answers[0]
    assert answers[2] == answers[0]


async def test_plain_selections_are_planned_and_variable_ones_are_not() -> None:
    plain = parse("{ outers { x inner { a b } } }")
    varying = parse("query($on: Boolean!) { outers { x inner @include(if: $on) { a } } }")
    PlannedExecutor._plans.clear()
    for document in (plain, varying):
        result = execute(
            SCHEMA, document, variable_values={"on": True}, executor_class=PlannedExecutor
        )
        assert not hasattr(result, "__await__")
    plans = {kept[1]: kept[2] for kept in PlannedExecutor._plans.values()}
    outers = plain.definitions[0].selection_set.selections[0]  # type: ignore[attr-defined]
    inner = outers.selection_set.selections[1]
    assert [step[0] for step in plans[outers] or ()] == ["x", "inner"]
    assert [step[0] for step in plans[inner] or ()] == ["a", "b"]
    varying_outers = varying.definitions[0].selection_set.selections[0]  # type: ignore[attr-defined]
    assert plans[varying_outers] is None
