"""The client registry: case-handling systems allowed to call the gateway, and their keys.

A client is one agency system, named X-Road style `VN/GOV/<org>/<system>`, with the
agency kinds it acts for (the catalogue's vocabulary) and a status. It signs every
request with one of its registered public keys (Ed25519 or ES256; several at once
for rotation, `kid` unique within the client).

Tokens are verified with clients and keys kept in memory (`CachedClients`), not read
from the database on every request. Every change commits with a rise of the registry's
generation (`client_generation`). A change made in this process (its API, its
consoles) is seen by the next request; one made elsewhere (another replica, the CLI)
within `poll_seconds` (`GATEWAY_CLIENTS_POLL_SECONDS`, 0.25 s by default), when the
generation is read again.

Every change (registering a client, adding or revoking a key, suspending or
reinstating a client) commits with its `admin` event in the same transaction, or not
at all: the caller says who makes it with an `AdminRecorder`.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import sqlalchemy as sa
import structlog
from joserfc.jwk import ECKey, OKPKey
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.errors import AuditUnavailable, Conflict, InvalidArgument, NotFound

if TYPE_CHECKING:
    from gateway.admission._published_keys import PublishedKeys
from gateway.instants import utc_now
from gateway.records import AdminRecorder, insert_events
from gateway.storage import (
    client_generation,
    client_keys,
    clients,
    get_authority,
    raise_generation,
    read_generation,
)
from policies import AgencyKind

__all__ = [
    "CLIENT_ID",
    "KID",
    "CachedClients",
    "Client",
    "ClientKey",
    "ClientRegistry",
    "check_client",
    "check_client_id",
    "check_kid",
    "checked_key",
    "insert_client",
    "insert_key",
    "public_jwk",
    "reachable",
    "revoke",
]

log = structlog.get_logger(__name__)

CLIENT_ID = re.compile(r"^VN/GOV/[A-Za-z0-9][A-Za-z0-9-]{0,63}/[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
KID = re.compile(r"^[A-Za-z0-9._~-]{1,128}$")
_NOT_RECORDED = "The change could not be recorded; nothing changed."
_UNREADABLE = (
    "The client registry cannot be read, so the request can be neither checked nor "
    "recorded; no data was released."
)


@dataclass(frozen=True, slots=True)
class Client:
    """A registered case-handling system."""

    id: str
    name: str
    organisation: str
    agency_kinds: frozenset[str]
    status: str

    @property
    def active(self) -> bool:
        """Whether the client may call the gateway now."""
        return self.status == "active"


@dataclass(frozen=True, slots=True)
class ClientKey:
    """A public key registered to a client."""

    client_id: str
    kid: str
    alg: str
    jwk: dict[str, Any] = field(repr=False)
    status: str


def public_jwk(jwk: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """Check a client key: (public JWK, algorithm, RFC 7638 thumbprint).

    Only Ed25519 (`EdDSA`) and P-256 (`ES256`) public keys are accepted; a JWK that
    carries a private part is refused rather than silently stripped.
    """
    if not isinstance(jwk, dict):
        raise InvalidArgument("A key is a JWK object.")
    if "d" in jwk:
        raise InvalidArgument("Register the public key only: this JWK holds a private key.")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    try:
        if kty == "OKP" and crv == "Ed25519":
            key: OKPKey | ECKey = OKPKey.import_key(jwk)
            alg = "EdDSA"
        elif kty == "EC" and crv == "P-256":
            key = ECKey.import_key(jwk)
            alg = "ES256"
        else:
            raise InvalidArgument("Keys are Ed25519 (OKP) or P-256 (EC).", kty=kty, crv=crv)
    except (ValueError, TypeError) as exc:
        raise InvalidArgument("The JWK is not a valid public key.") from exc
    public = {k: v for k, v in key.as_dict(private=False).items() if k in {"kty", "crv", "x", "y"}}
    return public, alg, str(key.thumbprint())


def reachable(url: str, endpoints: Iterable[str]) -> bool:
    """Whether `url`'s host (or host:port) is among `endpoints`: the rule for a client's
    JWKS URL, at its approval and at every read of its key set."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return False
    named = f"[{host}]" if ":" in host else host
    return bool(host) and bool({host, f"{named}:{port}"} & set(endpoints))


def check_client_id(client_id: str) -> None:
    """Refuse (`InvalidArgument`) a malformed client id."""
    if not CLIENT_ID.match(client_id):
        raise InvalidArgument(
            "A client id is VN/GOV/<org>/<system>, e.g. VN/GOV/UBND-HCM/mot-cua.",
            argument="client",
        )


def check_kid(kid: str) -> None:
    """Refuse (`InvalidArgument`) a kid of a shape the registry never holds."""
    if not KID.fullmatch(kid):
        raise InvalidArgument("A kid is 1-128 URL-safe characters.", argument="kid")


def check_client(client_id: str, agency_kinds: Iterable[str]) -> list[str]:
    """Refuse (`InvalidArgument`) a malformed client id or agency kinds; the kinds, sorted."""
    check_client_id(client_id)
    kinds = sorted(set(agency_kinds))
    unknown = [k for k in kinds if k not in AgencyKind.__members__.values()]
    if not kinds or unknown:
        raise InvalidArgument(
            "Name at least one agency kind of the catalogue's vocabulary.",
            unknown=unknown,
            known=sorted(k.value for k in AgencyKind),
        )
    return kinds


def checked_key(jwk: dict[str, Any], kid: str | None = None) -> tuple[dict[str, Any], str, str]:
    """A key to register: (public JWK, algorithm, kid: the given one, the JWK's, or its
    thumbprint); `InvalidArgument` if it is not one."""
    public, alg, thumbprint = public_jwk(jwk)
    kid = kid or jwk.get("kid") or thumbprint
    if not isinstance(kid, str) or not KID.match(kid):
        raise InvalidArgument("A kid is 1-128 URL-safe characters.")
    return public, alg, kid


async def insert_client(
    conn: AsyncConnection,
    client_id: str,
    name: str,
    organisation: str,
    kinds: list[str],
    *,
    jwks_url: str | None = None,
) -> None:
    """Register a client in the caller's transaction (`Conflict` if its id is taken)."""
    now = utc_now()
    try:  # the caller's transaction ends with the refusal
        await conn.execute(
            clients.insert().values(
                id=client_id,
                name=name,
                organisation=organisation,
                agency_kinds=kinds,
                status="active",
                created_at=now,
                updated_at=now,
                jwks_url=jwks_url,
            )
        )
    except IntegrityError:
        raise Conflict("A client with this id is already registered.") from None


async def insert_key(
    conn: AsyncConnection, client_id: str, kid: str, alg: str, public: dict[str, Any]
) -> None:
    """Register a client's key in the caller's transaction (`Conflict` if its kid is taken)."""
    try:  # the caller's transaction ends with the refusal
        await conn.execute(
            client_keys.insert().values(
                client_id=client_id,
                kid=kid,
                alg=alg,
                jwk=public,
                status="active",
                created_at=utc_now(),
            )
        )
    except IntegrityError:
        raise Conflict("This client already has a key with this kid.", kid=kid) from None


async def revoke(conn: AsyncConnection, client_id: str, kid: str) -> bool:
    """Revoke a key in the caller's transaction: whether it was active until now.

    A key of a client that publishes its keys (`jwks_url`) and is not registered here is
    recorded revoked, with no key material: the gateway refuses it even while the
    client's JWKS still holds it. `NotFound` for an unknown key of another client.
    """
    key = client_keys.c.client_id == client_id, client_keys.c.kid == kid
    result = await conn.execute(
        client_keys.update()
        .where(*key, client_keys.c.status != "revoked")
        .values(status="revoked", revoked_at=utc_now())
    )
    if result.rowcount:
        return True
    if (await conn.execute(sa.select(client_keys.c.kid).where(*key))).first() is not None:
        return False
    published = await conn.scalar(sa.select(clients.c.jwks_url).where(clients.c.id == client_id))
    if published is None:
        raise NotFound("This client has no key with this kid.", kind="ClientKey")
    now = utc_now()
    await conn.execute(
        client_keys.insert().values(
            client_id=client_id,
            kid=kid,
            alg="none",
            jwk={},
            status="revoked",
            created_at=now,
            revoked_at=now,
        )
    )
    return True


def _client(row: Any) -> Client:
    return Client(row.id, row.name, row.organisation, frozenset(row.agency_kinds), row.status)


class ClientRegistry:
    """Clients and keys in the gateway's database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(
        self,
        client_id: str,
        *,
        name: str,
        organisation: str,
        agency_kinds: Iterable[str],
        record: AdminRecorder,
    ) -> Client:
        """Register a client, active from now, with its `client_registered` event."""
        kinds = check_client(client_id, agency_kinds)
        try:
            async with self._engine.begin() as conn:
                await insert_client(conn, client_id, name, organisation, kinds)
                await insert_events(conn, [record("client_registered", client_id, None)])
                await _changed(conn)
        except SQLAlchemyError as exc:
            raise AuditUnavailable(_NOT_RECORDED) from exc
        finally:
            _forget_here()
        return Client(client_id, name, organisation, frozenset(kinds), "active")

    async def add_key(
        self,
        client_id: str,
        jwk: dict[str, Any],
        *,
        kid: str | None = None,
        record: AdminRecorder,
    ) -> ClientKey:
        """Register a public key, with its `key_added` event.

        Its `kid` is the given one, the JWK's, or its thumbprint.
        """
        public, alg, kid = checked_key(jwk, kid)
        await self.get(client_id)
        try:
            async with self._engine.begin() as conn:
                await insert_key(conn, client_id, kid, alg, public)
                await insert_events(conn, [record("key_added", client_id, kid)])
                await _changed(conn)
        except SQLAlchemyError as exc:
            raise AuditUnavailable(_NOT_RECORDED) from exc
        finally:
            _forget_here()
        return ClientKey(client_id, kid, alg, public, "active")

    async def get(self, client_id: str) -> Client:
        """The client, or `NotFound`."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(clients).where(clients.c.id == client_id))).first()
        if row is None:
            raise NotFound("No client has this id.", kind="Client")
        return _client(row)

    async def set_status(self, client_id: str, status: str, *, record: AdminRecorder) -> Client:
        """Suspend (`suspended`) or reinstate (`active`) a client.

        The change commits with its `admin` event (`client_suspended`,
        `client_activated`), or not at all (`AuditUnavailable`).
        """
        if status not in {"active", "suspended"}:
            raise InvalidArgument("A status is active or suspended.")
        try:
            async with self._engine.begin() as conn:
                result = await conn.execute(
                    clients.update()
                    .where(clients.c.id == client_id)
                    .values(status=status, updated_at=utc_now())
                )
                if result.rowcount == 0:
                    raise NotFound("No client has this id.", kind="Client")
                row = (
                    await conn.execute(sa.select(clients).where(clients.c.id == client_id))
                ).one()
                client = _client(row)
                action = "client_suspended" if status == "suspended" else "client_activated"
                await insert_events(conn, [record(action, client.id, None)])
                await _changed(conn)
        except SQLAlchemyError as exc:
            raise AuditUnavailable(_NOT_RECORDED) from exc
        finally:
            _forget_here()
        return client

    async def revoke_key(self, client_id: str, kid: str, *, record: AdminRecorder) -> None:
        """Stop accepting a key; tokens it signed are refused from now on.

        The revocation commits with its `key_revoked` event, or not at all. A key
        already revoked stays as it was (its first revocation is the one recorded).
        """
        try:
            async with self._engine.begin() as conn:
                if await revoke(conn, client_id, kid):
                    await insert_events(conn, [record("key_revoked", client_id, kid)])
                    await _changed(conn)
        except SQLAlchemyError as exc:
            raise AuditUnavailable(_NOT_RECORDED) from exc
        finally:
            _forget_here()

    async def lookup(self, client_id: str, kid: str) -> tuple[Client, ClientKey] | None:
        """The client and its key `kid` (whatever their status), in one query.

        The key is looked up within the client: a kid of another client never matches.
        An id or kid of a shape the registry never holds is not looked up at all, and a
        registry that cannot be read is `AuditUnavailable` (503): the database that would
        hold the request's record does not answer, so nothing is served.
        """
        if not CLIENT_ID.fullmatch(client_id) or not KID.fullmatch(kid):
            return None
        query = (
            sa.select(clients, client_keys.c.kid, client_keys.c.alg, client_keys.c.jwk,
                      client_keys.c.status.label("key_status"))
            .join(client_keys, client_keys.c.client_id == clients.c.id)
            .where(clients.c.id == client_id, client_keys.c.kid == kid)
        )  # fmt: skip
        try:
            async with self._engine.connect() as conn:
                row = (await conn.execute(query)).first()
        except (OSError, SQLAlchemyError) as exc:
            raise AuditUnavailable(_UNREADABLE) from exc
        if row is None:
            return None
        return _client(row), ClientKey(client_id, row.kid, row.alg, dict(row.jwk), row.key_status)

    async def published(self, client_id: str) -> tuple[Client, str] | None:
        """The client and the URL of the keys it publishes, if it publishes them and the
        URL's host is still among its organisation's endpoints (checked at each read, not
        only at approval: endpoints taken away take the URL's keys with them)."""
        if not CLIENT_ID.fullmatch(client_id):
            return None
        try:
            async with self._engine.connect() as conn:
                row = (
                    await conn.execute(
                        sa.select(clients).where(
                            clients.c.id == client_id, clients.c.jwks_url.is_not(None)
                        )
                    )
                ).first()
                if row is None:
                    return None
                authority = await get_authority(conn, client_id.rsplit("/", 1)[0])
        except (OSError, SQLAlchemyError) as exc:
            raise AuditUnavailable(_UNREADABLE) from exc
        if authority is None or not reachable(row.jwks_url, authority.endpoints):
            log.warning("published_keys_not_allowed", client=client_id)
            return None
        return _client(row), row.jwks_url

    async def generation(self) -> int:
        """The registry's generation: it rises with every change (`AuditUnavailable` if
        it cannot be read, as for `lookup`)."""
        try:
            return await read_generation(self._engine, client_generation)
        except (OSError, SQLAlchemyError) as exc:
            raise AuditUnavailable(_UNREADABLE) from exc

    async def names(self, ids: set[str]) -> dict[str, tuple[str, str]]:
        """The organisation and system name of the registered clients among `ids`, by id."""
        if not ids:
            return {}
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                sa.select(clients.c.id, clients.c.organisation, clients.c.name).where(
                    clients.c.id.in_(ids)
                )
            )
            return {r.id: (r.organisation, r.name) for r in rows}

    async def list(self) -> list[dict[str, Any]]:
        """Every client with its keys (public parts only)."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(clients).order_by(clients.c.id))).all()
            keys = (
                await conn.execute(sa.select(client_keys).order_by(client_keys.c.created_at))
            ).all()
        out: list[dict[str, Any]] = []
        for row in rows:
            client = _client(row)
            out.append(
                {
                    "id": client.id,
                    "name": client.name,
                    "organisation": client.organisation,
                    "agencyKinds": sorted(client.agency_kinds),
                    "status": client.status,
                    "keys": [
                        {"kid": k.kid, "alg": k.alg, "status": k.status}
                        for k in keys
                        if k.client_id == client.id
                    ],
                }
            )
        return out


async def _changed(conn: AsyncConnection) -> None:
    """Raise the registry's generation in the caller's transaction (with its change)."""
    await raise_generation(conn, client_generation)


_CACHES: weakref.WeakSet[CachedClients] = weakref.WeakSet()
"""Every cache of this process: a change made here empties them all at once."""


def _forget_here() -> None:
    for cache in list(_CACHES):
        cache.forget()


class CachedClients:
    """The clients and keys requests are verified with, kept in memory.

    An entry is what `ClientRegistry.lookup` read (unknown ids and kids are not kept:
    they are read each time, as before). Entries are dropped when the registry's
    generation has changed, which is read again once `poll_seconds` have passed since
    the last read, before the next lookup; a change made in this process drops them at
    once. So a suspension or a revocation made elsewhere takes effect within
    `poll_seconds`, and one made here on the next request.
    """

    MAX_ENTRIES = 10_000
    """Kept (client, kid) pairs; beyond, all are dropped and read again."""

    def __init__(
        self,
        registry: ClientRegistry,
        *,
        poll_seconds: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        published: PublishedKeys | None = None,
        published_seconds: float = 60.0,
    ) -> None:
        self._registry = registry
        self._published = published
        self._published_seconds = published_seconds
        self._from_sets: dict[tuple[str, str], tuple[tuple[Client, ClientKey], float]] = {}
        self._poll = poll_seconds
        self._clock = clock
        self._entries: dict[tuple[str, str], tuple[Client, ClientKey]] = {}
        self._epoch = 0
        """Rises whenever entries are dropped: a read begun before is not kept."""
        self._generation: int | None = None
        self._checked = -math.inf
        self._checking: asyncio.Future[None] | None = None
        _CACHES.add(self)

    def forget(self) -> None:
        """Drop every entry (and any read under way): the next lookups read afresh."""
        self._entries.clear()
        self._from_sets.clear()
        self._epoch += 1

    async def lookup(self, client_id: str, kid: str) -> tuple[Client, ClientKey] | None:
        """As `ClientRegistry.lookup`, from memory while the registry has not changed.

        A client that publishes its keys (`jwks_url`) is looked up in its key set too
        (`PublishedKeys`); such an entry is kept `published_seconds` at most, so a key
        the agency stops publishing stops working soon after the set is read again.
        """
        await self._current()
        found = self._entries.get((client_id, kid))
        if found is not None:
            return found
        if not KID.fullmatch(kid):
            return None  # never registered, never revocable: never taken from a set either
        kept = self._from_sets.get((client_id, kid))
        if kept is not None and self._clock() < kept[1]:
            return kept[0]
        epoch = self._epoch
        found = await self._registry.lookup(client_id, kid)
        if self._published is not None and (found is None or not found[1].jwk):
            # Not registered here (or revoked here with no key kept): the key set says.
            published = await self._from_set(client_id, kid, found)
            if published is not None and epoch == self._epoch:
                expires = self._clock() + self._published_seconds
                self._from_sets[(client_id, kid)] = (published, expires)
            return published
        if found is not None and epoch == self._epoch:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[(client_id, kid)] = found
        return found

    async def _from_set(
        self, client_id: str, kid: str, registered: tuple[Client, ClientKey] | None
    ) -> tuple[Client, ClientKey] | None:
        assert self._published is not None
        publisher = await self._registry.published(client_id)
        if publisher is None:
            return registered
        client, url = publisher
        jwk = await self._published.key(url, kid)
        if jwk is None:
            return registered
        public, alg, _ = public_jwk(jwk)
        status = "active" if registered is None else registered[1].status
        return client, ClientKey(client_id, kid, alg, public, status)

    async def _current(self) -> None:
        """Read the generation again if `poll_seconds` have passed (one read at a time)."""
        if self._clock() - self._checked < self._poll:
            return
        if self._checking is None:
            self._checking = asyncio.ensure_future(self._check())
            # Its failure reaches the requests waiting; retrieved here in case none is left.
            self._checking.add_done_callback(lambda done: done.cancelled() or done.exception())
        # Shielded: a request cancelled while it waits does not cancel the others' read.
        await asyncio.shield(self._checking)

    async def _check(self) -> None:
        try:
            started = self._clock()
            generation = await self._registry.generation()
            if generation != self._generation:
                self.forget()
                self._generation = generation
            self._checked = started
        finally:
            self._checking = None
