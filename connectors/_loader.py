"""Per-request batching: one source call per connector per entity kind per request.

Every `load(key, fields)` made while resolvers are being started joins one pending
batch; the batch is sent on the next turn of the event loop. Fields asked for the same
key are united, but keys are never given fields asked for other keys: the fields a
source is asked for one subject are exactly those allowed for that subject. Keys that
want the same fields (the usual case) share one call. Results are kept for the rest of
the request, so asking again for a key with fields already read costs nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping

from connectors._resilience import deadline_scope
from connectors.base import Connector, FetchContext, FetchResult

__all__ = ["BatchLoader"]


class BatchLoader:
    """Collects lookups of one entity kind at one connector and sends them together."""

    __slots__ = (
        "_by",
        "_connector",
        "_ctx",
        "_done",
        "_fields",
        "_kind",
        "_pending",
        "_tasks",
        "calls",
    )

    def __init__(
        self, connector: Connector, kind: str, ctx: FetchContext, *, by: str | None = None
    ) -> None:
        self._connector = connector
        self._kind = kind
        self._by = by
        self._ctx = ctx
        self._pending: dict[str, asyncio.Future[FetchResult]] = {}
        self._fields: dict[str, frozenset[str]] = {}
        self._done: dict[str, tuple[frozenset[str], asyncio.Future[FetchResult]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.calls = 0

    def load(self, key: str, fields: frozenset[str]) -> Awaitable[FetchResult]:
        """The record for `key` with at least `fields`, from the next batch if needed."""
        done = self._done.get(key)
        if done is not None and fields <= done[0]:
            return done[1]
        future = self._pending.get(key)
        if future is None:
            loop = asyncio.get_running_loop()
            if not self._pending:
                loop.call_soon(self._dispatch)
            future = loop.create_future()
            self._pending[key] = future
        self._fields[key] = self._fields.get(key, frozenset()) | fields
        return future

    def _dispatch(self) -> None:
        pending, wanted = self._pending, self._fields
        self._pending, self._fields = {}, {}
        groups: dict[frozenset[str], dict[str, asyncio.Future[FetchResult]]] = {}
        for key, future in pending.items():
            self._done[key] = (wanted[key], future)
            groups.setdefault(wanted[key], {})[key] = future
        loop = asyncio.get_running_loop()
        for fields, group in groups.items():
            self.calls += 1
            task = loop.create_task(self._run(group, fields))
            # The loop keeps only weak references to tasks: hold this one until it ends.
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _fetch(self, keys: list[str], fields: frozenset[str]) -> Mapping[str, FetchResult]:
        if self._by is None:
            return await self._connector.fetch(self._kind, keys, fields, self._ctx)
        return await self._connector.fetch(self._kind, keys, fields, self._ctx, by=self._by)

    async def _run(
        self, pending: dict[str, asyncio.Future[FetchResult]], fields: frozenset[str]
    ) -> None:
        try:
            # Every call the connector makes for this batch ends by the deadline.
            with deadline_scope(self._ctx.deadline):
                found = await self._fetch(list(pending), fields)
        except asyncio.CancelledError:
            for future in pending.values():
                future.cancel()
            raise
        except Exception as exc:
            for future in pending.values():
                if not future.done():
                    future.set_exception(exc)
                    # Retrieved here so an unawaited future does not warn at collection;
                    # every field that awaits it still gets the exception.
                    future.exception()
            return
        for key, future in pending.items():
            if not future.done():
                future.set_result(found.get(key))
