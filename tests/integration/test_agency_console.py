"""The agency admin's console (`/co-quan`), in a real Chromium: an admin uploads a
broken manifest (the error names the field and the code, nothing is stored), then a
good one (a pending version), runs its dry run in the page (a report without a value of
the record), sees it active once a platform operator approved it, disables it and rolls
back; an admin of another organisation is refused the connector's page.

The module registers connectors: its gateway has a database of its own.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import sandbox
from tests.integration.conftest import BROWSER_CLIENT_ID

pytestmark = [
    pytest.mark.browser,
    pytest.mark.own_database,
    pytest.mark.parametrize("backend", ["sqlite"], indirect=True),
    pytest.mark.asyncio(loop_scope="module"),
]

MANIFESTS = Path(sandbox.__file__).parent / "manifests"
ORG = "VN/GOV/DATDAI"
NAME = "dat-dai-thu"


def _land_manifest(path: Path, **changes: Any) -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load((MANIFESTS / "land.yaml").read_text("utf-8"))
    manifest.update(name=NAME, priority=200, database={"url": f"sqlite:///{path}"}, **changes)
    return manifest


def _sample(land_url: str) -> tuple[Path, str, set[str]]:
    """The land registry's file, a parcel's key, and every value of its record (as whole
    tokens worth looking for)."""
    path = Path(land_url.removeprefix("sqlite:///")).resolve()
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        parcel = dict(db.execute("SELECT * FROM thua_dat ORDER BY ma_thua LIMIT 1").fetchone())
        key = parcel["ma_thua"]
        rows = [parcel]
        for table in ("giay_chung_nhan", "chu_su_dung", "the_chap"):
            rows += [
                dict(r) for r in db.execute(f"SELECT * FROM {table} WHERE ma_thua = ?", (key,))
            ]
    values = {
        str(v)
        for row in rows
        for v in row.values()
        if v is not None and (len(str(v)) >= 3 if isinstance(v, str) else abs(v) >= 100)
    }
    assert key in values
    assert len(values) >= 5
    return path, key, values


def _leaked(values: set[str], text: str) -> list[str]:
    return sorted(
        v for v in values if re.search(rf"(?<![0-9A-Za-z]){re.escape(v)}(?![0-9A-Za-z])", text)
    )


async def _upload(user: Any, name: str, content: bytes) -> Any:
    page = user.page
    await page.set_input_files(
        "#manifest", files=[{"name": name, "mimeType": "application/yaml", "buffer": content}]
    )
    async with page.expect_navigation(wait_until="networkidle") as navigation:
        await page.click(".submit-form button[type=submit]")
    return await navigation.value


async def _click(user: Any, selector: str) -> Any:
    async with user.page.expect_navigation(wait_until="networkidle") as navigation:
        await user.page.click(selector)
    return await navigation.value


async def test_an_agency_admin_submits_runs_the_dry_run_and_follows_the_approval(
    gateway_factory: Any, staff_browser: Any, sign_in: Any, land_url: str
) -> None:
    gateway = gateway_factory(oidc_client_id=BROWSER_CLIENT_ID, connectors_allow_loopback=True)
    land, key, values = _sample(land_url)
    platform = await sign_in.staff(
        "operator", org=gateway.settings.platform_organisation, sub="platform-op"
    )
    async with httpx.AsyncClient(base_url=gateway.url, timeout=15.0) as http:
        done = await http.put(
            f"/admin/authority/{ORG}",
            json={"fields": ["LandParcel.*"], "endpoints": [f"sqlite:///{land}"]},
            headers=platform,
        )
        assert done.status_code == 200, done.text

        admin = await staff_browser(
            gateway, "agency_admin", org=ORG, sub="dat-dai-admin", next="/co-quan", shots="co-quan"
        )
        page = admin.page
        await admin.visit("/co-quan", "co-quan")
        main = await page.inner_text("main")
        assert "LandParcel" in main
        assert str(land) in main
        assert "Your organisation has no connector yet" not in main  # in Vietnamese

        # A broken manifest: the error names the field and the code; nothing is stored.
        await admin.visit("/co-quan/gui", "gui")
        broken = _land_manifest(land)
        broken["entities"]["LandParcel"]["fields"]["noSuchField"] = "ma_thua"
        refused = await _upload(admin, "dat-dai.yaml", yaml.safe_dump(broken).encode())
        assert refused.status == 422
        alert = await page.inner_text("#loi")
        assert "INVALID_MANIFEST" in alert
        assert "noSuchField" in alert
        assert await page.locator("#manifest").count() == 1  # the form is kept
        await admin.check("gui-loi")
        syntax = await _upload(admin, "dat-dai.yaml", b"name: [dat-dai\nkind: sql\n")
        assert syntax.status == 422
        assert "INVALID_MANIFEST" in await page.inner_text("#loi")
        assert "line" in await page.inner_text("#loi")
        too_large = await _upload(admin, "lon.yaml", b"#" * (256 * 1024 + 1))
        assert too_large.status == 413
        assert "PAYLOAD_TOO_LARGE" in await page.inner_text("#loi")
        admin_token = await sign_in.staff("agency_admin", org=ORG, sub="dat-dai-admin")
        listed = await http.get("/admin/connectors", headers=admin_token)
        assert listed.json()["connectors"] == []

        # A first version reads a column the source lacks: a pending version.
        wrong = _land_manifest(land)
        wrong["entities"]["LandParcel"]["fields"]["areaM2"] = "dien_tich_sai"
        submitted = await _upload(admin, "dat-dai.yaml", yaml.safe_dump(wrong).encode())
        assert submitted.status == 200
        assert page.url.endswith(f"/co-quan/ket-noi/{NAME}?gui=1")
        assert await page.locator("#thong-bao").count() == 1
        assert await page.locator("#trang-thai .status-pending").count() >= 1
        assert await page.locator("#trang-thai[hx-trigger]").count() == 1  # polled
        await admin.check("ket-noi")

        # Its dry run, in the page: found, each field's outcome, no value of the record.
        await page.fill("#dr-key", key)
        ran = await _click(admin, ".dry-run-form button[type=submit]")
        assert ran.status == 200
        assert page.url.endswith("?chay-thu=1#chay-thu")
        report = await page.inner_text("#bao-cao")
        assert "LandParcel" in report
        assert "ms" in report
        assert await page.locator("#bao-cao tr.outcome-unmapped").count() == 1
        assert await page.locator("#bao-cao tr.outcome-ok").count() >= 5
        assert _leaked(values, await page.content()) == []
        await admin.check("ket-noi-chay-thu")

        # Corrected, version 2; a platform operator rejects 1 and approves 2 (through
        # the API): the page, polling, shows it active.
        await page.goto(f"{gateway.url}/co-quan/gui")
        fixed = await _upload(admin, "dat-dai.yaml", yaml.safe_dump(_land_manifest(land)).encode())
        assert fixed.status == 200
        assert page.url.endswith("?gui=2")
        # Version 1 reads a column the database lacks: it does not build, so it cannot
        # be approved (it would be recorded in use while nothing served it).
        broken = await http.post(f"/admin/connectors/{NAME}/versions/1/approve", headers=platform)
        assert broken.status_code == 422, broken.text
        assert broken.json()["code"] == "INVALID_MANIFEST"
        assert "dien_tich_sai" in broken.json()["message"]
        for action, version in (("reject", 1), ("approve", 2)):
            done = await http.post(
                f"/admin/connectors/{NAME}/versions/{version}/{action}", headers=platform
            )
            assert done.status_code == 200, done.text
        await page.wait_for_url(f"{gateway.url}/co-quan/ket-noi/{NAME}", timeout=10_000)
        await page.wait_for_load_state("networkidle")
        assert await page.locator("#trang-thai .status-active").count() == 1
        assert await page.locator("#thong-bao").count() == 0
        await admin.check("ket-noi-hoat-dong")
        assert await page.locator("#phien-ban-2 .status-approved").count() == 1
        assert await page.locator("#phien-ban-1 .status-rejected").count() == 1
        assert await page.locator("#trang-thai[hx-trigger]").count() == 0
        await admin.visit("/co-quan", "co-quan-danh-sach")
        assert await page.locator(f"a[href='/co-quan/ket-noi/{NAME}']").count() == 1

        # Disabled after a confirmation, then rolled back to version 2 (a new version 3).
        await admin.visit(f"/co-quan/ket-noi/{NAME}/tat", "tat")
        await _click(admin, "button.danger")
        assert page.url.endswith("?da-tat=1")
        assert await page.locator("#trang-thai .status-disabled").count() == 1
        await _click(admin, "#phien-ban-2 form button")
        assert page.url.endswith("?quay-lai=3&tu=2")
        versions = await http.get(f"/admin/connectors/{NAME}/versions", headers=admin_token)
        statuses = [v["status"] for v in versions.json()["versions"]]
        assert statuses == ["rejected", "approved", "pending"], statuses
        forged = await page.request.post(
            f"{gateway.url}/co-quan/ket-noi/{NAME}/quay-lai", form={"version": "2"}
        )
        assert forged.status == 403  # no CSRF token: nothing submitted
        versions = await http.get(f"/admin/connectors/{NAME}/versions", headers=admin_token)
        assert len(versions.json()["versions"]) == 3

        # In English on request.
        await page.goto(f"{gateway.url}/co-quan/gui?lang=en")
        assert "Submit a version of a connector" in await page.inner_text("main")

    # An admin of another organisation is refused the connector's page.
    other = await staff_browser(
        gateway, "agency_admin", org="VN/GOV/KHAC", next="/co-quan", shots="co-quan"
    )
    await other.page.goto(f"{gateway.url}/co-quan")
    assert await other.page.locator(f"a[href='/co-quan/ket-noi/{NAME}']").count() == 0
    response = await other.visit(f"/co-quan/ket-noi/{NAME}", "tu-choi")
    assert response.status == 403
    assert "FORBIDDEN" in await other.page.inner_text("main")
    for user in (admin, other):
        assert all(not bad for bad in user.axe.values()), user.axe
