"""The outcome an access record gets: what makes a request a procedure request or not."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from gateway.records import is_procedure_request
from gateway.web._graphql import _outcome

LOOKUP = "{ __schema { queryType { name } } }"
READ = '{ citizen(personalId: "079203001234") { fullName } }'


def _ctx(*, decisions: Any = (), provenance: Any = None, actions: Any = ()) -> Any:
    return SimpleNamespace(
        access=SimpleNamespace(decisions=list(decisions)),
        provenance=provenance or {},
        actions=list(actions),
    )


def _decision(code: str) -> Any:
    return SimpleNamespace(code=code)


@pytest.mark.parametrize(
    ("ctx", "request_error", "query", "outcome"),
    [
        (_ctx(), False, LOOKUP, "introspection"),
        (_ctx(), True, LOOKUP, "introspection"),  # refused: introspection off, too deep
        (_ctx(), True, READ, "invalid_request"),
        (_ctx(), True, "{ nope", "invalid_request"),
        (_ctx(provenance={"citizen.fullName": {}}), False, READ, "served"),
        (_ctx(decisions=[_decision("CONSENT_REQUIRED")]), False, READ, "denied"),
        (_ctx(decisions=[_decision("ALLOWED_BY_LAW")]), False, READ, "no_data"),
        (_ctx(), False, '{ consent(id: "c") { id } }', "no_data"),
    ],
)
def test_the_outcome_of_a_request(ctx: Any, request_error: bool, query: str, outcome: str) -> None:
    assert _outcome(ctx, request_error, query, None) == outcome


@pytest.mark.parametrize(
    ("outcome", "counted"),
    [
        ("served", True),
        ("denied", True),
        ("no_data", True),
        ("invalid_request", True),
        ("introspection", False),
        ("rejected:TOKEN_REPLAYED", False),
    ],
)
def test_which_outcomes_are_procedure_requests(outcome: str, counted: bool) -> None:
    assert is_procedure_request(outcome) is counted
