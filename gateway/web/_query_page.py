"""The query page (GraphiQL) for demo and development, served with no external asset.

Government networks are often closed, so every script, style and font comes from the
gateway itself; the Content-Security-Policy forbids loading anything from elsewhere.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse

__all__ = ["CSP", "STATIC_DIR", "QueryPage"]

STATIC_DIR = Path(__file__).with_name("static")

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "font-src 'self' data:",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

_PAGE = """<!doctype html>
<html lang="vi">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Gateway query page</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{static}/graphiql/graphiql.min.css">
<link rel="stylesheet" href="{static}/query-page.css">
</head>
<body data-endpoint="{endpoint}" data-default-query="{query}" data-demo-tokens="{demo}">
{purpose}<div id="graphiql">Loading the query page…</div>
<script src="{static}/graphiql/react.production.min.js"></script>
<script src="{static}/graphiql/react-dom.production.min.js"></script>
<script src="{static}/graphiql/graphiql.min.js"></script>
<script src="{static}/query-page.js"></script>
</body>
</html>
"""


_PURPOSE = """<form id="purpose" class="purpose" aria-label="Purpose of the requests">
<strong>UnsafeDemoTokens</strong> each request is signed for you as the demo client.
<label>Procedure <select name="procedure">{options}</select></label>
<label>Case <input name="case" value="DEMO-2026-0001" size="16"></label>
<label>Officer <input name="officer" value="demo-officer" size="14"></label>
<label>Subjects <input name="subjects" placeholder="ids in the query" size="28"></label>
</form>
"""


class QueryPage:
    """Renders the page; `example` is the query shown on first load.

    With `demo_tokens`, the page asks `/_unsafe/demo-tokens` to sign each request for
    the purpose chosen in a small form above the editor.
    """

    def __init__(
        self,
        *,
        endpoint: str = "/graphql",
        static: str = "/static",
        example: str = "",
        demo_tokens: bool = False,
        procedures: list[tuple[str, str]] | None = None,
        default_procedure: str | None = None,
    ) -> None:
        purpose = ""
        if demo_tokens:
            options = "".join(
                f'<option value="{escape(code)}"'
                f"{' selected' if code == default_procedure else ''}>"
                f"{escape(code)} {escape(name)}</option>"
                for code, name in procedures or []
            )
            purpose = _PURPOSE.format(options=options)
        self._html = _PAGE.format(
            endpoint=escape(endpoint),
            static=escape(static),
            query=escape(example),
            demo="true" if demo_tokens else "false",
            purpose=purpose,
        )

    async def __call__(self, _request: Request) -> HTMLResponse:
        return HTMLResponse(
            self._html,
            headers={
                "Content-Security-Policy": CSP,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-store",
            },
        )
