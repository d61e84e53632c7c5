"""The sequencer: integrates recorded events into the log within the maximum merge delay.

It runs in every gateway process; on PostgreSQL the replicas take turns through the
store's lock, so one integrates at a time and any other takes over.

It starts a pass every quarter of the merge delay, the time a pass takes counting
against the wait: an event recorded just after a pass read the queue is integrated by
the next one, so it waits at most a quarter of the delay and two passes.

Before each pass its guard (`gateway.log.continuity`) checks that the log continues
the newest checkpoint published of it; while it does not, nothing is signed and the
events wait in the queue.
"""

from __future__ import annotations

import asyncio

import structlog

from gateway import tracing
from gateway.background import Background
from gateway.log.continuity import ContinuityGuard
from gateway.log.store import LogIntegrityError, TransparencyLog

__all__ = ["Sequencer"]

log = structlog.get_logger(__name__)


class Sequencer(Background):
    """Integrates queued events in the background, within the maximum merge delay."""

    def __init__(
        self,
        log_store: TransparencyLog,
        *,
        merge_delay: float,
        max_batch: int = 4096,
        guard: ContinuityGuard | None = None,
        readers: tuple[TransparencyLog, ...] = (),
    ) -> None:
        self._log = log_store
        self._delay = merge_delay
        self._max_batch = max_batch
        self.guard = guard
        self._readers = readers
        """Other stores of the same log, told the origin it signs under."""

    _name = "sequencer"

    async def stop(self) -> None:
        """Stop now; a batch in progress rolls back and is integrated on the next start."""
        await self._cancel()
        self._log.dispose()
        if self.guard is not None:
            await self.guard.aclose()

    async def _signed(self) -> None:
        """After a commit: the checkpoint to the published file, its origin to readers."""
        signed = self._log.signed
        if signed is None:
            return
        for reader in self._readers:
            reader.origin = signed.origin
        if self.guard is not None:
            await self.guard.signed(signed)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self._delay / 4
        while True:
            started = loop.time()
            try:
                if self.guard is not None and not await self.guard.allows():
                    # Readiness says why; the events wait in the queue meanwhile.
                    await asyncio.sleep(max(0.0, interval - (loop.time() - started)))
                    continue
                with tracing.span("log_integration") as current:
                    integrated = await self._log.integrate(max_batch=self._max_batch)
                    total = integrated
                    while integrated == self._max_batch:
                        integrated = await self._log.integrate(max_batch=self._max_batch)
                        total += integrated
                    if current is not None:
                        current.set_attribute("gateway.leaves", total)
                if total:
                    await self._signed()
            except LogIntegrityError as exc:  # tampering: nothing is signed until resolved
                log.error("log_integrity_failure", detail=str(exc))
            except Exception as exc:  # a failed batch is retried on the next turn
                log.error("log_integration_failed", error=type(exc).__name__)
            await asyncio.sleep(max(0.0, interval - (loop.time() - started)))
