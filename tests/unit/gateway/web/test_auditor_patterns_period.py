"""The period of the auditor's patterns and questions pages, and their links to the search."""

from __future__ import annotations

import datetime
from urllib.parse import parse_qs, urlparse

import pytest

from gateway.errors import InvalidArgument
from gateway.web._auditor_patterns import _period, _search_href

VIETNAM = datetime.timezone(datetime.timedelta(hours=7))


def test_the_default_period_is_the_last_seven_days_today_included() -> None:
    today = datetime.datetime.now(VIETNAM).date()
    period = _period(None, None, days=7, max_days=366)
    assert period.last_day == today.isoformat()
    assert period.first_day == (today - datetime.timedelta(days=6)).isoformat()
    assert period.end - period.start == datetime.timedelta(days=7)
    # Midnight in Vietnam is 17:00 UTC the day before.
    assert period.start.astimezone(VIETNAM).hour == 0


def test_a_given_end_anchors_the_default_start() -> None:
    period = _period(None, "2026-03-10", days=7, max_days=366)
    assert (period.first_day, period.last_day) == ("2026-03-04", "2026-03-10")
    assert _period("2026-03-01", "2026-03-01", days=7, max_days=366).query() == {
        "from": "2026-03-01",
        "to": "2026-03-01",
    }


def test_the_default_never_exceeds_the_longest_search() -> None:
    period = _period(None, "2026-03-10", days=30, max_days=7)
    assert period.first_day == "2026-03-04"


@pytest.mark.parametrize(
    ("start", "end"),
    [("2026-03-10", "2026-03-01"), ("yesterday", None), ("2025-01-01", "2026-03-01")],
)
def test_a_bad_period_is_an_invalid_argument(start: str, end: str | None) -> None:
    with pytest.raises(InvalidArgument):
        _period(start, end, days=7, max_days=366)


def test_a_finding_links_to_the_search_over_the_pages_period() -> None:
    period = _period("2026-03-01", "2026-03-07", days=7, max_days=366)
    href = _search_href(
        {
            "from": "2026-03-01T00:00:00Z",
            "to": "2026-03-08T00:00:00Z",
            "officerPseudonym": "a" * 32,
            "hours": "outside",
        },
        period,
    )
    target = urlparse(href)
    assert target.path == "/kiem-tra"
    assert parse_qs(target.query) == {
        "from": ["2026-03-01"],
        "to": ["2026-03-07"],
        "officerPseudonym": ["a" * 32],
        "hours": ["outside"],
    }
