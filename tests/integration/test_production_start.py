"""Production from nothing, exactly as the README's "Running it for real" says.

The README's commands run as written, in a folder with nothing in it; only the
values that name a deployment's own places (database, Redis, folders, origin) are this
machine's: a PostgreSQL database made for the test and the local Redis.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import sandbox
from sandbox import SandboxSettings, land
from tests.integration.conftest import free_port

MANIFESTS = Path(sandbox.__file__).parent / "manifests"
README = Path(__file__).parents[2] / "README.md"


def production_steps() -> list[str]:
    """The shell lines of the README's production block, continuations joined."""
    section = README.read_text(encoding="utf-8").split("## Running it for real", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the production section has a sh block"
    text = block.group(1).replace("\\\n", " ")
    lines = []
    for line in text.splitlines():
        command = " ".join(shlex.split(line, comments=True))
        if command:
            lines.append(command)
    return lines


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_production_starts_from_nothing_as_the_readme_says(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    port = free_port()
    here = {
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_REDIS_URL": redis_url,
        "GATEWAY_KEYS_DIR": str(tmp_path / "keys"),
        "GATEWAY_CONNECTORS_DIR": str(MANIFESTS),
        "GATEWAY_ORIGIN": f"http://127.0.0.1:{port}",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_PORT"] = str(port)  # the test's own port; the README's is the default
    # The land registry's manifest reads var/land.db (`python -m sandbox land` writes it).
    settings = SandboxSettings(citizens=300)
    land.write_sqlite(tmp_path / "var" / "land.db", land.build(settings))
    outputs: list[str] = []
    served: subprocess.Popen[bytes] | None = None
    log = tmp_path / "serve.log"
    try:
        for step in production_steps():
            words = shlex.split(step)
            if words[0] == "export":
                for assignment in words[1:]:
                    name, value = assignment.split("=", 1)
                    env[name] = here.get(name, value)
                continue
            assert words[0] == "gateway", f"not a gateway command: {step}"
            command = [sys.executable, "-m", "gateway", *words[1:]]
            if words[1:] == ["serve"]:
                with log.open("wb") as sink:
                    served = subprocess.Popen(
                        command, cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT
                    )
                continue
            done = subprocess.run(
                command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
            )
            outputs += [done.stdout, done.stderr]
            assert done.returncode == 0, f"{step}:\n{done.stdout}{done.stderr}"
        assert served is not None, "the README starts the gateway"
        assert env.get("GATEWAY_ENVIRONMENT") == "production"
        url = f"http://127.0.0.1:{port}"
        ready = None
        for _ in range(300):
            assert served.poll() is None, log.read_text()
            try:
                ready = httpx.get(f"{url}/readyz", timeout=1.0)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        assert ready is not None, log.read_text()
        assert ready.status_code == 200, log.read_text()
        assert httpx.get(f"{url}/healthz", timeout=5.0).status_code == 200
        assert ready.json()["status"] == "ready"
    finally:
        if served is not None:
            served.terminate()
            served.wait(timeout=15)
    # The keys and the pseudonym secret exist; the secret is never printed or logged.
    keys = Path(env.get("GATEWAY_KEYS_DIR", tmp_path / "var" / "keys"))
    secret = (keys / "secrets" / "pseudonyms.key").read_text().strip()
    assert len(secret) == 64
    outputs.append(log.read_text())
    for text in outputs:
        assert secret not in text
        assert "PRIVATE KEY" not in text
