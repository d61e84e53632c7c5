"""A key per subject, for the subject commitments in access-record envelopes.

Each envelope commits to the people it concerns with `HMAC(subject_key, event_id)`:
with the key, an auditor can confirm that a record concerns a person without the
personal part; once `gateway audit forget` deletes the key, nobody can, and the
envelopes and leaves still verify.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subject_keys",
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("key", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subject", name=op.f("pk_subject_keys")),
        comment="Deleting a row forgets the person: their commitments become unlinkable.",
    )


def downgrade() -> None:
    op.drop_table("subject_keys")
