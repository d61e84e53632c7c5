"""Rate limits count in fixed one-minute windows (`gateway.admission._ratelimit`): a
test whose hits must fall in one window starts well inside one."""

from __future__ import annotations

import asyncio
import time

from gateway.admission._ratelimit import WINDOW


async def inside_one_window(seconds: float = 10.0) -> None:
    """Return once at least `seconds` are left of the current window (at once if they
    are, otherwise early in the next)."""
    left = WINDOW - time.time() % WINDOW
    if left < seconds:
        await asyncio.sleep(left + 0.5)
