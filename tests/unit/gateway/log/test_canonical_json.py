"""`canonical_json` writes exactly the bytes of the `rfc8785` reference, or fails as it does."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.log import canonical_json

# Any text: ASCII and not, control characters, lone surrogates (which neither writes).
TEXT = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)  # within and beyond JCS's range
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(
            TEXT | st.sampled_from(["a", "B", "_", "é", "\U0001f600", "\ufb01"]), inner, max_size=4
        )
    ),
    max_leaves=20,
)


def _reference(value: Any) -> bytes | type[Exception]:
    try:
        return bytes(rfc8785.dumps(value))
    except Exception as exc:  # the reference's refusal, by its type
        return type(exc)


def _ours(value: Any) -> bytes | type[Exception]:
    try:
        return canonical_json(value)
    except Exception as exc:
        return type(exc)


@settings(max_examples=600, deadline=None)
@given(JSON)
def test_the_same_bytes_or_the_same_refusal_as_the_reference(value: Any) -> None:
    assert _ours(value) == _reference(value)


@pytest.mark.parametrize(
    "value",
    [
        {"z": 1, "a": {"y": [True, None, '\x00\x1f\x7f\u2028"\\/'], "b": -(2**53 - 1)}},
        {"\u20ac": 1, "\r": 2, "\U0001f600": 3, "\ufb33": 4, "1": 5},  # RFC 8785 3.2.3 keys
        [2**53 - 1, -(2**53 - 1), 0, -0],
        {"k": 2**53},  # beyond the range: refused like the reference
        {"k": 1.5e300, "n": -0.0},  # floats: written by the reference
        ("tuple", 1),
        {"deep": [[[[[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]]]]]},
        "\ud800",  # a lone surrogate
    ],
)
def test_edge_cases(value: Any) -> None:
    assert _ours(value) == _reference(value)
