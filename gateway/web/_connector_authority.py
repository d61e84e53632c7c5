"""What an organisation's connectors may serve and reach, checked on submit and approve.

A platform operator sets, per organisation, the canonical top-level fields it is
authoritative for (`Citizen.fullName`, or `Citizen.*` for every field of a kind) and
the addresses its connectors may reach. A manifest is refused (422, naming the field)
when it binds another field, reaches another address, or sets a `priority` that would
win over another organisation's connector serving one of the same fields (a lower
number, or the same number and a name sorting first: the registry's order). Loopback
addresses and SQLite files on the gateway's machine are refused unless the setting
`connectors_allow_loopback` allows them; the gateway's own database is always refused.

An address is matched as written in the authority: the host alone (`api.example.vn`,
any port) or `host:port` (that port only; the scheme's port when the URL gives none).
A SQLite source is named `sqlite:///<absolute path>`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors import ManifestBase, SqlManifest
from gateway.errors import Forbidden, InvalidManifest
from gateway.storage import Authority, active_fields, bound_fields, get_authority

__all__ = ["SourceAddress", "check_authority", "is_loopback", "source_address"]

_DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432}


class SourceAddress:
    """Where a manifest's source is, as authorities name it."""

    def __init__(self, field: str, host: str, port: int | None, *, local: bool) -> None:
        self.field = field
        self.host = host
        self.port = port
        self.local = local

    def names(self) -> set[str]:
        """The authority entries that allow this address."""
        if self.port is None:
            return {self.host}
        host = f"[{self.host}]" if ":" in self.host else self.host
        return {self.host, f"{host}:{self.port}"}


def is_loopback(host: str) -> bool:
    if host.lower() in {"localhost", "localhost.localdomain"} or host.lower().endswith(
        ".localhost"
    ):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def source_address(manifest: ManifestBase) -> SourceAddress:
    """The address a manifest reaches (its `base_url`, or its database's host)."""
    if isinstance(manifest, SqlManifest):
        try:
            url = make_url(manifest.database.url)
        except ArgumentError:
            raise InvalidManifest(
                "database.url: not a database URL", field="database.url"
            ) from None
        if url.get_backend_name() == "sqlite":
            path = (url.database or "").removeprefix("file:").split("?", 1)[0]
            resolved = str(Path(path).resolve()) if path else ":memory:"
            return SourceAddress("database.url", f"sqlite:///{resolved}", None, local=True)
        host = url.host or "localhost"
        port = url.port or _DEFAULT_PORTS.get(url.get_backend_name())
        return SourceAddress("database.url", host, port, local=is_loopback(host))
    field = manifest.endpoint_field or "base_url"
    parts = urlsplit(manifest.endpoint)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        raise InvalidManifest(f"{field}: not a valid port", field=field) from None
    return SourceAddress(field, host, port, local=is_loopback(host))


def _allowed(field: str, allowed: tuple[str, ...]) -> bool:
    kind = field.split(".", 1)[0]
    return field in allowed or f"{kind}.*" in allowed


def _refuse(manifest: ManifestBase, field: str, message: str) -> InvalidManifest:
    return InvalidManifest(f"manifest {manifest.name!r}: {field}: {message}", field=field)


async def check_authority(
    conn: AsyncConnection,
    manifest: ManifestBase,
    data: Mapping[str, Any],
    *,
    organisation: str,
    allow_loopback: bool,
) -> Authority:
    """Raise unless `organisation` may register `manifest` (see the module's docstring).

    `Forbidden` when the organisation has no authority set (it may register nothing);
    `InvalidManifest` naming the field otherwise.
    """
    authority = await get_authority(conn, organisation)
    if authority is None:
        raise Forbidden(
            f"No authority is set for {organisation}: it may register no connector until a "
            f"platform operator sets its fields and endpoints (PUT /admin/authority/"
            f"{organisation}).",
            organisation=organisation,
        )
    fields = bound_fields(data)
    for field in sorted(fields):
        if not _allowed(field, authority.fields):
            kind, name = field.split(".", 1)
            at = f"entities.{kind}.fields.{name}"
            raise _refuse(manifest, at, f"{organisation} is not authoritative for {field}")
    address = source_address(manifest)
    if address.local and not allow_loopback:
        raise _refuse(
            manifest,
            address.field,
            "a loopback address or a file on the gateway's machine is refused "
            "(GATEWAY_CONNECTORS_ALLOW_LOOPBACK)",
        )
    if not address.names() & set(authority.endpoints):
        raise _refuse(
            manifest, address.field, f"this address is not among {organisation}'s endpoints"
        )
    for name, owner, priority, served in await active_fields(conn):
        if name == manifest.name or owner == organisation:
            continue
        shared = fields & served
        if shared and (manifest.priority, manifest.name) < (priority, name):
            raise _refuse(
                manifest,
                "priority",
                f"{manifest.priority} would win over connector {name!r} of another "
                f"organisation for {sorted(shared)[0]} (its priority is {priority})",
            )
    return authority
