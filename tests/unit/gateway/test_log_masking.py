"""Masking identifier-shaped digit runs in log events."""

from typing import Any

import pytest

from gateway.logconfig import mask_identifiers, redact


def _mask(**event: Any) -> dict[str, Any]:
    return dict(mask_identifiers(None, "info", dict(event)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id 001099012345 asked", "id ************ asked"),
        ("cmnd=123456789", "cmnd=*********"),
        ("/v1/cong-dan/001099012345?truong=ho_ten", "/v1/cong-dan/************?truong=ho_ten"),
        ("001099012345,079301000002", "************,************"),
        ("a001099012345b", "a************b"),
    ],
)
def test_twelve_and_nine_digit_runs_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "tax code 0100109106",  # 10 digits: an enterprise code is public
        "branch 0100109106-001",
        "phone 0912345678",
        "13 digits 1234567890123",
        "11 digits 12345678901",
        "8 digits 12345678",
        "no digits at all",
    ],
)
def test_other_digit_runs_are_untouched(text: str) -> None:
    assert redact(text) == text


def test_event_strings_are_masked() -> None:
    event = _mask(event="lookup 001099012345", path="/v1/cong-dan/001099012345")
    assert event == {"event": "lookup ************", "path": "/v1/cong-dan/************"}


def test_nested_dicts_and_lists_are_masked() -> None:
    event = _mask(detail={"ids": ["001099012345", "0100109106"], "inner": {"old": "123456789"}})
    assert event["detail"] == {
        "ids": ["************", "0100109106"],
        "inner": {"old": "*********"},
    }


def test_tuples_are_masked() -> None:
    assert _mask(keys=("001099012345",))["keys"] == ["************"]


def test_integers_shaped_like_ids_are_masked() -> None:
    event = _mask(subject=791234567890, old=123456789, count=42, tax=1001091060)
    assert event["subject"] == "************"
    assert event["old"] == "*********"
    assert event["count"] == 42
    assert event["tax"] == 1001091060


def test_other_values_are_kept() -> None:
    event = _mask(ok=True, ratio=0.5, nothing=None)
    assert event == {"ok": True, "ratio": 0.5, "nothing": None}


class _Text(str):
    """A string of another type (as libraries pass them): masked all the same."""


def test_strings_of_other_types_are_masked() -> None:
    event = _mask(path=_Text("/v1/cong-dan/001099012345"), plain="no run", route="/graphql")
    assert event == {"path": "/v1/cong-dan/************", "plain": "no run", "route": "/graphql"}
    assert type(event["path"]) is str


def test_strings_of_other_types_come_back_as_str() -> None:
    assert type(redact(_Text("no run"))) is str
