"""A gateway told to stop finishes what it began, records it, and leaves the log free.

`gateway serve` runs as a process of its own on PostgreSQL and Redis; its population
source is slowed by the fault proxy so that a request is still in flight when the
process gets SIGTERM. The request is answered with its data and its record, the process
exits cleanly, and the log's lock is free at once for another sequencer.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from conftest import HANG_GUARD

import sandbox
from gateway.log import checkpoint_verifiers
from gateway.records import verify_database
from gateway.storage import create_engine
from keys import KeyRing
from tests.integration.conftest import free_port

RESIDENCE = "1.004222"
MANIFESTS = Path(sandbox.__file__).parent / "manifests"

pytestmark = pytest.mark.own_database


def _text(log: Path) -> str:
    return log.read_text()


async def _ready(url: str, process: asyncio.subprocess.Process, log: Path) -> None:
    async with httpx.AsyncClient(timeout=HANG_GUARD) as http, asyncio.timeout(HANG_GUARD):
        while True:
            assert process.returncode is None, _text(log)
            try:
                if (await http.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)


async def test_a_stopped_gateway_finishes_and_records_its_requests_and_frees_the_log(
    place: Any,
    signer: Any,
    population_url: str,
    business_url: str,
    land_url: str,
    redis_url: str,
    issuer_url: str,
    dataset: Any,
    faults: Any,
    tmp_path: Path,
) -> None:
    slow_url, source = faults.to(population_url)
    source.delay(0.3)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        {
            "GATEWAY_DATABASE_URL": place.database_url,
            "GATEWAY_REDIS_URL": redis_url,
            "GATEWAY_KEYS_DIR": str(place.keys_dir),
            "GATEWAY_CONNECTORS_DIR": str(MANIFESTS),
            "GATEWAY_CONNECTOR_URLS": json.dumps(
                {"population": slow_url, "business": business_url, "land": land_url}
            ),
            "GATEWAY_ORIGIN": signer.audience,
            "GATEWAY_OIDC_ISSUER": issuer_url,
            "GATEWAY_PORT": str(port),
        }
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "serve", env=env, stdout=sink, stderr=sink
        )
    try:
        await _ready(url, process, log)
        person = dataset.sample.citizens[0]
        body = json.dumps(
            {"query": f'{{ citizen(personalId: "{person}") {{ fullName }} }}'}
        ).encode()
        token = signer.sign(body, procedure=RESIDENCE, subjects=[person], case=uuid.uuid4().hex)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url, timeout=HANG_GUARD) as http:
            sent = source.sent
            in_flight = asyncio.create_task(http.post("/graphql", content=body, headers=headers))
            # Stopped once the request has reached its source, before the source answers.
            async with asyncio.timeout(HANG_GUARD):
                while True:
                    if source.sent > sent:
                        break
                    await asyncio.sleep(0.01)
            process.send_signal(signal.SIGTERM)
            answer = await in_flight
        async with asyncio.timeout(HANG_GUARD):
            code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert answer.status_code == 200, _text(log)
    assert answer.json()["data"]["citizen"]["fullName"], answer.text
    # Stopped cleanly: uvicorn ends by raising the signal it handled again.
    assert code in (0, -signal.SIGTERM), _text(log)
    assert "Application shutdown complete." in _text(log)
    request_id = answer.headers["X-Request-Id"]
    engine = create_engine(place.database_url)
    try:
        async with engine.connect() as conn:
            outcome = await conn.scalar(
                sa.text("SELECT outcome FROM events WHERE request_id = :r AND type = 'access'"),
                {"r": request_id},
            )
        # Nobody holds the log's lock: it is taken at once, without waiting.
        async with engine.begin() as conn:
            size = await conn.scalar(
                sa.text("SELECT size FROM log_state WHERE id = 1 FOR UPDATE NOWAIT")
            )
        assert outcome == "served"
        assert size is not None
        origin = f"{signer.audience.split('://', 1)[1]}/log"
        report = await verify_database(
            engine, checkpoint_verifiers(KeyRing.load(place.keys_dir), origin), origin=origin
        )
        assert report.ok, report.problem
    finally:
        await engine.dispose()
