"""The auditor's patterns and citizens' questions, in a real Chromium, on a database of
their own (the patterns count every record).

A busy officer reads 200 people while three colleagues of the same organisation read
5 each, and one person is read by three organisations, all through real signed GraphQL
requests. An auditor signed in through the login page sees the officer flagged and
follows the link to the search, opens the person (recorded as a search naming them),
and answers the question the person then asks; the person reads the answer on their
access's page. The search filters behind the links are checked through `/audit/events`.
Each page is checked with axe-core.
"""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import orjson
import pytest
import sqlalchemy as sa

from gateway.records._search import is_outside_hours
from gateway.storage import create_engine, event_subjects, events
from policies import AgencyKind
from tests.integration.browsing import SCREENS, axe_violations
from tests.integration.conftest import BROWSER_CLIENT_ID

pytestmark = [
    pytest.mark.browser,
    pytest.mark.own_database,
    pytest.mark.parametrize("backend", ["sqlite"], indirect=True),
    pytest.mark.asyncio(loop_scope="module"),
]

BATCH = "query($ids: [String!]!) { citizens(personalIds: $ids) { fullName } }"
BUSY = "can-bo-ban-ron"
QUESTION = "Vì sao Sở Tư pháp đọc dữ liệu của tôi?"
ANSWER = "Sở Tư pháp đọc họ tên của bạn để giải quyết hồ sơ cấp phiếu lý lịch tư pháp."


async def _batch(gateway: Any, people: list[str], officer: str, signer: Any = None) -> None:
    response = await gateway.post(
        BATCH, {"ids": people}, signer=signer, subjects=people, officer=officer
    )
    assert response.status_code == 200, response.text
    assert "errors" not in response.json(), response.text


async def _rows(gateway: Any, query: sa.Select[Any]) -> list[Any]:
    engine = create_engine(gateway.settings.database_url.get_secret_value())
    try:
        async with engine.connect() as conn:
            return list(await conn.execute(query))
    finally:
        await engine.dispose()


async def _searches_naming(gateway: Any, person: str) -> list[dict[str, Any]]:
    """The envelopes' filters of the `auditor_search` records that name `person`."""
    rows = await _rows(
        gateway,
        sa.select(events.c.envelope)
        .join(event_subjects, event_subjects.c.event_id == events.c.id)
        .where(event_subjects.c.subject == person, events.c.type == "auditor_search")
        .order_by(events.c.ts),
    )
    return [
        (r.envelope if isinstance(r.envelope, dict) else orjson.loads(r.envelope))["filter"]
        for r in rows
    ]


async def test_an_auditor_follows_patterns_and_answers_a_citizens_question(
    gateway_factory: Any,
    staff_browser: Any,
    browser: Any,
    browser_signin: Any,
    another_client: Any,
    dataset: Any,
    sign_in: Any,
    tmp_path: Path,
) -> None:
    gateway = gateway_factory(
        oidc_client_id=BROWSER_CLIENT_ID,
        rate_limit_officer=100_000,
        rate_limit_client=100_000,
    )
    person = dataset.sample.citizens[0]
    others = [pid for pid in dataset.citizens if pid != person][:215]
    # The busy officer: 200 people in 4 requests; three colleagues read 5 each.
    for n in range(4):
        await _batch(gateway, others[n * 50 : n * 50 + 50], BUSY)
    for n in range(3):
        await _batch(gateway, others[200 + n * 5 : 205 + n * 5], f"dong-nghiep-{n}")
    # One person read by three organisations.
    kinds = [k.value for k in AgencyKind]
    justice = await another_client("VN/GOV/STP/ly-lich", kinds, "Sở Tư pháp")
    police = await another_client("VN/GOV/CAHN/cu-tru", kinds, "Công an Hà Nội")
    await _batch(gateway, [person], "can-bo-mot-cua")
    await _batch(gateway, [person], "tu-phap-1", justice)
    await _batch(gateway, [person], "cong-an-1", police)
    await gateway.caught_up()

    # The filters behind the links, through the JSON route.
    token = await sign_in.staff("auditor", org="VN/GOV/TTCP", sub="kiem-tra-api")
    async with gateway.client(auth=None) as http:

        async def found(**params: str) -> list[dict[str, Any]]:
            response = await http.get("/audit/events", params=params, headers=token)
            assert response.status_code == 200, response.text
            events_found: list[dict[str, Any]] = response.json()["events"]
            return events_found

        busy = await found(officer=BUSY)
        assert len(busy) == 4
        alias = busy[0]["envelope"]["officer"]
        by_alias = await found(officerPseudonym=alias)
        assert {e["id"] for e in by_alias} == {e["id"] for e in busy}
        outside = [
            e for e in busy if is_outside_hours(datetime.datetime.fromisoformat(e["time"]), (7, 17))
        ]
        assert len(await found(officerPseudonym=alias, hours="outside")) == len(outside)
        assert await found(officerPseudonym=alias, code="CONSENT_REQUIRED") == []
        described = (
            await http.get(
                "/audit/events",
                params={"officerPseudonym": alias, "hours": "outside", "code": "X_Y"},
                headers=token,
            )
        ).json()["filter"]
        assert described["officerPseudonym"] == alias
        assert (described["hours"], described["code"]) == ("outside", "X_Y")
        bad = await http.get("/audit/events", params={"officerPseudonym": "x"}, headers=token)
        assert bad.status_code == 400
        assert bad.json()["detail"]["argument"] == "officerPseudonym"

    # The auditor's patterns.
    auditor = await staff_browser(
        gateway,
        "auditor",
        org="VN/GOV/TTCP",
        sub="kiem-tra-1",
        next="/kiem-tra/dau-hieu",
        shots="kiem-tra",
    )
    page = auditor.page
    await auditor.visit("/kiem-tra/dau-hieu", "dau-hieu")
    busy_rows = page.locator("#busy tbody tr")
    assert await busy_rows.count() == 1
    text = await busy_rows.first.inner_text()
    assert "Test agency" in text
    assert alias in text
    assert "200" in text
    cells = busy_rows.first.locator("td")
    assert (await cells.nth(4).inner_text()).startswith("5")
    assert person not in await page.content()
    shared = page.locator("#shared tbody tr")
    assert await shared.count() == 1
    assert await shared.first.locator("td").nth(1).inner_text() == "3"
    # Opening the page is itself recorded, naming no one.
    recorded = await _rows(
        gateway, sa.select(events.c.envelope).where(events.c.type == "auditor_search")
    )
    assert any('"patterns"' in str(r.envelope) or "'patterns'" in str(r.envelope) for r in recorded)

    # In English too.
    await page.click("a[hreflang=en]")
    assert await page.inner_text("h1") == "Patterns worth a look"
    await auditor.check("dau-hieu-english")
    await page.click("a[hreflang=vi]")

    # The busy officer's link is the search by their pseudonym over the period.
    await busy_rows.first.locator("a").click()
    await page.wait_for_load_state("networkidle")
    target = urlparse(page.url)
    assert target.path == "/kiem-tra"
    query = parse_qs(target.query)
    assert query["officerPseudonym"] == [alias]
    assert query["organisation"] == ["Test agency"]
    assert "from" in query
    assert "to" in query
    if await page.locator("#results-count").count():
        assert "4" in await page.locator("#results-count").inner_text()

    # The person read by three organisations: a handle, and a recorded search naming them.
    assert await _searches_naming(gateway, person) == []
    await page.goto(f"{gateway.url}/kiem-tra/dau-hieu")
    await page.locator("#shared tbody tr a").first.click()
    await page.wait_for_selector("#person-table")
    await auditor.check("dau-hieu-chu-the")
    assert await page.locator("#person-table tbody tr").count() == 3
    assert await page.inner_text("#person-organisations") == "3"
    assert person not in await page.content()
    named = await _searches_naming(gateway, person)
    assert len(named) == 1
    assert named[0]["subject"].startswith("given")
    # A handle of no one flagged is a clear 404 page.
    missing = await auditor.visit("/kiem-tra/dau-hieu/chu-the/" + "0" * 32, "dau-hieu-khong-thay")
    assert missing.status == 404
    assert "NOT_FOUND" in await page.inner_text("main")

    # The person asks about the access the justice department made.
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    citizen = await context.new_page()
    try:
        await browser_signin(citizen, gateway, person, 2)
        item = citizen.locator("li.toi-access", has_text="Sở Tư pháp").first
        access_id = await item.get_attribute("data-id")
        await citizen.goto(f"{gateway.url}/toi/truy-cap/{access_id}")
        await citizen.fill("#question", QUESTION)
        await citizen.locator("form[action$='/hoi'] button").click()
        await citizen.wait_for_selector(".toi-ok")
        assert "Đang chờ trả lời" in await citizen.inner_text("#my-questions")

        # The auditor sees it, not answered, without its text.
        await auditor.visit("/kiem-tra/cau-hoi", "cau-hoi")
        rows = page.locator("#questions-table tbody tr")
        assert await rows.count() == 1
        listed = await rows.first.inner_text()
        assert "Chưa trả lời" in listed
        assert "Sở Tư pháp" in listed
        assert QUESTION not in await page.content()
        before = len(await _searches_naming(gateway, person))
        await rows.first.locator("a").click()
        await page.wait_for_selector("#question-text")
        await auditor.check("cau-hoi-mot")
        assert await page.inner_text("#question-text") == QUESTION
        assert justice.client_id in await page.inner_text("#access-envelope")
        assert person not in await page.content()
        read = await _searches_naming(gateway, person)
        assert len(read) == before + 1
        assert read[-1]["read"] == "question"

        # An empty answer is refused with a message; nothing is recorded.
        csrf = await page.locator("form[action$='/tra-loi'] input[name=csrf]").input_value()
        path = urlparse(page.url).path
        empty = await page.request.post(
            f"{gateway.url}{path}/tra-loi", form={"csrf": csrf, "answer": "   "}
        )
        assert empty.status == 400
        assert "1 đến 2000" in await empty.text()
        forged = await page.request.post(
            f"{gateway.url}{path}/tra-loi", form={"answer": "không có mã CSRF"}
        )
        assert forged.status == 403

        await page.fill("#answer", ANSWER)
        await page.locator("form[action$='/tra-loi'] button").click()
        await page.wait_for_selector("#answer-recorded")
        await auditor.check("cau-hoi-tra-loi")
        assert ANSWER in await page.inner_text("#answers")
        answers = await _rows(
            gateway,
            sa.select(events.c.envelope).where(events.c.outcome == "citizen_question_answered"),
        )
        assert len(answers) == 1
        assert ANSWER not in str(answers[0].envelope)
        assert person not in str(answers[0].envelope)

        await auditor.visit("/kiem-tra/cau-hoi", "cau-hoi-da-tra-loi")
        assert "Đã trả lời" in await page.inner_text("#questions-table")
        await auditor.visit("/kiem-tra/cau-hoi?status=open", "cau-hoi-chua-tra-loi")
        assert await page.locator("#questions-table").count() == 0

        # The person reads the answer on the access's page.
        await citizen.goto(f"{gateway.url}/toi/truy-cap/{access_id}")
        mine = await citizen.inner_text("#my-questions")
        assert QUESTION in mine
        assert ANSWER in mine
        assert "Đã trả lời" in mine
        shot = tmp_path / "cau-hoi-cong-dan.png"
        await citizen.screenshot(path=str(shot), full_page=True)
        (SCREENS / "kiem-tra").mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, SCREENS / "kiem-tra" / shot.name)
        assert await axe_violations(citizen) == []
    finally:
        await context.close()
    assert all(not bad for bad in auditor.axe.values()), auditor.axe
