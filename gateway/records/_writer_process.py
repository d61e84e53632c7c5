"""The recorder's commits in a process of their own.

A commit's own work (the rows of each event: canonical JSON, hashes, the sealed
personal part and its wrapped keys; the statements; the commit) ran under the
interpreter's lock of the process serving the requests: in a writer thread on SQLite,
on the event loop itself on PostgreSQL. It was about a quarter of the gateway's CPU
under load, and the second core stayed idle. The writer process does that work on
its own interpreter: the recorder's task sends it the events of a commit through a
socket pair and awaits its answer, the event loop serving requests meanwhile, then
releases their callers as before. Nothing about durability changes: the answer to a
request still waits for the commit of its record.

The process starts with the recorder, and the gateway is started only once it is
ready (its imports done, its connection open): a first commit does not pay for them
within the time a request waits for its record. It is started again after it is lost
(it died, or its socket broke): the commit in flight then fails as any commit may (its
callers are refused, its records marked `undelivered` if they were committed after
all). It ends with the recorder, or when the gateway's process ends (its end of the
socket closes).
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle  # nosec B403
import socket
import struct
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import structlog

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["WriterFailed", "WriterProcess"]

log = structlog.get_logger(__name__)

_STOP_TIMEOUT = 5.0
"""Seconds the process is given to end after it is asked to; then it is killed."""
_REPLY_TIMEOUT = 120.0
"""Seconds a commit's answer may take (SQLite waits up to 30 s for another writer's
lock); past them the process is taken as hung: killed, and the next commit starts
another."""
_RESTART_PAUSE = 1.0
"""Seconds at least between two starts of the process."""
_READY_TIMEOUT = 60.0
"""Seconds a process started is given to say it is ready (its imports, its connection);
past them it is taken as hung."""
_READY = "ready"
_CHILD = (
    # It ends when the gateway closes its end, whatever signal the gateway is stopped
    # with: its process group's Ctrl-C, or a service manager's TERM to every process,
    # must not end it while the gateway still commits what its requests wait for. So
    # those signals are ignored from the first instant, before the imports.
    "import signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "from gateway.records._writer_process import serve; serve(int(sys.argv[1]))"
)
"""The writer process's program (run as `-c`: not as `-m` of this module, which the
package imports before running it, and Python warns of that)."""
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
    """Commits of `commit_events` in a child process, on the database of `url` (a
    SQLite file, or PostgreSQL).

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
        self._started: float | None = None
        self._readied = False
        """The process started has said it is ready."""
        self._hello = asyncio.Lock()

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
        process, as `Event.rows` would have set them here, and its receipt where it
        asked for one (signed there with the commit). `WriterFailed` if the commit
        failed, the process was lost or gave no answer within `_REPLY_TIMEOUT` (then
        the next commit starts another). Cancelled while waiting, it gives the process
        up too: its answer would otherwise be read as the next commit's."""
        if self._gone():
            # Lost since its last commit (killed while idle): nothing was sent yet.
            await self._lost()
        if self._writer is None:
            await self.start()
        reader, writer = self._reader, self._writer
        assert reader is not None
        assert writer is not None
        patience = _READY_TIMEOUT
        try:
            if not self._readied:  # (a new process's first frame: once)
                async with asyncio.timeout(patience):
                    await self._ready(reader)
            writer.write(_frame((batch, marks)))
            patience = _REPLY_TIMEOUT
            async with asyncio.timeout(patience):
                await writer.drain()
                reply = await _reply(reader)
        except TimeoutError as exc:  # before OSError, of which it is a kind
            self._abandon()
            log.error("recorder_process_silent", seconds=patience)
            raise WriterFailed("WriterTimeout") from exc
        except (asyncio.IncompleteReadError, OSError) as exc:
            await self._lost()
            raise WriterFailed("WriterLost") from exc
        except BaseException:
            self._abandon()  # cancelled: the answer in flight is no longer anyone's
            raise
        if reply[0] != "ok":
            raise WriterFailed(str(reply[1]))
        _, settled, written, sealed = reply
        for event, (leaf, commitments, receipt) in zip(batch, sealed, strict=True):
            event.leaf_hash, event.commitments, event.receipt = leaf, commitments, receipt
        return settled, written

    async def ready(self) -> None:
        """Wait until the process started is ready to commit (its imports done, and on
        PostgreSQL its connection open), at most `_READY_TIMEOUT` seconds. A process
        that fails to is given up, and said so; the first commit starts another."""
        reader = self._reader
        if reader is None:
            return
        try:
            async with asyncio.timeout(_READY_TIMEOUT):
                await self._ready(reader)
        except TimeoutError:  # before OSError, of which it is a kind
            self._abandon()
            log.error("recorder_process_silent", seconds=_READY_TIMEOUT)
        except (asyncio.IncompleteReadError, OSError):
            await self._lost()

    async def _ready(self, reader: asyncio.StreamReader) -> None:
        """Read the process's first frame (`_READY`) unless it was read. `ready` and a
        commit may both wait for it: one reads it, under the lock."""
        async with self._hello:
            if reader is not self._reader:  # given up meanwhile
                raise ConnectionResetError
            if not self._readied:
                await _reply(reader)
                self._readied = True

    async def close(self) -> None:
        """Ask the process to end, and wait for it (killed after a while)."""
        writer, process = self._writer, self._process
        self._reader = self._writer = None
        self._process = None
        self._readied = False
        if writer is not None:
            try:
                writer.write(_frame(None))
                await writer.drain()
            except OSError:
                pass  # already gone
            writer.close()
        if process is not None:
            await _ended(process)

    async def start(self) -> None:
        """Start the process, unless it runs (its imports then go on beside the
        gateway's own start: `ready` waits for them, and so does a commit sent
        meanwhile). Not twice within `_RESTART_PAUSE`: a process that cannot run is not
        started for every commit."""
        if self._writer is not None:
            return
        loop = asyncio.get_running_loop()
        if self._started is not None:
            await asyncio.sleep(max(0.0, self._started + _RESTART_PAUSE - loop.time()))
        self._started = loop.time()
        ours, theirs = socket.socketpair()
        process = None
        try:
            # The same interpreter and environment, and the gateway's process group (it
            # counts as the gateway's); the socket is its only channel.
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _CHILD,
                str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
            )
            theirs.close()
            self._reader, self._writer = await asyncio.open_unix_connection(sock=ours)
        except BaseException:
            theirs.close()
            ours.close()
            if process is not None:
                process.kill()
                _reap(process)
            raise
        self._writer.write(_frame((self._url, self._queue)))
        self._process = process
        log.info("recorder_process_started", pid=process.pid)

    def _gone(self) -> bool:
        """Whether the process started is no longer there to answer."""
        process, reader = self._process, self._reader
        if process is None or reader is None:
            return False
        return process.returncode is not None or reader.at_eof()

    async def _lost(self) -> None:
        process = self._process
        await self.close()
        if process is not None:
            log.error("recorder_process_lost", pid=process.pid, exitcode=process.returncode)

    def _abandon(self) -> None:
        """Give the process up at once (it is killed, and reaped in the background)."""
        writer, process = self._writer, self._process
        self._reader = self._writer = None
        self._process = None
        self._readied = False
        if writer is not None:
            writer.close()
        if process is not None:
            if process.returncode is None:
                process.kill()
            _reap(process)


async def _reply(reader: asyncio.StreamReader) -> Any:
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    return pickle.loads(await reader.readexactly(length))  # noqa: S301  # nosec B301


_REAPING: set[asyncio.Task[None]] = set()
"""Processes given up, being waited for (a task no one holds may be collected)."""


def _reap(process: asyncio.subprocess.Process) -> None:
    task = asyncio.get_running_loop().create_task(_ended(process))
    _REAPING.add(task)
    task.add_done_callback(_REAPING.discard)


async def _ended(process: asyncio.subprocess.Process) -> None:
    """Wait for `process` to end (killed after `_STOP_TIMEOUT`)."""
    try:
        await asyncio.wait_for(process.wait(), _STOP_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()


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


def serve(fd: int) -> None:
    """The writer process (`_CHILD` runs it), on the socket `fd`: a commit for each
    batch it is sent, until told to end or the gateway's end of the socket closes.
    The first message is the database's URL and whether events are queued for the
    log; it answers `_READY` once it can commit (its imports done, its connection
    open), then a frame for each batch. Its log lines (a failure of its own) are the
    gateway's JSON, with the type of the failure only."""
    from gateway.logconfig import configure_logging

    configure_logging(level="warning")
    sock = socket.socket(fileno=fd)
    try:
        opening = _receive(sock)
        if opening is None:
            return
        url, queue = opening
        asyncio.run(_serve(sock, url, queue))
    except OSError:
        pass  # the gateway is gone
    except Exception as exc:  # the process ends: said, then gone
        log.error("recorder_process_failed", error=type(exc).__name__)
        raise SystemExit(1) from None
    finally:
        sock.close()


async def _serve(sock: socket.socket, url: str, queue: bool) -> None:
    """Each batch received committed on the database of `url`, its outcome sent back.
    The connection is opened first (a failure to is said, and the first commit tries
    again), and after a failed commit it is thrown away and opened again for the next.
    Nothing else runs here: waiting for the next batch blocks."""
    from gateway.storage import sqlite_file

    file = sqlite_file(sa.make_url(url)) is not None
    connection = _FileConnection(url) if file else _ServerConnection(url)
    try:
        try:
            await connection.open()
        except Exception as exc:  # the first commit tries again, and says why it fails
            log.warning("recorder_process_not_connected", error=type(exc).__name__)
        sock.sendall(_frame(_READY))
        while (request := _receive(sock)) is not None:
            batch, marks = request
            try:
                settled, written = await connection.commit(batch, marks, queue=queue)
            except Exception as exc:  # reported to the gateway, which refuses the batch
                await connection.close()
                _failed(sock, exc)
                continue
            _committed(sock, batch, settled, written)
    finally:
        await connection.dispose()


class _FileConnection:
    """A SQLite file: each commit through the standard driver, as the writer thread's,
    on one connection kept open (taking it from the pool and giving it back cost a
    tenth of a one-record commit)."""

    def __init__(self, url: str) -> None:
        from gateway.records._recorder import commit_events
        from gateway.storage import sqlite_sync_engine

        self._commit_events = commit_events
        self._engine = sqlite_sync_engine(url)
        self._conn: sa.Connection | None = None

    async def open(self) -> None:
        if self._conn is None:
            self._conn = self._engine.connect()

    async def commit(
        self, batch: Sequence[Any], marks: Mapping[str, Any], *, queue: bool
    ) -> tuple[list[str], list[Any]]:
        await self.open()
        assert self._conn is not None
        with self._conn.begin():
            return self._commit_events(self._conn, batch, marks, queue=queue)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # thrown away anyway
                conn.close()

    async def dispose(self) -> None:
        await self.close()
        self._engine.dispose()


class _ServerConnection:
    """PostgreSQL: each commit on one connection kept open, as the gateway's own loop
    would commit it (through asyncpg itself, or SQLAlchemy's way with `undelivered`
    records due)."""

    def __init__(self, url: str) -> None:
        from gateway.records._recorder import commit_on
        from gateway.storage import create_engine

        self._commit_on = commit_on
        self._engine = create_engine(url)
        self._conn: AsyncConnection | None = None

    async def open(self) -> None:
        if self._conn is None:
            self._conn = await self._engine.connect()

    async def commit(
        self, batch: Sequence[Any], marks: Mapping[str, Any], *, queue: bool
    ) -> tuple[list[str], list[Any]]:
        await self.open()
        assert self._conn is not None
        return await self._commit_on(self._conn, batch, marks, queue=queue)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # thrown away anyway
                await conn.close()

    async def dispose(self) -> None:
        await self.close()
        await self._engine.dispose()


def _committed(sock: socket.socket, batch: Any, settled: list[str], written: list[Any]) -> None:
    sealed = [(event.leaf_hash, event.commitments, event.receipt) for event in batch]
    sock.sendall(_frame(("ok", settled, written, sealed)))


def _failed(sock: socket.socket, exc: Exception) -> None:
    sock.sendall(_frame(("failed", type(exc).__name__)))
