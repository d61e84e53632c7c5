"""The procedure catalogue as data: every version kept, each approved by two people.

`catalogue_versions` holds each version of the catalogue (every entry, as the files
write them, sorted by code) under its `policy_version`, what changed from the version
it was proposed on, and where it stands: `proposed` by a policy editor, `approved` by an
operator who did not propose it (with the instant it takes effect), or `rejected`. The
catalogue files are recorded as a version of their own when the gateway starts with
files no version holds.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "catalogue_versions",
        sa.Column("version", sa.String(64), nullable=False, comment="The policy_version."),
        sa.Column("entries", sa.JSON(), nullable=False, comment="Every entry, sorted by code."),
        sa.Column("parent", sa.String(64), nullable=True, comment="The version it changes."),
        sa.Column("change", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("proposed_by", sa.Text(), nullable=False, comment="Staff id, or `files`."),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('proposed', 'approved', 'rejected')",
            name=op.f("ck_catalogue_versions_status"),
        ),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_catalogue_versions")),
    )
    op.create_index(
        "ix_catalogue_versions_status_effective_from",
        "catalogue_versions",
        ["status", "effective_from"],
    )


def downgrade() -> None:
    op.drop_index("ix_catalogue_versions_status_effective_from", table_name="catalogue_versions")
    op.drop_table("catalogue_versions")
