"""Purpose binding: why a request is made, as its signed token states it.

Every read names its purpose: the procedure (a catalogue code), the agency's case
number, the officer's id, and the people, enterprises or households the case is
about (at most 50). A procedure that allows it may hide the access from its subjects
until a date (`hiddenUntil`). The gateway decides, records and shows every read
against this one value.

Procedure, case and officer are text in any script (officers are named in Vietnamese,
case numbers carry Vietnamese letters) but never control, format, private-use or
unassigned characters, nor lone surrogates: they go to sources in headers, into the
record and onto the citizen's screen, where a NUL, a CR LF or a bidi override would
break or disguise them.
"""

from __future__ import annotations

import datetime
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Final

from lienthong_client import Purpose as StatedPurpose

from gateway.errors import InvalidIdentifier, InvalidPurpose
from gateway.identifiers import SUBJECT_KINDS, describe_kinds, parse_identifier

__all__ = ["MAX_SUBJECTS", "Purpose", "parse_hidden_until", "purpose_text"]

MAX_SUBJECTS: Final = 50
"""The most people, enterprises or households one purpose may name."""
_TEXT_LIMIT: Final = 128
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
"""Controls, format characters, surrogates, private use, unassigned, line and paragraph
separators."""
_JOINERS: Final = frozenset("\u200c\u200d")
"""Format characters that are part of spelling (Persian, Indic scripts) and of emoji."""


def purpose_text(name: str, value: Any) -> str:
    """`value` as the purpose's `name` (procedure, case, officer): 1 to 128 characters of text.

    Raises:
        InvalidPurpose: not a string, empty, too long, or holding a control, format
            (but for the joiners), surrogate, private-use or unassigned character or a
            line or paragraph separator; the message names the part, never the value.

    The text is returned in Unicode NFC: "Nguyễn" typed with combining marks is the
    same officer, with the same pseudonym, as "Nguyễn" typed precomposed.
    """
    if not isinstance(value, str) or not 0 < len(value) <= _TEXT_LIMIT or _refused(value):
        raise InvalidPurpose(
            f"`purpose.{name}` is 1 to {_TEXT_LIMIT} characters of text: letters of any "
            "script, digits, punctuation and spaces, without control or format characters."
        )
    return value if value.isascii() else unicodedata.normalize("NFC", value)


def _refused(text: str) -> bool:
    """Whether `text` holds a character a purpose's text may not."""
    if text.isascii():
        return not text.isprintable()  # of ASCII, exactly the controls are refused
    return any(unicodedata.category(c) in _REFUSED_CATEGORIES and c not in _JOINERS for c in text)


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
        texts = {n: purpose_text(n, claim.get(n)) for n in ("procedure", "case", "officer")}
        subjects = claim.get("subjects")
        if not isinstance(subjects, list) or len(subjects) > MAX_SUBJECTS:
            # Empty is allowed: a request that reads nobody's data (introspection).
            raise InvalidPurpose(f"`purpose.subjects` lists at most {MAX_SUBJECTS} identifiers.")
        return cls(
            texts["procedure"],
            texts["case"],
            texts["officer"],
            tuple(dict.fromkeys(_subject(s) for s in subjects)),
            parse_hidden_until(claim.get("hiddenUntil")),
        )

    def stated(self) -> StatedPurpose:
        """This purpose as a client states it in its tokens (the client library's)."""
        return StatedPurpose(
            self.procedure, self.case, self.officer, self.subjects, self.hidden_until
        )

    def claim(self) -> dict[str, Any]:
        """The `purpose` claim of a token that states this purpose."""
        return self.stated().claim()


def parse_hidden_until(value: Any) -> datetime.datetime | None:
    """A claim's `hiddenUntil` in UTC (`None` when absent); `InvalidPurpose` if unreadable."""
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
