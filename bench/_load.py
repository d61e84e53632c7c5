"""A small closed-loop HTTP/1.1 load generator for loopback benchmarks.

Each of `concurrency` workers keeps one keep-alive connection and sends its next
request as soon as the previous answer is read. Requests are pre-encoded bytes, and
responses are read by Content-Length, so the generator costs far less CPU per request
than a general HTTP client and disturbs the measured servers less on a small machine.
Every run is bounded by a request count and a duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = ["Operation", "Result", "encode_get", "encode_post", "run"]


def encode_get(host: str, path: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n").encode()


def encode_post(
    host: str, path: str, body: bytes, accept: str = "application/json", token: str | None = None
) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Accept: {accept}\r\n{auth}Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass(frozen=True)
class Operation:
    """One logical operation: requests sent concurrently, each on its own connection."""

    requests: tuple[tuple[int, bytes], ...]  # (port, encoded request)


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index]


class _Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, request: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError):
                await self.writer.wait_closed()


async def run(
    operations: Sequence[Operation] | Callable[[int], Operation],
    *,
    concurrency: int,
    max_requests: int,
    max_seconds: float,
    warmup: int = 20,
) -> Result:
    """Send operations from `concurrency` workers until either bound is reached."""
    pick: Callable[[int], Operation] = (
        operations if callable(operations) else (lambda i: operations[i % len(operations)])
    )
    result = Result()
    # Operations 0..warmup-1 are spent warming up (a signed request is single-use).
    counter = itertools.count(warmup)
    # Every operation of a run has the same shape: one connection per request in it.
    pools = [[_Connection(port) for port, _ in pick(0).requests] for _ in range(concurrency)]

    async def one(conns: list[_Connection], op: Operation) -> bool:
        statuses = await asyncio.gather(
            *(conn.send(req) for conn, (_, req) in zip(conns, op.requests, strict=True))
        )
        return all(200 <= s < 300 for s in statuses)

    # Warm up connections and caches, unmeasured.
    for i in range(warmup):
        await one(pools[i % concurrency], pick(i))

    deadline = time.perf_counter() + max_seconds

    async def worker(conns: list[_Connection]) -> None:
        while time.perf_counter() < deadline:
            n = next(counter)
            if n >= max_requests:
                return
            started = time.perf_counter()
            ok = await one(conns, pick(n))
            if ok:
                result.latencies.append(time.perf_counter() - started)
            else:
                result.errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(conns) for conns in pools))
    result.elapsed = time.perf_counter() - started
    for conns in pools:
        for conn in conns:
            await conn.close()
    return result
