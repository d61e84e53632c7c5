"""Real servers for integration tests: sandboxes, gateways, PostgreSQL, Redis.

Every server is a real uvicorn on an ephemeral loopback port, so the gateway talks
HTTP to the sandboxes exactly as in production. PostgreSQL and Redis tests run when the
service answers; under CI=true a missing service fails the run instead of skipping.

Tests share what is slow to make: per backend, one migrated database and one running
gateway per configuration. They stay independent all the same, because each test
signs with a client of its own (fresh id and key) and reads people no other test
reads (`dataset.sample` is a fresh slice of the synthetic population per test). A test
that edits rows, counts totals, stops a gateway or its sequencer, or records other
connector manifests is marked `own_database`: it gets a fresh database, keys and
gateways of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import datetime
import functools
import itertools
import os
import random
import re
import socket
import subprocess
import sys
import threading
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import pytest_asyncio
import uvicorn
import yaml
from pydantic import SecretStr

import sandbox
from gateway.admission import ClientRegistry, add_local_key, sign_request
from gateway.config import DEVELOPMENT_PLATFORM_ORG, GatewaySettings
from gateway.errors import InvalidIdentifier
from gateway.identifiers import EnterpriseCode, HouseholdId, PersonalId
from gateway.records import AdminRecorder, admin_recorder
from gateway.storage import create_engine, upgrade
from gateway.web import DEMO_CLIENT, create_app
from policies import CATALOGUE_DIR, SENSITIVE_FIELDS, AgencyKind, Purpose, load_catalogue
from sandbox import (
    SandboxSettings,
    business,
    civil,
    dossiers,
    generate,
    insurance,
    issuer,
    land,
    population,
)
from schema import canonical_fields

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
MANIFESTS = Path(sandbox.__file__).parent / "manifests"
CITIZENS = 4_000
AUDIENCE = "http://127.0.0.1:8000"
POOLED_GATEWAYS = 4
"""Gateways kept running per shared database; the least recently used one stops first."""

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from synchronous code, whatever loop is running here."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    """A port of 127.0.0.1 no server holds, for a process a test starts to bind.

    Taken below the kernel's range of ephemeral ports: a port the kernel hands out for
    port 0 is also its pick for the source of an outgoing connection, and under the
    suite's load one took such a port between this check and the server's bind.
    """
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(200):
        port = random.randint(10_000, low - 1)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def require_service(name: str, port: int) -> None:
    """Skip when the service is down, except under CI, where that is a failure."""
    if _answers(port):
        return
    message = f"{name} does not answer on 127.0.0.1:{port}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI requires it", pytrace=False)
    pytest.skip(message)


class ServerThread:
    """A uvicorn server in a thread of its own, on an ephemeral loopback port."""

    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ServerThread:
        self.thread.start()
        for _ in range(600):
            if self.server.started:
                break
            if not self.thread.is_alive():
                raise RuntimeError("server failed to start")
            threading.Event().wait(0.05)
        else:
            raise RuntimeError("server did not start in 30 s")
        return self

    @property
    def url(self) -> str:
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


# -- the sandbox agencies and sign-in issuer (one each per session) -----------------------


@pytest.fixture(scope="session")
def manifests() -> Path:
    """The sandbox agencies' connector manifests."""
    return MANIFESTS


@pytest.fixture(scope="session")
def sandbox_settings() -> SandboxSettings:
    return SandboxSettings(citizens=CITIZENS)


@pytest.fixture(scope="session")
def population_data() -> sandbox.Dataset:
    """The synthetic population, with every id worth querying in its sample."""
    return generate(SandboxSettings(citizens=CITIZENS, sample_size=CITIZENS))


class _Slices:
    """Hands out slices of a sequence, a fresh one each time (round and round)."""

    def __init__(self, items: tuple[T, ...], size: int) -> None:
        self._items, self._size = items, size
        self._starts = itertools.cycle(range(0, max(1, len(items) - size + 1), size))

    def next(self) -> tuple[Any, ...]:
        start = next(self._starts)
        return self._items[start : start + self._size]


@pytest.fixture(scope="session")
def _sample_slices(population_data: sandbox.Dataset) -> dict[str, _Slices]:
    sample = population_data.sample
    return {
        "citizens": _Slices(sample.citizens, 8),
        "households": _Slices(sample.households, 3),
        "businesses": _Slices(sample.businesses, 2),
    }


@pytest.fixture
def dataset(population_data: sandbox.Dataset, _sample_slices: dict[str, _Slices]) -> Any:
    """The population, whose `sample` names people no other test of this run reads."""
    fresh = sandbox.Sample(
        citizens=_sample_slices["citizens"].next(),
        households=_sample_slices["households"].next(),
        businesses=_sample_slices["businesses"].next(),
    )
    return dataclasses.replace(population_data, sample=fresh)


def with_phone(dataset: Any) -> str:
    """The first citizen of `dataset`'s sample whose record holds a phone number: not
    every one's does, and each test's slice of the sample is another."""
    return next(p for p in dataset.sample.citizens if dataset.citizens[p].get("so_dien_thoai"))


@pytest.fixture(scope="session")
def start_server() -> Iterator[Callable[[Any], ServerThread]]:
    started: list[ServerThread] = []

    def start(app: Any) -> ServerThread:
        server = ServerThread(app).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def population_url(
    population_data: sandbox.Dataset, start_server: Callable[[Any], ServerThread]
) -> str:
    app = population.create_app(SandboxSettings(citizens=CITIZENS), population_data)
    return start_server(app).url


@pytest.fixture(scope="session")
def land_url(tmp_path_factory: pytest.TempPathFactory, population_data: sandbox.Dataset) -> str:
    """The land registry of the same population, a SQLite file (`sandbox/manifests/land.yaml`)."""
    path = tmp_path_factory.mktemp("land") / "land.db"
    land.write_sqlite(path, land.build(SandboxSettings(citizens=CITIZENS), population_data))
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def business_url(
    population_data: sandbox.Dataset, start_server: Callable[[Any], ServerThread]
) -> str:
    app = business.create_app(SandboxSettings(citizens=CITIZENS), population_data)
    return start_server(app).url


@pytest.fixture(scope="session")
def insurance_url(
    population_data: sandbox.Dataset, start_server: Callable[[Any], ServerThread]
) -> str:
    """The insurance agency of the same population, X-Road style (`insurance.yaml`)."""
    app = insurance.create_app(SandboxSettings(citizens=CITIZENS), population_data)
    return start_server(app).url


@pytest.fixture(scope="session")
def civil_url(population_data: sandbox.Dataset, start_server: Callable[[Any], ServerThread]) -> str:
    """The civil-status registry of the same population, GraphQL (`civil.yaml`)."""
    app = civil.create_app(SandboxSettings(citizens=CITIZENS), population_data)
    return start_server(app).url


@pytest.fixture(scope="session")
def dossier_book(population_data: sandbox.Dataset) -> Any:
    """The dossier registry's dossiers: the tests receive theirs and change statuses."""
    from sandbox import _dossiers

    return _dossiers.build(population_data, SandboxSettings(citizens=CITIZENS).seed)


@pytest.fixture(scope="session")
def dossiers_url(
    population_data: sandbox.Dataset,
    dossier_book: Any,
    start_server: Callable[[Any], ServerThread],
) -> str:
    """The dossier registry of the one-stop shop, REST (`dossiers.yaml`)."""
    app = dossiers.create_app(SandboxSettings(citizens=CITIZENS), population_data, dossier_book)
    return start_server(app).url


class DossierDesk:
    """A one-stop desk receiving dossiers at the sandbox's dossier registry, over HTTP."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def receive(
        self,
        persons: list[str],
        *,
        procedure: str = "1.013831",
        organisation: str = "VN/GOV/TEST",
        status: str = "DANG_XU_LY",
        handlers: list[str] | None = None,
    ) -> str:
        """A dossier naming `persons` (the first is the applicant); its code."""
        roles = ["NGUOI_NOP", *["VO_CHONG_NGUOI_NOP"] * (len(persons) - 1)]
        body: dict[str, Any] = {
            "ma_thu_tuc": procedure,
            "co_quan_tiep_nhan": organisation,
            "trang_thai": status,
            "nguoi_lien_quan": [
                {"ma_dinh_danh": p, "vai_tro": r} for p, r in zip(persons, roles, strict=True)
            ],
        }
        if handlers is not None:
            body["co_quan_xu_ly"] = handlers
        async with httpx.AsyncClient() as http:
            response = await http.post(f"{self.url}/_sandbox/ho-so", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["ma_ho_so"])

    async def set_status(self, code: str, status: str) -> None:
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{self.url}/_sandbox/ho-so/{code}/trang-thai", json={"trang_thai": status}
            )
        assert response.status_code == 200, response.text


@pytest.fixture
def dossier_desk(dossiers_url: str) -> DossierDesk:
    """Receives dossiers at the dossier registry, as the test clients' organisation
    (`VN/GOV/TEST`) by default, and changes their statuses."""
    return DossierDesk(dossiers_url)


class LateApp:
    """An ASGI app bound after the server has its port: the issuer must know its URL."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await self.app(scope, receive, send)


@pytest.fixture(scope="session")
def start_issuer(start_server: Callable[[Any], ServerThread]) -> Callable[[str], str]:
    """Start a sandbox sign-in issuer for an audience; returns its URL (its `iss`)."""

    def start(audience: str) -> str:
        late = LateApp()
        url = start_server(late).url
        late.app = issuer.create_app(SandboxSettings(issuer_url=url, issuer_audience=audience))
        return url

    return start


@pytest.fixture(scope="session")
def issuer_url(start_issuer: Callable[[str], str]) -> str:
    """The sandbox sign-in issuer, for tokens whose audience is the test gateways."""
    return start_issuer(AUDIENCE)


# -- PostgreSQL and Redis ---------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_admin() -> str:
    require_service("PostgreSQL", 5432)
    return POSTGRES_ADMIN


@pytest.fixture(scope="session")
def redis_url() -> str:
    require_service("Redis", 6379)
    return REDIS_URL


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


@contextlib.contextmanager
def _new_database(backend: str, folder: Path) -> Iterator[str]:
    """A new, empty database of `backend` (PostgreSQL: a database of its own)."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{folder / 'gateway.db'}"
        return
    name = f"gw_test_{uuid.uuid4().hex[:12]}"
    run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# -- where a test's gateways keep their state ---------------------------------------------


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend; tests run on each (a module may narrow it, indirectly)."""
    if request.param == "postgresql":
        request.getfixturevalue("postgres_admin")
    return str(request.param)


@dataclass(frozen=True)
class Place:
    """A migrated database and the key folders of the gateways that use it."""

    database_url: str
    keys_dir: Path
    client_keys_dir: Path
    shared: bool


@pytest.fixture(scope="session")
def shared_place(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Place]:
    """The database every test of this backend shares, migrated once."""
    folder = tmp_path_factory.mktemp(f"shared-{backend}")
    with _new_database(backend, folder) as url:
        run(_migrate(url))
        yield Place(url, folder / "keys", folder / "client-keys", shared=True)


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of the backend."""
    with _new_database(backend, tmp_path) as url:
        yield url


@pytest.fixture
def place(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Place:
    """The shared place, or a fresh one for a test marked `own_database`."""
    if request.node.get_closest_marker("own_database") is None:
        shared: Place = request.getfixturevalue("shared_place")
        return shared
    url = request.getfixturevalue("database_url")
    run(_migrate(url))
    return Place(url, tmp_path / "keys", tmp_path / "client-keys", shared=False)


@pytest.fixture
def migrated(place: Place) -> str:
    """The URL of the test's migrated database (shared unless `own_database`)."""
    return place.database_url


# -- clients that sign requests -----------------------------------------------------------

EVERY_FIELD = "LOCAL.test-every-field"
_IDS = re.compile(r"(?<![0-9])([0-9]{12}|[0-9]{10}(?:-[0-9]{3})?)(?![0-9])|\b(HO[0-9]{6,})\b")


def subjects_in(text: str) -> list[str]:
    """Personal ids, enterprise codes and household ids written in `text`."""
    found = []
    for number, household in _IDS.findall(text):
        value = number or household
        for kind in (PersonalId, EnterpriseCode, HouseholdId):
            try:
                found.append(kind(value).value)
                break
            except InvalidIdentifier:
                continue
    return list(dict.fromkeys(found))[:50]


@dataclass
class Signer:
    """Signs request tokens as a registered test client."""

    client_id: str
    key: Any
    kid: str
    audience: str

    def sign(
        self,
        body: bytes,
        *,
        procedure: str = EVERY_FIELD,
        subjects: list[str] | None = None,
        case: str = "CASE-2026-0001",
        officer: str = "officer-7",
        hidden_until: datetime.datetime | None = None,
        **options: Any,
    ) -> str:
        chosen = subjects_in(body.decode("utf-8", "replace")) if subjects is None else subjects
        return sign_request(
            client_id=self.client_id,
            key=self.key,
            kid=self.kid,
            audience=options.pop("audience", self.audience),
            body=body,
            purpose=Purpose(procedure, case, officer, tuple(chosen), hidden_until),
            **options,
        )


class SigningAuth(httpx.Auth):
    """Signs every request to /graphql: the POST body, or the GET query string."""

    def __init__(self, signer: Signer, **purpose: Any) -> None:
        self.signer = signer
        self.purpose = purpose

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        if request.url.path == "/graphql":
            raw = request.url.query if request.method == "GET" else request.content
            token = self.signer.sign(raw, **self.purpose)
            request.headers["Authorization"] = f"Bearer {token}"
        yield request


@functools.cache
def registry_recorder() -> AdminRecorder:
    """The `admin` records of the tests' own changes to the client registry."""
    return admin_recorder(
        pseudonym_key=b"integration tests",
        policy_version=load_catalogue(CATALOGUE_DIR, canonical=canonical_fields()).version,
        operator="cli:integration-tests",
        operator_org=None,
    )


async def register_client(
    database_url: str,
    keys_dir: Path,
    client_id: str,
    kinds: list[str] | None = None,
    organisation: str = "Test agency",
) -> tuple[Any, str]:
    """Register a client with a fresh Ed25519 key; returns (private key, kid)."""
    engine = create_engine(database_url)
    try:
        registry = ClientRegistry(engine)
        await registry.add(
            client_id,
            name="Integration tests",
            organisation=organisation,
            agency_kinds=kinds or [k.value for k in AgencyKind],
            record=registry_recorder(),
        )
        key, kid = await add_local_key(registry, keys_dir, client_id, record=registry_recorder())
    finally:
        await engine.dispose()
    return key, kid


def _unique(client_id: str) -> str:
    return f"{client_id}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def signer(place: Place) -> Signer:
    """The test's own client: a fresh id and key, every agency kind, "Test agency"."""
    client_id = _unique("VN/GOV/TEST/integration")
    key, kid = run(register_client(place.database_url, place.client_keys_dir, client_id))
    return Signer(client_id, key, kid, AUDIENCE)


@pytest.fixture
def another_client(place: Place) -> Callable[..., Any]:
    """Register another client of the test; returns its signer.

    The id gets a suffix of its own, so that tests sharing a database never meet:
    use the signer's `client_id`.
    """

    async def make(client_id: str, kinds: list[str], organisation: str = "Test agency") -> Signer:
        unique = _unique(client_id)
        key, kid = await register_client(
            place.database_url, place.client_keys_dir, unique, kinds, organisation
        )
        return Signer(unique, key, kid, AUDIENCE)

    return make


@pytest.fixture
def demo_client(place: Place) -> str:
    """The demo's query-page client, registered once per database, its key in the place."""
    from gateway.admission import has_local_key

    if not has_local_key(place.client_keys_dir, DEMO_CLIENT):
        run(register_client(place.database_url, place.client_keys_dir, DEMO_CLIENT))
    return DEMO_CLIENT


@pytest.fixture
def signing_auth(signer: Signer) -> SigningAuth:
    """An httpx auth that signs requests to /graphql as the test client."""
    return SigningAuth(signer)


# -- sign-in ------------------------------------------------------------------------------


class SignIn:
    """Signs citizens and staff in at the sandbox issuer."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def citizen(self, personal_id: str, *, level: int = 2) -> dict[str, str]:
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{self.url}/demo/citizen-login", json={"personal_id": personal_id, "level": level}
            )
        response.raise_for_status()
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    async def staff(
        self, role: str, *, org: str = "VN/GOV/BCA", sub: str = "staff-1"
    ) -> dict[str, str]:
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{self.url}/demo/staff-login", json={"sub": sub, "roles": [role], "org": org}
            )
        response.raise_for_status()
        return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def sign_in(issuer_url: str) -> SignIn:
    return SignIn(issuer_url)


# -- gateways -----------------------------------------------------------------------------


@dataclass
class Gateway:
    url: str
    settings: GatewaySettings
    server: ServerThread
    signer: Signer

    def client(
        self,
        *,
        auth: httpx.Auth | str | None = "sign",
        signer: Signer | None = None,
        **purpose: Any,
    ) -> httpx.AsyncClient:
        chosen = SigningAuth(signer or self.signer, **purpose) if auth == "sign" else auth
        return httpx.AsyncClient(base_url=self.url, timeout=10.0, auth=chosen)  # type: ignore[arg-type]

    async def caught_up(self) -> None:
        """Wait (at most 10 s) until every queued event is integrated into the log.

        Events queued before the gateway started (a test client's registration) wait
        for its sequencer's first pass; a test that judges the log's lag waits too.
        """
        from gateway.log.store import TransparencyLog

        engine = create_engine(self.settings.database_url.get_secret_value())
        try:
            reader = TransparencyLog(engine, None, origin=self.settings.checkpoint_origin)
            for _ in range(100):
                if not await reader.queued():
                    return
                await asyncio.sleep(0.1)
        finally:
            await engine.dispose()

    async def audit(self) -> Any:
        """Wait until every event is integrated, then audit the database; the report."""
        from gateway.log import checkpoint_verifiers
        from gateway.records import verify_database
        from keys import KeyRing

        await self.caught_up()
        engine = create_engine(self.settings.database_url.get_secret_value())
        try:
            origin = self.settings.checkpoint_origin
            verifiers = checkpoint_verifiers(KeyRing.load(self.settings.keys_dir), origin)
            return await verify_database(engine, verifiers, origin=origin)
        finally:
            await engine.dispose()

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        signer: Signer | None = None,
        **purpose: Any,
    ) -> httpx.Response:
        async with self.client(signer=signer, **purpose) as client:
            return await client.post(
                "/graphql",
                json={"query": query, "variables": variables},
                headers={"Accept": "application/graphql-response+json"},
            )

    async def query(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.post(query, variables or None)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def _test_catalogue(folder: Path) -> Path:
    """The shipped catalogue plus one test procedure that reads every field by law.

    Tests of fetching and building use it; tests of decisions use real procedures.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for path in CATALOGUE_DIR.glob("*.yaml"):
        (folder / path.name).write_bytes(path.read_bytes())
    fields: dict[str, Any] = {}
    for kind, tree in canonical_fields().items():
        for name in tree:
            path = f"{kind}.{name}"
            fields[path] = (
                {"basis": "law", "citation": "test fixture"} if path in SENSITIVE_FIELDS else "law"
            )
    entry = {
        "code": EVERY_FIELD,
        "code_status": "provisional",
        "name": {"vi": "Thử nghiệm", "en": "Test: every field"},
        "agency_kinds": [k.value for k in AgencyKind],
        "legal_basis": [{"document": "Test fixture, not a law"}],
        "online_level": "full",
        "fields": fields,
    }
    (folder / "zz-test-every-field.yaml").write_text(yaml.safe_dump(entry, allow_unicode=True))
    return folder


@pytest.fixture(scope="session")
def test_catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _test_catalogue(tmp_path_factory.mktemp("catalogue"))


class GatewayPool:
    """Running gateways on the shared database, one per configuration, kept for reuse."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._running: OrderedDict[str, tuple[GatewaySettings, ServerThread]] = OrderedDict()

    def get(self, settings: GatewaySettings) -> tuple[GatewaySettings, ServerThread]:
        key = repr(
            sorted(
                (name, value.get_secret_value() if isinstance(value, SecretStr) else value)
                for name, value in settings
            )
        )
        found = self._running.pop(key, None)
        if found is None:
            while len(self._running) >= self._size:
                _, (_, oldest) = self._running.popitem(last=False)
                oldest.stop()
            found = (settings, ServerThread(create_app(settings)).start())
        self._running[key] = found
        return found

    def close(self) -> None:
        for _, server in self._running.values():
            server.stop()
        self._running.clear()


@pytest.fixture(scope="session")
def gateway_pool(shared_place: Place) -> Iterator[GatewayPool]:
    pool = GatewayPool(POOLED_GATEWAYS)
    yield pool
    pool.close()


class Gateways:
    """Gateways for one test: shared ones on the shared database, or its own."""

    def __init__(
        self, request: pytest.FixtureRequest, place: Place, signer: Signer, base: dict[str, Any]
    ) -> None:
        self._request = request
        self._place = place
        self._signer = signer
        self._base = base
        self._started: list[ServerThread] = []

    def _settings(self, overrides: dict[str, Any]) -> GatewaySettings:
        urls = dict(self._base["connector_urls"])
        urls.update(overrides.pop("connector_urls", {}))
        options = {
            **self._base,
            "connector_urls": {name: url for name, url in urls.items() if url is not None},
            **overrides,
        }
        return GatewaySettings(_env_file=None, **options)  # type: ignore[call-arg]

    def __call__(self, **overrides: Any) -> Gateway:
        """A gateway with these settings: the shared one, or a new one on an own database."""
        if not self._place.shared:
            return self.start(**overrides)
        if "connectors_dir" in overrides or "catalogue_dir" in overrides:
            raise AssertionError(
                "a gateway with other manifests or another catalogue records them in the "
                "shared database: mark the test `own_database`"
            )
        pool: GatewayPool = self._request.getfixturevalue("gateway_pool")
        settings, server = pool.get(self._settings(overrides))
        return Gateway(server.url, settings, server, self._signer)

    def start(self, **overrides: Any) -> Gateway:
        """A gateway of the test's own (a replica, or one it stops); stopped after it."""
        settings = self._settings(overrides)
        server = ServerThread(create_app(settings)).start()
        self._started.append(server)
        return Gateway(server.url, settings, server, self._signer)

    def stop_all(self) -> None:
        for server in self._started:
            server.stop()


@pytest.fixture
def gateway_factory(
    request: pytest.FixtureRequest,
    place: Place,
    population_url: str,
    business_url: str,
    insurance_url: str,
    civil_url: str,
    land_url: str,
    dossiers_url: str,
    signer: Signer,
    test_catalogue: Path,
    issuer_url: str,
) -> Iterator[Gateways]:
    """Gateways on the test's database: `gateway_factory(**settings)`, or `.start(...)`."""
    base = {
        "database_url": place.database_url,
        "keys_dir": place.keys_dir,
        "client_keys_dir": place.client_keys_dir,
        "connectors_dir": MANIFESTS,
        "connector_urls": {
            "population": population_url,
            "business": business_url,
            "insurance": insurance_url,
            "civil": civil_url,
            "land": land_url,
            "dossiers": dossiers_url,
        },
        "catalogue_dir": test_catalogue,
        "environment": "development",
        "origin": AUDIENCE,
        "oidc_issuer": issuer_url,
    }
    gateways = Gateways(request, place, signer, base)
    yield gateways
    gateways.stop_all()


@pytest.fixture
def gateway(gateway_factory: Gateways) -> Gateway:
    return gateway_factory()


BROWSER_CLIENT_ID = "gateway"
"""The sandbox issuer's registered client: a gateway signs browsers in with
`gateway_factory(oidc_client_id=BROWSER_CLIENT_ID)`."""


@pytest.fixture
def browser_signin() -> Callable[..., Coroutine[Any, Any, None]]:
    """Signs a Playwright page in the way a citizen does: `await browser_signin(page,
    gateway, personal_id, level)` opens the gateway's `/dang-nhap`, fills the sandbox
    issuer's real login page and comes back signed in, on `next` (default `/toi`).

    The issuer sends the browser back to the registered origin (`AUDIENCE`); the page
    routes that address to the test gateway's own port.
    """

    async def sign_in(
        page: Any, gateway: Gateway, personal_id: str, level: int = 1, next: str = "/toi"
    ) -> None:
        if gateway.settings.oidc_client_id != BROWSER_CLIENT_ID:
            raise AssertionError(
                "browser sign-in needs gateway_factory(oidc_client_id=BROWSER_CLIENT_ID)"
            )
        callback = f"{AUDIENCE}/dang-nhap/callback"

        async def to_gateway(route: Any) -> None:
            url: str = route.request.url
            await route.fulfill(
                status=303, headers={"Location": gateway.url + url[len(AUDIENCE) :]}
            )

        def is_callback(url: str) -> bool:
            return url.startswith(callback)

        await page.route(is_callback, to_gateway)
        try:
            query = httpx.QueryParams({"next": next, "muc": str(level)})
            await page.goto(f"{gateway.url}/dang-nhap?{query}")
            await page.fill("#personal_id", personal_id)
            await page.check(f'input[name="level"][value="{level}"]')
            await page.click("#dang-nhap-cong-dan")
            await page.wait_for_url(lambda url: url.startswith(gateway.url + next))
        finally:
            await page.unroute(is_callback)

    return sign_in


class SandboxStats:
    """Reads and resets the call counters a sandbox keeps of the lookups it served."""

    async def get(self, url: str) -> dict[str, Any]:
        async with httpx.AsyncClient() as client:
            stats: dict[str, Any] = (await client.get(f"{url}/_sandbox/stats")).json()
            return stats

    async def calls(self, url: str) -> int:
        return sum((await self.get(url))["calls"].values())

    async def reset(self, *urls: str) -> None:
        async with httpx.AsyncClient() as client:
            await asyncio.gather(*(client.post(f"{u}/_sandbox/stats/reset") for u in urls))


@pytest.fixture
async def stats(population_url: str, business_url: str) -> SandboxStats:
    counters = SandboxStats()
    await counters.reset(population_url, business_url)
    return counters


# -- browsers -----------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    """One Debian Chromium per test module; each test opens contexts of its own.

    A module using it runs its tests in the module's event loop:
    `pytest.mark.asyncio(loop_scope="module")`.
    """
    from tests.integration.browsing import chromium

    async with chromium() as launched:
        yield launched


@pytest_asyncio.fixture(loop_scope="module")
async def staff_browser(browser: Any, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """`await staff_browser(gateway, role, org=..., sub=..., next=..., shots=...)`: a
    desktop-size context signed in as staff (default org: the development platform's,
    `VN/GOV/BCA`) through the sandbox issuer's login page (the
    gateway needs `oidc_client_id=BROWSER_CLIENT_ID`); a `browsing.PageUser`. Its pages
    must show no Content Security Policy error."""
    from tests.integration.browsing import DESKTOP, PageUser, sign_in_staff

    users: list[Any] = []

    async def open_as(
        gateway: Gateway,
        role: str,
        *,
        org: str = DEVELOPMENT_PLATFORM_ORG,
        sub: str | None = None,
        next: str = "/dang-nhap/phien",
        shots: str = "consoles",
    ) -> Any:
        if gateway.settings.oidc_client_id != BROWSER_CLIENT_ID:
            raise AssertionError(
                "browser sign-in needs gateway_factory(oidc_client_id=BROWSER_CLIENT_ID)"
            )
        context = await browser.new_context(viewport=DESKTOP, accept_downloads=True)
        page = await context.new_page()
        user = PageUser(context, page, gateway, tmp_path, shots)
        users.append(user)
        await sign_in_staff(
            page,
            gateway,
            role=role,
            org=org,
            sub=sub or f"{role}-{uuid.uuid4().hex[:6]}",
            next=next,
            audience=AUDIENCE,
        )
        return user

    yield open_as
    for user in users:
        await user.close()
    for user in users:
        assert not user.csp_errors(), user.errors


@pytest_asyncio.fixture
async def blank_postgres(postgres_admin: str) -> AsyncIterator[Any]:
    """An engine on a new, empty PostgreSQL database of the test's own (not migrated)."""
    name = f"gw_test_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}"')
    engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}")
    try:
        yield engine
    finally:
        await engine.dispose()
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def gateway_cli(gateway: Gateway, *args: str) -> subprocess.CompletedProcess[str]:
    """`gateway ARGS` run on the machine of `gateway`: its database, keys, catalogue and
    origin, nothing else of the environment."""
    settings = gateway.settings
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env={
            "PATH": "/usr/bin:/bin",
            "GATEWAY_DATABASE_URL": settings.database_url.get_secret_value(),
            "GATEWAY_KEYS_DIR": str(settings.keys_dir),
            "GATEWAY_CATALOGUE_DIR": str(settings.catalogue_dir),
            "GATEWAY_ORIGIN": settings.origin,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
