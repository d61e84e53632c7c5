"""Agencies register connectors through /admin; another person approves each version.

One gateway per backend serves the module, on a database of its own (the connectors
registered here must not reach other tests' gateways); each test uses an organisation
and connector names of its own.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
import yaml

import sandbox
from gateway.config import GatewaySettings
from gateway.storage import (
    active_connectors,
    connectors_generation,
    create_engine,
    events,
    record_connectors,
    upgrade,
)
from gateway.web import create_app

MANIFESTS = Path(sandbox.__file__).parent / "manifests"
PLATFORM = "VN/GOV/BCA"
_PRIORITIES = itertools.count(1000)
"""Each test's connector comes after those before it: none wins over another's fields."""


def _run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def _admin_sql(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
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


@dataclass
class Registry:
    """The module's gateway and what the tests need to talk to it."""

    url: str
    database_url: str
    issuer_url: str
    population_url: str
    land_path: Path
    settings: GatewaySettings

    async def audit(self) -> Any:
        """Wait until every record is in the log, then audit the database; the report."""
        from gateway.log import checkpoint_verifiers
        from gateway.log.store import TransparencyLog
        from gateway.records import verify_database
        from keys import KeyRing

        engine = create_engine(self.database_url)
        try:
            origin = self.settings.checkpoint_origin
            reader = TransparencyLog(engine, None, origin=origin)
            for _ in range(100):
                if not await reader.queued():
                    break
                await asyncio.sleep(0.1)
            verifiers = checkpoint_verifiers(KeyRing.load(self.settings.keys_dir), origin)
            return await verify_database(engine, verifiers, origin=origin)
        finally:
            await engine.dispose()

    async def staff(
        self, role: str, *, org: str = PLATFORM, sub: str = "staff-1"
    ) -> dict[str, str]:
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{self.issuer_url}/demo/staff-login",
                json={"sub": sub, "roles": [role], "org": org},
            )
        response.raise_for_status()
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=15.0)

    async def admin_records(self, name: str) -> list[dict[str, Any]]:
        engine = create_engine(self.database_url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    sa.select(events.c.envelope).where(events.c.type == "admin")
                )
                found = []
                for (envelope,) in rows:
                    data = orjson.loads(envelope) if isinstance(envelope, str | bytes) else envelope
                    if data.get("connector") == name:
                        found.append(data)
                return found
        finally:
            await engine.dispose()


@pytest.fixture(scope="module")
def registry(
    backend: str,
    tmp_path_factory: pytest.TempPathFactory,
    start_server: Callable[[Any], Any],
    population_url: str,
    business_url: str,
    insurance_url: str,
    civil_url: str,
    land_url: str,
    test_catalogue: Path,
    issuer_url: str,
) -> Iterator[Registry]:
    folder = tmp_path_factory.mktemp(f"registration-{backend}")
    name = f"gw_reg_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{folder / 'gateway.db'}"
    else:
        _run(_admin_sql(f'CREATE DATABASE "{name}"'))
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    try:
        _run(_migrate(url))
        settings = GatewaySettings(
            _env_file=None,
            database_url=url,
            keys_dir=folder / "keys",
            client_keys_dir=folder / "client-keys",
            connectors_dir=MANIFESTS,
            connector_urls={
                "population": population_url,
                "business": business_url,
                "insurance": insurance_url,
                "civil": civil_url,
                "land": land_url,
            },
            catalogue_dir=test_catalogue,
            environment="development",
            origin="http://127.0.0.1:8000",
            oidc_issuer=issuer_url,
            connectors_allow_loopback=True,
        )
        server = start_server(create_app(settings))
        try:
            yield Registry(
                server.url,
                url,
                issuer_url,
                population_url,
                Path(land_url.removeprefix("sqlite:///")),
                settings,
            )
        finally:
            server.stop()
    finally:
        if backend != "sqlite":
            _run(_admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _tag() -> str:
    return uuid.uuid4().hex[:8]


def rest_manifest(name: str, base_url: str, **changes: Any) -> dict[str, Any]:
    """A REST manifest of the sandbox population registry, two fields."""
    manifest: dict[str, Any] = {
        "name": name,
        "kind": "rest",
        "title": "Test registry",
        "base_url": base_url,
        "priority": next(_PRIORITIES),
        "timeout_seconds": 2.0,
        "entities": {
            "Citizen": {
                "key_field": "so_dinh_danh",
                "get": "/v1/cong-dan/{key}",
                "fields_param": "truong",
                "fields": {"personalId": "so_dinh_danh", "fullName": "ho_ten"},
            }
        },
    }
    manifest.update(changes)
    return manifest


async def _authority(
    registry: Registry, http: httpx.AsyncClient, org: str, fields: list[str], endpoints: list[str]
) -> None:
    operator = await registry.staff("operator", sub="platform-op")
    done = await http.put(
        f"/admin/authority/{org}",
        json={"fields": fields, "endpoints": endpoints},
        headers=operator,
    )
    assert done.status_code == 200, done.text


async def test_a_version_serves_once_another_person_approves_it_and_every_version_is_kept(
    registry: Registry,
) -> None:
    org, name = f"VN/GOV/T{_tag()}", f"reg-{_tag()}"
    async with registry.client() as http:
        await _authority(
            registry, http, org, ["Citizen.personalId", "Citizen.fullName"], ["127.0.0.1"]
        )
        admin = await registry.staff("agency_admin", org=org, sub="admin-a")
        same_person = await registry.staff("operator", sub="admin-a")
        platform = await registry.staff("operator", sub="platform-op")
        engine = create_engine(registry.database_url)
        try:
            before = await connectors_generation(engine)
            submitted = await http.post(
                "/admin/connectors",
                json={"manifest": rest_manifest(name, registry.population_url)},
                headers=admin,
            )
            assert submitted.status_code == 201, submitted.text
            assert submitted.json() == {"name": name, "version": 1, "status": "pending"}
            assert name not in {c.name for c in await active_connectors(engine)}

            refused = await http.post(
                f"/admin/connectors/{name}/versions/1/approve", headers=same_person
            )
            assert refused.status_code == 403, refused.text
            assert refused.json()["code"] == "FORBIDDEN"
            assert refused.json()["detail"]["reason"] == "submitter"
            by_admin = await http.post(
                f"/admin/connectors/{name}/versions/1/approve", headers=admin
            )
            assert by_admin.status_code == 403

            approved = await http.post(
                f"/admin/connectors/{name}/versions/1/approve", headers=platform
            )
            assert approved.status_code == 200, approved.text
            active = {c.name: c for c in await active_connectors(engine)}
            assert active[name].version == 1
            assert active[name].organisation == org
            assert active[name].origin == "api"
            assert await connectors_generation(engine) > before

            second = await http.post(
                "/admin/connectors",
                json={"manifest": rest_manifest(name, registry.population_url, title="Second")},
                headers=admin,
            )
            assert second.json()["version"] == 2
            ok = await http.post(f"/admin/connectors/{name}/versions/2/approve", headers=platform)
            assert ok.status_code == 200, ok.text

            rolled = await http.post(
                f"/admin/connectors/{name}/rollback", json={"version": 1}, headers=admin
            )
            assert rolled.status_code == 201, rolled.text
            assert rolled.json()["version"] == 3
            again = await http.post(
                f"/admin/connectors/{name}/versions/3/approve", headers=platform
            )
            assert again.status_code == 200, again.text
            active = {c.name: c for c in await active_connectors(engine)}
            assert active[name].version == 3
            assert active[name].manifest["title"] == "Test registry"

            history = (await http.get(f"/admin/connectors/{name}/versions", headers=admin)).json()
            by_version = {v["version"]: v for v in history["versions"]}
            assert [by_version[v]["status"] for v in (1, 2, 3)] == [
                "superseded",
                "superseded",
                "approved",
            ]
            assert by_version[1]["manifestSha256"] == by_version[3]["manifestSha256"]
            assert all(v["submittedBy"] == "admin-a" for v in by_version.values())
            assert all(v["approvedBy"] == "platform-op" for v in by_version.values())
            assert all(v["submittedAt"] and v["approvedAt"] for v in by_version.values())

            detail = (await http.get(f"/admin/connectors/{name}", headers=admin)).json()
            assert detail["status"] == "active"
            assert detail["activeVersion"] == 3

            disabled = await http.post(f"/admin/connectors/{name}/disable", headers=admin)
            assert disabled.status_code == 200, disabled.text
            assert name not in {c.name for c in await active_connectors(engine)}
            detail = (await http.get(f"/admin/connectors/{name}", headers=platform)).json()
            assert detail["status"] == "disabled"
            assert detail["activeVersion"] is None
        finally:
            await engine.dispose()
    actions = [r["action"] for r in await registry.admin_records(name)]
    assert actions == [
        "connector_submitted",
        "connector_approved",
        "connector_submitted",
        "connector_approved",
        "connector_rollback_submitted",
        "connector_approved",
        "connector_disabled",
    ]
    # Each is a record of the verifiable log like any other.
    report = await registry.audit()
    assert report.ok, report.problem


async def test_another_organisations_connector_is_forbidden(registry: Registry) -> None:
    org, other, name = f"VN/GOV/T{_tag()}", f"VN/GOV/O{_tag()}", f"reg-{_tag()}"
    async with registry.client() as http:
        for each in (org, other):
            await _authority(registry, http, each, ["Citizen.fullName"], ["127.0.0.1"])
        admin = await registry.staff("agency_admin", org=org, sub="admin-a")
        intruder = await registry.staff("agency_admin", org=other, sub="admin-b")
        manifest = rest_manifest(name, registry.population_url)
        manifest["entities"]["Citizen"]["fields"] = {"fullName": "ho_ten"}
        done = await http.post("/admin/connectors", json={"manifest": manifest}, headers=admin)
        assert done.status_code == 201, done.text
        answers = [
            await http.post("/admin/connectors", json={"manifest": manifest}, headers=intruder),
            await http.post(f"/admin/connectors/{name}/disable", headers=intruder),
            await http.post(
                f"/admin/connectors/{name}/rollback", json={"version": 1}, headers=intruder
            ),
            await http.get(f"/admin/connectors/{name}", headers=intruder),
            await http.get(f"/admin/connectors/{name}/versions", headers=intruder),
        ]
        listed = await http.get("/admin/connectors", headers=intruder)
        # A connector recorded from the folder is not taken over through the API.
        population = rest_manifest("population", registry.population_url)
        population["entities"]["Citizen"]["fields"] = {"fullName": "ho_ten"}
        taken = await http.post("/admin/connectors", json={"manifest": population}, headers=admin)
        history = await http.get(f"/admin/connectors/{name}/versions", headers=admin)
    assert [a.status_code for a in answers] == [403] * 5
    assert all(a.json()["code"] == "FORBIDDEN" for a in answers)
    assert name not in {c["name"] for c in listed.json()["connectors"]}
    assert taken.status_code == 403
    assert [v["version"] for v in history.json()["versions"]] == [1]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "ftp"}, "kind"),
        ({"base_url": "not a url"}, "base_url"),
        ({"timeout_seconds": -1}, "timeout_seconds"),
        ({"fields": {"personalId": "so_dinh_danh", "shoeSize": "co_giay"}}, "shoeSize"),
        ({"fields": {"personalId": "so_dinh_danh", "birthDate": "ngay_sinh"}}, "birthDate"),
        ({"base_url": "http://127.0.0.2:9/"}, "base_url"),
        ({"priority": 5}, "priority"),
    ],
    ids=[
        "unknown kind",
        "endpoint not a URL",
        "negative timeout",
        "field not in the schema",
        "field outside the authority",
        "host outside the authority",
        "priority over another agency",
    ],
)
async def test_a_manifest_that_cannot_be_registered_is_422_naming_the_field_and_nothing_is_kept(
    registry: Registry, change: dict[str, Any], field: str
) -> None:
    org, name = f"VN/GOV/T{_tag()}", f"reg-{_tag()}"
    manifest = rest_manifest(name, registry.population_url)
    change = dict(change)  # the parameters serve each backend
    fields = change.pop("fields", None)
    if fields is not None:
        manifest["entities"]["Citizen"]["fields"] = fields
    manifest.update(change)
    async with registry.client() as http:
        await _authority(
            registry,
            http,
            org,
            ["Citizen.personalId", "Citizen.fullName", "Citizen.shoeSize"],
            ["127.0.0.1"],
        )
        admin = await registry.staff("agency_admin", org=org, sub="admin-a")
        refused = await http.post("/admin/connectors", json={"manifest": manifest}, headers=admin)
        platform = await registry.staff("operator", sub="platform-op")
        history = await http.get(f"/admin/connectors/{name}/versions", headers=platform)
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert body["code"] == "INVALID_MANIFEST"
    assert body["detail"]["field"].endswith(field)
    assert field in body["message"]
    assert history.status_code == 404
    assert await registry.admin_records(name) == []


async def test_an_organisation_without_authority_registers_nothing(registry: Registry) -> None:
    org, name = f"VN/GOV/T{_tag()}", f"reg-{_tag()}"
    async with registry.client() as http:
        admin = await registry.staff("agency_admin", org=org, sub="admin-a")
        refused = await http.post(
            "/admin/connectors",
            json={"manifest": rest_manifest(name, registry.population_url)},
            headers=admin,
        )
    assert refused.status_code == 403
    assert "authority" in refused.json()["message"]


async def test_approving_what_does_not_exist_is_404_and_only_platform_operators_approve(
    registry: Registry,
) -> None:
    org, name = f"VN/GOV/T{_tag()}", f"reg-{_tag()}"
    async with registry.client() as http:
        await _authority(
            registry,
            http,
            org,
            ["Citizen.*"],
            ["127.0.0.1:" + registry.population_url.rsplit(":", 1)[1]],
        )
        admin = await registry.staff("agency_admin", org=org, sub="admin-a")
        platform = await registry.staff("operator", sub="platform-op")
        own_operator = await registry.staff("operator", org=org, sub="op-own")
        submitted = await http.post(
            "/admin/connectors",
            json={"manifest": rest_manifest(name, registry.population_url)},
            headers=admin,
        )
        assert submitted.status_code == 201, submitted.text
        unknown_version = await http.post(
            f"/admin/connectors/{name}/versions/9/approve", headers=platform
        )
        unknown_name = await http.post(
            f"/admin/connectors/none-{_tag()}/versions/1/approve", headers=platform
        )
        not_platform = await http.post(
            f"/admin/connectors/{name}/versions/1/approve", headers=own_operator
        )
        listed = await http.get("/admin/connectors", headers=own_operator)
    assert unknown_version.status_code == 404
    assert unknown_name.status_code == 404
    assert unknown_version.json()["code"] == "NOT_FOUND"
    assert not_platform.status_code == 403
    pending = {c["name"]: c for c in listed.json()["connectors"]}
    assert pending[name]["pending"] == [1]
    assert pending[name]["status"] == "pending"


async def test_a_dry_run_reports_an_unmapped_column_and_no_value_of_the_sample(
    registry: Registry,
) -> None:
    org, name = f"VN/GOV/T{_tag()}", f"land-{_tag()}"
    manifest = yaml.safe_load((MANIFESTS / "land.yaml").read_text(encoding="utf-8"))
    manifest = {k: v for k, v in manifest.items() if not k.startswith("x-")}
    manifest.update(name=name, priority=200, database={"url": f"sqlite:///{registry.land_path}"})
    manifest["entities"]["LandParcel"]["fields"]["areaM2"] = "dien_tich_sai"
    with sqlite3.connect(registry.land_path) as db:
        db.row_factory = sqlite3.Row
        parcel = dict(db.execute("SELECT * FROM thua_dat ORDER BY ma_thua LIMIT 1").fetchone())
        key = parcel["ma_thua"]
        rows = [parcel]
        for table in ("giay_chung_nhan", "chu_su_dung", "the_chap"):
            rows += [
                dict(r) for r in db.execute(f"SELECT * FROM {table} WHERE ma_thua = ?", (key,))
            ]
    values = {
        str(v)
        for row in rows
        for v in row.values()
        if v is not None and (len(str(v)) >= 3 if isinstance(v, str) else abs(v) >= 100)
    }
    assert key in values
    assert len(values) >= 5
    async with registry.client() as http:
        await _authority(
            registry, http, org, ["LandParcel.*"], [f"sqlite:///{registry.land_path.resolve()}"]
        )
        admin = await registry.staff("agency_admin", org=org, sub="admin-a")
        platform = await registry.staff("operator", sub="platform-op")
        submitted = await http.post("/admin/connectors", json={"manifest": manifest}, headers=admin)
        assert submitted.status_code == 201, submitted.text
        ran = await http.post(
            f"/admin/connectors/{name}/versions/1/dry-run", json={"key": key}, headers=platform
        )
        by_admin = await http.post(
            f"/admin/connectors/{name}/versions/1/dry-run", json={"key": key}, headers=admin
        )
        stranger = await registry.staff("agency_admin", org=f"{org}-KHAC", sub="admin-b")
        by_stranger = await http.post(
            f"/admin/connectors/{name}/versions/1/dry-run", json={"key": key}, headers=stranger
        )
        detail = await http.get(f"/admin/connectors/{name}", headers=admin)
    assert ran.status_code == 200, ran.text
    # The agency's own admin may run it too; an admin of another organisation may not.
    assert by_admin.status_code == 200, by_admin.text
    assert by_stranger.status_code == 403
    report = ran.json()["entities"]["LandParcel"]
    assert report["found"] is True
    assert report["fields"]["areaM2"] == "unmapped"
    assert report["fields"]["parcelId"] == "ok"
    assert report["fields"]["address"] == "ok"
    assert report["latencyMs"] >= 0
    for text in (
        ran.text,
        by_admin.text,
        detail.text,
        orjson.dumps(await registry.admin_records(name)).decode(),
    ):
        # A value as a whole token: not a run of digits inside a timestamp or a hex id.
        leaked = sorted(
            v for v in values if re.search(rf"(?<![0-9A-Za-z]){re.escape(v)}(?![0-9A-Za-z])", text)
        )
        assert leaked == [], leaked
    assert detail.json()["lastDryRun"]["entities"]["LandParcel"]["fields"]["areaM2"] == "unmapped"
    assert [r["action"] for r in await registry.admin_records(name)] == [
        "connector_submitted",
        "connector_dry_run",
        "connector_dry_run",
    ]


async def test_a_file_does_not_replace_a_connector_registered_through_the_api(
    registry: Registry, tmp_path: Path
) -> None:
    from connectors import load_manifests

    org, name = f"VN/GOV/T{_tag()}", f"reg-{_tag()}"
    async with registry.client() as http:
        await _authority(registry, http, org, ["Citizen.fullName"], ["127.0.0.1"])
        admin = await registry.staff("agency_admin", org=org, sub="admin-a")
        platform = await registry.staff("operator", sub="platform-op")
        manifest = rest_manifest(name, registry.population_url)
        manifest["entities"]["Citizen"]["fields"] = {"fullName": "ho_ten"}
        await http.post("/admin/connectors", json={"manifest": manifest}, headers=admin)
        approved = await http.post(f"/admin/connectors/{name}/versions/1/approve", headers=platform)
        assert approved.status_code == 200, approved.text
    (tmp_path / f"{name}.yaml").write_text(
        yaml.safe_dump({**manifest, "title": "From a file"}), encoding="utf-8"
    )
    engine = create_engine(registry.database_url)
    try:
        others = list(load_manifests(MANIFESTS))
        before = await connectors_generation(engine)
        versions = await record_connectors(
            engine, [*others, *load_manifests(tmp_path)], origin=str(MANIFESTS)
        )
        active = {c.name: c for c in await active_connectors(engine)}
        after = await connectors_generation(engine)
    finally:
        await engine.dispose()
    assert name not in versions
    assert active[name].manifest["title"] == "Test registry"
    assert active[name].origin == "api"
    assert after == before  # nothing changed


async def test_loopback_sources_are_refused_without_the_setting(gateway, sign_in) -> None:
    org, name = f"VN/GOV/T{_tag()}", f"reg-{_tag()}"
    async with gateway.client(auth=None) as http:
        operator = await sign_in.staff("operator", sub="platform-op")
        done = await http.put(
            f"/admin/authority/{org}",
            json={"fields": ["Citizen.*"], "endpoints": ["127.0.0.1", "localhost"]},
            headers=operator,
        )
        assert done.status_code == 200, done.text
        admin = await sign_in.staff("agency_admin", org=org, sub="admin-a")
        refused = []
        for base_url in ("http://127.0.0.1:8101", "http://localhost:8101"):
            refused.append(
                await http.post(
                    "/admin/connectors",
                    json={"manifest": rest_manifest(name, base_url)},
                    headers=admin,
                )
            )
        history = await http.get(f"/admin/connectors/{name}/versions", headers=operator)
    for answer in refused:
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"]["field"] == "base_url"
        assert "GATEWAY_CONNECTORS_ALLOW_LOOPBACK" in answer.json()["message"]
    assert history.status_code == 404


async def test_the_command_line_registers_through_the_api_and_keeps_the_four_eyes(
    registry: Registry,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gateway.cli import main

    # In this process, as other tests are: the command's logging set-up would be global.
    monkeypatch.setattr("gateway.logconfig.configure_logging", lambda **_: None)

    def out() -> str:
        """What the command printed, without the gateway's own log lines (same process)."""
        text = capsys.readouterr().out
        return "\n".join(
            line for line in text.splitlines() if not re.match(r"\d{4}-\d\d-\d\d ", line)
        )

    org, name = f"VN/GOV/T{_tag()}", f"reg-{_tag()}"
    manifest = rest_manifest(name, registry.population_url)
    manifest["entities"]["Citizen"]["fields"] = {"fullName": "ho_ten"}
    file = tmp_path / f"{name}.yaml"
    file.write_text(yaml.safe_dump(manifest, allow_unicode=True), encoding="utf-8")
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump({**manifest, "timeout_seconds": -1}), encoding="utf-8")
    async with registry.client() as http:
        await _authority(registry, http, org, ["Citizen.fullName"], ["127.0.0.1"])

    def token(headers: dict[str, str]) -> str:
        return headers["Authorization"].removeprefix("Bearer ")

    admin = token(await registry.staff("agency_admin", org=org, sub="admin-a"))
    same_person = token(await registry.staff("operator", sub="admin-a"))
    platform = token(await registry.staff("operator", sub="platform-op"))
    remote = ["--url", registry.url]
    capsys.readouterr()

    assert main(["connectors", "validate", str(file)]) == 0
    assert out().startswith(f"ok\t{name}\trest")
    assert main(["connectors", "validate", str(broken)]) == 2
    assert f"{broken}:" in capsys.readouterr().err

    assert main(["connectors", "submit", str(file), *remote]) == 2  # no token
    assert "GATEWAY_STAFF_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("GATEWAY_STAFF_TOKEN", admin)
    assert main(["connectors", "submit", str(file), *remote]) == 0, capsys.readouterr().err
    assert orjson.loads(out())["version"] == 1
    assert main(["connectors", "approve", name, "1", "--token", same_person, *remote]) == 1
    assert "403 FORBIDDEN" in capsys.readouterr().err
    assert main(["connectors", "approve", name, "1", "--token", platform, *remote]) == 0
    capsys.readouterr()
    assert main(["connectors", "history", name, *remote]) == 0
    shown = orjson.loads(out())
    assert shown["activeVersion"] == 1
    assert shown["versions"][0]["approvedBy"] == "platform-op"
    assert main(["connectors", "rollback", name, "1", *remote]) == 0
    assert orjson.loads(out())["version"] == 2
    assert main(["connectors", "disable", name, *remote]) == 0
    assert orjson.loads(out())["status"] == "disabled"


def test_the_admin_api_answers_fuzzed_requests_without_a_server_error(registry: Registry) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_dict(
        httpx.get(f"{registry.url}/openapi.json", timeout=10.0).json()
    )
    # Both roles, of the platform's organisation: every check runs, none stops at the role.
    token = httpx.post(
        f"{registry.issuer_url}/demo/staff-login",
        json={"sub": "fuzz", "roles": ["agency_admin", "operator"], "org": PLATFORM},
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    operations = [
        result.ok()
        for result in schema.get_all_operations()
        if result.ok().path.startswith(("/admin/connectors", "/admin/authority"))
    ]
    assert len(operations) >= 10
    answered: dict[str, set[int]] = {}

    def fuzz(operation: Any) -> None:
        @settings(
            max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        @given(case=operation.as_strategy())
        def one(case: Any) -> None:
            response = case.call(base_url=registry.url, headers=headers, timeout=15)
            answered.setdefault(operation.label, set()).add(response.status_code)
            assert response.status_code < 500, (operation.label, response.text)

        one()

    for operation in operations:
        fuzz(operation)
    assert set(answered) == {o.label for o in operations}
    # Not every answer a refusal: the fuzz reaches past validation somewhere.
    assert any(code < 400 for codes in answered.values() for code in codes)


def _leaves(data: Any) -> Iterator[Any]:
    if isinstance(data, dict):
        for value in data.values():
            yield from _leaves(value)
    elif isinstance(data, list):
        for item in data:
            yield from _leaves(item)
    else:
        yield data


async def test_a_dry_run_of_a_rest_source_finds_a_wrong_source_field_and_shows_no_value(
    registry: Registry, dataset: Any
) -> None:
    org, name = f"VN/GOV/T{_tag()}", f"reg-{_tag()}"
    person = dataset.sample.citizens[0]
    manifest = rest_manifest(name, registry.population_url)
    citizen = manifest["entities"]["Citizen"]
    del citizen["fields_param"]  # the whole record: a field it lacks is absent from it
    citizen["fields"] = {
        "personalId": "so_dinh_danh",
        "fullName": "ho_ten_sai",
        "birthDate": "ngay_sinh",
        "gender": {"from": "gioi_tinh", "values": {"Nam": "FEMALE"}},
    }
    async with httpx.AsyncClient() as http:
        record = (await http.get(f"{registry.population_url}/v1/cong-dan/{person}")).json()
    values = {
        str(v)
        for v in _leaves(record)
        if v is not None
        and not isinstance(v, bool)
        and (len(str(v)) >= 3 if isinstance(v, str) else abs(v) >= 100)
    }
    assert person in values
    assert record["ho_ten"] in values
    async with registry.client() as http:
        await _authority(registry, http, org, ["Citizen.*"], ["127.0.0.1"])
        admin = await registry.staff("agency_admin", org=org, sub="admin-a")
        platform = await registry.staff("operator", sub="platform-op")
        submitted = await http.post("/admin/connectors", json={"manifest": manifest}, headers=admin)
        assert submitted.status_code == 201, submitted.text
        ran = await http.post(
            f"/admin/connectors/{name}/versions/1/dry-run",
            json={"key": person, "entity": "Citizen"},
            headers=platform,
        )
        detail = await http.get(f"/admin/connectors/{name}", headers=admin)
    assert ran.status_code == 200, ran.text
    assert detail.json()["calls"] == {
        "lastHour": 1,
        "errorsLastHour": 0,
        "sinceStart": 1,
        "errors": 0,
    }
    report = ran.json()["entities"]["Citizen"]
    assert report["found"] is True
    fields = report["fields"]
    assert fields["personalId"] == "ok"
    assert fields["fullName"] == "unmapped"
    assert fields["birthDate"] == "ok"
    # A value the mapping's table does not know: "Nữ" maps to nothing here.
    expected_gender = "ok" if record["gioi_tinh"] == "Nam" else "type_mismatch"
    assert fields["gender"] == expected_gender
    leaked = sorted(
        v for v in values if re.search(rf"(?<![0-9A-Za-z]){re.escape(v)}(?![0-9A-Za-z])", ran.text)
    )
    assert leaked == [], leaked
