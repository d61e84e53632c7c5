"""The `gateway` command run as a newcomer runs it: a process of its own, in a folder."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Cli = Callable[..., subprocess.CompletedProcess[str]]


def _run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`gateway ARGS` with `env` over this environment minus its GATEWAY_ settings."""
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
def cli() -> Cli:
    """Runs `gateway` in a process: `cli(*args, env=..., cwd=...)`."""
    return _run


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Settings of a gateway of the test's own: a SQLite database and key folders."""
    return {
        "GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}",
        "GATEWAY_KEYS_DIR": str(tmp_path / "keys"),
        "GATEWAY_CLIENT_KEYS_DIR": str(tmp_path / "client-keys"),
    }
