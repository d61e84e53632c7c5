"""The status of an access's dossier, for searching reads on closed or cancelled cases.

Repeated from the envelope's `caseConfirmation.dossierStatus` (the audit checks they
agree); empty for records written before, and for procedures that confirm no case.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(
            sa.Column(
                "dossier_status",
                sa.String(16),
                nullable=True,
                comment="The case's dossier status, where confirmed.",
            )
        )
    op.create_index(
        op.f("ix_events_dossier_status_ts"), "events", ["dossier_status", "ts"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_events_dossier_status_ts"), table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("dossier_status")
