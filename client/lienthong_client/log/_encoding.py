"""Binary values in the log's JSON and URLs: base64url without padding, read either way.

The gateway writes a hash or a signature in JSON, or in a URL's query, as base64url
without padding (RFC 4648 section 5), as it writes its other base64url values (JWS
parts, search cursors, the `req` claim): it goes into a URL as it stands. The C2SP
texts (checkpoints, signed notes, c2sp.org/tlog-proof files) keep the standard base64
their specifications require.

Reading, both alphabets are accepted, padded or not: receipts issued before receipts
took base64url (version 1) carry standard base64, and a `+` pasted into a query string
arrives as a space.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final

__all__ = ["b64url", "read_b64", "read_leaf_hash"]

_EITHER: Final = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


def b64url(data: bytes) -> str:
    """`data` in base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def read_b64(text: str) -> bytes:
    """Standard base64 or base64url, padded or not; `ValueError` if it is neither."""
    if not _EITHER.fullmatch(text):
        raise ValueError("not base64")
    bare = text.rstrip("=").translate(str.maketrans("-_", "+/"))
    if len(bare) % 4 == 1 or (text.endswith("=") and len(text) % 4):
        raise ValueError("not base64")
    try:
        return base64.b64decode(bare + "=" * (-len(bare) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None


def read_leaf_hash(text: str) -> bytes:
    """A leaf hash as a receipt or a URL gives it (base64url, or standard base64)."""
    try:
        digest = read_b64(text.strip())
    except ValueError:
        digest = b""
    if len(digest) != 32:
        raise ValueError("a leaf hash is 32 bytes in base64url (or standard base64)")
    return digest
