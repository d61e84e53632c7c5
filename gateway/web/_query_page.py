"""The query page (GraphiQL) for demo and development, served with no external asset.

Government networks are often closed, so every script, style and font comes from the
gateway itself; the Content-Security-Policy forbids loading anything from elsewhere.
The page is Vietnamese by default and English with `?lang=en` (the `ngon-ngu` cookie
keeps the choice, see `_i18n`); its script gets the labels it shows (procedures and
their legal bases, enum values beside their canonical names) in a data attribute.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from graphql import GraphQLEnumType, GraphQLObjectType, get_named_type
from graphql import build_schema as build_sdl
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from gateway.state import app_state
from gateway.web._i18n import (
    LOCALES,
    gettext,
    labels,
    language_names,
    legal_basis_text,
    locale_of,
    procedure_name,
    remember_locale,
    templates,
)
from gateway.web._labels import N_
from policies import Procedure
from schema import SDL_PATH

__all__ = ["CSP", "LABELS_PATH", "STATIC_DIR", "QueryPage", "StaticAssets", "labels_json"]

STATIC_DIR = Path(__file__).with_name("static")
_QUERY_PAGE_ASSETS = ("graphiql/", "query-page.")
"""The static files only the query page uses, served only when it is on."""


class StaticAssets(StaticFiles):
    """The gateway's static files: the pages' (always) and the query page's (when on)."""

    def __init__(self, *, query_page: bool) -> None:
        super().__init__(directory=STATIC_DIR)
        self.query_page = query_page

    async def get_response(self, path: str, scope: Scope) -> Response:
        if not self.query_page and path.replace("\\", "/").startswith(_QUERY_PAGE_ASSETS):
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)


LABELS_PATH = "/graphql/nhan.json"

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

# Texts the page's script shows (msgids; the script gets them translated).
_SCRIPT_MESSAGES = {
    "demoSecret": N_(
        "Open the query page at the address `gateway demo` printed: it ends in "
        "#demo=<secret>, which the page sends with each demo-token request."
    ),
    "legalBasis": N_("Legal basis:"),
}


@cache
def _enum_fields() -> dict[str, list[str]]:
    """Field name -> the enums a field of that name has in the schema (`gender`: Gender)."""
    sdl = build_sdl(SDL_PATH.read_text(encoding="utf-8"))
    found: dict[str, list[str]] = {}
    for name, kind in sdl.type_map.items():
        if name.startswith("__") or not isinstance(kind, GraphQLObjectType):
            continue
        for field_name, field in kind.fields.items():
            named = get_named_type(field.type)
            if isinstance(named, GraphQLEnumType) and named.name not in found.get(field_name, []):
                found.setdefault(field_name, []).append(named.name)
    return found


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
        procedures: Iterable[Procedure] = (),
        default_procedure: str | None = None,
    ) -> None:
        listed = list(procedures)
        self._html = {
            locale: self._render(
                locale,
                endpoint=endpoint,
                static=static,
                example=example,
                demo_tokens=demo_tokens,
                procedures=listed,
                default_procedure=default_procedure,
            )
            for locale in LOCALES
        }

    @staticmethod
    def _render(
        locale: str,
        *,
        endpoint: str,
        static: str,
        example: str,
        demo_tokens: bool,
        procedures: list[Procedure],
        default_procedure: str | None,
    ) -> str:
        shown: dict[str, Any] = labels(locale, {p.code: p for p in procedures})
        shown["enumFields"] = _enum_fields()
        shown["messages"] = {key: gettext(text, locale) for key, text in _SCRIPT_MESSAGES.items()}
        chosen = next((p for p in procedures if p.code == default_procedure), None)
        return templates.env.get_template("query_page.html").render(
            lang=locale,
            lang_names=language_names(),
            endpoint=endpoint,
            static=static,
            example=example,
            demo_tokens=demo_tokens,
            procedures=[(p.code, procedure_name(p, locale)) for p in procedures],
            default_procedure=default_procedure,
            legal_basis=[legal_basis_text(b, locale) for b in chosen.legal_basis] if chosen else [],
            labels=orjson.dumps(shown).decode(),
        )

    async def __call__(self, request: Request) -> HTMLResponse:
        response = HTMLResponse(
            self._html[locale_of(request)],
            headers={
                "Content-Security-Policy": CSP,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-store",
            },
        )
        remember_locale(request, response)
        return response


async def labels_json(request: Request) -> Response:
    """`GET /graphql/nhan.json?lang=vi`: the labels of fields, enums and procedures.

    For page scripts and clients that show canonical data to people; the same
    catalogue as the pages (`_i18n`), in the request's language.
    """
    shown = labels(locale_of(request), app_state(request).catalogue.procedures)
    shown["enumFields"] = _enum_fields()
    return Response(
        orjson.dumps(shown),
        media_type="application/json",
        headers={"Cache-Control": "public, max-age=300", "Vary": "Cookie"},
    )
