"""Command-line commands a newcomer runs against a real database, gateway and issuer."""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from gateway.storage import create_engine, events, log_leaves, log_queue

RESIDENCE = "1.004222"
NEVER_SEEN = "079203001234"


def _cli(
    *args: str, env: dict[str, str], stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env={**clean, **env},
        input=stdin.decode() if stdin else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _env(gateway: Any, **more: str) -> dict[str, str]:
    settings = gateway.settings
    return {
        "GATEWAY_DATABASE_URL": settings.database_url.get_secret_value(),
        "GATEWAY_KEYS_DIR": str(settings.keys_dir),
        "GATEWAY_CLIENT_KEYS_DIR": str(settings.client_keys_dir),
        "GATEWAY_CATALOGUE_DIR": str(settings.catalogue_dir),
        "GATEWAY_ORIGIN": settings.origin,
        **more,
    }


def test_connectors_list_shows_the_recorded_connectors(gateway) -> None:
    listed = _cli("connectors", "list", env=_env(gateway))
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert {"population", "business"} <= set(rows)
    assert rows["population"]["kind"] == "rest"
    assert rows["population"]["status"] == "active"
    assert rows["population"]["version"] >= 1


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_key_generated_with_a_kid_signs_tokens_the_gateway_accepts(
    gateway, dataset, tmp_path: Path
) -> None:
    client = f"VN/GOV/UBND-HN/mot-cua-{uuid.uuid4().hex[:8]}"
    env = _env(gateway, GATEWAY_CLIENT_KEYS_DIR=str(tmp_path / "cli-keys"))
    added = _cli(
        "clients", "add", client, "--name", "n", "--organisation", "o",
        "--kind", "commune_police", env=env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    key = _cli("clients", "keys", "add", client, "--generate", "--kid", "laptop-1", env=env)
    assert key.returncode == 0, key.stderr
    assert json.loads(key.stdout)["kid"] == "laptop-1"

    person = dataset.sample.citizens[0]
    body = json.dumps({"query": f'{{ citizen(personalId: "{person}") {{ fullName }} }}'}).encode()
    for kid in ([], ["--kid", "laptop-1"]):
        token = _cli(
            "token", "--client", client, "--procedure", RESIDENCE, "--case", "HS-1",
            "--officer", "can-bo-1", "--subject", person, "--body", "-", *kid,
            env=env, stdin=body,
        )  # fmt: skip
        assert token.returncode == 0, token.stderr
        header = json.loads(base64.urlsafe_b64decode(token.stdout.split(".")[0] + "=="))
        assert header["kid"] == "laptop-1"
        answer = httpx.post(
            f"{gateway.url}/graphql",
            content=body,
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {token.stdout.strip()}",
            },
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"]["citizen"]["fullName"] == dataset.citizens[person]["ho_ten"]


async def _log_snapshot(database_url: str) -> tuple[list[str], int, int]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            ids = list((await conn.execute(sa.select(events.c.id).order_by(events.c.id))).scalars())
            queued = await conn.scalar(sa.select(sa.func.count()).select_from(log_queue))
            leaves = await conn.scalar(sa.select(sa.func.count()).select_from(log_leaves))
    finally:
        await engine.dispose()
    return ids, int(queued or 0), int(leaves or 0)


@pytest.mark.own_database
async def test_forgetting_someone_never_seen_is_not_found_and_writes_nothing(
    gateway, dataset
) -> None:
    person = dataset.sample.citizens[0]
    served = await gateway.query(f'{{ citizen(personalId: "{person}") {{ fullName }} }}')
    assert served["data"]["citizen"]["fullName"]
    assert (await gateway.audit()).ok
    database_url = gateway.settings.database_url.get_secret_value()
    before = await _log_snapshot(database_url)
    assert before[0]

    refused = _cli("audit", "forget", NEVER_SEEN, "--operator", "op-1", env=_env(gateway))
    assert refused.returncode == 2, refused.stdout
    assert "NOT_FOUND" in refused.stderr
    assert refused.stdout == ""
    assert await _log_snapshot(database_url) == before


def test_sign_in_defaults_to_the_demos_issuer_when_it_runs(
    issuer_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any
) -> None:
    from gateway.cli import _identity

    monkeypatch.delenv("GATEWAY_OIDC_ISSUER", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setattr(_identity, "DEMO_ISSUER", issuer_url)
    staff = argparse.Namespace(issuer=None, role=["operator"], org="VN/GOV/BCA", sub="demo-staff")
    assert _identity.staff_token(staff) == 0
    token = capsys.readouterr().out.strip()
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert (claims["iss"], claims["roles"], claims["org"]) == (
        issuer_url,
        ["operator"],
        "VN/GOV/BCA",
    )
    citizen = argparse.Namespace(issuer=None, personal_id="001099012345", level=2)
    assert _identity.citizen_token(citizen) == 0
    claims = json.loads(base64.urlsafe_b64decode(capsys.readouterr().out.split(".")[1] + "=="))
    assert claims["sub"] == "001099012345"


@pytest.mark.own_database
async def test_registering_adding_and_revoking_a_key_leave_three_admin_records(
    gateway, sign_in, tmp_path: Path
) -> None:
    client = f"VN/GOV/CA-HN/cu-tru-{uuid.uuid4().hex[:8]}"
    env = _env(gateway, GATEWAY_CLIENT_KEYS_DIR=str(tmp_path / "cli-keys"))
    for args in (
        (
            "clients",
            "add",
            client,
            "--name",
            "n",
            "--organisation",
            "o",
            "--kind",
            "commune_police",
        ),
        ("clients", "keys", "add", client, "--generate", "--kid", "insider-1"),
        ("clients", "keys", "revoke", client, "insider-1"),
    ):
        done = _cli(*args, env=env)
        assert done.returncode == 0, done.stderr
    report = await gateway.audit()
    assert report.ok

    auditor = await sign_in.staff("auditor", org="VN/GOV/TTCP")
    async with gateway.client(auth=None) as http:
        found = await http.get(
            "/audit/events", params={"type": "admin", "client": client}, headers=auditor
        )
    assert found.status_code == 200, found.text
    records = found.json()["events"]
    assert [(e["envelope"]["action"], e["envelope"].get("kid")) for e in records[::-1]] == [
        ("client_registered", None),
        ("key_added", "insider-1"),
        ("key_revoked", "insider-1"),
    ]
    actor = records[0]["envelope"]["operator"]
    assert actor
    assert all(e["envelope"]["operator"] == actor for e in records)
    assert "cli:" not in found.text  # the command line's user only as a pseudonym

    # In the public log, and the log still verifies.
    engine = create_engine(gateway.settings.database_url.get_secret_value())
    try:
        async with engine.connect() as conn:
            integrated = set(
                (
                    await conn.execute(
                        sa.select(log_leaves.c.event_id).where(
                            log_leaves.c.event_id.in_([e["id"] for e in records])
                        )
                    )
                ).scalars()
            )
    finally:
        await engine.dispose()
    assert integrated == {e["id"] for e in records}
    verified = _cli("audit", "verify", env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
