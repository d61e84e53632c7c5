"""Personal parts sealed under a data key per record, wrapped for each person named.

A record's personal part (subject ids, the officer's id, the signed token) was stored
in clear, so forgetting a person was a plain `DELETE` that dead tuples, the write-ahead
log and backups outlived. From this revision on it is sealed (AES-256-GCM) under a
random data key of its own, and that key is wrapped under the key of each person the
record names (`event_subjects.wrapped_key`); forgetting a person deletes their key and
their wrapped copies, and the part stays readable for the others it names.

Existing parts of records that name someone are sealed here, the same way; the salted
hash in their envelopes covers the same canonical JSON, so they keep verifying. Parts
of records that name nobody (an operator's change: staff ids only) stay in clear.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import datetime
import json
import secrets
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import rfc8785
import sqlalchemy as sa
from alembic import op

from keys import seal, wrap_key

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PAGE = 500

_personal = sa.table(
    "event_personal",
    sa.column("event_id", sa.String),
    sa.column("personal", sa.JSON),
    sa.column("sealed", sa.LargeBinary),
)
_subjects = sa.table(
    "event_subjects",
    sa.column("subject", sa.String),
    sa.column("event_id", sa.String),
    sa.column("wrapped_key", sa.LargeBinary),
)
_keys = sa.table(
    "subject_keys",
    sa.column("subject", sa.String),
    sa.column("key", sa.LargeBinary),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("event_personal") as batch:
        batch.alter_column("personal", existing_type=sa.JSON(), nullable=True)
        batch.add_column(sa.Column("sealed", sa.LargeBinary(), nullable=True))
        batch.create_check_constraint("one_form", "(personal IS NULL) <> (sealed IS NULL)")
    with op.batch_alter_table("event_subjects") as batch:
        batch.add_column(sa.Column("wrapped_key", sa.LargeBinary(60), nullable=True))
    _seal_existing(op.get_bind())


def _seal_existing(conn: sa.Connection) -> None:
    """Seal every clear personal part of a record that names someone, page by page."""
    after = ""
    while True:
        ids = list(
            conn.scalars(
                sa.select(_subjects.c.event_id)
                .where(_subjects.c.event_id > after)
                .distinct()
                .order_by(_subjects.c.event_id)
                .limit(_PAGE)
            )
        )
        if not ids:
            return
        after = ids[-1]
        named: dict[str, list[str]] = defaultdict(list)
        for subject, event_id in conn.execute(
            sa.select(_subjects.c.subject, _subjects.c.event_id).where(
                _subjects.c.event_id.in_(ids)
            )
        ):
            named[event_id].append(subject)
        keys = _keys_of(conn, {s for people in named.values() for s in people})
        for event_id, value in conn.execute(
            sa.select(_personal.c.event_id, _personal.c.personal).where(
                _personal.c.event_id.in_(ids), _personal.c.personal.is_not(None)
            )
        ).all():
            personal = json.loads(value) if isinstance(value, str | bytes) else value
            data_key, sealed = seal(rfc8785.dumps(personal), event_id)
            conn.execute(
                _personal.update()
                .where(_personal.c.event_id == event_id)
                .values(personal=sa.null(), sealed=sealed)
            )
            for subject in named[event_id]:
                conn.execute(
                    _subjects.update()
                    .where(_subjects.c.event_id == event_id, _subjects.c.subject == subject)
                    .values(wrapped_key=wrap_key(keys[subject], data_key, event_id))
                )


def _keys_of(conn: sa.Connection, subjects: set[str]) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    wanted = sorted(subjects)
    for i in range(0, len(wanted), _PAGE):
        rows = conn.execute(
            sa.select(_keys.c.subject, _keys.c.key).where(
                _keys.c.subject.in_(wanted[i : i + _PAGE])
            )
        )
        keys.update({s: bytes(k) for s, k in rows})
    now = datetime.datetime.now(datetime.UTC)
    made: list[dict[str, Any]] = [
        {"subject": s, "key": secrets.token_bytes(32), "created_at": now}
        for s in wanted
        if s not in keys
    ]
    if made:
        conn.execute(_keys.insert(), made)
        keys.update({m["subject"]: m["key"] for m in made})
    return keys


def downgrade() -> None:
    raise NotImplementedError(
        "Sealed personal parts are not opened again in clear: restore a backup taken "
        "before revision 0009 instead."
    )
