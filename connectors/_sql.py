"""The `sql` connector kind: a relational database read through SQLAlchemy, read-only.

A manifest holds no SQL text. It names tables and columns, which `open()` reflects and
checks; every query is then built with SQLAlchemy Core over the reflected tables, with
bound parameters only. A batch of keys is read with `IN` (in chunks of `_CHUNK`), and
each join or children table the requested fields need is read with one more query for
the whole batch, so the number of queries does not grow with the number of keys.

Every read is one read-only transaction: on PostgreSQL `SET TRANSACTION READ ONLY`
with a `statement_timeout` of the manifest's `timeout_seconds` (and sessions default to
read-only transactions); SQLite files are opened `mode=ro` with `PRAGMA query_only`.

Keys are matched on text, varchar, char, integer, uuid and date columns (`open()`
refuses others): a key is bound as its column's type (an integer written plainly, in
the column's range; a uuid; a date as YYYY-MM-DD) and one that cannot be is not found,
without a query; rows are matched to keys on the same text form (char without its
padding).

Every read takes a permit of the source's rate limit first (`connectors._ratelimit`),
and each retry of a read another.

Values reach the mapping as JSON would give them, so a field maps the same way from a
REST source and from a database: dates and times as ISO text, decimals as numbers.
"""

from __future__ import annotations

import asyncio
import datetime
import re
import ssl
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
import structlog
from sqlalchemy import Column, MetaData, Table, event, exc, literal, select, text, types
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import Select

from connectors._manifest import (
    FieldMap,
    ManifestError,
    MappingSpec,
    SqlEntity,
    SqlJoin,
    SqlManifest,
)
from connectors._mapping import FieldMapper, compile_fields, map_record, source_roots
from connectors._metrics import count_call, observe_latency
from connectors._ratelimit import LocalLimiter, SourceLimiter, take_permit
from connectors._resilience import _MIN_CALL, CircuitBreaker, backoff
from connectors._secrets import resolve_secret
from connectors.base import FetchContext, FetchResult, Health
from gateway.errors import (
    SourceError,
    SourceRateLimited,
    SourceRejected,
    SourceTimeout,
    SourceUnavailable,
)

__all__ = ["SqlConnector"]

log = structlog.get_logger(__name__)

_CHUNK = 500
"""Keys per `IN` list: well under SQLite's and PostgreSQL's limits on parameters."""
_BACKOFF_SECONDS = 0.05
_HOLDER = "_gateway_holder"
"""The label of the holder's column in a list read `through` children."""
_TIMEOUT_STATES = frozenset({"57014", "55P03", "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_INTERRUPT"})
"""PostgreSQL's query_canceled (statement_timeout) and lock_not_available; SQLite's
busy timeout (a writer holds the file) and interruption."""
_REFUSED_STATES = frozenset({"42501", "28000", "28P01"})
"""PostgreSQL's insufficient_privilege and invalid authorization: the source refuses."""

Row = dict[str, Any]


def _plain(value: Any) -> Any:
    """A database value as JSON would carry it (what mappings and the schema expect)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, datetime.date | datetime.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, Decimal):
        if value.is_finite() and value == value.to_integral_value():
            return int(value)
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _record(row: Any, columns: Iterable[str]) -> Row:
    mapping = row._mapping
    return {name: _plain(mapping[name]) for name in columns}


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


_INTEGER = re.compile(r"-?(0|[1-9][0-9]{0,18})")
_UUID = re.compile(r"[0-9a-fA-F]{8}(-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_KEY_TYPES = "text, varchar, char, integer types, uuid or date"


class _Key:
    """How a key column's values are asked for and recognised.

    `bind` turns a key (text) into the value bound for the column, `None` when it
    cannot be one (not found, and not asked). `text` is the form a key and a row's
    value are matched on: the same for both, whatever the driver returns.
    """

    __slots__ = ("bits", "kind", "padded")

    def __init__(self, kind: str, *, bits: int = 64, padded: bool = False) -> None:
        self.kind = kind  # "text", "int", "uuid" or "date"
        self.bits = bits
        self.padded = padded

    @classmethod
    def of(cls, column: Column[Any], *, postgres: bool) -> _Key | None:
        """The key handling of `column`'s type; `None` when keys of it are not supported."""
        kind = column.type
        if isinstance(kind, types.Integer):
            if not postgres or isinstance(kind, types.BigInteger):
                return cls("int")  # SQLite's INTEGER holds 64 bits
            return cls("int", bits=16 if isinstance(kind, types.SmallInteger) else 32)
        if isinstance(kind, types.Uuid):
            return cls("uuid")
        if isinstance(kind, types.Date) and not isinstance(kind, types.DateTime):
            return cls("date")
        if isinstance(kind, types.String) and not isinstance(kind, types.Enum):
            return cls("text", padded=isinstance(kind, types.CHAR))
        return None

    def bind(self, key: str, *, postgres: bool) -> Any:
        if self.kind == "int":
            if not _INTEGER.fullmatch(key):
                return None
            number = int(key)
            limit = 1 << (self.bits - 1)
            return number if -limit <= number < limit else None
        if self.kind == "uuid":
            return uuid.UUID(key) if _UUID.fullmatch(key) else None
        if self.kind == "date":
            if not _DATE.fullmatch(key):
                return None
            try:
                day = datetime.date.fromisoformat(key)
            except ValueError:
                return None
            return day if postgres else day.isoformat()  # SQLite holds dates as text
        return key

    def text(self, value: Any) -> str:
        if isinstance(value, str):
            return value.rstrip(" ") if self.padded else value
        if isinstance(value, uuid.UUID):
            return str(uuid.UUID(int=value.int))  # the driver's own UUID type prints alike
        return str(_plain(value))


class _Entity:
    """One entity kind: its manifest part, compiled mapping and (after `open`) tables."""

    __slots__ = ("key", "kind", "links", "lists", "mappers", "reads", "relations", "spec", "table")

    def __init__(self, kind: str, spec: SqlEntity, manifest: SqlManifest) -> None:
        self.kind = kind
        self.spec = spec
        self.mappers: dict[str, FieldMapper] = compile_fields(
            spec.fields, source=manifest.name, tables=manifest.tables
        )
        names = {*spec.joins, *spec.children}
        self.reads = {
            field: _relation_reads(self.mappers[field], field_spec, names, manifest)
            for field, field_spec in spec.fields.items()
        }
        self.table: Table | None = None
        self.relations: dict[str, Table] = {}
        self.key: _Key | None = None
        self.lists: dict[str, _Key] = {}
        self.links: dict[str, tuple[_Key, _Key]] = {}
        """Per join or children: its entity table column's key and its own column's."""

    def relation(self, name: str) -> SqlJoin:
        return self.spec.joins.get(name) or self.spec.children[name]

    def mappers_for(self, fields: frozenset[str]) -> list[FieldMapper]:
        return [m for name, m in self.mappers.items() if name in fields]

    def plan(self, fields: frozenset[str]) -> tuple[list[str], dict[str, frozenset[str] | None]]:
        """The entity table's columns and the joins/children that `fields` need, each
        with the columns of its table the mapping reads (`None`: all of them)."""
        assert self.table is not None
        roots = source_roots(self.mappers[f] for f in fields if f in self.mappers)
        names = {*self.spec.joins, *self.spec.children}
        if roots is None:
            relations = sorted(names)
            columns = set(self.table.c.keys())
        else:
            relations = sorted(roots & names)
            columns = {r for r in roots if r in self.table.c and r not in names}
        columns.add(self.spec.key_field)
        columns.update(self.relation(r).parent_column for r in relations)
        reads: dict[str, set[str] | None] = {r: set() for r in relations}
        for field in fields:
            if field not in self.reads:
                continue
            field_reads = self.reads[field]
            for name in relations:
                if field_reads is None or (name in field_reads and field_reads[name] is None):
                    reads[name] = None
                elif name in field_reads and (wanted := reads[name]) is not None:
                    wanted.update(field_reads[name] or ())
        return sorted(columns), {
            name: None if wanted is None else frozenset(wanted) for name, wanted in reads.items()
        }


def _relation_reads(
    mapper: FieldMapper, spec: MappingSpec, names: set[str], manifest: SqlManifest
) -> dict[str, frozenset[str] | None] | None:
    """The columns of each join or children a field reads (`None`: all; `None` for the
    whole answer when the field reads the whole record)."""
    if mapper.source_roots is None:
        return None
    reads: dict[str, frozenset[str] | None] = {}
    source = spec if isinstance(spec, str) else spec.from_
    if source is None:  # an expression: it may read any column of what it names
        return {root: None for root in mapper.source_roots if root in names}
    path = source.split(".")
    if path[0] not in names:
        return reads
    if len(path) > 1:
        reads[path[0]] = frozenset(path[1:2])
    elif isinstance(spec, FieldMap) and spec.fields is not None:
        inner = compile_fields(spec.fields, source=manifest.name, tables=manifest.tables)
        reads[path[0]] = source_roots(inner.values())
    else:
        reads[path[0]] = None  # the rows as they are
    return reads


class SqlConnector:
    """Reads canonical entities from a relational database (PostgreSQL or SQLite).

    The password (`database.password`) and a secret user name are references read when
    the connector opens; they go into the connection URL built with
    `sqlalchemy.engine.URL.create` and appear in no `repr`, log line or error.

    TLS (PostgreSQL): `tls.ca_file` is the PEM bundle the server is verified by
    (else the system's); `tls.client_cert` and `tls.client_key` give a client
    certificate. The key must be a `file:` reference: its path is handed to
    `ssl.SSLContext.load_cert_chain`, so the key is never copied anywhere. Relative
    paths are read from the manifest's folder.

    `queries` counts the statements that read data, for tests and benchmarks.
    """

    def __init__(self, manifest: SqlManifest, *, http: httpx.AsyncClient | None = None) -> None:
        del http  # a database is not reached over HTTP
        self.name = manifest.name
        self.manifest = manifest
        self.queries = 0
        self._postgres = manifest.database.url.startswith("postgresql://")
        self._limit = asyncio.Semaphore(manifest.max_concurrency)
        self.breaker = CircuitBreaker(
            manifest.name,
            failures=manifest.breaker.failures,
            reset_seconds=manifest.breaker.reset_seconds,
        )
        # This process's own permits until the registry gives shared ones (`limit_rate`).
        spec = manifest.rate_limit
        self._rate: SourceLimiter | None = None if spec is None else LocalLimiter(spec)
        self._entities = {
            kind: _Entity(kind, spec, manifest) for kind, spec in manifest.entities.items()
        }
        self._engine: AsyncEngine | None = None
        self._secret_user: str | None = None
        self._opened = False
        self._opening = asyncio.Lock()

    def __repr__(self) -> str:
        return f"SqlConnector(name={self.name!r}, url={self.manifest.database.url!r})"

    @classmethod
    def from_manifest(cls, manifest: SqlManifest, *, http: httpx.AsyncClient) -> SqlConnector:
        """Build from a validated manifest (the plug-in entry point)."""
        return cls(manifest, http=http)

    def limit_rate(self, limiter: SourceLimiter | None) -> None:
        """Take permits from `limiter` (the registry's, shared by replicas) from now on."""
        self._rate = limiter

    # -- connecting ------------------------------------------------------------------

    def _url(self) -> URL:
        database = self.manifest.database
        if not self._postgres:
            path = database.url[len("sqlite:///") :]
            return URL.create(
                "sqlite+aiosqlite",
                database="file:" + quote(path, safe="/:"),
                query={"mode": "ro", "uri": "true"},
            )
        user: str | None = None
        if isinstance(database.user, str):
            user = database.user
        elif database.user is not None:
            user = resolve_secret(self.manifest, ("database", "user"), database.user).reveal()
            self._secret_user = user
        password = None
        if database.password is not None:
            password = resolve_secret(
                self.manifest, ("database", "password"), database.password
            ).reveal()
        parsed = make_url(database.url)
        return URL.create(
            "postgresql+asyncpg",
            username=user,
            password=password,
            host=parsed.host,
            port=parsed.port,
            database=parsed.database,
        )

    def _ssl_context(self) -> ssl.SSLContext | None:
        tls = self.manifest.database.tls
        if tls is None:
            return None
        if not self._postgres:
            raise self.manifest.error(("database", "tls"), "TLS applies to PostgreSQL only")
        local = self.manifest.local_path
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            # Given a CA bundle, trust that alone (as libpq's sslrootcert), else the system's.
            if tls.ca_file is not None:
                context.load_verify_locations(cafile=local(tls.ca_file))
            else:
                context.load_default_certs(ssl.Purpose.SERVER_AUTH)
            if tls.mode != "verify-full":
                context.check_hostname = False
            if tls.mode == "require":
                context.verify_mode = ssl.CERT_NONE
            if tls.client_cert is not None and tls.client_key is not None:
                if tls.client_key.provider != "file":
                    raise self.manifest.error(
                        ("database", "tls", "client_key"),
                        "the client key is read from a file: give {ref: file:PATH}",
                    )
                context.load_cert_chain(local(tls.client_cert), local(tls.client_key.name))
        except (OSError, ssl.SSLError) as exc:
            raise self.manifest.error(
                ("database", "tls"), f"cannot load TLS files: {exc.strerror or exc}"
            ) from None
        return context

    def _create_engine(self) -> AsyncEngine:
        url = self._url()
        pool_size = min(self.manifest.max_concurrency, 8)
        options: dict[str, Any] = {
            "pool_size": pool_size,
            "max_overflow": self.manifest.max_concurrency - pool_size,
            "pool_timeout": self.manifest.timeout_seconds,
        }
        if self._postgres:
            connect_args: dict[str, Any] = {
                "timeout": self.manifest.timeout_seconds,
                "server_settings": {
                    "application_name": f"gateway-{self.name}",
                    "default_transaction_read_only": "on",
                },
            }
            context = self._ssl_context()
            if context is not None:
                connect_args["ssl"] = context
            engine = create_async_engine(url, connect_args=connect_args, **options)
        else:
            self._ssl_context()  # refuses TLS settings for SQLite
            # SQLite waits this long for a writer to let go of the file, then fails.
            connect_args = {"timeout": self.manifest.timeout_seconds}
            engine = create_async_engine(url, connect_args=connect_args, **options)

            @event.listens_for(engine.sync_engine, "connect")
            def _query_only(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA query_only = ON")
                cursor.close()

        return engine

    def _where(self) -> str:
        """The database, without user or password, for messages."""
        return self.manifest.database.url

    def _redact(self, message: str) -> str:
        """`message` without the password, nor a user name read from a secret reference,
        should a driver or the server quote them."""
        password = self._engine.url.password if self._engine is not None else None
        for secret in (password, self._secret_user):
            if secret:
                message = message.replace(str(secret), "***")
        return message

    async def open(self) -> None:
        """Connect, reflect every table the manifest names and check its columns.

        Raises `ManifestError` naming the file, line and field when a table or column
        is missing, and `SourceUnavailable` (naming the database, never the password)
        when it cannot be reached: the gateway then starts without it, as it does
        when a REST source is down, and tries again at the next read.
        """
        async with self._opening:
            if self._opened:
                return
            if self._engine is None:
                self._engine = self._create_engine()
            try:
                async with asyncio.timeout(max(self.manifest.timeout_seconds, 5.0)):
                    async with self._engine.connect() as conn:
                        await conn.run_sync(self._reflect)
            except ManifestError:
                raise
            except (TimeoutError, OSError, exc.SQLAlchemyError) as error:
                reason = self._redact(str(getattr(error, "orig", None) or error) or "timeout")
                raise SourceUnavailable(
                    f"The database {self._where()} cannot be read: {type(error).__name__}: "
                    f"{reason.splitlines()[0] if reason else ''}",
                    source=self.name,
                ) from None
            self._opened = True
            log.info("sql_connector_open", connector=self.name, database=self._where())

    def _reflect(self, conn: Connection) -> None:
        """Reflect and check every table and column the manifest names (sync, in a thread)."""
        metadata = MetaData(schema=self.manifest.database.schema_)
        manifest = self.manifest
        sqlite = not self._postgres
        keys: dict[tuple[str, str], tuple[_Key | None, str]] = {}
        """Per table and column: how keys are matched on it (`None`: they are not), and
        its type as the database declares it."""

        checked: dict[str, Table] = {}

        def table(name: str, loc: tuple[str | int, ...]) -> Table:
            if name in checked:
                return checked[name]
            # A table another one refers to is reflected with it, but not yet checked.
            reflected = metadata.tables.get(
                f"{metadata.schema}.{name}" if metadata.schema else name
            )
            if reflected is None:
                try:
                    reflected = Table(name, metadata, autoload_with=conn)
                except exc.NoSuchTableError:
                    where = f" in schema {metadata.schema!r}" if metadata.schema else ""
                    raise manifest.error(loc, f"no table {name!r}{where}") from None
            try:  # the catalogue shows tables the user may not read: try reading
                conn.execute(select(literal(1)).select_from(reflected).limit(0))
            except exc.DBAPIError as error:
                reason = self._redact(str(error.orig).strip().splitlines()[0])
                raise manifest.error(loc, f"cannot read table {name!r}: {reason}") from None
            # Known before `_raw_sqlite_types` lets SQLite's dates through as text.
            for col in reflected.c:
                keys[(name, col.name)] = (_Key.of(col, postgres=self._postgres), str(col.type))
            if sqlite:
                _raw_sqlite_types(reflected)
            checked[name] = reflected
            return reflected

        def column(tab: Table, name: str, loc: tuple[str | int, ...]) -> None:
            if name not in tab.c:
                raise manifest.error(loc, f"no column {name!r} in table {tab.name!r}")

        def key(tab: Table, name: str, loc: tuple[str | int, ...]) -> _Key:
            """How keys are matched on a column, refused when its type is not supported."""
            column(tab, name, loc)
            found, declared = keys[(tab.name, name)]
            if found is None:
                raise manifest.error(
                    loc,
                    f"column {name!r} of table {tab.name!r} is of type {declared}: "
                    f"keys are matched on {_KEY_TYPES} columns",
                )
            return found

        for kind, entity in self._entities.items():
            spec = entity.spec
            where: tuple[str | int, ...] = ("entities", kind)
            main = table(spec.table, (*where, "table"))
            entity_key = key(main, spec.key_field, (*where, "key_field"))
            relations: dict[str, Table] = {}
            links: dict[str, tuple[_Key, _Key]] = {}
            for group, members in (("joins", spec.joins), ("children", spec.children)):
                for name, join in members.items():
                    at = (*where, group, name)
                    other = table(join.table, (*at, "table"))
                    links[name] = (
                        key(main, join.parent_column, (*at, "match", join.column)),
                        key(other, join.column, (*at, "match", join.column)),
                    )
                    if join.order_by is not None:
                        column(other, join.order_by, (*at, "order_by"))
                    relations[name] = other
            lists: dict[str, _Key] = {}
            for way, listing in spec.lists.items():
                at = (*where, "lists", way, "column")
                holder = main if listing.through is None else relations[listing.through]
                lists[way] = key(holder, listing.column, at)
            self._check_mapping(entity, main, relations)
            entity.table = main
            entity.relations = relations
            entity.key = entity_key
            entity.links = links
            entity.lists = lists

    def _check_mapping(self, entity: _Entity, main: Table, relations: Mapping[str, Table]) -> None:
        """Every source root of the mapping is a column, a join or children; a field read
        from a join or children reads columns of that table."""
        where = ("entities", entity.kind, "fields")
        for canonical, spec in entity.spec.fields.items():
            at = (*where, canonical, *_part(spec))
            for root in sorted(entity.mappers[canonical].source_roots or ()):
                if root not in main.c and root not in relations:
                    raise self.manifest.error(
                        at,
                        f"no column {root!r} in table {main.name!r} "
                        "(nor a join or children of that name)",
                    )
            source = spec if isinstance(spec, str) else spec.from_
            if source is None:
                continue
            path = source.split(".")
            other = relations.get(path[0])
            if other is None:
                continue
            if len(path) > 1 and path[1] not in other.c:
                raise self.manifest.error(at, f"no column {path[1]!r} in table {other.name!r}")
            if len(path) == 1 and isinstance(spec, FieldMap) and spec.fields is not None:
                inner = compile_fields(spec.fields, source=self.name, tables=self.manifest.tables)
                for sub, sub_mapper in inner.items():
                    for root in sorted(sub_mapper.source_roots or ()):
                        if root not in other.c:
                            raise self.manifest.error(
                                (*where, canonical, "fields", sub, *_part(spec.fields[sub])),
                                f"no column {root!r} in table {other.name!r}",
                            )

    # -- reading ---------------------------------------------------------------------

    async def fetch(
        self,
        kind: str,
        keys: Sequence[str],
        fields: frozenset[str],
        ctx: FetchContext,
        *,
        by: str | None = None,
    ) -> Mapping[str, FetchResult]:
        """Look up `keys` of `kind` for the canonical `fields` (by another key: lists)."""
        del ctx  # a database takes no X-Road headers
        # Within the manifest's timeout, cut to the request's deadline.
        with self.breaker.attempt(self.manifest.timeout_seconds) as budget:
            return await self._read(kind, keys, fields, by, budget)

    async def _read(
        self,
        kind: str,
        keys: Sequence[str],
        fields: frozenset[str],
        by: str | None,
        budget: float,
    ) -> Mapping[str, FetchResult]:
        if not self._opened:
            try:
                await self.open()
            except ManifestError as error:
                # The database came back with a schema its manifest does not fit.
                log.error("sql_connector_not_open", connector=self.name, error=str(error))
                raise SourceUnavailable(source=self.name, reason="not open") from None
        entity = self._entities[kind]
        unique = list(dict.fromkeys(keys))
        if not unique:
            return {}
        timeout = self.manifest.timeout_seconds
        budget = await take_permit(
            self._rate, source=self.name, call_timeout=timeout, budget=budget
        )
        started = time.perf_counter()
        outcome = "ok"
        try:
            async with asyncio.timeout(budget) as scope, self._limit:
                attempt = 0
                while True:
                    try:
                        return await self._transaction(entity, unique, fields, by, budget)
                    except SourceUnavailable as error:
                        if attempt >= self.manifest.retries:
                            raise
                        attempt += 1
                        await asyncio.sleep(backoff(attempt, _BACKOFF_SECONDS))
                        await self._retry_permit(error, scope)
        except TimeoutError:
            outcome = SourceTimeout.code
            raise SourceTimeout(source=self.name) from None
        except SourceError as error:
            outcome = error.code
            raise
        finally:
            count_call(self.name, "query", outcome)
            observe_latency(self.name, "query", time.perf_counter() - started)

    async def _retry_permit(self, error: SourceError, scope: asyncio.Timeout) -> None:
        """A retry is a read too: its permit must come within the read's time, or the
        failure that asked for the retry stands."""
        when = scope.when()
        within = None if when is None else when - asyncio.get_running_loop().time() - _MIN_CALL
        try:
            await take_permit(
                self._rate,
                source=self.name,
                call_timeout=self.manifest.timeout_seconds,
                budget=0.0,
                within=within,
            )
        except SourceRateLimited:
            raise error from None

    async def _transaction(
        self,
        entity: _Entity,
        keys: list[str],
        fields: frozenset[str],
        by: str | None,
        budget: float,
    ) -> dict[str, FetchResult]:
        assert self._engine is not None
        try:
            async with self._engine.connect() as conn, conn.begin():
                if self._postgres:
                    await conn.execute(text("SET TRANSACTION READ ONLY"))
                    await conn.execute(
                        text("SELECT set_config('statement_timeout', :ms, true)"),
                        {"ms": str(max(1, round(budget * 1000)))},
                    )
                if by is None:
                    return await self._by_key(conn, entity, keys, fields)
                return await self._by_list(conn, entity, by, keys, fields)
        except exc.DBAPIError as error:
            raise self._source_error(error) from None
        except (OSError, exc.SQLAlchemyError) as error:
            log.warning("sql_read_failed", connector=self.name, error=type(error).__name__)
            raise SourceUnavailable(source=self.name, reason=type(error).__name__) from None

    def _source_error(self, error: exc.DBAPIError) -> SourceError:
        orig = error.orig
        cause = getattr(orig, "__cause__", None)
        state = next(
            (
                value
                for source in (orig, cause)
                for name in ("sqlstate", "pgcode", "sqlite_errorname")
                if isinstance(value := getattr(source, name, None), str)
            ),
            None,
        )
        if state in _TIMEOUT_STATES:
            log.warning("sql_statement_timeout", connector=self.name, sqlstate=state)
            return SourceTimeout(source=self.name)
        reason = type(cause or orig).__name__
        if state in _REFUSED_STATES:
            log.warning("sql_read_refused", connector=self.name, error=reason, sqlstate=state)
            return SourceRejected(source=self.name, reason=reason)
        log.warning("sql_read_failed", connector=self.name, error=reason, sqlstate=state)
        return SourceUnavailable(source=self.name, reason=reason)

    async def _rows(self, conn: AsyncConnection, statement: Select[Any]) -> list[Any]:
        self.queries += 1
        result = await conn.execute(statement)
        return list(result.fetchall())

    def _asked(self, key: _Key, keys: list[str]) -> dict[str, tuple[Any, list[str]]]:
        """The keys that can be values of `key`'s column: by the text they are matched
        on, the value bound and the keys asked that way."""
        asked: dict[str, tuple[Any, list[str]]] = {}
        for k in keys:
            value = key.bind(k, postgres=self._postgres)
            if value is not None:
                asked.setdefault(key.text(value), (value, []))[1].append(k)
        return asked

    async def _by_key(
        self, conn: AsyncConnection, entity: _Entity, keys: list[str], fields: frozenset[str]
    ) -> dict[str, FetchResult]:
        table = entity.table
        assert table is not None
        assert entity.key is not None
        columns, relations = entity.plan(fields)
        key_column = table.c[entity.spec.key_field]
        asked = self._asked(entity.key, keys)
        records: dict[str, Row] = {}
        raws: list[tuple[Row, Mapping[str, Any]]] = []
        for chunk in _chunks([value for value, _ in asked.values()]):
            statement = select(*(table.c[c] for c in columns)).where(key_column.in_(chunk))
            for row in await self._rows(conn, statement):
                record = _record(row, columns)
                raws.append((record, row._mapping))
                found = asked.get(entity.key.text(row._mapping[entity.spec.key_field]))
                for k in found[1] if found is not None else ():
                    records.setdefault(k, record)
        await self._attach(conn, entity, raws, relations)
        mappers = entity.mappers_for(fields)
        return {
            k: None if (rec := records.get(k)) is None else map_record(mappers, rec) for k in keys
        }

    async def _by_list(
        self,
        conn: AsyncConnection,
        entity: _Entity,
        way: str,
        holders: list[str],
        fields: frozenset[str],
    ) -> dict[str, FetchResult]:
        table = entity.table
        assert table is not None
        assert entity.key is not None
        listing = entity.spec.lists[way]  # type: ignore[index]
        columns, relations = entity.plan(fields)
        key = entity.spec.key_field
        if listing.through is None:
            holder_column = table.c[listing.column]
            base = select(*(table.c[c] for c in columns), holder_column.label(_HOLDER))
        else:
            join = entity.spec.children[listing.through]
            child = entity.relations[listing.through]
            holder_column = child.c[listing.column]
            base = select(*(table.c[c] for c in columns), holder_column.label(_HOLDER)).select_from(
                table.join(child, child.c[join.column] == table.c[join.parent_column])
            )
        holder_key = entity.lists[way]
        asked = self._asked(holder_key, holders)
        records: dict[str, Row] = {}
        raws: list[tuple[Row, Mapping[str, Any]]] = []
        held: dict[str, dict[str, None]] = {h: {} for h in holders}  # ordered sets
        for chunk in _chunks([value for value, _ in asked.values()]):
            statement = base.where(holder_column.in_(chunk)).order_by(_HOLDER, table.c[key])
            for row in await self._rows(conn, statement):
                record_key = entity.key.text(row._mapping[key])
                if record_key not in records:
                    records[record_key] = _record(row, columns)
                    raws.append((records[record_key], row._mapping))
                found = asked.get(holder_key.text(row._mapping[_HOLDER]))
                for h in found[1] if found is not None else ():
                    held[h][record_key] = None  # once, though several rows name the holder
        await self._attach(conn, entity, raws, relations)
        mappers = entity.mappers_for(fields)
        mapped = {k: map_record(mappers, rec) for k, rec in records.items()}
        return {h: [mapped[k] for k in held[h]] for h in holders}

    async def _attach(
        self,
        conn: AsyncConnection,
        entity: _Entity,
        records: list[tuple[Row, Mapping[str, Any]]],
        relations: Mapping[str, frozenset[str] | None],
    ) -> None:
        """Read each join and children for all `records` (one query each), in place.

        Each record comes with its row as the driver gave it: the entity table's values
        are bound as they are (a date as a date, not its ISO text).
        """
        for name, reads in relations.items():
            join = entity.relation(name)
            other = entity.relations[name]
            parent_key, link_key = entity.links[name]
            is_join = name in entity.spec.joins
            wanted: dict[str, Any] = {}
            for _, raw in records:
                value = raw[join.parent_column]
                if value is None:
                    continue
                if parent_key.kind != link_key.kind:  # bound as this table's column holds it
                    value = link_key.bind(parent_key.text(value), postgres=self._postgres)
                    if value is None:
                        continue
                wanted.setdefault(parent_key.text(raw[join.parent_column]), value)
            names = set(other.c.keys()) if reads is None else {*reads, join.column}
            if join.order_by is not None:
                names.add(join.order_by)
            columns = [c.key for c in other.c if c.key in names]  # the table's order
            link = other.c[join.column]
            found: dict[str, list[Row]] = {}
            for chunk in _chunks(list(dict.fromkeys(wanted.values()))):
                statement = select(*(other.c[c] for c in columns)).where(link.in_(chunk))
                order: list[Any] = [link]
                if join.order_by is not None:
                    order.append(other.c[join.order_by].asc().nulls_last())
                order.extend(other.primary_key.columns or (other.c[c] for c in columns))
                statement = statement.order_by(*order)
                for row in await self._rows(conn, statement):
                    found.setdefault(link_key.text(row._mapping[join.column]), []).append(
                        _record(row, columns)
                    )
            for record, raw in records:
                value = raw[join.parent_column]
                rows = [] if value is None else found.get(parent_key.text(value), [])
                record[name] = (rows[0] if rows else None) if is_join else rows

    # -- health and closing ----------------------------------------------------------

    async def health(self) -> Health:
        """`SELECT 1` with the connector's timeout, with a permit of the rate limit free
        now (else `rate_limited`, no query: the breaker tells how reads go)."""
        if self._rate is not None and await self._rate.reserve(0) is None:
            return Health(ok=True, detail="rate_limited")
        started = time.perf_counter()
        try:
            if self._engine is None:
                self._engine = self._create_engine()
            async with asyncio.timeout(self.manifest.timeout_seconds):
                async with self._engine.connect() as conn:
                    await conn.execute(select(1))
        except TimeoutError:
            return Health(ok=False, detail="timeout")
        except (OSError, ManifestError, exc.SQLAlchemyError) as error:
            return Health(ok=False, detail=type(error).__name__)
        latency = (time.perf_counter() - started) * 1000
        return Health(ok=True, detail="ok", latency_ms=latency)

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
            self._opened = False


def _part(spec: MappingSpec) -> tuple[str, ...]:
    """Where in a field's mapping its source is named (for the line of an error)."""
    if isinstance(spec, str):
        return ()
    return ("from",) if spec.from_ is not None else ("expr",)


def _raw_sqlite_types(table: Table) -> None:
    """Let SQLite's text dates and numbers through as stored.

    SQLAlchemy parses SQLite's text dates while fetching (a malformed one would fail
    the whole query, where the mapping fails one field) and warns about decimals it
    reads as floats. Raw values map as JSON would: text dates, plain numbers.
    """
    for col in table.c:
        if isinstance(col.type, types.Date | types.DateTime | types.Time) or (
            isinstance(col.type, types.Numeric) and not isinstance(col.type, types.Float)
        ):
            col.type = types.NullType()
