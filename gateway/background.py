"""Loops of the gateway's own, started with it and stopped with it. A leaf module.

The sequencer, witnessing, the notifications' dispatcher, retention and the catalogue's
switch each run one loop (`_run`) in a task of their own: started once the gateway
holds what they need, cancelled at stop, the work in progress rolled back to be done
again on the next start.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["Background"]


class Background:
    """A task running `_run` from `start` until `stop`."""

    _name = "background"
    """The task's name."""
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        """Stop the loop now."""
        await self._cancel()

    async def _cancel(self) -> bool:
        """Cancel the loop and wait for it to end; whether it was running."""
        task, self._task = self._task, None
        if task is None:
            return False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return True

    async def _run(self) -> None:
        raise NotImplementedError
