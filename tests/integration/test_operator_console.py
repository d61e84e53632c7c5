"""The operator's dashboard (`/van-hanh`) in a real Chromium, signed in through the
sandbox issuer's login page: the overview's charts and figures after a few reads,
a source's breaker opening when its agency stops answering, a client system
suspended and reinstated from its page, and a connector version an agency submitted,
tried and approved from the approvals page. Every page passes axe."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import sandbox
from gateway.config import DEVELOPMENT_PLATFORM_ORG
from sandbox import SandboxSettings, population
from tests.integration.conftest import BROWSER_CLIENT_ID, CITIZENS, ServerThread

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("backend", ["sqlite"], indirect=True),
    pytest.mark.asyncio(loop_scope="module"),
]

RESIDENCE = "1.004222"
SHOTS = "van-hanh"
MANIFESTS = Path(sandbox.__file__).parent / "manifests"


def _read(person: str) -> str:
    return f'{{ citizen(personalId: "{person}") {{ fullName }} }}'


async def _text(user: Any, selector: str) -> str:
    text: str = await user.page.inner_text(selector)
    return text.strip()


async def test_the_overview_charts_an_organisations_reads_and_its_clients_can_be_suspended(
    gateway_factory: Any, staff_browser: Any, another_client: Any, dataset: Any
) -> None:
    gateway = gateway_factory(oidc_client_id=BROWSER_CLIENT_ID)
    org = f"VN/GOV/VH{uuid.uuid4().hex[:8].upper()}"
    own = await another_client(f"{org}/mot-cua", ["commune_police"], f"UBND {org[-8:]}")
    other = await another_client("VN/GOV/CA-HN/cu-tru", ["commune_police"])
    for person in dataset.sample.citizens[:3]:
        answer = await gateway.post(_read(person), signer=own, procedure=RESIDENCE)
        assert answer.status_code == 200, answer.text
        assert "errors" not in answer.json(), answer.text
    refused = await gateway.post(_read(dataset.sample.citizens[3]), signer=own, procedure="9.999")
    assert refused.status_code >= 400 or "errors" in refused.json()

    operator = await staff_browser(gateway, "operator", org=org, next="/van-hanh", shots=SHOTS)
    await operator.visit("/van-hanh", "overview", wait="#chart-requests canvas")
    page = operator.page
    for chart in ("requests", "served", "refused"):
        assert await page.locator(f"#chart-{chart}[data-drawn] canvas").count() >= 1
    assert await _text(operator, "#total-requests") == "3"
    fields = await _text(operator, "#total-fields")
    assert int(fields) >= 3  # each read served the name (and what identifies the person)
    assert int(await _text(operator, "#total-refused")) >= 1
    rows = page.locator("#procedure-table tbody tr", has_text=RESIDENCE)
    assert await rows.count() == 1  # the refused request's procedure has a row of its own
    cells = await rows.first.locator("td").all_inner_texts()
    assert cells[0].splitlines() == [RESIDENCE, "Đăng ký thường trú"]  # code and name
    assert cells[1:4] == [f"UBND {org[-8:]}", "3", fields]
    assert await page.locator("#refusal-table tbody tr").count() >= 1
    # The charts' table alternative says the same, day by day.
    await page.click("#chart-served-title ~ details summary")
    today = page.locator("#daily-table tbody tr").last
    assert (await today.locator("td").all_inner_texts())[:2] == ["3", fields]
    assert "3" in await _text(operator, "#chart-requests-summary")
    await operator.check("overview-table")
    wrong = await operator.visit("/van-hanh?from=2026-13-01", "overview-wrong-date")
    assert wrong.status == 400
    assert "INVALID_ARGUMENT" in await _text(operator, ".alert")

    # The clients page lists this organisation's client only; suspend it, then reinstate.
    await operator.visit("/van-hanh/he-thong", "he-thong")
    listed = page.locator("#clients-table tbody tr")
    assert await listed.count() == 1
    row = page.locator(f'tr[data-client="{own.client_id}"]')
    await row.locator("button").click()
    await page.wait_for_url("**/van-hanh/he-thong?xong=suspended*")
    assert "Đang tạm dừng" in await row.locator(".client-status").inner_text()
    assert await page.locator(".notice").count() == 1
    await operator.check("he-thong-suspended")
    after = await gateway.post(_read(dataset.sample.citizens[0]), signer=own, procedure=RESIDENCE)
    assert after.status_code == 401, after.text
    assert "UNAUTHENTICATED" in after.text
    await row.locator("button").click()
    await page.wait_for_url("**/van-hanh/he-thong?xong=active*")
    assert "Đang hoạt động" in await row.locator(".client-status").inner_text()
    again = await gateway.post(_read(dataset.sample.citizens[0]), signer=own, procedure=RESIDENCE)
    assert again.status_code == 200, again.text

    # Another organisation's client: refused with the code, and nothing changes.
    csrf = await page.locator('input[name="csrf"]').first.get_attribute("value")
    forged = await page.request.post(
        f"{gateway.url}/van-hanh/he-thong/trang-thai",
        form={"csrf": csrf or "", "client_id": other.client_id, "status": "suspended"},
    )
    assert forged.status == 403
    assert "FORBIDDEN" in await forged.text()
    still = await gateway.post(_read(dataset.sample.citizens[1]), signer=other, procedure=RESIDENCE)
    assert still.status_code == 200, still.text
    assert operator.csp_errors() == []


async def test_a_sources_breaker_opens_when_its_agency_stops_answering(
    gateway_factory: Any,
    staff_browser: Any,
    another_client: Any,
    dataset: Any,
    population_data: Any,
    sign_in: Any,
) -> None:
    agency = ServerThread(
        population.create_app(SandboxSettings(citizens=CITIZENS), population_data)
    ).start()
    try:
        gateway = gateway_factory.start(
            connector_urls={"population": agency.url}, oidc_client_id=BROWSER_CLIENT_ID
        )
        police = await another_client("VN/GOV/CA-HN/cu-tru", ["commune_police"])
        people = dataset.sample.citizens
        answer = await gateway.post(_read(people[0]), signer=police, procedure=RESIDENCE)
        assert "errors" not in answer.json(), answer.text
        operator = await staff_browser(gateway, "operator", next="/van-hanh", shots=SHOTS)
        await operator.visit("/van-hanh/nguon", "nguon")
        closed = operator.page.locator("#source-population")
        assert await closed.get_attribute("data-breaker") == "closed"
        assert "Đóng" in await closed.locator(".breaker").inner_text()
        assert await operator.page.locator("#log-status .log-size").count() == 1
    finally:
        agency.stop()
    platform = await sign_in.staff("operator", org=DEVELOPMENT_PLATFORM_ORG)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=15.0) as http:
        for n in range(12):
            failed = await gateway.post(
                _read(people[1 + n % 6]), signer=police, procedure=RESIDENCE
            )
            assert "errors" in failed.json(), failed.text
            ready = (await http.get("/admin/readiness", headers=platform)).json()
            if ready["connectors"]["population"]["breaker"] == "open":
                break
        else:
            raise AssertionError(f"the breaker never opened: {ready['connectors']}")
    await operator.visit("/van-hanh/nguon", "nguon-breaker-open")
    opened = operator.page.locator("#source-population")
    assert await opened.get_attribute("data-breaker") == "open"
    assert "Mở" in await opened.locator(".breaker").inner_text()
    assert "Không phản hồi" in await opened.inner_text()
    rate = await opened.locator(".error-rate").inner_text()
    assert rate.endswith("%")
    assert float(rate.removesuffix("%").strip()) > 0
    await operator.visit("/van-hanh/nguon?lang=en", "nguon-en")
    assert "Open: calls are stopped" in await opened.locator(".breaker").inner_text()
    assert operator.csp_errors() == []


@pytest.fixture
def without_insurance(tmp_path: Path) -> Path:
    """A connectors folder holding every sandbox manifest but insurance."""
    folder = tmp_path / "connectors"
    folder.mkdir()
    for path in MANIFESTS.glob("*.yaml"):
        if path.stem != "insurance":
            shutil.copy(path, folder / path.name)
    return folder


@pytest.mark.own_database  # a connector submitted and approved here
async def test_a_version_an_agency_submitted_is_tried_and_approved_from_the_page(
    gateway_factory: Any,
    staff_browser: Any,
    sign_in: Any,
    dataset: Any,
    insurance_url: str,
    without_insurance: Path,
) -> None:
    gateway = gateway_factory.start(
        connectors_dir=without_insurance,
        connectors_allow_loopback=True,
        connector_urls={"insurance": None},
        oidc_client_id=BROWSER_CLIENT_ID,
    )
    org = "VN/GOV/BHXH"
    platform = await sign_in.staff("operator", org=DEVELOPMENT_PLATFORM_ORG, sub="nen-tang")
    admin = await sign_in.staff("agency_admin", org=org, sub="bhxh-admin")
    manifest = yaml.safe_load((MANIFESTS / "insurance.yaml").read_text(encoding="utf-8"))
    manifest["base_url"] = insurance_url
    async with httpx.AsyncClient(base_url=gateway.url, timeout=15.0) as http:
        authority = await http.put(
            f"/admin/authority/{org}",
            json={"fields": ["InsuranceRecord.*"], "endpoints": [httpx.URL(insurance_url).host]},
            headers=platform,
        )
        assert authority.status_code == 200, authority.text
        submitted = await http.post("/admin/connectors", json={"manifest": manifest}, headers=admin)
        assert submitted.status_code == 201, submitted.text

    # The agency's admin, signed in as an operator too, cannot approve its own version.
    same = await staff_browser(gateway, "operator", sub="bhxh-admin", next="/van-hanh", shots=SHOTS)
    await same.visit("/van-hanh/phe-duyet", "phe-duyet-submitter")
    await same.page.click("#version-insurance-1 button:has-text('Phê duyệt')")
    await same.page.wait_for_selector(".alert")
    alert = await _text(same, ".alert")
    assert "FORBIDDEN" in alert
    assert "bốn mắt" in alert
    await same.check("phe-duyet-four-eyes")

    operator = await staff_browser(gateway, "operator", next="/van-hanh", shots=SHOTS)
    await operator.visit("/van-hanh/phe-duyet", "phe-duyet")
    page = operator.page
    card = page.locator("#version-insurance-1")
    assert "bhxh-admin" in await card.inner_text()
    await card.locator("input[name=key]").fill(dataset.sample.citizens[0])
    await card.locator(".dry-run-form button").click()
    await page.wait_for_url("**/van-hanh/phe-duyet?xong=dry_run*")
    report = card.locator(".dry-run-table")
    assert await report.count() >= 1
    assert "tìm thấy bản ghi" in await report.first.inner_text()
    assert await card.locator(".outcome-ok").count() >= 1
    await operator.check("phe-duyet-dry-run")
    await card.locator("button:has-text('Phê duyệt')").click()
    await page.wait_for_url("**/van-hanh/phe-duyet?xong=approved*")
    assert await page.locator("#version-insurance-1").count() == 0
    assert "insurance/1" in await _text(operator, ".notice")
    await operator.check("phe-duyet-approved")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=15.0) as http:
        detail = await http.get("/admin/connectors/insurance", headers=platform)
    assert detail.status_code == 200, detail.text
    assert detail.json()["status"] == "active"
    assert detail.json()["activeVersion"] == 1
    assert operator.csp_errors() == []
    assert same.csp_errors() == []
