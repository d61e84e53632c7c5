"""Identifiers that arrive from clients: personal ids, enterprise (tax) codes, households.

A `PersonalId` never shows its value in `str` or `repr`, so it cannot leak into a log
line by accident; code that must send it to a source asks for `.value`. Whoever takes
"one of several kinds" (a purpose's subjects, an auditor's search, a holder of land)
checks it with `parse_identifier`. A leaf module: every package may use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Final, Protocol

from gateway.errors import InvalidIdentifier

__all__ = [
    "HOLDER_KINDS",
    "SUBJECT_KINDS",
    "EnterpriseCode",
    "HouseholdId",
    "IdentifierKind",
    "PersonalId",
    "describe_kinds",
    "parse_identifier",
    "tax_code_check_digit",
]

_TAX_WEIGHTS: Final = (31, 29, 23, 19, 17, 13, 7, 5, 3)


def _is_ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


class PersonalId:
    """A 12-digit personal identification number (Law 26/2023 Art. 12).

    The number has no check digit, so only its form is checked: twelve ASCII digits.
    """

    __slots__ = ("value",)
    described: ClassVar[str] = "a 12-digit personal id"

    def __init__(self, value: str) -> None:
        if len(value) != 12 or not _is_ascii_digits(value):
            raise InvalidIdentifier(
                "A personal id is 12 digits.", argument="personalId", expected="12 digits"
            )
        self.value: Final = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PersonalId) and other.value == self.value

    def __hash__(self) -> int:
        return hash(("PersonalId", self.value))

    def __str__(self) -> str:
        return "<personal id>"

    def __repr__(self) -> str:
        return "PersonalId(<redacted>)"


class HouseholdId:
    """A household's id in the population database.

    The official household number's format is not confirmed, so this accepts 1-64
    ASCII letters, digits or '-' with at least one letter: never a bare number, which
    could be a mistyped personal id.
    """

    __slots__ = ("value",)
    described: ClassVar[str] = "a household id"

    def __init__(self, value: str) -> None:
        plain = value.replace("-", "")
        if not (0 < len(value) <= 64 and plain.isascii() and plain.isalnum()) or plain.isdigit():
            raise InvalidIdentifier(
                "A household id is 1-64 letters, digits or '-', with at least one letter.",
                argument="householdId",
            )
        self.value: Final = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HouseholdId) and other.value == self.value

    def __hash__(self) -> int:
        return hash(("HouseholdId", self.value))

    def __str__(self) -> str:
        return "<household id>"

    def __repr__(self) -> str:
        return "HouseholdId(<redacted>)"


def tax_code_check_digit(first_nine: str) -> int | None:
    """The tenth digit of a tax code, or `None` when no code is issued for these nine."""
    total = sum(int(d) * w for d, w in zip(first_nine, _TAX_WEIGHTS, strict=True))
    remainder = total % 11
    return None if remainder == 0 else 10 - remainder


class EnterpriseCode:
    """An enterprise code, which is the tax code: 10 digits, or 13 for a branch.

    The tenth digit is a mod-11 check digit (Circular 105/2020/TT-BTC Annex 1);
    a branch adds `-001` to `-999`.
    """

    __slots__ = ("value",)
    described: ClassVar[str] = "an enterprise code"

    def __init__(self, value: str) -> None:
        head, dash, branch = value.partition("-")
        ok = len(head) == 10 and _is_ascii_digits(head)
        if ok and dash:
            ok = len(branch) == 3 and _is_ascii_digits(branch) and branch != "000"
        if ok:
            ok = tax_code_check_digit(head[:9]) == int(head[9])
        if not ok:
            raise InvalidIdentifier(
                "An enterprise code is a 10-digit tax code with a valid check digit, "
                "or a 13-character branch code such as 0100109106-001.",
                argument="enterpriseCode",
            )
        self.value: Final = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EnterpriseCode) and other.value == self.value

    def __hash__(self) -> int:
        return hash(("EnterpriseCode", self.value))

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"EnterpriseCode({self.value!r})"


class IdentifierKind(Protocol):
    """A kind of identifier: checks a value's form, or raises `InvalidIdentifier`."""

    described: ClassVar[str]

    def __init__(self, value: str) -> None: ...

    @property
    def value(self) -> str:
        """The identifier, checked."""
        ...


SUBJECT_KINDS: Final[Sequence[type[IdentifierKind]]] = (PersonalId, EnterpriseCode, HouseholdId)
"""Whom a purpose may name, and an auditor search for."""
HOLDER_KINDS: Final[Sequence[type[IdentifierKind]]] = (PersonalId, EnterpriseCode)
"""Who may hold land or a digitized result: a person or an enterprise."""


def describe_kinds(kinds: Sequence[type[IdentifierKind]]) -> str:
    """`a 12-digit personal id, an enterprise code or a household id`."""
    names = [kind.described for kind in kinds]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def parse_identifier(
    value: object, kinds: Sequence[type[IdentifierKind]] = SUBJECT_KINDS, *, argument: str
) -> str:
    """`value`, checked as an identifier of the first of `kinds` it fits.

    Raises `InvalidIdentifier` naming `argument` when it fits none.
    """
    if isinstance(value, str):
        for kind in kinds:
            try:
                return kind(value).value
            except InvalidIdentifier:
                continue
    raise InvalidIdentifier(f"The {argument} is {describe_kinds(kinds)}.", argument=argument)
