"""Choosing the response media type of `/graphql` from the Accept header."""

import pytest

from gateway.web._graphql import GRAPHQL_RESPONSE, negotiate

JSON = "application/json"


@pytest.mark.parametrize("accept", [None, ""])
def test_missing_header_means_json(accept: str | None) -> None:
    assert negotiate(accept) == JSON


@pytest.mark.parametrize("accept", ["*/*", "application/*", "*/*;q=0.5"])
def test_wildcards_mean_json(accept: str) -> None:
    assert negotiate(accept) == JSON


def test_graphql_response_type_when_asked() -> None:
    assert negotiate(GRAPHQL_RESPONSE) == GRAPHQL_RESPONSE


def test_json_when_asked() -> None:
    assert negotiate("application/json") == JSON


def test_both_at_equal_quality_prefer_graphql_response() -> None:
    assert negotiate(f"application/json, {GRAPHQL_RESPONSE}") == GRAPHQL_RESPONSE
    assert negotiate(f"{GRAPHQL_RESPONSE}, application/json") == GRAPHQL_RESPONSE


def test_higher_quality_wins() -> None:
    assert negotiate(f"{GRAPHQL_RESPONSE};q=0.5, application/json;q=0.9") == JSON
    assert negotiate(f"{GRAPHQL_RESPONSE};q=0.9, application/json;q=0.5") == GRAPHQL_RESPONSE


def test_explicit_type_beats_wildcard_at_equal_quality() -> None:
    assert negotiate(f"*/*, {GRAPHQL_RESPONSE}") == GRAPHQL_RESPONSE


def test_wildcard_with_higher_quality_beats_a_named_type() -> None:
    assert negotiate(f"{GRAPHQL_RESPONSE};q=0.1, */*;q=0.8") == JSON


def test_q_zero_excludes_a_type() -> None:
    assert negotiate(f"{GRAPHQL_RESPONSE};q=0, application/json") == JSON
    assert negotiate("application/json;q=0") is None


def test_malformed_q_excludes_a_type() -> None:
    assert negotiate(f"{GRAPHQL_RESPONSE};q=high, application/json;q=0.1") == JSON


@pytest.mark.parametrize("accept", ["text/html", "application/xml, text/plain;q=0.9", "image/*"])
def test_nothing_acceptable_is_none(accept: str) -> None:
    assert negotiate(accept) is None


def test_case_spaces_and_other_parameters_are_tolerated() -> None:
    assert (
        negotiate(" Application/GraphQL-Response+JSON ; charset=utf-8 ; q=1 ") == GRAPHQL_RESPONSE
    )


def test_browser_accept_header_gets_json() -> None:
    accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert negotiate(accept) == JSON
