"""Compiled field mappings: from a source's own record to canonical fields.

A mapping is compiled once per manifest. Reading a record never raises: a field whose
value cannot be translated holds a `SourceDataInvalid` instance instead, so only that
field reports an error and the rest of the record is served.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from connectors._manifest import FieldMap, MappingSpec
from gateway.errors import SourceDataInvalid

__all__ = ["FieldMapper", "compile_fields", "map_record"]

Convert = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class FieldMapper:
    """How one canonical field is read from a source record."""

    canonical: str
    source_root: str
    path: tuple[str, ...]
    convert: Convert

    def read(self, record: Mapping[str, Any]) -> Any:
        value: Any = record
        for part in self.path:
            if not isinstance(value, dict):  # JSON objects; faster than the Mapping ABC
                return None
            value = value.get(part)
        return None if value is None else self.convert(value)


def _identity(value: Any) -> Any:
    return value


def _values(table: Mapping[str, Any], *, source: str, field: str) -> Convert:
    def convert(value: Any) -> Any:
        key = value if isinstance(value, str) else str(value)
        try:
            return table[key]
        except KeyError:
            raise SourceDataInvalid(
                "The source gave a value this field does not know.", source=source, field=field
            ) from None

    return convert


def _nested(mappers: tuple[FieldMapper, ...], *, source: str, field: str) -> Convert:
    def one(item: Any) -> dict[str, Any]:
        if not isinstance(item, dict):
            raise SourceDataInvalid("Expected an object.", source=source, field=field)
        return map_record(mappers, item)

    def convert(value: Any) -> Any:
        if isinstance(value, list):
            return [one(item) for item in value]
        return one(value)

    return convert


def _compile(canonical: str, spec: MappingSpec, *, source: str) -> FieldMapper:
    if isinstance(spec, str):
        return FieldMapper(canonical, spec.split(".")[0], tuple(spec.split(".")), _identity)
    assert isinstance(spec, FieldMap)
    path = tuple(spec.from_.split("."))
    convert: Convert = _identity
    if spec.values is not None:
        convert = _values(spec.values, source=source, field=canonical)
    elif spec.fields is not None:
        inner = compile_fields(spec.fields, source=source)
        convert = _nested(tuple(inner.values()), source=source, field=canonical)
    return FieldMapper(canonical, path[0], path, convert)


def compile_fields(fields: Mapping[str, MappingSpec], *, source: str) -> dict[str, FieldMapper]:
    """Compile a manifest's `fields` table (canonical name → source spec)."""
    return {name: _compile(name, spec, source=source) for name, spec in fields.items()}


def map_record(mappers: Iterable[FieldMapper], record: Mapping[str, Any]) -> dict[str, Any]:
    """Translate `record` with `mappers`; a field that fails holds its error."""
    out: dict[str, Any] = {}
    for mapper in mappers:
        try:
            out[mapper.canonical] = mapper.read(record)
        except SourceDataInvalid as exc:
            out[mapper.canonical] = exc
    return out
