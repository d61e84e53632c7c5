"""The sequencer under faults, the cost of proofs at scale, and checkpoint key rotation.

The sequencer runs as `gateway log integrate` in processes of its own, killed with
SIGKILL or started side by side, over the real databases; proofs are counted over
trees bulk-loaded to 2^10 and 2^16 leaves (`make bench` adds 2^20).
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bench._log import access_event, bulk_load, database, proof_cost
from gateway.log import (
    CheckpointError,
    canonical_hash,
    checkpoint_verifiers,
    leaf_hash,
    parse_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from gateway.log.store import LogIntegrityError, TransparencyLog
from gateway.records import insert_events, verify_database
from gateway.storage import (
    create_engine,
    event_personal,
    event_subjects,
    events,
    log_queue,
    read_snapshot,
)
from keys import KeyRing, verifier_key

ORIGIN = "127.0.0.1:8000/log"

# Each test counts the log's rows, stops sequencers or edits the store.
pytestmark = pytest.mark.own_database


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    KeyRing.generate(tmp_path / "keys")
    return tmp_path / "keys"


def _env(url: str, keys: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GATEWAY_DATABASE_URL": url,
        "GATEWAY_KEYS_DIR": str(keys),
        "GATEWAY_ORIGIN": "http://127.0.0.1:8000",
    }


def _gateway(url: str, keys: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", *args],
        env=_env(url, keys),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err
    return out


def _audit(url: str, keys: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "audit", "verify", *args],
        env=_env(url, keys),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


async def _queue(engine: AsyncEngine, count: int, start: int = 0) -> None:
    for first in range(start, start + count, 1000):
        async with engine.begin() as conn:
            last = min(start + count, first + 1000)
            await insert_events(conn, [access_event(i) for i in range(first, last)])


async def _verify(engine: AsyncEngine, keys: Path) -> Any:
    """What `gateway audit verify` checks, in this process."""
    return await verify_database(
        engine, checkpoint_verifiers(KeyRing.load(keys), ORIGIN), origin=ORIGIN
    )


async def _size(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.text("SELECT size FROM log_state")))


async def _consistent_state(engine: AsyncEngine) -> int:
    """Check that leaves are 0..size-1, each event once, none both queued and a leaf."""
    async with read_snapshot(engine) as conn:
        size = int(await conn.scalar(sa.text("SELECT size FROM log_state")))
        leaves = (await conn.execute(sa.text("SELECT idx, event_id FROM log_leaves"))).all()
        queued = set((await conn.scalars(sa.select(log_queue.c.event_id))).all())
        recorded = set((await conn.scalars(sa.select(events.c.id))).all())
        newest = await conn.scalar(sa.text("SELECT max(size) FROM log_checkpoints"))
    assert sorted(int(r.idx) for r in leaves) == list(range(size)), "a gap or a duplicate"
    integrated = {r.event_id for r in leaves}
    assert len(integrated) == size, "an event integrated twice"
    assert not integrated & queued, "an event both integrated and still queued"
    assert integrated | queued == recorded, "an event neither integrated nor queued"
    assert (newest or 0) == size, "the newest checkpoint is not of the current size"
    return size


async def test_a_sequencer_killed_mid_batch_leaves_no_gap_and_no_duplicate(
    migrated: str, keys_dir: Path
) -> None:
    total, batch = 5_000, 250
    engine = create_engine(migrated)
    try:
        await _queue(engine, total)
        killed_mid_log = 0
        for _ in range(6):
            before = await _consistent_state(engine)
            process = _gateway(migrated, keys_dir, "log", "integrate", "--max-batch", str(batch))
            # Wait for its first commit, then kill it while it works on the next batch.
            for _ in range(1200):
                if process.poll() is not None or await _size(engine) > before:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.02)
            killed = process.poll() is None
            if killed:
                process.send_signal(signal.SIGKILL)
            process.communicate(timeout=60)
            size = await _consistent_state(engine)
            assert size % batch == 0, "a batch committed in part"
            killed_mid_log += killed and size < total
            if size == total or killed_mid_log == 2:
                break
        assert killed_mid_log >= 2, "the sequencer finished before it could be killed"

        out = _finish(_gateway(migrated, keys_dir, "log", "integrate"))
        assert out.startswith("integrated ")
        assert await _consistent_state(engine) == total
        report = await _verify(engine, keys_dir)
        assert report.ok, report.problem
        assert f"{total} leaves recomputed from their envelopes" in report.checked
    finally:
        await engine.dispose()


async def _copy_queue(source: AsyncEngine, target: AsyncEngine) -> None:
    """The same events, queued in the same order, in another database."""
    async with source.connect() as conn:
        rows = {
            table: [dict(r) for r in (await conn.execute(sa.select(table))).mappings().all()]
            for table in (events, event_personal, event_subjects)
        }
        order = (
            await conn.scalars(sa.select(log_queue.c.event_id).order_by(log_queue.c.seq))
        ).all()
    async with target.begin() as conn:
        for table, values in rows.items():
            await conn.execute(table.insert(), values)
        await conn.execute(log_queue.insert(), [{"event_id": e} for e in order])


async def _tree(engine: AsyncEngine) -> tuple[list[tuple[int, str, bytes]], bytes]:
    async with engine.connect() as conn:
        leaves = (
            await conn.execute(
                sa.text("SELECT idx, event_id, leaf_hash FROM log_leaves ORDER BY idx")
            )
        ).all()
        root = await conn.scalar(sa.text("SELECT root FROM log_state"))
    return [(int(i), e, bytes(h)) for i, e, h in leaves], bytes(root)


async def test_two_sequencers_at_once_build_the_tree_one_would(
    postgres_admin: str, keys_dir: Path
) -> None:
    total = 4_000
    async with database("postgresql") as shared, database("postgresql") as alone:
        await _queue(shared, total)
        await _copy_queue(shared, alone)
        shared_url = shared.url.render_as_string(hide_password=False)
        alone_url = alone.url.render_as_string(hide_password=False)

        first, second = (
            _gateway(shared_url, keys_dir, "log", "integrate", "--max-batch", "200")
            for _ in range(2)
        )
        counts = [int(_finish(p).split()[1]) for p in (first, second)]
        _finish(_gateway(alone_url, keys_dir, "log", "integrate", "--max-batch", "200"))

        # Every batch was integrated by exactly one of them.
        assert sum(counts) == total
        assert await _consistent_state(shared) == total
        async with shared.connect() as conn:
            sizes = (await conn.scalars(sa.text("SELECT size FROM log_checkpoints"))).all()
        assert sorted(sizes) == list(range(0, total + 1, 200))
        # The same leaves, at the same indices, under the same root.
        assert await _tree(shared) == await _tree(alone)
        for engine in (shared, alone):
            report = await _verify(engine, keys_dir)
            assert report.ok, report.problem


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_proofs_read_logarithmically_many_stored_hashes(
    backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "postgresql":
        request.getfixturevalue("postgres_admin")
    for size in (2**10, 2**16):
        async with database(backend) as engine:
            root = await bulk_load(engine, size)
            cost = await proof_cost(engine, size, samples=40)
            bound = math.ceil(math.log2(size)) + 1
            assert 0 < cost.inclusion_reads <= bound, cost
            assert 0 < cost.consistency_reads <= bound, cost

            # And the bulk-loaded tree gives proofs that verify.
            store = TransparencyLog(engine, None, origin=ORIGIN)
            for index in (0, 1, size // 3, size - 1):
                proof = await store.inclusion_proof(index, size)
                digest = leaf_hash(b"bench leaf %d" % index)
                verify_inclusion(index, size, digest, proof, root)
            old = await store.root(size // 3)
            proof = await store.consistency_proof(size // 3, size)
            verify_consistency(size // 3, size, old, root, proof)


async def test_old_checkpoints_verify_after_the_key_is_rotated(
    migrated: str, keys_dir: Path
) -> None:
    engine = create_engine(migrated)
    try:
        await _queue(engine, 30)
        old_ring = KeyRing.load(keys_dir)
        assert await TransparencyLog(engine, old_ring, origin=ORIGIN).integrate() == 30

        KeyRing.generate(keys_dir, ["checkpoints"])
        ring = KeyRing.load(keys_dir)
        store = TransparencyLog(engine, ring, origin=ORIGIN)
        await _queue(engine, 20, start=30)
        assert await store.integrate() == 20

        old_key, new_key = (k.public for k in ring.verifying("checkpoints"))
        old, new = store.verifiers()
        before, after = await store.checkpoint_at(30), await store.checkpoint_at(50)
        assert parse_checkpoint(before.note, [old]).size == 30
        assert parse_checkpoint(after.note, [new]).size == 50
        with pytest.raises(CheckpointError, match="no known key signed this note"):
            parse_checkpoint(before.note, [new])
        proof = await store.consistency_proof(30, 50)
        verify_consistency(30, 50, before.root, after.root, proof)

        # The audit needs both keys: with the new one alone, the old checkpoints fail.
        both = await verify_database(engine, [old, new], origin=ORIGIN)
        assert both.ok, both.problem
        only_new = await verify_database(engine, [new], origin=ORIGIN)
        assert "checkpoint of size 30" in (only_new.problem or "")
    finally:
        await engine.dispose()

    # `keys show` publishes both, newest first.
    shown = _finish(_gateway(migrated, keys_dir, "keys", "show"))
    keys = [verifier_key(ORIGIN, new_key), verifier_key(ORIGIN, old_key)]
    assert all(k in shown for k in keys)
    assert shown.index(keys[0]) < shown.index(keys[1])
    assert _audit(migrated, keys_dir, "--key", ",".join(keys)).returncode == 0
    garbled = _audit(migrated, keys_dir, "--key", "not-a-key")
    assert garbled.returncode == 2
    assert "--key is not a checkpoint verifier key" in garbled.stderr
    assert "Traceback" not in garbled.stderr

    # A checkpoint kept from before (by a witness, say): the log still extends it.
    seen = keys_dir.parent / "seen.txt"
    seen.write_text(before.note)
    extended = _audit(migrated, keys_dir, "--previous", str(seen))
    assert extended.returncode == 0, extended.stderr
    assert "the previous checkpoint (30) is a prefix" in extended.stdout


async def test_the_sequencer_signs_nothing_over_a_tampered_store(
    migrated: str, keys_dir: Path
) -> None:
    engine = create_engine(migrated)
    store = TransparencyLog(engine, KeyRing.load(keys_dir), origin=ORIGIN)
    try:
        await _queue(engine, 10)
        assert await store.integrate() == 10
        await _queue(engine, 10, start=10)

        # A queued event rewritten, its envelope hash recomputed to match: only the
        # receipt's promise, kept in the queue, still tells.
        async with engine.begin() as conn:
            target = await conn.scalar(
                sa.select(log_queue.c.event_id).order_by(log_queue.c.seq).offset(3).limit(1)
            )
            envelope = await conn.scalar(sa.select(events.c.envelope).where(events.c.id == target))
            envelope = {**envelope, "outcome": "no_data"}
            await conn.execute(
                events.update()
                .where(events.c.id == target)
                .values(
                    envelope=envelope, envelope_hash=canonical_hash(envelope), outcome="no_data"
                )
            )
        with pytest.raises(LogIntegrityError, match=f"event {target} was changed"):
            await store.integrate()
        assert (await store.size(), await store.queued()) == (10, 10)
        refused = _gateway(migrated, keys_dir, "log", "integrate")
        _, err = refused.communicate(timeout=120)
        assert refused.returncode == 1
        assert "nothing integrated" in err
        audit = _audit(migrated, keys_dir)
        assert audit.returncode == 1
        assert f"queued event {target}: it was changed after its receipt" in audit.stderr

        # A stored node of the tree's right edge changed: the next root would not extend
        # the signed one, so the sequencer does not sign it.
        async with engine.begin() as conn:
            await conn.execute(sa.delete(log_queue).where(log_queue.c.event_id == target))
            await conn.execute(
                sa.text("UPDATE log_nodes SET hash = :h WHERE level = 1 AND idx = 4"),
                {"h": b"\x01" * 32},
            )
        with pytest.raises(LogIntegrityError, match="signed root"):
            await store.integrate()
        assert await store.size() == 10
    finally:
        await engine.dispose()
