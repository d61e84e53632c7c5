"""Purpose binding: why a request is made, as its signed token states it.

Every read names its purpose: the procedure (a catalogue code), the agency's case
number, the officer's id, and the people, enterprises or households the case is
about (at most 50). A procedure that allows it may hide the access from its subjects
until a date (`hiddenUntil`). The gateway decides, records and shows every read
against this one value.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, Final

from gateway.errors import InvalidIdentifier, InvalidPurpose
from gateway.identifiers import SUBJECT_KINDS, describe_kinds, parse_identifier
from gateway.instants import format_instant

__all__ = ["MAX_SUBJECTS", "Purpose"]

MAX_SUBJECTS: Final = 50
"""The most people, enterprises or households one purpose may name."""
_TEXT_LIMIT: Final = 128


def _subject(value: Any) -> str:
    """A personal id, an enterprise code or a household id, checked for its form."""
    try:
        return parse_identifier(value, SUBJECT_KINDS, argument="subject")
    except InvalidIdentifier:
        raise InvalidPurpose(f"Each subject is {describe_kinds(SUBJECT_KINDS)}.") from None


@dataclass(frozen=True, slots=True)
class Purpose:
    """Why a request is made: procedure, case, officer, and whom it is about."""

    procedure: str
    case: str
    officer: str = field(repr=False)
    subjects: tuple[str, ...] = field(repr=False)
    hidden_until: datetime.datetime | None = None
    """Until then the subjects do not see this access (procedures that allow it only)."""

    @classmethod
    def from_claim(cls, claim: Any) -> Purpose:
        """Validate the `purpose` claim of a token; `InvalidPurpose` says what is wrong."""
        if not isinstance(claim, dict):
            raise InvalidPurpose("The token needs a `purpose` object.")
        texts = {}
        for name in ("procedure", "case", "officer"):
            value = claim.get(name)
            if not isinstance(value, str) or not 0 < len(value) <= _TEXT_LIMIT:
                raise InvalidPurpose(
                    f"`purpose.{name}` is a string of 1 to {_TEXT_LIMIT} characters."
                )
            texts[name] = value
        subjects = claim.get("subjects")
        if not isinstance(subjects, list) or len(subjects) > MAX_SUBJECTS:
            # Empty is allowed: a request that reads nobody's data (introspection).
            raise InvalidPurpose(f"`purpose.subjects` lists at most {MAX_SUBJECTS} identifiers.")
        return cls(
            texts["procedure"],
            texts["case"],
            texts["officer"],
            tuple(dict.fromkeys(_subject(s) for s in subjects)),
            _hidden_until(claim.get("hiddenUntil")),
        )

    def claim(self) -> dict[str, Any]:
        """The `purpose` claim of a token that states this purpose."""
        claim: dict[str, Any] = {
            "procedure": self.procedure,
            "case": self.case,
            "officer": self.officer,
            "subjects": list(self.subjects),
        }
        if self.hidden_until is not None:
            claim["hiddenUntil"] = format_instant(self.hidden_until)
        return claim


def _hidden_until(value: Any) -> datetime.datetime | None:
    if value is None:
        return None
    try:
        if not isinstance(value, str) or len(value) > 40:
            raise ValueError
        instant = datetime.datetime.fromisoformat(value)
        if instant.tzinfo is None:
            raise ValueError
    except ValueError:
        raise InvalidPurpose(
            "`purpose.hiddenUntil` is an RFC 3339 date-time with its offset, "
            "e.g. 2027-01-31T00:00:00+07:00."
        ) from None
    return instant.astimezone(datetime.UTC)
