"""`make bench`: the gateway against the sandbox agencies, and the sandboxes alone.

Starts the population, business, insurance and civil-status sandboxes and one gateway process
(uvicorn, one worker, embedded SQLite) on loopback, drives a fixed mix at fixed
concurrencies with a bounded closed-loop load generator, and prints a table: requests/s, latency
percentiles and source calls per request through the gateway, next to the same
lookups made directly against the sandboxes (the floor), with the ratio. The table is
saved under bench/results/ with the date and a description of the machine.

Then the access log's own figures (bench/_log.py): events/s the sequencer integrates
on SQLite and PostgreSQL, the latency of recording at 50 and 200 concurrent with and
without the log, events per commit, and proof cost at 2^10, 2^16 and 2^20 leaves.
And the search of auditors and citizens over a million records (bench/_search.py):
time per search and the indexes each plan uses, on SQLite and PostgreSQL.
And `gateway audit verify` over a log of a million records (bench/_audit.py), made in
bulk by the gateway's own recording code: the time to check it all, on both backends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from lienthong_client import Purpose, Signer

from bench import _audit as audit_figures
from bench import _chaos as chaos_figures
from bench import _log as log_figures
from bench import _recovery as recovery_figures
from bench import _search as search_figures
from bench import _takeover as takeover_figures
from bench._load import Operation, Result, encode_get, encode_post, run
from bench._tracing import Sink

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
GR = "application/graphql-response+json"
CLIENT = "VN/GOV/BENCH/load"
RESIDENCE = "1.004222"  # permanent residence: identity, residence, household
LAND_TRANSFER = "1.013831"  # reads the citizen and the enterprise

DEMO = """query($id: String!) { citizen(personalId: $id) { fullName birthDate
  permanentResidence { provinceName wardName }
  household { members { person { fullName } relationToHead } } } }"""
BATCH = """query($ids: [String!]!) { citizens(personalIds: $ids) { personalId fullName
  birthDate gender permanentResidence { provinceName wardName } } }"""
PAIR = """query($id: String!, $code: String!) { citizen(personalId: $id) { fullName birthDate }
  business(enterpriseCode: $code) { name headOffice { provinceName }
  legalRepresentative { fullName } } }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, process: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bench: a server exited with status {process.returncode}")
        try:
            if httpx.get(url, timeout=1).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"bench: {url} did not answer")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        memory = f"{mem_kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration):
        memory = "unknown memory"
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}"
    )


async def _register(database_url: str, keys: Path, gateway_keys: Path) -> tuple[Any, str]:
    """Register the benchmark's client; its requests are signed like any client's."""
    from gateway.admission import ClientRegistry, add_local_key
    from gateway.records import admin_recorder
    from gateway.storage import create_engine
    from keys import load_secret
    from policies import AgencyKind, load_catalogue
    from schema import canonical_fields

    # Recorded like any change to the registry, as made by the benchmark.
    record = admin_recorder(
        pseudonym_key=load_secret(gateway_keys, "pseudonyms", create=True),
        policy_version=load_catalogue(None, canonical=canonical_fields()).version,
        operator="cli:bench",
        operator_org=None,
    )
    engine = create_engine(database_url)
    try:
        registry = ClientRegistry(engine)
        await registry.add(
            CLIENT,
            name="Benchmark",
            organisation="Bench",
            agency_kinds=[k.value for k in AgencyKind],
            record=record,
        )
        key, kid = await add_local_key(registry, keys, CLIENT, record=record)
    finally:
        await engine.dispose()
    return key, kid


@dataclass
class Servers:
    population: int
    business: int
    gateway: int
    processes: list[subprocess.Popen[bytes]]
    key: Any
    kid: str
    dossiers: int = 0

    def stop(self) -> None:
        for p in self.processes:
            p.terminate()
        for p in self.processes:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def start(
    citizens: int,
    work: Path,
    *,
    otlp: str | None = None,
    settings: dict[str, str] | None = None,
) -> Servers:
    """The sandboxes and one gateway; `settings`: more of its environment."""
    population, business, gateway = _free_port(), _free_port(), _free_port()
    insurance, civil, dossiers = _free_port(), _free_port(), _free_port()
    quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sandbox",
                name,
                "--port",
                str(port),
                "--citizens",
                str(citizens),
            ],
            **quiet,
        )
        for name, port in (
            ("population", population),
            ("business", business),
            ("insurance", insurance),
            ("civil", civil),
            ("dossiers", dossiers),
        )
    ]
    db = f"sqlite+aiosqlite:///{work / 'bench.db'}"
    subprocess.run(
        [sys.executable, "-m", "sandbox", "land", "--database", str(work / "land.db"),
         "--citizens", str(citizens)],
        check=True,
        **quiet,
    )  # fmt: skip
    env = {
        **os.environ,
        "GATEWAY_DATABASE_URL": db,
        "GATEWAY_KEYS_DIR": str(work / "keys"),
        "GATEWAY_CONNECTORS_DIR": str(ROOT / "sandbox" / "manifests"),
        "GATEWAY_CONNECTOR_URLS": json.dumps(
            {
                "population": f"http://127.0.0.1:{population}",
                "business": f"http://127.0.0.1:{business}",
                "insurance": f"http://127.0.0.1:{insurance}",
                "civil": f"http://127.0.0.1:{civil}",
                "dossiers": f"http://127.0.0.1:{dossiers}",
                "land": f"sqlite:///{work / 'land.db'}",
            }
        ),
        "GATEWAY_PORT": str(gateway),
        "GATEWAY_LOG_LEVEL": "warning",
        # The benchmark measures throughput, not the limits that protect the sources.
        "GATEWAY_RATE_LIMIT_CLIENT": "1000000000",
        "GATEWAY_RATE_LIMIT_OFFICER": "1000000000",
    }
    env["GATEWAY_ORIGIN"] = f"http://127.0.0.1:{gateway}"
    if otlp is not None:
        env["GATEWAY_OTLP_ENDPOINT"] = otlp
    env.update(settings or {})
    subprocess.run([sys.executable, "-m", "gateway", "db", "upgrade"], env=env, check=True, **quiet)
    key, kid = asyncio.run(_register(db, work / "client-keys", work / "keys"))
    procs.append(subprocess.Popen([sys.executable, "-m", "gateway", "serve"], env=env, **quiet))
    servers = Servers(population, business, gateway, procs, key, kid, dossiers)
    try:
        _wait(f"http://127.0.0.1:{population}/healthz", procs[0])
        _wait(f"http://127.0.0.1:{business}/healthz", procs[1])
        _wait(f"http://127.0.0.1:{insurance}/healthz", procs[2])
        _wait(f"http://127.0.0.1:{civil}/healthz", procs[3])
        _wait(f"http://127.0.0.1:{dossiers}/healthz", procs[4])
        _wait(f"http://127.0.0.1:{gateway}/readyz", procs[5])
    except BaseException:
        servers.stop()
        raise
    return servers


@dataclass
class Scenario:
    name: str
    gateway: Callable[[int], Operation]
    floor: Callable[[int], Operation]
    """Each gateway operation carries a fresh signed token: build them before timing."""


class Desk:
    """Receives the benchmark's dossiers at the dossier registry, one per procedure and
    set of subjects, before anything is timed: every case asked about is a real one."""

    def __init__(self, port: int) -> None:
        self._http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10.0)
        self._codes: dict[tuple[str, tuple[str, ...]], str] = {}

    def case(self, procedure: str, subjects: list[str]) -> str:
        key = (procedure, tuple(subjects))
        code = self._codes.get(key)
        if code is None:
            roles = ["NGUOI_NOP", *["DONG_NGUOI_NOP"] * (len(subjects) - 1)]
            answer = self._http.post(
                "/_sandbox/ho-so",
                json={
                    "ma_thu_tuc": procedure,
                    "co_quan_tiep_nhan": CLIENT.rsplit("/", 1)[0],
                    "trang_thai": "DANG_XU_LY",
                    "nguoi_lien_quan": [
                        {"ma_dinh_danh": p, "vai_tro": r}
                        for p, r in zip(subjects, roles, strict=True)
                    ],
                },
            )
            answer.raise_for_status()
            code = self._codes[key] = str(answer.json()["ma_ho_so"])
        return code


def scenarios(servers: Servers, citizens: int, distinct: int = 2000) -> list[Scenario]:
    """The mix; `distinct`: how many different citizens the first scenario asks about."""
    from sandbox import SandboxSettings, generate

    data = generate(SandboxSettings(citizens=citizens))
    rng = random.Random(7)  # which ids to ask for, not secrets
    with_household = [
        pid
        for pid, r in data.citizens.items()
        if r.get("ho_gia_dinh") and len(r["ho_gia_dinh"]["thanh_vien"]) >= 3
    ]
    everyone = list(data.citizens)
    pairs = [
        (b["nguoi_dai_dien_phap_luat"]["so_dinh_danh"], code) for code, b in data.businesses.items()
    ]
    gw, pop, biz = servers.gateway, servers.population, servers.business
    host = "127.0.0.1"

    # Signed as a case-handling system signs, by the client library; each case is a
    # dossier the benchmark's organisation received.
    signer = Signer(CLIENT, servers.key, servers.kid, audience=f"http://127.0.0.1:{gw}")
    desk = Desk(servers.dossiers)

    def graphql(
        query: str, variables: dict[str, Any], procedure: str, subjects: list[str]
    ) -> tuple[int, bytes]:
        body = json.dumps({"query": query, "variables": variables}).encode()
        case = desk.case(procedure, subjects)
        token = signer.sign(body, Purpose(procedure, case, "bench-officer", tuple(subjects)))
        return gw, encode_post(f"{host}:{gw}", "/graphql", body, accept=GR, token=token)

    picked = rng.sample(with_household, min(distinct, len(with_household)))
    one_ids = [picked[i % len(picked)] for i in range(2000)]
    batches = [rng.sample(everyone, 20) for _ in range(500)]
    chosen_pairs = [rng.choice(pairs) for _ in range(2000)]
    return [
        Scenario(
            "citizen + household",
            lambda i: Operation(
                (graphql(DEMO, {"id": one_ids[i % 2000]}, RESIDENCE, [one_ids[i % 2000]]),)
            ),
            lambda i: Operation(
                ((pop, encode_get(f"{host}:{pop}", f"/v1/cong-dan/{one_ids[i % 2000]}")),)
            ),
        ),
        Scenario(
            "batch of 20 citizens",
            lambda i: Operation(
                (graphql(BATCH, {"ids": batches[i % 500]}, RESIDENCE, batches[i % 500]),)
            ),
            lambda i: Operation(
                (
                    (
                        pop,
                        encode_post(
                            f"{host}:{pop}",
                            "/v1/cong-dan/tra-cuu",
                            json.dumps({"danh_sach": batches[i % 500]}).encode(),
                        ),
                    ),
                )
            ),
        ),
        Scenario(
            "citizen + business",
            lambda i: Operation(
                (
                    graphql(
                        PAIR,
                        {"id": chosen_pairs[i % 2000][0], "code": chosen_pairs[i % 2000][1]},
                        LAND_TRANSFER,
                        list(chosen_pairs[i % 2000]),
                    ),
                )
            ),
            lambda i: Operation(
                (
                    (pop, encode_get(f"{host}:{pop}", f"/v1/cong-dan/{chosen_pairs[i % 2000][0]}")),
                    (
                        biz,
                        encode_get(
                            f"{host}:{biz}", f"/v1/doanh-nghiep/{chosen_pairs[i % 2000][1]}"
                        ),
                    ),
                )
            ),
        ),
    ]


async def _calls(servers: Servers) -> int:
    async with httpx.AsyncClient() as client:
        total = 0
        for port in (servers.population, servers.business, servers.dossiers):
            stats = (await client.get(f"http://127.0.0.1:{port}/_sandbox/stats")).json()
            total += sum(stats["calls"].values())
        return total


async def measure(
    servers: Servers, scenario: Scenario, concurrency: int, max_requests: int, seconds: float
) -> dict[str, Any]:
    signed = [scenario.gateway(i) for i in range(max_requests + concurrency + 20)]
    before = await _calls(servers)
    through = await run(
        signed, concurrency=concurrency, max_requests=max_requests, max_seconds=seconds
    )
    after = await _calls(servers)
    # Warm-up requests reached the sources too; count them in the denominator.
    source_calls = (after - before) / max(1, through.count + through.errors + 20)
    floor = await run(
        scenario.floor, concurrency=concurrency, max_requests=max_requests, max_seconds=seconds
    )
    return {
        "scenario": scenario.name,
        "concurrency": concurrency,
        "gateway": through,
        "floor": floor,
        "source_calls": source_calls,
    }


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| scenario | conc | gw req/s | gw p50 ms | gw p95 ms | gw p99 ms | src calls/req "
        "| floor req/s | floor p50 ms | floor p95 ms | floor p99 ms | p50 ratio | req/s ratio "
        "| errors |"
    )
    lines = [head, "|" + "---|" * 14]
    for r in rows:
        g: Result = r["gateway"]
        f: Result = r["floor"]
        lines.append(
            f"| {r['scenario']} | {r['concurrency']} | {g.rate:.0f} | {_ms(g.percentile(50))} "
            f"| {_ms(g.percentile(95))} | {_ms(g.percentile(99))} | {r['source_calls']:.2f} "
            f"| {f.rate:.0f} | {_ms(f.percentile(50))} | {_ms(f.percentile(95))} "
            f"| {_ms(f.percentile(99))} "
            f"| {g.percentile(50) / f.percentile(50):.1f}x "
            f"| {f.rate / g.rate if g.rate else float('inf'):.1f}x "
            f"| {g.errors + f.errors} |"
        )
    return "\n".join(lines)


def _gateway_report(args: argparse.Namespace) -> str:
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        servers = start(args.citizens, Path(tmp))
        try:
            rows = []
            for scenario in scenarios(servers, args.citizens):
                for concurrency in args.concurrency:
                    rows.append(
                        asyncio.run(
                            measure(servers, scenario, concurrency, args.requests, args.seconds)
                        )
                    )
                    sys.stderr.write(f"  done: {scenario.name} at {concurrency}\n")
        finally:
            servers.stop()
    return (
        f"## Requests through the gateway\n\n"
        f"Gateway: one uvicorn worker, SQLite, connectors over loopback HTTP, every request "
        f"signed, recorded and logged; sandboxes with "
        f"{args.citizens} citizens, one process each. Load: closed loop, at most "
        f"{args.requests} requests or {args.seconds:.0f} s per cell, same machine.\n"
        f"Ratios: gateway p50 / floor p50, and floor req/s / gateway req/s.\n\n"
        f"{table(rows)}\n\n"
    )


_CONFIRMATION = (
    ("no confirmation", "none", "30"),
    ("confirmed, dossier kept", "required", "3600"),
    ("confirmed, looked up each request", "required", "0"),
)
"""Permanent residence's `case_confirmation`, and the gateway's cache time, per row."""


def _cases_report(args: argparse.Namespace) -> str:
    """The first scenario on three gateways: its procedure confirming no case; required,
    with the dossiers kept; required, looked up at the registry for every request.

    The three run side by side and are measured in turns, `args.cases_rounds` times;
    each cell shows its median round (by req/s): this machine's speed drifts by more
    than what is measured.
    """
    from policies import CATALOGUE_DIR

    distinct = 100
    with contextlib.ExitStack() as stack:
        running = []
        for label, confirmation, ttl in _CONFIRMATION:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gateway-bench-")))
            catalogue = work / "catalogue"
            shutil.copytree(CATALOGUE_DIR, catalogue)
            entry = catalogue / "permanent-residence.yaml"
            text = re.sub(
                r"^case_confirmation: \w+$",
                f"case_confirmation: {confirmation}",
                entry.read_text(encoding="utf-8"),
                flags=re.MULTILINE,
            )
            entry.write_text(text, encoding="utf-8")
            servers = start(
                args.citizens,
                work,
                settings={
                    "GATEWAY_CATALOGUE_DIR": str(catalogue),
                    "GATEWAY_CASE_CONFIRMATION_CACHE_SECONDS": ttl,
                },
            )
            stack.callback(servers.stop)
            scenario = scenarios(servers, args.citizens, distinct=distinct)[0]
            # Each case once before timing: a kept dossier is then kept for every
            # request measured.
            warm = [scenario.gateway(i) for i in range(distinct)]
            asyncio.run(run(warm, concurrency=10, max_requests=distinct, max_seconds=60))
            running.append((label, servers, scenario))
        cells: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for _ in range(args.cases_rounds):
            for label, servers, scenario in running:
                for concurrency in args.cases_concurrency:
                    row = asyncio.run(
                        measure(servers, scenario, concurrency, args.requests, args.seconds)
                    )
                    row["scenario"] = f"{scenario.name}, {label}"
                    cells.setdefault((label, concurrency), []).append(row)
    rows = []
    for label, _, _ in _CONFIRMATION:
        for concurrency in args.cases_concurrency:
            measured = sorted(cells[(label, concurrency)], key=lambda r: r["gateway"].rate)
            rows.append(measured[len(measured) // 2])
    costs = []
    base = {r["concurrency"]: r["gateway"] for r in rows[: len(args.cases_concurrency)]}
    for r in rows[len(args.cases_concurrency) :]:
        g: Result = r["gateway"]
        b = base[r["concurrency"]]
        if g.rate and b.rate:
            costs.append(
                f"- {r['scenario']}, {r['concurrency']} at once: "
                f"{(1 / g.rate - 1 / b.rate) * 1000:+.2f} ms of the gateway per request "
                f"(from req/s), p50 {(g.percentile(50) - b.percentile(50)) * 1000:+.2f} ms"
            )
    return (
        f"Permanent residence (`1.004222`) confirming no case, then requiring it: three "
        f"gateways side by side, measured in turns {args.cases_rounds} times (the median "
        f"round of each cell is shown); {distinct} citizens, each with an open dossier of "
        f"the benchmark's organisation at the sandbox's dossier registry (REST, loopback), "
        f"each asked once before timing. Against the first rows:\n\n"
        + "\n".join(costs)
        + f"\n\n{table(rows)}\n"
    )


def _metric(text: str, name: str) -> float:
    """The sum of a Prometheus metric's samples named `name` (any labels)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _witness_report(args: argparse.Namespace) -> str:
    """The first scenario on two gateways side by side, one of them with the sandbox
    witness cosigning each checkpoint; the cost per checkpoint from the gateway's own
    histogram of submissions (proof, HTTP to the witness, its check, storing the line)."""
    from lienthong_client.log import cosigner_key

    from sandbox import SandboxSettings
    from sandbox._issuer_keys import load_or_create

    rows: dict[str, list[dict[str, Any]]] = {}
    token = "bench-metrics"
    with contextlib.ExitStack() as stack:
        running = []
        for label in ("no witness", "one witness"):
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gateway-bench-")))
            settings = {"GATEWAY_METRICS_TOKEN": token}
            port = _free_port()
            if label == "one witness":
                key = load_or_create(work / "witness.pem").private
                name = SandboxSettings().witness_name
                settings["GATEWAY_WITNESSES"] = json.dumps(
                    [
                        {
                            "url": f"http://127.0.0.1:{port}",
                            "key": cosigner_key(name, key.public_key()).text,
                        }
                    ]
                )
            servers = start(args.citizens, work, settings=settings)
            stack.callback(servers.stop)
            if label == "one witness":
                log_key = httpx.get(f"http://127.0.0.1:{servers.gateway}/log/key").text.split()[0]
                witness = subprocess.Popen(
                    [
                        sys.executable, "-m", "sandbox", "witness", "--port", str(port),
                        "--key-file", str(work / "witness.pem"),
                        "--state", str(work / "witness.json"), "--log-key", log_key,
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )  # fmt: skip
                servers.processes.append(witness)
                _wait(f"http://127.0.0.1:{port}/healthz", witness)
            running.append((label, servers, scenarios(servers, args.citizens)[0]))
        for _ in range(args.witness_rounds):
            for label, servers, scenario in running:
                row = asyncio.run(
                    measure(
                        servers, scenario, args.witness_concurrency, args.requests, args.seconds
                    )
                )
                row["scenario"] = f"{scenario.name}, {label}"
                rows.setdefault(label, []).append(row)
        time.sleep(1.0)  # the last checkpoints cosigned
        _, witnessed, _ = running[1]
        metrics = httpx.get(
            f"http://127.0.0.1:{witnessed.gateway}/metrics",
            headers={"Authorization": f"Bearer {token}"},
        ).text
    medians = [
        sorted(rows[label], key=lambda r: r["gateway"].rate)[args.witness_rounds // 2]
        for label, _, _ in running
    ]
    count = _metric(metrics, "gateway_witness_submission_seconds_count")
    seconds = _metric(metrics, "gateway_witness_submission_seconds_sum")
    base, with_witness = (m["gateway"] for m in medians)
    cost = (1 / with_witness.rate - 1 / base.rate) * 1000 if base.rate and with_witness.rate else 0
    return (
        f"The first scenario at {args.witness_concurrency} at once on two gateways side by "
        f"side, one with the sandbox witness (its own process, loopback) cosigning each "
        f"checkpoint, measured in turns {args.witness_rounds} times (median round shown).\n\n"
        f"- checkpoints cosigned: {count:.0f}, each {seconds / count * 1000 if count else 0:.1f} "
        f"ms from submission to the cosignature kept (mean; proof, HTTP, the witness's check "
        f"and fsync, storing the line), off the request path\n"
        f"- requests: {cost:+.2f} ms of the gateway per request (from req/s)\n\n"
        f"{table(medians)}\n"
    )


def _tracing_report(args: argparse.Namespace) -> str:
    """The first scenario with tracing off, then on (spans to a counting sink)."""
    rows = []
    exports = (0, 0)
    for traced in (False, True):
        with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp, Sink() as sink:
            servers = start(args.citizens, Path(tmp), otlp=sink.url if traced else None)
            try:
                scenario = scenarios(servers, args.citizens)[0]
                for concurrency in args.tracing_concurrency:
                    row = asyncio.run(
                        measure(servers, scenario, concurrency, args.requests, args.seconds)
                    )
                    row["scenario"] = f"{scenario.name}, tracing {'on' if traced else 'off'}"
                    rows.append(row)
            finally:
                servers.stop()
            if traced:
                exports = sink.exports
    sent, size = exports
    return (
        f"The first scenario with tracing off, then on (`GATEWAY_OTLP_ENDPOINT`: spans in "
        f"batches over OTLP/HTTP to a sink on loopback that only counts them; it received "
        f"{sent} exports, {size / 1e6:.1f} MB). A gateway of its own for each.\n\n"
        f"{table(rows)}\n"
    )


async def _search_report(args: argparse.Namespace) -> str:
    backends = ["sqlite", "postgresql"] if await log_figures.postgres_answers() else ["sqlite"]
    return await search_figures.measure(events_count=args.search_events, backends=backends)


async def _audit_report(args: argparse.Namespace) -> str:
    backends = ["sqlite", "postgresql"] if await log_figures.postgres_answers() else ["sqlite"]
    return await audit_figures.measure(records=args.audit_records, backends=backends)


async def _takeover_report(args: argparse.Namespace) -> str:
    if not await log_figures.postgres_answers():
        return "PostgreSQL does not answer: no takeover figures.\n"
    return await takeover_figures.measure(args.takeover_timeouts)


async def _recovery_report(args: argparse.Namespace) -> str:
    if not await log_figures.postgres_answers():
        return "PostgreSQL does not answer: no outage figures.\n"
    return await recovery_figures.measure(outage=args.outage_seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--citizens", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--requests", type=int, default=3000, help="most requests per cell")
    parser.add_argument("--seconds", type=float, default=8.0, help="longest run per cell")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--log-events", type=int, default=50_000, help="events to integrate")
    parser.add_argument("--log-concurrency", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--log-seconds", type=float, default=5.0, help="per recording cell")
    parser.add_argument("--proof-sizes", type=int, nargs="+", default=[10, 16, 20], help="log2")
    parser.add_argument("--log-only", action="store_true", help="only the access log figures")
    parser.add_argument(
        "--search-events", type=int, default=1_000_000, help="records to search (0: skip)"
    )
    parser.add_argument("--search-only", action="store_true", help="only the search figures")
    parser.add_argument(
        "--audit-records", type=int, default=1_000_000, help="records to verify (0: skip)"
    )
    parser.add_argument("--audit-only", action="store_true", help="only the verify figures")
    parser.add_argument(
        "--takeover-timeouts",
        type=float,
        nargs="*",
        default=[5.0, 2.0],
        help="sequencer session timeouts to measure the takeover at (none: skip)",
    )
    parser.add_argument("--takeover-only", action="store_true", help="only the takeover figures")
    parser.add_argument(
        "--outage-seconds", type=float, default=3.0, help="database outage (0: skip)"
    )
    parser.add_argument("--outage-only", action="store_true", help="only the outage figures")
    parser.add_argument(
        "--chaos-seconds", type=float, default=8.0, help="per phase of the failing-sources run"
    )
    parser.add_argument(
        "--chaos-only", action="store_true", help="only the figures with two sources failing"
    )
    parser.add_argument(
        "--tracing-concurrency",
        type=int,
        nargs="*",
        default=[10, 50],
        help="concurrencies of the tracing off/on figures (none: skip)",
    )
    parser.add_argument("--tracing-only", action="store_true", help="only the tracing figures")
    parser.add_argument(
        "--cases-concurrency",
        type=int,
        nargs="*",
        default=[1, 10],
        help="concurrencies of the case confirmation figures (none: skip)",
    )
    parser.add_argument(
        "--cases-rounds", type=int, default=3, help="turns of the case confirmation figures"
    )
    parser.add_argument(
        "--witness-concurrency", type=int, default=10, help="concurrency of the witness figures"
    )
    parser.add_argument(
        "--witness-rounds", type=int, default=3, help="turns of the witness figures (0: skip)"
    )
    parser.add_argument("--witness-only", action="store_true", help="only the witness figures")
    parser.add_argument(
        "--cases-only", action="store_true", help="only the case confirmation figures"
    )
    args = parser.parse_args(argv)
    only = (
        args.log_only
        or args.search_only
        or args.audit_only
        or args.takeover_only
        or args.outage_only
        or args.chaos_only
        or args.tracing_only
        or args.cases_only
        or args.witness_only
    )

    now = datetime.datetime.now(datetime.UTC)
    report = f"# Gateway benchmark, {now:%Y-%m-%d %H:%M} UTC\n\nMachine: {machine()}\n\n"
    if not only:
        report += _gateway_report(args)
    if args.log_only or not only:
        report += "## The access log\n\n" + asyncio.run(
            log_figures.measure(
                events=args.log_events,
                concurrencies=args.log_concurrency,
                seconds=args.log_seconds,
                proof_sizes=[2**n for n in args.proof_sizes],
            )
        )
    if args.search_events and (args.search_only or not only):
        report += "\n## Searching the access log\n\n" + asyncio.run(_search_report(args))
    if args.audit_records and (args.audit_only or not only):
        report += "\n## Verifying the access log\n\n" + asyncio.run(_audit_report(args))
    if args.takeover_timeouts and (args.takeover_only or not only):
        report += "\n## Taking over the log from a frozen sequencer\n\n" + asyncio.run(
            _takeover_report(args)
        )
    if args.outage_seconds and (args.outage_only or not only):
        report += "\n## While the database is away\n\n" + asyncio.run(_recovery_report(args))
    if args.chaos_seconds and (args.chaos_only or not only):
        report += "\n## While two sources fail\n\n" + asyncio.run(
            chaos_figures.measure(seconds=args.chaos_seconds)
        )
    if args.tracing_concurrency and (args.tracing_only or not only):
        report += "\n## The cost of tracing\n\n" + _tracing_report(args)
    if args.cases_concurrency and (args.cases_only or not only):
        report += "\n## The cost of confirming cases\n\n" + _cases_report(args)
    if args.witness_rounds and (args.witness_only or not only):
        report += "\n## The cost of witnessing\n\n" + _witness_report(args)
    sys.stdout.write(report)
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        part = (
            "-log"
            if args.log_only
            else "-search"
            if args.search_only
            else "-audit"
            if args.audit_only
            else "-tracing"
            if args.tracing_only
            else "-cases"
            if args.cases_only
            else "-witness"
            if args.witness_only
            else ""
        )
        path = RESULTS / f"{now:%Y-%m-%d}-{socket.gethostname()}{part}.md"
        if path.exists():  # an earlier run of the day is kept
            path = path.with_name(f"{path.stem}-{now:%H%M}.md")
        path.write_text(report, encoding="utf-8")
        sys.stdout.write(f"\nsaved {path.relative_to(ROOT)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
