"""The `rest` connector against answers sent over a real socket, on both transports of
the shared source client: aiohttp (whose session the connector calls directly) and
httpx's own. What a source sends wrongly ends the same way on both."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from connectors import FetchContext, RestConnector, parse_manifest, source_client
from gateway.errors import SourceDataInvalid, SourceTimeout, SourceUnavailable

CTX = FetchContext(request_id="req-1")
AN = "079203001234"
RECORD = b'{"so_dinh_danh": "%s", "ho_ten": "An"}' % AN.encode()

Answer = Callable[[bytes], bytes | None]
"""What the source writes for a request's head; `None`: it writes nothing and waits."""


def _http(body: bytes, *, status: str = "200 OK", headers: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{headers}\r\n"
    ).encode() + body


@pytest.fixture
async def source() -> AsyncIterator[tuple[list[bytes], Any]]:
    """A loopback source answering each request head with what the test set."""
    heads: list[bytes] = []
    answers: list[Answer] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                heads.append(head)
                answer = answers[0](head)
                if answer is None:
                    await asyncio.sleep(30)
                    return
                writer.write(answer)
                await writer.drain()
                if b"Connection: close" in answer:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield heads, (answers, port)
    server.close()


@pytest.fixture(params=["aiohttp", "httpcore"])
async def fetch(request: pytest.FixtureRequest, source: Any) -> AsyncIterator[Any]:
    heads, (answers, port) = source
    client = source_client(request.param)
    connector = RestConnector(
        parse_manifest(
            {
                "name": "population",
                "kind": "rest",
                "base_url": f"http://localhost:{port}",
                "retries": 0,
                "timeout_seconds": 0.5,
                "max_response_bytes": 2048,
                "entities": {
                    "Citizen": {
                        "key_field": "so_dinh_danh",
                        "get": "/v1/cong-dan/{key}",
                        "fields": {"personalId": "so_dinh_danh", "fullName": "ho_ten"},
                    }
                },
            }
        ),
        http=client,
    )

    async def run(answer: Answer) -> Any:
        answers[:] = [answer]
        return await connector.fetch("Citizen", [AN], frozenset({"fullName"}), CTX)

    run.heads = heads  # type: ignore[attr-defined]
    yield run
    await client.aclose()


async def test_a_plain_answer(fetch: Any) -> None:
    assert await fetch(lambda head: _http(RECORD)) == {AN: {"fullName": "An"}}
    assert b"/v1/cong-dan/" + AN.encode() in fetch.heads[0]


async def test_a_compressed_answer_is_read_and_a_broken_one_is_invalid_data(fetch: Any) -> None:
    gz = "Content-Encoding: gzip\r\n"
    assert await fetch(lambda head: _http(gzip.compress(RECORD), headers=gz)) == {
        AN: {"fullName": "An"}
    }
    with pytest.raises(SourceDataInvalid, match="decoded"):
        await fetch(lambda head: _http(b"not gzip at all", headers=gz))


async def test_an_answer_too_large_by_its_header_or_its_bytes(fetch: Any) -> None:
    with pytest.raises(SourceDataInvalid, match="too large"):
        await fetch(lambda head: _http(b"x" * 5000))
    chunked = b"".join(b"%x\r\n%s\r\n" % (1000, b"x" * 1000) for _ in range(5)) + b"0\r\n\r\n"
    with pytest.raises(SourceDataInvalid, match="too large"):
        await fetch(lambda head: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)


async def test_a_missing_record_and_a_failing_source(fetch: Any) -> None:
    assert await fetch(lambda head: _http(b"{}", status="404 Not Found")) == {AN: None}
    with pytest.raises(SourceUnavailable) as failed:
        await fetch(lambda head: _http(b"{}", status="503 Service Unavailable"))
    assert failed.value.detail["status"] == 503


async def test_an_answer_cut_short_is_unavailable(fetch: Any) -> None:
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\nConnection: close\r\n\r\n" + RECORD
    with pytest.raises(SourceUnavailable):
        await fetch(lambda head: cut)


async def test_a_source_that_does_not_answer_times_out(fetch: Any) -> None:
    with pytest.raises(SourceTimeout):
        await fetch(lambda head: None)


async def test_a_cookie_the_source_sets_is_not_sent_back(fetch: Any) -> None:
    # A named host (not an address): aiohttp's own jar would keep its cookies.
    cookie = "Set-Cookie: session=citizen-1; Path=/\r\n"
    for _ in range(2):
        assert await fetch(lambda head: _http(RECORD, headers=cookie)) == {AN: {"fullName": "An"}}
    assert len(fetch.heads) == 2
    assert b"cookie" not in fetch.heads[1].lower()
