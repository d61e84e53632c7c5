"""What browser tests share: Debian's Chromium, sign-in as staff, screenshots, axe-core.

```
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module"), ...]

async def test_x(browser, staff_browser):
    auditor = await staff_browser(gateway, "auditor", org="VN/GOV/TTCP", shots="kiem-tra")
    await auditor.visit("/kiem-tra", "search")      # screenshot + axe: no serious violation
```

`browser` (a fixture of `conftest`) is one Chromium per test module.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

CHROMIUM: Final = "/usr/bin/chromium"
AXE: Final = Path(__file__).parent / "assets" / "axe.min.js"
SCREENS: Final = Path("/tmp/screens")
DESKTOP: Final = {"width": 1280, "height": 900}
_ARGS: Final = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """Debian's Chromium, launched by Playwright (never a browser a tool downloads)."""
    from playwright.async_api import async_playwright

    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium", pytrace=False)
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def axe_violations(page: Any) -> list[str]:
    """The serious and critical axe-core violations of the page as it is now."""
    if not await page.evaluate("typeof axe !== 'undefined'"):
        await page.evaluate(AXE.read_text())
    result = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in {"serious", "critical"}
    ]


def _keep(screenshot: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(screenshot, folder / screenshot.name)


class PageUser:
    """A signed-in browser context: visits pages, saves screenshots, checks them with axe.

    Screenshots go to `tmp_path` and are copied to `/tmp/screens/<shots>/`; `axe` keeps
    each page's violations by screenshot name (a test asserts none on every page).
    """

    def __init__(self, context: Any, page: Any, gateway: Any, tmp_path: Path, shots: str) -> None:
        self.context, self.page, self.gateway = context, page, gateway
        self.tmp_path, self.folder = tmp_path, SCREENS / shots
        self.errors: list[str] = []
        self.axe: dict[str, list[str]] = {}
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

    async def visit(self, path: str, shot: str, *, wait: str | None = None) -> Any:
        """Open `path`, screenshot it as `shot`, and check it with axe; the response."""
        response = await self.page.goto(f"{self.gateway.url}{path}", wait_until="networkidle")
        if wait:
            await self.page.wait_for_selector(wait)
        await self.check(shot)
        return response

    async def check(self, shot: str) -> None:
        """Screenshot the page as it is now (`<shot>.png`, full page) and check it with axe."""
        target = self.tmp_path / f"{shot}.png"
        await self.page.screenshot(path=str(target), full_page=True)
        await asyncio.to_thread(_keep, target, self.folder)
        bad = await axe_violations(self.page)
        self.axe[shot] = bad
        assert not bad, f"{shot}: {bad}"

    def csp_errors(self) -> list[str]:
        return [e for e in self.errors if "Content Security Policy" in e]

    async def close(self) -> None:
        await self.context.close()


async def sign_in_staff(
    page: Any,
    gateway: Any,
    *,
    role: str,
    org: str,
    sub: str,
    next: str,
    audience: str,
) -> None:
    """Sign a page in as staff on the sandbox issuer's real login page, landing on `next`.

    The issuer sends the browser back to the registered origin (`audience`); the page
    routes that address to the test gateway's own port.
    """
    callback = f"{audience}/dang-nhap/callback"

    async def to_gateway(route: Any) -> None:
        url: str = route.request.url
        await route.fulfill(status=303, headers={"Location": gateway.url + url[len(audience) :]})

    def is_callback(url: str) -> bool:
        return url.startswith(callback)

    await page.route(is_callback, to_gateway)
    try:
        query = httpx.QueryParams({"next": next, "muc": "1"})
        await page.goto(f"{gateway.url}/dang-nhap?{query}")
        await page.fill("#sub", sub)
        await page.select_option("#role", role)
        await page.fill("#org", org)
        await page.click("#dang-nhap-can-bo")
        await page.wait_for_url(lambda url: url.startswith(gateway.url + next))
    finally:
        await page.unroute(is_callback)
