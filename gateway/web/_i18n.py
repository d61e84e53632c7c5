"""Languages of the browser pages: Vietnamese by default, English on request.

Convention: **msgids are English** and Vietnamese is the default locale. Every string a
page shows goes through gettext (`_()` in code, `{% trans %}` or `_()` in templates,
`N_()` for deferred tables in `_labels`); its Vietnamese text lives in one catalogue,
`gateway/web/translations/vi/LC_MESSAGES/messages.po` (`en` is the identity). The
`.po` files are read at start-up, no compile step; `make translations` extracts the
msgids (`babel.cfg`) and merges them into both files.

The locale of a request: `?lang=vi|en` (and the page sets the cookie `ngon-ngu`), else
that cookie, else Vietnamese. `render(request, name, context)` renders a template of
`templates/` with the locale's gettext, `lang`, the language-switch links and the
filters `field_label` and `enum_label`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, pass_context
from jinja2.runtime import Context
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from gateway.web._labels import ENUM_LABELS, FIELD_LABELS, N_, NESTED_LABELS
from policies import Catalogue, LegalBasis, Procedure, UnknownProcedure

__all__ = [
    "COOKIE",
    "DEFAULT_LOCALE",
    "LOCALES",
    "PAGE_CSP",
    "TEMPLATES_DIR",
    "TRANSLATIONS_DIR",
    "enum_label",
    "field_label",
    "gettext",
    "labels",
    "language_names",
    "legal_basis_text",
    "locale_of",
    "procedure_label",
    "procedure_name",
    "remember_locale",
    "render",
    "templates",
    "translations",
]

LOCALES = ("vi", "en")
DEFAULT_LOCALE = "vi"
COOKIE = "ngon-ngu"
_COOKIE_MAX_AGE = 365 * 24 * 3600
_LANGUAGE_NAMES = {"vi": N_("Vietnamese"), "en": N_("English")}

_HERE = Path(__file__).parent
TEMPLATES_DIR = _HERE / "templates"
TRANSLATIONS_DIR = _HERE / "translations"

# The browser pages load only the gateway's own scripts and styles; no inline script.
PAGE_CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)


@cache
def translations(locale: str) -> Translations:
    """The locale's catalogue, read from its `.po` file (fuzzy entries are left out)."""
    if locale not in LOCALES:
        raise ValueError(f"unknown locale {locale!r}; known: {', '.join(LOCALES)}")
    path = TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as po:
        catalog = read_po(po, locale=locale)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


def gettext(message: str, locale: str) -> str:
    """`message` (an English msgid) in `locale`."""
    return translations(locale).gettext(message)


def _chosen(value: str | None) -> str | None:
    return value if value in LOCALES else None


def locale_of(request: Request) -> str:
    """`?lang=`, else the `ngon-ngu` cookie, else Vietnamese."""
    return (
        _chosen(request.query_params.get("lang"))
        or _chosen(request.cookies.get(COOKIE))
        or DEFAULT_LOCALE
    )


def remember_locale(request: Request, response: Response) -> None:
    """Keep a language chosen with `?lang=` in the `ngon-ngu` cookie."""
    chosen = _chosen(request.query_params.get("lang"))
    if chosen is not None and chosen != request.cookies.get(COOKIE):
        response.set_cookie(COOKIE, chosen, max_age=_COOKIE_MAX_AGE, samesite="lax", path="/")


def field_label(path: str, locale: str) -> str:
    """Plain-language label of a canonical field path (`Citizen.permanentResidence.wardName`).

    A nested path reads as its top-level field's label, a dash, and its own parts; an
    unknown path is returned as it is.
    """
    parts = path.split(".")
    top = ".".join(parts[:2])
    if top not in FIELD_LABELS:
        return path
    shown = [gettext(FIELD_LABELS[top], locale)]
    for part in parts[2:]:
        msgid = NESTED_LABELS.get(part)
        shown.append(gettext(msgid, locale).lower() if msgid else part)
    return " \N{EN DASH} ".join(shown)


def enum_label(type_name: str, value: str, locale: str) -> str:
    """Label of an enum value (`Gender`, `MALE` → "Nam"); an unknown value as it is."""
    msgid = ENUM_LABELS.get(type_name, {}).get(value)
    return gettext(msgid, locale) if msgid else value


def procedure_name(procedure: Procedure, locale: str) -> str:
    """The procedure's name from the catalogue, in `locale`."""
    return procedure.name.vi if locale == "vi" else procedure.name.en


def procedure_label(catalogue: Catalogue, code: str | None, locale: str) -> str:
    """The name of the procedure `code` in `locale`: its code if the catalogue no longer
    has it (records outlive entries), nothing for none."""
    if not code:
        return ""
    try:
        return procedure_name(catalogue.get(code), locale)
    except UnknownProcedure:
        return code


_ARTICLE = re.compile(r"\bArts?\.\s*")


def legal_basis_text(basis: LegalBasis, locale: str) -> str:
    """A legal basis as one line: the document, then its article ("Art. 9" in Vietnamese).

    The catalogue writes legal bases in English; document titles are msgids of the
    translation catalogue. The English note is shown only in English.
    """
    text = gettext(basis.document, locale)
    if basis.article:
        article = _ARTICLE.sub(gettext("Art.", locale) + " ", basis.article)
        text = f"{text}, {article}"
    if basis.note and locale == "en":
        text = f"{text}: {basis.note}"
    return text


def labels(locale: str, procedures: Mapping[str, Procedure] | None = None) -> dict[str, Any]:
    """Every label a page script needs, as JSON: fields, enums, procedures."""
    shown: dict[str, Any] = {
        "lang": locale,
        "fields": {path: field_label(path, locale) for path in FIELD_LABELS},
        "nested": {name: gettext(msgid, locale) for name, msgid in NESTED_LABELS.items()},
        "enums": {
            kind: {value: gettext(msgid, locale) for value, msgid in values.items()}
            for kind, values in ENUM_LABELS.items()
        },
    }
    if procedures is not None:
        shown["procedures"] = {
            code: {
                "name": procedure_name(p, locale),
                "legalBasis": [legal_basis_text(b, locale) for b in p.legal_basis],
            }
            for code, p in procedures.items()
        }
    return shown


def _locale(context: Context) -> str:
    locale = context.get("lang", DEFAULT_LOCALE)
    return locale if locale in LOCALES else DEFAULT_LOCALE


# Installed once; each call reads the locale of the template being rendered, so two
# requests in different languages never share one.
@pass_context
def _gettext(context: Context, message: str) -> str:
    return translations(_locale(context)).gettext(message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    return translations(_locale(context)).ngettext(singular, plural, n)


@pass_context
def _field_label_filter(context: Context, path: str) -> str:
    return field_label(path, _locale(context))


@pass_context
def _enum_label_filter(context: Context, value: str, type_name: str) -> str:
    return enum_label(type_name, value, _locale(context))


_env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.install_gettext_callables(  # type: ignore[attr-defined]
    _gettext, _ngettext, newstyle=True
)
_env.filters["field_label"] = _field_label_filter
_env.filters["enum_label"] = _enum_label_filter
templates = Jinja2Templates(env=_env)


def language_names() -> dict[str, str]:
    """Each language's name in itself ("Tiếng Việt", "English"), for a language switch."""
    return {locale: gettext(_LANGUAGE_NAMES[locale], locale) for locale in LOCALES}


def _switch_links(request: Request) -> dict[str, str]:
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return {
        locale: f"{request.url.path}?{urlencode([*query, ('lang', locale)])}" for locale in LOCALES
    }


def render(
    request: Request, name: str, context: Mapping[str, Any] | None = None, *, status_code: int = 200
) -> Response:
    """Render `templates/<name>` in the request's language, with the page headers."""
    locale = locale_of(request)
    response = templates.TemplateResponse(
        request,
        name,
        {
            **(context or {}),
            "lang": locale,
            "lang_links": _switch_links(request),
            "lang_names": language_names(),
        },
        status_code=status_code,
        headers={
            "Content-Security-Policy": PAGE_CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )
    remember_locale(request, response)
    return response
