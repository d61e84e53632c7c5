"""`format_ts` writes what the public leaves and receipts have always held."""

from __future__ import annotations

import datetime

from hypothesis import given
from hypothesis import strategies as st

from gateway.log import format_ts

ZONES = st.none() | st.integers(min_value=-23 * 60, max_value=23 * 60).map(
    lambda minutes: datetime.timezone(datetime.timedelta(minutes=minutes))
)


@given(
    st.datetimes(
        min_value=datetime.datetime(1001, 1, 1), max_value=datetime.datetime(9998, 12, 31)
    ),
    ZONES,
)
def test_the_same_characters_as_the_strftime_it_replaces(
    value: datetime.datetime, zone: datetime.tzinfo | None
) -> None:
    value = value.replace(tzinfo=zone)
    utc = value.replace(tzinfo=datetime.UTC) if zone is None else value.astimezone(datetime.UTC)
    assert format_ts(value) == utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_a_whole_second_keeps_its_six_digits() -> None:
    at = datetime.datetime(2026, 12, 7, 10, 52, 39, tzinfo=datetime.UTC)
    assert format_ts(at) == "2026-12-07T10:52:39.000000Z"
