"""The error tree: stable codes, one place deciding what is retriable, and its drawing."""

import inspect
import re

import pytest

from gateway import errors
from gateway.errors import (
    GatewayError,
    MethodNotAllowed,
    NotFound,
    RateLimited,
    SourceError,
    SourceRejected,
    SourceUnavailable,
    classify_status,
)

CLASSES = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if cls.__module__ == errors.__name__
]
# One line of the drawing: indentation, class name, (CODE[, status]).
TREE_LINE = re.compile(
    r"^(?P<indent>[│├└─\s]*)(?P<name>[A-Z]\w+) \((?P<code>[A-Z_]+)(?:, (?P<status>\d{3}))?\)"
)


def _tree() -> list[tuple[int, str, str, int | None]]:
    """The drawing in the module docstring as (depth, class name, code, status)."""
    assert errors.__doc__ is not None
    drawing = errors.__doc__.split("```")[1]
    rows = []
    for line in drawing.splitlines():
        match = TREE_LINE.match(line)
        if match:
            depth = len(match["indent"]) // 4
            status = int(match["status"]) if match["status"] else None
            rows.append((depth, match["name"], match["code"], status))
    return rows


def _error(cls: type[GatewayError]) -> GatewayError:
    if issubclass(cls, SourceError):
        return cls(source="population")
    if issubclass(cls, MethodNotAllowed):
        return cls(allow="POST")
    if issubclass(cls, RateLimited):
        return cls(retry_after=1)
    return cls()


def test_every_class_is_a_gateway_error() -> None:
    assert all(issubclass(cls, GatewayError) for cls in CLASSES)


def test_codes_are_unique() -> None:
    codes = [cls.code for cls in CLASSES]
    assert len(codes) == len(set(codes))


def test_codes_are_upper_snake_case() -> None:
    assert all(re.fullmatch(r"[A-Z]+(_[A-Z]+)*", cls.code) for cls in CLASSES)


def test_everything_public_is_exported() -> None:
    assert {cls.__name__ for cls in CLASSES} | {"classify_status"} == set(errors.__all__)


def test_drawing_names_every_class() -> None:
    assert {name for _, name, _, _ in _tree()} == {cls.__name__ for cls in CLASSES}


def test_drawing_gives_each_class_its_code() -> None:
    assert {name: code for _, name, code, _ in _tree()} == {c.__name__: c.code for c in CLASSES}


def test_drawing_gives_the_statuses_it_names() -> None:
    for _, name, _, status in _tree():
        if status is not None:
            assert getattr(errors, name).http_status == status, name


def test_drawing_nests_classes_under_their_parents() -> None:
    parents: list[str] = []
    for depth, name, _, _ in _tree():
        del parents[depth:]
        if parents:
            assert getattr(errors, name).__bases__ == (getattr(errors, parents[-1]),), name
        parents.append(name)


@pytest.mark.parametrize("status", [200, 201, 204, 301, 304, 404])
def test_usable_statuses_are_no_error(status: int) -> None:
    assert classify_status(status, source="population") is None


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_overload_and_server_errors_are_retriable(status: int) -> None:
    error = classify_status(status, source="population")
    assert isinstance(error, SourceUnavailable)
    assert error.retriable
    assert error.detail == {"source": "population", "status": status}


@pytest.mark.parametrize("status", [400, 401, 403, 405, 409, 410, 422])
def test_other_client_errors_are_fatal(status: int) -> None:
    error = classify_status(status, source="population")
    assert isinstance(error, SourceRejected)
    assert not error.retriable


def test_classify_status_carries_extra_detail() -> None:
    error = classify_status(503, source="population", detail={"route": "batch"})
    assert error is not None
    assert error.detail == {"source": "population", "status": 503, "route": "batch"}


def test_retriable_only_for_unavailable_and_timeout() -> None:
    retriable = {cls.__name__ for cls in CLASSES if getattr(cls, "retriable", False)}
    assert retriable == {"SourceUnavailable", "SourceTimeout"}


def test_extensions_carry_code_and_detail() -> None:
    error = NotFound("No Citizen record has this identifier.", kind="Citizen")
    assert error.extensions == {"code": "NOT_FOUND", "kind": "Citizen"}


def test_to_body_is_the_rest_shape() -> None:
    error = NotFound("No Citizen record has this identifier.", kind="Citizen")
    assert error.to_body() == {
        "code": "NOT_FOUND",
        "message": "No Citizen record has this identifier.",
        "detail": {"kind": "Citizen"},
    }


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_default_message_is_used_without_one(cls: type[GatewayError]) -> None:
    error = _error(cls)
    assert error.message == cls.default_message
    assert str(error) == cls.default_message
    assert error.to_body()["code"] == cls.code


def test_source_errors_name_their_source() -> None:
    error = SourceRejected(source="population", status=400)
    assert error.source == "population"
    assert error.extensions == {"code": "SOURCE_REJECTED", "source": "population", "status": 400}


def test_method_not_allowed_keeps_allow() -> None:
    assert MethodNotAllowed(allow="GET, POST").allow == "GET, POST"


def test_repr_shows_code_and_message() -> None:
    assert repr(NotFound()) == "NotFound(code='NOT_FOUND', message='No such record.')"
