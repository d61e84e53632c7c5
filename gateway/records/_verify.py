"""`gateway audit verify`: check the stored records and their log without trusting the operator.

Everything is recomputed from the stored envelopes: each envelope's hash and the
columns that repeat it, each personal part against the salted hash in its envelope
(a sealed part opened with the key of a person it names; one whose people have all
been forgotten opens for nobody, and is counted),
each public leaf and its hash, the tree's root at every signed checkpoint, and every
stored tree node; every checkpoint's signature is checked with the checkpoint keys,
and consecutive checkpoints are checked for consistency. The first bad index is named
when a row was edited, deleted, inserted or reordered. A personal part may be missing
only where a forget record written before parts were sealed says it deleted it.

(`gateway audit verify --url`, which checks what a running gateway publishes, is
`gateway.log.remote`.)
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.log import (
    EMPTY_ROOT,
    Checkpoint,
    CheckpointError,
    CompactRange,
    ProofError,
    Report,
    UnknownCheckpointKey,
    epoch_of,
    family_verifiers,
    leaf_hash,
    node_hash,
    note_origin,
    parse_checkpoint,
    public_leaf,
    verify_consistency,
)
from gateway.log.store import TransparencyLog
from gateway.records._envelope import envelope_hash, indexed_columns, personal_hash, read_envelope
from gateway.records._loss import LOSS_ACTION
from gateway.records._personal import PersonalPart, personal_parts
from gateway.records._retention import RETENTION_OUTCOME
from gateway.storage import (
    event_personal,
    event_subjects,
    events,
    log_checkpoints,
    log_leaves,
    log_nodes,
    log_queue,
    log_state,
    month_of,
    read_snapshot,
)
from keys import NoteVerifier

__all__ = ["verify_database"]

_PAGE = 5000


async def _checkpoints(
    conn: AsyncConnection, verifiers: Sequence[NoteVerifier], origin: str, report: Report
) -> list[Checkpoint]:
    rows = (await conn.execute(sa.select(log_checkpoints).order_by(log_checkpoints.c.size))).all()
    out: list[Checkpoint] = []
    for row in rows:
        named = note_origin(row.note)
        # A later epoch of the log (after a declared loss) is signed by the same keys.
        keys = (
            verifiers
            if epoch_of(origin, named) in (None, 1)
            else family_verifiers(verifiers, named)
        )
        try:
            checkpoint = parse_checkpoint(row.note, keys)
        except UnknownCheckpointKey as exc:
            # The first checkpoint signed by none of the keys given: checked under another
            # origin, or with other keys, than the log's own. A later one, after earlier
            # ones verified with these keys, is a checkpoint nobody here signed: forged.
            report.fail(f"checkpoint of size {row.size}: {exc}", configuration=not out)
            return out
        except CheckpointError as exc:
            report.fail(f"checkpoint of size {row.size}: {exc}")
            return out
        if epoch_of(origin, checkpoint.origin) is None:
            # Signed by a key given, under the name the checkpoint gives: only the
            # origin configured differs (unless earlier checkpoints named this one).
            report.fail(
                f"checkpoint of size {row.size}: the checkpoint names the origin "
                f"{checkpoint.origin!r}; the configured origin is {origin!r}",
                configuration=not out,
            )
            return out
        if (checkpoint.size, checkpoint.root) != (row.size, bytes(row.root)):
            report.fail(f"checkpoint of size {row.size}: its stored columns differ from its note")
            return out
        out.append(checkpoint)
    report.checked.append(f"{len(out)} checkpoint signatures")
    return out


async def verify_database(
    engine: AsyncEngine,
    verifiers: Sequence[NoteVerifier],
    *,
    origin: str,
    previous: Checkpoint | None = None,
) -> Report:
    """Recompute and check the whole log in the database.

    Everything is read in one snapshot, so a gateway may go on recording meanwhile.
    `previous`: a checkpoint seen before (from a witness, say) the log must still extend.
    """
    report = Report()
    async with read_snapshot(engine) as conn:
        checkpoints = await _checkpoints(conn, verifiers, origin, report)
        if not report.ok:
            return report
        state = (
            await conn.execute(
                sa.select(log_state.c.size, log_state.c.root).where(log_state.c.id == 1)
            )
        ).one()
        tree = await _leaves(conn, {c.size: c for c in checkpoints}, previous, report)
        if tree is None:
            return report
        report.checked.append(f"{tree.size} leaves recomputed from their envelopes")
        report.checked.append(f"roots of {len(checkpoints)} checkpoints rebuilt from the leaves")
        latest = checkpoints[-1] if checkpoints else None
        if latest is not None and latest.size == 0 and latest.root != EMPTY_ROOT:
            return report.fail("the checkpoint of the empty log has a root that is not empty", 0)
        latest_size = latest.size if latest else 0
        if not tree.size == int(state.size) == latest_size:
            return report.fail(
                f"the log holds {tree.size} leaves, its state says {state.size}, its newest "
                f"checkpoint {latest_size}: leaves no checkpoint covers, or lost ones",
                min(tree.size, int(state.size), latest_size),
            )
        if latest is not None and bytes(state.root) != latest.root:
            return report.fail("the log's state has another root than its newest checkpoint")
        if previous is not None:
            if tree.size < previous.size:
                return report.fail(
                    f"the log shrank: the previous checkpoint has {previous.size} leaves, the "
                    f"database {tree.size} (rolled back, or a fork)",
                    tree.size,
                )
            report.checked.append(f"the previous checkpoint ({previous.size}) is a prefix")
        if not await _nodes(conn, tree.size, report):
            return report
        if not await _unlogged(conn, report):
            return report
        if not await _personal_parts(conn, report):
            return report
    if not await _epochs(engine, checkpoints, origin, report):
        return report
    store = TransparencyLog(engine, None, origin=origin)
    for older, newer in itertools.pairwise(checkpoints):
        if older.size == 0:
            continue
        proof = await store.consistency_proof(older.size, newer.size)
        try:
            verify_consistency(older.size, newer.size, older.root, newer.root, proof)
        except ProofError:
            return report.fail(
                f"checkpoints {older.size} and {newer.size} are not consistent", older.size
            )
    report.checked.append("consistency between consecutive checkpoints")
    return report


async def _epochs(
    engine: AsyncEngine, checkpoints: Sequence[Checkpoint], origin: str, report: Report
) -> bool:
    """The log changes origin only forward, to a later epoch, and only where a statement
    of loss is the first leaf of the new epoch, naming it."""
    changes = [
        (older, newer)
        for older, newer in itertools.pairwise(checkpoints)
        if older.origin != newer.origin
    ]
    if not changes:
        return True
    async with read_snapshot(engine) as conn:
        for older, newer in changes:
            before, after = epoch_of(origin, older.origin), epoch_of(origin, newer.origin)
            if before is None or after is None or after <= before:
                report.fail(
                    f"checkpoint of size {newer.size} is of {newer.origin!r}, after "
                    f"{older.origin!r}: a log's epochs only go forward",
                    older.size,
                )
                return False
            row = (
                await conn.execute(
                    sa.select(events.c.type, events.c.envelope)
                    .join(log_leaves, log_leaves.c.event_id == events.c.id)
                    .where(log_leaves.c.idx == older.size)
                )
            ).first()
            statement: Mapping[str, Any] = read_envelope(row.envelope) if row is not None else {}
            if (
                row is None
                or row.type != "admin"
                or statement.get("action") != LOSS_ACTION
                or statement.get("newOrigin") != newer.origin
            ):
                report.fail(
                    f"the log moves from {older.origin!r} to {newer.origin!r} at leaf "
                    f"{older.size}, which is not a statement of loss naming the new origin",
                    older.size,
                )
                return False
    report.checked.append(f"{len(changes)} change(s) of epoch, each opened by a statement of loss")
    return True


async def _leaves(
    conn: AsyncConnection,
    due: dict[int, Checkpoint],
    previous: Checkpoint | None,
    report: Report,
) -> CompactRange | None:
    """Stream the leaves in order, checking each against its event; the tree, or `None`."""
    tree = CompactRange()
    if previous is not None and previous.size == 0 and previous.root != EMPTY_ROOT:
        report.fail("the previous checkpoint is of an empty log but has a root")
        return None
    while True:
        query = (
            sa.select(
                log_leaves.c.idx,
                log_leaves.c.leaf,
                log_leaves.c.leaf_hash,
                *_EVENT_COLUMNS,
                log_nodes.c.hash.label("node"),
            )
            .select_from(log_leaves)
            .outerjoin(events, events.c.id == log_leaves.c.event_id)
            .outerjoin(
                log_nodes, sa.and_(log_nodes.c.level == 0, log_nodes.c.idx == log_leaves.c.idx)
            )
            .where(log_leaves.c.idx >= tree.size)
            .order_by(log_leaves.c.idx)
            .limit(_PAGE)
        )
        rows = (await conn.execute(query)).all()
        if not rows:
            return tree
        parts = await personal_parts(conn, [row.id for row in rows if row.id is not None])
        for row in rows:
            index = int(row.idx)
            if index != tree.size:
                report.fail(f"leaf {tree.size} is missing", tree.size)
                return None
            problem = _check_leaf(row, parts.get(row.id))
            if problem is not None:
                report.fail(f"leaf {index}: {problem}", index)
                return None
            tree.append(bytes(row.leaf_hash))
            checkpoint = due.get(tree.size)
            if checkpoint is not None and tree.root() != checkpoint.root:
                start = max((s for s in due if s < tree.size), default=0)
                report.fail(
                    f"the leaves up to {tree.size} do not give the root of the signed "
                    f"checkpoint of that size",
                    start,
                )
                return None
            if previous is not None and tree.size == previous.size and tree.root() != previous.root:
                report.fail(
                    f"the leaves up to {tree.size} do not give the previous checkpoint's "
                    f"root: the log was rewritten, or forked",
                    index,
                )
                return None


async def _nodes(conn: AsyncConnection, size: int, report: Report) -> bool:
    """Every stored tree node: exactly the complete subtrees, each hashing its children.

    Proofs and tiles are served from these nodes, and the sequencer extends them.
    """
    levels = (
        await conn.execute(
            sa.select(
                log_nodes.c.level,
                sa.func.count(),
                sa.func.min(log_nodes.c.idx),
                sa.func.max(log_nodes.c.idx),
            ).group_by(log_nodes.c.level)
        )
    ).all()
    found = {int(level): (int(n), int(lo), int(hi)) for level, n, lo, hi in levels}
    wanted = {level: size >> level for level in range(size.bit_length())}
    for level in sorted(set(found) | set(wanted)):
        count = wanted.get(level, 0)
        if found.get(level, (0, 0, count - 1)) != (count, 0, count - 1):
            report.fail(
                f"the tree's level {level} holds other nodes than the {count} complete "
                f"subtrees of {size} leaves",
                min(size, (found.get(level, (0, 0, 0))[1]) << level),
            )
            return False
    parent, left, right = log_nodes.alias("p"), log_nodes.alias("l"), log_nodes.alias("r")
    at, checked = (0, 0), 0
    while True:
        rows = (
            await conn.execute(
                sa.select(parent.c.level, parent.c.idx, parent.c.hash, left.c.hash, right.c.hash)
                .select_from(parent)
                .join(
                    left,
                    sa.and_(left.c.level == parent.c.level - 1, left.c.idx == parent.c.idx * 2),
                )
                .join(
                    right,
                    sa.and_(
                        right.c.level == parent.c.level - 1, right.c.idx == parent.c.idx * 2 + 1
                    ),
                )
                .where(
                    parent.c.level >= 1, sa.tuple_(parent.c.level, parent.c.idx) > sa.tuple_(*at)
                )
                .order_by(parent.c.level, parent.c.idx)
                .limit(_PAGE)
            )
        ).all()
        if not rows:
            break
        for level, idx, digest, l_hash, r_hash in rows:
            if bytes(digest) != node_hash(bytes(l_hash), bytes(r_hash)):
                report.fail(
                    f"the tree node at level {level}, index {idx} does not hash its children",
                    int(idx) << int(level),
                )
                return False
        checked += len(rows)
        at = (int(rows[-1][0]), int(rows[-1][1]))
    if checked != sum(wanted.values()) - wanted.get(0, 0):
        report.fail("some tree nodes have no children stored")
        return False
    report.checked.append(f"{checked + wanted.get(0, 0)} stored tree nodes (tiles and proofs)")
    return True


async def _unlogged(conn: AsyncConnection, report: Report) -> bool:
    """Every event is in the log or queued for it; a queued one still matches its receipt.

    `NOT EXISTS`, not `NOT IN (subquery)`: PostgreSQL plans the latter as a hashed
    subplan only while the subquery fits in `work_mem`, and beyond it rescans the
    subquery for every event (hours at a million records); `NOT EXISTS` is an anti-join.
    """
    lost = await conn.scalar(
        sa.select(sa.func.count())
        .select_from(events)
        .where(
            ~sa.exists().where(log_leaves.c.event_id == events.c.id),
            ~sa.exists().where(log_queue.c.event_id == events.c.id),
        )
    )
    if lost:
        report.fail(f"{lost} recorded events are neither in the log nor queued for it")
        return False
    rows = (
        await conn.execute(
            sa.select(
                log_queue.c.leaf_hash.label("promised"),
                *_EVENT_COLUMNS,
            )
            .select_from(log_queue)
            .join(events, events.c.id == log_queue.c.event_id)
        )
    ).all()
    parts = await personal_parts(conn, [row.id for row in rows])
    for row in rows:
        problem = _check_event(row, parts.get(row.id))
        if problem is None and row.promised is not None:
            data = _public_leaf(row)
            if leaf_hash(data) != bytes(row.promised):
                problem = "it was changed after its receipt was issued"
        if problem is not None:
            report.fail(f"queued event {row.id}: {problem}")
            return False
    report.checked.append(f"every event is in the log or queued ({len(rows)} queued)")
    return True


async def _personal_parts(conn: AsyncConnection, report: Report) -> bool:
    """Every record keeps its personal part, unless a record says it was deleted.

    Retention's records (`admin`, outcome `cleared`) list the records whose parts a run
    cleared. Forget records before envelope version 3 deleted the parts and listed them;
    since, forgetting deletes keys only, and a part sealed for people all since
    forgotten stays, opened by nobody.
    """
    forgotten: set[str] = set()
    cleared: set[str] = set()
    months: set[str] = set()
    for outcome, envelope in await conn.execute(
        sa.select(events.c.outcome, events.c.envelope).where(
            events.c.type == "admin", events.c.outcome.in_(("forgotten", RETENTION_OUTCOME))
        )
    ):
        said = read_envelope(envelope)
        (cleared if outcome == RETENTION_OUTCOME else forgotten).update(said.get("events") or ())
        if outcome == RETENTION_OUTCOME:
            months.update(said.get("months") or ())
    missing = (
        await conn.execute(
            sa.select(events.c.id, events.c.ts, log_leaves.c.idx)
            .outerjoin(event_personal, event_personal.c.event_id == events.c.id)
            .outerjoin(log_leaves, log_leaves.c.event_id == events.c.id)
            .where(event_personal.c.event_id.is_(None))
            .order_by(log_leaves.c.idx)
        )
    ).all()
    cleared.update(row.id for row in missing if month_of(row.ts) in months)
    unexplained = [row for row in missing if row.id not in forgotten and row.id not in cleared]
    if unexplained:
        first = unexplained[0]
        report.fail(
            f"the personal part of record {first.id} was deleted, and no forget or "
            f"retention record says so",
            None if first.idx is None else int(first.idx),
        )
        return False
    by_retention = sum(1 for row in missing if row.id in cleared)
    if by_retention:
        report.checked.append(f"{by_retention} personal parts cleared after their retention")
    if len(missing) > by_retention:
        report.checked.append(
            f"{len(missing) - by_retention} personal parts deleted by early forget records"
        )
    # The records someone can still open, found once and joined: a correlated
    # `NOT EXISTS` here would look up `event_subjects` by `event_id`, which no index
    # leads with, once per part (SQLite scans the table for each: quadratic).
    openable = (
        sa.select(event_subjects.c.event_id)
        .where(event_subjects.c.wrapped_key.is_not(None))
        .group_by(event_subjects.c.event_id)
        .subquery("openable")
    )
    shredded = await conn.scalar(
        sa.select(sa.func.count())
        .select_from(event_personal)
        .outerjoin(openable, openable.c.event_id == event_personal.c.event_id)
        .where(event_personal.c.sealed.is_not(None), openable.c.event_id.is_(None))
    )
    if shredded:
        report.checked.append(
            f"{shredded} personal parts sealed for people all since forgotten (opened by nobody)"
        )
    return True


_EVENT_COLUMNS = (
    events.c.id,
    events.c.type,
    events.c.ts,
    events.c.request_id,
    events.c.client_id,
    events.c.procedure,
    events.c.outcome,
    events.c.policy_version,
    events.c.envelope,
    events.c.envelope_hash,
    events.c.organisation,
    events.c.officer,
    events.c.case_ref,
    events.c.hidden_until,
    events.c.fields_served,
    events.c.papers_avoided,
    events.c.dossier_status,
)


def _public_leaf(row: Any) -> bytes:
    return public_leaf(
        type=row.type, ts=row.ts, envelope_hash=row.envelope_hash, policy_version=row.policy_version
    )


def _check_event(row: Any, part: PersonalPart | None) -> str | None:
    """An event's envelope hash, its columns against its envelope, its personal part."""
    envelope = read_envelope(row.envelope)
    if envelope_hash(envelope) != row.envelope_hash:
        return "its envelope was changed after it was recorded"
    columns = {
        "id": row.id,
        "type": row.type,
        "requestId": row.request_id,
        "outcome": row.outcome,
        "policyVersion": row.policy_version,
    }
    if "procedure" in envelope:
        columns["procedure"] = row.procedure
    client = "client" if "client" in envelope else "consumer" if "consumer" in envelope else None
    if client is not None:
        columns[client] = row.client_id
    said: Mapping[str, object] = envelope
    for name, value in columns.items():
        if said.get(name) != value:
            return f"its {name} differs from its envelope's"
    if datetime.datetime.fromisoformat(envelope["ts"]) != row.ts:
        return "its time differs from its envelope's"
    for name, value in indexed_columns(envelope).items():
        if getattr(row, name) != value:
            return f"its {name} differs from its envelope's"
    if part is not None:
        if part.altered:
            return "its sealed personal part does not open with the key of a person it names"
        if part.canonical is not None and (
            personal_hash(part.salt, part.canonical) != envelope.get("personalHash")
        ):
            return "its personal part was changed after it was recorded"
    return None


def _check_leaf(row: Any, part: PersonalPart | None) -> str | None:
    if row.id is None:
        return "its event is missing"
    problem = _check_event(row, part)
    if problem is not None:
        return problem
    data = _public_leaf(row)
    if data.decode() != row.leaf or leaf_hash(data) != bytes(row.leaf_hash):
        return "its public leaf does not match its event"
    if row.node is None or bytes(row.node) != bytes(row.leaf_hash):
        return "its position in the tree does not match its leaf (inserted or reordered)"
    return None
