"""Notifications: the outbox, citizens' preferences, and the lease of the one delivering.

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column(
            "id",
            sa.String(32),
            nullable=False,
            comment="The idempotency key: derived from what caused it, sent with every attempt.",
        ),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column(
            "recipient",
            sa.String(300),
            nullable=False,
            comment="`citizen:<handle>` (an HMAC of the id) or `agency:<organisation>`.",
        ),
        sa.Column(
            "sealed_recipient",
            sa.LargeBinary(),
            nullable=True,
            comment="A citizen's id, AES-256-GCM under the gateway's key; dropped once delivered.",
        ),
        sa.Column("payload", sa.JSON(), nullable=False, comment="What to say; no personal id."),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "last_error",
            sa.String(64),
            nullable=True,
            comment="A code (`http_503`, `unreachable`).",
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')", name=op.f("ck_notifications_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index(
        "ix_notifications_status_next_attempt_at",
        "notifications",
        ["status", "next_attempt_at"],
    )
    op.create_index(
        "ix_notifications_recipient_created_at", "notifications", ["recipient", "created_at"]
    )
    op.create_table(
        "notification_preferences",
        sa.Column("handle", sa.String(32), nullable=False, comment="HMAC of the citizen's id."),
        sa.Column(
            "sealed_subject",
            sa.LargeBinary(),
            nullable=False,
            comment="The citizen's id, AES-256-GCM under the gateway's key.",
        ),
        sa.Column("read_digest", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("handle", name=op.f("pk_notification_preferences")),
    )
    op.create_table(
        "notification_lease",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("holder", sa.String(64), nullable=False, comment="The replica delivering."),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_notification_lease_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_lease")),
        comment="One replica delivers notifications at a time: the holder of an unexpired lease.",
    )


def downgrade() -> None:
    op.drop_table("notification_lease")
    op.drop_table("notification_preferences")
    op.drop_index("ix_notifications_recipient_created_at", table_name="notifications")
    op.drop_index("ix_notifications_status_next_attempt_at", table_name="notifications")
    op.drop_table("notifications")
