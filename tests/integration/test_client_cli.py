"""Registering a client from the command line, then calling the gateway as it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

RESIDENCE = "1.004222"


# The command line's work does not depend on the backend; it registers fixed client ids.
pytestmark = [
    pytest.mark.parametrize("backend", ["sqlite"], indirect=True),
    pytest.mark.own_database,
]


def _cli(
    *args: str, env: dict[str, str], stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env={**os.environ, **env},
        input=stdin.decode() if stdin else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_register_sign_call_suspend(gateway_factory, dataset, tmp_path) -> None:
    gateway = gateway_factory()
    env = {
        "GATEWAY_DATABASE_URL": gateway.settings.database_url.get_secret_value(),
        "GATEWAY_CLIENT_KEYS_DIR": str(tmp_path / "cli-keys"),
        "GATEWAY_ORIGIN": gateway.settings.origin,
    }
    client = "VN/GOV/UBND-HCM/mot-cua"
    added = _cli(
        "clients", "add", client, "--name", "Một cửa", "--organisation", "UBND TP.HCM",
        "--kind", "commune_police", env=env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["status"] == "active"
    again = _cli(
        "clients", "add", client, "--name", "x", "--organisation", "y", "--kind", "commune_police",
        env=env,
    )  # fmt: skip
    assert again.returncode == 2
    assert "CONFLICT" in again.stderr
    bad_kind = _cli(
        "clients", "add", "VN/GOV/X/y", "--name", "x", "--organisation", "y", "--kind", "nope",
        env=env,
    )  # fmt: skip
    assert bad_kind.returncode == 2
    assert "INVALID_ARGUMENT" in bad_kind.stderr
    key = _cli("clients", "keys", "add", client, "--generate", env=env)
    assert key.returncode == 0, key.stderr
    kid = json.loads(key.stdout)["kid"]
    listed = json.loads(_cli("clients", "list", env=env).stdout)
    mine = next(c for c in listed if c["id"] == client)
    assert mine["keys"] == [{"kid": kid, "alg": "EdDSA", "status": "active"}]

    person = dataset.sample.citizens[0]
    body = json.dumps({"query": f'{{ citizen(personalId: "{person}") {{ fullName }} }}'}).encode()

    def call() -> httpx.Response:
        token = _cli(
            "token", "--client", client, "--procedure", RESIDENCE, "--case", "HS-1",
            "--officer", "can-bo-1", "--subject", person, "--body", "-", env=env, stdin=body,
        )  # fmt: skip
        assert token.returncode == 0, token.stderr
        return httpx.post(
            f"{gateway.url}/graphql",
            content=body,
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {token.stdout.strip()}",
            },
        )

    assert call().json()["data"]["citizen"]["fullName"] == dataset.citizens[person]["ho_ten"]
    assert _cli("clients", "suspend", client, env=env).returncode == 0
    assert call().status_code == 401
    assert _cli("clients", "activate", client, env=env).returncode == 0
    assert call().status_code == 200
    # A thumbprint may begin with `-`: after `--` it is never read as an option.
    assert _cli("clients", "keys", "revoke", client, "--", kid, env=env).returncode == 0
    refused = call()
    assert refused.status_code == 401
    assert refused.json()["code"] == "BAD_SIGNATURE"


async def test_a_public_key_from_a_file(gateway_factory, tmp_path) -> None:
    from joserfc.jwk import ECKey

    gateway = gateway_factory()
    env = {"GATEWAY_DATABASE_URL": gateway.settings.database_url.get_secret_value()}
    assert _cli(
        "clients", "add", "VN/GOV/BHXH/tra-cuu", "--name", "n", "--organisation", "o",
        "--kind", "social_insurance", env=env,
    ).returncode == 0  # fmt: skip
    key = ECKey.generate_key("P-256")
    public = tmp_path / "key.jwk"
    public.write_text(json.dumps(key.as_dict(private=False)))
    added = _cli("clients", "keys", "add", "VN/GOV/BHXH/tra-cuu", "--jwk", str(public), env=env)
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["alg"] == "ES256"
    private = tmp_path / "private.jwk"
    private.write_text(json.dumps(key.as_dict(private=True)))
    refused = _cli("clients", "keys", "add", "VN/GOV/BHXH/tra-cuu", "--jwk", str(private), env=env)
    assert refused.returncode == 2
    assert "private" in refused.stderr
