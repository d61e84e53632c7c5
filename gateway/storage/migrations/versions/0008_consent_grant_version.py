"""Which form of the consent artefact each grant signs.

Grants made from this revision on sign the case the consent was asked under (form 2);
grants made before it signed the artefact without the case (form 1) and must keep
verifying over exactly what they signed, so every existing row is form 1. The case
itself was stored with every request already: such a consent stays bound to it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("consents") as batch:
        batch.add_column(
            sa.Column(
                "grant_version",
                sa.SmallInteger(),
                nullable=False,
                server_default="1",
                comment="Form of the artefact the grant signs: 1 without the case, 2 with it.",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("consents") as batch:
        batch.drop_column("grant_version")
