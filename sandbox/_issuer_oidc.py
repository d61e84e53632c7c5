"""The sandbox issuer's authorization code flow (OpenID Connect, PKCE S256 only).

```
GET  /authorize   the login page: pick a synthetic citizen (level 1 or 2) or demo staff
POST /authorize   the page's answer: back to the client's redirect URI with a code
POST /token       the code and its PKCE verifier -> access token and ID token
```

Only registered clients (`issuer_clients`: client id -> exact redirect URIs) may ask.
A code is random (256 bits), lives 60 seconds, is bound to the client, the redirect
URI, the PKCE challenge and the nonce, and is used once: a second exchange is
`invalid_grant`. There are no passwords: whoever opens the page signs in as anyone.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import html
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlencode

import structlog
from fastapi import FastAPI, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from sandbox._issuer_keys import IssuerKey
from sandbox.config import SandboxSettings

__all__ = ["CODE_LIFETIME", "AuthorizationCodes", "add_code_flow"]

log = structlog.get_logger(__name__)

CODE_LIFETIME: Final = 60
"""Seconds an authorization code may be exchanged."""
_VERIFIER: Final = re.compile(r"[A-Za-z0-9._~-]{43,128}")
_CHALLENGE: Final = re.compile(r"[A-Za-z0-9_-]{43}")
_PERSONAL_ID: Final = re.compile(r"[0-9]{12}")
_ORG: Final = re.compile(r"VN/GOV/[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")
_TEXT: Final = re.compile(r"[^\x00-\x1f\x7f]{1,128}")
_STATE: Final = re.compile(r"[\x21-\x7e]{1,512}")
_STAFF_ROLES: Final = ("agency_admin", "auditor", "operator", "policy_editor")
_PARAMS: Final = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "acr_values",
    "response_mode",
)


@dataclass(frozen=True, slots=True)
class _Grant:
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str
    claims: Mapping[str, Any]
    expires: float


@dataclass(slots=True)
class AuthorizationCodes:
    """Codes issued and not yet exchanged, in this process."""

    clock: Callable[[], float] = time.monotonic
    _grants: dict[str, _Grant] = field(default_factory=dict)

    def issue(self, grant: _Grant) -> str:
        """A new code for `grant`."""
        now = self.clock()
        for code in [c for c, g in self._grants.items() if g.expires < now]:
            del self._grants[code]
        code = secrets.token_urlsafe(32)
        self._grants[code] = grant
        return code

    def take(self, code: str) -> _Grant | None:
        """The grant of `code`, once: the code is gone after this call."""
        grant = self._grants.pop(code, None)
        if grant is None or grant.expires < self.clock():
            return None
        return grant


class _Refused(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        '<!doctype html>\n<html lang="vi"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head><body><main>"
        f"<h1>{html.escape(title)}</h1>{body}</main></body></html>\n"
    )
    return HTMLResponse(
        document,
        status_code=status,
        headers={
            "Content-Security-Policy": "default-src 'none'; form-action 'self' http: https:; "
            "frame-ancestors 'none'; base-uri 'none'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


def _bad_request(message: str) -> HTMLResponse:
    body = (
        f"<p>{html.escape(message)}</p>"
        "<p>Yêu cầu đăng nhập không hợp lệ; không thể quay lại ứng dụng. "
        "(The sign-in request is not valid and cannot be sent back.)</p>"
    )
    return _page("Yêu cầu không hợp lệ", body, status=400)


def _redirect(uri: str, params: Mapping[str, str]) -> RedirectResponse:
    separator = "&" if "?" in uri else "?"
    return RedirectResponse(uri + separator + urlencode(params), status_code=303)


def _check_request(params: Mapping[str, str]) -> None:
    """Raise `_Refused` unless the request is an OpenID code request with PKCE S256."""
    if params.get("response_type") != "code":
        raise _Refused("unsupported_response_type", "Only response_type=code is supported.")
    if "openid" not in params.get("scope", "").split():
        raise _Refused("invalid_scope", "The scope must include openid.")
    if params.get("response_mode", "query") != "query":
        raise _Refused("invalid_request", "Only response_mode=query is supported.")
    if not _STATE.fullmatch(params.get("state", "")):
        raise _Refused("invalid_request", "A state is required.")
    if not _STATE.fullmatch(params.get("nonce", "")):
        raise _Refused("invalid_request", "A nonce is required.")
    if params.get("code_challenge_method") != "S256":
        raise _Refused("invalid_request", "PKCE is required, with code_challenge_method=S256.")
    if not _CHALLENGE.fullmatch(params.get("code_challenge", "")):
        raise _Refused("invalid_request", "The code_challenge is not an S256 challenge.")


def _citizen_claims(form: Mapping[str, str], acr: Mapping[int, str]) -> dict[str, Any]:
    personal_id = form.get("personal_id", "").strip()
    if _PERSONAL_ID.fullmatch(personal_id) is None:
        raise ValueError("Số định danh cá nhân gồm 12 chữ số. (A personal id is 12 digits.)")
    level = 2 if form.get("level") == "2" else 1
    return {"sub": personal_id, "roles": ["citizen"], "acr": acr[level]}


def _staff_claims(form: Mapping[str, str]) -> dict[str, Any]:
    sub, role, org = (form.get(k, "").strip() for k in ("sub", "role", "org"))
    if _TEXT.fullmatch(sub) is None:
        raise ValueError("Nhập mã cán bộ. (Enter a staff id.)")
    if role not in _STAFF_ROLES:
        raise ValueError("Vai trò không hợp lệ. (Unknown role.)")
    if _ORG.fullmatch(org) is None:
        raise ValueError("Cơ quan có dạng VN/GOV/<mã>. (The organisation is VN/GOV/<org>.)")
    return {"sub": sub, "roles": [role], "org": org}


def _login_page(
    params: Mapping[str, str], samples: list[str], level2_asked: bool, error: str | None
) -> HTMLResponse:
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(params[name])}">'
        for name in _PARAMS
        if name in params
    )
    options = "".join(f'<option value="{html.escape(s)}">' for s in samples)
    first = html.escape(samples[0]) if samples else ""
    checked1, checked2 = ("", " checked") if level2_asked else (" checked", "")
    roles = "".join(f'<option value="{r}">{r}</option>' for r in _STAFF_ROLES)
    notice = f'<p role="alert"><strong>{html.escape(error)}</strong></p>' if error else ""
    body = f"""{notice}
<p>Máy chủ định danh thử nghiệm: không có mật khẩu, chỉ dùng cho bản trình diễn.
(Sandbox issuer: no passwords, demo only.)</p>
<form method="post" action="/authorize">{hidden}
<input type="hidden" name="kind" value="citizen">
<h2>Công dân</h2>
<p><label for="personal_id">Số định danh cá nhân</label>
<input id="personal_id" name="personal_id" value="{first}" list="mau" inputmode="numeric"
 pattern="[0-9]{{12}}" required><datalist id="mau">{options}</datalist></p>
<fieldset><legend>Mức định danh</legend>
<label><input type="radio" name="level" value="1"{checked1}> Mức 1</label>
<label><input type="radio" name="level" value="2"{checked2}> Mức 2</label></fieldset>
<p><button type="submit" id="dang-nhap-cong-dan">Đăng nhập công dân</button></p>
</form>
<form method="post" action="/authorize">{hidden}
<input type="hidden" name="kind" value="staff">
<h2>Cán bộ</h2>
<p><label for="sub">Mã cán bộ</label> <input id="sub" name="sub" value="can-bo-demo"></p>
<p><label for="role">Vai trò</label> <select id="role" name="role">{roles}</select></p>
<p><label for="org">Cơ quan</label> <input id="org" name="org" value="VN/GOV/BCA"></p>
<p><button type="submit" id="dang-nhap-can-bo">Đăng nhập cán bộ</button></p>
</form>"""
    return _page("Đăng nhập (thử nghiệm)", body, status=400 if error else 200)


def add_code_flow(
    app: FastAPI,
    *,
    key: IssuerKey,
    settings: SandboxSettings,
    acr: Mapping[int, str],
    samples: Callable[[], list[str]],
    access_token: Callable[[dict[str, Any]], dict[str, Any]],
) -> AuthorizationCodes:
    """Add `/authorize` and `/token` to the issuer `app`; returns its codes."""
    issuer = settings.issuer_base_url
    clients = settings.issuer_clients
    codes = AuthorizationCodes()
    sample_ids: list[str] | None = None

    async def sample_list() -> list[str]:
        nonlocal sample_ids
        if sample_ids is None:
            sample_ids = await asyncio.to_thread(samples)
        return sample_ids

    def acceptable_redirect(params: Mapping[str, str]) -> str | None:
        uris = clients.get(params.get("client_id", ""))
        uri = params.get("redirect_uri", "")
        return uri if uris is not None and uri in uris else None

    async def answer(params: dict[str, str], form: Mapping[str, str] | None) -> Response:
        redirect_uri = acceptable_redirect(params)
        if redirect_uri is None:
            return _bad_request(
                "Ứng dụng (client_id) hoặc địa chỉ quay lại (redirect_uri) chưa được đăng ký."
            )
        try:
            _check_request(params)
        except _Refused as refused:
            back = {"error": refused.error, "error_description": refused.description}
            if params.get("state"):
                back["state"] = params["state"]
            return _redirect(redirect_uri, {**back, "iss": issuer})
        level2_asked = acr[2] in params.get("acr_values", "").split()
        if form is None:
            return _login_page(params, await sample_list(), level2_asked, None)
        try:
            claims = (
                _staff_claims(form) if form.get("kind") == "staff" else _citizen_claims(form, acr)
            )
        except ValueError as exc:
            return _login_page(params, await sample_list(), level2_asked, str(exc))
        code = codes.issue(
            _Grant(
                client_id=params["client_id"],
                redirect_uri=redirect_uri,
                code_challenge=params["code_challenge"],
                nonce=params["nonce"],
                claims=claims,
                expires=codes.clock() + CODE_LIFETIME,
            )
        )
        log.info("authorization_code_issued", client_id=params["client_id"])
        return _redirect(redirect_uri, {"code": code, "state": params["state"], "iss": issuer})

    @app.get("/authorize", response_model=None)
    async def authorize(request: Request) -> Response:
        return await answer(dict(request.query_params), None)

    @app.post("/authorize", response_model=None)
    async def authorize_answer(request: Request) -> Response:
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        params: dict[str, str] = {k: form[k] for k in _PARAMS if k in form}
        return await answer(params, form)

    def token_error(error: str, description: str) -> JSONResponse:
        return JSONResponse(
            {"error": error, "error_description": description},
            status_code=400,
            headers={"Cache-Control": "no-store"},
        )

    @app.post("/token", response_model=None)
    async def token(request: Request) -> JSONResponse:
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        if form.get("grant_type") != "authorization_code":
            return token_error("unsupported_grant_type", "Only authorization_code.")
        client_id = form.get("client_id", "")
        if client_id not in clients:
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Unknown client."},
                status_code=401,
                headers={"Cache-Control": "no-store"},
            )
        grant = codes.take(form.get("code", ""))
        if grant is None:
            return token_error("invalid_grant", "The code is unknown, expired or used.")
        if grant.client_id != client_id or grant.redirect_uri != form.get("redirect_uri"):
            return token_error("invalid_grant", "The code was issued to another client or URI.")
        verifier = form.get("code_verifier", "")
        if _VERIFIER.fullmatch(verifier) is None or not hmac.compare_digest(
            _s256(verifier), grant.code_challenge
        ):
            return token_error("invalid_grant", "The code verifier does not match.")
        claims = dict(grant.claims)
        tokens = access_token(claims)
        now = int(time.time())
        id_token = key.sign(
            {
                "iss": issuer,
                "aud": client_id,
                **claims,
                "nonce": grant.nonce,
                "iat": now,
                "auth_time": now,
                "exp": now + settings.issuer_token_lifetime,
            },
            typ="JWT",
        )
        log.info("authorization_code_exchanged", client_id=client_id)
        return JSONResponse({**tokens, "id_token": id_token}, headers={"Cache-Control": "no-store"})

    return codes
