"""The shared source client keeps no cookie: one citizen's call never carries another's."""

from __future__ import annotations

import asyncio

import pytest

from connectors import source_client


@pytest.mark.parametrize("transport", ["aiohttp", "httpcore"])
async def test_a_cookie_a_source_sets_is_not_sent_back(transport: str) -> None:
    seen: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            seen.append(head)
            writer.write(
                b"HTTP/1.1 200 OK\r\nSet-Cookie: session=citizen-1; Path=/\r\n"
                b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
            )
            await writer.drain()
            if len(seen) == 2:
                break
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = source_client(transport)  # type: ignore[arg-type]
    try:
        for _ in range(2):
            response = await client.get(f"http://127.0.0.1:{port}/v1/cong-dan/1")
            assert response.status_code == 200
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()
    assert len(seen) == 2
    assert b"cookie" not in seen[1].lower()
    assert len(client.cookies) == 0
