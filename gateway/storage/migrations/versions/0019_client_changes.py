"""Agencies' client systems: changes an agency admin submits, an operator approves.

`client_changes` holds each submitted change of an agency's case-handling systems
(register a system, add a key, revoke a key, set the JWKS URL the gateway reads its
keys from) until a platform operator who did not submit it approves or rejects it.
`clients.jwks_url` is a system's JWKS URL, when its keys are published rather than
registered one by one.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(
            sa.Column(
                "jwks_url",
                sa.Text(),
                nullable=True,
                comment="Where the gateway reads the system's public keys (JWKS), if set.",
            )
        )
    op.create_table(
        "client_changes",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False, comment="VN/GOV/<org>/<system>"),
        sa.Column("organisation", sa.String(256), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False, comment="Public data only."),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("submitted_by", sa.Text(), nullable=False, comment="Staff id."),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.Text(), nullable=True, comment="Staff id."),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "action IN ('register', 'add_key', 'revoke_key', 'jwks_url')",
            name=op.f("ck_client_changes_action"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected')", name=op.f("ck_client_changes_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_changes")),
    )
    op.create_index(
        "ix_client_changes_organisation_status", "client_changes", ["organisation", "status"]
    )


def downgrade() -> None:
    op.drop_index("ix_client_changes_organisation_status", table_name="client_changes")
    op.drop_table("client_changes")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("jwks_url")
