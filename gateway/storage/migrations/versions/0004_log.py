"""The verifiable log: queue, leaves, tree nodes, state and signed checkpoints.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "log_queue",
        sa.Column("seq", _BIG_ID, autoincrement=True, nullable=False, comment="Order only."),
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_log_queue_event_id_events")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_log_queue")),
        sa.UniqueConstraint("event_id", name=op.f("uq_log_queue_event_id")),
    )
    op.create_table(
        "log_leaves",
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("leaf", sa.Text(), nullable=False, comment="RFC 8785 JSON of the public leaf."),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_log_leaves_event_id_events")
        ),
        sa.PrimaryKeyConstraint("idx", name=op.f("pk_log_leaves")),
        sa.UniqueConstraint("event_id", name=op.f("uq_log_leaves_event_id")),
    )
    op.create_index(op.f("ix_log_leaves_leaf_hash"), "log_leaves", ["leaf_hash"])
    op.create_table(
        "log_nodes",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_log_nodes")),
        comment="Hashes of the complete subtrees: level l, index i covers [i*2^l, (i+1)*2^l).",
    )
    state = op.create_table(
        "log_state",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_log_state_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_state")),
    )
    op.bulk_insert(
        state,
        [
            {
                "id": 1,
                "size": 0,
                "root": hashlib.sha256(b"").digest(),
                "updated_at": datetime.datetime.now(datetime.UTC),
            }
        ],
    )
    op.create_table(
        "log_checkpoints",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_log_checkpoints")),
    )
    # Events recorded before the log existed are queued, in the order they were made.
    op.execute("INSERT INTO log_queue (event_id) SELECT id FROM events ORDER BY ts, id")


def downgrade() -> None:
    op.drop_table("log_checkpoints")
    op.drop_table("log_state")
    op.drop_table("log_nodes")
    op.drop_index(op.f("ix_log_leaves_leaf_hash"), table_name="log_leaves")
    op.drop_table("log_leaves")
    op.drop_table("log_queue")
