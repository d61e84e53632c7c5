"""Build canonical objects from canonical records, checking each value's type.

A connector hands over plain values in canonical field names. Each value is checked
against the field's type here, once, so that a source sending a wrong type yields
`SOURCE_DATA_INVALID` on that field alone, and no source value ever appears in an
error message. Exceptions already in a record pass through to their field.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from enum import Enum
from functools import cache
from typing import Any, cast

from strawberry.types.base import StrawberryList, StrawberryOptional, get_object_definition
from strawberry.types.enum import StrawberryEnumDefinition
from strawberry.utils.str_converters import to_camel_case

from gateway.errors import SourceDataInvalid

__all__ = ["build", "canonical_tree", "warm_converters"]

Convert = Callable[[Any, str], Any]


def _bad(source: str, what: str) -> SourceDataInvalid:
    return SourceDataInvalid(f"The source gave a value that is not {what}.", source=source)


def _str(value: Any, source: str) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return _bad(source, "text")


def _int(value: Any, source: str) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31:
        return value
    return _bad(source, "a 32-bit integer")


def _float(value: Any, source: str) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return _bad(source, "a number")


def _bool(value: Any, source: str) -> Any:
    return value if isinstance(value, bool) else _bad(source, "true or false")


def _decimal(value: Any, source: str) -> Any:
    if isinstance(value, int | str | Decimal) and not isinstance(value, bool):
        try:
            return Decimal(value)
        except InvalidOperation:
            pass
    return _bad(source, "a decimal number")


def _date(value: Any, source: str) -> Any:
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            pass
    return _bad(source, "an ISO date")


def _enum(enum: type[Enum]) -> Convert:
    members = {m.value: m for m in enum}

    def convert(value: Any, source: str) -> Any:
        if isinstance(value, enum):
            return value
        member = members.get(value) if isinstance(value, str) else None
        return member if member is not None else _bad(source, f"one of {enum.__name__}")

    return convert


def _list(item: Convert) -> Convert:
    def convert(value: Any, source: str) -> Any:
        if not isinstance(value, list):
            return _bad(source, "a list")
        out = [item(v, source) for v in value]
        # A list item may not be null: one bad item makes the list invalid.
        if any(v is None or isinstance(v, Exception) for v in out):
            return _bad(source, "a list of valid items")
        return out

    return convert


_SCALARS: dict[Any, Convert] = {
    str: _str,
    int: _int,
    float: _float,
    bool: _bool,
    Decimal: _decimal,
    datetime.date: _date,
}


def _converter(annotation: Any) -> Convert:
    if isinstance(annotation, StrawberryOptional):
        return _converter(annotation.of_type)
    if isinstance(annotation, StrawberryList):
        return _list(_converter(annotation.of_type))
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    if isinstance(annotation, StrawberryEnumDefinition):
        return _enum(cast("type[Enum]", annotation.wrapped_cls))
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return _enum(annotation)
    if get_object_definition(annotation) is not None:
        return _object(annotation)
    raise TypeError(f"no converter for {annotation!r}")


def _object(cls: type) -> Convert:
    def convert(value: Any, source: str) -> Any:
        if not isinstance(value, dict):  # records are JSON objects; faster than Mapping
            return _bad(source, "an object")
        return build(cls, value, source=source)

    return convert


@cache
def _converters(cls: type) -> tuple[tuple[str, str, Convert], ...]:
    definition = get_object_definition(cls, strict=True)
    return tuple(
        (f.python_name, f.graphql_name or to_camel_case(f.python_name), _converter(f.type))
        for f in definition.fields
    )


@cache
def _by_name(cls: type) -> tuple[dict[str, None], dict[str, tuple[str, Convert]]]:
    """Every field of `cls` unset (`None`, by Python name), and each field's Python name
    and converter by canonical name."""
    converters = _converters(cls)
    return (
        {python_name: None for python_name, _, _ in converters},
        {name: (python_name, convert) for python_name, name, convert in converters},
    )


def build(
    cls: type, record: Mapping[str, Any], *, source: str | Mapping[str, str], **given: Any
) -> Any:
    """An instance of the strawberry type `cls` from a canonical record.

    `source` names the connector the values came from, for error details: one name,
    or one per top-level field. `given` sets fields by Python name without conversion
    (the echoed identifier). Fields absent from both are `None`; names of the record
    that are not fields of `cls` are ignored.
    """
    unset, fields = _by_name(cls)
    kwargs: dict[str, Any] = dict(unset)
    for name, value in record.items():
        field = fields.get(name)
        if field is None:
            continue
        python_name, convert = field
        if value is None or isinstance(value, Exception):
            kwargs[python_name] = value
        else:
            origin = source if isinstance(source, str) else source.get(name, "")
            kwargs[python_name] = convert(value, origin)
    kwargs.update(given)
    return cls(**kwargs)


def warm_converters(cls: type) -> None:
    """Build the converters of `cls` now rather than on the first request."""
    _by_name(cls)


def canonical_tree(cls: type) -> dict[str, Any]:
    """Canonical field names of `cls`, with the sub-tree of each object-typed field."""
    tree: dict[str, Any] = {}
    definition = get_object_definition(cls, strict=True)
    for f in definition.fields:
        inner: Any = f.type
        while isinstance(inner, StrawberryOptional | StrawberryList):
            inner = inner.of_type
        name = f.graphql_name or to_camel_case(f.python_name)
        tree[name] = canonical_tree(inner) if get_object_definition(inner) is not None else None
    return tree
