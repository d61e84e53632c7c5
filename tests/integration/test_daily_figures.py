"""The operator's figures by day, on SQLite and PostgreSQL: days in Vietnam's time,
grouped in the database, agreeing with the period's figures."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from gateway.records import daily_figures, figures
from gateway.storage import create_engine, events, upgrade

UTC = datetime.UTC
PROCEDURE = "1.004222"
ORG = "Công an tỉnh A"
CLIENT = "VN/GOV/CA-A/cu-tru"


def _event(ts: datetime.datetime, outcome: str, **columns: Any) -> dict[str, Any]:
    envelope = columns.pop("envelope", {})
    return {
        "id": uuid.uuid4().hex,
        "type": columns.pop("type", "access"),
        "ts": ts,
        "request_id": uuid.uuid4().hex,
        "client_id": CLIENT,
        "procedure": PROCEDURE,
        "outcome": outcome,
        "policy_version": "test",
        "envelope": envelope,
        "envelope_hash": "0" * 64,
        "organisation": ORG,
        "fields_served": 0,
        "papers_avoided": 0,
        **columns,
    }


async def test_figures_by_day_follow_vietnams_days_and_sum_to_the_periods(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        late = datetime.datetime(2026, 3, 1, 16, 59, tzinfo=UTC)  # 23:59 in Vietnam, 1 March
        early = datetime.datetime(2026, 3, 1, 17, 1, tzinfo=UTC)  # 00:01 in Vietnam, 2 March
        rows = [
            _event(late, "served", fields_served=4, papers_avoided=1),
            _event(late, "served", fields_served=2, papers_avoided=0),
            _event(early, "served", fields_served=3, papers_avoided=1),
            _event(early, "introspection"),
            _event(early, "rejected:CLIENT_SUSPENDED", envelope={"refused": 3}),
            _event(late, "rejected:RATE_LIMITED"),
            _event(early, "approved", type="consent", organisation=None),
            _event(early, "served", client_id="VN/GOV/OTHER/x", fields_served=9),
        ]
        async with engine.begin() as conn:
            await conn.execute(events.insert(), rows)
        start = datetime.datetime(2026, 3, 1, tzinfo=UTC)
        end = datetime.datetime(2026, 3, 3, tzinfo=UTC)
        days = await daily_figures(engine, start, end, clients_under="VN/GOV/CA-A/")
        shown = [
            (
                d["day"],
                d["requests"],
                d["fieldsServed"],
                d["papersAvoided"],
                d["refused"],
                d["consents"],
            )
            for d in days
        ]
        # The consent names no organisation: the registry has no such client either.
        assert [d["organisation"] for d in days] == [ORG, None, ORG]
        assert shown == [
            ("2026-03-01", 2, 6, 1, 1, 0),
            ("2026-03-02", 0, 0, 0, 0, 1),
            ("2026-03-02", 1, 3, 1, 3, 0),
        ]
        period = await figures(engine, start, end, clients_under="VN/GOV/CA-A/")
        for key in ("requests", "fieldsServed", "papersAvoided"):
            assert sum(p[key] for p in period) == sum(d[key] for d in days)
        refused = sum(sum(p["refused"].values()) for p in period)
        assert refused == sum(d["refused"] for d in days)
        consents = sum(sum(p["consents"].values()) for p in period)
        assert consents == sum(d["consents"] for d in days)
        everyone = await daily_figures(engine, start, end, procedure=PROCEDURE)
        assert sum(d["fieldsServed"] for d in everyone) == 18
    finally:
        await engine.dispose()
