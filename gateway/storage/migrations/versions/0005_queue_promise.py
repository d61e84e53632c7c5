"""The log queue keeps the leaf hash each receipt promised.

The sequencer integrates an event only if its leaf, rebuilt from the stored event,
still has the hash its receipt promised: an event edited while it waited in the queue
stops the log instead of entering it as if it were the original. Events queued before
this revision carry no promise (NULL).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("log_queue") as batch:
        batch.add_column(
            sa.Column(
                "leaf_hash",
                sa.LargeBinary(32),
                nullable=True,
                comment="The leaf hash the event's receipt promised.",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("log_queue") as batch:
        batch.drop_column("leaf_hash")
