"""A TCP proxy on loopback that can pass, cut, pause and delay what goes through it.

Put between a gateway and its database, Redis or a source, it makes the faults
production brings, on demand and in order:

- `cut()`: every open connection is reset and new ones are refused (a link that dies);
- `pause()`: connections stay open but no byte moves either way (a partition or a
  frozen peer: nothing tells the other end anything is wrong);
- `delay(seconds)`: every chunk waits that long before it is passed on (a slow link);
- `heal()`: back to passing everything; what a pause held is then delivered.

It runs its own event loop in a thread, so the process under test may be this one or
another. Only loopback addresses are accepted. The fault suite
(`tests/integration/faults/`) and `make bench`'s outage figures use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FaultProxy", "fault_proxy"]

_CHUNK = 65536


@dataclass
class _State:
    mode: str = "pass"
    delay: float = 0.0
    flowing: asyncio.Event = field(default_factory=asyncio.Event)


class FaultProxy:
    """A proxy from `127.0.0.1:<port>` to `target` (host, port), in a thread of its own."""

    def __init__(self, target_host: str, target_port: int) -> None:
        if not ipaddress.ip_address(target_host).is_loopback:
            raise ValueError("the fault proxy sends traffic to loopback only")
        self._target = (target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._state: _State | None = None
        self.connections = 0
        """How many connections were accepted so far."""
        self.sent = 0
        """Bytes clients sent through the proxy so far (held ones included)."""
        self._clients: set[asyncio.StreamReader] = set()

    # -- control, from any thread -------------------------------------------------------

    @property
    def open_clients(self) -> int:
        """Client connections still open: accepted, and the client has not closed them.

        A client that gives up on a held or delayed call must close its connection, not
        leave it to the source; the client's close is seen as soon as it arrives, even
        while the proxy holds what the client sent.
        """
        return sum(1 for reader in list(self._clients) if not reader.at_eof())

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._start())
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def cut(self) -> None:
        """Reset every open connection and refuse new ones until `heal`."""
        self._call(self._set("cut"))

    def pause(self) -> None:
        """Hold every byte, both ways, on open and new connections, until `heal`."""
        self._call(self._set("pause"))

    def delay(self, seconds: float) -> None:
        """Pass everything, each chunk `seconds` late."""
        self._call(self._set("pass", seconds))

    def heal(self) -> None:
        """Pass everything at once again."""
        self._call(self._set("pass"))

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()

    def _call(self, coroutine: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    # -- the loop's side ----------------------------------------------------------------

    async def _start(self) -> None:
        self._state = _State()
        self._state.flowing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _set(self, mode: str, delay: float = 0.0) -> None:
        assert self._state is not None
        self._state.mode, self._state.delay = mode, delay
        if mode == "pause":
            self._state.flowing.clear()
        else:
            self._state.flowing.set()
        if mode == "cut":
            for writer in list(self._writers):
                writer.transport.abort()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._state is not None
        self.connections += 1
        if self._state.mode == "cut":
            writer.transport.abort()
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            writer.close()
            return
        self._writers.update((writer, up_writer))
        self._clients.add(reader)
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, outbound=True),
                self._pipe(up_reader, writer),
                return_exceptions=True,
            )
        except asyncio.CancelledError:
            pass  # stopping: asyncio's stream callback would report a cancelled task
        finally:
            self._clients.discard(reader)
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()
                w.close()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, outbound: bool = False
    ) -> None:
        assert self._state is not None
        state = self._state
        while True:
            chunk = await reader.read(_CHUNK)
            if not chunk:
                break
            if outbound:
                self.sent += len(chunk)
            await state.flowing.wait()
            if state.mode == "cut":
                break
            if state.delay:
                await asyncio.sleep(state.delay)
            writer.write(chunk)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()


@contextlib.contextmanager
def fault_proxy(target_host: str, target_port: int) -> Iterator[FaultProxy]:
    """A started proxy to the target, stopped on leaving."""
    proxy = FaultProxy(target_host, target_port).start()
    try:
        yield proxy
    finally:
        proxy.stop()
