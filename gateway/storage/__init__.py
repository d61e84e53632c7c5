"""The database: engines for SQLite and PostgreSQL, migrations, and the tables.

Below the rooms that keep state in it (`admission`, `records`, `log`), above the leaf
modules. SQLite is the embedded default (one process); PostgreSQL serves replicas.
"""

from gateway.storage._connectors import list_connectors, record_connectors
from gateway.storage._engine import create_engine, create_sequencer_engine, read_snapshot
from gateway.storage._migrations import (
    DatabaseNotReady,
    current_revision,
    head_revision,
    require_head,
    upgrade,
)
from gateway.storage._tables import (
    CONSENT_STATUSES,
    EVENT_TYPES,
    Instant,
    client_keys,
    clients,
    connectors,
    consents,
    event_decisions,
    event_personal,
    event_subjects,
    events,
    log_checkpoints,
    log_leaves,
    log_nodes,
    log_queue,
    log_state,
    metadata,
    subject_keys,
)

__all__ = [
    "CONSENT_STATUSES",
    "EVENT_TYPES",
    "DatabaseNotReady",
    "Instant",
    "client_keys",
    "clients",
    "connectors",
    "consents",
    "create_engine",
    "create_sequencer_engine",
    "current_revision",
    "event_decisions",
    "event_personal",
    "event_subjects",
    "events",
    "head_revision",
    "list_connectors",
    "log_checkpoints",
    "log_leaves",
    "log_nodes",
    "log_queue",
    "log_state",
    "metadata",
    "read_snapshot",
    "record_connectors",
    "require_head",
    "subject_keys",
    "upgrade",
]
