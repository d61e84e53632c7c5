"""Columns and indexes for the auditors' search, hidden accesses and the figures.

The new columns of `events` repeat what the envelope says (organisation, the officer's
and the case's pseudonyms, `hiddenUntil`, fields served, papers avoided), so that a
search by any of them, by time, reads an index instead of every envelope;
`event_decisions` indexes the decision codes of each access. The audit checks the
columns against the envelopes. Existing events are filled in from their envelopes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BY_TIME = ("client_id", "organisation", "officer", "case_ref", "procedure", "type")


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("organisation", sa.String(256)))
        batch.add_column(sa.Column("officer", sa.String(32), comment="Pseudonym."))
        batch.add_column(sa.Column("case_ref", sa.String(32), comment="Pseudonym."))
        batch.add_column(sa.Column("hidden_until", sa.DateTime(timezone=True)))
        batch.add_column(
            sa.Column("fields_served", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("papers_avoided", sa.Integer(), nullable=False, server_default="0")
        )
        batch.drop_index("ix_events_client_id")
    for column in _BY_TIME:
        op.create_index(f"ix_events_{column}_ts", "events", [column, "ts"])
    op.create_table(
        "event_decisions",
        sa.Column("decision", sa.String(40), nullable=False),
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_event_decisions_event_id_events")
        ),
        sa.PrimaryKeyConstraint("decision", "event_id", name=op.f("pk_event_decisions")),
    )
    op.create_index("ix_event_decisions_decision_ts", "event_decisions", ["decision", "ts"])
    _fill_in()


def _fill_in() -> None:
    conn = op.get_bind()
    events = sa.table(
        "events",
        sa.column("id", sa.String),
        sa.column("ts", sa.DateTime(timezone=True)),
        sa.column("envelope", sa.JSON),
        sa.column("organisation", sa.String),
        sa.column("officer", sa.String),
        sa.column("case_ref", sa.String),
    )
    decisions = sa.table(
        "event_decisions",
        sa.column("decision", sa.String),
        sa.column("event_id", sa.String),
        sa.column("ts", sa.DateTime(timezone=True)),
    )
    rows = conn.execute(sa.select(events.c.id, events.c.ts, events.c.envelope)).all()
    for event_id, ts, envelope in rows:
        found: dict[str, Any] = envelope if isinstance(envelope, dict) else json.loads(envelope)
        conn.execute(
            events.update()
            .where(events.c.id == event_id)
            .values(
                organisation=found.get("organisation"),
                officer=found.get("officer"),
                case_ref=found.get("case"),
            )
        )
        codes = sorted({d["decision"] for d in found.get("decisions") or ()})
        if codes:
            if isinstance(ts, str):
                ts = datetime.datetime.fromisoformat(ts)
            conn.execute(
                decisions.insert(), [{"decision": c, "event_id": event_id, "ts": ts} for c in codes]
            )


def downgrade() -> None:
    op.drop_index("ix_event_decisions_decision_ts", table_name="event_decisions")
    op.drop_table("event_decisions")
    for column in _BY_TIME:
        op.drop_index(f"ix_events_{column}_ts", table_name="events")
    with op.batch_alter_table("events") as batch:
        for column in (
            "papers_avoided",
            "fields_served",
            "hidden_until",
            "case_ref",
            "officer",
            "organisation",
        ):
            batch.drop_column(column)
        batch.create_index("ix_events_client_id", ["client_id"])
