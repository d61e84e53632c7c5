"""The `purpose` claim: officers and cases in any script, never control characters."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest

from gateway.errors import InvalidPurpose
from policies import Purpose

AN = "079203001234"


def _claim(**changes: Any) -> dict[str, Any]:
    return {
        "procedure": "1.004222",
        "case": "HS-2026-000123",
        "officer": "can-bo-7",
        "subjects": [AN],
        **changes,
    }


@pytest.mark.parametrize(
    "text",
    [
        "Nguyễn Văn An",
        "Trần Thị Ánh Tuyết",
        "HS-2026/Đắk Lắk-000123 (hồ sơ thường trú)",
        "VN:canbo-0002",
        "1.004222/HS-2025-000456",
        "王小明",
        "ព្រះរាជាណាចក្រ",
        "می‌خواهم",  # a Persian word: the zero-width non-joiner is part of its spelling
        "cán bộ 👩‍💼",  # an emoji sequence joined by a zero-width joiner
    ],
)
@pytest.mark.parametrize("part", ["officer", "case"])
def test_letters_of_any_script_are_accepted_as_they_are(part: str, text: str) -> None:
    purpose = Purpose.from_claim(_claim(**{part: text}))
    assert getattr(purpose, part) == text


@pytest.mark.parametrize(
    "text",
    [
        "can-bo\x00-7",  # NUL
        "can-bo-7\r\nX-Road-Client: VN/GOV/X/Y",  # CR LF: a header of its own
        "can-bo-7\n",
        "can\tbo",
        "can-bo-\x7f",  # DEL
        "can-bo-\x85",  # NEL, a C1 control
        "can-bo-\ud800",  # a lone surrogate: not encodable as UTF-8
        "\udc80can-bo",
        "\u202ecan-bo-7",  # right-to-left override: shows other text than it is
        "can-bo\u2066-7\u2069",  # bidi isolates
        "can-bo\u200b-7",  # zero-width space
        "\ufeffcan-bo-7",  # byte order mark
        "can-bo\u2028-7",  # line separator
        "can-bo-\ue000",  # private use
        "can-bo-\U000e0001",  # language tag
    ],
    ids=repr,
)
@pytest.mark.parametrize("part", ["procedure", "officer", "case"])
def test_control_format_and_surrogate_characters_are_refused(part: str, text: str) -> None:
    with pytest.raises(InvalidPurpose, match=rf"`purpose\.{part}`") as refused:
        Purpose.from_claim(_claim(**{part: text}))
    assert refused.value.code == "INVALID_PURPOSE"
    # The message never quotes the value: it could not be encoded or shown.
    assert text not in refused.value.message
    refused.value.message.encode("utf-8")


@pytest.mark.parametrize("code", range(128))
def test_each_ascii_character_is_judged_by_its_category(code: int) -> None:
    # ASCII text takes a shorter path: it must refuse exactly the controls.
    text = f"can-bo-{chr(code)}-7"
    if unicodedata.category(chr(code)) == "Cc":
        with pytest.raises(InvalidPurpose):
            Purpose.from_claim(_claim(officer=text))
    else:
        assert Purpose.from_claim(_claim(officer=text)).officer == text


@pytest.mark.parametrize("part", ["procedure", "officer", "case"])
@pytest.mark.parametrize("value", ["", "x" * 129, None, 7, ["can-bo-7"]])
def test_the_length_and_type_are_still_checked(part: str, value: Any) -> None:
    with pytest.raises(InvalidPurpose, match=rf"`purpose\.{part}`"):
        Purpose.from_claim(_claim(**{part: value}))


def test_128_characters_of_vietnamese_are_accepted() -> None:
    officer = "Nguyễn " * 18 + "An"
    assert len(officer) == 128
    assert Purpose.from_claim(_claim(officer=officer)).officer == officer


def test_a_name_typed_with_combining_marks_is_the_same_officer() -> None:
    composed = "Nguyễn Văn An"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    purpose = Purpose.from_claim(_claim(officer=decomposed, case=f"HS-{decomposed}"))
    assert purpose.officer == composed
    assert purpose.case == f"HS-{composed}"
