"""The staff consoles' common ground, in a real Chromium: staff land on their own
console after signing in, and a page of another role is refused with a clear page."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import BROWSER_CLIENT_ID

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("backend", ["sqlite"], indirect=True),
    pytest.mark.asyncio(loop_scope="module"),
]


async def test_a_staff_member_of_another_role_is_refused_with_a_page(
    gateway_factory: Any, staff_browser: Any
) -> None:
    gateway = gateway_factory(oidc_client_id=BROWSER_CLIENT_ID)
    admin = await staff_browser(
        gateway, "agency_admin", org="VN/GOV/BTP", next="/dang-nhap/phien", shots="consoles"
    )
    for path in ("/kiem-tra", "/van-hanh"):
        response = await admin.visit(path, f"forbidden{path.replace('/', '-')}")
        assert response.status == 403
        text = await admin.page.inner_text("main")
        assert "FORBIDDEN" in text
        assert "Nothing was shown" not in text  # in Vietnamese by default
        assert await admin.page.locator("main a[href='/co-quan']").count() == 1


async def test_a_recorded_read_opened_from_another_site_reads_and_records_nothing(
    gateway_factory: Any, staff_browser: Any
) -> None:
    gateway = gateway_factory(oidc_client_id=BROWSER_CLIENT_ID)
    auditor = await staff_browser(
        gateway, "auditor", org="VN/GOV/TTCP", next="/kiem-tra", shots="consoles"
    )
    url = f"{gateway.url}/kiem-tra?procedure=1.004222&subject=079203001234"
    cross = await auditor.page.request.get(url, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status == 403
    text = await cross.text()
    assert "CROSS_SITE_READ" in text
    assert 'href="/kiem-tra?procedure=1.004222&amp;subject=079203001234"' in text
    # Opened here (typed, or from the page's link), the same search runs.
    again = await auditor.page.request.get(url, headers={"Sec-Fetch-Site": "same-origin"})
    assert again.status == 200
    # A real link on another site, followed in the browser.
    page = auditor.page
    await page.route(
        "http://elsewhere.example/",
        lambda route: route.fulfill(
            content_type="text/html",
            body=f'<!doctype html><html lang="en"><title>x</title><a id="go" href="{url}">go</a>',
        ),
    )
    await page.goto("http://elsewhere.example/")
    await page.click("#go")
    await page.wait_for_load_state("networkidle")
    assert "CROSS_SITE_READ" in await page.inner_text("main")
    await auditor.check("cross-site")
    await page.click("main a[href^='/kiem-tra?']")
    await page.wait_for_load_state("networkidle")
    assert "CROSS_SITE_READ" not in await page.inner_text("main")


async def test_an_address_a_console_cannot_read_is_a_page_not_json(
    gateway_factory: Any, staff_browser: Any
) -> None:
    gateway = gateway_factory(oidc_client_id=BROWSER_CLIENT_ID)
    auditor = await staff_browser(
        gateway, "auditor", org="VN/GOV/TTCP", next="/kiem-tra", shots="consoles"
    )
    response = await auditor.visit("/kiem-tra?procedure=1.004222&limit=many", "invalid")
    assert response.status == 400
    text = await auditor.page.inner_text("main")
    assert "INVALID_ARGUMENT" in text
    assert "limit" in text
    # The JSON API keeps its JSON answer.
    async with gateway.client(auth=None) as http:
        api = await http.get("/audit/events", params={"limit": "many"})
    assert api.headers["content-type"].startswith("application/")
