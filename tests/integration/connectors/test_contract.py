"""One contract, every connector kind: what the gateway may rely on from any source.

The same land registry (three parcels, their co-holders, a certificate, a mortgage) is
served by a REST service over real HTTP, by the same service behind an X-Road style
security server, by a GraphQL service (strawberry), by a SQLite file and by a
PostgreSQL schema read as a role that may only `SELECT`; the same mapping reads each
(the GraphQL kind's documents select what it reads). Every test runs
against every kind: mapping (nested, computed, lists, missing fields), batching (one
call or a fixed number of queries for N keys), list lookups by holder, not found,
timeouts, credentials, purpose headers (HTTP kinds), and that a source is asked for
the fields requested and no others (the fields policy withheld never reach it).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import graphql
import pytest
import sqlalchemy as sa
import strawberry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.schema.config import StrawberryConfig

from connectors import (
    Connector,
    FetchContext,
    GraphqlConnector,
    ManifestError,
    RestConnector,
    SqlConnector,
    XroadConnector,
    parse_manifest,
    source_client,
)
from gateway.errors import SourceRejected, SourceTimeout
from policies import Purpose

AN, BINH, CUONG, ENTERPRISE = "079203001234", "001185000777", "036090000123", "0101234567"
P1, P2, P3 = "00004-12-101", "00004-12-102", "00007-3-5"
CTX = FetchContext(
    request_id="req-contract-1",
    client_id="VN/GOV/BTP/HTTP",
    purpose=Purpose("1.004222", "HS-2026/Đăng ký", "Cán bộ Lê Văn Tâm", (AN,)),
)
SECRET = "contract-" + secrets.token_hex(8)
HTTP_KINDS = ("rest", "xroad", "graphql")
XROAD_CLIENT = "VN/GOV/BCA/GATEWAY"
XROAD_SERVICE = "/r1/VN/GOV/BTNMT/DATDAI/thua-dat/v1"

# The logical source record: flat columns, one joined object, two lists of rows.
PARCELS: dict[str, dict[str, Any]] = {
    P1: {
        "ma_thua": P1,
        "ma_tinh": "01",
        "ma_xa": "00004",
        "ten_xa": "Phường Ba Đình",
        "dia_chi": "12 Phố Điện Biên Phủ",
        "dien_tich": 120.5,
        "muc_dich": "ODT",
        "so_to": 12,
        "so_thua": "101",
        "gcn": {"so_seri": "AA 00000001", "ngay_cap": "2015-06-01"},
        "chu": [
            {"ma_dinh_danh": AN, "ho_ten": "Nguyễn Văn An", "thu_tu": 1},
            {"ma_dinh_danh": BINH, "ho_ten": "Trần Thị Bình", "thu_tu": 2},
        ],
        "the_chap": [{"loai": "Thế chấp", "ben_nhan": "Vietcombank", "ngay_dang_ky": "2020-01-02"}],
    },
    P2: {
        "ma_thua": P2,
        "ma_tinh": "01",
        "ma_xa": "00004",
        "ten_xa": "Phường Ba Đình",
        "dia_chi": "Thửa đất nông nghiệp",
        "dien_tich": 500.0,
        "muc_dich": "LUC",
        "so_to": 12,
        "so_thua": "102",
        "gcn": None,
        "chu": [{"ma_dinh_danh": AN, "ho_ten": "Nguyễn Văn An", "thu_tu": 1}],
        "the_chap": [],
    },
    P3: {
        "ma_thua": P3,
        "ma_tinh": "79",
        "ma_xa": "00007",
        "ten_xa": "Phường Sài Gòn",
        "dia_chi": None,
        "dien_tich": 75.0,
        "muc_dich": "ODT",
        "so_to": 3,
        "so_thua": None,
        "gcn": {"so_seri": "CS 00000009", "ngay_cap": "2019-11-30"},
        "chu": [{"ma_dinh_danh": ENTERPRISE, "ho_ten": "Công ty TNHH Sen Vàng", "thu_tu": 1}],
        "the_chap": [],
    },
}

FIELDS: dict[str, Any] = {
    "parcelId": "ma_thua",
    "wardCode": {"expr": "to_int(ma_xa)"},
    "mapSheetNumber": {"expr": "to_string(so_to)"},
    "parcelNumber": "so_thua",
    "areaM2": "dien_tich",
    "landUse": {"expr": "lookup(muc_dich, 'uses')"},
    "address": {
        "expr": "{provinceCode: to_int(ma_tinh), wardCode: to_int(ma_xa), wardName: ten_xa, "
        "detail: dia_chi}"
    },
    "certificateSerial": "gcn.so_seri",
    "certificateIssuedOn": "gcn.ngay_cap",
    "holders": {"from": "chu", "fields": {"personalId": "ma_dinh_danh", "fullName": "ho_ten"}},
    "encumbrances": {
        "from": "the_chap",
        "fields": {"kind": "loai", "holder": "ben_nhan", "registeredOn": "ngay_dang_ky"},
    },
}
TABLES = {"uses": {"ODT": "Đất ở tại đô thị", "LUC": "Đất chuyên trồng lúa nước"}}
ALL = frozenset(FIELDS)

EXPECTED_P1 = {
    "parcelId": P1,
    "wardCode": 4,
    "mapSheetNumber": "12",
    "parcelNumber": "101",
    "areaM2": 120.5,
    "landUse": "Đất ở tại đô thị",
    "address": {
        "provinceCode": 1,
        "wardCode": 4,
        "wardName": "Phường Ba Đình",
        "detail": "12 Phố Điện Biên Phủ",
    },
    "certificateSerial": "AA 00000001",
    "certificateIssuedOn": "2015-06-01",
    "holders": [
        {"personalId": AN, "fullName": "Nguyễn Văn An"},
        {"personalId": BINH, "fullName": "Trần Thị Bình"},
    ],
    "encumbrances": [{"kind": "Thế chấp", "holder": "Vietcombank", "registeredOn": "2020-01-02"}],
}


# -- the three sources ------------------------------------------------------------------


@dataclass
class Source:
    """One kind serving the land registry, and what the contract observes of it."""

    kind: str
    manifest: dict[str, Any]
    calls: Callable[[], int]
    asked: Callable[[], set[str]]
    """Every source field or column named in what the connector sent since `reset`."""
    reset: Callable[[], None]
    hang: Callable[[], contextlib.AbstractContextManager[None]]
    headers: list[dict[str, str]] = field(default_factory=list)


def _base(name: str, kind: str, **settings: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "timeout_seconds": 0.5,
        "retries": 0,
        "tables": TABLES,
        **settings,
    }


def _public(record: dict[str, Any], fields: set[str] | None) -> dict[str, Any]:
    return {k: v for k, v in record.items() if fields is None or k in fields}


class _RestState:
    def __init__(self) -> None:
        self.calls = 0
        self.asked: set[str] = set()
        self.headers: list[dict[str, str]] = []
        self.delay = 0.0


def _rest_app(state: _RestState) -> Starlette:
    async def seen(request: Request, fields: list[str] | None) -> Response | None:
        state.calls += 1
        state.headers.append(dict(request.headers))
        if fields is not None:
            state.asked.update(fields)
        if state.delay:
            await asyncio.sleep(state.delay)
        if request.headers.get("x-api-key") != SECRET:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return None

    def wanted(request: Request) -> list[str] | None:
        text = request.query_params.get("fields")
        return None if text is None else text.split(",")

    async def one(request: Request) -> Response:
        fields = wanted(request)
        refused = await seen(request, fields)
        if refused is not None:
            return refused
        record = PARCELS.get(request.path_params["key"])
        if record is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse(_public(record, set(fields) if fields else None))

    async def batch(request: Request) -> Response:
        body = await request.json()
        fields = body.get("fields")
        refused = await seen(request, fields)
        if refused is not None:
            return refused
        found = [
            _public(PARCELS[k], set(fields) if fields else None)
            for k in body["keys"]
            if k in PARCELS
        ]
        return JSONResponse({"results": found})

    async def held(request: Request) -> Response:
        fields = wanted(request)
        refused = await seen(request, fields)
        if refused is not None:
            return refused
        holder = request.path_params["holder"]
        items = [
            _public(p, set(fields) if fields else None)
            for p in PARCELS.values()
            if any(c["ma_dinh_danh"] == holder for c in p["chu"])
        ]
        return JSONResponse({"items": items})

    return Starlette(
        routes=[
            Route("/parcels/{key}", one),
            Route("/parcels:batch", batch, methods=["POST"]),
            Route("/holders/{holder}/parcels", held),
        ]
    )


def _xroad_app(state: _RestState) -> ASGIApp:
    """The REST service as an X-Road security server serves it: under the service's
    `/r1/` path, refusing a call that names no client, answering a request hash."""
    inner = Starlette(routes=[Mount(XROAD_SERVICE, app=_rest_app(state))])

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await inner(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope["headers"]}
        if b"x-road-client" not in headers or b"x-road-id" not in headers:
            fault = JSONResponse(
                {"type": "Client.InvalidRequest", "message": "no X-Road-Client"},
                status_code=400,
                headers={"X-Road-Error": "Client.InvalidRequest"},
            )
            await fault(scope, receive, send)
            return
        asked = b"\n".join(
            [
                scope["method"].encode(),
                scope["raw_path"],
                scope["query_string"],
                headers[b"x-road-id"],
            ]
        )
        digest = base64.b64encode(hashlib.sha512(asked).digest())

        async def with_hash(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (b"x-road-request-hash", digest)]
            await send(message)

        await inner(scope, receive, with_hash)

    return app


@strawberry.type
class _Gcn:
    so_seri: str
    ngay_cap: str


@strawberry.type
class _Chu:
    ma_dinh_danh: str
    ho_ten: str
    thu_tu: int


@strawberry.type
class _TheChap:
    loai: str
    ben_nhan: str
    ngay_dang_ky: str


@strawberry.type
class _ThuaDat:
    ma_thua: str
    ma_tinh: str
    ma_xa: str
    ten_xa: str
    dia_chi: str | None
    dien_tich: float
    muc_dich: str
    so_to: int
    so_thua: str | None
    gcn: _Gcn | None
    chu: list[_Chu]
    the_chap: list[_TheChap]


def _thua_dat(record: dict[str, Any]) -> _ThuaDat:
    return _ThuaDat(
        **{k: v for k, v in record.items() if k not in ("gcn", "chu", "the_chap")},
        gcn=None if record["gcn"] is None else _Gcn(**record["gcn"]),
        chu=[_Chu(**c) for c in record["chu"]],
        the_chap=[_TheChap(**m) for m in record["the_chap"]],
    )


@strawberry.type
class _Query:
    @strawberry.field(name="thuaDat")
    def thua_dat(
        self, ma_thua: Annotated[str, strawberry.argument(name="maThua")]
    ) -> _ThuaDat | None:
        record = PARCELS.get(ma_thua)
        return None if record is None else _thua_dat(record)

    @strawberry.field(name="thuaDats")
    def thua_dats(
        self, ma_thuas: Annotated[list[str], strawberry.argument(name="maThuas")]
    ) -> list[_ThuaDat]:
        return [_thua_dat(PARCELS[k]) for k in ma_thuas if k in PARCELS]

    @strawberry.field(name="thuaDatTheoChu")
    def theo_chu(
        self, ma_dinh_danh: Annotated[str, strawberry.argument(name="maDinhDanh")]
    ) -> list[_ThuaDat]:
        return [
            _thua_dat(p)
            for p in PARCELS.values()
            if any(c["ma_dinh_danh"] == ma_dinh_danh for c in p["chu"])
        ]


# Root fields and arguments camelCase (`thuaDat(maThua:)`), record fields as they are.
_SCHEMA = strawberry.Schema(query=_Query, config=StrawberryConfig(auto_camel_case=False))
_GRAPHQL_ROOTS = {"thuaDat", "thuaDats", "thuaDatTheoChu"}


def _selected_fields(document: str) -> set[str]:
    """Every field a query document selects below its root fields."""
    names: set[str] = set()

    class Visitor(graphql.Visitor):
        def enter_field(self, node: graphql.FieldNode, *_args: Any) -> None:
            if node.name.value not in _GRAPHQL_ROOTS:
                names.add(node.name.value)

    graphql.visit(graphql.parse(document), Visitor())
    return names


def _graphql_app(state: _RestState) -> Starlette:
    """The land registry as a GraphQL service: `thuaDat`, `thuaDats`, `thuaDatTheoChu`."""

    async def query(request: Request) -> Response:
        body = await request.json()
        state.calls += 1
        state.headers.append(dict(request.headers))
        state.asked.update(_selected_fields(body["query"]))
        if state.delay:
            await asyncio.sleep(state.delay)
        if request.headers.get("x-api-key") != SECRET:
            return JSONResponse({"errors": [{"message": "unauthorized"}]}, status_code=401)
        result = await _SCHEMA.execute(body["query"], variable_values=body.get("variables"))
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [e.formatted for e in result.errors]
        return JSONResponse(answer)

    return Starlette(routes=[Route("/graphql", query, methods=["POST"])])


DDL = [
    "CREATE TABLE thua_dat (ma_thua VARCHAR(40) PRIMARY KEY, ma_tinh VARCHAR(2), "
    "ma_xa VARCHAR(5), ten_xa VARCHAR(100), dia_chi VARCHAR(200), dien_tich REAL, "
    "muc_dich VARCHAR(8), so_to INTEGER, so_thua VARCHAR(10))",
    "CREATE TABLE gcn (ma_thua VARCHAR(40), so_seri VARCHAR(20), ngay_cap DATE)",
    "CREATE TABLE chu (ma_thua VARCHAR(40), ma_dinh_danh VARCHAR(12), ho_ten VARCHAR(100), "
    "thu_tu INTEGER)",
    "CREATE TABLE the_chap (ma_thua VARCHAR(40), loai VARCHAR(40), ben_nhan VARCHAR(100), "
    "ngay_dang_ky DATE)",
]
COLUMNS = ["ma_thua", "ma_tinh", "ma_xa", "ten_xa", "dia_chi", "dien_tich", "muc_dich", "so_to"]


def _rows() -> dict[str, list[tuple[Any, ...]]]:
    rows: dict[str, list[tuple[Any, ...]]] = {"thua_dat": [], "gcn": [], "chu": [], "the_chap": []}
    for p in PARCELS.values():
        rows["thua_dat"].append(tuple(p[c] for c in [*COLUMNS, "so_thua"]))
        if p["gcn"] is not None:
            rows["gcn"].append((p["ma_thua"], p["gcn"]["so_seri"], p["gcn"]["ngay_cap"]))
        for c in p["chu"]:
            rows["chu"].append((p["ma_thua"], c["ma_dinh_danh"], c["ho_ten"], c["thu_tu"]))
        for m in p["the_chap"]:
            rows["the_chap"].append((p["ma_thua"], m["loai"], m["ben_nhan"], m["ngay_dang_ky"]))
    return rows


SQL_ENTITY = {
    "table": "thua_dat",
    "key_field": "ma_thua",
    "joins": {"gcn": {"table": "gcn", "match": {"ma_thua": "ma_thua"}}},
    "children": {
        "chu": {"table": "chu", "match": {"ma_thua": "ma_thua"}, "order_by": "thu_tu"},
        "the_chap": {"table": "the_chap", "match": {"ma_thua": "ma_thua"}},
    },
    "lists": {"holder": {"column": "ma_dinh_danh", "through": "chu"}},
    "fields": FIELDS,
}


class _Statements:
    """The SQL statements a connector's engine runs, caught as they are sent."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def attach(self, connector: Connector) -> None:
        engine = connector._engine  # type: ignore[attr-defined]
        assert engine is not None
        sa.event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.texts.append(statement)

    def columns(self) -> set[str]:
        names = {c for p in PARCELS.values() for c in p} | {
            "ma_dinh_danh",
            "ho_ten",
            "thu_tu",
            "so_seri",
            "ngay_cap",
            "loai",
            "ben_nhan",
            "ngay_dang_ky",
        }
        return {n for n in names if any(n in t for t in self.texts)}

    def reads(self) -> int:
        return sum(1 for t in self.texts if t.lstrip().upper().startswith("SELECT"))


@pytest.fixture(scope="module")
def rest_source(start_server: Callable[[Any], Any]) -> tuple[str, _RestState]:
    state = _RestState()
    return start_server(_rest_app(state)).url, state


@pytest.fixture(scope="module")
def xroad_source(start_server: Callable[[Any], Any]) -> tuple[str, _RestState]:
    state = _RestState()
    return start_server(_xroad_app(state)).url, state


@pytest.fixture(scope="module")
def graphql_source(start_server: Callable[[Any], Any]) -> tuple[str, _RestState]:
    state = _RestState()
    return start_server(_graphql_app(state)).url, state


@pytest.fixture(scope="module")
def sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("land") / "land.db"
    with sqlite3.connect(path) as db:
        for statement in DDL:
            db.execute(statement)
        for table, rows in _rows().items():
            marks = ",".join("?" * len(rows[0]))
            db.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    return path


@dataclass
class _Postgres:
    schema: str
    role: str
    password: str
    admin: str = ""


@pytest.fixture(scope="module")
def postgres_land(postgres_admin: str) -> Iterator[_Postgres]:
    token = secrets.token_hex(4)
    land = _Postgres(
        f"contract_{token}", f"contract_reader_{token}", secrets.token_hex(12), postgres_admin
    )

    async def setup() -> None:
        conn = await asyncpg.connect(postgres_admin)
        try:
            await conn.execute(f"CREATE SCHEMA {land.schema}")
            for statement in DDL:
                await conn.execute(
                    statement.replace("CREATE TABLE ", f"CREATE TABLE {land.schema}.")
                )
            for table, rows in _rows().items():
                converted = [
                    tuple(
                        _date(v) if isinstance(v, str) and v[:4].isdigit() and v[4:5] == "-" else v
                        for v in row
                    )
                    for row in rows
                ]
                await conn.copy_records_to_table(table, records=converted, schema_name=land.schema)
            await conn.execute(f"CREATE ROLE {land.role} LOGIN PASSWORD '{land.password}'")
            await conn.execute(f"CREATE ROLE {land.role}_none LOGIN")
            await conn.execute(f"GRANT USAGE ON SCHEMA {land.schema} TO {land.role}")
            await conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {land.schema} TO {land.role}")
        finally:
            await conn.close()

    async def teardown() -> None:
        conn = await asyncpg.connect(postgres_admin)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {land.schema} CASCADE")
            await conn.execute(f"DROP ROLE IF EXISTS {land.role}")
            await conn.execute(f"DROP ROLE IF EXISTS {land.role}_none")
        finally:
            await conn.close()

    asyncio.run(setup())
    yield land
    asyncio.run(teardown())


def _date(text: str) -> Any:
    import datetime

    return datetime.date.fromisoformat(text)


@contextlib.contextmanager
def _sqlite_locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock: readers of the file wait behind it."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        db.execute("ROLLBACK")
        db.close()


@contextlib.contextmanager
def _postgres_locked(admin: str, schema: str) -> Iterator[None]:
    """Hold an ACCESS EXCLUSIVE lock on the parcels, from another session, in a thread."""
    ready, release = threading.Event(), threading.Event()

    async def hold() -> None:
        conn = await asyncpg.connect(admin)
        try:
            async with conn.transaction():
                await conn.execute(f"LOCK TABLE {schema}.thua_dat IN ACCESS EXCLUSIVE MODE")
                ready.set()
                await asyncio.get_running_loop().run_in_executor(None, release.wait)
        finally:
            await conn.close()

    thread = threading.Thread(target=asyncio.run, args=(hold(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield
    finally:
        release.set()
        thread.join(10)


GRAPHQL_ENTITY = {
    "key_field": "ma_thua",
    "query_field": "thuaDat",
    "key_argument": "maThua",
    "batch_field": "thuaDats",
    "batch_argument": "maThuas",
    "key_type": "String!",
    "lists": {"holder": {"field": "thuaDatTheoChu", "argument": "maDinhDanh"}},
    "fields": FIELDS,
}


@pytest.fixture(params=["rest", "xroad", "graphql", "sqlite", "postgresql"])
def source(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Source:
    monkeypatch.setenv("SOURCE_CONTRACT_SECRET", SECRET)
    if request.param in HTTP_KINDS:
        url, state = request.getfixturevalue(f"{request.param}_source")
        state.calls, state.asked, state.delay = 0, set(), 0.0
        state.headers.clear()

        @contextlib.contextmanager
        def slow() -> Iterator[None]:
            state.delay = 2.0
            try:
                yield
            finally:
                state.delay = 0.0

        def reset() -> None:
            state.calls, state.asked = 0, set()

        xroad = request.param == "xroad"
        rest_entity = {
            **({"service": "thua-dat", "version": "v1"} if xroad else {}),
            "key_field": "ma_thua",
            "get": "/parcels/{key}",
            "fields_param": "fields",
            "batch": {
                "path": "/parcels:batch",
                "keys_field": "keys",
                "fields_field": "fields",
                "results_field": "results",
            },
            "lists": {"holder": {"get": "/holders/{key}/parcels", "list_field": "items"}},
            "fields": FIELDS,
        }
        manifest = _base(
            f"land-{request.param}",
            request.param,
            base_url=url,
            auth={"type": "api_key", "key": {"ref": "env:SOURCE_CONTRACT_SECRET"}},
            **(
                {
                    "client": XROAD_CLIENT,
                    "service": {
                        "instance": "VN",
                        "member_class": "GOV",
                        "member_code": "BTNMT",
                        "subsystem": "DATDAI",
                    },
                }
                if xroad
                else {}
            ),
            entities={"LandParcel": GRAPHQL_ENTITY if request.param == "graphql" else rest_entity},
        )
        return Source(
            request.param,
            manifest,
            lambda: state.calls,
            lambda: state.asked,
            reset,
            slow,
            state.headers,
        )
    statements = _Statements()
    if request.param == "sqlite":
        path = request.getfixturevalue("sqlite_file")
        manifest = _base(
            "land-sqlite",
            "sql",
            database={"url": f"sqlite:///{path}"},
            entities={"LandParcel": SQL_ENTITY},
        )
        hang: Callable[[], contextlib.AbstractContextManager[None]] = lambda: _sqlite_locked(path)  # noqa: E731
    else:
        land: _Postgres = request.getfixturevalue("postgres_land")
        monkeypatch.setenv("SOURCE_CONTRACT_PG_USER", land.role)
        monkeypatch.setenv("SOURCE_CONTRACT_PG_PASSWORD", land.password)
        manifest = _base(
            "land-pg",
            "sql",
            database={
                "url": "postgresql://127.0.0.1:5432/test",
                "schema": land.schema,
                "user": {"ref": "env:SOURCE_CONTRACT_PG_USER"},
                "password": {"ref": "env:SOURCE_CONTRACT_PG_PASSWORD"},
            },
            entities={"LandParcel": SQL_ENTITY},
        )
        hang = lambda: _postgres_locked(land.admin, land.schema)  # noqa: E731
    source = Source(
        request.param,
        manifest,
        statements.reads,
        statements.columns,
        statements.texts.clear,
        hang,
    )
    source.statements = statements  # type: ignore[attr-defined]
    if request.param == "postgresql":
        source.admin = land.admin  # type: ignore[attr-defined]
    return source


@contextlib.asynccontextmanager
async def _connector(source: Source) -> AsyncIterator[Connector]:
    manifest = parse_manifest(source.manifest)
    http = source_client("aiohttp")
    kinds: dict[str, Any] = {
        "rest": RestConnector,
        "xroad": XroadConnector,
        "graphql": GraphqlConnector,
    }
    connector: Any = kinds.get(source.kind, SqlConnector)(manifest, http=http)
    try:
        await connector.open()
        if source.kind not in HTTP_KINDS:
            source.statements.attach(connector)  # type: ignore[attr-defined]
        yield connector
    finally:
        await connector.aclose()
        await http.aclose()


# -- the contract ---------------------------------------------------------------------


async def test_mapping_nested_computed_lists_and_missing_fields(source: Source) -> None:
    async with _connector(source) as connector:
        found = await connector.fetch("LandParcel", [P1, P2, P3], ALL, CTX)
    assert found[P1] == EXPECTED_P1
    # No certificate: the joined object is missing, and so are the fields read from it.
    assert found[P2]["certificateSerial"] is None
    assert found[P2]["certificateIssuedOn"] is None
    assert found[P2]["encumbrances"] == []
    assert found[P2]["landUse"] == "Đất chuyên trồng lúa nước"
    # A column or member with no value: a null field, the rest served.
    assert found[P3]["parcelNumber"] is None
    assert found[P3]["address"] == {
        "provinceCode": 79,
        "wardCode": 7,
        "wardName": "Phường Sài Gòn",
        "detail": None,
    }
    assert found[P3]["holders"] == [{"personalId": ENTERPRISE, "fullName": "Công ty TNHH Sen Vàng"}]


async def test_a_batch_of_keys_costs_what_one_key_costs(source: Source) -> None:
    async with _connector(source) as connector:
        await connector.fetch("LandParcel", [P1], ALL, CTX)
        one = source.calls()
        source.reset()
        found = await connector.fetch("LandParcel", [P1, P2, P3, "00001-1-1"], ALL, CTX)
        many = source.calls()
    assert {k for k, v in found.items() if v is not None} == {P1, P2, P3}
    # REST: one call to the batch endpoint; SQL: one query per table, for any N.
    assert many == (1 if source.kind in HTTP_KINDS else one)
    assert one >= 1


async def test_lists_by_holder(source: Source) -> None:
    fields = frozenset({"parcelId", "holders"})
    async with _connector(source) as connector:
        found = await connector.fetch("LandParcel", [AN, BINH, CUONG], fields, CTX, by="holder")
    assert sorted(p["parcelId"] for p in found[AN]) == [P1, P2]  # type: ignore[union-attr, index]
    assert [p["parcelId"] for p in found[BINH]] == [P1]  # type: ignore[union-attr, index]
    # Co-holders are listed with each parcel, whoever asked.
    [p1] = found[BINH]  # type: ignore[misc]
    assert [h["personalId"] for h in p1["holders"]] == [AN, BINH]
    # Holding nothing is an answer: an empty list, or none at all.
    assert not found.get(CUONG)


async def test_a_key_not_found_is_none(source: Source) -> None:
    async with _connector(source) as connector:
        found = await connector.fetch("LandParcel", ["99999-9-9"], ALL, CTX)
    assert found.get("99999-9-9") is None


async def test_a_source_that_hangs_times_out(source: Source) -> None:
    async with _connector(source) as connector:
        await connector.fetch("LandParcel", [P1], frozenset({"parcelId"}), CTX)  # warm
        with source.hang():
            started = time.monotonic()
            with pytest.raises(SourceTimeout):
                await connector.fetch("LandParcel", [P2], frozenset({"areaM2"}), CTX)
            waited = time.monotonic() - started
    assert waited < 2.0  # the manifest's 0.5 s, not the source's pace


# A SQLite file has no credentials (it is opened read-only): the kinds that have them.
WITH_CREDENTIALS = pytest.mark.parametrize(
    "source", ["rest", "xroad", "graphql", "postgresql"], indirect=True
)


@WITH_CREDENTIALS
async def test_credentials_are_sent(source: Source) -> None:
    async with _connector(source) as connector:
        found = await connector.fetch("LandParcel", [P1], frozenset({"parcelId"}), CTX)
        assert found[P1] is not None
        if source.kind == "postgresql":
            # The connection the connector keeps open signed in as the role its
            # manifest names by reference, not as whoever runs the gateway.
            conn = await asyncpg.connect(source.admin)  # type: ignore[attr-defined]
            try:
                users = await conn.fetch(
                    "SELECT usename FROM pg_stat_activity WHERE application_name = $1",
                    "gateway-land-pg",
                )
            finally:
                await conn.close()
            # Other test runs' connectors may be connected too, each as its own reader.
            names = {u["usename"] for u in users}
            assert os.environ["SOURCE_CONTRACT_PG_USER"] in names
            assert all(name.startswith("contract_reader_") for name in names), names
    if source.kind in HTTP_KINDS:
        assert all(h.get("x-api-key") == SECRET for h in source.headers)


@WITH_CREDENTIALS
async def test_credentials_that_are_refused_fail_as_unavailable(
    source: Source, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_CONTRACT_SECRET", "wrong-" + SECRET)
    if source.kind == "postgresql":
        # A role that exists but was granted nothing: the schema is not readable by it.
        monkeypatch.setenv(
            "SOURCE_CONTRACT_PG_USER", os.environ["SOURCE_CONTRACT_PG_USER"] + "_none"
        )
    with pytest.raises(Exception) as caught:
        async with _connector(source) as connector:
            await connector.fetch("LandParcel", [P1], frozenset({"parcelId"}), CTX)
    # Refused at the first call (REST) or when the connector opens and reads the
    # database's schema (SQL): either way a stable error, and never the secret.
    error = caught.value
    assert isinstance(error, SourceRejected | ManifestError), repr(error)
    assert SECRET not in str(error)
    assert SECRET not in repr(error)


@pytest.mark.parametrize("source", HTTP_KINDS, indirect=True)  # the kinds that speak HTTP
async def test_purpose_headers_are_sent(source: Source) -> None:
    evidence: list[tuple[str, str, str]] = []

    class Sink:
        def add(self, source: str, kind: str, value: str) -> None:
            evidence.append((source, kind, value))

    ctx = dataclasses.replace(CTX, evidence=Sink())
    async with _connector(source) as connector:
        await connector.fetch("LandParcel", [P1], frozenset({"parcelId"}), ctx)
        await connector.fetch("LandParcel", [AN], frozenset({"parcelId"}), ctx, by="holder")
    if source.kind == "xroad":
        # The security server's hash of each call is handed over as evidence of what was
        # asked; the other kinds have none.
        assert [k for _, k, _ in evidence] == ["xroadRequestHashes"] * 2
        assert all(len(base64.b64decode(h)) == 64 for _, _, h in evidence)
    else:
        assert evidence == []
    # X-Road: the gateway's own subsystem is the client the security server authorises.
    client = XROAD_CLIENT if source.kind == "xroad" else "VN/GOV/BTP/HTTP"
    for headers in source.headers:
        assert headers["x-road-id"] == "req-contract-1"
        assert headers["x-road-client"] == client
        assert headers["x-road-issue"] == "HS-2026/%C4%90%C4%83ng%20k%C3%BD"
        assert headers["x-road-userid"] == "C%C3%A1n%20b%E1%BB%99%20L%C3%AA%20V%C4%83n%20T%C3%A2m"


async def test_only_the_fields_requested_are_asked_of_the_source(source: Source) -> None:
    # What policy withheld is never among the fields a connector is given: it must ask
    # for no more than it is given, neither by key nor by holder.
    wanted = frozenset({"parcelId", "areaM2"})
    async with _connector(source) as connector:
        found = await connector.fetch("LandParcel", [P1, P2], wanted, CTX)
        listed = await connector.fetch("LandParcel", [AN], wanted, CTX, by="holder")
    assert set(found[P1]) == wanted  # type: ignore[arg-type]
    assert all(set(p) == wanted for p in listed[AN])  # type: ignore[union-attr]
    asked = source.asked()
    withheld = {"ho_ten", "ma_tinh", "ten_xa", "dia_chi", "so_seri", "ben_nhan", "muc_dich"}
    assert not asked & withheld, asked
    if source.kind in HTTP_KINDS:
        assert asked == {"ma_thua", "dien_tich"}
    else:
        # The holder's column is read to find their parcels; no co-holder's name is.
        assert "dien_tich" in asked
