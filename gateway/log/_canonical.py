"""RFC 8785 (JCS) canonical JSON, fast for the shapes the gateway writes.

Every envelope, public leaf and personal part is hashed over its canonical JSON, so
this runs several times for each request. The `rfc8785` package is the reference but
pure Python; for JSON made only of objects with ASCII keys, lists, strings, integers
within JCS's range (±(2**53 - 1)), booleans and null, orjson with sorted keys writes
the same bytes: both write strings as UTF-8 with the same escapes (`\\"`, `\\\\`, `\\b`,
`\\f`, `\\n`, `\\r`, `\\t`, other controls as lowercase `\\u00xx`), integers in decimal,
and, for ASCII keys, sorting by UTF-16 code units is sorting by bytes. Anything else
(floats, non-ASCII keys, tuples, other types, lone surrogates, nesting orjson refuses)
goes to `rfc8785`, which answers it or refuses it as before. A property test holds the
two to the same bytes.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
import rfc8785

__all__ = ["canonical_json"]

_INT_MAX: Final = 2**53 - 1
_SORTED: Final = orjson.OPT_SORT_KEYS


def _plain(value: Any) -> bool:
    """Whether `value` is JSON that orjson writes exactly as RFC 8785 does."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-_INT_MAX <= value <= _INT_MAX)
    if kind is dict:
        return all(type(k) is str and k.isascii() and _plain(v) for k, v in value.items())
    if kind is list:
        return all(_plain(v) for v in value)
    return False


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical JSON of `value` (`rfc8785.dumps`'s bytes, or its error)."""
    if _plain(value):
        try:
            return orjson.dumps(value, option=_SORTED)
        except orjson.JSONEncodeError:
            pass  # a lone surrogate, or deeper than orjson goes: the reference decides
    return bytes(rfc8785.dumps(value))
