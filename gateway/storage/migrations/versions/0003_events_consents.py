"""Access events (envelope and personal part apart) and consent artefacts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=True),
        sa.Column("procedure", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(40), nullable=False),
        sa.Column("policy_version", sa.String(64), nullable=False),
        sa.Column("envelope", sa.JSON(), nullable=False, comment="No personal data."),
        sa.Column("envelope_hash", sa.String(64), nullable=False),
        sa.CheckConstraint(
            "type IN ('access', 'consent', 'admin', 'auditor_search', 'key')",
            name=op.f("ck_events_type"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_ts"), "events", ["ts"])
    op.create_index(op.f("ix_events_client_id"), "events", ["client_id"])
    op.create_table(
        "event_personal",
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("salt", sa.String(32), nullable=False),
        sa.Column("personal", sa.JSON(), nullable=False, comment="Subjects, officer id, token."),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_event_personal_event_id_events")
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_event_personal")),
    )
    op.create_table(
        "event_subjects",
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_event_subjects_event_id_events")
        ),
        sa.PrimaryKeyConstraint("subject", "event_id", name=op.f("pk_event_subjects")),
    )
    op.create_table(
        "consents",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(16), nullable=False),
        sa.Column("consumer", sa.String(128), nullable=False),
        sa.Column("procedure", sa.String(64), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("case", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answer_by", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "grant", sa.Text(), nullable=True, comment="Detached JWS over the granted artefact."
        ),
        sa.Column(
            "revocation", sa.Text(), nullable=True, comment="Detached JWS over the revocation."
        ),
        sa.CheckConstraint(
            "status IN ('REQUESTED', 'ACTIVE', 'DENIED', 'REVOKED', 'EXPIRED')",
            name=op.f("ck_consents_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    op.create_index(op.f("ix_consents_subject"), "consents", ["subject"])


def downgrade() -> None:
    op.drop_table("consents")
    op.drop_table("event_subjects")
    op.drop_table("event_personal")
    op.drop_index(op.f("ix_events_client_id"), table_name="events")
    op.drop_index(op.f("ix_events_ts"), table_name="events")
    op.drop_table("events")
