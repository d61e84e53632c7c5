"""Connectors registered through the admin API: versions, authority, secrets.

Agencies submit manifests at runtime; each version is kept with who submitted and
who approved it (`connector_versions`). Operators say per organisation which canonical
fields it is authoritative for and which hosts its connectors may reach
(`organisation_authority`). Credentials are stored encrypted (`connector_secrets`).
`connectors` gains the organisation that registered it and the status `disabled`;
`connector_generation` rises with every change of what is in use, so replicas know to
reload.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("connectors") as batch:
        batch.add_column(
            sa.Column(
                "organisation",
                sa.Text(),
                nullable=True,
                comment="The agency that registered it through /admin; NULL when from a file.",
            )
        )
        batch.drop_constraint(op.f("ck_connectors_status"), type_="check")
        batch.create_check_constraint(
            op.f("ck_connectors_status"), "status IN ('active', 'removed', 'disabled')"
        )
    op.create_table(
        "connector_versions",
        sa.Column("connector", sa.String(40), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("organisation", sa.Text(), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("submitted_by", sa.Text(), nullable=False, comment="Staff id."),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.Text(), nullable=True, comment="Staff id."),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column(
            "last_dry_run",
            sa.JSON(none_as_null=True),
            nullable=True,
            comment="Per field outcome and latency, never a value of the sample.",
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected', 'superseded')",
            name=op.f("ck_connector_versions_status"),
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_connector_versions_version")),
        sa.PrimaryKeyConstraint("connector", "version", name=op.f("pk_connector_versions")),
    )
    op.create_table(
        "organisation_authority",
        sa.Column("organisation", sa.String(256), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False, comment="Canonical top-level fields."),
        sa.Column("endpoints", sa.JSON(), nullable=False, comment="Hosts or host:port."),
        sa.Column("updated_by", sa.Text(), nullable=False, comment="Staff id."),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("organisation", name=op.f("pk_organisation_authority")),
    )
    op.create_table(
        "connector_secrets",
        sa.Column("connector", sa.String(40), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kek_id", sa.String(128), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("connector", "name", "version", name=op.f("pk_connector_secrets")),
    )
    generation = op.create_table(
        "connector_generation",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column(
            "generation",
            sa.Integer(),
            nullable=False,
            comment="Rises with every change of the connectors in use.",
        ),
        sa.CheckConstraint("id = 1", name=op.f("ck_connector_generation_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connector_generation")),
    )
    op.bulk_insert(generation, [{"id": 1, "generation": 0}])


def downgrade() -> None:
    op.drop_table("connector_generation")
    op.drop_table("connector_secrets")
    op.drop_table("organisation_authority")
    op.drop_table("connector_versions")
    op.execute("UPDATE connectors SET status = 'removed' WHERE status = 'disabled'")
    with op.batch_alter_table("connectors") as batch:
        batch.drop_constraint(op.f("ck_connectors_status"), type_="check")
        batch.create_check_constraint(
            op.f("ck_connectors_status"), "status IN ('active', 'removed')"
        )
        batch.drop_column("organisation")
