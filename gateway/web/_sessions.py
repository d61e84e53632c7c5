"""Browser sessions: who signed in through the browser, kept on the server.

```
@router.get("/toi")
async def my_data(session: BrowserCitizen) -> HTMLResponse: ...

@router.post("/toi/dong-y/{id}/thu-hoi")
async def revoke(request: Request, session: BrowserCitizenLevel2) -> Response:
    await check_csrf(request, session)
```

The cookie holds only a random id (256 bits): `__Host-phien` (`Secure`), or `phien` when
the gateway's origin is plain http on this machine. The session itself (the identity,
a CSRF token, when level 2 was last proven) is in the database, or in Redis when the
gateway has one, keyed by the SHA-256 of the id: any replica serves any page, and the
store never holds a usable id. A session ends after `session_idle_minutes` without a
request and `session_max_hours` after sign-in. Session ids are never logged.

A route guarded by `BrowserCitizen` (or `BrowserCitizenLevel2`, `BrowserStaff(role)`)
without a fitting session raises `SignInRequired`: a GET is sent to sign in
(`303 /dang-nhap?next=<path>&muc=<level>`), other methods get a 403 page.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import html
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Protocol
from urllib.parse import urlencode

import orjson
import sqlalchemy as sa
import structlog
from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway.admission import Identity
from gateway.config import GatewaySettings, is_loopback_url
from gateway.errors import Forbidden
from gateway.instants import utc_now
from gateway.storage import browser_sessions

__all__ = [
    "LEVEL2_FRESHNESS",
    "SIGN_IN_LIFETIME",
    "BrowserAgencyAdmin",
    "BrowserAuditor",
    "BrowserCitizen",
    "BrowserCitizenLevel2",
    "BrowserOperator",
    "BrowserSession",
    "BrowserStaff",
    "CsrfFailed",
    "SessionStore",
    "SignInRequired",
    "StaffForbidden",
    "browser_session",
    "check_csrf",
    "cookie_name",
    "cookie_secure",
    "digest",
    "end_session",
    "session_store",
    "sign_in_required_response",
    "start_session",
]

log = structlog.get_logger(__name__)

LEVEL2_FRESHNESS: Final = datetime.timedelta(minutes=10)
"""How recent a level-2 proof must be for `BrowserCitizenLevel2` (step-up beyond)."""
SIGN_IN_LIFETIME: Final = datetime.timedelta(minutes=10)
"""How long a sign-in under way (state, nonce, verifier) waits for the issuer's answer."""
_TOUCH_EVERY: Final = datetime.timedelta(seconds=30)
"""A session's last-seen time is written at most this often."""
_CSRF_FIELD: Final = "csrf"
_CSRF_HEADER: Final = "x-csrf-token"


class CsrfFailed(Forbidden):
    """The form or htmx request did not carry the session's CSRF token."""

    code = "CSRF_FAILED"
    default_message = "The form has expired or did not come from this site; reload the page."


class StaffForbidden(Forbidden):
    """A member of staff (or a citizen) signed in without the role a staff page needs."""

    default_message = "Your role does not open this page."

    def __init__(self, message: str | None = None, *, required: Iterable[str] = ()) -> None:
        self.required = sorted(required)
        super().__init__(message, required=self.required)


class SignInRequired(Exception):
    """The route needs a browser sign-in (of `level`); GET is sent to sign in first."""

    def __init__(self, next: str = "/toi", level: int = 1) -> None:
        super().__init__(f"sign-in of level {level} required")
        self.next = next
        self.level = level


@dataclass(frozen=True, slots=True)
class BrowserSession:
    """A signed-in browser: its identity, its CSRF token, when level 2 was last proven.

    `id` (the cookie's value) never appears in `repr`.
    """

    id: str = field(repr=False)
    identity: Identity
    csrf_token: str = field(repr=False)
    level2_at: datetime.datetime | None

    def level2_within(self, freshness: datetime.timedelta, now: datetime.datetime) -> bool:
        """Whether level 2 was proven no longer than `freshness` before `now`."""
        return self.level2_at is not None and now - self.level2_at <= freshness


def digest(secret: str) -> str:
    """The SHA-256 of `secret` (hex): the key a session or sign-in is stored under."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _identity_data(identity: Identity) -> dict[str, Any]:
    return {
        "subject": identity.subject,
        "roles": sorted(identity.roles),
        "org": identity.org,
        "acr": identity.acr,
        "issuer": identity.issuer,
    }


def _identity_of(data: dict[str, Any]) -> Identity:
    return Identity(
        subject=data["subject"],
        roles=frozenset(data["roles"]),
        org=data["org"],
        acr=data["acr"],
        issuer=data["issuer"],
    )


class SessionStore(Protocol):
    """Where sessions and sign-ins under way are kept: the database or Redis.

    Keys are SHA-256 digests; `data` is JSON. `expires_at` bounds each entry; a
    session's idle end is checked by the caller against `last_seen_at`.
    """

    async def put(
        self, key: str, kind: str, data: dict[str, Any], *, expires_at: datetime.datetime
    ) -> None:
        """Store a new entry."""
        ...

    async def get(self, key: str, kind: str) -> tuple[dict[str, Any], datetime.datetime] | None:
        """The entry's data and its last-seen time, unless missing or expired."""
        ...

    async def touch(self, key: str, *, expires_at: datetime.datetime) -> None:
        """Mark the entry seen now."""
        ...

    async def take(self, key: str, kind: str) -> dict[str, Any] | None:
        """Remove the entry and return its data: only one caller ever gets it."""
        ...


class DatabaseSessions:
    """Sessions in the gateway's database (`browser_sessions`)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def put(
        self, key: str, kind: str, data: dict[str, Any], *, expires_at: datetime.datetime
    ) -> None:
        now = utc_now()
        async with self._engine.begin() as db:
            # Expired entries go as new ones come: the table holds only live ones.
            await db.execute(browser_sessions.delete().where(browser_sessions.c.expires_at < now))
            await db.execute(
                browser_sessions.insert().values(
                    id_hash=key,
                    kind=kind,
                    data=data,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=expires_at,
                )
            )

    async def get(self, key: str, kind: str) -> tuple[dict[str, Any], datetime.datetime] | None:
        query = sa.select(browser_sessions.c.data, browser_sessions.c.last_seen_at).where(
            browser_sessions.c.id_hash == key,
            browser_sessions.c.kind == kind,
            browser_sessions.c.expires_at > utc_now(),
        )
        async with self._engine.connect() as db:
            row = (await db.execute(query)).first()
        return None if row is None else (dict(row.data), row.last_seen_at)

    async def touch(self, key: str, *, expires_at: datetime.datetime) -> None:
        async with self._engine.begin() as db:
            await db.execute(
                browser_sessions.update()
                .where(browser_sessions.c.id_hash == key)
                .values(last_seen_at=utc_now(), expires_at=expires_at)
            )

    async def take(self, key: str, kind: str) -> dict[str, Any] | None:
        async with self._engine.begin() as db:
            row = (
                await db.execute(
                    sa.select(browser_sessions.c.data, browser_sessions.c.expires_at).where(
                        browser_sessions.c.id_hash == key, browser_sessions.c.kind == kind
                    )
                )
            ).first()
            if row is None:
                return None
            deleted = await db.execute(
                browser_sessions.delete().where(browser_sessions.c.id_hash == key)
            )
            # Two callers at once: only the one whose delete removed the row gets it.
            if deleted.rowcount != 1 or row.expires_at <= utc_now():
                return None
            return dict(row.data)


class RedisSessions:
    """Sessions in Redis: one key each, expiring on its own."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    @staticmethod
    def _key(key: str, kind: str) -> str:
        return f"gateway:browser:{kind}:{key}"

    async def put(
        self, key: str, kind: str, data: dict[str, Any], *, expires_at: datetime.datetime
    ) -> None:
        value = orjson.dumps({"data": data, "seen": utc_now().isoformat(), "kind": kind})
        ttl = max(1, int((expires_at - utc_now()).total_seconds()))
        await self._redis.set(self._key(key, kind), value, ex=ttl)

    async def get(self, key: str, kind: str) -> tuple[dict[str, Any], datetime.datetime] | None:
        raw = await self._redis.get(self._key(key, kind))
        if raw is None:
            return None
        value = orjson.loads(raw)
        return value["data"], datetime.datetime.fromisoformat(value["seen"])

    async def touch(self, key: str, *, expires_at: datetime.datetime) -> None:
        name = self._key(key, "session")
        raw = await self._redis.get(name)
        if raw is None:
            return
        value = orjson.loads(raw)
        value["seen"] = utc_now().isoformat()
        ttl = max(1, int((expires_at - utc_now()).total_seconds()))
        await self._redis.set(name, orjson.dumps(value), ex=ttl, xx=True)

    async def take(self, key: str, kind: str) -> dict[str, Any] | None:
        raw = await self._redis.getdel(self._key(key, kind))
        if raw is None:
            return None
        data: dict[str, Any] = orjson.loads(raw)["data"]
        return data


def _gateway(request: Request) -> Any:
    return getattr(request.app.state, "gateway", None)


def session_store(request: Request) -> SessionStore:
    """The running gateway's store: Redis when it has one, else its database."""
    store: SessionStore | None = getattr(request.app.state, "browser_sessions", None)
    if store is None:
        state = _gateway(request)
        redis = getattr(state, "redis", None)
        store = RedisSessions(redis) if redis is not None else DatabaseSessions(state.engine)
        request.app.state.browser_sessions = store
    return store


def _settings(request: Request) -> GatewaySettings:
    settings = getattr(_gateway(request), "settings", None)
    if not isinstance(settings, GatewaySettings):
        raise RuntimeError("browser sessions need a running gateway")
    return settings


def cookie_secure(settings: GatewaySettings) -> bool:
    """Whether the cookie is `Secure`: always, except for plain http on this machine."""
    return not (settings.origin.startswith("http://") and is_loopback_url(settings.origin))


def cookie_name(settings: GatewaySettings) -> str:
    """`__Host-phien` when the cookie is `Secure`, else `phien`."""
    return "__Host-phien" if cookie_secure(settings) else "phien"


def _lifetimes(settings: GatewaySettings) -> tuple[datetime.timedelta, datetime.timedelta]:
    return (
        datetime.timedelta(minutes=settings.session_idle_minutes),
        datetime.timedelta(hours=settings.session_max_hours),
    )


async def browser_session(request: Request) -> BrowserSession | None:
    """The request's session, or `None`: no cookie, unknown, idle too long, or too old.

    Each request keeps the session alive (its last-seen time is written at most every
    30 seconds).
    """
    if hasattr(request.state, "browser_session"):
        cached: BrowserSession | None = request.state.browser_session
        return cached
    session = await _load(request)
    request.state.browser_session = session
    return session


async def _load(request: Request) -> BrowserSession | None:
    settings = _settings(request)
    session_id = request.cookies.get(cookie_name(settings))
    if not session_id or len(session_id) > 128:
        return None
    key = digest(session_id)
    store = session_store(request)
    found = await store.get(key, "session")
    if found is None:
        return None
    data, last_seen = found
    now = utc_now()
    idle, longest = _lifetimes(settings)
    created = datetime.datetime.fromisoformat(data["created_at"])
    if now - last_seen > idle or now - created > longest:
        log.info("browser_session_expired", idle=now - last_seen > idle)
        return None
    if now - last_seen > _TOUCH_EVERY:
        await store.touch(key, expires_at=min(now + idle, created + longest))
    level2 = data.get("level2_at")
    return BrowserSession(
        id=session_id,
        identity=_identity_of(data["identity"]),
        csrf_token=data["csrf"],
        level2_at=datetime.datetime.fromisoformat(level2) if level2 else None,
    )


async def start_session(
    request: Request, response: Response, identity: Identity, *, level2: bool
) -> BrowserSession:
    """Create a session for `identity` and set its cookie on `response`.

    The previous session of this browser, if any, ends: a sign-in always gets a new id.
    """
    settings = _settings(request)
    store = session_store(request)
    previous = request.cookies.get(cookie_name(settings))
    if previous and len(previous) <= 128:
        await store.take(digest(previous), "session")
    now = utc_now()
    idle, longest = _lifetimes(settings)
    session = BrowserSession(
        id=secrets.token_urlsafe(32),
        identity=identity,
        csrf_token=secrets.token_urlsafe(32),
        level2_at=now if level2 else None,
    )
    data = {
        "identity": _identity_data(identity),
        "csrf": session.csrf_token,
        "level2_at": now.isoformat() if level2 else None,
        "created_at": now.isoformat(),
    }
    await store.put(digest(session.id), "session", data, expires_at=now + min(idle, longest))
    response.set_cookie(
        cookie_name(settings),
        session.id,
        max_age=int(longest.total_seconds()),
        path="/",
        secure=cookie_secure(settings),
        httponly=True,
        samesite="lax",
    )
    request.state.browser_session = session
    log.info("browser_session_started", roles=sorted(identity.roles), level2=level2)
    return session


async def end_session(request: Request, response: Response, session: BrowserSession) -> None:
    """End `session` and clear its cookie on `response`."""
    settings = _settings(request)
    await session_store(request).take(digest(session.id), "session")
    response.delete_cookie(
        cookie_name(settings),
        path="/",
        secure=cookie_secure(settings),
        httponly=True,
        samesite="lax",
    )
    request.state.browser_session = None
    log.info("browser_session_ended")


async def check_csrf(request: Request, session: BrowserSession) -> None:
    """Raise `CsrfFailed` (403) unless the request carries the session's CSRF token.

    The token is the form field `csrf`, or the header `X-CSRF-Token` (htmx).
    """
    given = request.headers.get(_CSRF_HEADER)
    if given is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get(_CSRF_FIELD)
            given = value if isinstance(value, str) else None
    if given is None or not hmac.compare_digest(given.encode(), session.csrf_token.encode()):
        log.info("csrf_failed", path=request.url.path)
        raise CsrfFailed()


async def _citizen(request: Request) -> BrowserSession:
    session = await browser_session(request)
    if session is None or not session.identity.is_citizen:
        raise SignInRequired(next=request.url.path, level=1)
    return session


async def _citizen_level2(request: Request) -> BrowserSession:
    session = await _citizen(request)
    if not session.level2_within(LEVEL2_FRESHNESS, utc_now()):
        raise SignInRequired(next=request.url.path, level=2)
    return session


BrowserCitizen = Annotated[BrowserSession, Depends(_citizen)]
"""A citizen signed in through the browser, of any level."""
BrowserCitizenLevel2 = Annotated[BrowserSession, Depends(_citizen_level2)]
"""A citizen who proved level 2 in the last 10 minutes (else: sign in again at level 2)."""


def _staff(roles: frozenset[str]) -> Callable[[Request], Awaitable[BrowserSession]]:
    async def staff(request: Request) -> BrowserSession:
        session = await browser_session(request)
        if session is None:
            raise SignInRequired(next=request.url.path, level=1)
        if session.identity.roles.isdisjoint(roles):
            raise StaffForbidden(
                f"This needs the role {' or '.join(sorted(roles))}.", required=roles
            )
        return session

    return staff


def BrowserStaff(*roles: str) -> Any:  # noqa: N802 - used as a type, like the aliases above
    """A member of staff signed in through the browser with one of `roles`, else 403."""
    if not roles:
        raise ValueError("BrowserStaff needs at least one role")
    return Annotated[BrowserSession, Depends(_staff(frozenset(roles)))]


BrowserAuditor = Annotated[BrowserSession, Depends(_staff(frozenset({"auditor"})))]
"""An auditor signed in through the browser (another role: `StaffForbidden`)."""
BrowserOperator = Annotated[BrowserSession, Depends(_staff(frozenset({"operator"})))]
"""An operator signed in through the browser."""
BrowserAgencyAdmin = Annotated[BrowserSession, Depends(_staff(frozenset({"agency_admin"})))]
"""An agency's administrator signed in through the browser."""


_REFUSED_PAGE: Final = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>Cần đăng nhập</title></head>
<body><main><h1>Cần đăng nhập</h1>
<p>Phiên làm việc đã hết hạn hoặc chưa đăng nhập. Vui lòng
<a href="{href}">đăng nhập</a> rồi thử lại.</p>
<p>Sign-in required. Mã lỗi / code: <code>SIGN_IN_REQUIRED</code></p>
</main></body></html>
"""


def sign_in_required_response(request: Request, exc: SignInRequired) -> Response:
    """GET: 303 to `/dang-nhap?next=...&muc=N`; other methods: a 403 page."""
    href = "/dang-nhap?" + urlencode({"next": exc.next, "muc": str(exc.level)})
    if request.method in {"GET", "HEAD"}:
        return RedirectResponse(href, status_code=303)
    return HTMLResponse(_REFUSED_PAGE.format(href=html.escape(href)), status_code=403)
