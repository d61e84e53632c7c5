"""The subject index by record as well as by person.

Reading a record's personal part looks up the wrapped copies of its data key by the
record's id (the audit opens every part, page by page); the index's key begins with the
person, so without an index on the record's id each page scanned the whole table.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_event_subjects_event_id", "event_subjects", ["event_id"])


def downgrade() -> None:
    op.drop_index("ix_event_subjects_event_id", table_name="event_subjects")
