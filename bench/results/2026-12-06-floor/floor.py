"""The least a Python gateway does per request of the peer benchmark: its floor on this machine.

Not the gateway: a measuring stick for it. Raw ASGI on uvicorn (httptools and uvloop, as
`gateway serve` runs), with no GraphQL engine, no policy and no provenance. Per request:

- verify the EdDSA request token with `cryptography`; check its body hash, its expiry and
  that its `jti` is new (an in-memory set);
- read the ids from the JSON body and call the same population source through aiohttp
  (one GET, or one batch POST for ten ids);
- commit one row to SQLite (WAL, `synchronous=FULL`, as the gateway) in a worker thread;
- answer `personalId` and `birthDate` of each citizen with orjson.

`/log/checkpoint` reports the rows committed, so that the benchmark checks that every
request sent was recorded; `/readyz` answers 200. Run by `start.sh` beside it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from cryptography.hazmat.primitives import serialization

WORK = Path(os.environ["PRODUCT_WORK"])
SOURCE = os.environ["POPULATION_URL"].rstrip("/")
PUBLIC = serialization.load_pem_public_key((WORK / "public.pem").read_bytes())
UNAUTHENTICATED = b'{"errors":[{"message":"unauthenticated"}]}'

seen: set[str] = set()
state: dict[str, Any] = {"size": 0, "session": None}
db = sqlite3.connect(WORK / "floor.db", check_same_thread=False, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=FULL")
db.execute(
    "CREATE TABLE IF NOT EXISTS rec (id INTEGER PRIMARY KEY, jti TEXT, subjects TEXT, at REAL)"
)
writing = asyncio.Lock()


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _digest(body: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()


def _commit(jti: str, subjects: list[str]) -> None:
    db.execute("BEGIN IMMEDIATE")
    db.execute(
        "INSERT INTO rec (jti, subjects, at) VALUES (?, ?, ?)",
        (jti, orjson.dumps(subjects), time.time()),
    )
    db.execute("COMMIT")


def _claims(authorization: str, body: bytes) -> dict[str, Any] | None:
    try:
        header, payload, signature = authorization.removeprefix("Bearer ").split(".")
        PUBLIC.verify(_b64(signature), f"{header}.{payload}".encode())  # type: ignore[union-attr, call-arg]
        claims: dict[str, Any] = orjson.loads(_b64(payload))
    except Exception:
        return None
    fresh = claims.get("exp", 0) > time.time() and claims.get("jti") not in seen
    return claims if fresh and claims.get("req") == _digest(body) else None


async def _reply(send: Any, status: int, body: bytes, kind: bytes = b"application/json") -> None:
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            connector = aiohttp.TCPConnector(limit=64)
            state["session"] = aiohttp.ClientSession(connector=connector)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await state["session"].close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The floor's one ASGI application."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["path"] == "/readyz":
        await _reply(send, 200, b"{}")
        return
    if scope["path"] == "/log/checkpoint":
        await _reply(send, 200, b"floor\n%d\n-\n" % state["size"], b"text/plain")
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    claims = _claims(dict(scope["headers"]).get(b"authorization", b"").decode(), body)
    if claims is None:
        await _reply(send, 401, UNAUTHENTICATED)
        return
    seen.add(claims["jti"])
    variables = orjson.loads(body)["variables"]
    session: aiohttp.ClientSession = state["session"]
    if "ids" in variables:
        subjects = variables["ids"]
        async with session.post(f"{SOURCE}/citizens:batch", json={"ids": subjects}) as answer:
            records = (await answer.json())["citizens"]
        data: dict[str, Any] = {
            "citizens": [
                {"personalId": r["personalId"], "birthDate": r["birthDate"]} for r in records
            ]
        }
    else:
        subjects = [variables["id"]]
        async with session.get(f"{SOURCE}/citizens/{subjects[0]}") as answer:
            record = await answer.json()
        data = {"citizen": {"personalId": record["personalId"], "birthDate": record["birthDate"]}}
    async with writing:
        await asyncio.to_thread(_commit, claims["jti"], subjects)
    state["size"] += 1
    await _reply(send, 200, orjson.dumps({"data": data}))
