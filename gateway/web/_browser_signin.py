"""Signing in through the browser: the gateway as an OpenID Connect client.

```
GET  /dang-nhap?next=/toi&muc=2   to the issuer (code flow, PKCE S256, state, nonce)
GET  /dang-nhap/callback          back from it: code -> tokens -> a browser session
GET  /dang-nhap/phien             who is signed in, and the sign-out button
                                  (`?muc=2`: asks a level-2 proof of the last 10 minutes)
POST /dang-xuat                   sign out (CSRF token required)
```

The issuer is `GATEWAY_OIDC_ISSUER` (VNeID in production, the sandbox issuer in the
demo), found by discovery; the gateway is its client `GATEWAY_OIDC_CLIENT_ID` (public,
PKCE only, or confidential with `GATEWAY_OIDC_CLIENT_SECRET`) at
`GATEWAY_OIDC_REDIRECT_URI`. The state, nonce and PKCE verifier wait on the server
(`gateway.web._sessions`) with the page to return to, bound to the browser by a cookie
of their own; the callback takes them once. The ID token is verified like a bearer
token (`IdentityVerifier`, the issuer's JWKS, `iss`, `exp`) with the client id as its
audience, and its nonce must be the one sent. `muc=2` asks level 2 (`acr_values`).

Every failure is a Vietnamese page with a stable code (`SIGN_IN_STATE_MISMATCH`, ...),
never a trace; the codes and tokens never appear in a log line.
"""

from __future__ import annotations

import base64
import datetime
import hmac
import html
import re
import secrets
from collections.abc import Mapping
from typing import Any, Final

import httpx
import orjson
import structlog
from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway.admission import IdentityVerifier
from gateway.config import GatewaySettings, is_loopback_url
from gateway.errors import ServiceUnavailable, Unauthenticated
from gateway.web._consoles import console_home
from gateway.web._sessions import (
    LEVEL2_FRESHNESS,
    SIGN_IN_LIFETIME,
    SignInRequired,
    browser_session,
    check_csrf,
    cookie_secure,
    digest,
    end_session,
    session_store,
    start_session,
)

__all__ = ["SignInFailed", "browser_signin_router", "safe_next"]

log = structlog.get_logger(__name__)

DEFAULT_NEXT: Final = "/toi"
_FETCH_TIMEOUT: Final = 10.0
_MAX_ANSWER: Final = 256 * 1024
_SAFE_PATH: Final = re.compile(r"/(?![/\\])[A-Za-z0-9\-._~!$&'()*+,;=:@/%?]*")


class SignInFailed(Exception):
    """A sign-in that cannot go on: shown as a page with `code`."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.status = status


def safe_next(value: str | None) -> str:
    """`value` if it is a path of this site (`/...`, not `//host`), else `/toi`."""
    if value and len(value) <= 512 and _SAFE_PATH.fullmatch(value) and "\\" not in value:
        return value
    return DEFAULT_NEXT


def _binding_cookie(settings: GatewaySettings) -> str:
    return "__Host-dang-nhap" if cookie_secure(settings) else "dang-nhap"


_PAGE: Final = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title></head>
<body><main>
<h1>{title}</h1>
<p>{message}</p>
{extra}
</main></body></html>
"""


def _page(title: str, message: str, *, extra: str = "", status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        _PAGE.format(title=html.escape(title), message=html.escape(message), extra=extra),
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def failure_page(code: str, message: str, status: int) -> HTMLResponse:
    """The page of a failed sign-in: what happened, its code, and a way to try again."""
    extra = (
        f"<p>Mã lỗi (code): <code>{html.escape(code)}</code></p>"
        '<p><a href="/dang-nhap">Đăng nhập lại</a></p>'
    )
    return _page("Không đăng nhập được", message, extra=extra, status=status)


def _settings(request: Request) -> GatewaySettings:
    settings = getattr(getattr(request.app.state, "gateway", None), "settings", None)
    if not isinstance(settings, GatewaySettings):
        raise SignInFailed("SIGN_IN_NOT_CONFIGURED", "Chưa cấu hình đăng nhập.", 503)
    return settings


def _configured(settings: GatewaySettings) -> tuple[str, str]:
    if settings.oidc_issuer is None or settings.oidc_client_id is None:
        raise SignInFailed(
            "SIGN_IN_NOT_CONFIGURED",
            "Cổng này chưa cấu hình đăng nhập qua trình duyệt.",
            503,
        )
    return settings.oidc_issuer, settings.oidc_client_id


async def _get_json(http: httpx.AsyncClient, url: str) -> Any:
    answer = await http.get(url, headers={"Accept": "application/json"}, timeout=_FETCH_TIMEOUT)
    answer.raise_for_status()
    if len(answer.content) > _MAX_ANSWER:
        raise ValueError("answer too large")
    return orjson.loads(answer.content)


async def _provider(request: Request, issuer: str) -> Mapping[str, Any]:
    """The issuer's discovery document (kept once fetched)."""
    cached: Mapping[str, Any] | None = getattr(request.app.state, "oidc_provider", None)
    if cached is not None:
        return cached
    http: httpx.AsyncClient = request.app.state.gateway.http
    try:
        document = await _get_json(http, f"{issuer.rstrip('/')}/.well-known/openid-configuration")
    except (httpx.HTTPError, ValueError, orjson.JSONDecodeError) as exc:
        log.warning("oidc_discovery_failed", error=type(exc).__name__)
        raise SignInFailed(
            "SIGN_IN_UNAVAILABLE", "Không liên lạc được với dịch vụ định danh; thử lại sau.", 503
        ) from exc
    ok = (
        isinstance(document, dict)
        and document.get("issuer") == issuer
        and isinstance(document.get("authorization_endpoint"), str)
        and isinstance(document.get("token_endpoint"), str)
    )
    production = request.app.state.gateway.settings.environment == "production"
    if ok and production:
        # The browser and the code go where discovery says: https only in production.
        ok = all(
            str(document[name]).startswith("https://") or is_loopback_url(str(document[name]))
            for name in ("authorization_endpoint", "token_endpoint")
        )
    if not ok:
        raise SignInFailed(
            "SIGN_IN_UNAVAILABLE", "Dịch vụ định danh trả lời không hợp lệ; thử lại sau.", 503
        )
    provider: Mapping[str, Any] = document
    request.app.state.oidc_provider = provider
    return provider


def _id_token_verifier(request: Request, settings: GatewaySettings) -> IdentityVerifier:
    """The verifier of ID tokens: the issuer's keys, the client id as audience."""
    verifier: IdentityVerifier | None = getattr(request.app.state, "oidc_id_tokens", None)
    if verifier is None:
        made = IdentityVerifier.from_settings(
            settings.model_copy(update={"oidc_audience": settings.oidc_client_id}),
            request.app.state.gateway.http,
        )
        assert made is not None  # the issuer is configured
        verifier = made
        request.app.state.oidc_id_tokens = verifier
    return verifier


def _claims(token: str) -> dict[str, Any]:
    """The claims of a token whose signature was verified already."""
    payload = token.split(".")[1]
    claims: dict[str, Any] = orjson.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def browser_signin_router() -> APIRouter:
    """`/dang-nhap`, `/dang-nhap/callback` and `/dang-xuat`."""
    router = APIRouter(include_in_schema=False)

    @router.get("/dang-nhap", response_model=None)
    async def start(request: Request, next: str | None = None, muc: str | None = None) -> Response:
        try:
            settings = _settings(request)
            issuer, client_id = _configured(settings)
            provider = await _provider(request, issuer)
        except SignInFailed as failed:
            return failure_page(failed.code, failed.message, failed.status)
        level = 2 if muc == "2" else 1
        state, nonce, verifier = (
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(32),
            generate_token(64),
        )
        binding = secrets.token_urlsafe(32)
        now = datetime.datetime.now(datetime.UTC)
        await session_store(request).put(
            digest(state),
            "sign_in",
            {
                "nonce": nonce,
                "verifier": verifier,
                "next": safe_next(next),
                "level": level,
                "binding": digest(binding),
            },
            expires_at=now + SIGN_IN_LIFETIME,
        )
        extra: dict[str, str] = {
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
            "response_mode": "query",
        }
        if level == 2 and settings.oidc_level2_acr:
            extra["acr_values"] = " ".join(settings.oidc_level2_acr)
        url: str = prepare_grant_uri(
            provider["authorization_endpoint"],
            client_id,
            "code",
            redirect_uri=settings.browser_redirect_uri,
            scope="openid",
            state=state,
            **extra,
        )
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(
            _binding_cookie(settings),
            binding,
            max_age=int(SIGN_IN_LIFETIME.total_seconds()),
            path="/",
            secure=cookie_secure(settings),
            httponly=True,
            samesite="lax",
        )
        response.headers["Cache-Control"] = "no-store"
        log.info("browser_sign_in_started", level=level)
        return response

    @router.get("/dang-nhap/callback", response_model=None)
    async def callback(request: Request) -> Response:
        try:
            return await _finish(request)
        except SignInFailed as failed:
            log.info("browser_sign_in_refused", code=failed.code)
            return failure_page(failed.code, failed.message, failed.status)

    @router.get("/dang-nhap/phien", response_model=None)
    async def status(request: Request, muc: str | None = None) -> Response:
        session = await browser_session(request)
        level2_needed = muc == "2"
        if session is None:
            raise SignInRequired(next=request.url.path, level=2 if level2_needed else 1)
        fresh = session.level2_within(LEVEL2_FRESHNESS, datetime.datetime.now(datetime.UTC))
        if level2_needed and not (session.identity.is_citizen and fresh):
            raise SignInRequired(next=f"{request.url.path}?muc=2", level=2)
        identity = session.identity
        who = (
            f"Công dân, số định danh {identity.subject}"
            if identity.is_citizen
            else f"Cán bộ {identity.subject} ({', '.join(sorted(identity.roles))}, {identity.org})"
        )
        level = "mức 2" if fresh else ("mức 2 (quá 10 phút)" if session.level2_at else "mức 1")
        extra = (
            f"<p>Mức định danh: <strong>{html.escape(level)}</strong></p>"
            '<form method="post" action="/dang-xuat">'
            f'<input type="hidden" name="csrf" value="{html.escape(session.csrf_token)}">'
            '<button type="submit">Đăng xuất</button></form>'
        )
        return _page("Phiên đăng nhập", f"Bạn đang đăng nhập: {who}.", extra=extra)

    @router.post("/dang-xuat", response_model=None)
    async def sign_out(request: Request) -> Response:
        session = await browser_session(request)
        if session is None:
            return _page("Đã đăng xuất", "Bạn đã đăng xuất.", extra=_AGAIN)
        await check_csrf(request, session)  # CsrfFailed: a 403 page (the app's handler)
        response = _page("Đã đăng xuất", "Bạn đã đăng xuất.", extra=_AGAIN)
        await end_session(request, response, session)
        return response

    return router


_AGAIN: Final = '<p><a href="/dang-nhap">Đăng nhập lại</a></p>'


async def _finish(request: Request) -> Response:
    settings = _settings(request)
    issuer, client_id = _configured(settings)
    params = request.query_params
    state = params.get("state")
    if not state or len(state) > 512:
        raise SignInFailed("SIGN_IN_STATE_MISMATCH", "Yêu cầu đăng nhập không khớp; thử lại.")
    pending = await session_store(request).take(digest(state), "sign_in")
    binding = request.cookies.get(_binding_cookie(settings), "")
    if pending is None or not hmac.compare_digest(
        digest(binding).encode(), str(pending["binding"]).encode()
    ):
        raise SignInFailed(
            "SIGN_IN_STATE_MISMATCH",
            "Yêu cầu đăng nhập đã hết hạn hoặc không bắt đầu từ trình duyệt này; thử lại.",
        )
    returned_issuer = params.get("iss")
    if returned_issuer is not None and returned_issuer != issuer:
        raise SignInFailed("SIGN_IN_ISSUER_MISMATCH", "Câu trả lời đến từ một nơi khác.")
    if params.get("error") is not None:
        raise SignInFailed("SIGN_IN_REFUSED", "Dịch vụ định danh đã từ chối đăng nhập.")
    code = params.get("code")
    if not code:
        raise SignInFailed("SIGN_IN_REFUSED", "Dịch vụ định danh không trả về mã đăng nhập.")
    tokens = await _exchange(request, settings, issuer, client_id, code, pending["verifier"])
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str):
        raise SignInFailed("SIGN_IN_TOKEN_INVALID", "Dịch vụ định danh không trả về ID token.")
    try:
        identity = await _id_token_verifier(request, settings).verify(id_token)
    except ServiceUnavailable as exc:
        raise SignInFailed(
            "SIGN_IN_UNAVAILABLE", "Không lấy được khóa của dịch vụ định danh; thử lại sau.", 503
        ) from exc
    except Unauthenticated as exc:
        raise SignInFailed("SIGN_IN_TOKEN_INVALID", "ID token không hợp lệ.") from exc
    nonce = _claims(id_token).get("nonce")
    if not isinstance(nonce, str) or not hmac.compare_digest(
        nonce.encode(), str(pending["nonce"]).encode()
    ):
        raise SignInFailed("SIGN_IN_NONCE_MISMATCH", "ID token không thuộc về yêu cầu này.")
    level2 = identity.has_level2(settings.oidc_level2_acr)
    if pending["level"] == 2 and not level2:
        raise SignInFailed(
            "SIGN_IN_LEVEL2_REQUIRED",
            "Trang này cần đăng nhập bằng tài khoản định danh điện tử mức 2.",
            403,
        )
    target = safe_next(pending["next"])
    if target == DEFAULT_NEXT and not identity.is_citizen:
        # Staff asked for no page of their own: their console, not the citizen's pages.
        target = console_home(identity.roles) or target
    response = RedirectResponse(target, status_code=303)
    response.headers["Cache-Control"] = "no-store"
    await start_session(request, response, identity, level2=level2)
    response.delete_cookie(
        _binding_cookie(settings), path="/", secure=cookie_secure(settings), httponly=True
    )
    return response


async def _exchange(
    request: Request,
    settings: GatewaySettings,
    issuer: str,
    client_id: str,
    code: str,
    verifier: str,
) -> Mapping[str, Any]:
    provider = await _provider(request, issuer)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": settings.browser_redirect_uri,
        "client_id": client_id,
        "code_verifier": verifier,
    }
    auth = None
    if settings.oidc_client_secret is not None:
        auth = httpx.BasicAuth(client_id, settings.oidc_client_secret.get_secret_value())
    http: httpx.AsyncClient = request.app.state.gateway.http
    try:
        answer = await http.post(
            provider["token_endpoint"],
            data=form,
            auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
            headers={"Accept": "application/json"},
            timeout=_FETCH_TIMEOUT,
        )
        body = orjson.loads(answer.content) if len(answer.content) <= _MAX_ANSWER else None
    except (httpx.HTTPError, orjson.JSONDecodeError) as exc:
        log.warning("oidc_token_request_failed", error=type(exc).__name__)
        raise SignInFailed(
            "SIGN_IN_UNAVAILABLE", "Không liên lạc được với dịch vụ định danh; thử lại sau.", 503
        ) from exc
    if not isinstance(body, dict):
        raise SignInFailed("SIGN_IN_UNAVAILABLE", "Dịch vụ định danh trả lời không hợp lệ.", 503)
    if answer.status_code != 200:
        error = body.get("error")
        log.info("oidc_code_refused", error=error if isinstance(error, str) else None)
        raise SignInFailed(
            "SIGN_IN_CODE_REFUSED", "Mã đăng nhập không dùng được (đã dùng hoặc hết hạn); thử lại."
        )
    tokens: Mapping[str, Any] = body
    return tokens
