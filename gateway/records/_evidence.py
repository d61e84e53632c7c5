"""What an auditor reads of one access record's personal part: its sources' evidence.

Auditors see envelopes, never personal parts, with one exception: the part's
`evidence`, what sources gave as evidence of the calls made for the request (today
the `X-Road-Request-Hash` of each call to an X-Road service, per connector, in the
order the answers came; `omitted` counts those beyond the first hundred). An auditor
compares them with the agency's security-server log, where the messages carry the
record's `requestId` as their `X-Road-Id`.

A request hash commits to the request, and the request names the person: personal ids
are few enough to try them all against it. So it is sealed in the personal part, and an
auditor reads it one record at a time, on a route that is itself recorded, before the
answer leaves, as an `auditor_search` naming the record's people: each of them sees that
an auditor looked, as they see a search by their id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.records._personal import personal_parts
from gateway.storage import event_subjects, events

__all__ = ["RecordEvidence", "record_evidence"]


@dataclass(frozen=True, slots=True)
class RecordEvidence:
    """The evidence of one access record, and the people it names (for recording)."""

    id: str
    request_id: str
    evidence: dict[str, Any] | None
    """Per connector, its evidence (`{}`: the sources gave none, or the record predates
    it); `None` when the personal part does not open (everyone it named is forgotten)."""
    subjects: list[str] = field(default_factory=list, repr=False)
    """The people the record names who are not forgotten."""


async def record_evidence(conn: AsyncConnection, event_id: str) -> RecordEvidence | None:
    """The evidence of the access record `event_id`, or `None` when there is none such."""
    row = (
        await conn.execute(
            sa.select(events.c.id, events.c.request_id).where(
                events.c.id == event_id, events.c.type == "access"
            )
        )
    ).first()
    if row is None:
        return None
    part = (await personal_parts(conn, [row.id])).get(row.id)
    value = part.value() if part is not None else None
    evidence: dict[str, Any] | None = None
    if value is not None:
        found = value.get("evidence")
        evidence = found if isinstance(found, dict) else {}
    subjects = (
        await conn.execute(
            sa.select(event_subjects.c.subject)
            .where(event_subjects.c.event_id == row.id)
            .order_by(event_subjects.c.subject)
        )
    ).scalars()
    return RecordEvidence(row.id, row.request_id, evidence, list(subjects))
