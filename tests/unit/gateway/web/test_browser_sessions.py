"""Browser sessions: the cookie, the guards, step-up to level 2, CSRF, expiry."""

from __future__ import annotations

import asyncio
import datetime
from types import SimpleNamespace
from typing import Any

import httpx
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from gateway.admission import Identity
from gateway.config import GatewaySettings
from gateway.errors import GatewayError
from gateway.web import (
    BrowserCitizen,
    BrowserCitizenLevel2,
    BrowserSession,
    BrowserStaff,
    SignInRequired,
    check_csrf,
)
from gateway.web._graphql import error_response
from gateway.web._sessions import sign_in_required_response, start_session

CITIZEN = Identity(
    subject="001090000001",
    roles=frozenset({"citizen"}),
    org=None,
    acr="vneid-level-1",
    issuer="http://127.0.0.1:9000",
)
AUDITOR = Identity(
    subject="auditor-1",
    roles=frozenset({"auditor"}),
    org="VN/GOV/TTCP",
    acr=None,
    issuer="http://127.0.0.1:9000",
)


def _app(settings: GatewaySettings, engine: Any) -> FastAPI:
    app = FastAPI()
    app.state.gateway = SimpleNamespace(settings=settings, engine=engine, redis=None)

    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, exc: SignInRequired) -> Response:
        return sign_in_required_response(request, exc)

    @app.exception_handler(GatewayError)
    async def refused(_request: Request, exc: GatewayError) -> Response:
        return error_response(exc)

    @app.post("/_test/sign-in")
    async def sign_in_as(request: Request, who: str, level2: bool = False) -> Response:
        response = JSONResponse({})
        identity = CITIZEN if who == "citizen" else AUDITOR
        session = await start_session(request, response, identity, level2=level2)
        response.body = response.render({"csrf": session.csrf_token})
        response.headers["content-length"] = str(len(response.body))
        return response

    @app.get("/toi")
    async def mine(session: BrowserCitizen) -> dict[str, Any]:
        return {"subject": session.identity.subject, "level2": session.level2_at is not None}

    @app.get("/toi/muc-2")
    async def level2(session: BrowserCitizenLevel2) -> dict[str, Any]:
        return {"ok": True}

    @app.post("/toi/gui")
    async def send(request: Request, session: BrowserCitizen) -> dict[str, Any]:
        await check_csrf(request, session)
        return {"ok": True}

    @app.get("/kiem-toan")
    async def audit(session: BrowserStaff("auditor")) -> dict[str, Any]:  # type: ignore[valid-type]
        return {"org": session.identity.org}

    return app


def _client(app: FastAPI, origin: str = "http://127.0.0.1:8000") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=origin)


async def _signed_in(client: httpx.AsyncClient, who: str = "citizen", level2: bool = False) -> str:
    answer = await client.post("/_test/sign-in", params={"who": who, "level2": level2})
    assert answer.status_code == 200
    csrf: str = answer.json()["csrf"]
    return csrf


async def test_without_a_session_a_page_sends_to_sign_in(engine: Any) -> None:
    async with _client(_app(GatewaySettings(), engine)) as client:
        answer = await client.get("/toi")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/dang-nhap?next=%2Ftoi&muc=1"
        refused = await client.post("/toi/gui")
        assert refused.status_code == 403
        assert "SIGN_IN_REQUIRED" in refused.text


async def test_the_cookie_holds_a_random_id_with_strict_flags(engine: Any) -> None:
    async with _client(_app(GatewaySettings(), engine)) as client:
        answer = await client.post("/_test/sign-in", params={"who": "citizen"})
        cookie = answer.headers["set-cookie"]
        name, _, rest = cookie.partition("=")
        assert name == "phien"  # plain http on this machine: no Secure, no __Host-
        value = rest.split(";", 1)[0]
        assert len(value) >= 43  # 256 bits, URL-safe base64
        flags = cookie.lower()
        assert "httponly" in flags
        assert "samesite=lax" in flags
        assert "path=/" in flags
        assert "secure" not in flags
        assert (await client.get("/toi")).json() == {"subject": CITIZEN.subject, "level2": False}


async def test_an_https_origin_gets_a_host_cookie(engine: Any) -> None:
    settings = GatewaySettings(origin="https://gateway.example.vn")
    async with _client(_app(settings, engine), "https://gateway.example.vn") as client:
        answer = await client.post("/_test/sign-in", params={"who": "citizen"})
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("__Host-phien=")
        assert "secure" in cookie.lower()
        assert (await client.get("/toi")).status_code == 200


async def test_a_tampered_cookie_is_no_session(engine: Any) -> None:
    async with _client(_app(GatewaySettings(), engine)) as client:
        await _signed_in(client)
        value = client.cookies["phien"]
        client.cookies.set("phien", value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))
        assert (await client.get("/toi")).status_code == 303


async def test_an_idle_session_ends(engine: Any) -> None:
    settings = GatewaySettings(session_idle_minutes=0.01)  # 0.6 s
    async with _client(_app(settings, engine)) as client:
        await _signed_in(client)
        assert (await client.get("/toi")).status_code == 200
        await asyncio.sleep(1.0)
        assert (await client.get("/toi")).status_code == 303


async def test_level_1_is_stepped_up_to_level_2(engine: Any) -> None:
    async with _client(_app(GatewaySettings(), engine)) as client:
        await _signed_in(client, level2=False)
        answer = await client.get("/toi/muc-2")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/dang-nhap?next=%2Ftoi%2Fmuc-2&muc=2"
        await _signed_in(client, level2=True)
        assert (await client.get("/toi/muc-2")).status_code == 200


def test_a_level_2_proof_older_than_10_minutes_is_not_fresh() -> None:
    now = datetime.datetime.now(datetime.UTC)
    old = BrowserSession(
        id="SESSION-ID",
        identity=CITIZEN,
        csrf_token="CSRF-TOKEN",
        level2_at=now - datetime.timedelta(minutes=11),
    )
    fresh = BrowserSession(
        id="SESSION-ID", identity=CITIZEN, csrf_token="CSRF-TOKEN", level2_at=now
    )
    assert not old.level2_within(datetime.timedelta(minutes=10), now)
    assert fresh.level2_within(datetime.timedelta(minutes=10), now)
    assert "SESSION-ID" not in repr(old)
    assert "CSRF-TOKEN" not in repr(old)
    assert CITIZEN.subject not in repr(old)


async def test_csrf_is_checked_from_the_form_or_the_header(engine: Any) -> None:
    async with _client(_app(GatewaySettings(), engine)) as client:
        csrf = await _signed_in(client)
        assert (await client.post("/toi/gui", data={"csrf": csrf})).status_code == 200
        assert (await client.post("/toi/gui", headers={"X-CSRF-Token": csrf})).status_code == 200
        forged = await client.post("/toi/gui", data={"csrf": csrf[:-1] + "x"})
        assert forged.status_code == 403
        assert forged.json()["code"] == "CSRF_FAILED"
        assert (await client.post("/toi/gui")).json()["code"] == "CSRF_FAILED"


async def test_staff_pages_need_the_role(engine: Any) -> None:
    async with _client(_app(GatewaySettings(), engine)) as client:
        assert (await client.get("/kiem-toan")).status_code == 303
        await _signed_in(client, who="auditor")
        assert (await client.get("/kiem-toan")).json() == {"org": "VN/GOV/TTCP"}
        # A member of staff is not a citizen: the citizen's pages ask for sign-in.
        assert (await client.get("/toi")).status_code == 303


async def test_the_session_id_is_never_logged(engine: Any, monkeypatch: Any) -> None:
    import sys

    import structlog
    from structlog.testing import LogCapture

    # Every line the web modules write, at every level, whatever an earlier test
    # configured for the process's loggers.
    own = LogCapture()
    for name, module in list(sys.modules.items()):
        if name.startswith("gateway.web") and hasattr(module, "log"):
            monkeypatch.setattr(
                module,
                "log",
                structlog.wrap_logger(
                    None, processors=[own], wrapper_class=structlog.make_filtering_bound_logger(0)
                ),
            )
    async with _client(_app(GatewaySettings(), engine)) as client:
        csrf = await _signed_in(client)
        await client.get("/toi")
        await client.post("/toi/gui", data={"csrf": "forged"})
        session_id = client.cookies["phien"]
    assert own.entries
    assert session_id not in repr(own.entries)
    assert csrf not in repr(own.entries)
