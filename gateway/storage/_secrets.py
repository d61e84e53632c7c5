"""Connector secrets stored encrypted (`connector_secrets`), a new version at each write.

A secret is written only encrypted (`keys.seal_secret`: its own data key, wrapped under
the newest key-encryption key, the connector, name and version bound to both) and read
back only to be given to the connectors (`stored_secrets`); no route returns it. The
newest version of each (connector, name) is the one in use; older versions are kept.
Rotating the KEK re-wraps each row's data key (`rewrap_secrets`), never its ciphertext.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.storage._connectors import bump_generation
from gateway.storage._tables import connector_secrets
from keys import (
    KekRing,
    KeyRingError,
    SealedSecret,
    SecretSealError,
    open_secret,
    rewrap_secret,
    seal_secret,
)

__all__ = [
    "StoredSecret",
    "keks_in_use",
    "latest_secrets",
    "put_secret",
    "rewrap_secrets",
    "secret_rows",
    "stored_secrets",
]

log = structlog.get_logger(__name__)

_ATTEMPTS = 5
"""Writes of the same secret at once each get a version: the loser of a race retries."""

Also = Callable[[AsyncConnection, int], Awaitable[None]]
"""What else commits with a new version (its `admin` event), given the version."""


@dataclass(frozen=True, slots=True)
class StoredSecret:
    """One version of a stored secret, still encrypted."""

    connector: str
    name: str
    version: int
    sealed: SealedSecret
    created_by: str = field(repr=False)
    created_at: datetime.datetime


def _row(row: sa.Row[tuple[object, ...]]) -> StoredSecret:
    m = row._mapping
    return StoredSecret(
        connector=m["connector"],
        name=m["name"],
        version=m["version"],
        sealed=SealedSecret(m["kek_id"], m["wrapped_key"], m["nonce"], m["ciphertext"]),
        created_by=m["created_by"],
        created_at=m["created_at"],
    )


async def put_secret(
    engine: AsyncEngine,
    *,
    connector: str,
    name: str,
    value: str,
    ring: KekRing,
    created_by: str,
    also: Also | None = None,
) -> int:
    """Store `value` as the next version of the secret `name` of `connector`; its version.

    The row commits with what `also` writes, or neither does, and raises the connectors'
    generation, so that every replica rebuilds its connectors with the new value.
    """
    table = connector_secrets
    for attempt in range(_ATTEMPTS):
        try:
            async with engine.begin() as conn:
                newest = (
                    await conn.execute(
                        sa.select(sa.func.max(table.c.version)).where(
                            table.c.connector == connector, table.c.name == name
                        )
                    )
                ).scalar()
                version = (newest or 0) + 1
                sealed = seal_secret(ring, value, connector=connector, name=name, version=version)
                await conn.execute(
                    table.insert().values(
                        connector=connector,
                        name=name,
                        version=version,
                        kek_id=sealed.kek_id,
                        wrapped_key=sealed.wrapped_key,
                        nonce=sealed.nonce,
                        ciphertext=sealed.ciphertext,
                        created_by=created_by,
                        created_at=datetime.datetime.now(datetime.UTC),
                    )
                )
                # The connectors in use are built with their secrets: every replica
                # rebuilds with the new value at the generation this raises.
                await bump_generation(conn)
                if also is not None:
                    await also(conn, version)
            log.info(
                "connector_secret_stored",
                connector=connector,
                secret=name,
                version=version,
                kek_id=sealed.kek_id,
            )
            return version
        except IntegrityError:
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


async def secret_rows(engine: AsyncEngine) -> list[StoredSecret]:
    """Every version of every stored secret, encrypted."""
    table = connector_secrets
    async with engine.connect() as conn:
        result = await conn.execute(
            sa.select(table).order_by(table.c.connector, table.c.name, table.c.version)
        )
        return [_row(r) for r in result]


async def latest_secrets(engine: AsyncEngine) -> list[StoredSecret]:
    """The newest version of each stored secret, encrypted."""
    table = connector_secrets
    newest = (
        sa.select(table.c.connector, table.c.name, sa.func.max(table.c.version).label("version"))
        .group_by(table.c.connector, table.c.name)
        .subquery()
    )
    query = sa.select(table).join(
        newest,
        sa.and_(
            table.c.connector == newest.c.connector,
            table.c.name == newest.c.name,
            table.c.version == newest.c.version,
        ),
    )
    async with engine.connect() as conn:
        return [_row(r) for r in await conn.execute(query)]


async def stored_secrets(engine: AsyncEngine, keys_dir: Path) -> dict[tuple[str, str], str]:
    """The plain value of each stored secret in use, by (connector, name), for
    `build_registry(stored_secrets=...)`; opened with the KEKs under `keys_dir`.

    Raises `KeyRingError` when secrets are stored but no KEK is there, and
    `SecretSealError` naming the connector and secret one that does not open.
    """
    rows = await latest_secrets(engine)
    if not rows:
        return {}
    ring = KekRing.load(keys_dir)
    if not ring:
        raise KeyRingError(
            f"{keys_dir}: connector secrets are stored but there is no key-encryption key "
            "to open them; install the KEKs (`gateway keys generate` makes a new one)"
        )
    values = {}
    for row in rows:
        try:
            values[(row.connector, row.name)] = open_secret(
                ring, row.sealed, connector=row.connector, name=row.name, version=row.version
            )
        except SecretSealError as exc:
            raise SecretSealError(
                f"stored secret {row.name!r} of connector {row.connector!r} "
                f"(version {row.version}): {exc}"
            ) from None
    return values


async def rewrap_secrets(engine: AsyncEngine, ring: KekRing) -> int:
    """Re-wrap under the newest KEK every data key wrapped under another; how many.

    A row is changed only if it still names the KEK it was read with, so a write made
    meanwhile is never overwritten; its ciphertext never changes.
    """
    newest = ring.newest().kek_id
    table = connector_secrets
    done = 0
    for row in await secret_rows(engine):
        if row.sealed.kek_id == newest:
            continue
        sealed = rewrap_secret(
            ring, row.sealed, connector=row.connector, name=row.name, version=row.version
        )
        async with engine.begin() as conn:
            result = await conn.execute(
                table.update()
                .where(
                    table.c.connector == row.connector,
                    table.c.name == row.name,
                    table.c.version == row.version,
                    table.c.kek_id == row.sealed.kek_id,
                )
                .values(kek_id=sealed.kek_id, wrapped_key=sealed.wrapped_key)
            )
        done += result.rowcount
    log.info("connector_secrets_rewrapped", rows=done, kek_id=newest)
    return done


async def keks_in_use(engine: AsyncEngine) -> dict[str, int]:
    """How many stored rows each KEK wraps, by `kek_id`."""
    table = connector_secrets
    async with engine.connect() as conn:
        result = await conn.execute(
            sa.select(table.c.kek_id, sa.func.count()).group_by(table.c.kek_id)
        )
        return {str(kek_id): int(count) for kek_id, count in result}
