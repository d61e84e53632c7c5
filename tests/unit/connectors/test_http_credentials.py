"""Credentials of HTTP sources (API key, OAuth 2.0, mutual TLS), and that no secret leaks.

Sources and token endpoints are simulated with `httpx.MockTransport`; manifests are
written to `tmp_path` and loaded as files, so errors name their file and line.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import logging
import os
import ssl
import stat
import traceback
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import orjson
import prometheus_client
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from structlog.testing import capture_logs

from connectors import FetchContext, ManifestError, RestConnector, load_manifest
from connectors._auth import HttpCredentials
from connectors._manifest import HttpManifest, RestManifest
from gateway.errors import SourceError, SourceRejected, SourceUnavailable
from gateway.storage._connectors import _digest

SECRET = "s3cr3t-VALUE-9f2"
TOKEN = "tok3n-VALUE-a71"
TOKEN_URL = "http://auth.test/oauth/token"
CTX = FetchContext(request_id="req-1")
FIELDS = frozenset({"personalId", "fullName"})

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def _document(**extra: Any) -> dict[str, Any]:
    return {
        "name": "population",
        "kind": "rest",
        "base_url": "http://population.test",
        "timeout_seconds": 0.5,
        "retries": 0,
        "entities": {
            "Citizen": {
                "key_field": "id",
                "get": "/v1/citizens/{key}",
                "fields": {"personalId": "id", "fullName": "name"},
            }
        },
        **extra,
    }


def _write(tmp_path: Path, document: dict[str, Any], name: str = "population.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def _load(tmp_path: Path, **extra: Any) -> RestManifest:
    manifest = load_manifest(_write(tmp_path, _document(**extra)))
    assert isinstance(manifest, RestManifest)
    return manifest


def _line(path: Path, text: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


API_KEY = {"type": "api_key", "header": "X-Api-Key", "key": {"ref": "env:SOURCE_POPULATION_KEY"}}
OAUTH2 = {
    "type": "oauth2_client_credentials",
    "token_url": TOKEN_URL,
    "client_id": "gateway",
    "client_secret": {"ref": "env:SOURCE_POPULATION_SECRET"},
    "scope": "citizens.read",
}


class Agency:
    """A source and its token endpoint: records requests, answers as told."""

    def __init__(self) -> None:
        self.tokens: list[httpx.Request] = []
        self.calls: list[httpx.Request] = []
        self.issued = [TOKEN]
        self.expires_in: Any = 3600
        self.token_status = 200
        self.token_delay = 0.0
        self.token_down = False
        self.accepted: set[str] | None = None  # bearer tokens the source takes; None: any
        self.status = 200

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            self.tokens.append(request)
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
            if self.token_down:
                raise httpx.ConnectError("refused", request=request)
            if self.token_status != 200:
                return httpx.Response(self.token_status, json={"error": "server_error"})
            token = self.issued[min(len(self.tokens), len(self.issued)) - 1]
            return httpx.Response(
                200,
                json={"access_token": token, "token_type": "bearer", "expires_in": self.expires_in},
            )
        self.calls.append(request)
        await asyncio.sleep(0)
        if self.accepted is not None:
            sent = request.headers.get("authorization", "")
            if sent.removeprefix("Bearer ") not in self.accepted:
                return httpx.Response(401, json={"error": "invalid_token"})
        if self.status != 200:
            return httpx.Response(self.status, json={"error": "down"})
        if request.url.path == "/healthz":
            return httpx.Response(200, json={"ok": True})
        key = request.url.path.rsplit("/", 1)[-1]
        return httpx.Response(200, json={"id": key, "name": f"Person {key}"})


@pytest.fixture
def agency() -> Agency:
    return Agency()


@pytest.fixture
async def http(agency: Agency) -> Any:
    async with httpx.AsyncClient(transport=httpx.MockTransport(agency)) as client:
        yield client


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_POPULATION_KEY", SECRET)
    monkeypatch.setenv("SOURCE_POPULATION_SECRET", SECRET)


# --- API key -------------------------------------------------------------------------


async def test_api_key_is_sent_in_its_header(
    tmp_path: Path, agency: Agency, http: httpx.AsyncClient
) -> None:
    connector = RestConnector(_load(tmp_path, auth=API_KEY), http=http)
    found = await connector.fetch("Citizen", ["001"], FIELDS, CTX)
    assert found["001"] == {"personalId": "001", "fullName": "Person 001"}
    health = await connector.health()
    assert health.ok
    assert [r.headers["x-api-key"] for r in agency.calls] == [SECRET, SECRET]
    assert agency.tokens == []


async def test_api_key_from_a_file_beside_the_manifest(
    tmp_path: Path, agency: Agency, http: httpx.AsyncClient
) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "population.key").write_text("from-a-file\n", encoding="utf-8")
    auth = {**API_KEY, "key": {"ref": "file:secrets/population.key"}}
    connector = RestConnector(_load(tmp_path, auth=auth), http=http)
    await connector.fetch("Citizen", ["001"], FIELDS, CTX)
    assert agency.calls[0].headers["x-api-key"] == "from-a-file"


async def test_no_auth_sends_no_credentials(
    tmp_path: Path, agency: Agency, http: httpx.AsyncClient
) -> None:
    connector = RestConnector(_load(tmp_path), http=http)
    await connector.fetch("Citizen", ["001"], FIELDS, CTX)
    assert "authorization" not in agency.calls[0].headers
    assert "x-api-key" not in agency.calls[0].headers


# --- OAuth 2.0 client credentials ----------------------------------------------------


async def test_one_token_serves_many_concurrent_calls(
    tmp_path: Path, agency: Agency, http: httpx.AsyncClient
) -> None:
    agency.token_delay = 0.02  # every call waits on the one refresh
    connector = RestConnector(_load(tmp_path, auth=OAUTH2), http=http)
    keys = [f"{i:03}" for i in range(20)]
    results = await asyncio.gather(*(connector.fetch("Citizen", [k], FIELDS, CTX) for k in keys))
    assert [next(iter(r)) for r in results] == keys
    assert len(agency.tokens) == 1
    assert {r.headers["authorization"] for r in agency.calls} == {f"Bearer {TOKEN}"}


async def test_token_request_authenticates_the_client_by_basic(
    tmp_path: Path, agency: Agency, http: httpx.AsyncClient
) -> None:
    connector = RestConnector(_load(tmp_path, auth=OAUTH2), http=http)
    await connector.fetch("Citizen", ["001"], FIELDS, CTX)
    (request,) = agency.tokens
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = parse_qs(request.content.decode())
    assert form == {"grant_type": ["client_credentials"], "scope": ["citizens.read"]}
    scheme, _, value = request.headers["authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(value).decode() == f"gateway:{SECRET}"
    assert "client_secret" not in request.content.decode()


async def test_basic_credentials_are_form_encoded(
    tmp_path: Path, agency: Agency, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_POPULATION_SECRET", "a:b c/é")
    auth = {**OAUTH2, "client_id": "gate way"}
    credentials = HttpCredentials(_load(tmp_path, auth=auth))
    await credentials.headers(http)
    value = agency.tokens[0].headers["authorization"].removeprefix("Basic ")
    assert base64.b64decode(value).decode() == "gate+way:a%3Ab+c%2F%C3%A9"  # RFC 6749 §2.3.1


async def test_token_is_kept_until_shortly_before_it_expires(
    tmp_path: Path, agency: Agency, http: httpx.AsyncClient
) -> None:
    now = [1000.0]
    agency.issued = ["t1", "t2", "t3"]
    agency.expires_in = 100  # renewed 10 s early (10% of a short lifetime)
    credentials = HttpCredentials(_load(tmp_path, auth=OAUTH2), clock=lambda: now[0])
    assert await credentials.headers(http) == {"Authorization": "Bearer t1"}
    now[0] += 89
    assert await credentials.headers(http) == {"Authorization": "Bearer t1"}
    now[0] += 2
    assert await credentials.headers(http) == {"Authorization": "Bearer t2"}
    agency.expires_in = 3600  # renewed 30 s early
    now[0] += 100
    assert await credentials.headers(http) == {"Authorization": "Bearer t3"}
    now[0] += 3569
    assert await credentials.headers(http) == {"Authorization": "Bearer t3"}
    assert len(agency.tokens) == 3


async def test_a_401_renews_the_token_once(
    tmp_path: Path, agency: Agency, http: httpx.AsyncClient
) -> None:
    agency.issued = ["stale", "fresh"]
    agency.accepted = {"fresh"}
    connector = RestConnector(_load(tmp_path, auth=OAUTH2), http=http)
    found = await connector.fetch("Citizen", ["001"], FIELDS, CTX)
    assert found["001"] == {"personalId": "001", "fullName": "Person 001"}
    assert [r.headers["authorization"] for r in agency.calls] == [
        "Bearer stale",
        "Bearer fresh",
    ]
    assert len(agency.tokens) == 2
    await connector.fetch("Citizen", ["002"], FIELDS, CTX)
    assert len(agency.tokens) == 2


async def test_concurrent_401s_renew_the_token_once(
    tmp_path: Path, agency: Agency, http: httpx.AsyncClient
) -> None:
    agency.accepted = {"fresh"}
    agency.issued = ["stale"]
    connector = RestConnector(_load(tmp_path, auth=OAUTH2), http=http)
    await connector._credentials.headers(http)  # caches "stale"
    agency.tokens.clear()
    agency.issued = ["fresh"]
    keys = [f"{i:03}" for i in range(10)]
    await asyncio.gather(*(connector.fetch("Citizen", [k], FIELDS, CTX) for k in keys))
    assert len(agency.tokens) == 1


async def test_a_source_that_keeps_refusing_is_asked_twice_only(
    tmp_path: Path, agency: Agency, http: httpx.AsyncClient
) -> None:
    agency.issued = ["t1", "t2", "t3"]
    agency.accepted = set()
    connector = RestConnector(_load(tmp_path, auth=OAUTH2), http=http)
    with pytest.raises(SourceRejected):
        await connector.fetch("Citizen", ["001"], FIELDS, CTX)
    assert len(agency.calls) == 2
    assert len(agency.tokens) == 2


async def test_a_401_with_an_api_key_is_not_retried(
    tmp_path: Path, agency: Agency, http: httpx.AsyncClient
) -> None:
    agency.accepted = set()
    connector = RestConnector(_load(tmp_path, auth=API_KEY), http=http)
    with pytest.raises(SourceRejected):
        await connector.fetch("Citizen", ["001"], FIELDS, CTX)
    assert len(agency.calls) == 1


@pytest.mark.parametrize(
    ("fault", "status"),
    [("status", 500), ("status", 503), ("down", None), ("slow", None)],
)
async def test_token_endpoint_failure_is_source_unavailable(
    tmp_path: Path, agency: Agency, http: httpx.AsyncClient, fault: str, status: int | None
) -> None:
    if fault == "status":
        agency.token_status = status or 500
    elif fault == "down":
        agency.token_down = True
    else:
        agency.token_delay = 5
    connector = RestConnector(_load(tmp_path, auth=OAUTH2, timeout_seconds=0.1), http=http)
    with pytest.raises(SourceUnavailable) as raised:
        await connector.fetch("Citizen", ["001"], FIELDS, CTX)
    assert raised.value.code == "SOURCE_UNAVAILABLE"
    assert "token endpoint" in raised.value.message
    assert SECRET not in str(raised.value)
    assert agency.calls == []
    health = await connector.health()
    assert health == type(health)(ok=False, detail="SOURCE_UNAVAILABLE")


@pytest.mark.parametrize("status", [400, 401, 403])
async def test_credentials_the_token_endpoint_refuses_are_not_asked_again(
    tmp_path: Path, agency: Agency, http: httpx.AsyncClient, status: int
) -> None:
    agency.token_status = status
    manifest = _load(tmp_path, auth=OAUTH2, retries=3)
    connector = RestConnector(manifest, http=http)
    with pytest.raises(SourceRejected) as raised:
        await connector.fetch("Citizen", ["001"], FIELDS, CTX)
    assert raised.value.code == "SOURCE_REJECTED"
    assert SECRET not in str(raised.value)
    assert len(agency.tokens) == 1  # refused once is refused: no retry
    assert agency.calls == []
    health = await connector.health()
    assert health == type(health)(ok=False, detail="SOURCE_REJECTED")


@pytest.mark.parametrize(
    "answer",
    [
        b"not json",
        b"[]",
        b'{"token_type": "bearer", "expires_in": 60}',
        b'{"access_token": "x", "token_type": "mac", "expires_in": 60}',
        b'{"access_token": "x", "token_type": "bearer", "expires_in": -1}',
        b'{"access_token": "x", "token_type": "bearer", "expires_in": "soon"}',
    ],
)
async def test_a_token_answer_that_cannot_be_used_is_source_unavailable(
    tmp_path: Path, answer: bytes
) -> None:
    def token_endpoint(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=answer)

    async with httpx.AsyncClient(transport=httpx.MockTransport(token_endpoint)) as http:
        credentials = HttpCredentials(_load(tmp_path, auth=OAUTH2))
        with pytest.raises(SourceUnavailable, match="token endpoint"):
            await credentials.headers(http)


async def test_a_token_without_expires_in_is_kept_a_while(tmp_path: Path) -> None:
    def token_endpoint(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": "x", "token_type": "Bearer"})

    now = [0.0]
    async with httpx.AsyncClient(transport=httpx.MockTransport(token_endpoint)) as http:
        credentials = HttpCredentials(_load(tmp_path, auth=OAUTH2), clock=lambda: now[0])
        assert await credentials.headers(http) == {"Authorization": "Bearer x"}


# --- Secrets that cannot be read ---------------------------------------------------------


def test_a_missing_env_variable_names_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOURCE_POPULATION_SECRET")
    path = _write(tmp_path, _document(auth=OAUTH2))
    manifest = load_manifest(path)
    assert isinstance(manifest, RestManifest)
    with pytest.raises(ManifestError) as raised:
        RestConnector(manifest, http=httpx.AsyncClient())
    line = _line(path, "ref: env:SOURCE_POPULATION_SECRET")
    assert str(raised.value).startswith(f"{path}:{line}: auth.client_secret.ref: ")
    assert "SOURCE_POPULATION_SECRET is not set" in str(raised.value)


def test_a_missing_secret_file_names_file_and_line(tmp_path: Path) -> None:
    auth = {**API_KEY, "key": {"ref": "file:nowhere.key"}}
    path = _write(tmp_path, _document(auth=auth))
    manifest = load_manifest(path)
    assert isinstance(manifest, RestManifest)
    with pytest.raises(ManifestError) as raised:
        HttpCredentials(manifest)
    line = _line(path, "ref: file:nowhere.key")
    assert str(raised.value).startswith(f"{path}:{line}: auth.key.ref: ")
    assert str(tmp_path / "nowhere.key") in str(raised.value)


def test_an_inline_secret_is_refused_at_load(tmp_path: Path) -> None:
    path = _write(tmp_path, _document(auth={**API_KEY, "key": SECRET}))
    with pytest.raises(ManifestError) as raised:
        load_manifest(path)
    message = str(raised.value)
    assert message.startswith(f"{path}:")
    assert raised.value.line == _line(path, f"key: {SECRET}")
    assert message.startswith(f"{path}:{raised.value.line}: auth.key: ")
    assert "a secret is named, never written" in message
    assert SECRET not in message


def test_an_inline_secret_is_in_no_chained_error(tmp_path: Path) -> None:
    path = _write(tmp_path, _document(auth={**API_KEY, "key": SECRET}))
    with pytest.raises(ManifestError) as raised:
        load_manifest(path)
    assert SECRET not in "".join(traceback.format_exception(raised.value))


# --- TLS settings --------------------------------------------------------------------


def _self_signed(folder: Path) -> tuple[Path, Path, str]:
    """A certificate, its key file, and the key's PEM text."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    (folder / "client.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "client.key").write_text(pem, encoding="utf-8")
    return folder / "client.crt", folder / "client.key", pem


async def test_tls_gives_the_connector_a_client_of_its_own(tmp_path: Path) -> None:
    _self_signed(tmp_path)
    tls = {
        "ca_file": "client.crt",
        "client_cert": "client.crt",
        "client_key": {"ref": "file:client.key"},
    }
    shared = httpx.AsyncClient()
    connector = RestConnector(_load(tmp_path, tls=tls), http=shared)
    own = connector._http
    assert own is not shared
    assert not own.follow_redirects
    assert not own.trust_env
    await connector.aclose()
    assert own.is_closed
    assert not shared.is_closed
    plain = RestConnector(_load(tmp_path), http=shared)
    assert plain._http is shared
    await plain.aclose()
    assert not shared.is_closed
    await shared.aclose()


def test_a_key_from_env_is_loaded_through_a_private_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, pem = _self_signed(tmp_path)
    monkeypatch.setenv("SOURCE_CLIENT_KEY", pem)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    seen: list[tuple[int, int, str]] = []

    class Spy(ssl.SSLContext):
        def load_cert_chain(self, certfile: Any, keyfile: Any = None, password: Any = None) -> None:
            key = Path(keyfile)
            seen.append(
                (
                    stat.S_IMODE(key.stat().st_mode),
                    stat.S_IMODE(key.parent.stat().st_mode),
                    key.read_text(encoding="utf-8"),
                )
            )
            super().load_cert_chain(certfile, keyfile, password)

    monkeypatch.setattr(
        "connectors._auth.ssl.create_default_context",
        lambda cafile=None: Spy(ssl.PROTOCOL_TLS_CLIENT),
    )
    tls = {"client_cert": "client.crt", "client_key": {"ref": "env:SOURCE_CLIENT_KEY"}}
    HttpCredentials(_load(tmp_path, tls=tls))
    assert len(seen) == 1
    assert seen[0][:2] == (0o600, 0o700)
    assert seen[0][2].strip() == pem.strip()
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize(
    ("tls", "field", "where"),
    [
        (
            {"client_cert": "client.crt", "client_key": {"ref": "file:missing.key"}},
            "client_key.ref",
            "ref: file:missing.key",
        ),
        (
            {"client_cert": "missing.crt", "client_key": {"ref": "file:client.key"}},
            "client_cert",
            "client_cert: missing.crt",
        ),
        (
            {"client_cert": "client.crt", "client_key": {"ref": "env:SOURCE_POPULATION_KEY"}},
            "client_key.ref",
            "ref: env:SOURCE_POPULATION_KEY",
        ),
        ({"ca_file": "missing.pem"}, "ca_file", "ca_file: missing.pem"),
    ],
)
def test_tls_files_that_cannot_be_loaded_name_the_field(
    tmp_path: Path, tls: dict[str, Any], field: str, where: str
) -> None:
    _self_signed(tmp_path)
    path = _write(tmp_path, _document(tls=tls))
    manifest = load_manifest(path)
    assert isinstance(manifest, HttpManifest)
    with pytest.raises(ManifestError) as raised:
        HttpCredentials(manifest)
    assert str(raised.value).startswith(f"{path}:{_line(path, where)}: tls.{field}: ")
    assert SECRET not in "".join(traceback.format_exception(raised.value))


# --- No leaks ------------------------------------------------------------------------


class Leaks:
    """Everything a secret must stay out of: logs, errors, reprs, metrics, records."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog
        self.texts: list[str] = []

    def error(self, exc: BaseException) -> None:
        self.texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
        detail = getattr(exc, "detail", None)
        if detail is not None:
            self.texts.append(repr(detail))
        if isinstance(exc, SourceError):
            self.texts.append(orjson.dumps(exc.to_body(), default=str).decode())

    def manifest(self, manifest: RestManifest) -> None:
        data, digest = _digest(manifest)
        self.texts += [
            repr(manifest),
            str(manifest),
            manifest.model_dump_json(),
            orjson.dumps(data).decode(),
            digest,
        ]

    def check(self, *values: str) -> None:
        texts = [*self.texts, self.caplog.text, prometheus_client.generate_latest().decode()]
        for value in values:
            for text in texts:
                assert value not in text


@pytest.fixture
def leaks(caplog: pytest.LogCaptureFixture) -> Iterator[Leaks]:
    caplog.set_level(logging.DEBUG)
    with capture_logs() as logs:
        found = Leaks(caplog)
        yield found
        found.texts.append(repr(logs))
    found.check(SECRET, TOKEN)


async def _run(connector: RestConnector, leaks: Leaks) -> None:
    leaks.texts.append(repr(connector))
    leaks.texts.append(repr(connector._credentials))
    leaks.manifest(connector.manifest)
    try:
        leaks.texts.append(repr(await connector.fetch("Citizen", ["001", "002"], FIELDS, CTX)))
    except Exception as exc:  # every failure is checked for leaks
        leaks.error(exc)
    leaks.texts.append(repr(await connector.health()))
    await connector.aclose()


@pytest.mark.parametrize(
    "fault", ["none", "source_500", "source_401", "token_500", "token_slow", "token_down"]
)
@pytest.mark.parametrize("auth", [API_KEY, OAUTH2], ids=["api_key", "oauth2"])
async def test_no_secret_leaks(
    tmp_path: Path, agency: Agency, http: httpx.AsyncClient, leaks: Leaks, fault: str, auth: Any
) -> None:
    if fault == "source_500":
        agency.status = 500
    elif fault == "source_401":
        agency.accepted = set()
    elif fault == "token_500":
        agency.token_status = 500
    elif fault == "token_slow":
        agency.token_delay = 5
    elif fault == "token_down":
        agency.token_down = True
    manifest = _load(tmp_path, auth=auth, timeout_seconds=0.1, retries=1)
    await _run(RestConnector(manifest, http=http), leaks)
    sent = agency.calls + agency.tokens
    assert sent  # the secret did go where it belongs
    assert all(SECRET not in str(r.url) for r in sent)


@pytest.mark.parametrize(
    "key",
    [
        "file:missing.key",
        "env:SOURCE_NOT_SET_ANYWHERE",
        "env:SOURCE_POPULATION_KEY",
        "env:SOURCE_CLIENT_KEY",
    ],
)
async def test_no_tls_key_leaks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, leaks: Leaks, key: str
) -> None:
    _, _, pem = _self_signed(tmp_path)
    secret_pem = pem.replace("-----END PRIVATE KEY-----", f"{SECRET}\n-----END PRIVATE KEY-----")
    monkeypatch.setenv("SOURCE_CLIENT_KEY", secret_pem)  # not a valid PEM: its value is the secret
    tls = {"client_cert": "client.crt", "client_key": {"ref": key}}
    manifest = _load(tmp_path, tls=tls)
    leaks.manifest(manifest)
    with pytest.raises(ManifestError) as raised:
        RestConnector(manifest, http=httpx.AsyncClient())
    leaks.error(raised.value)
    body = "".join(pem.strip().splitlines()[1:-1])
    for text in leaks.texts:
        assert body[:40] not in text
    assert os.environ["SOURCE_CLIENT_KEY"] == secret_pem
