"""The query page in a real Chromium: it loads and runs a query with no outside request."""

from __future__ import annotations

import secrets
import shutil

import pytest

from gateway.web._demo_tokens import query_page_url

CHROMIUM = "/usr/bin/chromium"

# The page does not depend on the backend.
pytestmark = [pytest.mark.browser, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]


@pytest.fixture
def chromium() -> str:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium", pytrace=False)
    return CHROMIUM


async def test_query_page_runs_a_query_offline(
    gateway_factory, dataset, chromium, demo_client
) -> None:
    from playwright.async_api import async_playwright

    personal_id = dataset.sample.citizens[0]
    full_name = dataset.citizens[personal_id]["ho_ten"]
    example = f'{{ citizen(personalId: "{personal_id}") {{ fullName }} }}'
    # The page signs its requests through the loopback-only demo token route, which wants
    # this start's secret: a newcomer opens the address `gateway demo` prints, which
    # carries it in the fragment, and then, having no secret, the bare page.
    secret = secrets.token_urlsafe(32)
    gateway = gateway_factory(
        query_page=True, query_example=example, unsafe_demo_tokens=True, unsafe_demo_secret=secret
    )
    sent_secrets: list[str | None] = []
    requested: list[str] = []
    failed: list[str] = []
    console_errors: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=chromium,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = await browser.new_page()
            page.on("request", lambda r: requested.append(r.url))
            page.on(
                "request",
                lambda r: (
                    sent_secrets.append(r.headers.get("x-demo-secret"))
                    if r.url.endswith("/_unsafe/demo-tokens")
                    else None
                ),
            )
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.on(
                "console", lambda m: console_errors.append(m.text) if m.type == "error" else None
            )
            # GraphiQL asks for the schema with the standard introspection query first.
            async with page.expect_response(
                lambda r: (
                    r.url == f"{gateway.url}/graphql" and "__schema" in (r.request.post_data or "")
                )
            ) as introspected:
                await page.goto(query_page_url(gateway.url, secret), wait_until="networkidle")
            schema = await (await introspected.value).json()
            address_bar = page.url
            await page.locator(".graphiql-execute-button").click()
            await page.locator(".result-window").get_by_text(full_name).wait_for(timeout=15_000)
            # A reload keeps the tab's secret.
            await page.reload(wait_until="networkidle")
            await page.locator(".graphiql-execute-button").click()
            await page.locator(".result-window").get_by_text(full_name).wait_for(timeout=15_000)

            # Without the printed address there is no secret, and the page says where to go.
            bare = await browser.new_page()
            await bare.goto(f"{gateway.url}/graphql", wait_until="networkidle")
            await bare.locator(".graphiql-execute-button").click()
            await bare.locator(".result-window").get_by_text("#demo=").wait_for(timeout=15_000)
            refused = await bare.locator(".result-window").inner_text()
        finally:
            await browser.close()
    assert "errors" not in schema, schema
    assert "Citizen" in {t["name"] for t in schema["data"]["__schema"]["types"]}
    assert requested, "the page made no request at all"
    outside = [u for u in requested if not u.startswith(gateway.url) and not u.startswith("data:")]
    assert outside == []
    assert failed == []
    # The secret went in the header alone: never in an address sent, nor left in the bar.
    assert sent_secrets[:2] == [secret, secret]
    assert all(secret not in url for url in requested)
    assert secret not in address_bar
    assert "FORBIDDEN" in refused
    assert full_name not in refused
    assert console_errors == []


def _male_citizen(dataset) -> str:
    return next(p for p in dataset.citizens if dataset.citizens[p]["gioi_tinh"] == "Nam")


async def test_query_page_is_vietnamese_and_switches_to_english(
    gateway_factory, dataset, chromium, demo_client, tmp_path
) -> None:
    """Labels, procedure names and legal bases are Vietnamese; `?lang=en` switches and stays."""
    from playwright.async_api import async_playwright

    personal_id = _male_citizen(dataset)
    example = (
        f'{{ prefill(procedure: "1.004222", applicant: "{personal_id}") '
        "{ fields { name path value } } }"
    )
    secret = secrets.token_urlsafe(32)
    gateway = gateway_factory(
        query_page=True, query_example=example, unsafe_demo_tokens=True, unsafe_demo_secret=secret
    )
    screens = tmp_path / "screens"
    screens.mkdir()
    console_errors: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 860})
            page = await context.new_page()
            page.on(
                "console", lambda m: console_errors.append(m.text) if m.type == "error" else None
            )
            await page.goto(query_page_url(gateway.url, secret), wait_until="networkidle")
            lang = await page.locator("html").get_attribute("lang")
            purpose = await page.locator("#purpose").inner_text()
            chosen = await page.locator("#purpose select option:checked").inner_text()
            await page.locator(".graphiql-execute-button").click()
            result = page.locator(".result-window")
            await result.get_by_text("Nam (MALE)").wait_for(timeout=15_000)
            await page.screenshot(path=screens / "query-page-vi.png")

            # Another procedure: its legal basis follows, in Vietnamese.
            await page.locator("#purpose select").select_option("1.001193")
            legal_basis = await page.locator("#legal-basis").inner_text()

            # The language switch is a plain link.
            async with page.expect_navigation(wait_until="networkidle"):
                await page.get_by_role("link", name="English").click()
            switched_to = page.url
            english = await page.locator("#purpose").inner_text()
            english_lang = await page.locator("html").get_attribute("lang")
            await page.locator(".graphiql-execute-button").click()
            await result.get_by_text("Male (MALE)").wait_for(timeout=15_000)
            await page.screenshot(path=screens / "query-page-en.png")
            # The cookie keeps English on the bare address.
            await page.goto(f"{gateway.url}/graphql", wait_until="networkidle")
            kept = await page.locator("html").get_attribute("lang")

            served = await page.request.get(f"{gateway.url}/graphql/nhan.json?lang=vi")
            served_labels = await served.json()
            english_labels = await (
                await page.request.get(f"{gateway.url}/graphql/nhan.json?lang=en")
            ).json()

            phone = await browser.new_page(viewport={"width": 390, "height": 844})
            await phone.goto(f"{gateway.url}/graphql?lang=vi", wait_until="networkidle")
            await phone.screenshot(path=screens / "query-page-phone-vi.png")
            await phone.close()
        finally:
            await browser.close()
    assert lang == "vi"
    assert "Thủ tục" in purpose
    assert "Số hồ sơ" in purpose
    assert "Procedure" not in purpose
    assert chosen == "1.004222 Đăng ký thường trú"
    assert "Căn cứ pháp lý:" in legal_basis
    assert "Luật Hộ tịch số 60/2014/QH13, Điều 13-16" in legal_basis
    assert switched_to == f"{gateway.url}/graphql?lang=en"
    assert english_lang == "en"
    assert "Procedure" in english
    assert "1.004222 Permanent residence registration" in english
    assert "Thủ tục" not in english
    assert kept == "en"
    assert served_labels["enums"]["Gender"]["MALE"] == "Nam"
    assert served_labels["fields"]["Citizen.fullName"] == "Họ, chữ đệm và tên"
    assert served_labels["procedures"]["1.004222"]["name"] == "Đăng ký thường trú"
    assert served_labels["enumFields"]["gender"] == ["Gender"]
    assert english_labels["enums"]["Gender"]["MALE"] == "Male"
    assert console_errors == []
