"""`gateway log check` and `gateway log declare-loss`: the log against what was published.

Both compare the log in the database with the newest checkpoint known outside it (the
published file, each witness), as the gateway's sequencer does before it signs. A log
that does not continue it is reported with its code (`LOG_BEHIND_PUBLISHED`,
`LOG_INCONSISTENT_WITH_PUBLISHED`), the sizes and the leaves missing, exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from gateway.cli._common import print_json, settings_from_environment
from gateway.config import GatewaySettings

__all__ = ["add_continuity_commands", "opened_guard"]


@asynccontextmanager
async def opened_guard(
    settings: GatewaySettings, engine: Any, *, signing: bool
) -> AsyncIterator[Any]:
    """The log of the configured database with the gateway's guard: (store, guard)."""
    from gateway.log import checkpoint_verifiers
    from gateway.log.continuity import ContinuityGuard, PublishedFile
    from gateway.log.store import TransparencyLog
    from gateway.log.witnessing import Witness
    from keys import KeyRing

    ring = KeyRing.load(settings.keys_dir)
    origin = settings.checkpoint_origin
    store = TransparencyLog(engine, ring if signing else None, origin=origin)
    published = settings.log_published_file
    guard = ContinuityGuard(
        store,
        checkpoint_verifiers(ring, origin),
        published=None if published is None else PublishedFile(published),
        witnesses=[Witness.of(w.url, w.key) for w in settings.witnesses],
    )
    try:
        yield store, guard
    finally:
        await guard.aclose()
        store.dispose()


def _log_check(_args: argparse.Namespace) -> int:
    from gateway.storage import create_engine, require_head

    settings = settings_from_environment()

    async def run() -> dict[str, Any]:
        engine = create_engine(settings.database_url.get_secret_value())
        try:
            await require_head(engine)
            async with opened_guard(settings, engine, signing=False) as (store, guard):
                await guard.check(ask_witnesses=True)
                latest = await store.latest()
        finally:
            await engine.dispose()
        return {
            "status": "continues",
            "origin": None if latest is None else latest.origin,
            "size": None if latest is None else latest.size,
            "publishedFile": None if guard.published is None else str(guard.published.path),
            "witnessesAsked": len(settings.witnesses),
        }

    print_json(asyncio.run(run()))
    return 0


def _log_declare_loss(args: argparse.Namespace) -> int:
    from gateway.errors import Conflict, LogDiscontinuity
    from gateway.records import declare_loss
    from gateway.resources import load_procedures, load_pseudonym_key
    from gateway.storage import create_engine, create_sequencer_engine, require_head
    from keys import KeyRing, verifier_key

    settings = settings_from_environment()
    reason = args.reason.strip()
    if not reason:
        sys.stderr.write("gateway: --reason must say why the leaves are lost\n")
        return 2
    catalogue = load_procedures(settings)
    key = load_pseudonym_key(settings)

    async def run() -> Any:
        url = settings.database_url.get_secret_value()
        engine = create_sequencer_engine(url, settings.sequencer_timeout) or create_engine(url)
        try:
            await require_head(engine)
            async with opened_guard(settings, engine, signing=True) as (store, guard):
                try:
                    await guard.check(ask_witnesses=True)
                except LogDiscontinuity as found:
                    published_root = None
                    if guard.published is not None:
                        held = guard.published.read(store.base_origin, guard.verifiers)
                        if held is not None and held.size == found.detail.get("publishedSize"):
                            published_root = held.root
                    done = await declare_loss(
                        engine,
                        store,
                        found,
                        reason=reason,
                        operator=args.operator,
                        pseudonym_key=key,
                        policy_version=catalogue.version,
                        published_root=published_root,
                    )
                    await guard.signed(done.checkpoint)
                    ring = KeyRing.load(settings.keys_dir)
                    named = done.checkpoint.origin
                    keys = [verifier_key(named, k.public) for k in ring.verifying("checkpoints")]
                    return found, done, keys[::-1]
                raise Conflict(
                    "The log continues every checkpoint published of it: nothing is lost, "
                    "so there is nothing to declare."
                )
        finally:
            await engine.dispose()

    found, done, keys = asyncio.run(run())
    if found.code == "LOG_INCONSISTENT_WITH_PUBLISHED":
        lost = f"the history published at {found.detail.get('publishedSize')} leaves"
    elif done.lost_to is not None and done.lost_to >= done.lost_from:
        lost = f"leaves {done.lost_from} to {done.lost_to}"
    else:
        lost = f"the epoch {found.detail.get('publishedOrigin')} published after this database"
    sys.stdout.write(
        f"declared lost: {lost} of {found.detail.get('origin')} ({found.code}); the "
        f"statement is record {done.event_id}, leaf {done.lost_from}\n"
        f"the log continues as {done.checkpoint.origin}, its first checkpoint of "
        f"{done.checkpoint.size} leaves holds the statement\n"
        f"give each witness's operator the new origin and its checkpoint key:\n"
    )
    for line in keys:
        sys.stdout.write(f"  {line}\n")
    sys.stdout.write(f"the checkpoint:\n{done.checkpoint.note}")
    return 0


def add_continuity_commands(logp: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add `check` and `declare-loss` to `gateway log`."""
    command(
        logp,
        "check",
        _log_check,
        "compare the log with the newest checkpoint published of it (the published file, "
        "each witness); exit 2 naming what is missing",
    )
    loss = command(
        logp,
        "declare-loss",
        _log_declare_loss,
        "record that leaves the log published are lost and continue it under its next "
        "epoch's origin, the statement its first leaf",
    )
    loss.add_argument("--reason", required=True, help="why the leaves are lost (recorded)")
    loss.add_argument("--operator", required=True, help="your operator id (recorded)")
