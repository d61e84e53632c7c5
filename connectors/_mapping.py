"""Compiled field mappings: from a source's own record to canonical fields.

A mapping is compiled once per manifest. Reading a record never raises: a field whose
value cannot be translated holds a `SourceDataInvalid` instance instead, so only that
field reports an error and the rest of the record is served. A field is read from a
source path (`from`, or the short form) or computed by an expression (`expr`, see
`connectors._expressions`); either value may then go through `values` or `fields`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from connectors._expressions import ExpressionError, compile_expression, expression_roots
from connectors._manifest import FieldMap, MappingSpec
from gateway.errors import SourceDataInvalid

__all__ = ["FieldMapper", "Tables", "compile_fields", "map_record", "source_roots"]

Convert = Callable[[Any], Any]


Tables = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class FieldMapper:
    """How one canonical field is read from a source record.

    `source_roots` are the top-level source fields it reads (`None`: the whole record).
    """

    canonical: str
    source_roots: frozenset[str] | None
    path: tuple[str, ...]
    convert: Convert
    compute: Callable[[Mapping[str, Any]], Any] | None = None
    source: str = ""

    def read(self, record: Mapping[str, Any]) -> Any:
        if self.compute is not None:
            try:
                value = self.compute(record)
            except ExpressionError as exc:
                raise SourceDataInvalid(
                    f"The source's value cannot be mapped: {exc}",
                    source=self.source,
                    field=self.canonical,
                ) from None
            return None if value is None else self.convert(value)
        value = record
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


def _compile(canonical: str, spec: MappingSpec, *, source: str, tables: Tables) -> FieldMapper:
    if isinstance(spec, str):
        path = tuple(spec.split("."))
        return FieldMapper(canonical, frozenset(path[:1]), path, _identity, source=source)
    assert isinstance(spec, FieldMap)
    convert: Convert = _identity
    if spec.values is not None:
        convert = _values(spec.values, source=source, field=canonical)
    elif spec.fields is not None:
        inner = compile_fields(spec.fields, source=source, tables=tables)
        convert = _nested(tuple(inner.values()), source=source, field=canonical)
    if spec.expr is not None:
        return FieldMapper(
            canonical,
            expression_roots(spec.expr),
            (),
            convert,
            compile_expression(spec.expr, tables),
            source,
        )
    assert spec.from_ is not None
    path = tuple(spec.from_.split("."))
    return FieldMapper(canonical, frozenset(path[:1]), path, convert, source=source)


def compile_fields(
    fields: Mapping[str, MappingSpec], *, source: str, tables: Tables | None = None
) -> dict[str, FieldMapper]:
    """Compile a manifest's `fields` table (canonical name → source spec)."""
    tables = tables or {}
    return {
        name: _compile(name, spec, source=source, tables=tables) for name, spec in fields.items()
    }


def source_roots(mappers: Iterable[FieldMapper]) -> frozenset[str] | None:
    """The top-level source fields `mappers` read together (`None`: the whole record)."""
    roots: set[str] = set()
    for mapper in mappers:
        if mapper.source_roots is None:
            return None
        roots |= mapper.source_roots
    return frozenset(roots)


def map_record(mappers: Iterable[FieldMapper], record: Mapping[str, Any]) -> dict[str, Any]:
    """Translate `record` with `mappers`; a field that fails holds its error."""
    out: dict[str, Any] = {}
    for mapper in mappers:
        try:
            out[mapper.canonical] = mapper.read(record)
        except SourceDataInvalid as exc:
            out[mapper.canonical] = exc
    return out
