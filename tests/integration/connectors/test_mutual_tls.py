"""A `rest` connector with mutual TLS against a real TLS server on 127.0.0.1.

A CA, the source's certificate (for 127.0.0.1) and the gateway's client certificate
are made in `tmp_path`; the source requires a client certificate signed by the CA.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from connectors import FetchContext, RestConnector, load_manifest
from connectors._manifest import RestManifest
from gateway.errors import SourceUnavailable

CTX = FetchContext(request_id="req-1")
FIELDS = frozenset({"personalId", "fullName"})


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _issue(
    folder: Path,
    stem: str,
    common: str,
    *,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    usage: x509.ObjectIdentifier | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(ca[0].subject if ca else _name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if ca is None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=0), critical=True
        )
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
    else:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=False, path_length=None), critical=True
        )
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca[1].public_key()), critical=False
        )
        if usage is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if usage == ExtendedKeyUsageOID.SERVER_AUTH:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
    cert = builder.sign(ca[1] if ca else key, hashes.SHA256())
    (folder / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, folder / f"{stem}.key")
    return cert, key


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    ca = _issue(tmp_path, "ca", "Test agency CA", ca=None)
    _issue(tmp_path, "server", "127.0.0.1", ca=ca, usage=ExtendedKeyUsageOID.SERVER_AUTH)
    _issue(tmp_path, "client", "gateway", ca=ca, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    other = tmp_path / "other"
    other.mkdir()
    _issue(other, "ca", "Another CA", ca=None)
    return tmp_path


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Minimal HTTP/1.1: a record naming the client certificate the caller presented."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
        path = head.split(b" ", 2)[1].decode()
        peer = writer.get_extra_info("peercert") or {}
        subject = dict(pair[0] for pair in peer.get("subject", ()))
        if path == "/healthz":
            body = b'{"ok": true}'
        else:
            key = path.rsplit("/", 1)[-1]
            body = orjson.dumps({"id": key, "name": subject.get("commonName")})
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
    except (OSError, asyncio.IncompleteReadError, TimeoutError, ssl.SSLError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


@pytest.fixture
async def source(pki: Path) -> AsyncIterator[str]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.crt"))
    context.load_cert_chain(pki / "server.crt", pki / "server.key")
    context.verify_mode = ssl.CERT_REQUIRED
    loop = asyncio.get_running_loop()
    # A refused handshake is the server's business, not the test's output.
    loop.set_exception_handler(lambda _loop, _context: None)
    server = await asyncio.start_server(_answer, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"https://127.0.0.1:{port}"
        server.close()


def _manifest(folder: Path, url: str, tls: dict[str, Any] | None) -> RestManifest:
    document: dict[str, Any] = {
        "name": "population",
        "kind": "rest",
        "base_url": url,
        "timeout_seconds": 2,
        "retries": 0,
        "entities": {
            "Citizen": {
                "key_field": "id",
                "get": "/v1/citizens/{key}",
                "fields": {"personalId": "id", "fullName": "name"},
            }
        },
    }
    if tls is not None:
        document["tls"] = tls
    path = folder / "population.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    manifest = load_manifest(path)
    assert isinstance(manifest, RestManifest)
    return manifest


MUTUAL = {
    "ca_file": "ca.crt",
    "client_cert": "client.crt",
    "client_key": {"ref": "file:client.key"},
}


async def test_a_client_certificate_reads_a_record(pki: Path, source: str) -> None:
    async with httpx.AsyncClient() as shared:
        connector = RestConnector(_manifest(pki, source, MUTUAL), http=shared)
        try:
            found = await connector.fetch("Citizen", ["001"], FIELDS, CTX)
            health = await connector.health()
        finally:
            await connector.aclose()
    assert found == {"001": {"personalId": "001", "fullName": "gateway"}}
    assert health.ok


async def test_a_key_from_the_environment_reads_a_record(
    pki: Path, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_CLIENT_KEY", (pki / "client.key").read_text(encoding="utf-8"))
    tls = {**MUTUAL, "client_key": {"ref": "env:SOURCE_CLIENT_KEY"}}
    async with httpx.AsyncClient() as shared:
        connector = RestConnector(_manifest(pki, source, tls), http=shared)
        try:
            found = await connector.fetch("Citizen", ["002"], FIELDS, CTX)
        finally:
            await connector.aclose()
    assert found == {"002": {"personalId": "002", "fullName": "gateway"}}


@pytest.mark.parametrize(
    "tls",
    [
        pytest.param({"ca_file": "ca.crt"}, id="no-client-certificate"),
        pytest.param({**MUTUAL, "ca_file": "other/ca.crt"}, id="source-not-trusted"),
    ],
)
async def test_without_the_right_certificates_the_source_is_unavailable(
    pki: Path, source: str, tls: dict[str, Any]
) -> None:
    async with httpx.AsyncClient() as shared:
        connector = RestConnector(_manifest(pki, source, tls), http=shared)
        try:
            with pytest.raises(SourceUnavailable):
                await connector.fetch("Citizen", ["001"], FIELDS, CTX)
            assert not (await connector.health()).ok
        finally:
            await connector.aclose()
