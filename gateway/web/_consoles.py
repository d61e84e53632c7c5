"""What the staff consoles share: their addresses, layout, and the page of a wrong role.

```
/kiem-tra   the auditor's console      (role `auditor`)
/van-hanh   the operator's dashboard   (role `operator`)
/co-quan    the agency admin's console (role `agency_admin`)
```

Each console is a router of its own, guarded by `BrowserStaff(role)`: a member of staff
signed in through the browser (`/dang-nhap`, the same sessions as the citizen's pages).
Signed out, a GET is sent to sign in; signed in with another role, the answer is a 403
page saying which role the page needs and where the staff member's own console is
(`StaffForbidden`, code `FORBIDDEN`). Every form posts the session's CSRF token.

`console_page(request, session, name, context)` renders a template of `templates/` with
what the layout needs: the session, its CSRF token, the console's sections.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from gateway.web._i18n import gettext, locale_of, render
from gateway.web._labels import N_
from gateway.web._sessions import BrowserSession, StaffForbidden, browser_session

__all__ = [
    "CONSOLES",
    "SECTIONS",
    "CrossSiteRead",
    "StaffForbidden",
    "console_home",
    "console_page",
    "cross_site_page",
    "invalid_request_page",
    "is_console_page",
    "refuse_cross_site",
    "staff_forbidden_page",
]


CONSOLES: Final[Mapping[str, tuple[str, str]]] = {
    # role: (address, name msgid)
    "auditor": ("/kiem-tra", N_("Auditor's console")),
    "operator": ("/van-hanh", N_("Operations dashboard")),
    "agency_admin": ("/co-quan", N_("Agency's connectors")),
}
"""Each staff role's console: its address and its name."""


ROLE_NAMES: Final[Mapping[str, str]] = {
    "auditor": N_("auditor"),
    "operator": N_("operator"),
    "agency_admin": N_("agency administrator"),
}


SECTIONS: Final[Mapping[str, tuple[tuple[str, str, str], ...]]] = {
    # role: (key, address, name msgid) of each section of its console, in the nav's order
    "auditor": (
        ("search", "/kiem-tra", N_("Search the access log")),
        ("patterns", "/kiem-tra/dau-hieu", N_("Patterns worth a look")),
        ("questions", "/kiem-tra/cau-hoi", N_("Citizens' questions")),
    ),
    "operator": (
        ("overview", "/van-hanh", N_("Overview")),
        ("sources", "/van-hanh/nguon", N_("Sources and the log")),
        ("clients", "/van-hanh/he-thong", N_("Client systems")),
        ("approvals", "/van-hanh/phe-duyet", N_("Connector approvals")),
    ),
    "agency_admin": (
        ("connectors", "/co-quan", N_("Our connectors")),
        ("submit", "/co-quan/gui", N_("Submit a version")),
    ),
}
"""The sections of each console (the layout's second navigation)."""


class CrossSiteRead(Exception):
    """A page that records a read of the access log in the auditor's name was opened from
    another site (a link, a redirect): nothing is read until the auditor opens it here."""

    code = "CROSS_SITE_READ"


_SAME_SITE: Final = frozenset({"same-origin", "none"})


def refuse_cross_site(request: Request) -> None:
    """Raise `CrossSiteRead` unless the browser says the page was opened from this origin
    or by the auditor (typed, a bookmark): `Sec-Fetch-Site` `same-origin` or `none`.

    The session cookie is `SameSite=Lax`, so another site's link would otherwise make an
    auditor's browser write `auditor_search` records (naming a person) in their name.
    A client that sends no `Sec-Fetch-Site` (not a browser) is not refused.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in _SAME_SITE:
        raise CrossSiteRead


async def _refusal_page(request: Request, name: str, status_code: int, **context: Any) -> Response:
    """A console's page of a refusal, with the layout of whoever is signed in (if anyone)."""
    session = await browser_session(request)
    layout = {
        "home": console_home(session.identity.roles) if session is not None else None,
        "consoles": _sections(session) if session is not None else [],
        "staff": session.identity if session is not None else None,
        "csrf": session.csrf_token if session is not None else "",
        "session": session,
    }
    return render(request, name, {**layout, **context}, status_code=status_code)


async def cross_site_page(request: Request, exc: CrossSiteRead) -> Response:
    """The 403 page of `CrossSiteRead`: what happened, and the same address to open here."""
    query = request.url.query
    again = request.url.path + (f"?{query}" if query else "")
    return await _refusal_page(request, "consoles/cross_site.html", 403, code=exc.code, again=again)


def is_console_page(request: Request) -> bool:
    """Whether the request is a browser's, for a console page (answered with a page)."""
    path = request.url.path
    return any(path == home or path.startswith(home + "/") for home, _ in CONSOLES.values()) and (
        "text/html" in request.headers.get("accept", "")
    )


async def invalid_request_page(request: Request, fields: list[str]) -> Response:
    """The 400 page of a console address or form the page cannot read (a version that is
    not a number, a missing form field): which, and the way back."""
    return await _refusal_page(
        request, "consoles/invalid.html", 400, code="INVALID_ARGUMENT", fields=fields
    )


def console_home(roles: Iterable[str]) -> str | None:
    """The console of the first of `roles` that has one, else `None`."""
    for role in sorted(roles):
        if role in CONSOLES:
            return CONSOLES[role][0]
    return None


def _sections(session: BrowserSession) -> list[dict[str, str]]:
    return [
        {"role": role, "href": href, "name": name}
        for role, (href, name) in CONSOLES.items()
        if role in session.identity.roles
    ]


def console_page(
    request: Request,
    session: BrowserSession,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    role: str,
    active: str,
    status_code: int = 200,
) -> Response:
    """Render a console template with the layout's needs (`templates/consoles/_layout.html`).

    `role`: whose console the page is of; `active`: the key of its section in `SECTIONS`.
    """
    base = {
        "session": session,
        "csrf": session.csrf_token,
        "consoles": _sections(session),
        "staff": session.identity,
        "console_role": role,
        "home_href": CONSOLES[role][0],
        "sections": [
            {"key": key, "href": href, "name": name} for key, href, name in SECTIONS[role]
        ],
        "active": active,
    }
    return render(request, name, {**base, **(context or {})}, status_code=status_code)


async def staff_forbidden_page(request: Request, exc: StaffForbidden) -> Response:
    """The 403 page of a wrong role: what the page needs, and the staff member's console."""
    locale = locale_of(request)
    required = [gettext(ROLE_NAMES.get(r, r), locale) for r in exc.required]
    return await _refusal_page(
        request, "consoles/forbidden.html", 403, code=exc.code, required=required
    )
