"""Witnesses' cosignatures of checkpoints, and where each witness stands.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "checkpoint_cosignatures",
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("witness", sa.String(256), nullable=False, comment="The witness's key name."),
        sa.Column(
            "line", sa.Text(), nullable=False, comment="The cosignature line, as it answered."
        ),
        sa.Column(
            "cosigned_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="The cosignature's time.",
        ),
        sa.ForeignKeyConstraint(
            ["size"],
            ["log_checkpoints.size"],
            name=op.f("fk_checkpoint_cosignatures_size_log_checkpoints"),
        ),
        sa.PrimaryKeyConstraint("size", "witness", name=op.f("pk_checkpoint_cosignatures")),
    )
    op.create_table(
        "witness_state",
        sa.Column("witness", sa.String(256), nullable=False),
        sa.Column(
            "size",
            sa.BigInteger(),
            nullable=False,
            comment="The size it last cosigned (or said).",
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("witness", name=op.f("pk_witness_state")),
    )


def downgrade() -> None:
    op.drop_table("witness_state")
    op.drop_table("checkpoint_cosignatures")
