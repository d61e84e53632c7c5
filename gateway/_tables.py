"""Database tables. Alembic migrations under `gateway/migrations/` create them."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["connectors", "metadata"]

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

connectors = sa.Table(
    "connectors",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("title", sa.Text, nullable=False, server_default=""),
    sa.Column("agency", sa.Text, nullable=False, server_default=""),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("manifest", sa.JSON, nullable=False),
    sa.Column("manifest_sha256", sa.String(64), nullable=False),
    sa.Column("origin", sa.Text, nullable=False, comment="Where the manifest came from."),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('active', 'removed')", name="status"),
    sa.CheckConstraint("version >= 1", name="version"),
)
