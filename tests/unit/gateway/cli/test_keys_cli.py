"""`gateway keys generate` makes every key and secret a production gateway needs."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}",
        "GATEWAY_KEYS_DIR": str(tmp_path / "keys"),
        "GATEWAY_CLIENT_KEYS_DIR": str(tmp_path / "client-keys"),
    }


# -- keys and secrets ---------------------------------------------------------------------


def test_keys_generate_makes_every_key_and_secret_production_needs(
    env: dict[str, str], tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    first = _cli("keys", "generate", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    secret_file = keys / "secrets" / "pseudonyms.key"
    secret = secret_file.read_text().strip()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert secret not in first.stdout + first.stderr
    named = [line.split("\t")[0] for line in first.stdout.splitlines()]
    assert named == ["checkpoints", "consent", "receipts", "pseudonyms"]
    # Production loads them all as they are.
    production = {**env, "GATEWAY_ENVIRONMENT": "production"}
    shown = _cli("keys", "show", env=production, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    # Again: new signing keys, the same secret (a new one would unlink past pseudonyms).
    second = _cli("keys", "generate", env=env, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert secret_file.read_text().strip() == secret
    assert secret not in second.stdout + second.stderr
    assert len(list((keys / "checkpoints").glob("*.pem"))) == 2
