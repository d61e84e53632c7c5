"""How the gateway answers while its database is away, and how soon it serves again.

One gateway process (`gateway serve`) on PostgreSQL, its database link through the fault
proxy (`bench/_faults.py`), the population sandbox as its source. A client sends signed
lookups one after another; the link is cut (connections reset) or paused (silent) for
a few seconds, then healed. Counted during the outage: answers by status (503 is right;
500, or a connection dropped without an answer, is not). Recovery: from the heal to
the first answer served.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from bench._faults import FaultProxy
from sandbox import SandboxSettings, land

__all__ = ["measure"]

_QUERY = '{ citizen(personalId: "%s") { fullName } }'


async def _outage(
    url: str, sign: Any, people: list[str], proxy: FaultProxy, fault: str, seconds: float
) -> dict[str, Any]:
    """Send lookups through one outage of `fault` ("cut" or "pause"); what was answered."""
    during: Counter[str] = Counter()
    healed_at = recovered_at = None
    async with httpx.AsyncClient(base_url=url, timeout=60.0) as http:

        async def one(i: int) -> str:
            person = people[i % len(people)]
            body = json.dumps({"query": _QUERY % person}).encode()
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {sign(body)}"}
            try:
                answer = await http.post("/graphql", content=body, headers=headers)
            except httpx.HTTPError as exc:
                return f"no answer ({type(exc).__name__})"
            return str(answer.status_code)

        for i in range(3):  # served before
            if await one(i) != "200":
                raise RuntimeError("the gateway does not serve before the outage")
        getattr(proxy, fault)()
        ends = time.perf_counter() + seconds
        i = 3
        while time.perf_counter() < ends:
            during[await one(i)] += 1
            i += 1
        proxy.heal()
        healed_at = time.perf_counter()
        while time.perf_counter() - healed_at < 60:
            if await one(i) == "200":
                recovered_at = time.perf_counter()
                break
            i += 1
    if recovered_at is None:
        raise RuntimeError("the gateway did not serve again within 60 s of the heal")
    return {"during": during, "recovery": recovered_at - healed_at}


def _spawn(module: list[str], env: dict[str, str] | None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", *module],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def measure(outage: float = 3.0, deadline: float = 2.0) -> str:
    """The outage table: a cut and a silent database link, each `outage` seconds."""
    from bench.__main__ import CLIENT, RESIDENCE, ROOT, _free_port, _register, _wait
    from bench._log import database
    from gateway.admission import sign_request
    from policies import Purpose

    lines = [
        f"One gateway process on PostgreSQL, its database link cut (reset) or paused "
        f"(silent) for {outage:g} s while a client sends signed lookups one after another; "
        f"`GATEWAY_REQUEST_DEADLINE` {deadline:g} s. Answers during the outage by status, "
        f"and the time from the heal to the first answer served.\n",
        "| fault | answers during the outage | recovery s |",
        "|---|---|---|",
    ]
    async with database("postgresql") as engine:
        direct = engine.url.render_as_string(hide_password=False)
        parts = urlsplit(direct)
        proxy = FaultProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
        proxied = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
        population, dossiers, port = _free_port(), _free_port(), _free_port()
        with tempfile.TemporaryDirectory(prefix="gateway-bench-recovery-") as tmp:
            work = Path(tmp)
            source = _spawn(["sandbox", "population", "--port", str(population)], None)
            registry = _spawn(["sandbox", "dossiers", "--port", str(dossiers)], None)
            gateway = None
            try:
                # The land registry's manifest needs its database (a small one will do).
                land.write_sqlite(work / "land.db", land.build(SandboxSettings(citizens=300)))
                env = {
                    **os.environ,
                    "GATEWAY_DATABASE_URL": proxied,
                    "GATEWAY_KEYS_DIR": str(work / "keys"),
                    "GATEWAY_CONNECTORS_DIR": str(ROOT / "sandbox" / "manifests"),
                    "GATEWAY_CONNECTOR_URLS": json.dumps(
                        {
                            "population": f"http://127.0.0.1:{population}",
                            "dossiers": f"http://127.0.0.1:{dossiers}",
                            "land": f"sqlite:///{work / 'land.db'}",
                        }
                    ),
                    "GATEWAY_PORT": str(port),
                    "GATEWAY_ORIGIN": f"http://127.0.0.1:{port}",
                    "GATEWAY_LOG_LEVEL": "error",
                    "GATEWAY_REQUEST_DEADLINE": str(deadline),
                    "GATEWAY_RATE_LIMIT_CLIENT": "1000000000",
                    "GATEWAY_RATE_LIMIT_OFFICER": "1000000000",
                }
                key, kid = await _register(direct, work / "client-keys", work / "keys")
                gateway = _spawn(["gateway", "serve"], env)
                await asyncio.to_thread(_wait, f"http://127.0.0.1:{population}/healthz", source)
                await asyncio.to_thread(_wait, f"http://127.0.0.1:{dossiers}/healthz", registry)
                await asyncio.to_thread(_wait, f"http://127.0.0.1:{port}/readyz", gateway)
                async with httpx.AsyncClient() as http:
                    sample = await http.get(f"http://127.0.0.1:{population}/_sandbox/sample")
                people = list(sample.json()["citizens"])[:50]

                def sign(body: bytes) -> str:
                    person = json.loads(body)["query"].split('"')[1]
                    return sign_request(
                        client_id=CLIENT,
                        key=key,
                        kid=kid,
                        audience=f"http://127.0.0.1:{port}",
                        body=body,
                        purpose=Purpose(RESIDENCE, "BENCH-2", "bench-officer", (person,)),
                    )

                for fault in ("cut", "pause"):
                    r = await _outage(
                        f"http://127.0.0.1:{port}", sign, people, proxy, fault, outage
                    )
                    answers = ", ".join(
                        f"{n} x {status}" for status, n in sorted(r["during"].items())
                    )
                    lines.append(f"| {fault} | {answers} | {r['recovery']:.2f} |")
            finally:
                for process in (gateway, source, registry):
                    if process is not None:
                        process.terminate()
                        try:
                            process.wait(timeout=15)
                        except subprocess.TimeoutExpired:
                            process.kill()
                proxy.stop()
    return "\n".join(lines) + "\n"
