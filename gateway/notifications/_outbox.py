"""The outbox: notifications written in the transaction of what caused them.

A notification is a row of `notifications`: its id is the idempotency key, derived
from its cause (the consent asked, the citizen and the day read, the connector and the
time its breaker opened), so that writing it twice writes it once and the channel can
drop a second delivery of it. What it holds:

- `kind`: `consent_requested`, `read_digest`, `breaker_open`;
- `recipient`: `citizen:<handle>` (an HMAC of the personal id under the gateway's
  key, never the id) or `agency:<organisation>` (an organisation code, public);
- `sealed_recipient`: a citizen's id, sealed (AES-256-GCM under a key derived from the
  gateway's pseudonym secret, the notification's id as associated data); the sender
  needs it to address them, and it is dropped once delivered;
- `payload`: what to say, with no personal id (a consent's id and procedure, counts
  of reads by organisation, a connector's name).

The channel resolves the address (a phone, the citizen's app) from the id: the
gateway never stores one.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.storage import notification_preferences, notifications

__all__ = [
    "AGENCY",
    "CITIZEN",
    "Notification",
    "RecipientSeal",
    "enqueue",
    "forget_recipient",
    "notification_id",
    "read_digest_enabled",
    "set_read_digest",
]

CITIZEN: Final = "citizen:"
AGENCY: Final = "agency:"
_NONCE: Final = 12


def notification_id(kind: str, *cause: str) -> str:
    """The idempotency key of a notification: the same cause always gives the same id."""
    text = "\x00".join((kind, *cause))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class RecipientSeal:
    """Hides citizens' ids in the outbox and the preferences: a handle to find them by,
    and a sealed copy for the sender. Both keys come from the gateway's pseudonym secret."""

    def __init__(self, secret: bytes) -> None:
        self._handles = hmac.new(secret, b"notification handle v1", hashlib.sha256).digest()
        self._aead = AESGCM(hmac.new(secret, b"notification seal v1", hashlib.sha256).digest())

    def __repr__(self) -> str:
        return "RecipientSeal(...)"

    def handle(self, subject: str) -> str:
        """A stable handle of a citizen's id (hex HMAC-SHA-256, 32 characters)."""
        return hmac.new(self._handles, subject.encode(), hashlib.sha256).hexdigest()[:32]

    def seal(self, subject: str, bound_to: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE)
        return nonce + self._aead.encrypt(nonce, subject.encode(), bound_to.encode())

    def open(self, sealed: bytes, bound_to: str) -> str | None:
        """The id sealed, or `None` when it does not open (another key, or altered)."""
        try:
            return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], bound_to.encode()).decode()
        except (InvalidTag, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification to write to the outbox."""

    id: str
    kind: str
    recipient: str
    payload: Mapping[str, Any]
    subject: str | None = field(default=None, repr=False)
    """A citizen recipient's id: written sealed, never in clear."""

    @classmethod
    def to_citizen(
        cls, seal: RecipientSeal, subject: str, kind: str, cause: str, payload: Mapping[str, Any]
    ) -> Notification:
        handle = seal.handle(subject)
        return cls(
            id=notification_id(kind, handle, cause),
            kind=kind,
            recipient=CITIZEN + handle,
            payload=payload,
            subject=subject,
        )

    @classmethod
    def to_agency(
        cls, organisation: str, kind: str, cause: str, payload: Mapping[str, Any]
    ) -> Notification:
        return cls(
            id=notification_id(kind, organisation, cause),
            kind=kind,
            recipient=AGENCY + organisation,
            payload=payload,
        )


def _insert(conn: AsyncConnection, table: sa.Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql_insert(table)
    return sqlite_insert(table)


async def enqueue(
    conn: AsyncConnection,
    seal: RecipientSeal,
    notification: Notification,
    *,
    now: datetime.datetime | None = None,
) -> bool:
    """Write a notification in the caller's transaction; `False` when it was there already."""
    now = now or datetime.datetime.now(datetime.UTC)
    sealed = (
        None if notification.subject is None else seal.seal(notification.subject, notification.id)
    )
    done = await conn.execute(
        _insert(conn, notifications)
        .values(
            id=notification.id,
            kind=notification.kind,
            recipient=notification.recipient,
            sealed_recipient=sealed,
            payload=dict(notification.payload),
            status="pending",
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
        .on_conflict_do_nothing(index_elements=["id"])
    )
    return bool(done.rowcount)


async def set_read_digest(
    engine: AsyncEngine, seal: RecipientSeal, subject: str, enabled: bool
) -> None:
    """A citizen's choice: a daily digest of the reads of their data, or none."""
    handle = seal.handle(subject)
    now = datetime.datetime.now(datetime.UTC)
    async with engine.begin() as conn:
        insert = _insert(conn, notification_preferences).values(
            handle=handle,
            sealed_subject=seal.seal(subject, handle),
            read_digest=enabled,
            updated_at=now,
        )
        await conn.execute(
            insert.on_conflict_do_update(
                index_elements=["handle"],
                set_={"read_digest": enabled, "updated_at": now},
            )
        )


async def read_digest_enabled(engine: AsyncEngine, seal: RecipientSeal, subject: str) -> bool:
    """Whether the citizen asked for a daily digest of the reads of their data."""
    async with engine.connect() as conn:
        found = await conn.scalar(
            sa.select(notification_preferences.c.read_digest).where(
                notification_preferences.c.handle == seal.handle(subject)
            )
        )
    return bool(found)


async def forget_recipient(conn: AsyncConnection, seal: RecipientSeal, subject: str) -> int:
    """Delete, in the caller's transaction, a citizen's preferences and every notification
    to them (delivered ones too: their handle links them); how many rows in all."""
    handle = seal.handle(subject)
    chosen = await conn.execute(
        notification_preferences.delete().where(notification_preferences.c.handle == handle)
    )
    done = await conn.execute(
        notifications.delete().where(notifications.c.recipient == CITIZEN + handle)
    )
    return int(chosen.rowcount) + int(done.rowcount)
