"""Connector secrets stored through the admin API: written, encrypted, used, never read back.

Connectors are submitted with the storage functions (a pending version of an
organisation), so a secret can be stored before the connector is in use.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import structlog
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from structlog.testing import LogCapture, capture_logs

from gateway.storage import (
    connector_secrets,
    connector_versions,
    connectors_generation,
    create_engine,
    event_personal,
    events,
    manifest_digest,
)
from keys import KekRing, KeyRing, load_secret

VALUE = "stored-KEY-" + "7Qz9xW2"
ORG = "VN/GOV/TEST"


def _manifest(name: str, base_url: str) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "rest",
        "agency": ORG,
        "base_url": base_url,
        "timeout_seconds": 2.0,
        "retries": 0,
        "auth": {"type": "api_key", "header": "X-Api-Key", "key": {"ref": "stored:api-key"}},
        "entities": {
            "Citizen": {
                "key_field": "id",
                "get": "/v1/citizens/{key}",
                "fields": {"personalId": "id", "fullName": "name"},
            }
        },
    }


async def _submit(database_url: str, name: str, base_url: str, organisation: str = ORG) -> None:
    """A pending version of connector `name`, as the registration API keeps one."""
    manifest = _manifest(name, base_url)
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                connector_versions.insert().values(
                    connector=name,
                    version=1,
                    organisation=organisation,
                    manifest=manifest,
                    manifest_sha256=manifest_digest(manifest),
                    submitted_by="staff-test",
                    submitted_at=datetime.datetime.now(datetime.UTC),
                    status="pending",
                )
            )
    finally:
        await engine.dispose()


async def _rows(database_url: str, *tables: sa.Table) -> str:
    """Every row of `tables`, as text (bytes as they are stored)."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            found = [list((await conn.execute(sa.select(t))).all()) for t in tables]
    finally:
        await engine.dispose()
    return repr(found)


class Source:
    """A source that records the API key each call carries."""

    def __init__(self) -> None:
        self.keys: list[str | None] = []

    async def citizen(self, request: Request) -> JSONResponse:
        self.keys.append(request.headers.get("x-api-key"))
        key = request.path_params["key"]
        return JSONResponse({"id": key, "name": "Nguyễn Văn Bí Mật"})

    async def health(self, request: Request) -> JSONResponse:
        known = request.headers.get("x-api-key", "").startswith(VALUE)
        return JSONResponse({"ok": known}, status_code=200 if known else 401)

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route("/v1/citizens/{key}", self.citizen), Route("/healthz", self.health)]
        )


@pytest.fixture
def source(start_server: Callable[[Any], Any]) -> tuple[Source, str]:
    made = Source()
    return made, start_server(made.app()).url


def _name() -> str:
    return f"vault-{uuid.uuid4().hex[:8]}"


async def _put(url: str, name: str, headers: dict[str, str], value: str = VALUE) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as http:
        return await http.put(
            f"/admin/connectors/{name}/secrets/api-key", json={"value": value}, headers=headers
        )


async def test_an_agency_admin_stores_a_secret_that_is_never_shown(
    gateway_factory: Any,
    sign_in: Any,
    migrated: str,
    source: tuple[Source, str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = _name()
    await _submit(migrated, name, source[1])
    gateway = gateway_factory()
    admin = await sign_in.staff("agency_admin", org=ORG, sub="agency-admin-1")
    # Every log line this process writes (whatever level an earlier test configured),
    # and, at every level, the lines of the module that stores secrets.
    own = LogCapture()
    monkeypatch.setattr(
        "gateway.storage._secrets.log",
        structlog.wrap_logger(
            None, processors=[own], wrapper_class=structlog.make_filtering_bound_logger(0)
        ),
    )
    caplog.set_level(logging.DEBUG)
    with capture_logs() as logs:
        first = await _put(gateway.url, name, admin)
        second = await _put(gateway.url, name, admin, value=VALUE + "-2")
    assert first.status_code == 201, first.text
    assert first.json() == {"connector": name, "secret": "api-key", "version": 1}
    assert second.json()["version"] == 2
    assert VALUE not in first.text + second.text
    stored = [e for e in own.entries if e.get("event") == "connector_secret_stored"]
    assert [(e["connector"], e["secret"], e["version"]) for e in stored] == [
        (name, "api-key", 1),
        (name, "api-key", 2),
    ]
    assert VALUE not in repr(own.entries) + repr(logs) + caplog.text
    # Nothing reads it back.
    async with httpx.AsyncClient(base_url=gateway.url, headers=admin) as http:
        for path in (
            f"/admin/connectors/{name}/secrets/api-key",
            f"/admin/connectors/{name}/secrets",
            f"/admin/connectors/{name}",
            "/admin/connectors",
        ):
            answer = await http.get(path)
            assert VALUE not in answer.text, path
    # At rest: encrypted; the `admin` event names connector, secret and version only.
    rows = await _rows(migrated, connector_secrets)
    assert name in rows
    assert VALUE not in rows
    assert VALUE.encode().hex() not in rows
    recorded = await _rows(migrated, events, event_personal)
    assert f'"connector": "{name}"' in recorded or f"'connector': '{name}'" in recorded
    assert "secretVersion" in recorded
    assert VALUE not in recorded


async def test_only_the_connectors_organisation_or_the_platform_stores_its_secrets(
    gateway_factory: Any, sign_in: Any, migrated: str, source: tuple[Source, str]
) -> None:
    name = _name()
    await _submit(migrated, name, source[1])
    gateway = gateway_factory()
    other = await sign_in.staff("agency_admin", org="VN/GOV/OTHER")
    refused = await _put(gateway.url, name, other)
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "FORBIDDEN"
    auditor = await sign_in.staff("auditor", org=ORG)
    assert (await _put(gateway.url, name, auditor)).status_code == 403
    assert (await _put(gateway.url, name, {})).status_code == 401
    # An operator of the platform's organisation may (development: VN/GOV/BCA).
    operator = await sign_in.staff("operator", org=gateway.settings.platform_organisation)
    assert (await _put(gateway.url, name, operator)).status_code == 201
    # An operator of another organisation may not.
    elsewhere = await sign_in.staff("operator", org=ORG)
    assert (await _put(gateway.url, name, elsewhere)).status_code == 403


async def test_an_unknown_connector_or_a_bad_name_is_refused(
    gateway_factory: Any, sign_in: Any, migrated: str, source: tuple[Source, str]
) -> None:
    gateway = gateway_factory()
    admin = await sign_in.staff("agency_admin", org=ORG)
    unknown = await _put(gateway.url, _name(), admin)
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["code"] == "NOT_FOUND"
    # A connector from the connectors folder is the platform's: no agency stores its secrets.
    assert (await _put(gateway.url, "population", admin)).status_code == 403
    name = _name()
    await _submit(migrated, name, source[1])
    async with httpx.AsyncClient(base_url=gateway.url, headers=admin) as http:
        bad = await http.put(f"/admin/connectors/{name}/secrets/a..b!", json={"value": VALUE})
        assert bad.status_code == 400, bad.text
        empty = await http.put(f"/admin/connectors/{name}/secrets/api-key", json={"value": ""})
        assert empty.status_code == 400
        plain = await http.put(f"/admin/connectors/{name}/secrets/api-key", content=VALUE)
        assert plain.status_code == 400
        assert VALUE not in bad.text + empty.text + plain.text


def _gateway(settings: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """`gateway ARGS` with the database and keys of `settings`."""
    env = {
        **os.environ,
        "GATEWAY_DATABASE_URL": settings.database_url.get_secret_value(),
        "GATEWAY_KEYS_DIR": str(settings.keys_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.own_database
async def test_the_stored_secret_is_sent_to_the_source_and_survives_rotation(
    gateway_factory: Any,
    sign_in: Any,
    migrated: str,
    source: tuple[Source, str],
    signer: Any,
    dataset: Any,
    tmp_path: Path,
) -> None:
    recorder, url = source
    name = _name()
    await _submit(migrated, name, url)
    first = gateway_factory.start()
    admin = await sign_in.staff("agency_admin", org=ORG)
    assert (await _put(first.url, name, admin)).status_code == 201
    # A gateway whose manifests name the stored secret sends its value to the source.
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(_manifest(name, url)), encoding="utf-8")
    others = dict.fromkeys(("population", "business", "insurance", "civil", "land", "dossiers"))
    person = dataset.sample.citizens[0]
    query = f'{{ citizen(personalId: "{person}") {{ fullName }} }}'

    async def read() -> None:
        gateway = gateway_factory.start(connectors_dir=folder, connector_urls=others)
        body = await gateway.query(query)
        assert body["data"]["citizen"]["fullName"] == "Nguyễn Văn Bí Mật", body
        gateway.server.stop()

    await read()
    assert recorder.keys == [VALUE]
    keys_dir = first.settings.keys_dir
    [old] = KekRing.load(keys_dir).ids
    # `connectors check --connect` opens it as serve does: with the stored secret.
    checked = await asyncio.to_thread(
        _gateway, first.settings, "connectors", "check", str(folder), "--connect"
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith(f"ok\t{name}\trest")
    assert VALUE not in checked.stdout + checked.stderr
    rotated = await asyncio.to_thread(
        _gateway, first.settings, "keys", "rotate-kek", "--retire-old"
    )
    assert rotated.returncode == 0, rotated.stderr
    assert "rewrapped\t1" in rotated.stdout
    assert f"{old}\tretired" in rotated.stdout
    assert VALUE not in rotated.stdout + rotated.stderr
    [new] = KekRing.load(keys_dir).ids
    assert new != old
    assert new in await _rows(migrated, connector_secrets)
    await read()
    assert recorder.keys == [VALUE, VALUE]


@pytest.mark.own_database
async def test_production_refuses_stored_secrets_without_a_kek(
    gateway_factory: Any, migrated: str, tmp_path: Path, source: tuple[Source, str]
) -> None:
    from gateway.config import ConfigurationError, GatewaySettings
    from gateway.web import create_app, preflight

    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "vault.yaml").write_text(
        yaml.safe_dump(_manifest("vault", source[1])), encoding="utf-8"
    )
    settings = GatewaySettings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=migrated,
        keys_dir=tmp_path / "keys",
        connectors_dir=folder,
        environment="production",
        redis_url="redis://127.0.0.1:6379/0",
        origin="https://gateway.test",
    )
    app = create_app(settings)
    with pytest.raises(ConfigurationError, match="no key-encryption key") as caught:
        async with app.router.lifespan_context(app):
            pass
    assert "vault" in str(caught.value)
    assert "gateway keys generate" in str(caught.value)
    # `gateway serve` says so before listening, once the other keys are there.
    KeyRing.ensure(settings.keys_dir)
    load_secret(settings.keys_dir, "pseudonyms", create=True)
    with pytest.raises(ConfigurationError, match="no key-encryption key"):
        await preflight(settings)
    KekRing.generate(settings.keys_dir)
    await preflight(settings)


@pytest.mark.own_database
async def test_a_new_version_of_the_secret_is_used_at_once(
    gateway_factory: Any, sign_in: Any, source: tuple[Source, str], dataset: Any, tmp_path: Path
) -> None:
    recorder, url = source
    org, name = f"VN/GOV/S{uuid.uuid4().hex[:6].upper()}", _name()
    # No other connector serves citizens: the registered one answers.
    others = dict.fromkeys(("population", "business", "insurance", "civil", "land", "dossiers"))
    gateway = gateway_factory.start(
        connectors_allow_loopback=True, connectors_dir=tmp_path, connector_urls=others
    )
    platform = await sign_in.staff("operator", org=gateway.settings.platform_organisation)
    admin = await sign_in.staff("agency_admin", org=org, sub="agency-admin-2")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=15.0) as http:
        authority = await http.put(
            f"/admin/authority/{org}",
            json={"fields": ["Citizen.personalId", "Citizen.fullName"], "endpoints": ["127.0.0.1"]},
            headers=platform,
        )
        assert authority.status_code == 200, authority.text
        manifest = {**_manifest(name, url), "agency": org}
        submitted = await http.post("/admin/connectors", json={"manifest": manifest}, headers=admin)
        assert submitted.status_code == 201, submitted.text
        # Stored while the version waits for approval, then served once approved.
        assert (await _put(gateway.url, name, admin)).status_code == 201
        approved = await http.post(f"/admin/connectors/{name}/versions/1/approve", headers=platform)
        assert approved.status_code == 200, approved.text
    first, second = dataset.sample.citizens[:2]
    body = await gateway.query(f'{{ citizen(personalId: "{first}") {{ fullName }} }}')
    assert body["data"]["citizen"]["fullName"] == "Nguyễn Văn Bí Mật", body
    assert recorder.keys == [VALUE]
    # A PUT makes a new version, and this gateway sends it from the next read on; the
    # generation rises with it, so that the other replicas rebuild too.
    engine = create_engine(gateway.settings.database_url.get_secret_value())
    try:
        before = await connectors_generation(engine)
        assert (await _put(gateway.url, name, admin, value=VALUE + "-2")).status_code == 201
        assert await connectors_generation(engine) == before + 1
    finally:
        await engine.dispose()
    body = await gateway.query(f'{{ citizen(personalId: "{second}") {{ fullName }} }}')
    assert body["data"]["citizen"]["fullName"] == "Nguyễn Văn Bí Mật", body
    assert recorder.keys == [VALUE, VALUE + "-2"]
