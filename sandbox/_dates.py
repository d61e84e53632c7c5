"""Fixed dates that keep the synthetic data reproducible (never the wall clock)."""

import random
from datetime import date, timedelta
from typing import Final

REFERENCE_DATE: Final = date(2025, 10, 1)
"""The "today" of the dataset: ages, deaths and validity dates are relative to it."""

REFORM_DATE: Final = date(2025, 7, 1)
"""Day the 34-province, two-level administration took effect."""


def random_date(rng: random.Random, start: date, end: date) -> date:
    """A day in ``[start, end]``."""
    if end < start:
        raise ValueError("empty date range")
    return start + timedelta(days=rng.randint(0, (end - start).days))


def random_day_in(rng: random.Random, year: int) -> date:
    """A day of ``year`` that is strictly before the reference date."""
    last = min(date(year, 12, 31), REFERENCE_DATE - timedelta(days=1))
    return random_date(rng, date(year, 1, 1), last)


def age_on(birth: date, day: date) -> int:
    """Completed years of age on ``day``."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def add_years(day: date, years: int) -> date:
    """The same calendar day ``years`` later (29 Feb becomes 28 Feb)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)
