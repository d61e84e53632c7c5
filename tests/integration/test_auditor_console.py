"""The auditor's console (`/kiem-tra`) in a real Chromium.

An auditor signed in through the sandbox login page searches the reads a client made a
moment before (filters, pages), opens one record and reads its envelope in Vietnamese,
downloads the export with proofs from the page and verifies it in the browser (valid;
then invalid, naming the record, once a byte of it is changed), sees a refused filter
explained, and switches to English. Each search, record read and export is itself an
`auditor_search` record. Every page is checked with axe-core.
"""

from __future__ import annotations

import asyncio
import datetime
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
import rfc8785
import sqlalchemy as sa

from gateway.log.store import TransparencyLog
from gateway.storage import create_engine
from tests.integration.conftest import BROWSER_CLIENT_ID

RESIDENCE = "1.004222"  # identity and residence by law, the phone only with consent
ORGANISATION = "Công an xã Kiểm Thử"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("backend", ["sqlite"], indirect=True),
    pytest.mark.asyncio(loop_scope="module"),
]


async def _read(gateway: Any, person: str, fields: str, **purpose: Any) -> Any:
    answer = await gateway.post(f'{{ citizen(personalId: "{person}") {{ {fields} }} }}', **purpose)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def _searches(gateway: Any, mention: str) -> list[dict[str, Any]]:
    """The envelopes of the `auditor_search` records whose filter mentions `mention`."""
    engine = create_engine(gateway.settings.database_url.get_secret_value())
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text(
                    "SELECT envelope FROM events WHERE type = 'auditor_search' "
                    "AND CAST(envelope AS TEXT) LIKE :mention ORDER BY ts"
                ),
                {"mention": f"%{mention}%"},
            )
            envelopes = [
                orjson.loads(r.envelope) if isinstance(r.envelope, str) else r.envelope
                for r in rows
            ]
    finally:
        await engine.dispose()
    return [e for e in envelopes if mention in orjson.dumps(e["filter"]).decode()]


async def _logged(gateway: Any) -> None:
    """Wait until every recorded event is in a signed checkpoint."""
    engine = create_engine(gateway.settings.database_url.get_secret_value())
    try:
        log = TransparencyLog(engine, None, origin=gateway.settings.checkpoint_origin)
        for _ in range(200):
            latest = await log.latest()
            if not await log.queued() and latest and latest.size == await log.size():
                return
            await asyncio.sleep(0.05)
    finally:
        await engine.dispose()
    raise AssertionError("the log did not catch up")


async def _verdict(page: Any, lines: list[bytes]) -> dict[str, str]:
    """Verify `lines` as an export file in the page; the verdict's data attributes."""
    await page.set_input_files(
        "#export-file",
        files=[
            {"name": "export.jsonl", "mimeType": "application/x-ndjson", "buffer": b"".join(lines)}
        ],
    )
    verdict = page.locator("#kt-verdict:not([data-verdict='checking'])[data-verdict]")
    await verdict.wait_for()
    found: dict[str, str] = await verdict.evaluate("e => ({...e.dataset, text: e.textContent})")
    found["detail"] = await page.inner_text("#kt-verdict-detail")
    return found


async def test_an_auditor_searches_reads_exports_and_verifies_in_the_page(
    gateway_factory: Any, staff_browser: Any, another_client: Any, dataset: Any
) -> None:
    gateway = gateway_factory(oidc_client_id=BROWSER_CLIENT_ID)
    client = await another_client("VN/GOV/CAXKT/ho-so", ["commune_police"], ORGANISATION)
    purpose = {"signer": client, "procedure": RESIDENCE, "case": "HS-KT-1", "officer": "can-bo-kt"}
    people = dataset.sample.citizens[:3]
    for person in people:
        await _read(gateway, person, "fullName birthDate", **purpose)
    refused = await _read(gateway, people[0], "fullName phone", **purpose)
    assert refused["errors"][0]["extensions"]["code"] == "CONSENT_REQUIRED"
    await _logged(gateway)

    auditor = await staff_browser(
        gateway,
        "auditor",
        org="VN/GOV/TTCP",
        sub=f"kiem-tra-{uuid.uuid4().hex[:6]}",
        next="/kiem-tra",
        shots="kiem-tra",
    )
    page = auditor.page

    # Opened without a filter (a page size alone): the form, no results, nothing recorded.
    await auditor.visit("/kiem-tra?limit=3", "search-form")
    assert await page.locator("#results-h").count() == 0
    assert await page.locator("#f-officerPseudonym").count() == 1
    assert await page.locator("#f-hours option[value=outside]").count() == 1
    assert await page.locator("#f-code").count() == 1
    assert await page.locator("#f-from[type=date]").count() == 1
    assert await page.locator("#f-type option").count() >= 5
    assert await page.locator("#f-decision option").count() == 7
    assert "Tra cứu nhật ký truy cập" in await page.inner_text("h1")
    assert int((await page.inner_text("#log-size")).split()[0]) > 0

    # The form: procedure, client and today's date (Vietnam's); pages of three.
    today = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=7))).date()
    await page.fill("#f-procedure", RESIDENCE)
    await page.fill("#f-client", client.client_id)
    await page.fill("#f-from", today.isoformat())
    await page.fill("#f-to", today.isoformat())
    async with page.expect_navigation():
        await page.click("#search-submit")
    await auditor.check("search-results")
    rows = page.locator("table.kt-results tbody tr")
    first = [await r.get_attribute("data-id") for r in await rows.all()]
    assert len(first) == 3
    table = await page.inner_text("table.kt-results")
    assert "Đăng ký thường trú" in table
    assert ORGANISATION in table
    assert today.strftime("%d/%m/%Y") in table
    assert "Cung cấp theo quy định của pháp luật" in table
    assert "Không cung cấp: cần có sự đồng ý của người dân" in table  # the newest
    assert all(p not in table for p in people)
    assert await page.input_value("#f-client") == client.client_id
    async with page.expect_navigation():
        await page.click("#next-page")
    await auditor.check("search-page-2")
    second = [await r.get_attribute("data-id") for r in await rows.all()]
    assert len(second) == 1
    assert not set(first) & set(second)
    assert await page.locator("#next-page").count() == 0
    assert await page.input_value("#f-procedure") == RESIDENCE

    # The export of the search, downloaded from the page: every match, with proofs.
    async with page.expect_download() as info:
        await page.click("#export")
    download = await info.value
    lines = (await asyncio.to_thread(Path(await download.path()).read_bytes)).splitlines(
        keepends=True
    )
    items = [orjson.loads(line) for line in lines]
    assert items[0]["kind"] == "checkpoint"
    assert items[0]["origin"] in await page.inner_text(".kt-log")
    assert [i["kind"] for i in items[1:]] == ["record"] * 4 + ["end"]
    assert all(i["proof"] is not None and i["leaf"] for i in items[1:5])
    assert items[-1] == {"kind": "end", "records": 4, "proven": 4, "pending": 0}

    # The page's RFC 8785 is the gateway's.
    awkward = {"é": [1, 2.5, -0.0, 1e21], "a\u0001": "\u2028\U0001f600", "B": None, "b": True}
    canonical = await page.evaluate(
        "async v => (await import('/static/tlog.js')).canonicalJson(v)", awkward
    )
    assert canonical.encode() == rfc8785.dumps(awkward)

    verdict = await _verdict(page, lines)
    await auditor.check("verify-valid")
    assert verdict["verdict"] == "valid", verdict
    assert "4" in verdict["detail"]
    assert str(items[0]["size"]) in verdict["detail"]
    # No witness cosigned this gateway's checkpoint (it has none): said, not passed over.
    assert "bên chứng kiến" in verdict["detail"] or "witness" in verdict["detail"]

    # One byte of one record's envelope changed: invalid, naming that record.
    changed = dict(items[2])
    changed["envelope"] = {
        **changed["envelope"],
        "requestId": changed["envelope"]["requestId"][:-1] + "0",
    }
    if changed["envelope"] == items[2]["envelope"]:
        changed["envelope"]["requestId"] = changed["envelope"]["requestId"][:-1] + "1"
    tampered = [*lines[:2], orjson.dumps(changed) + b"\n", *lines[3:]]
    verdict = await _verdict(page, tampered)
    await auditor.check("verify-invalid")
    assert verdict["verdict"] == "invalid"
    assert (verdict["line"], verdict["id"], verdict["why"]) == ("3", items[2]["id"], "envelope")
    assert items[2]["id"] in verdict["detail"]
    # A proof hash changed: the proof no longer leads to the root.
    bent = dict(items[1])
    bent["proof"] = ["A" * 43, *bent["proof"][1:]] if bent["proof"] else bent["proof"]
    if bent["proof"]:
        verdict = await _verdict(page, [lines[0], orjson.dumps(bent) + b"\n", *lines[2:]])
        assert (verdict["verdict"], verdict["line"], verdict["why"]) == (
            "invalid",
            "2",
            "inclusion",
        )

    # One record (the oldest read), from its row: fields and decisions in Vietnamese.
    record_id = second[0]
    async with page.expect_navigation():
        await rows.first.locator("a").click()
    await auditor.check("record")
    decisions = await page.inner_text("#decisions")
    assert "Họ, chữ đệm và tên" in decisions
    assert "Cung cấp theo quy định của pháp luật" in decisions
    body = await page.inner_text("main")
    assert "Luật Cư trú số 68/2020/QH14" in body
    assert "Đăng ký thường trú" in body
    assert RESIDENCE in body
    assert record_id in body
    await page.click("details.kt-raw summary")
    raw = orjson.loads(await page.inner_text("#raw-envelope"))
    assert raw["id"] == record_id
    assert raw["procedure"] == RESIDENCE

    response = await auditor.visit(f"/kiem-tra/ban-ghi/{'0' * 32}", "not-found")
    assert response.status == 404
    assert "NOT_FOUND" in await page.inner_text("main")

    # A refused filter: said in the page with its code, the form kept.
    response = await auditor.visit(
        f"/kiem-tra?client={client.client_id}&from=2020-01-01&to=2026-01-01", "search-error"
    )
    assert response.status == 400
    assert "INVALID_ARGUMENT" in await page.inner_text("#search-error")
    assert await page.input_value("#f-from") == "2020-01-01"

    # In English.
    await auditor.visit("/kiem-tra?lang=en", "search-form-en")
    assert "Search the access log" in await page.inner_text("h1")
    assert "Verify an export in your browser" in await page.inner_text("#kt-verify")

    # Every search, the record read and the export were recorded; the form alone was not,
    # nor the refused search.
    recorded = await _searches(gateway, client.client_id)
    assert [(e["filter"].get("procedure"), e.get("export")) for e in recorded] == [
        (RESIDENCE, False),
        (RESIDENCE, False),
        (RESIDENCE, True),
    ]
    assert [e["results"] for e in recorded if not e["export"]] == [3, 1]
    assert recorded[-1]["checkpoint"] == items[0]["size"]
    reads = await _searches(gateway, record_id)
    assert [e["filter"] for e in reads] == [{"event": record_id}]
    assert all(e["auditorOrg"] == "VN/GOV/TTCP" for e in recorded + reads)
    assert not auditor.csp_errors(), auditor.errors
    assert all(not v for v in auditor.axe.values()), auditor.axe


async def test_an_agency_admin_is_refused_the_auditors_console(
    gateway_factory: Any, staff_browser: Any
) -> None:
    gateway = gateway_factory(oidc_client_id=BROWSER_CLIENT_ID)
    admin = await staff_browser(
        gateway, "agency_admin", org="VN/GOV/BTP", next="/dang-nhap/phien", shots="kiem-tra"
    )
    response = await admin.visit("/kiem-tra/xuat", "forbidden")
    assert response.status == 403
    assert "FORBIDDEN" in await admin.page.inner_text("main")
