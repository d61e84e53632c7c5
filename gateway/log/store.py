"""The verifiable log's store: integration, checkpoints, proofs and tiles, in the database.

Events wait in `log_queue`; `integrate` takes them in order, gives them contiguous
indices, stores the public leaves and the hashes of every complete subtree
(`log_nodes`), and signs a checkpoint, all in one transaction. One sequencer works at a
time: on PostgreSQL it holds the row lock of `log_state` for its transaction (any
replica may take over when the holder dies, or when the database ends the session of
a holder that stopped answering: see `gateway.storage.create_sequencer_engine`);
SQLite serves one process. The transaction ends by moving `log_state` on from the size
it read (`WHERE size = :read`): a holder whose turn was taken over writes nothing.

Proofs read O(log n) stored hashes: the perfect nodes that tile the ranges of the
proof. The formats and the hashing are the log's core (`gateway.log`); this module
only stores and reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from lienthong_client.log import (
    EMPTY_ROOT,
    Checkpoint,
    CompactRange,
    Node,
    consistency_ranges,
    hash_ranges,
    inclusion_ranges,
    leaf_hash,
    nodes_for,
    perfect_nodes,
    sign_checkpoint,
)
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import InvalidArgument, NotFound
from gateway.log._checkpoint import checkpoint_verifiers
from gateway.log._epochs import epoch_of
from gateway.log._leaf import public_leaf
from gateway.log._tiles import TILE_HEIGHT, TILE_WIDTH, entry_bundle
from gateway.storage import (
    Transactions,
    checkpoint_cosignatures,
    events,
    log_checkpoints,
    log_leaves,
    log_nodes,
    log_queue,
    log_state,
    witness_state,
)
from keys import KeyRing, NoteVerifier, SigningKey

__all__ = ["LockLost", "LogIntegrityError", "TransparencyLog"]


class LogIntegrityError(RuntimeError):
    """The stored log disagrees with itself: the sequencer stops rather than sign it."""


INTEGRATED = Counter("gateway_log_integrated_total", "Events integrated into the log.")
BATCH_SECONDS = Histogram(
    "gateway_log_batch_seconds",
    "Time one sequencer batch took, from lock to commit.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TREE_SIZE = Gauge("gateway_log_size", "Leaves in the log as of the last batch.")
INTEGRATION_DELAY = Histogram(
    "gateway_log_integration_delay_seconds",
    "Per batch, how long its oldest event waited from its record to its checkpoint.",
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 5, 10, 30),
)
OLDEST_QUEUED = Gauge(
    "gateway_log_oldest_queued_seconds",
    "Age of the oldest event waiting for the log, as the sequencer holding the lock last "
    "saw it (0: none waiting).",
)
LOCK_LOST = Counter(
    "gateway_log_lock_lost_total",
    "Batches whose sequencer lost the log's lock after taking it (its session ended, "
    "or another took over): nothing of them was written.",
)


class LockLost(RuntimeError):
    """The sequencer's turn was taken over before it committed: nothing was written."""


_SIZE = sa.select(log_state.c.size).where(log_state.c.id == 1)


def _of(witnesses: Sequence[str] | None) -> sa.ColumnElement[bool]:
    """Cosignatures of these witnesses (any, when `None`)."""
    if witnesses is None:
        return sa.true()
    return checkpoint_cosignatures.c.witness.in_(list(witnesses))


class TransparencyLog:
    """The log's storage: integration, checkpoints, proofs and tiles."""

    def __init__(self, engine: AsyncEngine, keyring: KeyRing | None, *, origin: str) -> None:
        """`keyring` signs checkpoints; without one the log can be read, not written."""
        self._engine = engine
        self._transactions = Transactions(engine)
        self._reads = Transactions(engine, connections=4)
        """Proofs and roots, read in one call each (see `_proofs`)."""
        self._keyring = keyring
        self.base_origin = origin
        """The configured origin: the log's first epoch (see `gateway.log.continuity`)."""
        self.origin = origin
        """The origin it signs under now: its newest checkpoint's (an epoch of the base)."""
        self.signed: Checkpoint | None = None
        """The checkpoint its last integration signed."""
        self.reads = 0
        """Stored hashes read by proofs and roots (to show they stay O(log n))."""
        self._held = False
        """Whether the batch in progress holds the log's lock."""
        self.longest_wait = 0.0
        """The longest any event waited from its record to its checkpoint, in seconds."""

    # -- the sequencer -----------------------------------------------------------------

    async def integrate(
        self, *, max_batch: int = 4096, first: str | None = None, origin: str | None = None
    ) -> int:
        """Integrate up to `max_batch` queued events; returns how many (0: none, or busy).

        Everything happens in one transaction: leaves, nodes, state, checkpoint and the
        removal from the queue commit together, or not at all. `first`: the event to
        integrate before any other queued; `origin`: sign under this origin (an epoch
        of the log's) instead of the newest checkpoint's.
        """
        started = asyncio.get_running_loop().time()
        try:
            return await self._integrate(max_batch, started, first, origin)
        except LogIntegrityError:
            raise
        except Exception:
            # Failing once it held the lock: its session ended, or another took over.
            if self._held:
                LOCK_LOST.inc()
            raise
        finally:
            self._held = False

    async def _integrate(
        self, max_batch: int, started: float, first: str | None, origin: str | None
    ) -> int:
        # The whole batch (reads, hashes, signature, writes) is one call: on SQLite in a
        # worker thread, off the event loop, holding the write lock only while it works.
        done = await self._transactions.run(self._integrate_in, max_batch, first, origin)
        if done is None:
            return 0
        count, new_size, oldest, signed = done
        self.signed = signed
        self.origin = signed.origin
        INTEGRATED.inc(count)
        TREE_SIZE.set(new_size)
        BATCH_SECONDS.observe(asyncio.get_running_loop().time() - started)
        waited = (datetime.datetime.now(datetime.UTC) - oldest).total_seconds()
        INTEGRATION_DELAY.observe(waited)
        self.longest_wait = max(self.longest_wait, waited)
        return count

    def _integrate_in(
        self, conn: sa.Connection, max_batch: int, first: str | None, origin: str | None
    ) -> tuple[int, int, datetime.datetime, Checkpoint] | None:
        """Integrate in the caller's transaction: (count, new size, oldest record's
        time, the checkpoint signed), or `None` when another holds the lock or nothing
        is queued."""
        state = self._lock(conn)
        if state is None:
            return None
        self._held = True
        size, signed_root = state
        order: list[sa.ColumnElement[Any]] = [log_queue.c.seq]
        if first is not None:
            order.insert(0, sa.case((log_queue.c.event_id == first, 0), else_=1))
        queued = conn.execute(
            sa.select(
                log_queue.c.seq,
                log_queue.c.leaf_hash.label("promised"),
                events.c.id,
                events.c.type,
                events.c.ts,
                events.c.envelope_hash,
                events.c.policy_version,
            )
            .join(events, events.c.id == log_queue.c.event_id)
            .order_by(*order)
            .limit(max_batch)
        ).all()
        if not queued:
            OLDEST_QUEUED.set(0)
            return None
        oldest = min(row.ts for row in queued)
        OLDEST_QUEUED.set((datetime.datetime.now(datetime.UTC) - oldest).total_seconds())
        tree = self._tree(conn, size)
        if tree.root() != signed_root:
            raise LogIntegrityError("the stored tree nodes do not give the signed root")
        leaves: list[dict[str, Any]] = []
        nodes: list[dict[str, Any]] = []
        for offset, row in enumerate(queued):
            index = size + offset
            data = public_leaf(
                type=row.type,
                ts=row.ts,
                envelope_hash=row.envelope_hash,
                policy_version=row.policy_version,
            )
            digest = leaf_hash(data)
            if row.promised is not None and bytes(row.promised) != digest:
                raise LogIntegrityError(f"event {row.id} was changed after its receipt was issued")
            leaves.append(
                {"idx": index, "event_id": row.id, "leaf": data.decode(), "leaf_hash": digest}
            )
            nodes.extend(
                {"level": level, "idx": idx, "hash": made}
                for level, idx, made in tree.append(digest)
            )
        new_size = size + len(queued)
        new_root = tree.root()
        conn.execute(log_leaves.insert(), leaves)
        conn.execute(log_nodes.insert(), nodes)
        # Exactly the rows taken: sequence numbers are not in commit order, so a row
        # below the last one taken may have been committed since it was read.
        conn.execute(log_queue.delete().where(log_queue.c.seq.in_([row.seq for row in queued])))
        now = datetime.datetime.now(datetime.UTC)
        moved = conn.execute(
            log_state.update()
            .where(log_state.c.id == 1, log_state.c.size == size)
            .values(size=new_size, root=new_root, updated_at=now)
        )
        if moved.rowcount != 1:
            raise LockLost(f"the log moved on from {size} leaves under this sequencer")
        signing_origin = origin or self._origin_at(conn, size)
        signed = sign_checkpoint(signing_origin, new_size, new_root, self._signing_key().private)
        conn.execute(
            log_checkpoints.insert().values(
                size=new_size, root=new_root, note=signed.note, signed_at=now
            )
        )
        return len(queued), new_size, oldest, signed

    def _origin_at(self, conn: sa.Connection, size: int) -> str:
        """The origin of the checkpoint of `size` when it names an epoch of this log
        (a declared loss moved the log on to it), else the configured one."""
        note = conn.execute(
            sa.select(log_checkpoints.c.note).where(log_checkpoints.c.size == size)
        ).scalar()
        if note is not None:
            named = str(note).split("\n", 1)[0]
            if epoch_of(self.base_origin, named) is not None:
                return named
        return self.base_origin

    def dispose(self) -> None:
        """Close the connections of its worker threads (opened again when needed)."""
        self._transactions.dispose()
        self._reads.dispose()

    async def ensure_checkpoint(self) -> None:
        """Sign the empty tree's checkpoint if none was ever signed (idempotent)."""
        if await self.latest() is not None:
            return
        signed = sign_checkpoint(self.origin, 0, EMPTY_ROOT, self._signing_key().private)
        with contextlib.suppress(IntegrityError):  # another replica signed it first
            async with self._engine.begin() as conn:
                await conn.execute(
                    log_checkpoints.insert().values(
                        size=0,
                        root=EMPTY_ROOT,
                        note=signed.note,
                        signed_at=datetime.datetime.now(datetime.UTC),
                    )
                )

    @staticmethod
    def _lock(conn: sa.Connection) -> tuple[int, bytes] | None:
        """Take the sequencer's lock and read the state; `None` if another holds it."""
        query = sa.select(log_state.c.size, log_state.c.root).where(log_state.c.id == 1)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        else:
            # SQLite: take the write lock now, so that two writers cannot both read the
            # same size; the embedded mode serves one process anyway.
            conn.execute(
                log_state.update().where(log_state.c.id == 1).values(size=log_state.c.size)
            )
        row = conn.execute(query).first()
        return None if row is None else (int(row.size), bytes(row.root))

    def _tree(self, conn: sa.Connection, size: int) -> CompactRange:
        """The stored tree of `size` leaves, from its right edge: the range to extend."""
        found = self._nodes_in(conn, set(perfect_nodes(0, size)))
        return CompactRange.from_nodes(size, found)

    # -- reading ------------------------------------------------------------------------

    def _nodes_in(self, conn: sa.Connection, wanted: set[Node]) -> dict[Node, bytes]:
        if not wanted:
            return {}
        # Exactly the nodes wanted, one condition per level; written as text (its shape
        # repeats from proof to proof, and the driver keeps statements it has prepared).
        by_level: dict[int, list[int]] = {}
        for level, index in sorted(wanted):
            by_level.setdefault(level, []).append(index)
        params: dict[str, int] = {}
        conditions = []
        for n, (level, indices) in enumerate(by_level.items()):
            params[f"l{n}"] = level
            names = []
            for m, index in enumerate(indices):
                params[f"i{n}_{m}"] = index
                names.append(f":i{n}_{m}")
            conditions.append(f"(level = :l{n} AND idx IN ({', '.join(names)}))")
        # Only placeholder names are written into the text; every value is bound.
        where = " OR ".join(conditions)
        query = f"SELECT level, idx, hash FROM log_nodes WHERE {where}"  # noqa: S608  # nosec B608
        rows = conn.execute(sa.text(query), params).all()
        found = {(int(r.level), int(r.idx)): bytes(r.hash) for r in rows}
        self.reads += len(found)
        missing = wanted - set(found)
        if missing:
            raise RuntimeError(f"the log store lacks {len(missing)} tree nodes")
        return found

    async def lag(self) -> float:
        """Seconds the oldest queued event has waited (0 when the queue is empty)."""
        async with self._engine.connect() as conn:
            oldest = await conn.scalar(
                sa.select(sa.func.min(events.c.ts)).join(
                    log_queue, log_queue.c.event_id == events.c.id
                )
            )
        if oldest is None:
            return 0.0
        waited: float = (datetime.datetime.now(datetime.UTC) - oldest).total_seconds()
        return max(0.0, waited)

    async def queued(self) -> int:
        """Events recorded and waiting to be integrated."""
        async with self._engine.connect() as conn:
            value = await conn.scalar(sa.select(sa.func.count()).select_from(log_queue))
        return int(value or 0)

    async def size(self) -> int:
        """Leaves integrated so far."""
        async with self._engine.connect() as conn:
            value = await conn.scalar(_SIZE)
        return int(value or 0)

    async def latest(self) -> Checkpoint | None:
        """The newest signed checkpoint."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(log_checkpoints).order_by(log_checkpoints.c.size.desc()).limit(1)
                )
            ).first()
        if row is None:
            return None
        found = self._checkpoint(row)
        if epoch_of(self.base_origin, found.origin) is not None:
            self.origin = found.origin
        return found

    def _checkpoint(self, row: Any) -> Checkpoint:
        origin = str(row.note).split("\n", 1)[0]
        return Checkpoint(origin, int(row.size), bytes(row.root), row.note)

    async def checkpoint_at(self, size: int) -> Checkpoint:
        """The checkpoint signed for exactly `size` leaves."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(sa.select(log_checkpoints).where(log_checkpoints.c.size == size))
            ).first()
        if row is None:
            raise NotFound("No checkpoint was signed for this size.", kind="Checkpoint")
        return self._checkpoint(row)

    # -- witnesses ---------------------------------------------------------------------

    async def cosigned(
        self, quorum: int, witnesses: Sequence[str] | None = None
    ) -> Checkpoint | None:
        """The newest checkpoint with at least `quorum` cosignatures of `witnesses` (the
        ones configured now: a witness dropped counts no more), with them appended.

        With `quorum` 0, the newest checkpoint, with any cosignatures of them it has.
        """
        if quorum <= 0:
            latest = await self.latest()
            return None if latest is None else await self.with_cosignatures(latest, witnesses)
        async with self._engine.connect() as conn:
            size = await conn.scalar(
                sa.select(checkpoint_cosignatures.c.size)
                .where(_of(witnesses))
                .group_by(checkpoint_cosignatures.c.size)
                .having(sa.func.count() >= quorum)
                .order_by(checkpoint_cosignatures.c.size.desc())
                .limit(1)
            )
        if size is None:
            return None
        return await self.with_cosignatures(await self.checkpoint_at(int(size)), witnesses)

    async def export_checkpoint(
        self, quorum: int, size: int | None, witnesses: Sequence[str] | None = None
    ) -> Checkpoint | None:
        """The checkpoint an export proves against: the one of `size` (404 if none was
        signed), else as `to_prove`; with the cosignatures it has."""
        if size is None:
            return await self.to_prove(quorum, witnesses=witnesses)
        return await self.with_cosignatures(await self.checkpoint_at(size), witnesses)

    async def to_prove(
        self, quorum: int, index: int = 0, *, witnesses: Sequence[str] | None = None
    ) -> Checkpoint | None:
        """The checkpoint to prove leaf `index` against: the newest cosigned by `quorum`
        witnesses if it holds the leaf, else the newest, with the cosignatures it has;
        `None` when no checkpoint holds it yet."""
        for wanted in (quorum, 0) if quorum else (0,):
            found = await self.cosigned(wanted, witnesses)
            if found is not None and index < found.size:
                return found
        return None

    async def with_cosignatures(
        self, checkpoint: Checkpoint, witnesses: Sequence[str] | None = None
    ) -> Checkpoint:
        """`checkpoint` with the cosignatures of `witnesses` stored for it appended (all
        when `None`), by witness name."""
        async with self._engine.connect() as conn:
            lines = (
                await conn.scalars(
                    sa.select(checkpoint_cosignatures.c.line)
                    .where(checkpoint_cosignatures.c.size == checkpoint.size, _of(witnesses))
                    .order_by(checkpoint_cosignatures.c.witness)
                )
            ).all()
        if not lines:
            return checkpoint
        return dataclasses.replace(checkpoint, note=checkpoint.note + "".join(lines))

    async def witnesses(self) -> dict[str, tuple[int, bool]]:
        """Per witness: the size it last cosigned or said it had, and whether the newest
        checkpoint carries its cosignature."""
        async with self._engine.connect() as conn:
            sizes = {r.witness: int(r.size) for r in await conn.execute(sa.select(witness_state))}
            newest = sa.select(sa.func.max(log_checkpoints.c.size)).scalar_subquery()
            signed = set(
                (
                    await conn.scalars(
                        sa.select(checkpoint_cosignatures.c.witness).where(
                            checkpoint_cosignatures.c.size == newest
                        )
                    )
                ).all()
            )
        return {name: (size, name in signed) for name, size in sizes.items()}

    async def witnessed(
        self, witness: str, size: int, *, line: str | None, cosigned_at: datetime.datetime
    ) -> None:
        """Keep what a witness answered: its cosignature `line` of the checkpoint of
        `size`, or (no line) only the size it says it last cosigned."""
        for attempt in (1, 2):
            try:
                async with self._engine.begin() as conn:
                    await self._witnessed_in(conn, witness, size, line, cosigned_at)
                return
            except IntegrityError:
                if attempt == 2:  # another replica wrote the same row twice over
                    raise

    @staticmethod
    async def _witnessed_in(
        conn: Any, witness: str, size: int, line: str | None, cosigned_at: datetime.datetime
    ) -> None:
        if line is not None:
            exists = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(checkpoint_cosignatures)
                .where(
                    checkpoint_cosignatures.c.size == size,
                    checkpoint_cosignatures.c.witness == witness,
                )
            )
            if not exists:  # another replica may have kept the same answer
                await conn.execute(
                    checkpoint_cosignatures.insert().values(
                        size=size, witness=witness, line=line, cosigned_at=cosigned_at
                    )
                )
        now = datetime.datetime.now(datetime.UTC)
        moved = await conn.execute(
            witness_state.update()
            .where(witness_state.c.witness == witness)
            .values(size=size, updated_at=now)
        )
        if moved.rowcount == 0:
            await conn.execute(
                witness_state.insert().values(witness=witness, size=size, updated_at=now)
            )

    async def _proofs(
        self, size: int, ranges: Callable[[], list[list[tuple[int, int]]]]
    ) -> list[list[bytes]]:
        """The hashes of each list of `ranges()` in the tree of `size` leaves, read in one
        call (on SQLite one hop to a worker thread): the size is checked first, then
        `ranges` (which checks its own arguments), then the nodes are read at once."""
        return await self._reads.read(self._proofs_in, size, ranges)

    def _proofs_in(
        self, conn: sa.Connection, size: int, ranges: Callable[[], list[list[tuple[int, int]]]]
    ) -> list[list[bytes]]:
        current = int(conn.execute(_SIZE).scalar() or 0)
        if not 0 < size <= current:
            raise InvalidArgument(
                f"The tree size must be between 1 and {current}.", argument="size", max=current
            )
        wanted_ranges = ranges()
        wanted: set[Node] = set()
        for r in wanted_ranges:
            wanted |= nodes_for(r)
        nodes = self._nodes_in(conn, wanted)
        return [hash_ranges(r, nodes) for r in wanted_ranges]

    async def root(self, size: int) -> bytes:
        """The root of the tree of the first `size` leaves."""
        if size == 0:
            return EMPTY_ROOT
        [[root]] = await self._proofs(size, lambda: [[(0, size)]])
        return root

    async def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 6962 inclusion proof of leaf `index` in the tree of `size` leaves."""

        def ranges() -> list[list[tuple[int, int]]]:
            if not 0 <= index < size:
                raise InvalidArgument("The index must be below the tree size.", argument="index")
            return [inclusion_ranges(index, size)]

        [proof] = await self._proofs(size, ranges)
        return proof

    async def inclusion_proofs(self, indices: Sequence[int], size: int) -> list[list[bytes]]:
        """Inclusion proofs of several leaves in one tree, reading each node once."""

        def ranges() -> list[list[tuple[int, int]]]:
            if any(not 0 <= i < size for i in indices):
                raise InvalidArgument("Every index must be below the tree size.", argument="index")
            return [inclusion_ranges(i, size) for i in indices]

        return await self._proofs(size, ranges)

    async def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """RFC 6962 consistency proof between two tree sizes."""

        def ranges() -> list[list[tuple[int, int]]]:
            if not 0 < first <= second:
                raise InvalidArgument("Sizes must satisfy 0 < first <= second.", argument="first")
            return [consistency_ranges(first, second) if first != second else []]

        [proof] = await self._proofs(second, ranges)
        return proof

    async def find_leaf(self, digest: bytes) -> tuple[int, bytes]:
        """(index, leaf) of the leaf with this hash."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(log_leaves.c.idx, log_leaves.c.leaf)
                    .where(log_leaves.c.leaf_hash == digest)
                    .limit(1)
                )
            ).first()
        if row is None:
            raise NotFound(
                "No integrated leaf has this hash (yet: wait for the merge delay).", kind="Leaf"
            )
        return int(row.idx), row.leaf.encode()

    async def leaf(self, index: int) -> bytes:
        """The public leaf at `index`."""
        async with self._engine.connect() as conn:
            leaf = await conn.scalar(sa.select(log_leaves.c.leaf).where(log_leaves.c.idx == index))
        if leaf is None:
            raise NotFound("No integrated leaf has this index (yet).", kind="Leaf")
        return str(leaf).encode()

    async def tile(self, level: int, index: int, width: int) -> bytes:
        """A C2SP tile: `width` hashes of Merkle level 8*`level`, from `index` * 256."""
        first = index * TILE_WIDTH
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(log_nodes.c.idx, log_nodes.c.hash)
                    .where(
                        log_nodes.c.level == level * TILE_HEIGHT,
                        log_nodes.c.idx >= first,
                        log_nodes.c.idx < first + width,
                    )
                    .order_by(log_nodes.c.idx)
                )
            ).all()
        if len(rows) != width:
            raise NotFound("No such tile.", kind="Tile")
        return b"".join(bytes(r.hash) for r in rows)

    async def entries(self, index: int, width: int) -> bytes:
        """A C2SP entry bundle: each public leaf prefixed by its length (uint16)."""
        first = index * TILE_WIDTH
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(log_leaves.c.leaf)
                    .where(log_leaves.c.idx >= first, log_leaves.c.idx < first + width)
                    .order_by(log_leaves.c.idx)
                )
            ).all()
        if len(rows) != width:
            raise NotFound("No such entry bundle.", kind="Tile")
        return entry_bundle(row.leaf.encode() for row in rows)

    def _signing_key(self) -> SigningKey:
        if self._keyring is None:
            raise RuntimeError("this log was opened to be read, not written")
        return self._keyring.signing("checkpoints")

    def verifiers(self) -> list[NoteVerifier]:
        """Every checkpoint key, old ones included: rotation keeps old checkpoints valid."""
        return [] if self._keyring is None else checkpoint_verifiers(self._keyring, self.origin)
