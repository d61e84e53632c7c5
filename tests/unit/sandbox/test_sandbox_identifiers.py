import random
from datetime import date

import pytest

from sandbox import (
    OLD_PROVINCES,
    PersonalIdIssuer,
    TaxCodeIssuer,
    century_sex_digit,
    is_personal_id,
    is_tax_code,
    tax_check_digit,
)

# Real enterprise codes; their check digits work out by hand:
# 0100109106: 1*29 + 1*17 + 9*7 + 1*5 = 114, 114 mod 11 = 4, 10 - 4 = 6.
# 0100047516: 1*29 + 4*13 + 7*7 + 5*5 + 1*3 = 158, 158 mod 11 = 4, 10 - 4 = 6.
KNOWN_GOOD = ("0100109106", "0100047516")


@pytest.mark.parametrize("code", KNOWN_GOOD)
def test_known_tax_codes_are_valid(code: str) -> None:
    assert tax_check_digit(code[:9]) == 6
    assert is_tax_code(code)


@pytest.mark.parametrize("code", KNOWN_GOOD)
def test_every_single_digit_corruption_is_rejected(code: str) -> None:
    for position in range(10):
        for digit in "0123456789":
            if digit == code[position]:
                continue
            corrupted = code[:position] + digit + code[position + 1 :]
            assert not is_tax_code(corrupted), corrupted


def test_branch_form() -> None:
    assert is_tax_code("0100047516-001")
    assert is_tax_code("0100047516-999")
    assert not is_tax_code("0100047516-000")
    assert not is_tax_code("0100047517-001")
    assert not is_tax_code("0100047516-01")
    assert not is_tax_code("0100047516001")


@pytest.mark.parametrize("value", ["", "010010910", "01001091060", "01001O9106", " 0100109106"])
def test_malformed_tax_codes(value: str) -> None:
    assert not is_tax_code(value)


def test_remainder_zero_is_never_valid() -> None:
    nine = next(f"{n:09d}" for n in range(1, 10_000) if tax_check_digit(f"{n:09d}") is None)
    assert not any(is_tax_code(nine + d) for d in "0123456789")


def test_tax_code_issuer_gives_unique_valid_codes_with_prefix() -> None:
    issuer = TaxCodeIssuer(random.Random(1))
    codes = [issuer.issue("03") for _ in range(2_000)]
    assert len(set(codes)) == len(codes)
    assert all(is_tax_code(c) and c.startswith("03") for c in codes)


@pytest.mark.parametrize(
    ("year", "female", "digit"),
    [(1900, False, 0), (1999, True, 1), (2000, False, 2), (2025, True, 3), (2100, False, 4),
     (2250, True, 7), (2399, True, 9)],
)  # fmt: skip
def test_century_sex_digit_table(year: int, female: bool, digit: int) -> None:
    assert century_sex_digit(year, female=female) == digit


@pytest.mark.parametrize("year", [1899, 2400])
def test_century_sex_digit_out_of_range(year: int) -> None:
    with pytest.raises(ValueError, match="century"):
        century_sex_digit(year, female=False)


def test_personal_id_issuer_layout() -> None:
    issuer = PersonalIdIssuer(random.Random(7))
    ids = [
        issuer.issue(province="052", birth_date=date(2003, 5, 14), female=True) for _ in range(500)
    ]
    assert len(set(ids)) == 500
    assert all(i.startswith("052303") and is_personal_id(i) for i in ids)
    with pytest.raises(ValueError, match="old province"):
        issuer.issue(province="003", birth_date=date(2003, 5, 14), female=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("079203001234", True), ("001090000001", True), ("003203001234", False),
     ("07920300123", False), ("0792030012345", False), ("07920300123a", False),
     ("٠٧٩٢٠٣٠٠١٢٣٤", False)],
)  # fmt: skip
def test_is_personal_id(value: str, expected: bool) -> None:
    assert is_personal_id(value) is expected


def test_old_province_table() -> None:
    assert len(OLD_PROVINCES) == 63
    assert OLD_PROVINCES["001"] == "Hà Nội"
    assert OLD_PROVINCES["052"] == "Bình Định"
    assert OLD_PROVINCES["074"] == "Bình Dương"
    assert OLD_PROVINCES["079"] == "Hồ Chí Minh"
    assert OLD_PROVINCES["096"] == "Cà Mau"
    assert all(len(code) == 3 and 1 <= int(code) <= 96 for code in OLD_PROVINCES)
