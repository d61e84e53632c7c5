"""Do the other sources still answer, and how fast, while two sources fail?

One gateway process (SQLite), the population, business-registry and insurance sandboxes
and the land registry. Workers send signed citizen lookups (the population database
only) and, beside them, as many lookups of enterprises and of insurance records. Two
phases of the same load: all sources well; then the business registry answering only
after 10 s (a fault proxy delays its link) and the insurance agency's link cut
(connections reset). The citizen lookups' p50/p95 in each phase show whether the
faults reach the sources that are well; the other lookups' answers show how the
failing sources' fields end (`SOURCE_TIMEOUT` at their timeout, then
`SOURCE_UNAVAILABLE` at once while their breakers are open).
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench._faults import FaultProxy
from bench._load import Result

__all__ = ["measure"]

_CITIZEN = '{ citizen(personalId: "%s") { fullName } }'
_BUSINESS = '{ business(enterpriseCode: "%s") { name } }'
_INSURANCE = '{ insurance(personalId: "%s") { socialInsuranceNumber } }'
_HEALTH_CARD = "LOCAL.health-card-reissue"


def _spawn(module: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", *module],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _phase(
    url: str,
    sign: Callable[[bytes, str, str], str],
    people: list[str],
    enterprises: list[str],
    seconds: float,
    workers: int,
) -> tuple[Result, Counter[str]]:
    """`workers` citizen lookups at a time, measured, and as many others beside them."""
    measured = Result()
    others: Counter[str] = Counter()
    ends = time.perf_counter() + seconds

    async def ask(http: httpx.AsyncClient, query: str, procedure: str, subject: str) -> Any:
        body = json.dumps({"query": query}).encode()
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {sign(body, procedure, subject)}",
        }
        return await http.post("/graphql", content=body, headers=headers)

    async def citizens(http: httpx.AsyncClient, n: int) -> None:
        i = n
        while time.perf_counter() < ends:
            person = people[i % len(people)]
            started = time.perf_counter()
            answer = await ask(http, _CITIZEN % person, _RESIDENCE, person)
            if answer.status_code == 200 and not answer.json().get("errors"):
                measured.latencies.append(time.perf_counter() - started)
            else:
                measured.errors += 1
            i += workers

    async def other(http: httpx.AsyncClient, n: int) -> None:
        i = n
        while time.perf_counter() < ends:
            if i % 2:
                code = enterprises[i % len(enterprises)]
                answer = await ask(http, _BUSINESS % code, _LAND_HOLDER_CHANGE, code)
            else:
                person = people[i % len(people)]
                answer = await ask(http, _INSURANCE % person, _HEALTH_CARD, person)
            errors = answer.json().get("errors") or [] if answer.status_code == 200 else []
            codes = {e.get("extensions", {}).get("code") for e in errors} or {"served"}
            kind = "business" if i % 2 else "insurance"
            for code in codes:
                others[f"{kind}: {code if answer.status_code == 200 else answer.status_code}"] += 1
            i += workers

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=60.0) as http:
        await asyncio.gather(
            *(citizens(http, n) for n in range(workers)), *(other(http, n) for n in range(workers))
        )
    measured.elapsed = time.perf_counter() - started
    return measured, others


_RESIDENCE = "1.004222"
_LAND_HOLDER_CHANGE = "1.013833"  # reads the enterprise; confirms no case


async def measure(seconds: float = 8.0, workers: int = 4, citizens: int = 2000) -> str:
    """The fault table: the citizen lookups with and without two failing sources."""
    from bench.__main__ import CLIENT, ROOT, _free_port, _register, _wait
    from gateway.admission import sign_request
    from policies import Purpose
    from sandbox import SandboxSettings, generate, land

    data = generate(SandboxSettings(citizens=citizens))
    people = list(data.sample.citizens)[:200]
    enterprises = [b.ma_so_doanh_nghiep for b in data.sample.businesses][:100]
    ports = {
        name: _free_port()
        for name in ("population", "business", "insurance", "dossiers", "gateway")
    }
    common = ["--citizens", str(citizens)]
    with tempfile.TemporaryDirectory(prefix="gateway-bench-chaos-") as tmp:
        work = Path(tmp)
        sources = [
            _spawn(["sandbox", name, "--port", str(ports[name]), *common])
            for name in ("population", "business", "insurance", "dossiers")
        ]
        business = FaultProxy("127.0.0.1", ports["business"]).start()
        insurance = FaultProxy("127.0.0.1", ports["insurance"]).start()
        gateway = None
        try:
            land.write_sqlite(work / "land.db", land.build(SandboxSettings(citizens=citizens)))
            db = f"sqlite+aiosqlite:///{work / 'gateway.db'}"
            env = {
                **os.environ,
                "GATEWAY_DATABASE_URL": db,
                "GATEWAY_KEYS_DIR": str(work / "keys"),
                "GATEWAY_CONNECTORS_DIR": str(ROOT / "sandbox" / "manifests"),
                "GATEWAY_CONNECTOR_URLS": json.dumps(
                    {
                        "population": f"http://127.0.0.1:{ports['population']}",
                        "business": f"http://127.0.0.1:{business.port}",
                        "insurance": f"http://127.0.0.1:{insurance.port}",
                        "dossiers": f"http://127.0.0.1:{ports['dossiers']}",
                        "land": f"sqlite:///{work / 'land.db'}",
                    }
                ),
                "GATEWAY_PORT": str(ports["gateway"]),
                "GATEWAY_ORIGIN": f"http://127.0.0.1:{ports['gateway']}",
                "GATEWAY_LOG_LEVEL": "error",
                "GATEWAY_RATE_LIMIT_CLIENT": "1000000000",
                "GATEWAY_RATE_LIMIT_OFFICER": "1000000000",
            }
            await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "gateway", "db", "upgrade"],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            key, kid = await _register(db, work / "client-keys", work / "keys")
            gateway = _spawn(["gateway", "serve"], env)
            names = ("population", "business", "insurance", "dossiers")
            for name, process in zip(names, sources, strict=True):
                await asyncio.to_thread(_wait, f"http://127.0.0.1:{ports[name]}/healthz", process)
            url = f"http://127.0.0.1:{ports['gateway']}"
            await asyncio.to_thread(_wait, f"{url}/readyz", gateway)

            def sign(body: bytes, procedure: str, subject: str) -> str:
                return sign_request(
                    client_id=CLIENT,
                    key=key,
                    kid=kid,
                    audience=url,
                    body=body,
                    purpose=Purpose(procedure, "BENCH-3", "bench-officer", (subject,)),
                )

            well = await _phase(url, sign, people, enterprises, seconds, workers)
            business.delay(10.0)
            insurance.cut()
            faulty = await _phase(url, sign, people, enterprises, seconds, workers)
        finally:
            running: list[subprocess.Popen[bytes] | None] = [gateway, *sources]
            for child in running:
                if child is not None:
                    child.terminate()
                    try:
                        child.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        child.kill()
            business.stop()
            insurance.stop()
    lines = [
        f"One gateway process (SQLite); {workers} workers send signed citizen lookups "
        f"(population only) and {workers} more send enterprise and insurance lookups beside "
        f"them, {seconds:g} s per phase. Faults: the business registry answering after "
        "10 s, the insurance agency's link cut.\n",
        "| phase | citizen lookups/s | p50 ms | p95 ms | citizen errors | other lookups |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, (result, others) in (("sources well", well), ("two sources failing", faulty)):
        answers = ", ".join(f"{n} x {what}" for what, n in sorted(others.items()))
        lines.append(
            f"| {name} | {result.rate:.0f} | {result.percentile(50) * 1000:.1f} | "
            f"{result.percentile(95) * 1000:.1f} | {result.errors} | {answers} |"
        )
    return "\n".join(lines) + "\n"
