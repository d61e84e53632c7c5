"""Command-line commands a newcomer runs against a real database, gateway and issuer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any


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
