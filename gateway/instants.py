"""Instants as the gateway writes and reads them.

Everything the gateway writes is RFC 3339 in UTC with a `Z` (`format_instant`). What
people type (an auditor's search range, a citizen's history) is a date, read in
Vietnam's time as the day's start (or, for the end of a range, its end), or a
date-time with its offset, read exactly (`parse_instant`). A leaf module:
every package may use it.
"""

from __future__ import annotations

import datetime
from typing import Final

from gateway.errors import InvalidArgument

__all__ = ["VIETNAM", "format_instant", "parse_instant", "utc_now", "vietnam_time"]

VIETNAM: Final = datetime.timezone(datetime.timedelta(hours=7), "ICT")
"""Indochina Time: what a date means when a person gives one."""


def utc_now() -> datetime.datetime:
    """Now, in UTC (aware): the time the gateway stamps what it stores."""
    return datetime.datetime.now(datetime.UTC)


def format_instant(value: datetime.datetime) -> str:
    """RFC 3339 in UTC with a `Z`, as the gateway writes instants (`value` is aware)."""
    return value.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def vietnam_time(value: datetime.datetime) -> str:
    """An instant as the browser pages write it: `13:05, 06/12/2026`, in Vietnam's time."""
    return value.astimezone(VIETNAM).strftime("%H:%M, %d/%m/%Y")


_YEARS = (1900, 9000)
"""The years a date given in a request may fall in."""


def parse_instant(value: str, argument: str, *, end_of_day: bool = False) -> datetime.datetime:
    """An RFC 3339 date-time with its offset, or a date, in UTC.

    A date is 00:00 UTC+7 of that day, or with `end_of_day` (the end of a range: `to`)
    24:00 UTC+7 of it, so that a range from a day to the same day covers that whole
    day. A date-time is exact. Anything else, or a year outside 1900-9000 (ranges and
    periods are reckoned from it in days), is `INVALID_ARGUMENT` naming `argument`.
    """
    try:
        if len(value) == 10:
            day = datetime.date.fromisoformat(value)
            if end_of_day:
                day += datetime.timedelta(days=1)
            instant = datetime.datetime.combine(day, datetime.time(), VIETNAM)
        else:
            instant = datetime.datetime.fromisoformat(value)
        if instant.tzinfo is not None and _YEARS[0] <= instant.year <= _YEARS[1]:
            return instant.astimezone(datetime.UTC)
    except (ValueError, OverflowError):  # not a date, or one at the calendar's very edge
        pass
    raise InvalidArgument(
        f"`{argument}` is a date (2026-01-31) or a date-time with its offset "
        f"(2026-01-31T08:00:00+07:00).",
        argument=argument,
    )
