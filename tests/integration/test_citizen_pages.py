"""The citizen's pages ("Dữ liệu của tôi") in a real Chromium, at desktop and phone sizes.

A citizen signed in through the browser sees the access a client made a moment before,
verifies its receipt in the page, asks a question, approves and revokes a consent; and
another citizen's access, or a form without its CSRF token, is refused.
Each page is checked with axe-core: no serious or critical violation.
"""

from __future__ import annotations

import asyncio
import datetime
import re
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa

from gateway.storage import create_engine
from tests.integration.browsing import axe_violations
from tests.integration.conftest import BROWSER_CLIENT_ID, with_phone

SCREENS = Path("/tmp/screens/toi")
SIZES = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
RESIDENCE = "1.004222"  # phone is read only with consent
CONSENT_REQUEST = """mutation($subject: String!, $until: DateTime!) {
  requestConsent(subject: $subject, procedure: "1.004222", fields: ["Citizen.phone"],
                 validUntil: $until) { id status }
}"""

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("backend", ["sqlite"], indirect=True),
    pytest.mark.asyncio(loop_scope="module"),
]


def _keep(screenshot: Path) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    shutil.copy(screenshot, SCREENS / screenshot.name)


class Citizen:
    """A signed-in citizen's browser contexts, one per size; screenshots and axe checks."""

    def __init__(self, browser: Any, gateway: Any, tmp_path: Path, name: str, signin: Any) -> None:
        self.browser, self.gateway, self.tmp_path, self.name = browser, gateway, tmp_path, name
        self.signin = signin
        self.pages: dict[str, Any] = {}
        self.errors: list[str] = []
        self.axe: dict[str, list[str]] = {}

    async def sign_in(self, personal_id: str) -> None:
        """Sign in at level 2 on the sandbox issuer's login page; the phone shares the cookie."""
        cookies: list[Any] = []
        for size, viewport in SIZES.items():
            context = await self.browser.new_context(viewport=viewport, accept_downloads=True)
            if cookies:
                await context.add_cookies(cookies)
            page = await context.new_page()
            if not cookies:
                await self.signin(page, self.gateway, personal_id, 2)
                cookies = await context.cookies(self.gateway.url)
            page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
            self.pages[size] = page

    @property
    def page(self) -> Any:
        return self.pages["desktop"]

    async def visit(self, path: str, shot: str, *, wait: str | None = None) -> None:
        """Open `path` at every size, screenshot it, and check it with axe."""
        for size, page in self.pages.items():
            await page.goto(f"{self.gateway.url}{path}", wait_until="networkidle")
            if wait:
                await page.wait_for_selector(wait)
            await self.check(page, f"{shot}-{size}")

    async def check(self, page: Any, shot: str) -> None:
        target = self.tmp_path / f"{self.name}-{shot}.png"
        await page.screenshot(path=str(target), full_page=True)
        await asyncio.to_thread(_keep, target)
        bad = await axe_violations(page)
        self.axe[shot] = bad
        assert not bad, f"{shot}: {bad}"

    async def close(self) -> None:
        for page in self.pages.values():
            await page.context.close()


@pytest_asyncio.fixture(loop_scope="module")
async def citizen(
    browser: Any, gateway_factory: Any, browser_signin: Any, tmp_path: Path, request: Any
) -> Any:
    # The query page's option serves /static, which the pages' script and styles need.
    gateway = gateway_factory(oidc_client_id=BROWSER_CLIENT_ID)
    person = Citizen(browser, gateway, tmp_path, request.node.name, browser_signin)
    yield person
    await person.close()
    assert not [e for e in person.errors if "Content Security Policy" in e], person.errors


async def _events(gateway: Any, column: str, value: str) -> list[Any]:
    """The events whose `column` (outcome or type) is `value`, oldest first."""
    assert column in {"outcome", "type"}
    engine = create_engine(gateway.settings.database_url.get_secret_value())
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text(f"SELECT id, type, envelope FROM events WHERE {column} = :v ORDER BY ts"),
                {"v": value},
            )
            return list(rows)
    finally:
        await engine.dispose()


async def _read(
    gateway: Any, person: str, fields: str = "fullName birthDate", **purpose: Any
) -> Any:
    answer = await gateway.post(f'{{ citizen(personalId: "{person}") {{ {fields} }} }}', **purpose)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_a_citizen_sees_an_access_verifies_its_receipt_and_asks_about_it(
    citizen: Citizen, dataset: Any, sign_in: Any
) -> None:
    gateway = citizen.gateway
    person = dataset.sample.citizens[0]
    await _read(gateway, person)
    await gateway.caught_up()
    await citizen.sign_in(person)

    await citizen.visit("/toi", "accesses")
    page = citizen.page
    item = page.locator("li.toi-access").first
    text = await item.inner_text()
    assert "Test agency" in text
    # The fields in plain Vietnamese, not their schema paths.
    assert "Citizen.fullName" not in text
    assert "Họ, chữ đệm và tên" in text
    access_id = await item.get_attribute("data-id")

    # Filters: an organisation that read nothing, a period before the access.
    await page.goto(f"{gateway.url}/toi?organisation=Nobody")
    assert await page.locator("li.toi-access").count() == 0
    await page.goto(f"{gateway.url}/toi?from=2020-01-01&to=2020-01-31&organisation=")
    assert await page.locator("li.toi-access").count() == 0
    yesterday = datetime.date.today() - datetime.timedelta(days=1)
    await page.goto(f"{gateway.url}/toi?from={yesterday.isoformat()}")
    assert await page.locator(f"li[data-id='{access_id}']").count() == 1
    # The English switch keeps the page and its filters.
    await page.click("a[hreflang=en]")
    assert "Who read my data" in await page.inner_text("h1")
    assert "Full name" in await page.inner_text(f"li[data-id='{access_id}']")
    await citizen.check(page, "accesses-english-desktop")
    await page.click("a[hreflang=vi]")

    await citizen.visit(f"/toi/truy-cap/{access_id}", "access")

    # The download is the receipt the JSON route gives.
    async with page.expect_download() as info:
        await page.locator("a[download]").first.click()
    download = await info.value
    saved = citizen.tmp_path / "receipt.tlog-proof"
    await download.save_as(saved)
    async with gateway.client(auth=None) as http:
        json_route = await http.get(
            f"/me/accesses/{access_id}/receipt", headers=await sign_in.citizen(person)
        )
    assert json_route.status_code == 200
    assert saved.read_bytes() == json_route.content

    await citizen.visit(f"/toi/truy-cap/{access_id}/bien-nhan", "receipt", wait="[data-verdict]")
    for page_at in citizen.pages.values():
        verdict = await page_at.locator("#verdict").get_attribute("data-verdict")
        assert verdict == "valid", (await page_at.inner_text("#verdict-detail"), citizen.errors)
        assert await page_at.locator("#verdict").inner_text() == "Hợp lệ"

    # A tampered receipt (one byte of the leaf changed) is shown invalid.
    lines = saved.read_text().split("\n")
    extra = next(i for i, line in enumerate(lines) if line.startswith("extra "))
    leaf = lines[extra]
    lines[extra] = leaf[:-2] + ("A" if leaf[-2] != "A" else "B") + leaf[-1]
    tampered = citizen.tmp_path / "tampered.tlog-proof"
    tampered.write_text("\n".join(lines))
    await page.set_input_files("#other-receipt", str(tampered))
    await page.wait_for_selector("[data-verdict='invalid']")
    assert await page.locator("#verdict").inner_text() == "Không hợp lệ"
    await citizen.check(page, "receipt-tampered-desktop")

    # No witness cosigned it (this gateway has none): said. With a witness policy the
    # citizen loads, the browser asks for the cosignatures, and refuses without them.
    await page.goto(f"{gateway.url}/toi/truy-cap/{access_id}/bien-nhan")
    await page.wait_for_selector("[data-verdict='valid']")
    assert await page.inner_text("#r-witnesses") == (
        "Chưa có bên chứng kiến nào đồng ký điểm kiểm tra này."
    )
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from lienthong_client.log import cosigner_key

    witness = cosigner_key("witness.example/w1", Ed25519PrivateKey.generate().public_key())
    policy = citizen.tmp_path / "witnesses.txt"
    policy.write_text(f"witness {witness.text}\nquorum 1\n")
    await page.set_input_files("#witness-policy", str(policy))
    await page.wait_for_selector("[data-verdict='invalid']")
    assert "chính sách bên chứng kiến" in await page.inner_text("#verdict-detail")
    await citizen.check(page, "receipt-witness-policy-desktop")

    # The question is recorded in the citizen's sealed part; the envelope names no one.
    await page.goto(f"{gateway.url}/toi/truy-cap/{access_id}")
    await page.fill("#question", "Vì sao cơ quan đọc ngày sinh của tôi?")
    await page.locator("form[action$='/hoi'] button").click()
    await page.wait_for_selector(".toi-ok")
    await citizen.check(page, "asked-desktop")
    asked = await _events(gateway, "outcome", "citizen_question")
    envelope = str(asked[-1].envelope)
    assert gateway.signer.client_id in envelope
    assert person not in envelope
    assert access_id not in envelope
    assert "ngày sinh" not in envelope


async def test_a_citizen_approves_then_revokes_a_consent(citizen: Citizen, dataset: Any) -> None:
    gateway = citizen.gateway
    person = with_phone(dataset)  # the read below must serve one
    until = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)).isoformat()
    asked = await gateway.post(
        CONSENT_REQUEST, {"subject": person, "until": until}, procedure=RESIDENCE
    )
    consent_id = asked.json()["data"]["requestConsent"]["id"]
    await citizen.sign_in(person)

    # Every page says a request waits.
    await citizen.visit("/toi", "banner")
    assert await citizen.page.locator(".toi-banner").count() == 1
    await citizen.visit("/toi/dong-y", "consents-requested")
    page = citizen.page
    card = page.locator(f"#c-{consent_id}")
    assert "Citizen.phone" not in await card.inner_text()
    await card.locator("form[action$='/approve'] button").click()
    await page.wait_for_selector(".toi-ok")
    await citizen.visit("/toi/dong-y", "consents-active")
    assert await page.locator(".toi-banner").count() == 0

    read = await _read(gateway, person, "fullName phone", procedure=RESIDENCE)
    assert read["data"]["citizen"]["phone"], read

    await page.locator(f"#c-{consent_id} form[action$='/revoke'] button").click()
    await page.wait_for_selector(".toi-ok")
    await citizen.visit("/toi/dong-y", "consents-history")
    card_text = await page.locator(f"#c-{consent_id}").inner_text()
    assert "Đã rút lại" in card_text
    assert "REVOKED" not in card_text
    after = await _read(gateway, person, "fullName phone", procedure=RESIDENCE)
    assert after["data"]["citizen"]["phone"] is None
    assert any(e["extensions"]["code"] == "CONSENT_REQUIRED" for e in after["errors"])

    # A second request, denied, goes to the history as denied; reads stay withheld.
    again = await gateway.post(
        CONSENT_REQUEST, {"subject": person, "until": until}, procedure=RESIDENCE, case="CASE-2"
    )
    second = again.json()["data"]["requestConsent"]["id"]
    await page.goto(f"{gateway.url}/toi/dong-y")
    await page.locator(f"#c-{second} form[action$='/deny'] button").click()
    await page.wait_for_selector(".toi-ok")
    assert "Đã từ chối" in await page.inner_text(f"#c-{second}")
    assert await page.locator(f"#c-{second} form").count() == 0
    denied = await _read(gateway, person, "fullName phone", procedure=RESIDENCE, case="CASE-2")
    assert denied["data"]["citizen"]["phone"] is None


async def test_another_citizens_access_and_a_form_without_its_token_are_refused(
    citizen: Citizen, dataset: Any
) -> None:
    gateway = citizen.gateway
    owner, other = dataset.sample.citizens[2], dataset.sample.citizens[3]
    await _read(gateway, owner)
    await gateway.caught_up()
    theirs = [row.id for row in await _events(gateway, "type", "access")]
    assert theirs
    await citizen.sign_in(other)
    page = citizen.page

    for path, shot in [
        (f"/toi/truy-cap/{theirs[-1]}", "other-access"),
        (f"/toi/truy-cap/{theirs[-1]}/bien-nhan", "other-receipt"),
    ]:
        answer = await page.goto(f"{gateway.url}{path}")
        assert answer.status == 404
        assert "Không có gì bị thay đổi" in await page.inner_text("main [role=alert]")
        await citizen.check(page, f"{shot}-desktop")
    download = await page.request.get(f"{gateway.url}/toi/truy-cap/{theirs[-1]}/tai-bien-nhan")
    assert download.status == 404
    assert "tlog-proof" not in await download.text()

    # A form sent without its CSRF token is refused, and records nothing.
    before = await _events(gateway, "outcome", "citizen_question")
    no_token = await page.request.post(
        f"{gateway.url}/toi/truy-cap/{theirs[-1]}/hoi", form={"question": "?"}
    )
    assert no_token.status == 403
    assert await _events(gateway, "outcome", "citizen_question") == before
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        signed_out = await http.get("/toi", follow_redirects=False)
    assert signed_out.status_code == 303
    assert signed_out.headers["location"].startswith("/dang-nhap?next=")


async def test_a_citizen_reads_their_own_data_and_sees_that_reading(
    citizen: Citizen, dataset: Any
) -> None:
    gateway = citizen.gateway
    person = dataset.sample.citizens[4]
    record = dataset.citizens[person]
    await citizen.sign_in(person)

    await citizen.visit("/toi/du-lieu", "my-data")
    page = citizen.page
    assert await page.inner_text("dd[data-path='Citizen.fullName']") == record["ho_ten"]
    text = await page.inner_text("main")
    assert "Citizen." not in text
    assert "Họ, chữ đệm và tên" in text
    gender = await page.inner_text("dd[data-path='Citizen.gender']")
    assert gender in {"Nam", "Nữ"}  # the enum's label, not MALE or FEMALE

    # Each visit (two sizes) is a recorded read by the portal, under self-service.
    await gateway.caught_up()
    await citizen.visit("/toi", "after-my-data")
    reads = page.locator("li.toi-access", has_text="Tra cứu dữ liệu cá nhân của chính mình")
    assert await reads.count() == 2
    assert "Luật Bảo vệ dữ liệu cá nhân" in await reads.first.inner_text()


async def test_a_citizen_sees_the_dossier_a_read_was_for(
    citizen: Citizen, dataset: Any, dossier_desk: Any
) -> None:
    gateway = citizen.gateway
    person = dataset.sample.citizens[5]
    # A land transfer reads only what a dossier the registry confirms names.
    code = await dossier_desk.receive([person])
    answer = await gateway.post(
        f'{{ citizen(personalId: "{person}") {{ fullName }} }}',
        procedure="1.013831",
        case=code,
        subjects=[person],
    )
    assert answer.status_code == 200, answer.text
    await gateway.caught_up()
    await citizen.sign_in(person)
    await citizen.page.goto(f"{gateway.url}/toi", wait_until="networkidle")
    access_id = await citizen.page.locator("li.toi-access").first.get_attribute("data-id")
    await citizen.visit(f"/toi/truy-cap/{access_id}", "access-dossier")
    facts = await citizen.page.inner_text("main")
    assert code in facts  # the case is the dossier's code
    dossier = await citizen.page.inner_text("dd.toi-dossier")
    assert "Đã được hệ thống giải quyết thủ tục hành chính xác nhận" in dossier
    assert "Đang xử lý" in dossier
    assert re.search(r"tiếp nhận ngày \d{2}/\d{2}/\d{4}", dossier), dossier


async def _age_level2(gateway: Any, minutes: int) -> None:
    """Make every browser session's level-2 proof `minutes` old."""
    from gateway.storage import browser_sessions

    then = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=minutes)
    engine = create_engine(gateway.settings.database_url.get_secret_value())
    try:
        async with engine.begin() as conn:
            rows = (await conn.execute(sa.select(browser_sessions))).all()
            for row in rows:
                if row.kind == "session" and row.data.get("level2_at"):
                    data = {**row.data, "level2_at": then.isoformat()}
                    await conn.execute(
                        browser_sessions.update()
                        .where(browser_sessions.c.id_hash == row.id_hash)
                        .values(data=data)
                    )
    finally:
        await engine.dispose()


async def test_answering_a_consent_needs_a_recent_level_2_proof(
    citizen: Citizen, dataset: Any
) -> None:
    gateway = citizen.gateway
    person = dataset.sample.citizens[5]
    until = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)).isoformat()
    asked = await gateway.post(
        CONSENT_REQUEST, {"subject": person, "until": until}, procedure=RESIDENCE
    )
    consent_id = asked.json()["data"]["requestConsent"]["id"]
    await citizen.sign_in(person)
    await _age_level2(gateway, 30)

    await citizen.visit("/toi/dong-y", "consents-step-up")
    page = citizen.page
    card = page.locator(f"#c-{consent_id}")
    assert await card.locator("form").count() == 0
    link = card.locator("a[href^='/dang-nhap']")
    assert await link.get_attribute("href") == "/dang-nhap?next=%2Ftoi%2Fdong-y&muc=2"


async def test_a_citizen_asks_for_a_daily_digest_of_reads_on_their_page(
    citizen: Citizen, dataset: Any, sign_in: Any
) -> None:
    gateway = citizen.gateway
    person = dataset.sample.citizens[6]
    await citizen.sign_in(person)
    page = citizen.page
    await page.goto(f"{gateway.url}/toi#thong-bao")
    box = page.locator("#read-digest")
    assert not await box.is_checked()
    assert "Mỗi ngày gửi cho tôi bản tóm tắt" in await page.inner_text(".toi-notify")

    # Without its CSRF token the form changes nothing.
    no_token = await page.request.post(f"{gateway.url}/toi/thong-bao", form={"read_digest": "1"})
    assert no_token.status == 403
    bearer = await sign_in.citizen(person, level=2)
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        assert (await http.get("/me/notifications", headers=bearer)).json() == {"readDigest": False}

    await box.check()
    await page.click("#luu-thong-bao")
    await page.wait_for_url(re.compile(r".*/toi\?thong-bao=1"))
    assert "Đã lưu lựa chọn của bạn." in await page.inner_text(".toi-notify [role=status]")
    assert await page.locator("#read-digest").is_checked()
    await citizen.check(page, "digest-chosen-desktop")
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        assert (await http.get("/me/notifications", headers=bearer)).json() == {"readDigest": True}

    await page.locator("#read-digest").uncheck()
    await page.click("#luu-thong-bao")
    await page.wait_for_url(re.compile(r".*/toi\?thong-bao=1"))
    assert not await page.locator("#read-digest").is_checked()
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        assert (await http.get("/me/notifications", headers=bearer)).json() == {"readDigest": False}
