"""The client registry's generation: it rises with every change of a client or key.

Gateways keep the clients and keys they verify tokens with in memory, and read this
one row to know when to forget them (see `gateway.admission._clients`).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    generation = op.create_table(
        "client_generation",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column(
            "generation",
            sa.BigInteger(),
            nullable=False,
            comment="Rises with every change of a client or of a client's keys.",
        ),
        sa.CheckConstraint("id = 1", name=op.f("ck_client_generation_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_generation")),
    )
    op.bulk_insert(generation, [{"id": 1, "generation": 0}])


def downgrade() -> None:
    op.drop_table("client_generation")
