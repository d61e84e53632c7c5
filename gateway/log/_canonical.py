"""RFC 8785 (JCS) canonical JSON, fast for the shapes the gateway writes.

Every envelope, public leaf and personal part is hashed over its canonical JSON, so
this runs several times for each request. The `rfc8785` package is the reference but
pure Python; for JSON made only of objects with ASCII keys, lists (or tuples), strings,
integers within JCS's range (±(2**53 - 1)), booleans and null, orjson with sorted keys writes
the same bytes: both write strings as UTF-8 with the same escapes (`\\"`, `\\\\`, `\\b`,
`\\f`, `\\n`, `\\r`, `\\t`, other controls as lowercase `\\u00xx`), integers in decimal,
and, for ASCII keys, sorting by UTF-16 code units is sorting by bytes. Anything else
(floats, non-ASCII keys, other types, lone surrogates, nesting orjson refuses)
goes to `rfc8785`, which answers it or refuses it as before. A property test holds the
two to the same bytes.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
import rfc8785

__all__ = ["canonical_json", "plain_canonical_json"]

_MOST_ITEMS: Final = 1_000_000
"""Values looked at before giving up (a structure that refers to itself never ends)."""
_SORTED: Final = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER


def _plain(value: Any) -> bool:
    """Whether `value` is JSON that orjson writes exactly as RFC 8785 does (integers
    beyond JCS's range are left to `OPT_STRICT_INTEGER`, which refuses them)."""
    # A loop over a stack, not recursion: this runs over every envelope and personal part.
    stack = [value]
    pop, push, extend = stack.pop, stack.append, stack.extend
    seen = 0
    while stack:
        seen += 1
        if seen > _MOST_ITEMS:
            return False
        item = pop()
        kind = type(item)
        if kind is str or kind is int or kind is bool or item is None:
            continue
        if kind is dict:
            for key, inner in item.items():
                if type(key) is not str or not key.isascii():
                    return False
                push(inner)
            continue
        if kind is list or kind is tuple:  # both are arrays, to orjson and to rfc8785
            extend(item)
            continue
        return False
    return True


def plain_canonical_json(value: Any) -> bytes | None:
    """`canonical_json(value)` when orjson can write it, else `None` (nothing raised)."""
    if _plain(value):
        try:
            return orjson.dumps(value, option=_SORTED)
        except orjson.JSONEncodeError:
            pass  # an integer beyond 2**53 - 1, a lone surrogate, or deeper than orjson
            # goes: the reference decides
    return None


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical JSON of `value` (`rfc8785.dumps`'s bytes, or its error)."""
    fast = plain_canonical_json(value)
    return fast if fast is not None else bytes(rfc8785.dumps(value))
