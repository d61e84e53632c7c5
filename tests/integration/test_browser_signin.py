"""Signing in through the browser, over real HTTP: the sandbox issuer's code flow, the
gateway's callback, its sessions (SQLite, PostgreSQL, Redis), sign-out and step-up.

The redirects are followed by hand, as a browser would, with one cookie jar: the
issuer sends the browser back to the gateway's registered origin
(`http://127.0.0.1:8000`), which here is the test gateway's ephemeral port.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from tests.integration.conftest import AUDIENCE, Gateway, Gateways

CHROMIUM = "/usr/bin/chromium"
CLIENT_ID = "gateway"
PERSONAL_ID = "001090000042"


@dataclass
class Browser:
    """A cookie jar that follows redirects by hand between the gateway and the issuer."""

    http: httpx.AsyncClient
    gateway: str

    def at_gateway(self, location: str) -> str:
        """`location` on the test gateway when it names the registered origin."""
        if location.startswith(AUDIENCE):
            return self.gateway + location[len(AUDIENCE) :]
        if location.startswith("/"):
            return self.gateway + location
        return location

    async def start(self, next_page: str = "/toi", level: int = 1) -> str:
        """The issuer's authorize URL the gateway sends the browser to."""
        answer = await self.http.get(
            f"{self.gateway}/dang-nhap", params={"next": next_page, "muc": str(level)}
        )
        assert answer.status_code == 303, answer.text
        return answer.headers["location"]

    async def login(self, authorize: str, level: int = 1, **form: str) -> str:
        """Pick the citizen on the issuer's page; the callback URL it sends back."""
        page = await self.http.get(authorize)
        assert page.status_code == 200, page.text
        params = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
        issuer = authorize.split("/authorize", 1)[0]
        fields = {"kind": "citizen", "personal_id": PERSONAL_ID, "level": str(level), **form}
        answer = await self.http.post(f"{issuer}/authorize", data={**params, **fields})
        assert answer.status_code == 303, answer.text
        return self.at_gateway(answer.headers["location"])

    async def sign_in(self, next_page: str = "/toi", level: int = 1) -> httpx.Response:
        callback = await self.login(await self.start(next_page, level), level)
        return await self.http.get(callback)


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return urlunsplit(parts._replace(query=urlencode({**query, **changes})))


def _code_of(callback: str) -> str:
    return parse_qs(urlsplit(callback).query)["code"][0]


@pytest.fixture
def signin_gateway(gateway_factory: Gateways) -> Gateway:
    return gateway_factory(oidc_client_id=CLIENT_ID)


@pytest.fixture
async def browser(signin_gateway: Gateway) -> AsyncIterator[Browser]:
    async with httpx.AsyncClient(timeout=10.0) as http:
        yield Browser(http, signin_gateway.url)


def _refused(answer: httpx.Response, code: str) -> None:
    assert answer.status_code in {400, 403}, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert code in answer.text
    assert "Traceback" not in answer.text
    assert not any("phien=" in v for k, v in answer.headers.multi_items() if k == "set-cookie")


async def test_the_code_flow_signs_a_citizen_in(browser: Browser) -> None:
    authorize = await browser.start("/dang-nhap/phien", level=1)
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["response_mode"] == ["query"]
    assert "acr_values" not in query
    answer = await browser.http.get(await browser.login(authorize))
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dang-nhap/phien"
    cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and "phien" in v)
    assert cookie.startswith("phien=")  # plain http on this machine: not __Host-, not Secure
    flags = [f.strip().lower() for f in cookie.split(";")]
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "path=/" in flags
    assert "secure" not in flags
    assert len(cookie.split(";")[0].removeprefix("phien=")) >= 43
    page = await browser.http.get(browser.at_gateway("/dang-nhap/phien"))
    assert page.status_code == 200
    assert PERSONAL_ID in page.text
    assert "mức 1" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "base-uri 'none'" in csp
    issuer = authorize.split("/authorize", 1)[0]
    assert f"form-action 'self' {issuer}" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"


async def test_a_wrong_code_verifier_is_refused(browser: Browser) -> None:
    authorize = await browser.start()
    # A challenge the gateway's verifier does not match: the issuer refuses the exchange.
    other = _with_query(authorize, code_challenge=secrets.token_urlsafe(32)[:43])
    answer = await browser.http.get(await browser.login(other))
    _refused(answer, "SIGN_IN_CODE_REFUSED")
    assert (await browser.http.get(f"{browser.gateway}/dang-nhap/phien")).status_code == 303


async def test_a_replayed_code_is_refused(browser: Browser) -> None:
    first = await browser.login(await browser.start())
    assert (await browser.http.get(first)).status_code == 303
    # The same callback again: its state was used.
    _refused(await browser.http.get(first), "SIGN_IN_STATE_MISMATCH")
    # The used code under a fresh state: the issuer says invalid_grant.
    second = await browser.login(await browser.start())
    replay = _with_query(second, code=_code_of(first))
    _refused(await browser.http.get(replay), "SIGN_IN_CODE_REFUSED")


async def test_a_mismatched_state_is_refused(browser: Browser) -> None:
    callback = await browser.login(await browser.start())
    forged = _with_query(callback, state=secrets.token_urlsafe(32))
    _refused(await browser.http.get(forged), "SIGN_IN_STATE_MISMATCH")


async def test_a_callback_from_another_browser_is_refused(
    browser: Browser, signin_gateway: Gateway
) -> None:
    callback = await browser.login(await browser.start())
    async with httpx.AsyncClient(timeout=10.0) as victim:
        _refused(await victim.get(callback), "SIGN_IN_STATE_MISMATCH")


async def test_a_nonce_mismatch_is_refused(browser: Browser) -> None:
    first = await browser.start()
    second = await browser.start()
    # The second sign-in's request, carrying the first one's nonce.
    nonce = parse_qs(urlsplit(first).query)["nonce"][0]
    answer = await browser.http.get(await browser.login(_with_query(second, nonce=nonce)))
    _refused(answer, "SIGN_IN_NONCE_MISMATCH")


async def test_a_tampered_session_cookie_is_no_session(browser: Browser) -> None:
    assert (await browser.sign_in("/dang-nhap/phien")).status_code == 303
    value = browser.http.cookies["phien"]
    browser.http.cookies.clear()
    browser.http.cookies.set("phien", value[:-3] + ("abc" if not value.endswith("abc") else "xyz"))
    answer = await browser.http.get(f"{browser.gateway}/dang-nhap/phien")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dang-nhap?next=%2Fdang-nhap%2Fphien&muc=1"


async def test_an_idle_session_ends(gateway_factory: Gateways) -> None:
    gateway = gateway_factory(oidc_client_id=CLIENT_ID, session_idle_minutes=0.02)  # 1.2 s
    async with httpx.AsyncClient(timeout=10.0) as http:
        browser = Browser(http, gateway.url)
        assert (await browser.sign_in("/dang-nhap/phien")).status_code == 303
        assert (await http.get(f"{gateway.url}/dang-nhap/phien")).status_code == 200
        await asyncio.sleep(1.5)
        assert (await http.get(f"{gateway.url}/dang-nhap/phien")).status_code == 303


async def test_sign_out_needs_the_csrf_token(browser: Browser) -> None:
    await browser.sign_in("/dang-nhap/phien")
    page = (await browser.http.get(f"{browser.gateway}/dang-nhap/phien")).text
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    forged = await browser.http.post(
        f"{browser.gateway}/dang-xuat",
        data={"csrf": secrets.token_urlsafe(32)},
        headers={"Accept": "text/html,application/xhtml+xml"},
    )
    _refused(forged, "CSRF_FAILED")
    scripted = await browser.http.post(
        f"{browser.gateway}/dang-xuat", headers={"X-CSRF-Token": secrets.token_urlsafe(32)}
    )
    assert scripted.status_code == 403
    assert scripted.json()["code"] == "CSRF_FAILED"
    assert (await browser.http.get(f"{browser.gateway}/dang-nhap/phien")).status_code == 200
    out = await browser.http.post(f"{browser.gateway}/dang-xuat", data={"csrf": csrf})
    assert out.status_code == 200
    assert (await browser.http.get(f"{browser.gateway}/dang-nhap/phien")).status_code == 303


@pytest.mark.parametrize("target", ["//evil.test/x", "https://evil.test/", "/\\evil.test", "toi"])
async def test_next_never_leaves_the_site(browser: Browser, target: str) -> None:
    answer = await browser.sign_in(target)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/toi"


async def test_a_level_1_session_is_stepped_up_to_level_2(browser: Browser) -> None:
    await browser.sign_in("/dang-nhap/phien", level=1)
    answer = await browser.http.get(f"{browser.gateway}/dang-nhap/phien", params={"muc": "2"})
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location == "/dang-nhap?next=%2Fdang-nhap%2Fphien%3Fmuc%3D2&muc=2"
    authorize = (await browser.http.get(browser.at_gateway(location))).headers["location"]
    assert parse_qs(urlsplit(authorize).query)["acr_values"] == ["vneid-level-2"]
    back = await browser.http.get(await browser.login(authorize, level=2))
    assert back.headers["location"] == "/dang-nhap/phien?muc=2"
    page = await browser.http.get(browser.at_gateway(back.headers["location"]))
    assert page.status_code == 200
    assert "mức 2" in page.text


async def test_a_level_1_answer_to_a_level_2_request_is_refused(browser: Browser) -> None:
    answer = await browser.http.get(await browser.login(await browser.start(level=2), level=1))
    _refused(answer, "SIGN_IN_LEVEL2_REQUIRED")


async def test_sessions_live_in_redis(gateway_factory: Gateways, redis_url: str) -> None:
    gateways = [
        gateway_factory.start(oidc_client_id=CLIENT_ID, redis_url=redis_url) for _ in range(2)
    ]
    async with httpx.AsyncClient(timeout=10.0) as http:
        browser = Browser(http, gateways[0].url)
        assert (await browser.sign_in("/dang-nhap/phien")).status_code == 303
        # Another replica serves the same session.
        page = await http.get(f"{gateways[1].url}/dang-nhap/phien")
        assert page.status_code == 200
        assert PERSONAL_ID in page.text


async def test_another_replica_serves_the_session(gateway_factory: Gateways) -> None:
    gateways = [gateway_factory.start(oidc_client_id=CLIENT_ID) for _ in range(2)]
    async with httpx.AsyncClient(timeout=10.0) as http:
        browser = Browser(http, gateways[0].url)
        assert (await browser.sign_in("/dang-nhap/phien")).status_code == 303
        assert (await http.get(f"{gateways[1].url}/dang-nhap/phien")).status_code == 200


@pytest.mark.browser
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_browser_signs_in_on_the_issuers_page(
    signin_gateway: Gateway, browser_signin: Any
) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await chromium.new_page()
            await browser_signin(page, signin_gateway, PERSONAL_ID, 2, next="/dang-nhap/phien")
            assert PERSONAL_ID in await page.content()
            assert "mức 2" in await page.content()
            cookies = {c["name"]: c for c in await page.context.cookies()}
            assert cookies["phien"]["httpOnly"]
            assert cookies["phien"]["sameSite"] == "Lax"
            await page.click("text=Đăng xuất")
            await page.wait_for_url(f"{signin_gateway.url}/dang-xuat")
            assert "Bạn đã đăng xuất" in await page.content()
        finally:
            await chromium.close()
