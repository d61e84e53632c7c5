"""How long the log stops when the sequencer holding its lock freezes (PostgreSQL).

A sequencer in a process of its own takes the lock, writes its batch and freezes itself
with SIGSTOP just before it signs and commits. Another sequencer tries every 0.1 s; the
time from the freeze to its first integrated batch is the takeover. Then the frozen one
is woken: its late commit must fail.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.log.store import TransparencyLog
from gateway.storage import create_sequencer_engine
from keys import KeyRing

__all__ = ["FROZEN_EXIT", "frozen_holder", "takeover"]

FROZEN_EXIT = 3
"""The frozen holder's exit status when its late commit failed."""

_FROZEN_HOLDER = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from pathlib import Path
    from gateway.log.store import TransparencyLog
    from gateway.storage import create_sequencer_engine
    from keys import KeyRing

    async def main():
        engine = create_sequencer_engine(sys.argv[1], float(sys.argv[3]))
        store = TransparencyLog(engine, KeyRing.load(Path(sys.argv[2])), origin=sys.argv[4])
        signing_key = store._signing_key

        def freeze_then_sign():
            print("holding", flush=True)
            os.kill(os.getpid(), signal.SIGSTOP)  # frozen, holding the lock
            return signing_key()

        store._signing_key = freeze_then_sign
        try:
            await store.integrate()
        except Exception as exc:
            print("late commit failed:", type(exc).__name__, flush=True)
            sys.exit(3)
        print("committed", flush=True)

    asyncio.run(main())
    """
)


@asynccontextmanager
async def frozen_holder(
    url: str, keys_dir: Path, session_timeout: float, origin: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A sequencer process frozen while it holds the log's lock (yielded once frozen)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _FROZEN_HOLDER,
        url,
        str(keys_dir),
        str(session_timeout),
        origin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(60):
            line = await process.stdout.readline()
        if line.strip() != b"holding":
            raise RuntimeError(f"the holder did not take the lock: {line!r}")
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGCONT)
            process.kill()
            await process.wait()


async def takeover(
    engine: AsyncEngine, keys_dir: Path, session_timeout: float, origin: str
) -> float:
    """Seconds from a holder's freeze to another sequencer's first batch (events queued)."""
    url = engine.url.render_as_string(hide_password=False)
    other_engine = create_sequencer_engine(url, session_timeout)
    if other_engine is None:
        raise ValueError("takeover is a PostgreSQL measurement")
    other = TransparencyLog(other_engine, KeyRing.load(keys_dir), origin=origin)
    try:
        await other.ensure_checkpoint()
        async with frozen_holder(url, keys_dir, session_timeout, origin) as holder:
            frozen = time.perf_counter()
            async with asyncio.timeout(session_timeout * 10 + 30):
                while True:
                    if await other.integrate():
                        break
                    await asyncio.sleep(0.1)
            took = time.perf_counter() - frozen
            holder.send_signal(signal.SIGCONT)
            async with asyncio.timeout(60):
                await holder.wait()
            if holder.returncode != FROZEN_EXIT:
                raise RuntimeError("the frozen holder's late commit did not fail")
        return took
    finally:
        await other_engine.dispose()


async def measure(timeouts: list[float], events: int = 200) -> str:
    """The takeover table (PostgreSQL)."""
    from bench._log import access_event, database
    from gateway.records import insert_events

    lines = [
        "A sequencer freezes (SIGSTOP) holding the log's lock, just before its commit; "
        "another tries every 0.1 s. Takeover: from the freeze to the other's first "
        "checkpoint. The frozen one's late commit failed every time.\n",
        "| backend | GATEWAY_SEQUENCER_TIMEOUT s | takeover s |",
        "|---|---|---|",
    ]
    for timeout in timeouts:
        with tempfile.TemporaryDirectory(prefix="gateway-bench-takeover-") as tmp:
            KeyRing.generate(Path(tmp))
            async with database("postgresql") as engine:
                async with engine.begin() as conn:
                    await insert_events(conn, [access_event(i) for i in range(events)])
                took = await takeover(engine, Path(tmp), timeout, "bench/log")
        lines.append(f"| postgresql | {timeout:g} | {took:.2f} |")
    return "\n".join(lines) + "\n"
