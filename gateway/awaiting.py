"""Awaiting several calls at once, without a task for a lone one. A leaf module: every
package may use it.

`asyncio.gather` wraps each coroutine in a task; on the request path the usual case is
one call (one key, one connector, one group of fields), and a task for it costs more
than the call's own bookkeeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["all_of"]

_T = TypeVar("_T")


async def all_of(calls: list[Coroutine[Any, Any, _T]]) -> list[_T]:
    """The results of `calls` in order, run at once as `asyncio.gather` runs them; a
    lone call is awaited as it is."""
    if len(calls) == 1:
        return [await calls[0]]
    return list(await asyncio.gather(*calls))
