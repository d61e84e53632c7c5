"""The connectors table: which manifests are in use, and at which version."""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.storage._tables import connectors as connectors_table

if TYPE_CHECKING:
    from connectors import ManifestBase

__all__ = ["list_connectors", "record_connectors"]

_RECORD_LOCK = 0x6777_636F  # advisory lock id for recording connectors


def _digest(manifest: ManifestBase) -> tuple[dict[str, Any], str]:
    data = manifest.model_dump(mode="json", by_alias=True)
    canonical = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    return data, hashlib.sha256(canonical).hexdigest()


async def record_connectors(
    engine: AsyncEngine, manifests: Sequence[ManifestBase], *, origin: str
) -> dict[str, int]:
    """Record the manifests in use: new ones at version 1, changed ones a version up.

    Connectors recorded before but absent now are marked `removed`. Returns the
    version of each manifest in use.
    """
    now = datetime.datetime.now(datetime.UTC)
    versions: dict[str, int] = {}
    table = connectors_table
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Replicas starting together: one records at a time (released at commit).
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _RECORD_LOCK})
        rows = {
            r.name: r
            for r in (
                await conn.execute(
                    sa.select(
                        table.c.name, table.c.version, table.c.manifest_sha256, table.c.status
                    )
                )
            )
        }
        for manifest in manifests:
            data, digest = _digest(manifest)
            row = rows.get(manifest.name)
            values = {
                "kind": manifest.kind,
                "title": manifest.title,
                "agency": manifest.agency,
                "manifest": data,
                "manifest_sha256": digest,
                "origin": origin,
                "status": "active",
                "updated_at": now,
            }
            if row is None:
                versions[manifest.name] = 1
                await conn.execute(
                    table.insert().values(
                        name=manifest.name, version=1, registered_at=now, **values
                    )
                )
            elif row.manifest_sha256 != digest or row.status != "active":
                versions[manifest.name] = row.version + (row.manifest_sha256 != digest)
                await conn.execute(
                    table.update()
                    .where(table.c.name == manifest.name)
                    .values(version=versions[manifest.name], **values)
                )
            else:
                versions[manifest.name] = row.version
        gone = set(rows) - {m.name for m in manifests}
        if gone:
            await conn.execute(
                table.update()
                .where(table.c.name.in_(gone), table.c.status == "active")
                .values(status="removed", updated_at=now)
            )
    return versions


async def list_connectors(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Every recorded connector, newest change first."""
    table = connectors_table
    async with engine.connect() as conn:
        result = await conn.execute(
            sa.select(
                table.c.name,
                table.c.kind,
                table.c.version,
                table.c.status,
                table.c.title,
                table.c.origin,
                table.c.updated_at,
            ).order_by(table.c.name)
        )
        # Plain `str` keys: the row's keys are SQLAlchemy's `quoted_name`, which JSON
        # encoders such as orjson refuse as object keys.
        return [{str(k): v for k, v in r._mapping.items()} for r in result]
