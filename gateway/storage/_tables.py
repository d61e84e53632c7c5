"""Database tables. Alembic migrations under `gateway/storage/migrations/` create them."""

from __future__ import annotations

import datetime
from typing import Any

import sqlalchemy as sa

__all__ = [
    "CATALOGUE_VERSION_STATUSES",
    "CLIENT_CHANGE_ACTIONS",
    "CONNECTOR_VERSION_STATUSES",
    "CONSENT_STATUSES",
    "EVENT_TYPES",
    "NOTIFICATION_STATUSES",
    "Instant",
    "browser_sessions",
    "catalogue_versions",
    "checkpoint_cosignatures",
    "client_changes",
    "client_generation",
    "client_keys",
    "clients",
    "connector_generation",
    "connector_secrets",
    "connector_versions",
    "connectors",
    "consents",
    "event_personal",
    "event_subjects",
    "events",
    "log_checkpoints",
    "log_leaves",
    "log_nodes",
    "log_queue",
    "log_state",
    "metadata",
    "notification_lease",
    "notification_preferences",
    "notifications",
    "organisation_authority",
    "witness_state",
]


class Instant(sa.TypeDecorator[datetime.datetime]):
    """A point in time: stored in UTC, read back with its time zone.

    SQLite keeps no offset: it stores the digits it is given and gives naive values
    back. Converting to UTC on the way in and marking UTC on the way out makes both
    backends answer the same aware datetimes, so no reader has to patch them.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if isinstance(value, datetime.datetime) and value.tzinfo is not None:
            return value.astimezone(datetime.UTC)
        return value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        if isinstance(value, datetime.datetime) and value.tzinfo is None:
            return value.replace(tzinfo=datetime.UTC)
        return value


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
    sa.Column("registered_at", Instant(), nullable=False),
    sa.Column("updated_at", Instant(), nullable=False),
    sa.Column(
        "organisation",
        sa.Text,
        nullable=True,
        comment="The agency that registered it through /admin; NULL when from a file.",
    ),
    sa.CheckConstraint("status IN ('active', 'removed', 'disabled')", name="status"),
    sa.CheckConstraint("version >= 1", name="version"),
)

CONNECTOR_VERSION_STATUSES = ("pending", "approved", "rejected", "superseded")

connector_versions = sa.Table(
    "connector_versions",
    metadata,
    sa.Column("connector", sa.String(40), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("organisation", sa.Text, nullable=False),
    sa.Column("manifest", sa.JSON, nullable=False),
    sa.Column("manifest_sha256", sa.String(64), nullable=False),
    sa.Column("submitted_by", sa.Text, nullable=False, comment="Staff id."),
    sa.Column("submitted_at", Instant(), nullable=False),
    sa.Column("approved_by", sa.Text, comment="Staff id."),
    sa.Column("approved_at", Instant()),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column(
        "last_dry_run",
        sa.JSON(none_as_null=True),
        nullable=True,
        comment="Per field outcome and latency, never a value of the sample.",
    ),
    sa.CheckConstraint(
        "status IN ('pending', 'approved', 'rejected', 'superseded')", name="status"
    ),
    sa.CheckConstraint("version >= 1", name="version"),
)

organisation_authority = sa.Table(
    "organisation_authority",
    metadata,
    sa.Column("organisation", sa.String(256), primary_key=True),
    sa.Column("fields", sa.JSON, nullable=False, comment="Canonical top-level fields."),
    sa.Column("endpoints", sa.JSON, nullable=False, comment="Hosts or host:port."),
    sa.Column("updated_by", sa.Text, nullable=False, comment="Staff id."),
    sa.Column("updated_at", Instant(), nullable=False),
)

connector_secrets = sa.Table(
    "connector_secrets",
    metadata,
    sa.Column("connector", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("kek_id", sa.String(128), nullable=False),
    sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
    sa.Column("nonce", sa.LargeBinary, nullable=False),
    sa.Column("ciphertext", sa.LargeBinary, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("created_at", Instant(), nullable=False),
)

connector_generation = sa.Table(
    "connector_generation",
    metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column(
        "generation",
        sa.Integer,
        nullable=False,
        comment="Rises with every change of the connectors in use.",
    ),
    sa.CheckConstraint("id = 1", name="one_row"),
)

client_generation = sa.Table(
    "client_generation",
    metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column(
        "generation",
        sa.BigInteger,
        nullable=False,
        comment="Rises with every change of a client or of a client's keys.",
    ),
    sa.CheckConstraint("id = 1", name="one_row"),
)

clients = sa.Table(
    "clients",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True, comment="VN/GOV/<org>/<system>"),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("organisation", sa.Text, nullable=False),
    sa.Column("agency_kinds", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", Instant(), nullable=False),
    sa.Column("updated_at", Instant(), nullable=False),
    sa.Column(
        "jwks_url",
        sa.Text,
        comment="Where the gateway reads the system's public keys (JWKS), if set.",
    ),
    sa.CheckConstraint("status IN ('active', 'suspended')", name="status"),
)

client_keys = sa.Table(
    "client_keys",
    metadata,
    sa.Column("client_id", sa.String(128), sa.ForeignKey("clients.id"), primary_key=True),
    sa.Column("kid", sa.String(128), primary_key=True),
    sa.Column("alg", sa.String(16), nullable=False),
    sa.Column("jwk", sa.JSON, nullable=False, comment="Public key only."),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", Instant(), nullable=False),
    sa.Column("revoked_at", Instant()),
    sa.CheckConstraint("status IN ('active', 'revoked')", name="status"),
)

CLIENT_CHANGE_ACTIONS = ("register", "add_key", "revoke_key", "jwks_url")

client_changes = sa.Table(
    "client_changes",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("client_id", sa.String(128), nullable=False, comment="VN/GOV/<org>/<system>"),
    sa.Column("organisation", sa.String(256), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False, comment="Public data only."),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("submitted_by", sa.Text, nullable=False, comment="Staff id."),
    sa.Column("submitted_at", Instant(), nullable=False),
    sa.Column("decided_by", sa.Text, comment="Staff id."),
    sa.Column("decided_at", Instant()),
    sa.Column("reason", sa.Text),
    sa.CheckConstraint(
        "action IN ('register', 'add_key', 'revoke_key', 'jwks_url')", name="action"
    ),
    sa.CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status"),
    sa.Index("ix_client_changes_organisation_status", "organisation", "status"),
)

CATALOGUE_VERSION_STATUSES = ("proposed", "approved", "rejected")

catalogue_versions = sa.Table(
    "catalogue_versions",
    metadata,
    sa.Column("version", sa.String(64), primary_key=True, comment="The policy_version."),
    sa.Column("entries", sa.JSON, nullable=False, comment="Every entry, sorted by code."),
    sa.Column("parent", sa.String(64), comment="The version it changes."),
    sa.Column("change", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("proposed_by", sa.Text, nullable=False, comment="Staff id, or `files`."),
    sa.Column("proposed_at", Instant(), nullable=False),
    sa.Column("decided_by", sa.Text),
    sa.Column("decided_at", Instant()),
    sa.Column("effective_from", Instant()),
    sa.Column("reason", sa.Text),
    sa.CheckConstraint("status IN ('proposed', 'approved', 'rejected')", name="status"),
    sa.Index("ix_catalogue_versions_status_effective_from", "status", "effective_from"),
)

EVENT_TYPES = ("access", "consent", "admin", "auditor_search", "key")

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("ts", Instant(), nullable=False, index=True),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("client_id", sa.String(128)),
    sa.Column("procedure", sa.String(64)),
    sa.Column("outcome", sa.String(40), nullable=False),
    sa.Column("policy_version", sa.String(64), nullable=False),
    sa.Column("envelope", sa.JSON, nullable=False, comment="No personal data."),
    sa.Column("envelope_hash", sa.String(64), nullable=False),
    # Repeated from the envelope, for the search (the audit checks they agree).
    sa.Column("organisation", sa.String(256)),
    sa.Column("officer", sa.String(32), comment="Pseudonym."),
    sa.Column("case_ref", sa.String(32), comment="Pseudonym."),
    sa.Column("hidden_until", Instant()),
    sa.Column("fields_served", sa.Integer, nullable=False, server_default="0"),
    sa.Column("papers_avoided", sa.Integer, nullable=False, server_default="0"),
    sa.Column(
        "dossier_status", sa.String(16), comment="The case's dossier status, where confirmed."
    ),
    sa.CheckConstraint(
        "type IN ('access', 'consent', 'admin', 'auditor_search', 'key')", name="type"
    ),
    *(
        sa.Index(f"ix_events_{column}_ts", column, "ts")
        for column in (
            "client_id",
            "organisation",
            "officer",
            "case_ref",
            "procedure",
            "type",
            "dossier_status",
        )
    ),
)

event_decisions = sa.Table(
    "event_decisions",
    metadata,
    sa.Column("decision", sa.String(40), primary_key=True),
    sa.Column("event_id", sa.String(32), sa.ForeignKey("events.id"), primary_key=True),
    sa.Column("ts", Instant(), nullable=False),
    sa.Index("ix_event_decisions_decision_ts", "decision", "ts"),
)

# The personal parts and the subject index carry their record's time: on PostgreSQL they
# are partitioned by its month, and their keys hold it (`gateway.storage._partitions`;
# SQLite keeps the keys without it).
event_personal = sa.Table(
    "event_personal",
    metadata,
    sa.Column("event_id", sa.String(32), sa.ForeignKey("events.id"), primary_key=True),
    sa.Column("ts", Instant(), primary_key=True, comment="The record's time."),
    sa.Column("salt", sa.String(32), nullable=False),
    sa.Column(
        "personal",
        sa.JSON(none_as_null=True),
        nullable=True,
        comment="In clear only when the record names no person (staff ids only).",
    ),
    sa.Column(
        "sealed",
        sa.LargeBinary,
        nullable=True,
        comment="Subjects, officer id, token: AES-256-GCM under the record's data key.",
    ),
    sa.CheckConstraint("(personal IS NULL) <> (sealed IS NULL)", name="one_form"),
    postgresql_partition_by="RANGE (ts)",
)

event_subjects = sa.Table(
    "event_subjects",
    metadata,
    sa.Column("subject", sa.String(64), primary_key=True),
    sa.Column("event_id", sa.String(32), sa.ForeignKey("events.id"), primary_key=True),
    sa.Column("ts", Instant(), primary_key=True, comment="The record's time."),
    sa.Column(
        "wrapped_key",
        sa.LargeBinary(60),
        nullable=True,
        comment="The record's data key wrapped under this person's key.",
    ),
    sa.Index("ix_event_subjects_event_id", "event_id"),
    postgresql_partition_by="RANGE (ts)",
)

subject_keys = sa.Table(
    "subject_keys",
    metadata,
    sa.Column("subject", sa.String(64), primary_key=True),
    sa.Column("key", sa.LargeBinary(32), nullable=False),
    sa.Column("created_at", Instant(), nullable=False),
    comment="Deleting a row forgets the person: their commitments become unlinkable.",
)

CONSENT_STATUSES = ("REQUESTED", "ACTIVE", "DENIED", "REVOKED", "EXPIRED")

consents = sa.Table(
    "consents",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("subject", sa.String(16), nullable=False, index=True),
    sa.Column("consumer", sa.String(128), nullable=False),
    sa.Column("procedure", sa.String(64), nullable=False),
    sa.Column("fields", sa.JSON, nullable=False),
    sa.Column("case", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("requested_at", Instant(), nullable=False),
    sa.Column("answer_by", Instant(), nullable=False),
    sa.Column("valid_until", Instant(), nullable=False),
    sa.Column("decided_at", Instant()),
    sa.Column("revoked_at", Instant()),
    sa.Column("grant", sa.Text, comment="Detached JWS over the granted artefact."),
    sa.Column("revocation", sa.Text, comment="Detached JWS over the revocation."),
    sa.Column(
        "grant_version",
        sa.SmallInteger,
        nullable=False,
        server_default="1",
        comment="Form of the artefact the grant signs: 1 without the case, 2 with it.",
    ),
    sa.CheckConstraint(
        "status IN ('REQUESTED', 'ACTIVE', 'DENIED', 'REVOKED', 'EXPIRED')", name="status"
    ),
)

# The verifiable log. Indices are assigned by the sequencer, contiguously, never by a
# database sequence: an aborted transaction would leave a gap.
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

log_queue = sa.Table(
    "log_queue",
    metadata,
    sa.Column("seq", _BIG_ID, primary_key=True, autoincrement=True, comment="Order only."),
    sa.Column("event_id", sa.String(32), sa.ForeignKey("events.id"), nullable=False, unique=True),
    sa.Column(
        "leaf_hash",
        sa.LargeBinary(32),
        nullable=True,
        comment="The leaf hash the event's receipt promised.",
    ),
)

log_leaves = sa.Table(
    "log_leaves",
    metadata,
    sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("event_id", sa.String(32), sa.ForeignKey("events.id"), nullable=False, unique=True),
    sa.Column("leaf", sa.Text, nullable=False, comment="RFC 8785 JSON of the public leaf."),
    sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False, index=True),
)

log_nodes = sa.Table(
    "log_nodes",
    metadata,
    sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hash", sa.LargeBinary(32), nullable=False),
    comment="Hashes of the complete subtrees: level l, index i covers [i*2^l, (i+1)*2^l).",
)

log_state = sa.Table(
    "log_state",
    metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("root", sa.LargeBinary(32), nullable=False),
    sa.Column("updated_at", Instant(), nullable=False),
    sa.CheckConstraint("id = 1", name="one_row"),
)

log_checkpoints = sa.Table(
    "log_checkpoints",
    metadata,
    sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("root", sa.LargeBinary(32), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("signed_at", Instant(), nullable=False),
)

checkpoint_cosignatures = sa.Table(
    "checkpoint_cosignatures",
    metadata,
    sa.Column("size", sa.BigInteger, sa.ForeignKey("log_checkpoints.size"), primary_key=True),
    sa.Column("witness", sa.String(256), primary_key=True, comment="The witness's key name."),
    sa.Column("line", sa.Text, nullable=False, comment="The cosignature line, as it answered."),
    sa.Column("cosigned_at", Instant(), nullable=False, comment="The cosignature's time."),
)

witness_state = sa.Table(
    "witness_state",
    metadata,
    sa.Column("witness", sa.String(256), primary_key=True),
    sa.Column(
        "size", sa.BigInteger, nullable=False, comment="The size it last cosigned (or said)."
    ),
    sa.Column("updated_at", Instant(), nullable=False),
)

browser_sessions = sa.Table(
    "browser_sessions",
    metadata,
    sa.Column(
        "id_hash",
        sa.String(64),
        primary_key=True,
        comment="SHA-256 of the session id or sign-in state; never the id itself.",
    ),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("created_at", Instant(), nullable=False),
    sa.Column("last_seen_at", Instant(), nullable=False),
    sa.Column("expires_at", Instant(), nullable=False, index=True),
    sa.CheckConstraint("kind IN ('session', 'sign_in')", name="kind"),
)

NOTIFICATION_STATUSES = ("pending", "delivered", "failed")

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column(
        "id",
        sa.String(32),
        primary_key=True,
        comment="The idempotency key: derived from what caused it, sent with every attempt.",
    ),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column(
        "recipient",
        sa.String(300),
        nullable=False,
        comment="`citizen:<handle>` (an HMAC of the id) or `agency:<organisation>`.",
    ),
    sa.Column(
        "sealed_recipient",
        sa.LargeBinary,
        nullable=True,
        comment="A citizen's id, AES-256-GCM under the gateway's key; dropped once delivered.",
    ),
    sa.Column("payload", sa.JSON, nullable=False, comment="What to say; no personal id."),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", Instant(), nullable=False),
    sa.Column("next_attempt_at", Instant(), nullable=False),
    sa.Column("delivered_at", Instant()),
    sa.Column("last_error", sa.String(64), comment="A code (`http_503`, `unreachable`)."),
    sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
    sa.Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),
    sa.Index("ix_notifications_recipient_created_at", "recipient", "created_at"),
)

notification_preferences = sa.Table(
    "notification_preferences",
    metadata,
    sa.Column("handle", sa.String(32), primary_key=True, comment="HMAC of the citizen's id."),
    sa.Column(
        "sealed_subject",
        sa.LargeBinary,
        nullable=False,
        comment="The citizen's id, AES-256-GCM under the gateway's key.",
    ),
    sa.Column("read_digest", sa.Boolean, nullable=False),
    sa.Column("updated_at", Instant(), nullable=False),
)

notification_lease = sa.Table(
    "notification_lease",
    metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("holder", sa.String(64), nullable=False, comment="The replica delivering."),
    sa.Column("expires_at", Instant(), nullable=False),
    sa.CheckConstraint("id = 1", name="one_row"),
    comment="One replica delivers notifications at a time: the holder of an unexpired lease.",
)
