"""The connectors in use, and the versions agencies register through the admin API.

`connectors` holds one row per connector: its active manifest and version, where it came
from (`origin`: the folder of the files recorded at start-up, or `api`) and, for one
registered through the API, its organisation. `connector_versions` keeps every version
submitted through the API with who submitted and approved it. `connector_generation`
rises in the same transaction as any change of what is active, so replicas (and this
process) know when to rebuild; `notify_connectors_changed` tells them at once over
Redis.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import orjson
import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.storage._generations import raise_generation, read_generation
from gateway.storage._tables import connector_generation, connector_versions, organisation_authority
from gateway.storage._tables import connectors as connectors_table

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from connectors import ManifestBase

__all__ = [
    "API_ORIGIN",
    "CONNECTORS_CHANNEL",
    "ActiveConnector",
    "Authority",
    "ConnectorInfo",
    "ConnectorVersion",
    "active_connectors",
    "active_fields",
    "add_connector_version",
    "approve_connector_version",
    "bound_fields",
    "bump_generation",
    "connectors_generation",
    "disable_connector",
    "get_authority",
    "get_connector",
    "get_connector_version",
    "list_connector_versions",
    "list_connectors",
    "manifest_digest",
    "notify_connectors_changed",
    "record_connectors",
    "reject_connector_version",
    "set_authority",
    "set_dry_run",
]

log = structlog.get_logger(__name__)

_RECORD_LOCK = 0x6777_636F  # advisory lock id for recording connectors
API_ORIGIN: Final = "api"
"""The `origin` of a connector registered through the admin API."""
CONNECTORS_CHANNEL: Final = "gw:connectors"
"""Redis channel on which a change of the connectors in use is announced (its generation)."""


@dataclass(frozen=True, slots=True)
class ActiveConnector:
    """A connector in use now: its manifest as JSON data, for `parse_manifest`."""

    name: str
    version: int
    organisation: str | None
    manifest: dict[str, Any]
    origin: str


@dataclass(frozen=True, slots=True)
class ConnectorInfo:
    """A connector's row: who holds it, whether it is in use, at which version."""

    name: str
    organisation: str | None
    status: str
    version: int
    origin: str = ""


@dataclass(frozen=True, slots=True)
class ConnectorVersion:
    """One version submitted through the admin API."""

    connector: str
    version: int
    organisation: str
    manifest: dict[str, Any]
    manifest_sha256: str
    submitted_by: str
    submitted_at: datetime.datetime
    approved_by: str | None
    approved_at: datetime.datetime | None
    status: str
    last_dry_run: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Authority:
    """What an organisation's connectors may serve and reach."""

    organisation: str
    fields: tuple[str, ...]
    endpoints: tuple[str, ...]
    updated_by: str
    updated_at: datetime.datetime


def manifest_digest(data: Mapping[str, Any]) -> str:
    """Hex SHA-256 of a manifest's JSON data, keys sorted."""
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _digest(manifest: ManifestBase) -> tuple[dict[str, Any], str]:
    data = manifest.model_dump(mode="json", by_alias=True)
    return data, manifest_digest(data)


async def bump_generation(conn: AsyncConnection) -> int:
    """Raise the generation in the caller's transaction; returns the new one."""
    return await raise_generation(conn, connector_generation)


async def connectors_generation(engine: AsyncEngine) -> int:
    """The generation of the connectors in use: it rises with every change of them."""
    return await read_generation(engine, connector_generation)


async def notify_connectors_changed(redis: Redis | None, generation: int) -> None:
    """Announce a new generation to every replica (nothing without Redis).

    A failed announcement is logged, not raised: the change is committed, and replicas
    also poll the generation.
    """
    if redis is None:
        return
    try:
        await redis.publish(CONNECTORS_CHANNEL, str(generation))
    except Exception as exc:  # the database stays the truth
        log.warning("connectors_notify_failed", error=type(exc).__name__, generation=generation)


async def record_connectors(
    engine: AsyncEngine, manifests: Sequence[ManifestBase], *, origin: str
) -> dict[str, int]:
    """Record the manifests in use: new ones at version 1, changed ones a version up.

    Connectors recorded from files before but absent now are marked `removed`. A
    connector registered through the admin API keeps its own manifest: a file of the
    same name is skipped (with a warning naming the file). Returns the version of each
    manifest recorded in use; the generation rises when anything changed.
    """
    now = datetime.datetime.now(datetime.UTC)
    versions: dict[str, int] = {}
    table = connectors_table
    changed = False
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Replicas starting together: one records at a time (released at commit).
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _RECORD_LOCK})
        rows = {
            r.name: r
            for r in (
                await conn.execute(
                    sa.select(
                        table.c.name,
                        table.c.version,
                        table.c.manifest_sha256,
                        table.c.status,
                        table.c.origin,
                        table.c.organisation,
                    )
                )
            )
        }
        recorded: set[str] = set()
        for manifest in manifests:
            data, digest = _digest(manifest)
            row = rows.get(manifest.name)
            if row is not None and (row.origin == API_ORIGIN or row.organisation is not None):
                log.warning(
                    "connector_file_skipped",
                    connector=manifest.name,
                    file=str(manifest.path) if manifest.path else None,
                    reason="registered through the admin API; the file does not replace it",
                )
                continue
            recorded.add(manifest.name)
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
                changed = True
                await conn.execute(
                    table.insert().values(
                        name=manifest.name, version=1, registered_at=now, **values
                    )
                )
            elif row.manifest_sha256 != digest or row.status != "active":
                versions[manifest.name] = row.version + (row.manifest_sha256 != digest)
                changed = True
                await conn.execute(
                    table.update()
                    .where(table.c.name == manifest.name)
                    .values(version=versions[manifest.name], **values)
                )
            else:
                versions[manifest.name] = row.version
        gone = {
            name
            for name, row in rows.items()
            if name not in recorded
            and row.status == "active"
            and row.origin != API_ORIGIN
            and row.organisation is None
        }
        if gone:
            changed = True
            await conn.execute(
                table.update()
                .where(table.c.name.in_(gone), table.c.status == "active")
                .values(status="removed", updated_at=now)
            )
        if changed:
            await bump_generation(conn)
    return versions


async def active_connectors(engine: AsyncEngine) -> list[ActiveConnector]:
    """Every connector in use now (from files and from the API), by name."""
    table = connectors_table
    async with engine.connect() as conn:
        result = await conn.execute(
            sa.select(
                table.c.name,
                table.c.version,
                table.c.organisation,
                table.c.manifest,
                table.c.origin,
            )
            .where(table.c.status == "active")
            .order_by(table.c.name)
        )
        return [
            ActiveConnector(
                name=r.name,
                version=r.version,
                organisation=r.organisation,
                manifest=_json(r.manifest),
                origin=r.origin,
            )
            for r in result
        ]


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


async def _read(engine: AsyncEngine | AsyncConnection, query: sa.Select[Any]) -> list[Any]:
    """The rows of `query`, in the caller's transaction when given one."""
    if isinstance(engine, AsyncConnection):
        return list(await engine.execute(query))
    async with engine.connect() as conn:
        return list(await conn.execute(query))


async def get_connector(engine: AsyncEngine | AsyncConnection, name: str) -> ConnectorInfo | None:
    """The connector named `name`, whatever its status, or `None`."""
    table = connectors_table
    query = sa.select(
        table.c.name, table.c.organisation, table.c.status, table.c.version, table.c.origin
    ).where(table.c.name == name)
    row = next(iter(await _read(engine, query)), None)
    if row is None:
        return None
    return ConnectorInfo(
        name=row.name,
        organisation=row.organisation,
        status=row.status,
        version=row.version,
        origin=row.origin,
    )


def _version(row: Any) -> ConnectorVersion:
    return ConnectorVersion(
        connector=row.connector,
        version=row.version,
        organisation=row.organisation,
        manifest=_json(row.manifest),
        manifest_sha256=row.manifest_sha256,
        submitted_by=row.submitted_by,
        submitted_at=row.submitted_at,
        approved_by=row.approved_by,
        approved_at=row.approved_at,
        status=row.status,
        last_dry_run=_json(row.last_dry_run),
    )


async def list_connector_versions(
    engine: AsyncEngine | AsyncConnection, name: str
) -> list[ConnectorVersion]:
    """Every version of a connector submitted through the API, oldest first."""
    table = connector_versions
    query = sa.select(table).where(table.c.connector == name).order_by(table.c.version)
    return [_version(r) for r in await _read(engine, query)]


async def get_connector_version(
    engine: AsyncEngine | AsyncConnection, name: str, version: int
) -> ConnectorVersion | None:
    """One version of a connector, or `None`."""
    table = connector_versions
    query = sa.select(table).where(table.c.connector == name, table.c.version == version)
    row = next(iter(await _read(engine, query)), None)
    return None if row is None else _version(row)


async def get_authority(
    engine: AsyncEngine | AsyncConnection, organisation: str
) -> Authority | None:
    """What `organisation`'s connectors may serve and reach, or `None` if never set."""
    table = organisation_authority
    query = sa.select(table).where(table.c.organisation == organisation)
    row = next(iter(await _read(engine, query)), None)
    if row is None:
        return None
    return Authority(
        organisation=row.organisation,
        fields=tuple(_json(row.fields)),
        endpoints=tuple(_json(row.endpoints)),
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


async def list_connectors(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Every recorded connector, by name, with its pending versions."""
    table = connectors_table
    versions = connector_versions
    async with engine.connect() as conn:
        result = await conn.execute(
            sa.select(
                table.c.name,
                table.c.kind,
                table.c.version,
                table.c.status,
                table.c.title,
                table.c.origin,
                table.c.organisation,
                table.c.updated_at,
            ).order_by(table.c.name)
        )
        # Plain `str` keys: the row's keys are SQLAlchemy's `quoted_name`, which JSON
        # encoders such as orjson refuse as object keys.
        rows = [{str(k): v for k, v in r._mapping.items()} for r in result]
        pending: dict[str, list[int]] = {}
        holders: dict[str, str] = {}
        for name, version, organisation in await conn.execute(
            sa.select(versions.c.connector, versions.c.version, versions.c.organisation)
            .where(versions.c.status == "pending")
            .order_by(versions.c.connector, versions.c.version)
        ):
            pending.setdefault(name, []).append(version)
            holders[name] = organisation
    listed = {r["name"] for r in rows}
    for row in rows:
        row["pending"] = pending.get(row["name"], [])
    # Submitted, never approved: no row in `connectors` yet.
    for name in sorted(set(pending) - listed):
        rows.append(
            {
                "name": name,
                "kind": None,
                "version": None,
                "status": "pending",
                "title": "",
                "origin": API_ORIGIN,
                "organisation": holders[name],
                "updated_at": None,
                "pending": pending[name],
            }
        )
    return rows


# -- changes made through the admin API (in the caller's transaction, with its record) ---


async def add_connector_version(
    conn: AsyncConnection,
    *,
    name: str,
    organisation: str,
    manifest: Mapping[str, Any],
    submitted_by: str,
) -> int:
    """Keep a new pending version of `name`; returns its number (1 for a new name)."""
    versions = connector_versions
    newest = (
        await conn.execute(
            sa.select(sa.func.max(versions.c.version)).where(versions.c.connector == name)
        )
    ).scalar_one_or_none()
    active = (
        await conn.execute(
            sa.select(connectors_table.c.version).where(connectors_table.c.name == name)
        )
    ).scalar_one_or_none()
    version = max(newest or 0, active or 0) + 1
    await conn.execute(
        versions.insert().values(
            connector=name,
            version=version,
            organisation=organisation,
            manifest=dict(manifest),
            manifest_sha256=manifest_digest(manifest),
            submitted_by=submitted_by,
            submitted_at=datetime.datetime.now(datetime.UTC),
            status="pending",
        )
    )
    return version


async def approve_connector_version(
    conn: AsyncConnection, *, name: str, version: int, approved_by: str
) -> int:
    """Make a pending version the one in use; the one approved before is superseded.

    Returns the new generation.
    """
    now = datetime.datetime.now(datetime.UTC)
    versions = connector_versions
    # Two approvals of the connector at once: one after the other (PostgreSQL; SQLite
    # writes one transaction at a time anyway).
    await conn.execute(
        sa.select(versions.c.version).where(versions.c.connector == name).with_for_update()
    )
    found = await get_connector_version(conn, name, version)
    if found is None or found.status != "pending":
        raise ValueError(f"{name} version {version} is not pending")
    await conn.execute(
        versions.update()
        .where(versions.c.connector == name, versions.c.status == "approved")
        .values(status="superseded")
    )
    await conn.execute(
        versions.update()
        .where(versions.c.connector == name, versions.c.version == version)
        .values(status="approved", approved_by=approved_by, approved_at=now)
    )
    data = found.manifest
    values = {
        "kind": str(data.get("kind", "")),
        "title": str(data.get("title", "")),
        "agency": str(data.get("agency", "")),
        "version": version,
        "manifest": data,
        "manifest_sha256": found.manifest_sha256,
        "origin": API_ORIGIN,
        "status": "active",
        "organisation": found.organisation,
        "updated_at": now,
    }
    table = connectors_table
    updated = await conn.execute(table.update().where(table.c.name == name).values(**values))
    if updated.rowcount == 0:
        await conn.execute(table.insert().values(name=name, registered_at=now, **values))
    return await bump_generation(conn)


async def reject_connector_version(conn: AsyncConnection, *, name: str, version: int) -> bool:
    """Refuse a pending version for good; whether it was pending."""
    versions = connector_versions
    result = await conn.execute(
        versions.update()
        .where(
            versions.c.connector == name,
            versions.c.version == version,
            versions.c.status == "pending",
        )
        .values(status="rejected")
    )
    return bool(result.rowcount)


async def disable_connector(conn: AsyncConnection, *, name: str) -> int | None:
    """Stop serving `name`; returns the new generation, or `None` if it was not active."""
    table = connectors_table
    result = await conn.execute(
        table.update()
        .where(table.c.name == name, table.c.status == "active")
        .values(status="disabled", updated_at=datetime.datetime.now(datetime.UTC))
    )
    if not result.rowcount:
        return None
    return await bump_generation(conn)


async def set_authority(
    conn: AsyncConnection,
    *,
    organisation: str,
    fields: Sequence[str],
    endpoints: Sequence[str],
    updated_by: str,
) -> None:
    """Replace what `organisation`'s connectors may serve and reach."""
    table = organisation_authority
    values = {
        "fields": sorted(set(fields)),
        "endpoints": sorted(set(endpoints)),
        "updated_by": updated_by,
        "updated_at": datetime.datetime.now(datetime.UTC),
    }
    result = await conn.execute(
        table.update().where(table.c.organisation == organisation).values(**values)
    )
    if result.rowcount == 0:
        await conn.execute(table.insert().values(organisation=organisation, **values))


async def set_dry_run(
    conn: AsyncConnection, *, name: str, version: int, report: Mapping[str, Any]
) -> None:
    """Keep the report of the last dry run of a version (it holds no value of the sample)."""
    versions = connector_versions
    await conn.execute(
        versions.update()
        .where(versions.c.connector == name, versions.c.version == version)
        .values(last_dry_run=dict(report))
    )


async def active_fields(conn: AsyncConnection) -> list[tuple[str, str | None, int, frozenset[str]]]:
    """Per connector in use: its name, organisation, priority and `Kind.field`s served."""
    table = connectors_table
    out = []
    for row in await conn.execute(
        sa.select(table.c.name, table.c.organisation, table.c.manifest).where(
            table.c.status == "active"
        )
    ):
        data = _json(row.manifest)
        out.append((row.name, row.organisation, int(data.get("priority", 100)), bound_fields(data)))
    return out


def bound_fields(manifest: Mapping[str, Any]) -> frozenset[str]:
    """The canonical top-level fields (`Kind.field`) a manifest's data binds."""
    found: set[str] = set()
    entities = manifest.get("entities")
    if isinstance(entities, Mapping):
        for kind, entity in entities.items():
            fields = entity.get("fields") if isinstance(entity, Mapping) else None
            if isinstance(fields, Mapping):
                found.update(f"{kind}.{field}" for field in fields)
    return frozenset(found)
