"""When the database goes: every request is a complete 503 with `Retry-After`, no data.

The gateway's link to PostgreSQL goes through a fault proxy. Cut (the database is
gone) or cut and healed (it restarted: every pooled connection is dead), signed
requests, citizens' and auditors' reads are answered 503 `AUDIT_UNAVAILABLE` with
`Retry-After` and no data, never 500, and never by a connection closed without an
answer; each failure is one log line with one traceback at most. After healing,
requests are served again, and every answer that carried data has its record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import h11
import orjson
import pytest
import structlog
from conftest import HANG_GUARD, recorded

# The proxy breaks the database's link: a database of the test's own.
pytestmark = pytest.mark.own_database

UNAVAILABLE = "AUDIT_UNAVAILABLE"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class KeepAlive:
    """One HTTP/1.1 connection at a time, kept alive as a client's pool keeps it.

    A connection is left only when an answer says `Connection: close`; a connection
    the server closed without saying so is found by the next request sent on it,
    which then gets no answer at all (`ConnectionDropped`).
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._conn = h11.Connection(h11.CLIENT)
        self._closing: list[asyncio.StreamWriter] = []
        self.connections = 0

    async def request(
        self, method: str, target: str, *, headers: dict[str, str], body: bytes = b""
    ) -> Answer:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self._host, self._port)
            self._conn = h11.Connection(h11.CLIENT)
            self.connections += 1
        reader, writer = self._streams
        sent = [("Host", f"{self._host}:{self._port}"), *headers.items()]
        if body:
            sent.append(("Content-Length", str(len(body))))
        try:
            writer.write(self._conn.send(h11.Request(method=method, target=target, headers=sent)))
            if body:
                writer.write(self._conn.send(h11.Data(data=body)))
            writer.write(self._conn.send(h11.EndOfMessage()))
            await writer.drain()
            answer = await asyncio.wait_for(self._read(reader), HANG_GUARD)
        except (ConnectionError, h11.RemoteProtocolError) as exc:
            self.close()
            raise ConnectionDropped(f"{method} {target}: {exc!r}") from exc
        if self._conn.our_state is h11.DONE and self._conn.their_state is h11.DONE:
            self._conn.start_next_cycle()
        else:  # the answer said Connection: close
            self.close()
        return answer

    async def _read(self, reader: asyncio.StreamReader) -> Answer:
        status, headers, chunks = 0, {}, []
        while True:
            event = self._conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                if not data:
                    raise ConnectionError("closed without an answer")
                self._conn.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
                headers = {k.decode().lower(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return Answer(status, headers, b"".join(chunks))
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("closed without an answer")

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._closing.append(self._streams[1])
            self._streams = None

    async def aclose(self) -> None:
        self.close()
        for writer in self._closing:
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


class ConnectionDropped(AssertionError):
    """The server closed a kept-alive connection without answering a request on it."""


def _query(person: str) -> bytes:
    return orjson.dumps({"query": f'{{ citizen(personalId: "{person}") {{ fullName }} }}'})


async def _signed(http: KeepAlive, gateway: Any, person: str) -> Answer:
    body = _query(person)
    return await http.request(
        "POST",
        "/graphql",
        headers={
            "Authorization": f"Bearer {gateway.signer.sign(body)}",
            "Content-Type": "application/json",
            "Accept": "application/graphql-response+json",
        },
        body=body,
    )


def _unavailable(answer: Answer) -> None:
    assert answer.status == 503, (answer.status, answer.body)
    assert "retry-after" in answer.headers, answer.headers
    assert int(answer.headers["retry-after"]) > 0
    body = answer.json()
    assert "data" not in body, body
    assert body["code"] == UNAVAILABLE, body


@pytest.fixture
async def connect() -> AsyncIterator[Any]:
    """`connect(url)`: a kept-alive connection to `url`, closed after the test."""
    opened: list[KeepAlive] = []

    def make(url: str) -> KeepAlive:
        opened.append(KeepAlive(url))
        return opened[-1]

    yield make
    for http in opened:
        await http.aclose()


@pytest.fixture
def logged() -> Iterator[list[dict[str, Any]]]:
    """Every structlog event and standard log record of the test, as dicts."""
    found: list[dict[str, Any]] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            found.append(
                {"event": record.getMessage(), "logger": record.name, "exc": record.exc_info}
            )

    def keep(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
        found.append({**event, "exc": event.get("exc_info")})
        raise structlog.DropEvent

    handler = Keep(logging.ERROR)
    root = logging.getLogger()
    root.addHandler(handler)
    before = structlog.get_config()
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, keep],
        cache_logger_on_first_use=False,
    )
    try:
        yield found
    finally:
        structlog.configure(**before)
        root.removeHandler(handler)


def _tracebacks(logged: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    """Log lines with a traceback that belong to the request, or to no request at all."""
    return [e for e in logged if e["exc"] and e.get("request_id") in {request_id, None}]


async def _served(http: KeepAlive, gateway: Any, people: list[str]) -> list[str]:
    """Send until requests are served again (each answer 200 or 503); the ids served."""
    served: list[str] = []
    for attempt in range(60):
        answer = await _signed(http, gateway, people[attempt % len(people)])
        if answer.status == 200:
            assert answer.json()["data"]["citizen"]["fullName"], answer.body
            served.append(answer.headers["x-request-id"])
            if len(served) == 2:
                return served
        else:
            _unavailable(answer)
        await asyncio.sleep(0.25)
    raise AssertionError("the gateway did not recover")


async def test_a_cut_database_is_503_on_every_route_and_connections_stay_usable(
    gateway_factory, faults, place, redis_url, dataset, sign_in, logged, connect
) -> None:
    database_url, proxy = faults.to(place.database_url)
    gateway = gateway_factory.start(database_url=database_url, redis_url=redis_url)
    people = [str(p) for p in dataset.sample.citizens]
    http = connect(gateway.url)
    served = [await _signed(http, gateway, people[0])]
    assert served[0].status == 200, served[0].body
    citizen = await sign_in.citizen(people[0])
    auditor = await sign_in.staff("auditor")

    proxy.cut()
    failed = []
    for person in people[:4]:
        answer = await _signed(http, gateway, person)
        _unavailable(answer)
        failed.append(answer.headers["x-request-id"])
    for path, headers in [
        ("/me/accesses", citizen),
        ("/me/consents", citizen),
        ("/audit/events?limit=5", auditor),
    ]:
        answer = await http.request("GET", path, headers=headers)
        _unavailable(answer)
        failed.append(answer.headers["x-request-id"])
    # Every failure was one line with a traceback at most; no unhandled error at all.
    assert not [e for e in logged if "unhandled" in str(e["event"]).lower()], logged
    assert not [e for e in logged if "Exception in ASGI" in str(e["event"])], logged
    for request_id in failed:
        assert len(_tracebacks(logged, request_id)) <= 1, _tracebacks(logged, request_id)

    proxy.heal()
    ids = [served[0].headers["x-request-id"], *await _served(http, gateway, people)]
    for path, headers in [("/me/accesses", citizen), ("/audit/events?limit=5", auditor)]:
        assert (await http.request("GET", path, headers=headers)).status == 200
    # Every answer with data has its record; nothing failed left one behind that says served.
    assert await recorded(place.database_url, ids) == set(ids)
    report = await gateway.audit()
    assert report.ok, report


async def test_a_restarted_database_is_503_or_served_never_500(
    gateway_factory, faults, place, redis_url, dataset, connect
) -> None:
    database_url, proxy = faults.to(place.database_url)
    gateway = gateway_factory.start(database_url=database_url, redis_url=redis_url)
    people = [str(p) for p in dataset.sample.citizens]
    http = connect(gateway.url)
    first = await _signed(http, gateway, people[0])
    assert first.status == 200, first.body
    # A restart: every open connection of the pool is reset, new ones are accepted.
    proxy.cut()
    proxy.heal()
    ids = [first.headers["x-request-id"], *await _served(http, gateway, people)]
    assert await recorded(place.database_url, ids) == set(ids)
    report = await gateway.audit()
    assert report.ok, report
