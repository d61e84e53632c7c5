"""The operator's overview: its period, its days, its chart data and its totals."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from gateway.errors import GatewayError, InvalidArgument
from gateway.web._operator_console import (
    DEFAULT_DAYS,
    MAX_SERIES,
    chart_data,
    days_between,
    period_of,
    totals_of,
)

UTC = datetime.UTC
VENDOR = Path(__file__).parents[4] / "gateway" / "web" / "static" / "vendor" / "uplot"


def test_the_default_period_is_today_in_vietnam_and_the_days_before() -> None:
    now = datetime.datetime(2026, 3, 10, 20, 0, tzinfo=UTC)  # 03:00 on 11 March in Vietnam
    since, until = period_of(None, None, now)
    assert until == now
    assert since == datetime.datetime(2026, 2, 25, 17, 0, tzinfo=UTC)  # 00:00 on 26 February
    days = days_between(since, until)
    assert len(days) == DEFAULT_DAYS
    assert (days[0], days[-1]) == ("2026-02-26", "2026-03-11")


def test_dates_given_are_whole_days_in_vietnam() -> None:
    now = datetime.datetime(2026, 3, 10, tzinfo=UTC)
    since, until = period_of("2026-03-01", "2026-03-02", now)
    assert days_between(since, until) == ["2026-03-01", "2026-03-02"]
    only_to = period_of(None, "2026-01-31", now)
    assert days_between(*only_to)[-1] == "2026-01-31"
    assert len(days_between(*only_to)) == DEFAULT_DAYS


@pytest.mark.parametrize(
    ("start", "end"),
    [("2026-03-05", "2026-03-01"), ("2024-01-01", "2026-03-01"), ("yesterday", None)],
)
def test_a_period_that_cannot_be_read_is_refused_with_its_code(start: str, end: str | None) -> None:
    with pytest.raises(GatewayError) as caught:
        period_of(start, end, datetime.datetime(2026, 3, 10, tzinfo=UTC))
    assert isinstance(caught.value, InvalidArgument)
    assert caught.value.code == "INVALID_ARGUMENT"


def test_chart_data_fills_every_day_and_sums_the_quiet_procedures() -> None:
    days = ["2026-03-01", "2026-03-02", "2026-03-03"]
    rows = [
        {"day": "2026-03-01", "procedure": "A", "organisation": "X", "requests": 5,
         "fieldsServed": 10, "papersAvoided": 1, "refused": 2, "consents": 0},
        {"day": "2026-03-03", "procedure": "A", "organisation": "X", "requests": 1,
         "fieldsServed": 2, "papersAvoided": 0, "refused": 0, "consents": 1},
        {"day": "2026-02-28", "procedure": "A", "organisation": "X", "requests": 99,
         "fieldsServed": 99, "papersAvoided": 99, "refused": 99, "consents": 99},
    ] + [
        {"day": "2026-03-02", "procedure": f"P{n}", "organisation": None, "requests": n,
         "fieldsServed": 0, "papersAvoided": 0, "refused": 0, "consents": 0}
        for n in range(1, MAX_SERIES + 2)
    ]  # fmt: skip
    data = chart_data(rows, days, others="Khác")
    assert data["days"] == days
    assert data["fieldsServed"] == [10, 0, 2]
    assert data["refused"] == [2, 0, 0]
    assert data["consents"] == [0, 0, 1]
    labels = [s["label"] for s in data["requests"]]
    assert labels[0] == "P7 · -"  # the busiest first
    assert "A · X" in labels
    assert labels[-1] == "Khác"
    assert len(labels) == MAX_SERIES + 1
    assert data["requests"][-1]["values"] == [0, 1 + 2, 0]  # the two quietest, summed
    assert data["requestsTotal"] == [5, sum(range(1, MAX_SERIES + 2)), 1]


def test_totals_sum_every_row_and_rank_the_codes() -> None:
    rows = [
        {"requests": 3, "fieldsServed": 9, "papersAvoided": 1,
         "refused": {"RATE_LIMITED": 1}, "consents": {"approved": 2},
         "denials": {"CONSENT_REQUIRED": 1}},
        {"requests": 1, "fieldsServed": 0, "papersAvoided": 0,
         "refused": {"CLIENT_NOT_AUTHORISED": 4, "RATE_LIMITED": 1}, "consents": {},
         "denials": {}},
    ]  # fmt: skip
    totals = totals_of(rows)
    assert (totals["requests"], totals["fieldsServed"], totals["papersAvoided"]) == (4, 9, 1)
    assert totals["refused"] == [("CLIENT_NOT_AUTHORISED", 4), ("RATE_LIMITED", 2)]
    assert totals["refusedTotal"] == 6
    assert totals["consents"] == [("approved", 2)]
    assert totals["denials"] == [("CONSENT_REQUIRED", 1)]


def test_the_vendored_chart_library_is_the_one_its_sums_name() -> None:
    import hashlib

    lines = (VENDOR / "SHA256SUMS").read_text().splitlines()
    sums = dict(reversed(line.split()) for line in lines if line.strip())
    assert set(sums) == {p.name for p in VENDOR.iterdir() if p.suffix in {".js", ".css"}}
    for name, digest in sums.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest
    assert (VENDOR / "LICENSE").exists()
    assert "1.6.32" in (VENDOR / "VERSION").read_text()
