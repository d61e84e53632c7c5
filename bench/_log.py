"""The access log's figures: integration rate, what recording costs a request, proofs.

Each measurement runs on a database of its own (a temporary SQLite file, or a
temporary PostgreSQL database created and dropped around it), in this process, with
the gateway's own classes: `EventRecorder`, `TransparencyLog`, `Sequencer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.log import hash_ranges, leaf_hash, node_hash, perfect_nodes
from gateway.log.sequencer import Sequencer
from gateway.log.store import TransparencyLog
from gateway.records import Event, EventRecorder, insert_events
from gateway.storage import create_engine, create_sequencer_engine, log_nodes, log_state, upgrade
from keys import KeyRing

POSTGRES = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
_CHUNK = 20_000


# -- databases ------------------------------------------------------------------------


async def postgres_answers() -> bool:
    """Whether the PostgreSQL of `BENCH_POSTGRES_URL` accepts connections."""
    import asyncpg

    try:
        conn = await asyncpg.connect(POSTGRES, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


@contextlib.asynccontextmanager
async def database(backend: str) -> AsyncIterator[AsyncEngine]:
    """A fresh, migrated database of `backend` ("sqlite" or "postgresql"), then gone."""
    with tempfile.TemporaryDirectory(prefix="gateway-bench-log-") as tmp:
        if backend == "sqlite":
            url, drop = f"sqlite+aiosqlite:///{Path(tmp) / 'log.db'}", None
        else:
            import asyncpg

            name = f"gw_bench_{uuid.uuid4().hex[:12]}"
            admin = await asyncpg.connect(POSTGRES)
            try:
                await admin.execute(f'CREATE DATABASE "{name}"')
            finally:
                await admin.close()
            base = POSTGRES.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
            url, drop = f"{base}/{name}", name
        engine = create_engine(url)
        try:
            await upgrade(engine)
            yield engine
        finally:
            await engine.dispose()
            if drop is not None:
                import asyncpg

                admin = await asyncpg.connect(POSTGRES)
                try:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{drop}" WITH (FORCE)')
                finally:
                    await admin.close()


def keyring(directory: Path) -> KeyRing:
    """A key ring of fresh keys, for signing the checkpoints of a measurement."""
    KeyRing.generate(directory)
    return KeyRing.load(directory)


# -- a tree of synthetic leaves, loaded straight into the node table ---------------------


async def bulk_load(engine: AsyncEngine, size: int) -> bytes:
    """Store a tree of `size` synthetic leaves in an empty log; returns its root.

    Only the node table and the state are written (no events, leaves or checkpoints):
    enough for proofs and roots, which is what the load is for.
    """
    async with engine.begin() as conn:
        current = await conn.scalar(sa.select(log_state.c.size))
        if current:
            raise RuntimeError("bulk_load needs an empty log")
    wanted = set(perfect_nodes(0, size))
    kept: dict[tuple[int, int], bytes] = {}
    level, hashes = 0, [leaf_hash(b"bench leaf %d" % i) for i in range(size)]
    while hashes:
        for start in range(0, len(hashes), _CHUNK):
            rows = [
                {"level": level, "idx": start + i, "hash": h}
                for i, h in enumerate(hashes[start : start + _CHUNK])
            ]
            async with engine.begin() as conn:
                await conn.execute(log_nodes.insert(), rows)
        kept.update({(level, i): hashes[i] for lv, i in wanted if lv == level})
        hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes) - 1, 2)]
        level += 1
    [root] = hash_ranges([(0, size)], kept)
    async with engine.begin() as conn:
        await conn.execute(
            log_state.update()
            .where(log_state.c.id == 1)
            .values(size=size, root=root, updated_at=datetime.datetime.now(datetime.UTC))
        )
    return root


@dataclass
class ProofCost:
    size: int
    inclusion_reads: int
    consistency_reads: int
    inclusion_ms: float
    consistency_ms: float


async def proof_cost(engine: AsyncEngine, size: int, samples: int = 200) -> ProofCost:
    """Stored hashes read (the most over `samples` proofs) and median time per proof."""
    store = TransparencyLog(engine, None, origin="bench/log")
    rng = random.Random(size)  # which leaves to prove, not secrets
    most = {"inclusion": 0, "consistency": 0}
    took: dict[str, list[float]] = {"inclusion": [], "consistency": []}
    for _ in range(samples):
        for kind in ("inclusion", "consistency"):
            before = store.reads
            started = time.perf_counter()
            if kind == "inclusion":
                await store.inclusion_proof(rng.randrange(size), size)
            else:
                await store.consistency_proof(rng.randrange(1, size), size)
            took[kind].append(time.perf_counter() - started)
            most[kind] = max(most[kind], store.reads - before)
    return ProofCost(
        size,
        most["inclusion"],
        most["consistency"],
        statistics.median(took["inclusion"]) * 1000,
        statistics.median(took["consistency"]) * 1000,
    )


# -- events ---------------------------------------------------------------------------


def access_event(i: int) -> Event:
    """An access event shaped like the gateway's (sizes, not meaning)."""
    subject = f"{1_000_000_000 + i:012d}"
    return Event(
        type="access",
        request_id=uuid.uuid4().hex,
        outcome="served",
        policy_version="bench",
        envelope={
            "client": "VN/GOV/BENCH/load",
            "organisation": "Bench",
            "kid": "bench-key",
            "officer": uuid.uuid4().hex,
            "procedure": "1.004222",
            "case": uuid.uuid4().hex,
            "subjects": 1,
            "jti": uuid.uuid4().hex,
            "decisions": [
                {
                    "path": "Citizen.fullName",
                    "decision": "ALLOWED_BY_LAW",
                    "basis": "Luật Cư trú 2020, Điều 20",
                    "subjects": [0],
                }
            ],
            "sources": ["population"],
            "sourceCalls": 1,
            "actions": [],
            "status": 200,
            "errors": [],
            "fieldsServed": 1,
            "papersAvoided": 0,
        },
        personal={"subjects": [subject], "officer": "bench-officer", "case": f"BENCH-{i}"},
        subjects=[subject],
        client_id="VN/GOV/BENCH/load",
        procedure="1.004222",
    )


async def integration_rate(engine: AsyncEngine, ring: KeyRing, count: int) -> dict[str, float]:
    """Queue `count` events, then time the sequencer integrating all of them."""
    for start in range(0, count, 1000):
        async with engine.begin() as conn:
            await insert_events(conn, [access_event(i) for i in range(start, start + 1000)])
    store = TransparencyLog(engine, ring, origin="bench/log")
    batches, started = 0, time.perf_counter()
    while await store.integrate(max_batch=4096):
        batches += 1
    seconds = time.perf_counter() - started
    if await store.size() != count:
        raise RuntimeError("the sequencer did not integrate every event")
    return {"events_per_s": count / seconds, "batches": batches, "seconds": seconds}


def locks_lost() -> float:
    """Batches of this process that lost the log's lock so far (its Prometheus counter)."""
    return REGISTRY.get_sample_value("gateway_log_lock_lost_total") or 0.0


async def recording_latency(
    engine: AsyncEngine, ring: KeyRing, concurrency: int, *, with_log: bool, seconds: float
) -> dict[str, float]:
    """`record` latency with `concurrency` requests recording at once, as in a request.

    With the log, events are queued by the same commit and a sequencer integrates them
    in the same process, as the gateway runs (merge delay 1 s; on PostgreSQL through its
    own sessions, `create_sequencer_engine`); without it, neither. With the log it also
    gives the longest any event waited for its checkpoint (the merge delay's promise) and
    how many batches lost the log's lock (a healthy sequencer loses none).
    """
    recorder = EventRecorder(engine, queue=with_log)
    sequencer = store = sequencer_engine = None
    lost = locks_lost()
    if with_log:
        url = engine.url.render_as_string(hide_password=False)
        sequencer_engine = create_sequencer_engine(url, 5.0)
        store = TransparencyLog(sequencer_engine or engine, ring, origin="bench/log")
        await store.ensure_checkpoint()
        sequencer = Sequencer(store, merge_delay=1.0)
        await sequencer.start()
    await recorder.start()
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        i = 0
        while time.perf_counter() < deadline:
            event = access_event(w * 1_000_000 + i)
            started = time.perf_counter()
            await recorder.record(event)
            latencies.append(time.perf_counter() - started)
            i += 1

    try:
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        if store is not None:  # the last events too
            for _ in range(200):
                if not await store.queued():
                    break
                await asyncio.sleep(0.05)
    finally:
        await recorder.stop()
        if sequencer is not None:
            await sequencer.stop()
        if sequencer_engine is not None:
            await sequencer_engine.dispose()
    latencies.sort()
    return {
        "events": len(latencies),
        "p50": latencies[len(latencies) // 2] * 1000,
        "p95": latencies[int(len(latencies) * 0.95)] * 1000,
        "per_commit": len(latencies) / max(1, recorder.commits),
        "longest_wait": store.longest_wait if store is not None else float("nan"),
        "lock_lost": int(locks_lost() - lost),
    }


# -- the report -----------------------------------------------------------------------


async def _backends() -> list[str]:
    return ["sqlite", "postgresql"] if await postgres_answers() else ["sqlite"]


async def measure(
    *, events: int, concurrencies: list[int], seconds: float, proof_sizes: list[int]
) -> str:
    """Run every log measurement; return the Markdown tables."""
    backends = await _backends()
    lines = []
    with tempfile.TemporaryDirectory(prefix="gateway-bench-keys-") as tmp:
        ring = keyring(Path(tmp))
        lines += [
            "Sequencer: events queued first, then integrated in batches of at most 4096.\n",
            "| backend | events | batches | seconds | events/s |",
            "|---|---|---|---|---|",
        ]
        for backend in backends:
            async with database(backend) as engine:
                r = await integration_rate(engine, ring, events)
            lines.append(
                f"| {backend} | {events} | {r['batches']:.0f} | {r['seconds']:.2f} "
                f"| {r['events_per_s']:.0f} |"
            )
        lines += [
            "",
            f"Recording: each of `conc` tasks records one event after another for "
            f"{seconds:.0f} s; latency of `record` (it returns once the event is committed).\n",
            "| backend | conc | log | events | p50 ms | p95 ms | events/commit "
            "| longest wait for the log, s | lock lost |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for backend in backends:
            for concurrency in concurrencies:
                for with_log in (False, True):
                    async with database(backend) as engine:
                        r = await recording_latency(
                            engine, ring, concurrency, with_log=with_log, seconds=seconds
                        )
                    lines.append(
                        f"| {backend} | {concurrency} | {'yes' if with_log else 'no'} "
                        f"| {r['events']:.0f} | {r['p50']:.1f} | {r['p95']:.1f} "
                        f"| {r['per_commit']:.1f} "
                        + (
                            f"| {r['longest_wait']:.2f} | {r['lock_lost']} |"
                            if with_log
                            else "| - | - |"
                        )
                    )
    lines += [
        "",
        "Proofs over a bulk-loaded tree (SQLite): the most stored hashes one proof read, "
        "and the median time of a proof (200 random proofs of each kind).\n",
        "| leaves | inclusion rows | consistency rows | inclusion ms | consistency ms |",
        "|---|---|---|---|---|",
    ]
    for size in proof_sizes:
        async with database("sqlite") as engine:
            await bulk_load(engine, size)
            cost = await proof_cost(engine, size)
        lines.append(
            f"| 2^{size.bit_length() - 1} ({size}) | {cost.inclusion_reads} "
            f"| {cost.consistency_reads} | {cost.inclusion_ms:.2f} | {cost.consistency_ms:.2f} |"
        )
    return "\n".join(lines) + "\n"
