"""Connector registry: the manifests the gateway serves from.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "connectors",
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("title", sa.Text(), server_default="", nullable=False),
        sa.Column("agency", sa.Text(), server_default="", nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("origin", sa.Text(), nullable=False, comment="Where the manifest came from."),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('active', 'removed')", name=op.f("ck_connectors_status")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_connectors_version")),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_connectors")),
    )


def downgrade() -> None:
    op.drop_table("connectors")
