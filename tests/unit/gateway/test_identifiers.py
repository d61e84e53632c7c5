"""Identifiers from clients: personal ids (form only) and enterprise codes (check digit)."""

import pytest

from gateway.errors import InvalidIdentifier
from gateway.identifiers import EnterpriseCode, PersonalId, tax_code_check_digit

PID = "001099012345"
WEIGHTS = (31, 29, 23, 19, 17, 13, 7, 5, 3)
FULL_WIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + i) for i in range(10)))
ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x0660 + i) for i in range(10)))


def _check_digit(first_nine: str) -> int | None:
    """The domain brief's rule: 10 - (sum of d_i * w_i mod 11); remainder 0 is never issued."""
    remainder = sum(int(d) * w for d, w in zip(first_nine, WEIGHTS, strict=True)) % 11
    return None if remainder == 0 else 10 - remainder


def _with_check_digit(first_nine: str) -> str:
    digit = _check_digit(first_nine)
    assert digit is not None
    return f"{first_nine}{digit}"


def test_personal_id_of_twelve_digits() -> None:
    assert PersonalId(PID).value == PID


@pytest.mark.parametrize(
    "value",
    [
        "",
        "00109901234",  # 11 digits
        "0010990123456",  # 13 digits
        "00109901234a",
        " 01099012345",
        "001099012345\n",
        "-01099012345",
        "\uff10" + PID[1:],  # full-width zero
        PID.translate(FULL_WIDTH),
        PID.translate(ARABIC_INDIC),
    ],
)
def test_personal_id_rejects_anything_but_twelve_ascii_digits(value: str) -> None:
    with pytest.raises(InvalidIdentifier):
        PersonalId(value)


def test_personal_id_error_does_not_repeat_the_value() -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        PersonalId("00109901234")
    assert "00109901234" not in str(caught.value)
    assert "00109901234" not in repr(caught.value.extensions)


def test_personal_id_str_and_repr_hide_the_value() -> None:
    pid = PersonalId(PID)
    for shown in (str(pid), repr(pid), f"{pid}", f"{pid!r}", str([pid]), str({"id": pid})):
        assert PID not in shown


def test_personal_ids_compare_by_value() -> None:
    assert PersonalId(PID) == PersonalId(PID)
    assert PersonalId(PID) != PersonalId("079301000002")
    assert len({PersonalId(PID), PersonalId(PID)}) == 1
    assert PersonalId(PID) != PID


@pytest.mark.parametrize("code", ["0100109106", "0100684378"])
def test_real_enterprise_codes_are_valid(code: str) -> None:
    assert EnterpriseCode(code).value == code


def test_independent_rule_agrees_with_real_codes() -> None:
    assert _with_check_digit("010010910") == "0100109106"
    assert _with_check_digit("010068437") == "0100684378"


@pytest.mark.parametrize("first_nine", ["010010910", "030123456", "999999999", "123456789"])
def test_check_digit_follows_the_domain_rule(first_nine: str) -> None:
    assert tax_code_check_digit(first_nine) == _check_digit(first_nine)


def test_nine_digits_with_remainder_zero_have_no_code() -> None:
    first_nine = next(f"{n:09d}" for n in range(1000) if _check_digit(f"{n:09d}") is None)
    assert tax_code_check_digit(first_nine) is None
    for last in "0123456789":
        with pytest.raises(InvalidIdentifier):
            EnterpriseCode(first_nine + last)


@pytest.mark.parametrize("first_nine", ["010010910", "030123456", "123456789"])
def test_wrong_check_digit_is_invalid(first_nine: str) -> None:
    right = _check_digit(first_nine)
    for last in range(10):
        if last != right:
            with pytest.raises(InvalidIdentifier):
                EnterpriseCode(f"{first_nine}{last}")


@pytest.mark.parametrize("branch", ["001", "042", "999"])
def test_branch_code_is_valid(branch: str) -> None:
    code = f"0100109106-{branch}"
    assert EnterpriseCode(code).value == code


@pytest.mark.parametrize(
    "code",
    [
        "0100109106-000",
        "0100109106-01",
        "0100109106-0001",
        "0100109106-",
        "0100109106-abc",
        "0100109107-001",  # wrong check digit in the head
        "0100109106001",
        "010010910",
        "01001091060",
        "0100109106".translate(FULL_WIDTH),
        "",
    ],
)
def test_malformed_enterprise_codes_are_invalid(code: str) -> None:
    with pytest.raises(InvalidIdentifier):
        EnterpriseCode(code)


def test_enterprise_code_is_not_secret() -> None:
    code = EnterpriseCode("0100109106")
    assert str(code) == "0100109106"
    assert "0100109106" in repr(code)


def test_enterprise_codes_compare_by_value() -> None:
    assert EnterpriseCode("0100109106") == EnterpriseCode("0100109106")
    assert EnterpriseCode("0100109106") != EnterpriseCode("0100684378")
    assert EnterpriseCode("0100109106") != "0100109106"


def test_invalid_enterprise_code_names_the_argument() -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        EnterpriseCode("0100109107")
    assert caught.value.extensions == {"code": "INVALID_IDENTIFIER", "argument": "enterpriseCode"}
