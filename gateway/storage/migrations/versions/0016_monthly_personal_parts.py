"""Personal parts and the subject index carry their record's time; monthly on PostgreSQL.

`event_personal` and `event_subjects` get `ts`, the time of their record (from
`events`). On PostgreSQL both become tables partitioned by range of `ts`, a partition a
month (`<table>_yYYYYmMM`, from the oldest record's month to two months ahead) and a
default partition, so that retention drops a month past it at once
(`gateway.storage._partitions`); their primary keys gain `ts`, as partitioning needs.
The rows are copied into the new tables in this migration's transaction. SQLite keeps
one table each, with the column added.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = {
    "event_personal": (
        "event_id VARCHAR(32) NOT NULL, ts TIMESTAMP WITH TIME ZONE NOT NULL, "
        "salt VARCHAR(32) NOT NULL, personal JSON, sealed BYTEA"
    ),
    "event_subjects": (
        "subject VARCHAR(64) NOT NULL, event_id VARCHAR(32) NOT NULL, "
        "ts TIMESTAMP WITH TIME ZONE NOT NULL, wrapped_key BYTEA"
    ),
}
_KEYS = {"event_personal": "event_id", "event_subjects": "subject, event_id"}
_CHECKS = {"event_personal": "CHECK ((personal IS NULL) <> (sealed IS NULL))"}
_COPIED = {
    "event_personal": "event_id, salt, personal, sealed",
    "event_subjects": "subject, event_id, wrapped_key",
}
_COMMENTS = {
    ("event_personal", "personal"): "In clear only when the record names no person "
    "(staff ids only).",
    ("event_personal", "sealed"): "Subjects, officer id, token: AES-256-GCM under the "
    "record's data key.",
    ("event_subjects", "wrapped_key"): "The record's data key wrapped under this person's key.",
}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("event_personal", "event_subjects"):
            _rebuild(table, partitioned=True)
        return
    for table in ("event_personal", "event_subjects"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("ts", sa.DateTime(timezone=True), nullable=True))
        op.execute(
            f"UPDATE {table} SET ts = (SELECT ts FROM events WHERE events.id = {table}.event_id)"  # noqa: S608  # nosec B608
        )
        with op.batch_alter_table(table, recreate="always") as batch:
            batch.alter_column("ts", existing_type=sa.DateTime(timezone=True), nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("event_personal", "event_subjects"):
            _rebuild(table, partitioned=False)
        return
    for table in ("event_personal", "event_subjects"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("ts")


def _rebuild(table: str, *, partitioned: bool) -> None:
    """Move `table` aside, make it anew (partitioned, with `ts` in its key, or not) and
    copy its rows back, with their record's time."""
    old = f"{table}_before_0016"
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    for suffix in ("pk", "fk", "ck"):
        for name in _constraints(table, suffix):
            op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT {name} TO {name}_before_0016")
    if table == "event_subjects":
        op.execute("ALTER INDEX ix_event_subjects_event_id RENAME TO ix_event_subjects_before_0016")
    columns = _COLUMNS[table]
    key = _KEYS[table] + (", ts" if partitioned else "")
    check = f", CONSTRAINT ck_{table}_one_form {_CHECKS[table]}" if table in _CHECKS else ""
    op.execute(
        f"CREATE TABLE {table} ({columns}, CONSTRAINT pk_{table} PRIMARY KEY ({key}), "
        f"CONSTRAINT fk_{table}_event_id_events FOREIGN KEY (event_id) REFERENCES events (id)"
        f"{check})" + (" PARTITION BY RANGE (ts)" if partitioned else "")
    )
    if not partitioned:
        # Without partitions the time is not kept: the column goes with them.
        op.execute(f"ALTER TABLE {table} DROP COLUMN ts")
    for (of, column), comment in _COMMENTS.items():
        if of == table:
            quoted = comment.replace("'", "''")
            op.execute(f"COMMENT ON COLUMN {table}.{column} IS '{quoted}'")
    if table == "event_subjects":
        op.execute("CREATE INDEX ix_event_subjects_event_id ON event_subjects (event_id)")
    copied = _COPIED[table]
    if partitioned:
        op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
        for start, end in _months():
            name = f"{table}_y{start:%Y}m{start:%m}"
            op.execute(
                f"CREATE TABLE {name} PARTITION OF {table} "
                f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
            )
        op.execute(
            f"INSERT INTO {table} ({copied}, ts) SELECT "  # noqa: S608
            + ", ".join(f"o.{c.strip()}" for c in copied.split(","))
            + f", e.ts FROM {old} o JOIN events e ON e.id = o.event_id"
        )
    else:
        op.execute(f"INSERT INTO {table} ({copied}) SELECT {copied} FROM {old}")  # noqa: S608  # nosec B608
    op.execute(f"DROP TABLE {old}")


def _constraints(table: str, suffix: str) -> list[str]:
    names = {
        "pk": [f"pk_{table}"],
        "fk": [f"fk_{table}_event_id_events"],
        "ck": [f"ck_{table}_one_form"] if table in _CHECKS else [],
    }
    return names[suffix]


def _months() -> list[tuple[datetime.datetime, datetime.datetime]]:
    """Each month from the oldest record's to two months ahead, as (start, end) in UTC."""
    oldest = op.get_bind().scalar(sa.text("SELECT min(ts) FROM events"))
    now = datetime.datetime.now(datetime.UTC)
    first = (oldest or now).astimezone(datetime.UTC)
    start = datetime.datetime(first.year, first.month, 1, tzinfo=datetime.UTC)
    months = []
    while True:
        end = datetime.datetime(
            start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=datetime.UTC
        )
        months.append((start, end))
        if start.year * 12 + start.month >= now.year * 12 + now.month + 2:
            return months
        start = end
