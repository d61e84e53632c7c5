"""Personal ids and tax codes: builders that never repeat a value, and validators.

Personal id ``PPP C YY RRRRRR`` (Decree 137/2015 Art. 13): PPP = old province of birth
registration, C = century and sex, YY = birth year mod 100, R = random. No check digit.

Tax code: nine digits and a mod-11 check digit, weights 31 29 23 19 17 13 7 5 3, check
= 10 - (sum mod 11); a remainder of 0 would need check digit 10 and is never issued. A
branch appends ``-001`` to ``-999``.
"""

import random
import re
from datetime import date
from typing import Final

from sandbox._old_provinces import OLD_PROVINCES

TAX_WEIGHTS: Final = (31, 29, 23, 19, 17, 13, 7, 5, 3)
_DIGITS12: Final = re.compile(r"[0-9]{12}")
_TAX_CODE: Final = re.compile(r"([0-9]{10})(?:-([0-9]{3}))?")
_FIRST_CENTURY: Final = 1900
_LAST_YEAR: Final = 2399


def century_sex_digit(birth_year: int, *, female: bool) -> int:
    """The C digit: 0/1 for a man/woman born in the 1900s, 2/3 in the 2000s, and so on."""
    if not _FIRST_CENTURY <= birth_year <= _LAST_YEAR:
        raise ValueError(f"no century digit for birth year {birth_year}")
    return 2 * (birth_year // 100 - _FIRST_CENTURY // 100) + int(female)


def is_personal_id(value: str) -> bool:
    """Twelve ASCII digits whose first three name a province on the old 63-province list."""
    return bool(_DIGITS12.fullmatch(value)) and value[:3] in OLD_PROVINCES


def tax_check_digit(first_nine: str) -> int | None:
    """The check digit for nine digits, or None when the remainder is 0 (never issued)."""
    if len(first_nine) != len(TAX_WEIGHTS) or not first_nine.isascii() or not first_nine.isdigit():
        raise ValueError("expected nine ASCII digits")
    remainder = sum(int(d) * w for d, w in zip(first_nine, TAX_WEIGHTS, strict=True)) % 11
    return None if remainder == 0 else 10 - remainder


def is_tax_code(value: str) -> bool:
    """A 10-digit tax code with a valid check digit, or its 13-character branch form."""
    match = _TAX_CODE.fullmatch(value)
    if match is None:
        return False
    main, branch = match.groups()
    if branch is not None and branch == "000":
        return False
    return tax_check_digit(main[:9]) == int(main[9])


class PersonalIdIssuer:
    """Hands out unique personal ids from a seeded random source."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._issued: set[str] = set()

    def issue(self, *, province: str, birth_date: date, female: bool) -> str:
        """A new id for someone whose birth was registered in old ``province``."""
        if province not in OLD_PROVINCES:
            raise ValueError(f"not an old province code: {province!r}")
        prefix = (
            f"{province}{century_sex_digit(birth_date.year, female=female)}"
            f"{birth_date.year % 100:02d}"
        )
        while True:
            candidate = f"{prefix}{self._rng.randrange(1_000_000):06d}"
            if candidate not in self._issued:
                self._issued.add(candidate)
                return candidate


class TaxCodeIssuer:
    """Hands out unique 10-digit enterprise tax codes with valid check digits."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._issued: set[str] = set()

    def issue(self, prefix: str) -> str:
        """A new code starting with the two-digit tax-office ``prefix``."""
        if len(prefix) != 2 or not prefix.isdigit():
            raise ValueError("expected a two-digit prefix")
        while True:
            first_nine = f"{prefix}{self._rng.randrange(10_000_000):07d}"
            check = tax_check_digit(first_nine)
            candidate = f"{first_nine}{check}"
            if check is not None and candidate not in self._issued:
                self._issued.add(candidate)
                return candidate
