"""What operators see: health, readiness, metrics, keys, migrations and start-up checks."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from gateway.storage import create_engine, current_revision, head_revision, list_connectors

SANDBOX_CONNECTORS = {"population", "business", "insurance", "civil", "land", "dossiers"}
"""The connectors of the sandbox's manifests."""


async def _ready(client) -> dict:
    """`/readyz` once it says ready (at most 10 s): each check has 2 s to answer, which a
    busy test machine may take; a probe asks again, as a deployment's would."""
    for _ in range(20):
        response = await client.get("/readyz")
        if response.status_code == 200:
            break
        await asyncio.sleep(0.5)
    return response.json()


@pytest.mark.own_database  # the log's lag must be this gateway's alone
async def test_health_readiness_metrics_and_keys(gateway, sign_in) -> None:
    operator = await sign_in.staff("operator")
    await gateway.caught_up()  # the test client's registration, queued before it started
    async with gateway.client() as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert await _ready(client) == {"status": "ready"}
        ready = await client.get("/admin/readiness", headers=operator)
        assert ready.status_code == 200
        body = ready.json()
        assert body["database"]["ok"]
        assert body["database"]["revision"] == head_revision()
        assert body["keys"] == {"checkpoints": True, "consent": True, "receipts": True}
        assert body["redis"] is None
        assert set(body["connectors"]) == SANDBOX_CONNECTORS
        assert body["connectors"]["population"]["version"] == 1
        assert body["log"]["ok"] is True
        assert body["log"]["maxMergeDelaySeconds"] == 1.0
        assert body["log"]["size"] >= 0
        assert body["log"]["lagSeconds"] <= 1.0
        assert "log" not in body["degraded"]
        await client.post("/graphql", json={"query": "{ __typename }"})
        metrics = (await client.get("/metrics", headers=operator)).text
        assert 'gateway_http_requests_total{route="/graphql",status="200"}' in metrics
        jwks = (await client.get("/.well-known/jwks.json")).json()
        assert {k["purpose"] for k in jwks["keys"]} == {"checkpoints", "consent", "receipts"}
        assert all(
            k["kty"] == "OKP" and k["crv"] == "Ed25519" and "d" not in k for k in jwks["keys"]
        )


async def test_readiness_checks_redis_when_configured(gateway_factory, redis_url, sign_in) -> None:
    operator = await sign_in.staff("operator")
    gateway = gateway_factory(redis_url=redis_url)
    async with gateway.client() as client:
        detail = await client.get("/admin/readiness", headers=operator)
        assert detail.json()["redis"] == {"ok": True}
    broken = gateway_factory(redis_url="redis://127.0.0.1:1/0")
    async with broken.client() as client:
        response = await client.get("/readyz")
        detail = await client.get("/admin/readiness", headers=operator)
    assert response.status_code == 503
    assert response.json() == {"status": "not_ready"}
    assert detail.status_code == 503
    assert detail.json()["redis"]["ok"] is False


async def test_readiness_in_public_says_ready_or_not_and_nothing_else(
    gateway, dataset, sign_in
) -> None:
    # Something counted first, so that there are procedures, agencies and sources to tell.
    person = dataset.sample.citizens[0]
    served = await gateway.post(f'{{ citizen(personalId: "{person}") {{ fullName }} }}')
    assert served.status_code == 200
    async with gateway.client(auth=None) as http:
        ready = await http.get("/readyz")
        anonymous = await http.get("/admin/readiness")
        citizen = await http.get("/admin/readiness", headers=await sign_in.citizen(person))
        auditor = await http.get("/admin/readiness", headers=await sign_in.staff("auditor"))
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}
    for name in ("population", "business", "1.004222", "Test agency", gateway.signer.client_id):
        assert name not in ready.text
    assert anonymous.status_code == 401
    assert (citizen.status_code, auditor.status_code) == (403, 403)


async def test_metrics_need_an_operator_or_the_metrics_token(gateway_factory, sign_in) -> None:
    secret = "s3cret-for-the-scraper-" + "x" * 20
    gateway = gateway_factory(metrics_token=secret)
    async with gateway.client(auth=None) as http:
        anonymous = await http.get("/metrics")
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
        auditor = await http.get("/metrics", headers=await sign_in.staff("auditor"))
        scraper = await http.get("/metrics", headers={"Authorization": f"Bearer {secret}"})
        operator = await http.get("/metrics", headers=await sign_in.staff("operator"))
        # An operator of one agency only: the counters are every agency's.
        scoped = await http.get(
            "/metrics", headers=await sign_in.staff("operator", org="VN/GOV/UBND-HCM")
        )
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "UNAUTHENTICATED"
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert wrong.status_code == 401
    assert auditor.status_code == 403
    assert scraper.status_code == 200
    assert "gateway_http_requests_total" in scraper.text
    assert operator.status_code == 200
    assert "gateway_http_requests_total" in operator.text
    assert scoped.status_code == 403
    assert secret not in scraper.text


async def test_metrics_without_the_token_setting_need_an_operator(gateway) -> None:
    async with gateway.client(auth=None) as http:
        assert (await http.get("/metrics")).status_code == 401
        guessed = await http.get("/metrics", headers={"Authorization": "Bearer None"})
    assert guessed.status_code == 401


async def test_migrations_reach_head_and_record_connectors(gateway, migrated) -> None:
    engine = create_engine(migrated)
    try:
        assert await current_revision(engine) == head_revision()
        rows = {r["name"]: r for r in await list_connectors(engine)}
    finally:
        await engine.dispose()
    # The files of the connectors folder (other tests of this database register more
    # through /admin: those are recorded with origin `api`).
    files = {n: r for n, r in rows.items() if r["origin"] != "api"}
    assert set(files) == SANDBOX_CONNECTORS
    assert all(r["version"] == 1 and r["status"] == "active" for r in files.values())


@pytest.mark.own_database  # it records other manifests
async def test_a_changed_manifest_is_a_new_version_and_a_dropped_one_is_removed(
    gateway_factory, migrated, tmp_path, manifests
) -> None:
    gateway_factory().server.stop()
    folder = tmp_path / "changed"
    folder.mkdir()
    data = yaml.safe_load((manifests / "population.yaml").read_text(encoding="utf-8"))
    data["timeout_seconds"] = 1.5
    (folder / "population.yaml").write_text(
        yaml.safe_dump(data, allow_unicode=True), encoding="utf-8"
    )
    gateway_factory(
        connectors_dir=folder,
        connector_urls={
            "business": None,
            "insurance": None,
            "civil": None,
            "land": None,
            "dossiers": None,
        },
    ).server.stop()
    engine = create_engine(migrated)
    try:
        rows = {r["name"]: r for r in await list_connectors(engine)}
        async with engine.connect() as conn:
            stored = await conn.scalar(
                sa.text("SELECT manifest FROM connectors WHERE name = 'population'")
            )
    finally:
        await engine.dispose()
    assert rows["population"]["version"] == 2
    assert rows["business"]["status"] == "removed"
    stored = stored if isinstance(stored, dict) else __import__("json").loads(stored)
    assert stored["timeout_seconds"] == 1.5


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_serve_refuses_a_database_that_is_not_migrated(database_url, tmp_path) -> None:
    env = {"GATEWAY_DATABASE_URL": database_url, "GATEWAY_KEYS_DIR": str(tmp_path / "k")}
    result = _cli("serve", "--port", "0", env=env)
    assert result.returncode == 2
    assert "run `gateway db upgrade`" in result.stderr
    assert _cli("db", "current", env=env).returncode == 1
    upgraded = _cli("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    current = _cli("db", "current", env=env)
    assert current.returncode == 0
    assert f"current: {head_revision()}" in current.stdout


def test_serve_refuses_a_broken_manifest_naming_file_and_line(
    migrated, tmp_path, manifests
) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    text = (manifests / "population.yaml").read_text(encoding="utf-8")
    (folder / "population.yaml").write_text(
        text.replace("timeout_seconds: 2.0", "timeout_seconds: -1"), encoding="utf-8"
    )
    lines = text.splitlines()
    line = next(i for i, text_line in enumerate(lines, 1) if text_line.startswith("timeout_"))
    env = {
        "GATEWAY_DATABASE_URL": migrated,
        "GATEWAY_KEYS_DIR": str(tmp_path / "k"),
        "GATEWAY_CONNECTORS_DIR": str(folder),
    }
    result = _cli("serve", "--port", "0", env=env)
    assert result.returncode == 2
    assert f"population.yaml:{line}: timeout_seconds" in result.stderr


def test_several_workers_need_redis_and_postgresql(tmp_path: Path) -> None:
    sqlite = _cli(
        "serve",
        "--workers",
        "2",
        env={"GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db"},
    )
    assert sqlite.returncode != 0
    assert "one process" in sqlite.stderr
    pg = _cli(
        "serve",
        "--workers",
        "2",
        env={"GATEWAY_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1/test"},
    )
    assert "need Redis" in pg.stderr
