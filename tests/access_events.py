"""An access record as the recorder's tests write it: one person's full name, read by
law for the residence procedure by a commune police's system, and served."""

from __future__ import annotations

from gateway.records import Event

RESIDENCE = "1.004222"
CLIENT = "VN/GOV/CA-HN/cu-tru"
READ = "Citizen.fullName"


def access_event(person: str, policy_version: str, *, request_id: str = "req-1") -> Event:
    """The access record of `READ` about `person`, under the catalogue `policy_version`."""
    return Event(
        type="access",
        request_id=request_id,
        outcome="served",
        policy_version=policy_version,
        envelope={
            "client": CLIENT,
            "organisation": "Commune Police",
            "procedure": RESIDENCE,
            "decisions": [
                {"path": READ, "decision": "ALLOWED_BY_LAW", "basis": "law", "subjects": [0]}
            ],
            "status": 200,
            "errors": [],
            "fieldsServed": 1,
            "papersAvoided": 1,
        },
        personal={
            "subjects": [person],
            "officer": "officer-1",
            "case": "CASE-1",
            "served": {person: [READ]},
        },
        subjects=[person],
        client_id=CLIENT,
        procedure=RESIDENCE,
    )
