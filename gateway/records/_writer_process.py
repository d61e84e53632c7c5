"""The SQLite recorder's commits in a process of their own.

A commit's own work (the rows of each event: canonical JSON, hashes, the sealed
personal part and its wrapped keys; the statements; the commit) took about a quarter
of the gateway's CPU under load, in a thread that held the interpreter's lock as
much as the event loop serving the requests, so neither used the second core. The
writer process does that work on its own interpreter: the recorder's writer thread
sends it the events of a commit through a pipe and waits for its answer (with the
interpreter's lock released), then releases their callers as before. Nothing about
durability changes: the answer to a request still waits for the commit of its record.

The process is started at the first commit and again after it is lost (it died, or
its pipe broke): the commit in flight then fails as any commit may (its callers are
refused, its records marked `undelivered` if they were committed after all). It ends
with the recorder, or when the gateway's process ends (its end of the pipe closes).
"""

from __future__ import annotations

import asyncio
import pickle  # nosec B403
import socket
import struct
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

__all__ = ["WriterFailed", "WriterProcess"]

log = structlog.get_logger(__name__)

_STOP_TIMEOUT = 5.0
"""Seconds the process is given to end after it is asked to; then it is terminated."""
_LENGTH = struct.Struct("!Q")
"""A frame: its length, then the pickled message. Frames pass only between the gateway
and the child process it started, through a socket pair no one else holds."""


class WriterFailed(Exception):
    """A commit in the writer process failed, or the process was lost during it.

    `kind`: the type name of the failure in the process (`WriterLost` when the process
    was lost): never its message, which may quote stored values.
    """

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def _frame(message: Any) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


class WriterProcess:
    """Commits of `commit_events` in a child process, on the SQLite file of `url`.

    `commit` is awaited by one task at a time (the recorder's), on the event loop: the
    events go to the process through a socket, and the loop serves requests until the
    answer arrives. No thread of the gateway waits for the interpreter's lock on the
    way (a writer thread did: each time about one switch interval of the loop's).
    """

    def __init__(self, url: str, *, queue: bool = True) -> None:
        self._url = url
        self._queue = queue
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    def __repr__(self) -> str:
        return f"WriterProcess(pid={self.pid})"

    @property
    def pid(self) -> int | None:
        """The process's id while it runs."""
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    async def commit(
        self, batch: Sequence[Any], marks: Mapping[str, tuple[Any, bool]]
    ) -> tuple[list[str], list[Any]]:
        """`commit_events(batch, marks)` in the process: the marks settled and those
        written. Each event of `batch` gets its leaf hash and commitments from the
        process, as `Event.rows` would have set them here. `WriterFailed` if the commit
        failed or the process was lost (then the next commit starts another)."""
        if self._writer is None or self._reader is None:
            await self._start()
        assert self._writer is not None
        assert self._reader is not None
        try:
            self._writer.write(_frame((list(batch), dict(marks))))
            await self._writer.drain()
            (length,) = _LENGTH.unpack(await self._reader.readexactly(_LENGTH.size))
            data = await self._reader.readexactly(length)
            reply = pickle.loads(data)  # noqa: S301  # nosec B301
        except (asyncio.IncompleteReadError, OSError) as exc:
            await self._lost()
            raise WriterFailed("WriterLost") from exc
        if reply[0] != "ok":
            raise WriterFailed(str(reply[1]))
        _, settled, written, sealed = reply
        for event, (leaf, commitments) in zip(batch, sealed, strict=True):
            event.leaf_hash, event.commitments = leaf, commitments
        return settled, written

    async def close(self) -> None:
        """Ask the process to end, and wait for it (terminated after a while)."""
        writer, process = self._writer, self._process
        self._reader = self._writer = None
        self._process = None
        if writer is not None:
            try:
                writer.write(_frame(None))
                await writer.drain()
            except OSError:
                pass  # already gone
            writer.close()
        if process is not None:
            try:
                await asyncio.wait_for(process.wait(), _STOP_TIMEOUT)
            except TimeoutError:
                process.kill()
                await process.wait()

    async def _start(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            # The same interpreter and environment; the socket is its only channel.
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                __name__,
                str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        self._reader, self._writer = await asyncio.open_unix_connection(sock=ours)
        self._writer.write(_frame((self._url, self._queue)))
        self._process = process
        log.info("recorder_process_started", pid=process.pid)

    async def _lost(self) -> None:
        process = self._process
        await self.close()
        if process is not None:
            log.error("recorder_process_lost", pid=process.pid, exitcode=process.returncode)


def _receive(sock: socket.socket) -> Any:
    """The next message; `None` once the gateway's end is closed."""
    head = _exactly(sock, _LENGTH.size)
    if head is None:
        return None
    (length,) = _LENGTH.unpack(head)
    data = _exactly(sock, length)
    if data is None:
        return None
    return pickle.loads(data)  # noqa: S301  # nosec B301


def _exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def serve(sock: socket.socket) -> None:
    """The writer process: a commit for each batch it is sent, until told to end or
    the gateway's end of the socket closes. The first message is the database's URL
    and whether events are queued for the log."""
    from gateway.records._recorder import commit_events
    from gateway.storage import sqlite_sync_engine

    opening = _receive(sock)
    if opening is None:
        return
    url, queue = opening
    engine = sqlite_sync_engine(url)
    try:
        while (request := _receive(sock)) is not None:
            batch, marks = request
            try:
                with engine.begin() as conn:
                    settled, written = commit_events(conn, batch, marks, queue=queue)
            except Exception as exc:  # reported to the gateway, which refuses the batch
                engine.dispose()
                sock.sendall(_frame(("failed", type(exc).__name__)))
                continue
            sealed = [(event.leaf_hash, event.commitments) for event in batch]
            sock.sendall(_frame(("ok", settled, written, sealed)))
    except OSError:
        pass  # the gateway is gone
    finally:
        engine.dispose()
        sock.close()


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])))
