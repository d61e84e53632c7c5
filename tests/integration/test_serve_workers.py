"""`gateway serve --workers N`: worker processes on one host share Redis and one log.

The gateway runs as `gateway serve --workers 3`, real processes on one port: which
worker takes a connection is the kernel's choice, so requests go on connections of
their own, spaced a little, and the test reads (`ss`) which processes held them.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

import sandbox
from tests.integration.conftest import free_port
from tests.rate_windows import inside_one_window

RESIDENCE = "1.004222"
WORKERS = 3
MANIFESTS = Path(sandbox.__file__).parent / "manifests"


def _env(database_url: str, keys: Path, **more: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_KEYS_DIR": str(keys),
        **{f"GATEWAY_{name.upper()}": value for name, value in more.items()},
    }


def _gateway(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_several_workers_refuse_to_start_without_redis(database_url: str, tmp_path: Path) -> None:
    unset = _gateway(_env(database_url, tmp_path / "keys"), "serve", "--workers", "2")
    assert unset.returncode == 2, unset.stderr
    assert "several workers need Redis (GATEWAY_REDIS_URL)" in unset.stderr
    # Configured, but nothing answers there: refused before any worker starts.
    silent = f"redis://127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    down = _gateway(
        _env(database_url, tmp_path / "keys", redis_url=silent), "serve", "--workers", "2"
    )
    assert down.returncode == 2, down.stderr
    assert "the Redis of GATEWAY_REDIS_URL does not answer" in down.stderr
    assert silent not in down.stderr
    assert time.monotonic() - started < 60


def _workers_of(port: int) -> set[int]:
    """The processes holding the established connections to `port`."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {int(pid) for pid in re.findall(r"pid=(\d+)", out)}


@pytest.fixture
def workers(
    migrated: str,
    redis_url: str,
    population_url: str,
    business_url: str,
    insurance_url: str,
    land_url: str,
    tmp_path: Path,
) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    env = _env(
        migrated,
        tmp_path / "keys",
        redis_url=redis_url,
        connectors_dir=str(MANIFESTS),
        connector_urls=json.dumps(
            {
                "population": population_url,
                "business": business_url,
                "insurance": insurance_url,
                "land": land_url,
            }
        ),
        origin="http://127.0.0.1:8000",
        port=str(port),
        rate_limit_officer="3",
        log_level="warning",
    )
    generated = _gateway(env, "keys", "generate")
    assert generated.returncode == 0, generated.stderr
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--workers", str(WORKERS)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        yield url, env
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


async def _send(
    url: str, body: bytes, token: str, held: list[httpx.AsyncClient], delay: float
) -> httpx.Response:
    """One request on a connection of its own, kept open until the caller closes it."""
    await asyncio.sleep(delay)
    client = httpx.AsyncClient(base_url=url, timeout=30)
    held.append(client)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    return await client.post("/graphql", content=body, headers=headers)


async def _spread(
    url: str, requests: list[tuple[bytes, str]], gap: float = 0.03
) -> tuple[list[int], set[int]]:
    """Send all, a few milliseconds apart; statuses, and the workers that answered.

    A worker that wakes accepts every connection waiting: sent in one burst, they would
    all go to one worker. Spaced out, the next one arrives while that worker is busy.
    """
    held: list[httpx.AsyncClient] = []
    try:
        responses = await asyncio.gather(
            *(_send(url, b, t, held, i * gap) for i, (b, t) in enumerate(requests))
        )
        port = int(url.rsplit(":", 1)[1])
        return [r.status_code for r in responses], _workers_of(port)
    finally:
        for client in held:
            await client.aclose()


@pytest.mark.own_database
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_workers_share_replay_protection_limits_and_one_log(
    workers: tuple[str, dict[str, str]], signer: Any, dataset: Any
) -> None:
    url, env = workers
    person = dataset.sample.citizens[0]
    body = orjson.dumps({"query": f'{{ citizen(personalId: "{person}") {{ fullName }} }}'})

    def token(officer: str) -> str:
        signed: str = signer.sign(body, procedure=RESIDENCE, subjects=[person], officer=officer)
        return signed

    # Requests of different officers: served, by several workers. On a loaded machine
    # one worker may win every wake-up of a round; the next round is spaced wider.
    answering: set[int] = set()
    served_first = 0
    for spacing in range(5):
        batch = [(body, token(f"o-{spacing}-{i}")) for i in range(12)]
        statuses, pids = await _spread(url, batch, gap=0.03 * (spacing + 1))
        assert statuses == [200] * 12
        served_first += 12
        answering |= pids
        if len(answering) >= 2:
            break
    assert len(answering) >= 2, f"one worker took every connection: {answering}"

    # A token spent once is refused on every later connection, whichever worker takes it.
    spent = token("o-replay")
    first, _ = await _spread(url, [(body, spent)])
    assert first == [200]
    async with httpx.AsyncClient(base_url=url) as http:
        again = await http.post(
            "/graphql",
            content=body,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {spent}"},
        )
    assert again.status_code == 401
    assert again.json()["code"] == "TOKEN_REPLAYED"
    refusing: set[int] = set()
    for _ in range(5):  # until workers other than the one that took it have refused it
        replays, pids = await _spread(url, [(body, spent)] * 8)
        assert replays == [401] * 8
        refusing |= pids
        if len(refusing) >= 2:
            break
    assert len(refusing) >= 2, f"one worker took every replay: {refusing}"

    # One officer's limit (3 a minute) holds across the workers, not 3 at each.
    served_limited = 0
    for _ in range(5):  # until the officer's requests reached several workers
        await inside_one_window()  # the eight are counted in one minute's window
        officer = f"o-limit-{uuid.uuid4().hex[:6]}"
        limited, pids = await _spread(url, [(body, token(officer)) for _ in range(8)])
        assert sorted(limited) == [200] * 3 + [429] * 5
        served_limited += 3
        if len(pids) >= 2:
            break
    assert len(pids) >= 2, f"one worker took every request of the officer: {pids}"

    # One sequencer: every record in the log once, and the log verifies.
    served = served_first + 1 + served_limited
    for _ in range(60):
        integrated = _gateway(env, "log", "integrate")
        assert integrated.returncode == 0, integrated.stderr
        verified = _gateway(env, "audit", "verify")
        if verified.returncode == 0 and "(0 queued)" in verified.stdout:
            break
        await asyncio.sleep(0.5)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    found = re.search(r"(\d+) leaves recomputed", verified.stdout)
    assert found, verified.stdout
    leaves = int(found.group(1))
    # Every request served is in it (and the records of refusals and of the client).
    assert leaves > served
