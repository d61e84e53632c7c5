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
