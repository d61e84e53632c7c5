"""Alembic environment: runs on the connection `gateway db upgrade` hands over."""

from __future__ import annotations

from alembic import context

from gateway.storage._tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `gateway db upgrade`, which supplies the connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
