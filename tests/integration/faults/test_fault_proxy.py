"""The fault proxy itself: it passes, cuts, pauses and heals, over real sockets."""

from __future__ import annotations

import asyncio

import pytest

from bench._faults import FaultProxy


async def _echo_server() -> asyncio.Server:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(1024):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    return await asyncio.start_server(echo, "127.0.0.1", 0)


async def _round_trip(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(data)), 2.0)
    finally:
        writer.close()


async def _send_and_read(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
) -> bytes:
    writer.write(data)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(data)), 2.0)


async def test_it_passes_cuts_pauses_and_heals() -> None:
    server = await _echo_server()
    proxy = FaultProxy("127.0.0.1", server.sockets[0].getsockname()[1]).start()
    try:
        assert await _round_trip(proxy.port, b"ping") == b"ping"
        # Paused: the connection opens, nothing comes back; healed, what was held arrives.
        proxy.pause()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"held")
        await writer.drain()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.readexactly(4), 0.3)
        proxy.heal()
        assert await asyncio.wait_for(reader.readexactly(4), 2.0) == b"held"
        # Cut: the open connection is reset, and a new one is refused.
        proxy.cut()
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await _send_and_read(reader, writer, b"more")
        writer.close()
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await _round_trip(proxy.port, b"again")
        proxy.heal()
        assert await _round_trip(proxy.port, b"back") == b"back"
    finally:
        proxy.stop()
        server.close()
        await server.wait_closed()


def test_it_sends_to_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy("10.0.0.1", 5432)
