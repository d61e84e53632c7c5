"""Client registry: case-handling systems and their public keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("id", sa.String(128), nullable=False, comment="VN/GOV/<org>/<system>"),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("organisation", sa.Text(), nullable=False),
        sa.Column("agency_kinds", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('active', 'suspended')", name=op.f("ck_clients_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clients")),
    )
    op.create_table(
        "client_keys",
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("kid", sa.String(128), nullable=False),
        sa.Column("alg", sa.String(16), nullable=False),
        sa.Column("jwk", sa.JSON(), nullable=False, comment="Public key only."),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('active', 'revoked')", name=op.f("ck_client_keys_status")),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_client_keys_client_id_clients")
        ),
        sa.PrimaryKeyConstraint("client_id", "kid", name=op.f("pk_client_keys")),
    )


def downgrade() -> None:
    op.drop_table("client_keys")
    op.drop_table("clients")
