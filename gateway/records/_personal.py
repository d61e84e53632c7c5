"""Reading personal parts back: in clear, or opened with a named person's key.

A sealed part opens with the wrapped copy of its data key kept for any person it names,
and that person's key (`gateway.records._recorder`). Once every one of them has been
forgotten, it opens for nobody.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.records._envelope import canonical_personal
from gateway.storage import event_personal, event_subjects, subject_keys
from keys import SealError, open_sealed, unwrap_key

__all__ = ["PersonalPart", "personal_parts"]


@dataclass(frozen=True, slots=True)
class PersonalPart:
    """A stored personal part: its salt, and its canonical JSON when it can be read."""

    salt: str
    canonical: bytes | None = None
    """`None`: sealed, and it does not open (see `altered`)."""
    altered: bool = False
    """Sealed, and a named person's key is kept, but the part does not open with it:
    the part or its wrapped key was changed. (Not altered and unreadable: everyone it
    names has been forgotten.)"""

    def value(self) -> dict[str, Any] | None:
        """The part as a mapping, or `None` when it cannot be read."""
        if self.canonical is None:
            return None
        found = orjson.loads(self.canonical)
        return found if isinstance(found, dict) else None


async def personal_parts(
    conn: AsyncConnection, ids: Sequence[str], *, subject: str | None = None
) -> dict[str, PersonalPart]:
    """The stored personal parts of the records `ids` (a record without one is left out).

    With `subject`, a sealed part is opened only with that person's key: what a citizen
    reads of their own records.
    """
    if not ids:
        return {}
    joined = sa.and_(
        event_subjects.c.event_id == event_personal.c.event_id,
        event_subjects.c.wrapped_key.is_not(None),
    )
    if subject is not None:
        joined = sa.and_(joined, event_subjects.c.subject == subject)
    query = (
        sa.select(
            event_personal.c.event_id,
            event_personal.c.salt,
            event_personal.c.personal,
            event_personal.c.sealed,
            event_subjects.c.wrapped_key,
            subject_keys.c.key,
        )
        .select_from(event_personal)
        .outerjoin(event_subjects, joined)
        .outerjoin(subject_keys, subject_keys.c.subject == event_subjects.c.subject)
        .where(event_personal.c.event_id.in_(ids))
    )
    parts: dict[str, PersonalPart] = {}
    for row in await conn.execute(query):
        known = parts.get(row.event_id)
        if known is not None and (known.canonical is not None or known.altered):
            continue
        parts[row.event_id] = _read(row)
    return parts


def _read(row: Any) -> PersonalPart:
    if row.sealed is None:
        value = row.personal if isinstance(row.personal, dict) else orjson.loads(row.personal)
        return PersonalPart(row.salt, canonical_personal(value))
    if row.wrapped_key is None or row.key is None:
        return PersonalPart(row.salt)
    try:
        data_key = unwrap_key(bytes(row.key), bytes(row.wrapped_key), row.event_id)
        return PersonalPart(row.salt, open_sealed(data_key, bytes(row.sealed), row.event_id))
    except SealError:
        return PersonalPart(row.salt, altered=True)
