"""Consent artefacts: what a citizen lets one data consumer read, for one procedure."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, Final

from gateway.instants import format_instant

__all__ = ["CONSENT_STATES", "GRANT_VERSION", "Consent"]

CONSENT_STATES: Final = ("REQUESTED", "ACTIVE", "DENIED", "REVOKED", "EXPIRED")
"""Where a consent is in its life: requested, then in force or denied, then revoked or over."""

GRANT_VERSION: Final = 2
"""The form of the artefact a grant signs now: 2 names the case; 1 (grants made before
the case was signed) does not, and such a grant still verifies over that form."""


def _instant(value: datetime.datetime | None) -> str | None:
    return None if value is None else format_instant(value)


@dataclass(frozen=True, slots=True)
class Consent:
    """One consent artefact as stored, with its status now."""

    id: str
    subject: str = field(repr=False)
    consumer: str
    procedure: str
    fields: tuple[str, ...]
    case: str
    status: str
    requested_at: datetime.datetime
    answer_by: datetime.datetime
    valid_until: datetime.datetime
    decided_at: datetime.datetime | None
    revoked_at: datetime.datetime | None
    grant: str | None = field(repr=False)
    revocation: str | None = field(repr=False)
    grant_version: int = GRANT_VERSION
    """The form of `artefact()` its grant signs (see `GRANT_VERSION`)."""

    @property
    def valid_from(self) -> datetime.datetime | None:
        """When it came into force: only a consent that was granted has this."""
        return self.decided_at if self.status in {"ACTIVE", "REVOKED"} else None

    def artefact(self) -> dict[str, Any]:
        """What the grant signs: the consent as approved (no signature).

        Since version 2 it names the case the consent was asked under, which is the
        only case it is read under (unless its procedure reuses consents across cases).
        """
        artefact = {
            "id": self.id,
            "subject": self.subject,
            "consumer": self.consumer,
            "procedure": self.procedure,
            "fields": list(self.fields),
            "validFrom": _instant(self.decided_at),
            "validUntil": _instant(self.valid_until),
        }
        if self.grant_version >= 2:
            artefact["case"] = self.case
        return artefact

    def public(self) -> dict[str, Any]:
        """The consent as shown to its consumer and to its citizen (camelCase)."""
        return {
            "id": self.id,
            "consumer": self.consumer,
            "procedure": self.procedure,
            "fields": list(self.fields),
            "case": self.case,
            "status": self.status,
            "requestedAt": _instant(self.requested_at),
            "answerBy": _instant(self.answer_by),
            "validFrom": _instant(self.valid_from),
            "validUntil": _instant(self.valid_until),
            "revokedAt": _instant(self.revoked_at),
        }
