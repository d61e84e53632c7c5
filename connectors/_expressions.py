"""The mapping language: JMESPath over a source record, with the gateway's functions.

Agency administrators write these, so the language is closed: JMESPath has no `eval`,
no assignment and no user-defined functions, its expressions always end (no
recursion), and the only functions are JMESPath's own and the gateway's few below. An
expression is parsed, and its function names checked, when the manifest loads; a
manifest that calls an unknown function does not load.

The gateway's functions (null in, null out, unless said otherwise):

- `concat(a, b, ...)`: the non-null arguments joined as text; null if all are null.
- `split(text, separator)`: a list of the parts.
- `to_int(value)`: an integer from an integer or from digits (`"0101"` is 101).
- `to_string(value)`: text; integral numbers without a decimal point.
- `date(text, format)`: an ISO date (`YYYY-MM-DD`) from text in a `strptime` format.
- `lookup(value, 'table')`: the value's entry in a table of the manifest's `tables`.
- `default(value, fallback)`: `fallback` when `value` is null.
- `as_list(value)`: a list: the value itself if it is one, else a list holding it.

A value a function cannot convert makes that one field `SOURCE_DATA_INVALID`.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from typing import Any, Final

import jmespath
from jmespath import exceptions as jmespath_errors
from jmespath import functions

__all__ = [
    "FUNCTIONS",
    "ExpressionError",
    "check_expression",
    "compile_expression",
    "descended_roots",
    "expression_roots",
    "lookup_tables",
]

_OURS: Final = frozenset(
    {"concat", "split", "to_int", "to_string", "date", "lookup", "default", "as_list"}
)
FUNCTIONS: Final = (
    frozenset(
        name.removeprefix("_func_")
        for name in dir(functions.Functions)
        if name.startswith("_func_")
    )
    | _OURS
)
"""Every function an expression may call."""


class ExpressionError(ValueError):
    """A value an expression's function could not convert (reported on the field)."""


class _Functions(functions.Functions):
    """JMESPath's functions and the gateway's; `lookup` reads the manifest's tables."""

    def __init__(self, tables: Mapping[str, Mapping[str, Any]]) -> None:
        super().__init__()
        self._tables = tables

    @functions.signature({"types": [], "variadic": True})
    def _func_concat(self, *parts: Any) -> str | None:
        present = [p for p in parts if p is not None]
        if not present:
            return None
        return _bounded("".join(_text(p) for p in present))

    @functions.signature({"types": ["string", "null"]}, {"types": ["string"]})
    def _func_split(self, text: str | None, separator: str) -> list[str] | None:
        if text is None:
            return None
        if not separator:
            raise ExpressionError("split() needs a separator that is not empty")
        return text.split(separator, 10_000)

    @functions.signature({"types": ["string", "number", "null"]})
    def _func_to_int(self, value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool):
            raise ExpressionError("to_int() cannot read a boolean")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
            return int(value.strip())
        raise ExpressionError("to_int() was given a value that is not a whole number")

    @functions.signature({"types": []})
    def _func_to_string(self, value: Any) -> str | None:
        return None if value is None else _text(value)

    @functions.signature({"types": ["string", "null"]}, {"types": ["string"]})
    def _func_date(self, text: str | None, layout: str) -> str | None:
        if text is None:
            return None
        try:
            return datetime.datetime.strptime(text, layout).date().isoformat()
        except ValueError:
            raise ExpressionError(f"date() could not read the date with {layout!r}") from None

    @functions.signature({"types": []}, {"types": ["string"]})
    def _func_lookup(self, value: Any, table: str) -> Any:
        if value is None:
            return None
        entries = self._tables.get(table)
        if entries is None:
            raise ExpressionError(f"lookup() names no table {table!r}")
        key = value if isinstance(value, str) else _text(value)
        if key not in entries:
            raise ExpressionError("the source gave a value this field does not know")
        return entries[key]

    @functions.signature({"types": []}, {"types": []})
    def _func_default(self, value: Any, fallback: Any) -> Any:
        return fallback if value is None else value

    @functions.signature({"types": []})
    def _func_as_list(self, value: Any) -> list[Any] | None:
        if value is None:
            return None
        return value if isinstance(value, list) else [value]


def _bounded(text: str) -> str:
    if len(text) > MAX_TEXT:
        raise ExpressionError(f"the text made is longer than {MAX_TEXT} characters")
    return text


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    raise ExpressionError("only text and numbers can be made text")


def _nodes(node: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield node
    for child in node.get("children", ()):
        if isinstance(child, Mapping):
            yield from _nodes(child)


MAX_NODES: Final = 200
"""The most parts (fields, functions, literals, ...) one expression may have."""
MAX_STAGES: Final = 6
"""The most pipes, projections and flattens one expression may chain: each may multiply
what the next one works on, so their number bounds the work an expression can cause."""
MAX_TEXT: Final = 65_536
"""The longest text a function may make, in characters."""
_STAGES: Final = frozenset(
    {"pipe", "projection", "value_projection", "filter_projection", "flatten"}
)


@lru_cache(maxsize=1024)
def _parse(text: str) -> Any:
    try:
        return jmespath.compile(text)
    except jmespath_errors.JMESPathError as exc:
        raise ValueError(f"the expression does not parse: {exc}") from None
    except RecursionError:
        raise ValueError("the expression is nested too deeply") from None


def check_expression(text: str) -> None:
    """Raise `ValueError` when `text` does not parse, calls an unknown function, or is
    larger than an expression may be (`MAX_NODES`, `MAX_STAGES`)."""
    nodes = list(_nodes(_parse(text).parsed))
    if len(nodes) > MAX_NODES:
        raise ValueError(f"the expression has {len(nodes)} parts; at most {MAX_NODES}")
    stages = sum(1 for node in nodes if node.get("type") in _STAGES)
    if stages > MAX_STAGES:
        raise ValueError(
            f"the expression chains {stages} pipes, projections and flattens; at most {MAX_STAGES}"
        )
    for node in nodes:
        if node.get("type") == "field" and node.get("value") in ("null", "true", "false"):
            word = node["value"]
            raise ValueError(
                f"`{word}` here reads a source field named {word}; "
                f"the value is written in backquotes: `{word}`"
            )
        if node.get("type") != "function_expression":
            continue
        name, args = node.get("value"), node.get("children", [])
        if name not in FUNCTIONS:
            raise ValueError(
                f"the expression calls an unknown function {name}(); "
                f"the functions are {', '.join(sorted(_OURS))} and JMESPath's own"
            )
        if name == "lookup" and (len(args) != 2 or args[1].get("type") != "literal"):
            raise ValueError("lookup() names its table with a literal: lookup(x, 'name')")


def lookup_tables(text: str) -> frozenset[str]:
    """The tables `text` reads with `lookup()`, to check against the manifest's."""
    names = set()
    for node in _nodes(_parse(text).parsed):
        if node.get("type") == "function_expression" and node.get("value") == "lookup":
            names.add(str(node["children"][1].get("value")))
    return frozenset(names)


# Node types whose first child is read in the current context and the others in
# each element (or result) of it.
_NARROWING: Final = frozenset(
    {
        "subexpression",
        "index_expression",
        "projection",
        "value_projection",
        "filter_projection",
        "pipe",
    }
)


def expression_roots(text: str) -> frozenset[str] | None:
    """The top-level source fields `text` reads, or `None` when it reads the whole record.

    A source that selects fields is asked for these only.
    """
    roots: set[str] = set()

    def walk(node: Mapping[str, Any]) -> bool:
        kind = node.get("type")
        children = [c for c in node.get("children", ()) if isinstance(c, Mapping)]
        if kind == "field":
            roots.add(str(node["value"]))
            return True
        if kind in ("current", "identity"):
            return False
        if kind in _NARROWING:
            return walk(children[0]) if children else True
        if kind == "expref":  # evaluated on each element by sort_by(), map(), ...
            return True
        return all(walk(child) for child in children)

    complete = walk(_parse(text).parsed)
    return frozenset(roots) if complete else None


def descended_roots(text: str) -> frozenset[str]:
    """The top-level source fields `text` reads into (`a.b`, `a[0]`, `a[*]`, `a[]`, or
    handed to a function with `&expr`): objects or lists, not plain values."""
    found: set[str] = set()

    def leftmost(node: Mapping[str, Any]) -> None:
        kind = node.get("type")
        children = [c for c in node.get("children", ()) if isinstance(c, Mapping)]
        if kind == "field":
            found.add(str(node["value"]))
        elif children and kind in _NARROWING | {"flatten"}:
            leftmost(children[0])
        elif children:
            walk(node)

    def walk(node: Mapping[str, Any]) -> None:
        kind = node.get("type")
        children = [c for c in node.get("children", ()) if isinstance(c, Mapping)]
        if kind in _NARROWING | {"flatten"}:
            if children:
                leftmost(children[0])
            return
        if kind == "function_expression" and any(c.get("type") == "expref" for c in children):
            for child in children:
                if child.get("type") != "expref":
                    leftmost(child)
            return
        for child in children:
            walk(child)

    walk(_parse(text).parsed)
    return frozenset(found)


def compile_expression(
    text: str, tables: Mapping[str, Mapping[str, Any]]
) -> Callable[[Mapping[str, Any]], Any]:
    """A function of a source record that evaluates `text` against it."""
    parsed = _parse(text)
    options = jmespath.Options(custom_functions=_Functions(tables))

    def evaluate(record: Mapping[str, Any]) -> Any:
        try:
            return parsed.search(record, options=options)
        except ExpressionError:
            raise
        except jmespath_errors.JMESPathError as exc:
            raise ExpressionError(str(exc).splitlines()[0]) from None
        except (ValueError, OverflowError, RecursionError, TypeError) as exc:
            # What a source's value made a function fail on: this field only.
            raise ExpressionError(f"the value cannot be converted ({type(exc).__name__})") from None

    return evaluate
