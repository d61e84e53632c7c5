"""The X-Road style headers that tell a source who asks and why.

Header values are bytes that HTTP libraries send as ASCII or Latin-1, and a CR LF in
one ends it. Officers' names and case numbers are Vietnamese text, so every value is
percent-encoded as UTF-8, as X-Road encodes its identifiers: a source reads it back
with any percent-decoder (`urllib.parse.unquote`, `decodeURIComponent`, or a form
decoder such as Java's `URLDecoder`: `+` is sent as `%2B`). ASCII identifiers go out
unchanged. Every connector kind that speaks HTTP sends these, the
`rest` kind today and an `xroad` kind later, through `purpose_headers`.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import quote

from connectors.base import FetchContext

__all__ = ["header_value", "purpose_headers"]

_SAFE: Final = "/:@!$&'()*,;="
"""Kept as they are, beside letters, digits and `-._~`: what a URI path may hold
unescaped, so identifiers such as `VN/GOV/BTP/HTTP` stay readable; `%` and `+` are not
among them, so every decoder reads the same text."""


def header_value(text: str) -> str:
    """`text` as a header value: UTF-8, percent-encoded outside the URI path characters."""
    return quote(text, safe=_SAFE, encoding="utf-8", errors="strict")


def purpose_headers(ctx: FetchContext) -> dict[str, str]:
    """`X-Road-Id`, and the client, officer and case when known, each percent-encoded."""
    headers = {"X-Road-Id": header_value(ctx.request_id)}
    if ctx.client_id:
        headers["X-Road-Client"] = header_value(ctx.client_id)
    if ctx.purpose is not None:
        headers["X-Road-UserId"] = header_value(ctx.purpose.officer)
        headers["X-Road-Issue"] = header_value(ctx.purpose.case)
    return headers
