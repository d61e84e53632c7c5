"""A statement of loss: the log continues, in its next epoch, after leaves were lost.

When the database lost leaves the log had published (a restore of an older backup
with no newer one to bring them back), the log cannot sign under its name again:
every witness holds the larger tree and refuses a checkpoint that does not extend it,
and a reader holding it would see a fork. `declare_loss` records, in one `admin`
record, what was lost and why: the log's origin, size and root as restored, the
checkpoint published beyond them (its origin, size, root when known, and who holds
it), the leaves missing, the reason and the operator (a pseudonym in the envelope, the
id in the personal part). That record is integrated first, alone, as the first leaf
of the log's next epoch, and its checkpoint is signed under the epoch's origin
(`<origin>/epoch-<n>`, see `gateway.log._epochs`): the tree goes on from the restored
leaves, so every checkpoint signed before the loss still verifies against it, and
witnesses see the new origin as a new log, whose first checkpoint they cosign holding
the statement. `gateway audit verify` accepts a change of origin only to the next
epoch and only at such a statement.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from lienthong_client.log import Checkpoint
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import Conflict, LogDiscontinuity
from gateway.log import epoch_of, epoch_origin
from gateway.log.store import TransparencyLog
from gateway.records._envelope import EnvelopeBody
from gateway.records._recorder import Event, insert_events, pseudonym

__all__ = ["LOSS_ACTION", "DeclaredLoss", "declare_loss"]

LOSS_ACTION = "log_loss"


@dataclass(frozen=True, slots=True)
class DeclaredLoss:
    """The statement recorded and the checkpoint that opens the new epoch."""

    event_id: str
    checkpoint: Checkpoint
    lost_from: int
    lost_to: int | None


async def declare_loss(
    engine: AsyncEngine,
    store: TransparencyLog,
    found: LogDiscontinuity,
    *,
    reason: str,
    operator: str,
    pseudonym_key: bytes,
    policy_version: str,
    published_root: bytes | None = None,
) -> DeclaredLoss:
    """Record the loss `found` (what the continuity check raised) and open the next
    epoch with it; raises `Conflict` when the log holds no checkpoint to continue."""
    latest = await store.latest()
    if latest is None:
        raise Conflict("The log has no checkpoint: there is nothing to continue.")
    base = store.base_origin
    detail = found.detail
    ours = epoch_of(base, latest.origin) or 1
    published_origin = str(detail.get("publishedOrigin") or latest.origin)
    theirs = epoch_of(base, published_origin) or ours
    new_origin = epoch_origin(base, max(ours, theirs) + 1)
    published_size = detail.get("publishedSize")
    missing = detail.get("missing")
    envelope: EnvelopeBody = {
        "action": LOSS_ACTION,
        "operator": pseudonym(pseudonym_key, operator),
        "reason": reason,
        "code": found.code,
        "origin": latest.origin,
        "size": latest.size,
        "root": base64.b64encode(latest.root).decode(),
        "published": {
            "origin": published_origin,
            "size": published_size,
            "root": None if published_root is None else base64.b64encode(published_root).decode(),
            "source": detail.get("source"),
        },
        "missing": missing if isinstance(missing, list) else None,
        "newOrigin": new_origin,
    }
    record = Event(
        type="admin",
        request_id="",
        outcome=LOSS_ACTION,
        policy_version=policy_version,
        envelope=envelope,
        personal={"operator": operator},
    )
    async with engine.begin() as conn:
        await insert_events(conn, [record])
    # First and alone, under the new epoch's origin; the sequencer takes the rest.
    integrated = await store.integrate(max_batch=1, first=record.id, origin=new_origin)
    if integrated != 1 or store.signed is None:
        raise Conflict(
            "The statement is recorded but another sequencer holds the log's lock: run "
            "`gateway log declare-loss` again once the gateways' sequencers are idle.",
            event=record.id,
        )
    lost_to = published_size - 1 if isinstance(published_size, int) else None
    return DeclaredLoss(record.id, store.signed, latest.size, lost_to)
